"""What ``phoneemu boot`` tells of the phone's downloads besides its timeline (ours, spec §H.1):

* over which transport and port each request was answered — a cp-8861 asks HTTP 6970 first and TFTP
  only when HTTP fails, so a ``--tftp`` port nobody listens on went unseen while HTTP answered every
  file (the boot said nothing of the port it was given). A request HTTP failed and TFTP was then asked
  for is a request of each (answered over HTTP when its failure was an answer: as the boot's
  ``answered``), so an ``--http-port`` nobody listens on shows beside an answering TFTP too;
* a request still unanswered after :data:`SLOW_S` seconds, once per request (a TFTP server that does
  not answer costs 4 tries of ``--timeout`` a file: the boot printed nothing for 40 s) — or, when the
  fetcher counts the bytes of the file under way (``bytes_so_far()``, read once, at that moment: nothing
  per block) and some have come, that the file is still downloading, with its bytes so far over the
  transport under way (the fetcher's ``asking``: HTTP, or TFTP once it fell back; a large firmware over
  TFTP, then one over HTTP, was said as if its server were silent);
* the request under way when the boot is interrupted (Ctrl-C said only "interrupted");
* a note when HTTP answered none of its requests and TFTP answered
  (:meth:`WatchedFetcher.http_unanswered_note`): a wrong ``--http-port`` — or, when the HTTP server did
  respond and its bodies were cut (:class:`~phoneemu.net.http.HttpTimeoutError`), what cut them: the cap
  on a whole download (a slow link: a longer ``--fetch-max-time``) or ``--timeout``, the wait for more of
  a body that stopped coming (a stalling server or link: a longer ``--timeout``); was told to try another
  port. So is a cap that cut requests before any response came (a ``--fetch-max-time`` shorter than
  ``--timeout``: was told a wrong port).

:class:`WatchedFetcher` wraps the fetcher the phone boots through; every attribute the boot reads of
a fetcher (``transport``, ``last_fallback``, ``retransmits``, ``http``, ``bytes_so_far``, ``asking``) is
the wrapped one's.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from phoneemu.errors import TransportError
from phoneemu.values import host_port

__all__ = ["SLOW_S", "Ports", "WatchedFetcher"]

#: seconds a request waits before the boot says it is still waiting (ours)
SLOW_S = 5.0
#: transport failures that are no answer from the cluster (as the boot's ``answered``)
_NO_ANSWER = frozenset({"timeout", "unreachable"})
_NAMES = {"http": "HTTP", "tftp": "TFTP"}


@dataclass(frozen=True)
class Ports:
    """Where the phone was pointed: the host as given and its TFTP and HTTP ports (HTTP None: not tried,
    ``--no-http`` or a TFTP-only model)."""

    host: str
    tftp: int
    http: int | None

    def address(self, transport: str) -> str:
        """``127.0.0.1:6970`` / ``[::1]:69``: where ``transport`` ("http", "tftp") was asked."""
        return host_port(self.host, self.http if transport == "http" else self.tftp)

    def of(self, transport: str) -> str:
        """``HTTP 127.0.0.1:6970`` / ``TFTP [::1]:69``."""
        return f"{_NAMES.get(transport, transport)} {self.address(transport)}"

    def asked(self) -> str:
        """Those asked, as :meth:`of` writes them (``HTTP ... or TFTP ...``; TFTP alone without HTTP)."""
        return " or ".join(self.of(t) for t in (("http", "tftp") if self.http else ("tftp",)))


class WatchedFetcher:
    """``inner`` counted per transport (requests, answers) and watched while a request is under way."""

    def __init__(self, inner: Any, ports: Ports, *, tell: Callable[[str], None],
                 slow_s: float = SLOW_S) -> None:
        self._inner = inner
        self._ports = ports
        self._tell = tell
        self._slow_s = slow_s
        self.requests: Counter[str] = Counter()  # per transport: a request that fell back counts on both
        self.answers: Counter[str] = Counter()
        self.finished = 0  # requests answered or failed (one each, whichever transports it asked)
        self.http_cut = 0  # HTTP responses --timeout cut, their body stopped coming for that long
        self.http_capped = 0  # HTTP responses the whole-download cap (--fetch-max-time) cut, still coming
        self.http_capped_early = 0  # HTTP requests that cap cut before any response (before --timeout did)
        self.pending: tuple[str, float] | None = None  # the name under way and when it was asked

    def __getattr__(self, name: str) -> Any:  # what the boot reads of a fetcher: the wrapped one's
        return getattr(self._inner, name)

    async def fetch(self, name: str) -> bytes:
        import asyncio  # imported where a boot runs (the CLI's start-up: tests/unit/test_cli_startup.py)

        self.pending = (name, time.monotonic())
        slow = asyncio.get_running_loop().call_later(self._slow_s, self._still_waiting, name)
        try:
            data: bytes = await self._inner.fetch(name)
        except Exception as exc:  # a cancellation (Ctrl-C) keeps ``pending``: what the boot was waiting for
            self.pending = None
            silent = isinstance(exc, TransportError) and exc.kind in _NO_ANSWER
            no_answer = silent or isinstance(exc, OSError)
            self._count(not no_answer)  # as the boot's ``answered``: a malformed reply is an answer
            raise
        finally:
            slow.cancel()
        self.pending = None
        self._count(True)
        return data

    def _count(self, answered: bool) -> None:
        """The request just finished, on the transports it asked: HTTP first (when the phone asks it),
        TFTP when HTTP failed (the fetcher's ``last_fallback``, spec §H.1) or HTTP is not asked; was only
        the last transport, so a request HTTP failed counted on TFTP alone."""
        self.finished += 1
        if self._ports.http is None:  # TFTP only (--no-http, a TFTP-only model)
            self._counted(str(getattr(self._inner, "transport", "") or "tftp"), answered)
            return
        fell_back: TransportError | None = getattr(self._inner, "last_fallback", None)
        if fell_back is None:
            self._counted("http", answered)
            return
        self._counted("http", fell_back.kind not in _NO_ANSWER)
        capped = bool(getattr(fell_back, "capped", False))  # http.HttpTimeoutError's
        if getattr(fell_back, "responded", False):
            self.http_capped += capped
            self.http_cut += not capped
        else:
            self.http_capped_early += capped
        self._counted("tftp", answered)

    def _counted(self, transport: str, answered: bool) -> None:
        self.requests[transport] += 1
        self.answers[transport] += answered

    def _still_waiting(self, name: str) -> None:
        """Said once, :data:`SLOW_S` after ``name`` was asked: downloading when bytes of it have come, else
        waiting for an answer."""
        received = self._bytes_so_far()
        if received:
            self._tell(f"still downloading {name} after {self._slow_s:g} s: {received} bytes so far over "
                       f"{self._ports.of(self._asking())} (Ctrl-C stops)")
            return
        self._tell(f"still waiting for {name} after {self._slow_s:g} s, asked of {self._ports.asked()}: a "
                   "server that does not answer costs each file its tries of --timeout (Ctrl-C stops)")

    def _asking(self) -> str:
        """The transport of the file under way: the wrapped fetcher's ``asking`` when it says, else its
        ``transport``, else "tftp"."""
        asking = getattr(self._inner, "asking", "") or getattr(self._inner, "transport", "")
        return asking if asking in _NAMES else "tftp"

    def _bytes_so_far(self) -> int | None:
        """The bytes of the file under way the wrapped fetcher has received (its ``bytes_so_far()``; None
        when it does not count them): TFTP transfers, and HTTP responses' bodies
        (:mod:`phoneemu.net.fetch`)."""
        count = getattr(self._inner, "bytes_so_far", None)
        if not callable(count):
            return None
        received = count()
        return received if isinstance(received, int) else None

    def interrupted_text(self) -> str | None:
        """What the boot was doing when interrupted (None: between requests)."""
        if self.pending is None:
            return None
        name, since = self.pending
        return (f"interrupted while waiting {time.monotonic() - since:.0f} s for {name} from "
                f"{self._ports.asked()} ({self.finished} request(s) answered or failed before it)")

    def summary(self) -> str | None:
        """The ``files:`` line under the boot's summary: the requests each transport answered, and a
        TFTP port HTTP kept the phone from asking (None before any request)."""
        if not self.requests:
            return None
        parts = [f"{self.answers[t]} of {self.requests[t]} request(s) answered over {self._ports.of(t)}"
                 for t in ("http", "tftp") if self.requests[t]]
        text = "; ".join(parts)
        every_http = 0 < self.answers["http"] == self.requests["http"]
        if self._ports.http and not self.requests["tftp"] and every_http:
            text += (f"; {self._ports.of('tftp')} not asked (HTTP answered every request; --no-http tries "
                     "TFTP alone)")
        return text

    def http_unanswered_note(self) -> str | None:
        """A note under :meth:`summary` when HTTP answered none of its requests and TFTP answered some: each
        file was asked of TFTP after HTTP failed; what to try. When the HTTP server responded and its bodies
        were cut (:attr:`http_capped`, :attr:`http_cut`), or the cap cut a request before any response
        (:attr:`http_capped_early`, a ``--fetch-max-time`` below ``--timeout``), what cut them and the
        option that gives more time (was told a wrong port); else a wrong ``--http-port``, a lab served on
        another one, a firewall closing TCP 6970. None otherwise."""
        http_failed_all = self.requests["http"] and not self.answers["http"]
        if not self._ports.http or not http_failed_all or not self.answers["tftp"]:
            return None
        none = f"{self._ports.of('http')} answered none of {self.requests['http']} request(s)"
        if self.http_capped or self.http_cut or self.http_capped_early:
            return f"{none} in time: {self._cut_text()}"
        return (f"{none}, so each file was asked of TFTP after it failed: CUCM serves files on TCP 6970 "
                "(spec §H.1); another port: --http-port N; TFTP alone: --no-http")

    def _cut_text(self) -> str:
        """What cut the HTTP responses and what to try, for :meth:`http_unanswered_note`."""
        cuts, tries = [], []
        if self.http_capped_early:  # was: the note for a wrong port, the cap left unsaid
            cuts.append(f"--fetch-max-time cut {self.http_capped_early} request(s) before any response")
            tries.append("the cap counts the connection and the wait for a response too (it came before "
                         "--timeout did): a longer --fetch-max-time S")
        if self.http_capped:
            cuts.append(f"--fetch-max-time cut {self.http_capped} response(s) with the body still coming")
            tries.append("a slow link needs a longer --fetch-max-time S (it caps one download as a whole)")
        if self.http_cut:
            cuts.append(f"--timeout cut {self.http_cut} response(s) whose body stopped coming")
            tries.append("a stalling server or link needs a longer --timeout S (it bounds each wait for "
                         "more of the body)")
        return f"{' and '.join(cuts)}, so each file was asked of TFTP after it: {'; '.join(tries)}"

    def as_dict(self) -> dict[str, Any]:
        """The JSON of :meth:`summary`: per transport its address, requests and answers."""
        return {t: {"address": self._ports.address(t), "requests": self.requests[t],
                    "answered": self.answers[t]}
                for t in ("http", "tftp") if t == "tftp" or self._ports.http}
