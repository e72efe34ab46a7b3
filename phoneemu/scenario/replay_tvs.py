"""The TVS exchanges of a capture, decrypted with its TLS key log, for ``phoneemu replay --keylog``.

Rules (spec §E.1 TLS, §E.2 framing, §E.5/§E.6 QUERY and its answer; *our conventions* marked):

* Every TCP connection of the capture whose client stream starts with a TLS handshake record is
  decrypted with :func:`phoneemu.net.tls_decrypt.decrypt_tls` (TLS 1.0-1.3; the client is the SYN's
  sender, else the side that sent the ClientHello). A connection that cannot be decrypted (no key-log
  entry, an unknown suite, a record that does not decrypt) is listed with the reason.
* Decrypted client data that does not frame as TVS messages (HTTPS, CAPF) is not TVS: counted,
  not an error. Each request is paired with the next response of the same session id; a request
  without one (the connection was cut) has ``response`` None.
* **Our convention** for the offline TVS of a replayed boot: a phone's QUERY is answered with the
  captured answer to a QUERY *of the same phone (the MAC in the device name, ``SEP<MAC>`` or
  ``CP-<model>-SEP<MAC>``), issuer and serial* (DN compared normalised, serial as a number) made
  inside that boot's window (from its first request to the phone's next boot), each captured
  exchange used once, in capture order. A valid answer with a certificate becomes that
  certificate, its roles and TTL; any other status is "not found"; a captured request without an
  answer, or no captured exchange at all, is "unreachable" — unless ``--tvs-cert`` is given,
  which then answers as without a key log.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from phoneemu.errors import DecodeError, TransportError
from phoneemu.net.capture import PcapPacket
from phoneemu.net.tls_decrypt import KeyLog, decrypt_tls
from phoneemu.protocols import tvs
from phoneemu.scenario.replay import MAX_STREAM, Endpoint, tcp_connections

__all__ = ["CapturedTvs", "TvsCapture", "tvs_from_packets"]

_MAX_MESSAGES = 64  # TVS requests of one connection taken (phones send one, §E.7)
_SEP_MAC = re.compile(r"SEP([0-9A-Fa-f]{12})")


def _mac_in(device_name: str) -> str | None:
    m = _SEP_MAC.search(device_name)
    return m.group(1).upper() if m else None


@dataclass(frozen=True, kw_only=True)
class CapturedTvs:
    """One TVS request seen in the capture and the answer it got."""

    start: float
    client: Endpoint
    server: Endpoint
    tls: str
    request: tvs.QueryRequest | tvs.VerifyRequest
    response: tvs.TvsResponse | None

    def describe(self) -> str:
        r = self.request
        if isinstance(r, tvs.QueryRequest):
            what = f"QUERY issuer {r.issuer} serial {r.serial.hex()}"
        else:
            what = f"VERIFY certificate of {len(r.certificate)} bytes"
        if self.response is None:
            answer = "no answer (connection cut)"
        elif self.response.valid:
            answer = f"valid, roles {list(self.response.roles)}, TTL {self.response.ttl}"
        else:
            code = self.response.status
            name = tvs.TvsStatus(code).name if code in tvs.TvsStatus._value2member_map_ else "unknown"
            answer = f"status {code} ({name})"
        return (f"tvs {self.server[0]}:{self.server[1]} {r.device_name}: {what} -> {answer} "
                f"({self.tls})")


@dataclass(frozen=True, kw_only=True)
class TvsCapture:
    """What the key log opened: the TVS exchanges, and the TLS connections it could not."""

    exchanges: tuple[CapturedTvs, ...]
    tls_connections: int
    not_tvs: int
    problems: tuple[str, ...]

    def asker(self, window: Callable[[], tuple[float, float]], fallback: Any = None) -> Any:
        """A :class:`~phoneemu.phone.boot.TvsAsker` answering from the capture (module rules);
        ``window()`` gives the current boot's ``(start, stop)``."""
        from phoneemu.crypto.certs import normalise_dn
        from phoneemu.phone.store import TvsAnswer, TvsStatus

        used: set[int] = set()

        async def ask(servers: Any, key: Any, *, device_name: str, **kw: Any) -> Any:
            start, stop = window()
            mac = _mac_in(device_name)
            issuer, serial = normalise_dn(key.issuer), int.from_bytes(key.serial, "big")
            for i, ex in enumerate(self.exchanges):
                r = ex.request
                if (i in used or not isinstance(r, tvs.QueryRequest) or _mac_in(r.device_name) != mac
                        or not start <= ex.start < stop or normalise_dn(r.issuer) != issuer
                        or int.from_bytes(r.serial, "big") != serial):
                    continue
                used.add(i)
                resp = ex.response
                if resp is None:
                    raise TransportError("captured TVS query got no answer", kind="unreachable")
                if resp.valid and resp.certificate:
                    return TvsAnswer.from_reply(resp.certificate, resp.roles, resp.ttl)
                return TvsStatus.NOT_FOUND
            if fallback is not None:
                return await fallback(servers, key, device_name=device_name, **kw)
            raise TransportError("no such TVS query of this phone in the capture", kind="unreachable")
        return ask


def _messages(data: bytes) -> list[tvs.TvsMessage]:
    decoder = tvs.FrameDecoder()
    msgs = decoder.feed(data)
    if decoder.error is not None:
        raise decoder.error
    return msgs[:_MAX_MESSAGES]


def _pair(requests: Sequence[tvs.TvsMessage], responses: Sequence[tvs.TvsMessage]
          ) -> list[tuple[tvs.QueryRequest | tvs.VerifyRequest, tvs.TvsResponse | None]]:
    left = list(responses)
    out: list[tuple[tvs.QueryRequest | tvs.VerifyRequest, tvs.TvsResponse | None]] = []
    for msg in requests:
        request = tvs.parse_request(msg)
        match = next((m for m in left if m.session_id == msg.session_id), None)
        if match is not None:
            left.remove(match)
        out.append((request, tvs.TvsResponse.from_message(match) if match is not None else None))
    return out


def tvs_from_packets(packets: Iterable[PcapPacket], secrets: KeyLog | dict[bytes, bytes],
                     *, max_stream: int = MAX_STREAM) -> TvsCapture:
    """Decrypt the TLS connections of ``packets`` and collect their TVS exchanges (module rules)."""
    found: list[CapturedTvs] = []
    problems: list[str] = []
    tls = not_tvs = 0
    for conn in tcp_connections(packets, max_stream):
        streams = {end: conn.dirs[end].assemble()[0] for end in conn.ends}
        client = conn.client if conn.client is not None else next(
            (e for e in conn.ends if streams[e][:2] == b"\x16\x03"), None)
        if client is None or streams[client][:2] != b"\x16\x03":
            continue
        tls += 1
        server = conn.ends[1] if conn.ends[0] == client else conn.ends[0]
        where = f"{client[0]}:{client[1]} -> {server[0]}:{server[1]}"
        try:
            plain = decrypt_tls(streams[client], streams[server], secrets)
        except DecodeError as exc:
            problems.append(f"{where}: {exc}")
            continue
        try:
            pairs = _pair(_messages(plain.client_data), _messages(plain.server_data))
        except DecodeError:
            not_tvs += 1  # HTTPS, CAPF or anything else over TLS
            continue
        if not pairs:
            not_tvs += 1
        found += [CapturedTvs(start=conn.start or 0.0, client=client, server=server, tls=plain.description,
                              request=req, response=resp) for req, resp in pairs]
    return TvsCapture(exchanges=tuple(found), tls_connections=tls, not_tvs=not_tvs, problems=tuple(problems))
