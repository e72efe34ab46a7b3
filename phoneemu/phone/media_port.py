"""A phone's RTP port during a call: what it sends, and what it counts of what comes (spec §G.14, RFC 3711).

Rules: only datagrams from the far end's address and port (its SDP) are taken; over SRTP a packet counts
as authenticated only when its tag verifies (:class:`phoneemu.crypto.srtp.SrtpContext`, replay window),
over RTP when it parses; a refused packet is counted with the first reason. Nothing is kept but the
counts. The phone waits until as many packets as it expects came, at most :data:`MEDIA_WAIT` seconds.
It sends its own at once (ours), or in real time, one every 20 ms (``pace``: for a real phone at the far
end, whose jitter buffer expects that cadence).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from phoneemu.crypto import srtp
from phoneemu.errors import DecodeError
from phoneemu.protocols import rtp

__all__ = ["MEDIA_WAIT", "Received", "RtpPort", "send_tone"]

#: seconds the phone waits for the far end's packets (ours)
MEDIA_WAIT = 5.0


@dataclass(kw_only=True, slots=True)
class Received:
    """What came to the phone's RTP port from the far end (counted, not kept)."""

    source: tuple[str, int] | None = None
    context: srtp.SrtpContext | None = None
    received: int = 0
    authenticated: int = 0
    refused: int = 0
    refusal: str = ""
    enough: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def take(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.source is None or (addr[0], addr[1]) != self.source:
            return
        self.received += 1
        try:
            if self.context is not None:
                self.context.unprotect(data)
                self.authenticated += 1
            else:
                rtp.parse_rtp(data)
        except DecodeError as exc:
            self.refused += 1
            self.refusal = self.refusal or exc.message
        if self.received >= self.enough:
            self.done.set()


class RtpPort(asyncio.DatagramProtocol):
    """The datagram protocol of the port: every datagram to :meth:`Received.take`."""

    def __init__(self, received: Received) -> None:
        self.received = received

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.take(data, addr)


async def send_tone(transport: asyncio.DatagramTransport, send: srtp.SrtpContext | None,
                    to: tuple[str, int], packets: int, *, pace: float = 0.0) -> int:
    """``packets`` 20 ms tone packets to ``to``, SRTP-protected with ``send`` (None: RTP), ``pace`` seconds
    apart (0: at once, our default; 0.02: in real time, as a phone sends them); how many."""
    for n, packet in enumerate(rtp.tone_packets(packets)):
        if pace and n:
            await asyncio.sleep(pace)
        transport.sendto(send.protect(packet) if send is not None else packet, to)
    return packets
