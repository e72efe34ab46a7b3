"""``fuzz --format sip-response --serve``: a registrar that answers a device under test with mutants
(spec §G.13; the SIP counterpart of serving mutated files over TFTP, :func:`~.targets.serve_session`).

Rules (ours):

* SIP over TCP on ``host:port`` (a phone's ``sipPort``: point its CallManager there, or its config's
  devicePool; TLS is not served — a phone in secure mode checks the registrar's certificate against
  its CTL, §G.5, before it reads a byte).
* Each REGISTER the device sends is answered with the next mutant (the bytes of a ``sip-response``
  input: one or more responses back to back) through the :class:`~.targets.ServeSession` — its name is
  ``REGISTER SEP<MAC>`` (the device the From or ``+sip.instance`` names), so ``--mac`` picks one device;
  the mutant is saved under ``DIR/served/`` and logged in ``requests.jsonl``, a silence after it is a
  finding (``--silent-after``). Past ``--runs`` a REGISTER is answered ``503 Service Unavailable``.
  Another request is answered ``405 Method Not Allowed``; a message that does not parse ends the
  connection (logged).
* A mutant is made an answer to the REGISTER it is served for (:func:`answer_for`; RFC 3261 §8.2.6.2: a
  phone takes a response only of its request's transaction, its Via branch and sent-by, Call-ID and
  CSeq, :func:`phoneemu.phone.sip.exchange` — a seed's own would answer no REGISTER of the device, and
  the campaign test nothing): each of its Via, Call-ID, CSeq, From and To header lines whose value is a
  seed's (the mutation left it alone: its name may be respelled, compact or another case) gets the
  REGISTER's value instead (its Vias, in order, in one line; To with the seed's tag, when the seed's To
  has one and the REGISTER's none); a line whose value the mutation changed, or folded, stays the
  mutant's (a mismatch is what that mutant tests). What is saved under ``DIR/served/`` is what was
  sent, its log entry naming the headers rewritten (``rewritten``); ``--regenerate`` rebuilds the mutant
  as made, before this. Bounded (ours): at most :data:`MAX_REWRITE_GROWTH` bytes added to a mutant.
* Bounded: the messages' own limits (:mod:`phoneemu.protocols.sip`), at most :data:`MAX_CONNECTIONS`
  connections at once, each read for at most ``idle`` seconds between requests; ``allow_peer`` refuses
  other hosts before a byte is read (``--device``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Iterable

from phoneemu.errors import DecodeError, TransportError
from phoneemu.fuzz.targets import ServeSession
from phoneemu.protocols import sip
from phoneemu.values import host_port

__all__ = ["MAX_CONNECTIONS", "MAX_REWRITE_GROWTH", "answer_for", "seed_values", "serve_sip_session"]

MAX_CONNECTIONS = 64
#: the most bytes :func:`answer_for` adds to a mutant (ours: a mutant of many copies of a seed's Via line
#: answering a REGISTER with long Vias stays bounded; the lines past it stay the mutant's)
MAX_REWRITE_GROWTH = 256 * 1024

#: the header names rewritten (compact forms too, RFC 3261 §7.3.3), lower case, to their key
_REWRITTEN = {b"via": "Via", b"v": "Via", b"call-id": "Call-ID", b"i": "Call-ID", b"cseq": "CSeq",
              b"from": "From", b"f": "From", b"to": "To", b"t": "To"}
_LINE_END = re.compile(rb"(\r\n|\n)")


def _header_line(line: bytes) -> tuple[str, bytes] | None:
    """The key (:data:`_REWRITTEN`) and stripped value of a header line rewritten, None for another line."""
    name, sep, value = line.partition(b":")
    key = _REWRITTEN.get(name.strip().lower()) if sep else None
    return (key, value.strip(b" \t")) if key is not None else None


def seed_values(seeds: Iterable[bytes]) -> dict[str, frozenset[bytes]]:
    """The values the ``seeds`` give each header :func:`answer_for` rewrites (by key: ``Via``, ``Call-ID``,
    ``CSeq``, ``From``, ``To``)."""
    values: dict[str, set[bytes]] = {key: set() for key in _REWRITTEN.values()}
    for seed in seeds:
        for line in _LINE_END.split(seed)[0::2]:
            found = _header_line(line)
            if found is not None:
                values[found[0]].add(found[1])
    return {key: frozenset(v) for key, v in values.items()}


def _tag(value: str) -> str | None:
    """The ``tag`` parameter of a From or To value (after its ``<...>``, when it has one)."""
    params = value.rpartition(">")[2] if "<" in value else value
    for param in params.split(";")[1:]:
        name, _, tag = param.partition("=")
        if name.strip().lower() == "tag":
            return tag.strip()
    return None


def answer_for(mutant: bytes, register: sip.SipMessage,
               seeds: dict[str, frozenset[bytes]]) -> tuple[bytes, list[str]]:
    """``mutant`` as the answer to ``register`` (module docstring): its Via, Call-ID, CSeq, From and To
    lines whose value is one of the ``seeds``' (:func:`seed_values`) carry the REGISTER's instead; and the
    headers rewritten, in the order first met."""
    vias = [v for k, v in register.headers if k.lower() in ("via", "v")]
    mine = {"Via": ", ".join(vias) if vias else None, "Call-ID": register.header("call-id"),
            "CSeq": register.header("cseq"), "From": register.header("from"), "To": register.header("to")}
    parts = _LINE_END.split(mutant)  # lines and their ends, alternately
    rewritten: list[str] = []
    growth = 0
    for i in range(0, len(parts), 2):
        found = _header_line(parts[i])
        if found is None or found[1] not in seeds.get(found[0], ()):
            continue
        key, value = found
        if i + 2 < len(parts) and parts[i + 2][:1] in (b" ", b"\t"):
            continue  # folded onto the next line: the mutation changed it
        new = mine[key]
        if new is None:
            continue
        if key == "To" and _tag(new) is None and (tag := _tag(value.decode("utf-8", "replace"))) is not None:
            new = f"{new};tag={tag}"
        line = parts[i]
        start = line.index(b":") + 1
        start += len(line[start:]) - len(line[start:].lstrip(b" \t"))
        end = len(line.rstrip(b" \t"))
        replaced = line[:start] + new.encode("utf-8") + line[end:]
        growth += len(replaced) - len(line)
        if growth > MAX_REWRITE_GROWTH:
            break
        parts[i] = replaced
        if key not in rewritten:
            rewritten.append(key)
    return b"".join(parts), rewritten


async def serve_sip_session(session: ServeSession, *, host: str = "127.0.0.1", port: int = 5060,
                            time_limit: float | None = None, ready: Callable[[int], None] | None = None,
                            on_silence: Callable[[dict[str, object]], None] | None = None,
                            allow_peer: Callable[[str], bool] | None = None, idle: float = 30.0,
                            seeds: Iterable[bytes] | None = None) -> None:
    """Answer the device's REGISTERs with mutants (module rules) until ``session`` is exhausted (and,
    with ``silent_after``, the last mutant watched) or time runs out. ``seeds``: the corpus the mutants
    are made from, whose header values :func:`answer_for` rewrites (default: the built-in seeds)."""
    if seeds is None:
        from phoneemu.fuzz.sipmsg import sip_seeds

        seeds = [data for _name, data in sip_seeds("sip-response")]
    values = seed_values(seeds)
    open_connections: set[asyncio.Task[None]] = set()
    make = session.make
    answering: list[sip.SipMessage] = []  # the REGISTER being answered, while session.get makes its mutant

    def make_answer(index: int, name: str) -> tuple[bytes, dict[str, object]]:
        data, meta = make(index, name)
        data, rewritten = answer_for(data, answering[-1], values)
        return data, {**meta, "rewritten": rewritten}

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = host_port(peername[0], peername[1]) if peername else "?"
        task = asyncio.current_task()
        if (allow_peer is not None and peername and not allow_peer(str(peername[0]))) \
                or len(open_connections) >= MAX_CONNECTIONS:
            writer.close()
            return
        if task is not None:
            open_connections.add(task)
        stream = sip.SipStream()
        try:
            while True:
                msg = stream.next()
                if msg is None:
                    chunk = await asyncio.wait_for(reader.read(4096), idle)
                    if not chunk:
                        return
                    stream.feed(chunk)
                    continue
                if msg.method != "REGISTER":
                    writer.write(sip.response_to(msg, 405, "Method Not Allowed"))
                    await writer.drain()
                    continue
                mac = sip.device_mac(msg)
                name = f"REGISTER SEP{mac}" if mac else "REGISTER"
                session.on_sip(peer, name)
                answering.append(msg)
                try:
                    data = session.get(name)  # made by make_answer: saved as sent
                finally:
                    answering.pop()
                writer.write(data if data is not None else sip.response_to(msg, 503, "Service Unavailable"))
                await writer.drain()
        except DecodeError as exc:
            session.on_sip(peer, "?", f"malformed: {exc}")
        except (TimeoutError, ConnectionError, OSError):
            return
        except asyncio.CancelledError:  # the session is over: this connection ends here, quietly
            return
        finally:
            if task is not None:
                open_connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    try:
        server = await asyncio.start_server(connection, host, port)
    except OSError as exc:
        raise TransportError(f"cannot listen for sip on {host_port(host, port)}: {exc.strerror or exc}",
                             kind="unreachable") from None
    session.make = make_answer
    try:
        async with server:
            if ready is not None:
                ready(int(server.sockets[0].getsockname()[1]))
            await session.watch(time_limit=time_limit, on_silence=on_silence)
            for task in list(open_connections):
                task.cancel()
    finally:
        session.make = make
