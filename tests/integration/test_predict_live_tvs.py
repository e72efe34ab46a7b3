"""``predict --tvs-live``: the TVS servers of the installed config asked over loopback, as the phone would."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.crypto import certs
from phoneemu.errors import TransportError
from phoneemu.formats import config as config_fmt
from phoneemu.formats import signed
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.net.tvs_client import NO_TVS_ANSWER, SERVER_REFUSED, server_judged
from phoneemu.phone.events import QueryKey
from phoneemu.phone.profile import get_profile
from phoneemu.phone.store import TvsStatus
from phoneemu.scenario.predict import PredictResult, predict_boot
from phoneemu.scenario.predict_live_tvs import LiveTvs
from phoneemu.values import host_port
from tests.helpers import run

NOW = 1_780_000_000
MAC = "0A00000000E1"
MAC2 = "0A00000000E2"
CFG = f"SEP{MAC}.cnf.xml.sgn"


def _save(c: LabCluster, folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = c.files()
    for n in names:
        (folder / n).write_bytes(files[n])
    return [folder / n for n in names]


def _cluster(tmp: Path, name: str, seed: int) -> LabCluster:
    c = LabCluster.init(tmp / name, seed=seed, key_spec="rsa1024", now=NOW, name=name)
    c.add_phones([MAC, MAC2], now=NOW)
    return c


async def _predict(held: Path, new: list[Path], live: LiveTvs, mac: str = MAC) -> PredictResult:
    return await predict_boot(new, installed_itl=held / "ITLFile.tlv",
                              installed_config=held / f"SEP{mac}.cnf.xml.sgn", mac=mac, now=NOW,
                              tvs_live=live)


def _rule(r: PredictResult) -> str:
    assert r.report.deciding is not None
    return r.report.deciding.rule


def test_the_live_tvs_decides_as_it_would_for_the_phones(tmp_path: Path) -> None:
    """Same cluster, ITLRecovery regenerated: the TVS vouches (ITL updated); another cluster's ITL: the
    TVS does not know its signer (locked out, §G.6 problem 3); a whole fleet asks each server once."""
    a, b = _cluster(tmp_path, "a", 31), _cluster(tmp_path, "b", 32)

    async def main_() -> None:
        async with LabServers(a):  # records its ports: the configs name its TVS
            _save(a, tmp_path / "held", "ITLFile.tlv", CFG, f"SEP{MAC2}.cnf.xml.sgn")
            a.regenerate("itlrecovery", now=NOW)
            new = _save(a, tmp_path / "new", "ITLFile.tlv", CFG, f"SEP{MAC2}.cnf.xml.sgn")
            live = LiveTvs(timeout=5)
            r = await _predict(tmp_path / "held", new, live)
            assert r.report.trust["ITL"] == "updated" and r.report.ok, r.report
            assert any(d.rule == "G.3.4-vouched-by-tvs" and d.accepted for d in r.report.decisions)
            r2 = await _predict(tmp_path / "held", new, live, MAC2)
            assert r2.report.ok and live.connections == 1  # the second phone's question was answered
            other = _save(b, tmp_path / "b-new", "ITLFile.tlv", CFG)
            r3 = await _predict(tmp_path / "held", other, live)
            assert _rule(r3) == "G.3.4-tvs-unknown-signer" and r3.report.locked_out
            assert live.connections == 2  # another question
        down = LiveTvs(timeout=2)
        r4 = await _predict(tmp_path / "held", other, down)
        assert _rule(r4) == "G.3.4-tvs-unreachable"
        # the reason says "no TVS server answered" once (it said it twice), and the server is counted
        # unreachable among the connections tried
        assert r4.report.deciding is not None
        assert r4.report.deciding.reason.count("no TVS server answered") == 1
        assert down.connections == 1 and down.unreachable == 1

    run(main_())


def test_a_tvs_whose_certificate_the_phone_does_not_hold_is_not_asked(tmp_path: Path) -> None:
    """TVS regenerated too: it presents a certificate the installed ITL lacks; the phone refuses it
    (§E.1), and a phone asking later is refused from what was remembered, without a new connection."""
    a = _cluster(tmp_path, "a", 33)

    async def main_() -> None:
        async with LabServers(a):
            _save(a, tmp_path / "held", "ITLFile.tlv", CFG, f"SEP{MAC2}.cnf.xml.sgn")
            a.regenerate("itlrecovery", now=NOW)
            a.regenerate("tvs", now=NOW)
            new = _save(a, tmp_path / "new", "ITLFile.tlv", CFG)
            live = LiveTvs(timeout=5)
            r = await _predict(tmp_path / "held", new, live)
            assert _rule(r) == "G.3.4-tvs-server-untrusted" and r.report.locked_out
            ask = live.asker(get_profile("cp-8861").tls_versions)  # the predicted phone's: remembered
            rec = a.identity("itlrecovery").cert
            key = QueryKey(subject=certs.dn_text(rec.subject), issuer=certs.dn_text(rec.issuer),
                           serial=certs.serial_bytes(rec.serial_number))
            held_cfg = config_fmt.parse(signed.parse((tmp_path / "held" / CFG).read_bytes()).body)
            where = host_port(held_cfg.tvs_servers[0].host, held_cfg.tvs_servers[0].port)
            judged: list[str | None] = []

            def refuse(_der: bytes | None) -> bool:
                judged.append(server_judged())  # what the boot's note of the refusal names
                return False

            with pytest.raises(TransportError) as info:
                await ask(held_cfg.tvs_servers, key, device_name=f"SEP{MAC2}", accept_server=refuse)
            assert info.value.kind == "tls" and live.connections == 1
            # in the words of a refusal on a connection (the first phone's), the server named
            assert info.value.message == f"{NO_TVS_ANSWER}{where}: {SERVER_REFUSED}" and judged == [where]
            second = await _predict(tmp_path / "held", new, live, mac=MAC2)  # refused from memory
            assert _rule(second) == "G.3.4-tvs-server-untrusted" and live.connections == 1
            assert any(f"TVS server {where} certificate is not an ITL TVS record" in line
                       for line in second.report.timeline), second.report.timeline
            got = await ask(held_cfg.tvs_servers, key, device_name=f"SEP{MAC2}", accept_server=None)
            assert got != TvsStatus.NOT_FOUND and live.connections == 2  # trusted by this one: asked

    run(main_())


def test_tvs_live_refuses_the_options_that_stand_in_for_tvs(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    for extra in (["--tvs-reachable"], ["--tvs-cert", str(tmp_path / "x.pem")]):
        assert main(["predict", "--tvs-live", *extra, str(tmp_path)]) == 2
        assert "not with --tvs-live, which asks them" in capsys.readouterr().err
