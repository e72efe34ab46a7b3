"""Helpers shared by the ``replay`` tests: for ``replay --keylog`` (:mod:`phoneemu.scenario.replay_tvs`, spec
§E.1) synthetic captured TVS connections, a stand-in phone whose boot asks TVS between its fetches, and a
catalogue capture with a refused TVS server put ahead of the phone's own; for captures written by a test, a
phone's TFTP read (:func:`captured_tftp_read`)."""

from __future__ import annotations

import contextlib
import dataclasses
import struct
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import pytest

from phoneemu.errors import TransportError
from phoneemu.formats.config import Server
from phoneemu.net.capture import PcapWriter
from phoneemu.net.tftp_codec import Data, Error, ReadRequest, encode
from phoneemu.net.tls_decrypt import parse_keylog
from phoneemu.phone.events import QueryKey
from phoneemu.protocols import tvs
from phoneemu.scenario.replay_tvs import CapturedCert, CapturedTvs, CaptureScan, TvsCapture, scan_capture

#: the address the synthetic connections come from (port 40000 + their rank)
PHONE_IP = "10.1.0.9"
Endpoint = tuple[str, int]


# --------------------------------------------------------------------------- synthetic captures
def query_exchange(server: Endpoint, order: int, *, device: str, key: QueryKey,
                   response: tvs.TvsResponse | None, certificate: bytes | None = None) -> CapturedTvs:
    """``device``'s QUERY about ``key`` to ``server``, ranked (and started at) ``order``, answered with
    ``response`` (None: cut before an answer), ``server`` having presented ``certificate``."""
    request = tvs.QueryRequest(session_id=order, device_name=device, subject=key.subject, issuer=key.issuer,
                               serial=key.serial)
    return CapturedTvs(start=float(order), client=(PHONE_IP, 40000 + order), server=server, tls="TLSv1.2",
                       request=request, response=response, order=order, certificate=certificate)


def shown_certificate(server: Endpoint, cert: bytes, order: int) -> CapturedCert:
    """A connection ranked ``order`` without a request, ``server`` presenting ``cert``."""
    return CapturedCert(start=float(order), client=(PHONE_IP, 40000 + order), server=server, certificate=cert,
                        order=order)


def tvs_capture(exchanges: tuple[CapturedTvs, ...] = (), shown: tuple[CapturedCert, ...] = ()) -> TvsCapture:
    """What the key log opened: ``exchanges``, and ``shown`` (connections without a request)."""
    return TvsCapture(exchanges=exchanges, tls_connections=len(exchanges) + len(shown), not_tvs=len(shown),
                      problems=(), presented=shown)


def captured_tftp_read(w: PcapWriter, name: str, data: bytes | None, client: int, *,
                       phone: str = "127.0.0.1", server: str = "127.0.0.12") -> None:
    """One TFTP read of ``name`` by ``phone`` from UDP port ``client``, written to ``w``: the RRQ to
    ``server``:69, then DATA of 512-byte blocks from port ``client + 10000``, each ACKed (``data`` None:
    ERROR 1, file not found)."""
    c, s = (phone, client), (server, client + 10000)
    w.udp(c, (server, 69), encode(ReadRequest(filename=name, options={})))
    if data is None:
        w.udp(s, c, encode(Error(code=1, message="File not found")))
        return
    for n, at in enumerate(range(0, len(data) + 1, 512), 1):
        w.udp(s, c, encode(Data(block=n, data=data[at:at + 512])))
        w.udp(c, s, struct.pack("!HH", 4, n))


# --------------------------------------------------------------------------- a stand-in phone
class AskingPhone:
    """A stand-in for :class:`~phoneemu.phone.phone.Phone` whose boot fetches each name of ``plan`` and
    asks TVS (``servers``) about ``key`` as ``device`` where the plan says ``"?"`` (the replayed phone's
    order of things): the report is the list of answers (a TvsAnswer, a TvsStatus or the TransportError's
    kind). A test module subclasses it with its ``servers``, ``key`` and ``device``."""

    plan: tuple[str, ...] = ()
    servers: tuple[Server, ...] = ()
    key: QueryKey
    device: str

    def __init__(self, **kw: Any) -> None:
        self.tvs = kw["tvs"]

    async def boot(self, _target: Any, *, fetcher: Any) -> list[Any]:
        answers: list[Any] = []
        for step in self.plan:
            if step != "?":
                with contextlib.suppress(TransportError):  # a failed fetch: the boot goes on
                    await fetcher.fetch(step)
                continue
            try:
                answers.append(await self.tvs(self.servers, self.key, device_name=self.device,
                                              accept_server=None))
            except TransportError as exc:
                answers.append(exc.kind)
        return answers


PhoneClass = TypeVar("PhoneClass", bound=type[AskingPhone])


def stand_in_phone(monkeypatch: pytest.MonkeyPatch, phone: PhoneClass) -> PhoneClass:
    """``phone`` booted in place of :class:`~phoneemu.phone.phone.Phone` (for the test); returned."""
    import phoneemu.phone.phone

    monkeypatch.setattr(phoneemu.phone.phone, "Phone", phone)
    return phone


# --------------------------------------------------------------------------- a catalogue capture
#: boot 2 of this catalogue capture: TVS vouches, the ITL updated
VIA_TVS_PCAP = Path(__file__).resolve().parents[1] / "captures" / "callmanager-regenerated-via-tvs.pcap"
VIA_TVS_PHONE = "0A0000000301"
#: a TVS server ahead of the phone's own whose certificate it refuses
REFUSING = ("127.0.0.99", 2445)
#: the certificate :data:`REFUSING` presents
NOT_IN_ITL = b"a TVS the ITL does not name"
#: the note a boot makes of a TVS server it refused (phone/boot.py), its HOST:PORT to fill in
REFUSAL_NOTE = "TVS server {} certificate is not an ITL TVS record: not used (spec E.1)"


@cache
def via_tvs_scan() -> CaptureScan:
    """:data:`VIA_TVS_PCAP` scanned for :data:`VIA_TVS_PHONE` with its key log."""
    keys = parse_keylog(VIA_TVS_PCAP.with_suffix(".keys").read_text())
    return scan_capture(VIA_TVS_PCAP, mac=VIA_TVS_PHONE, secrets=keys)


class RefusedFirst:
    """``capture`` with a connection to :data:`REFUSING` (:data:`NOT_IN_ITL`, no QUERY) just before
    :data:`VIA_TVS_PHONE`'s QUERY (cut before its answer, with ``cut``); the phone's config names
    :data:`REFUSING` first. Asked as a :class:`TvsCapture` is (``asker``)."""

    def __init__(self, capture: TvsCapture, *, cut: bool = False) -> None:
        (asked,) = [ex for ex in capture.exchanges if ex.mac == VIA_TVS_PHONE]
        refused = CapturedCert(start=asked.start, client=asked.client, server=REFUSING,
                               certificate=NOT_IN_ITL, order=asked.order - 1)
        exchanges = capture.exchanges
        if cut:
            others = tuple(ex for ex in exchanges if ex is not asked)
            exchanges = (dataclasses.replace(asked, response=None), *others)
        self.capture = dataclasses.replace(capture, exchanges=exchanges,
                                           presented=(*capture.presented, refused))

    def asker(self, *args: Any, **kwargs: Any) -> Any:
        ask = self.capture.asker(*args, **kwargs)

        async def refused_first(servers: Any, key: Any, **kw: Any) -> Any:
            return await ask((Server(host=REFUSING[0], port=REFUSING[1], priority=0), *servers), key, **kw)
        return refused_first
