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
