"""``predict`` names the TVS server (``HOST:PORT``) it could not use, in the boot's words (spec §E.1, §E.7.6).

Before, a predicted phone whose TVS was unreachable said only "(TVS unavailable offline (no --tvs-cert
...))", one whose TVS presented a certificate the installed ITL lacks "(every TVS server presented a
certificate the installed ITL does not hold)", its timeline "TVS server certificate is not an ITL TVS
record" — where the real boot says ``no TVS server answered: 10.0.0.5:2445: ...`` and ``TVS server
10.0.0.5:2445 certificate ...``. ``predict --tvs-live`` said the server only for the first phone that
connected: a phone refused from what was remembered had the unnamed note and other words.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from phoneemu.cli import main
from phoneemu.crypto import certs
from phoneemu.errors import TransportError
from phoneemu.formats import config as config_fmt
from phoneemu.formats import signed
from phoneemu.formats.config import Server
from phoneemu.lab.cluster import LabCluster
from phoneemu.net.tvs_client import NO_TVS_ANSWER, SERVER_REFUSED, server_judged
from phoneemu.phone.events import QueryKey
from phoneemu.scenario.predict import _server_checking_tvs
from phoneemu.values import host_port

NOW = 1_780_000_000
MAC = "0A00000000F1"
CFG = f"SEP{MAC}.cnf.xml.sgn"


def _cluster(tmp: Path, name: str, seed: int) -> LabCluster:
    c = LabCluster.init(tmp / name, seed=seed, key_spec="rsa1024", now=NOW, name=name)
    c.add_phone(MAC, now=NOW)
    return c


def _save(c: LabCluster, folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    files = c.files()
    for n in ("ITLFile.tlv", CFG):
        (folder / n).write_bytes(files[n])
    return [str(folder / "ITLFile.tlv"), str(folder / CFG)]


def _tvs_of(config_sgn: str) -> str:
    """``HOST:PORT`` of the (one) TVS server a saved config names."""
    (server,) = config_fmt.parse(signed.parse(Path(config_sgn).read_bytes()).body).tvs_servers
    return host_port(server.host, server.port)


def _predict_json(held: list[str], new: list[str], *extra: str,
                  capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["predict", "--installed-itl", held[0], "--installed-config", held[1], "--now", str(NOW),
                 "--json", *extra, *new]) == 1
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc


def test_an_unreachable_tvs_is_named_as_on_the_boot(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    held = _save(_cluster(tmp_path, "a", 41), tmp_path / "held")
    new = _save(_cluster(tmp_path, "b", 42), tmp_path / "new")  # a migration, the old TVS unreachable
    where = _tvs_of(held[1])
    report = _predict_json(held, new, capsys=capsys)["report"]
    said = f"{NO_TVS_ANSWER}{where}: TVS unavailable offline (no --tvs-cert for it to vouch for)"
    assert report["deciding"]["rule"] == "G.3.4-tvs-unreachable"
    assert report["deciding"]["reason"].endswith(f"({said})"), report["deciding"]
    assert any(line.endswith(f"TVS unreachable (unreachable): {said}") for line in report["timeline"])


def test_a_refused_tvs_is_named_as_on_the_boot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = _cluster(tmp_path, "c", 43)
    held = _save(c, tmp_path / "held")
    c.regenerate("itlrecovery", now=NOW)
    c.regenerate("tvs", now=NOW)  # it presents a certificate the held ITL lacks (the new ITL's TVS record)
    new = _save(c, tmp_path / "new")
    pem = tmp_path / "itlrecovery.pem"
    pem.write_bytes(c.identity("itlrecovery").cert.public_bytes(Encoding.PEM))
    where = _tvs_of(held[1])
    report = _predict_json(held, new, "--tvs-cert", str(pem), capsys=capsys)["report"]
    assert report["deciding"]["rule"] == "G.3.4-tvs-server-untrusted"
    assert report["deciding"]["reason"].endswith(f"({NO_TVS_ANSWER}{where}: {SERVER_REFUSED})"), \
        report["deciding"]
    assert any(line.endswith(f"TVS server {where} certificate is not an ITL TVS record: not used (spec E.1)")
               for line in report["timeline"]), report["timeline"]


def test_the_offline_tvs_tries_and_names_the_servers_in_priority_order(tmp_path: Path) -> None:
    """As the boot's client (spec §E.1 failover): each server judged under its own name, a refused one
    skipped, and with no answer every server named with why, lower priority first."""
    presented = certs.cert_der(_cluster(tmp_path, "d", 44).identity("tvs").cert)
    servers = (Server(host="10.0.0.6", port=2445, priority=1), Server(host="10.0.0.5", port=2446, priority=0))
    judged: list[str | None] = []

    def accept_only_the_second(_der: bytes | None) -> bool:
        judged.append(server_judged())
        return server_judged() == "10.0.0.6:2445"

    async def unreachable(*_a: Any, **_k: Any) -> Any:
        raise TransportError("TVS unavailable offline (no --tvs-cert for it to vouch for)",
                             kind="unreachable")

    refused: list[str] = []
    ask = _server_checking_tvs(unreachable, explicit=[presented], inferred={}, refused=refused)
    key = QueryKey(subject="CN=x", issuer="CN=x", serial=b"\x01")
    with pytest.raises(TransportError) as info:
        asyncio.run(ask(servers, key, device_name="CP-8861-SEP0A00000000F1",
                        accept_server=accept_only_the_second))
    assert judged == ["10.0.0.5:2446", "10.0.0.6:2445"]
    assert info.value.message == (f"{NO_TVS_ANSWER}10.0.0.5:2446: {SERVER_REFUSED}; 10.0.0.6:2445: TVS "
                                  "unavailable offline (no --tvs-cert for it to vouch for)")
    assert info.value.kind == "unreachable"
    assert len(refused) == 1 and refused[0].startswith("TVS 10.0.0.5:2446 presents CN=d-pub-TVS"), refused
