"""A TFTP timeout says what was heard and ignored (phoneemu.net.tftp_client, red team of fleet boot): a
multi-homed server answering from another address than the one asked, or a first answer out of order, is
rightly ignored (RFC 1350 transfer IDs) but was said as "no answer after N retries", which the fleet read
as nothing answering. The text keeps a count and the first one only, and a fleet groups such texts of
different ports and counts as one kind (phoneemu.fleet.alike).
"""

from __future__ import annotations

import re
import socket

import pytest

from phoneemu.errors import TransportError
from phoneemu.fleet.alike import Alike
from phoneemu.net.tftp_client import TftpClientPool, tftp_get
from tests.helpers import run
from tests.tftp_helpers import udp_server

HOST = "127.0.0.1"
OTHER = "127.0.0.2"  # another address of the loopback interface (127.0.0.0/8): the multi-homed server's


def _answering_from(host: str, packet: bytes, *, copies: int = 1) -> tuple[int, int]:
    """A server asked at 127.0.0.1 that answers each RRQ it gets (at most 4) with ``copies`` of ``packet``
    from one socket bound on ``host``; returns (the port asked, the port it answers from)."""
    answer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    answer.bind((host, 0))
    answer_port = int(answer.getsockname()[1])

    def serve(s: socket.socket, got: list[bytes]) -> None:
        with answer:
            for _ in range(4):
                rrq, addr = s.recvfrom(2048)
                got.append(rrq)
                for _copy in range(copies):
                    answer.sendto(packet, addr)

    port, _got, _done = udp_server(serve, timeout=2.0)
    return port, answer_port


def _fails(port: int, via: str) -> TransportError:
    async def go() -> bytes:
        if via == "pool":
            async with TftpClientPool(timeout=0.2, retries=1) as pool:
                return await pool.get(HOST, port, "SEP0A0000000001.cnf.xml")
        return await tftp_get(HOST, port, "SEP0A0000000001.cnf.xml", timeout=0.2, retries=1)

    with pytest.raises(TransportError) as info:
        run(go(), limit=3.0)
    return info.value


@pytest.mark.parametrize("via", ["tftp_get", "pool"])
def test_answers_from_another_address_are_said_with_the_timeout(via: str) -> None:
    """Was: "no answer after 1 retries" — the fleet then asked whether the TFTP server was running."""
    port, answer_port = _answering_from(OTHER, b"\x00\x03\x00\x01hello")
    err = _fails(port, via)
    assert err.kind == "timeout"  # not an answer: the failure and its kind stay those of a timeout
    assert err.message == (f"no answer after 1 retries (2 datagram(s) ignored, the first a reply from "
                           f"{OTHER}:{answer_port}: not {HOST}:{port}, the address asked)"), err.message


@pytest.mark.parametrize("via", ["tftp_get", "pool"])
def test_a_first_answer_out_of_order_is_said_with_the_timeout(via: str) -> None:
    port, answer_port = _answering_from(HOST, b"\x00\x03\x00\x03late")
    err = _fails(port, via)
    assert err.kind == "timeout"
    assert err.message == (f"no answer after 1 retries (2 datagram(s) ignored, the first a reply from "
                           f"{HOST}:{answer_port}: DATA 3 before DATA 1)"), err.message


def test_a_fleet_groups_them_as_one_kind_whatever_their_ports_and_counts() -> None:
    """Ports (the server's transfer IDs), counts and blocks are per-phone numbers: one kind per cause, with
    the ranges, not one kind per phone (the fleet keeps 50)."""
    alike = Alike(("reason",))
    reasons = []
    servers = [(OTHER, b"\x00\x03\x00\x01x", 1), (OTHER, b"\x00\x03\x00\x01x", 2),
               (HOST, b"\x00\x03\x00\x03x", 1), (HOST, b"\x00\x03\x00\x05x", 2)]
    for i, (host, packet, copies) in enumerate(servers):
        port, _answer_port = _answering_from(host, packet, copies=copies)
        err = _fails(port, "tftp_get")
        reasons.append(err.message)
        # the fleet's reason names the server asked (--tftp): the same for every phone
        text = err.message.replace(f"not {HOST}:{port},", f"not {HOST}:69,")
        alike.add(f"0A{i:010X}", {"reason": f"no config could be fetched: {err.kind}: {text}"})
    assert "ignored" in reasons[0] and reasons[0] != reasons[1]  # other counts, other ports
    kinds = alike.kinds()
    assert [k["count"] for k in kinds] == [2, 2], kinds
    assert {k["reason"].split("the first ")[1].split(": ", 1)[1] for k in kinds} == {
        f"not {HOST}:69, the address asked)", "DATA 3-5 before DATA 1)"}, kinds
    # the count, as one number or the range its phones took (2 a phone, 4 with two copies each)
    assert all(re.search(r"\(\d+(-\d+)? datagram\(s\) ignored, the first a reply from \S+:\d+(-\d+)?: ",
                         k["reason"]) for k in kinds), kinds
