"""A reference capture rewritten as a real network gives it — a voice VLAN trunk (802.1Q, QinQ) in pcapng,
a macOS ``lo0`` capture (LINKTYPE_NULL), TFTP/HTTP/TLS packets fragmented over a small MTU — replays
exactly as the lab's own capture: the same downloads, TVS answers and decisions for every phone."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.net.tls_decrypt import read_keylog
from phoneemu.scenario.replay import index_capture, replay_phone
from phoneemu.scenario.replay_tvs import scan_capture
from tests.helpers import without_durations
from tests.unit.test_capture_variants import TAGS, ethernet, fragmented, lab, pcap_of, pcapng_of

CAPTURES = Path(__file__).resolve().parents[2] / "captures"


def _vlan_pcapng(src: Path) -> bytes:
    return pcapng_of([(1, 9, 0)], [(0, s, u, ethernet(ip, tags=TAGS["QinQ 802.1ad"], fcs=True))
                                   for s, u, ip in lab(src)])


def _lo0(src: Path) -> bytes:
    return pcap_of(0, [(s, u, (2).to_bytes(4, "little") + ip) for s, u, ip in lab(src)])


def _fragments(src: Path) -> bytes:
    return pcap_of(1, [(s, u, ethernet(ip, tags=((0x8100, 100),))) for s, u, ip in fragmented(lab(src), 576)])


VARIANTS: dict[str, Callable[[Path], bytes]] = {"vlan-pcapng": _vlan_pcapng, "lo0": _lo0,
                                                 "fragmented": _fragments}


def decisions(path: Path, mac: str, keys: Any) -> Any:
    scan = scan_capture(path, mac=mac, secrets=keys)
    results = asyncio.run(replay_phone(scan.index, mac, tvs_capture=scan.tvs))
    return (without_durations([r.as_dict() for r in results]),
            [[(d.name, d.outcome, d.data) for d in r.boot.own] for r in results],
            [w for w in scan.warnings])


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("name", ["sha512-signing-sha1-phone", "migration-itl-signer-unknown"])
def test_a_real_network_capture_replays_as_the_lab_capture(tmp_path: Path, name: str, variant: str) -> None:
    capture = CAPTURES / f"{name}.pcap"
    other = tmp_path / f"{name}.{'pcapng' if 'pcapng' in variant else 'pcap'}"
    other.write_bytes(VARIANTS[variant](capture))
    keys = read_keylog(capture.with_suffix(".keys"))
    macs = [m for m in index_capture(capture).macs() if m.startswith("0A")]
    assert macs and index_capture(other).macs() == index_capture(capture).macs()
    for mac in macs:
        assert decisions(other, mac, keys) == decisions(capture, mac, keys)


def test_replay_all_of_a_tagged_fragmented_trunk(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``replay --all --json`` of the trunk capture is that of the lab's."""
    name = "sha512-signing-sha1-phone"
    capture = CAPTURES / f"{name}.pcap"
    trunk = tmp_path / "trunk" / f"{name}.pcap"
    trunk.parent.mkdir()
    trunk.write_bytes(pcap_of(1, [(s, u, ethernet(ip, tags=TAGS["QinQ 0x9100"], fcs=True))
                                  for s, u, ip in fragmented(lab(capture), 1000)]))

    def replay(path: Path) -> Any:
        rc = main(["replay", str(path), "--all", "--json"])
        out = capsys.readouterr().out
        return rc, without_durations(json.loads(out))

    got, want = replay(trunk), replay(capture)
    assert json.dumps(got).replace(str(trunk), str(capture)) == json.dumps(want)


def test_a_datagram_whose_fragments_never_all_came_is_a_replay_warning(tmp_path: Path) -> None:
    """A fragment lost before the capture point: the datagram is not rebuilt and the replay's warnings
    say so (with its capture offset) — the reader told it, the scan did not listen."""
    capture = CAPTURES / "sha512-signing-sha1-phone.pcap"
    frames = fragmented(lab(capture), 576)
    firsts = [i for i, (_s, _u, ip) in enumerate(frames) if ip[0] >> 4 == 4 and ip[6] & 0x20]  # MF set
    assert firsts
    del frames[firsts[0] + 1]  # the next fragment of the first fragmented datagram: lost
    cut = tmp_path / "lost-fragment.pcap"
    cut.write_bytes(pcap_of(101, frames))
    mac = next(m for m in index_capture(capture).macs() if m.startswith("0A"))
    scan = scan_capture(cut, mac=mac, secrets=read_keylog(capture.with_suffix(".keys")))
    assert any("fragment" in w for w in scan.warnings), scan.warnings
