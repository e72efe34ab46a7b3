"""A fleet's CAPF runner and HTTPS config getter hold the phone's TLS context they looked up first, as the
TVS asker does (phoneemu.net.tls: a context that writes a key log is kept only while something holds it;
a runner that looked it up at every session built one per phone — ~0.2 ms of CPU each — in a fleet with
``--keylog``)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import phoneemu.net.capf_client as capf_client
import phoneemu.net.tls as tls
import phoneemu.net.tls_client as tls_client
import phoneemu.phone.https_config as https_config
from phoneemu.errors import TransportError
from phoneemu.phone.boot import net_capf_runner


def _counting(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[ssl.SSLContext]:
    made: list[ssl.SSLContext] = []
    real = tls.phone_client_context

    def counted(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        ctx = real(*args, **kwargs)
        made.append(ctx)
        return ctx
    monkeypatch.setattr(module, "phone_client_context", counted)
    return made


def test_a_capf_runner_looks_its_key_log_context_up_once(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    made = _counting(monkeypatch, tls)
    used: list[ssl.SSLContext | None] = []

    async def session(server: Any, client_session: Any, *, tls: ssl.SSLContext | None = None,
                      **_: Any) -> Any:
        used.append(tls)
        return SimpleNamespace(result="done")
    monkeypatch.setattr(capf_client, "capf_session", session)
    run: Any = net_capf_runner(keylog=str(tmp_path / "keys"))  # a fake session: its result is returned
    server = SimpleNamespace(host="127.0.0.1", port=3804)

    async def one() -> Any:
        return await run(server, SimpleNamespace(keygen_seconds=0), accept_server=None)
    for _ in range(3):
        assert asyncio.run(one()) == "done"
    assert len(made) == 1 and used == [made[0]] * 3


def test_an_https_config_getter_looks_its_key_log_context_up_once(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    made = _counting(monkeypatch, https_config)
    used: list[ssl.SSLContext] = []

    async def refused(host: str, port: int, ctx: ssl.SSLContext, **_: Any) -> Any:
        used.append(ctx)
        raise TransportError("refused", kind="unreachable")
    monkeypatch.setattr(tls_client.TlsClientConnection, "open", refused)
    getter = https_config.HttpsConfigClient("127.0.0.1", keylog=str(tmp_path / "keys"))
    for _ in range(3):
        with pytest.raises(TransportError):
            asyncio.run(getter("SEP001122334455.cnf.xml.sgn", accept_server=lambda cert: True))
    assert len(made) == 1 and used == [made[0]] * 3
