"""``replay`` names the TVS server (``HOST:PORT``) that gave no answer, in the boot's words (spec §E.1).

Before, a replayed phone whose TVS was unavailable offline said "(TVS unavailable offline (no --tvs-cert
...))", one whose captured QUERY got no answer "captured TVS query got no answer", one without its QUERY in
the capture "no such TVS query of this phone in the capture" — where the boot and ``predict`` say ``no TVS
server answered: 10.0.0.5:2445: ...``; and a server refused from the capture was judged unnamed, so the
timeline said "TVS server certificate is not an ITL TVS record" where the boot names it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.errors import TransportError
from phoneemu.formats import config as config_fmt
from phoneemu.formats import signed
from phoneemu.formats.config import Server
from phoneemu.net.tvs_client import NO_TVS_ANSWER, server_judged
from phoneemu.phone.events import QueryKey
from phoneemu.phone.store import TvsStatus
from phoneemu.protocols import tvs
from phoneemu.scenario.replay import boots_of, index_capture, offline_tvs, servers_named
from phoneemu.scenario.replay_tvs import CapturedCert, CapturedTvs, TvsCapture
from phoneemu.values import host_port

ROOT = Path(__file__).resolve().parents[2]
PCAP = ROOT / "captures" / "migration-itl-signer-unknown.pcap"  # boot 2: the new ITL, TVS needed
MAC = "0A0000000501"
OFFLINE = "TVS unavailable offline (no --tvs-cert for it to vouch for)"
KEY = QueryKey(subject="CN=ITLRECOVERY", issuer="CN=ITLRECOVERY", serial=b"\x01")
TWO = (Server(host="10.0.0.6", port=2445, priority=1), Server(host="10.0.0.5", port=2446, priority=0))


def _tvs_of_first_boot() -> str:
    """``HOST:PORT`` of the TVS server the config of the phone's first captured boot names."""
    first = boots_of(index_capture(PCAP), MAC)[0]
    data = next(d.data for d in first.own if d.name.endswith(".cnf.xml.sgn") and d.data)
    (server,) = config_fmt.parse(signed.parse(data).body).tvs_servers
    return host_port(server.host, server.port)


def test_an_offline_replay_names_the_tvs_server_as_the_boot(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    offline = tmp_path / PCAP.name  # without its key log beside it (replay would use it)
    shutil.copyfile(PCAP, offline)
    assert main(["replay", str(offline), "--mac", MAC, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)["boots"][-1]["report"]
    said = f"{NO_TVS_ANSWER}{_tvs_of_first_boot()}: {OFFLINE}"
    assert report["deciding"]["rule"] == "G.3.4-tvs-unreachable"
    assert report["deciding"]["reason"].endswith(f"({said})"), report["deciding"]
    assert any(line.endswith(f"TVS unreachable (unreachable): {said}") for line in report["timeline"])


def test_the_offline_tvs_names_each_server_in_the_order_tried() -> None:
    """Lower priority first, as the boot's client tries them; an answer, or a failure that names its
    servers already, goes through as it is."""
    ask = servers_named(offline_tvs((), frozenset({0})))
    with pytest.raises(TransportError) as info:
        asyncio.run(ask(TWO, KEY, device_name=f"CP-8861-SEP{MAC}", accept_server=None))
    assert info.value.message == f"{NO_TVS_ANSWER}10.0.0.5:2446: {OFFLINE}; 10.0.0.6:2445: {OFFLINE}"
    assert info.value.kind == "unreachable"

    async def named_already(*_a: Any, **_k: Any) -> Any:
        raise TransportError(f"{NO_TVS_ANSWER}10.0.0.6:2445: refused", kind="tls")

    async def not_found(*_a: Any, **_k: Any) -> Any:
        return TvsStatus.NOT_FOUND

    with pytest.raises(TransportError) as again:
        asyncio.run(servers_named(named_already)(TWO, KEY, device_name="x"))
    assert again.value.message == f"{NO_TVS_ANSWER}10.0.0.6:2445: refused" and again.value.kind == "tls"
    assert asyncio.run(servers_named(not_found)(TWO, KEY, device_name="x")) is TvsStatus.NOT_FOUND


def _asked(capture: TvsCapture, accept: Any = None) -> TransportError:
    ask = capture.asker(lambda: (0, 100))
    with pytest.raises(TransportError) as info:
        asyncio.run(ask(TWO, KEY, device_name=f"CP-8861-SEP{MAC}", accept_server=accept))
    return info.value


def test_a_captured_query_without_an_answer_names_the_server_it_went_to() -> None:
    request = tvs.QueryRequest(session_id=1, device_name=f"CP-8861-SEP{MAC}", subject=KEY.subject,
                               issuer=KEY.issuer, serial=KEY.serial)
    cut = CapturedTvs(start=1.0, client=("10.1.0.9", 40001), server=("10.0.0.7", 2445), tls="TLSv1.2",
                      request=request, response=None, order=1)
    exc = _asked(TvsCapture(exchanges=(cut,), tls_connections=1, not_tvs=0, problems=()))
    assert exc.message == f"{NO_TVS_ANSWER}10.0.0.7:2445: captured TVS query got no answer"
    assert exc.kind == "unreachable"
    none = _asked(TvsCapture(exchanges=(), tls_connections=0, not_tvs=0, problems=()))
    why = "no such TVS query of this phone in the capture"
    assert none.message == f"{NO_TVS_ANSWER}10.0.0.5:2446: {why}; 10.0.0.6:2445: {why}"


def test_a_server_refused_from_the_capture_is_judged_under_its_name() -> None:
    """The boot's note of a refusal names the server ``server_judged()`` gives, as on a live connection."""
    shown = tuple(CapturedCert(start=float(n), client=("10.1.0.9", 40000 + n), server=(s.host, s.port),
                               certificate=b"a regenerated TVS", order=n) for n, s in enumerate(TWO))
    judged: list[str | None] = []

    def refuse(_der: bytes | None) -> bool:
        judged.append(server_judged())
        return False

    exc = _asked(TvsCapture(exchanges=(), tls_connections=2, not_tvs=2, problems=(), presented=shown), refuse)
    assert judged == ["10.0.0.5:2446", "10.0.0.6:2445"] and exc.kind == "tls"
