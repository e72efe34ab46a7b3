"""``phoneemu wireshark CAPTURE``: a capture whose TVS and CAPF messages cannot show says why on stderr
before tshark runs (``--print`` too): no TLS session in it, no key log (none given, no ``CAPTURE.keys``
beside it), or an empty one. Was: tshark printed nothing and nothing said why (the TLS stayed
encrypted, the filter ``tvs || capf`` matched no packet)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from phoneemu.cli import main

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
WITH_TVS = CAPTURES / "callmanager-regenerated-via-tvs.pcap"  # a TVS session on an ephemeral port
NO_TLS = CAPTURES / "first-boot-trusts-first-itl.pcap"


def _notes(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert main(["wireshark", *argv, "--print"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("tshark "), captured.out
    return captured.err.splitlines()


def test_a_capture_without_its_key_log_says_the_tls_stays_encrypted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pcap = tmp_path / "run.pcap"
    shutil.copyfile(WITH_TVS, pcap)
    [note] = _notes([str(pcap)], capsys)
    assert note.startswith(f"phoneemu wireshark: note: no key log ({tmp_path / 'run.keys'} is not there; "
                           "--keylog FILE names one): the TLS to port "), note
    assert "stays encrypted, no TVS or CAPF message shows" in note
    keys = tmp_path / "run.keys"
    keys.write_bytes(b"")
    [note] = _notes([str(pcap)], capsys)
    assert note.startswith(f"phoneemu wireshark: note: key log {keys} is empty: the TLS to port "), note
    shutil.copyfile(WITH_TVS.with_suffix(".keys"), keys)
    assert _notes([str(pcap)], capsys) == []  # its key log: the messages show
    assert _notes([str(pcap), "--keylog", str(WITH_TVS.with_suffix(".keys"))], capsys) == []


def test_a_capture_without_tls_says_there_is_no_tvs_or_capf(capsys: pytest.CaptureFixture[str]) -> None:
    assert _notes([str(NO_TLS)], capsys) == [
        f"phoneemu wireshark: note: {NO_TLS}: no TLS session in it (no ClientHello), so no TVS or CAPF "
        "message to show (they run over TLS)"]


def test_a_filter_without_tvs_or_capf_gets_no_note(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    pcap = tmp_path / "run.pcap"
    shutil.copyfile(WITH_TVS, pcap)
    assert _notes([str(pcap), "--filter", "tftp"], capsys) == []
    assert _notes([str(NO_TLS), "--filter", "tftp"], capsys) == []


def _damaged(src: Path, dst: Path, packet: int) -> int:
    """``src`` (a classic pcap) with packet ``packet`` (from 0) claiming 0x7fffffff captured bytes: the
    file offset of that length."""
    data = bytearray(src.read_bytes())
    pos = 24
    for _ in range(packet):
        pos += 16 + int.from_bytes(data[pos + 8:pos + 12], "little")
    data[pos + 8:pos + 12] = (0x7FFFFFFF).to_bytes(4, "little")
    dst.write_bytes(data)
    return pos + 8


def test_a_capture_damaged_mid_file_runs_tshark_on_what_is_before(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A packet that cannot be read (incl_len 0x7fffffff) after the TVS session: one note naming it, the
    ports found before it, the command (was: refused, exit 2, nothing shown, though tshark shows the
    packets before the damage). Damaged before any TLS: no TLS session before the damage."""
    from phoneemu.net.capture import read_pcap

    pcap = tmp_path / "run.pcap"
    last = max(p.index for p in read_pcap(WITH_TVS))
    offset = _damaged(WITH_TVS, pcap, last)
    shutil.copyfile(WITH_TVS.with_suffix(".keys"), tmp_path / "run.keys")
    assert main(["wireshark", str(pcap), "--print"]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"phoneemu wireshark: note: {pcap}: damaged at packet {last + 1} (offset {offset}: captured length "
        "2147483647 exceeds snaplen 262144): tshark shows the packets before it"]
    assert "-d tcp.port==" in captured.out
    offset = _damaged(WITH_TVS, pcap, 1)
    notes = _notes([str(pcap)], capsys)
    assert notes[0].startswith(f"phoneemu wireshark: note: {pcap}: damaged at packet 2 (offset {offset}: ")
    assert notes[1:] == [f"phoneemu wireshark: note: {pcap}: no TLS session before the damage (no "
                         "ClientHello), so no TVS or CAPF message to show (they run over TLS)"]
    not_a_capture = tmp_path / "notes.txt"
    not_a_capture.write_text("not a capture\n")
    assert main(["wireshark", str(not_a_capture), "--print"]) == 2  # still refused


def test_a_pcapng_with_its_key_log_embedded_gets_no_note(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """``editcap --inject-secrets tls,run.keys run.pcap run.pcapng``: tshark decrypts with the key log in
    it, no ``run.keys`` needed (was: 'no key log (run.keys is not there ...)', then every message shown)."""
    from tests.unit.test_pcap_gzip import _with_secrets
    from tests.unit.test_pcapng import to_pcapng

    ng = tmp_path / "run.pcapng"
    keys = WITH_TVS.with_suffix(".keys").read_bytes()
    ng.write_bytes(_with_secrets(to_pcapng(WITH_TVS.read_bytes()), keys))
    assert _notes([str(ng)], capsys) == []
    ng.write_bytes(to_pcapng(WITH_TVS.read_bytes()))  # none embedded: the note stays
    [note] = _notes([str(ng)], capsys)
    assert note.startswith(f"phoneemu wireshark: note: no key log ({tmp_path / 'run.keys'} is not there; ")
