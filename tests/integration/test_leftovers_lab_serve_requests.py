"""``lab serve`` keeps no request log (``LabServers.requests``): it never reads it.

Before, every request a served lab answered was kept in ``LabServers.requests`` — up to 100,000
entries, ~29 MB of resident memory — which ``phoneemu lab serve`` never reads (its log lines say what
happened). Now lab serve builds its servers with ``keep_requests=False``; scenarios and tests, which
read ``requests``, keep the default.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from phoneemu.commands.lab_serve import serve
from phoneemu.errors import TransportError
from phoneemu.lab import servers as servers_mod
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.net.tftp import tftp_get
from tests.helpers import lab_template, run

HOST = "127.0.0.1"
MAC = "0A0000300000"
template = lab_template("leftover-requests", seed=43, phones={MAC: {}})


def test_lab_serve_builds_servers_that_keep_no_request_log(cluster: LabCluster,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[LabServers] = []

    class Seen(LabServers):
        def __init__(self, *args: Any, **kw: Any) -> None:
            super().__init__(*args, **kw)
            made.append(self)

        async def start(self) -> dict[str, int]:  # stands for a failed bind: serve stops at once
            raise TransportError("not started (test)", kind="protocol")

    monkeypatch.setattr(servers_mod, "LabServers", Seen)
    with pytest.raises(TransportError, match="not started"):
        run(serve(Path(cluster.root), host=HOST, tftp_port=0, http_port=0, tvs_port=0, capf_port=0))
    assert len(made) == 1
    assert made[0].keep_requests is False


@pytest.mark.parametrize("keep", [True, False])
def test_servers_that_keep_no_request_log_serve_alike_and_keep_nothing(cluster: LabCluster,
                                                                      keep: bool) -> None:
    async def main() -> tuple[list[bytes], int]:
        async with LabServers(cluster, host=HOST, keep_requests=keep) as srv:
            got = [await tftp_get(HOST, srv.ports["tftp"], "ITLFile.tlv", timeout=2.0) for _ in range(20)]
            for _ in range(40):  # the last transfer is recorded once its final ACK is in (bounded: 2 s)
                if len(srv.requests) >= 20:
                    break
                await asyncio.sleep(0.05)
            return got, len(srv.requests)

    got, kept = run(main())
    assert all(g == cluster.get("ITLFile.tlv") for g in got)
    assert kept == (20 if keep else 0)
