"""``predict --tvs-live``: the TVS servers a phone's installed config names, asked over the network.

What it answers before a change reaches real phones: would the TVS the phones ask today vouch for the
new signer — e.g. cluster A's TVS for cluster B's ITLRecovery after a bulk certificate export (spec
§G.6 problem 3) — and would the phones talk to that TVS at all.

Rules (spec §E.1 failover and server check, §E.7.2 QUERY; the remembering is *our convention*):

* The phone asks as on its boot: the servers of its installed config in priority order, over TLS in
  its profile's versions; it talks to a server only if the certificate the server presents matches a
  TVS record of its installed ITL (``accept_server``); the first server that answers decides. A QUERY
  changes nothing on the cluster.
* Remembered for the run, per server and TLS versions: the certificate the server presented, its
  answer to each question, and a server that could not be reached (or answered garbage). So a fleet of
  predicted phones makes one connection per server and question, not one per phone; each phone still
  judges the presented certificate with its own installed ITL, and a refusal reads the same, its note
  naming the server (``HOST:PORT``), whether the server was connected to or remembered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from phoneemu.errors import TransportError
from phoneemu.net.tls import phone_client_context
from phoneemu.net.tvs_client import (
    NO_TVS_ANSWER,
    SERVER_REFUSED,
    ServerAddress,
    TvsReply,
    judge_server,
    servers_to_try,
    tvs_query,
)
from phoneemu.phone.events import QueryKey
from phoneemu.phone.store import TvsResult, query_answer
from phoneemu.values import host_port

if TYPE_CHECKING:
    from phoneemu.formats.config import Server
    from phoneemu.phone.boot import TvsAsker

__all__ = ["LiveTvs"]

_Where = tuple[str, int, tuple[str, ...]]  # host, port, TLS versions


@dataclass
class LiveTvs:
    """The TVS servers asked over the network, what they said remembered (module rules); one per run,
    shared by every predicted phone. ``connections``: TLS connections tried; ``unreachable``: the
    servers among them that could not be reached or answered garbage."""

    timeout: float = 5.0
    connections: int = field(default=0, init=False)
    _presented: dict[_Where, bytes | None] = field(default_factory=dict, init=False, repr=False)
    _answers: dict[tuple[_Where, QueryKey], TvsReply] = field(default_factory=dict, init=False, repr=False)
    _down: dict[_Where, TransportError] = field(default_factory=dict, init=False, repr=False)

    @property
    def unreachable(self) -> int:
        """Servers (``HOST:PORT``) that could not be reached this run, or answered garbage: each counted
        once, however many TLS versions it was tried with (was: once per TLS versions, two servers said
        for one TVS down under a fleet of two models)."""
        return len({(host, port) for host, port, _versions in self._down})

    def asker(self, tls_versions: Sequence[str]) -> TvsAsker:
        """The ``TvsAsker`` of a phone whose profile speaks ``tls_versions``."""
        versions = tuple(tls_versions)

        async def ask(servers: Sequence[Server], key: QueryKey, *, device_name: str,
                      accept_server: Callable[[bytes | None], bool] | None) -> TvsResult:
            return await self._ask(versions, servers, key, device_name, accept_server)
        return ask

    async def _ask(self, versions: tuple[str, ...], servers: Sequence[ServerAddress], key: QueryKey,
                   device_name: str, accept_server: Callable[[bytes | None], bool] | None) -> TvsResult:
        order = servers_to_try(servers)
        failures: list[str] = []
        last = "unreachable"
        for host, port in order:
            where = (host, port, versions)
            down = self._down.get(where)
            if down is not None:
                failures.append(str(down))
                last = down.kind
                continue
            if where in self._presented and accept_server is not None \
                    and not judge_server(accept_server, host, port, self._presented[where]):
                failures.append(f"{host_port(host, port)}: {SERVER_REFUSED}")  # as when it was connected to
                last = "tls"
                continue
            reply = self._answers.get((where, key))
            if reply is None:
                try:
                    reply = await self._connect(where, key, device_name, accept_server)
                except TransportError as exc:
                    failures.append(str(exc))
                    last = exc.kind
                    continue
            return query_answer(reply)
        raise TransportError(NO_TVS_ANSWER + "; ".join(failures), kind=last)

    async def _connect(self, where: _Where, key: QueryKey, device_name: str,
                       accept_server: Callable[[bytes | None], bool] | None) -> TvsReply:
        """One real QUERY to one server; what it presented and answered is remembered (module rules)."""
        host, port, versions = where
        refused = False

        def judge(der: bytes | None) -> bool:
            nonlocal refused
            self._presented[where] = der
            refused = accept_server is not None and not accept_server(der)
            return not refused

        self.connections += 1
        try:
            reply = await tvs_query([(host, port)], device_name, key.subject, key.issuer, key.serial,
                                    timeout=self.timeout, tls=phone_client_context(versions),
                                    accept_server=judge)
        except TransportError as exc:  # tvs_query's own "no TVS server answered: " said once, by _ask
            one = TransportError(str(exc).removeprefix(NO_TVS_ANSWER), kind=exc.kind)
            if not refused:  # unreachable, TLS failure, garbage: not asked again this run
                self._down[where] = one
            raise one from None
        self._answers[(where, key)] = reply
        return reply
