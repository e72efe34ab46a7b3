"""The lab CAPF server logs every failed session as a problem (:mod:`phoneemu.lab.capf_service`).

Rule: a session that ends in a failure — a refused authentication (``bad-auth``, spec §F.7), an unknown
device, a failed key generation, store, fetch or delete — is a WARNING line with its reason, like a
malformed frame or a timeout (was: an outcome word without ``:`` was logged at INFO, so 100 wrong
authentication strings left nothing in ``lab serve``'s log without ``-v``). A flood of them follows the
lab's rate rule (:class:`phoneemu.net.tls.FailureLog`): the first said at once, then one line a second
with the count and the outcomes counted; each is still a line at INFO (``-v``). Successes stay INFO."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import pytest

from phoneemu.lab.capf_service import CapfHandler, CapfSessionLog
from phoneemu.net.tls import TlsServer
from phoneemu.protocols import capf
from tests.helpers import run
from tests.integration.test_lab_capf_truncated import auth_request

HOST = "127.0.0.1"
MAC = "0011223344DE"
LOGGER = "phoneemu.lab.capf"


def _lab(operation: str | None) -> SimpleNamespace:
    """Just what :class:`CapfHandler` reads of a cluster that knows ``MAC``: an install by the string
    ``123456`` pending (``operation`` "install"), or nothing pending (None)."""
    pending = None if operation is None else SimpleNamespace(
        operation=operation, auth_mode=int(capf.AuthType.PASSWORD), auth_string="123456", key_type="rsa",
        key_size=2048, curve="P256")
    return SimpleNamespace(state=SimpleNamespace(phones={MAC: None}), capf_pending=lambda _mac: pending)


def _auth_response(session_id: int, password: str) -> bytes:
    return capf.encode(capf.message(capf.CapfCommand.AUTH_RESPONSE, session_id,
                                    (capf.CapfTag.DEVICE_NAME, capf.encode_cstring(f"SEP{MAC}")),
                                    (capf.CapfTag.PASSWORD, capf.encode_cstring(password))))


async def _one(port: int, password: str) -> None:
    """A client that answers AUTH_REQUEST with ``password`` and reads until the server closes."""
    reader, writer = await asyncio.open_connection(HOST, port)
    request = await auth_request(reader)
    writer.write(_auth_response(request.session_id, password))
    await writer.drain()
    while await asyncio.wait_for(reader.read(4096), 5):
        pass
    writer.close()


def _sessions(operation: str | None, passwords: list[str], *, linger: float = 0.0) -> list[CapfSessionLog]:
    """The sessions logged for one client per password, one after the other, on one server; ``linger``:
    seconds the loop keeps running after them (the flood's last interval ends)."""
    seen: list[CapfSessionLog] = []
    handler = CapfHandler(_lab(operation), read_timeout=5.0, session_timeout=20.0,  # type: ignore[arg-type]
                          on_log=seen.append)

    async def main() -> None:
        async with TlsServer(handler, None, HOST, 0) as srv:
            for password in passwords:
                await _one(srv.port, password)
            for _ in range(250):
                if len(seen) == len(passwords):
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(linger)
        handler.flush()

    run(main(), limit=60)
    assert len(seen) == len(passwords), seen
    return seen


def _capf_records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


def test_a_refused_authentication_is_a_warning_with_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    """Was: ``bad-auth authentication string does not match`` at INFO only (``lab serve -v``)."""
    with caplog.at_level(logging.INFO, logger=LOGGER):
        (entry,) = _sessions("install", ["999999"])
    assert entry.outcome == "bad-auth", entry
    warned = _capf_records(caplog, logging.WARNING)
    assert len(warned) == 1, warned
    assert f"SEP{MAC} op=install: bad-auth authentication string does not match" in warned[0], warned


def test_nothing_pending_is_not_a_problem(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER):
        (entry,) = _sessions(None, ["x"])
    assert entry.outcome == "nothing-pending", entry
    assert _capf_records(caplog, logging.WARNING) == []
    assert any("nothing-pending" in m for m in _capf_records(caplog, logging.INFO))


def test_a_flood_of_refused_authentications_is_counted_not_a_line_each(
        caplog: pytest.LogCaptureFixture) -> None:
    """20 wrong strings within a second: the first said at once, the rest counted in the interval's line
    (exact, ``nothing lost``), each of them still a line at INFO."""
    with caplog.at_level(logging.INFO, logger=LOGGER):
        _sessions("install", ["1"] * 20, linger=1.5)
    warned = _capf_records(caplog, logging.WARNING)
    assert "bad-auth authentication string does not match" in warned[0], warned
    counted = [m for m in warned[1:] if "CAPF sessions failed in the last" in m or "CAPF session failed" in m]
    assert len(counted) == len(warned) - 1, warned
    total = 1 + sum(int(m.split("capf: ", 1)[1].split(" ", 1)[0].replace(",", "")) for m in counted)
    assert total == 20, warned
    assert all("(bad-auth " in m for m in counted), counted
    each = [m for m in _capf_records(caplog, logging.INFO) if "bad-auth authentication string" in m]
    assert len(each) == 19, each
