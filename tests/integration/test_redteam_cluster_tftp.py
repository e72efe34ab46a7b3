"""Red team: the phone's TFTP client against a server that writes novels into its answers (loopback).

One datagram may carry 65,507 bytes; each control character is four once escaped. Before, an ERROR's
message (260,000 characters) and an OACK's unasked option names (70,000) went whole into the failure's
reason, so into the phone's event log and reports: a megabyte of text per boot."""

from __future__ import annotations

import socket
import threading

import pytest

from phoneemu.errors import TransportError
from phoneemu.net.tftp_client import MAX_NAMED_OPTIONS, MAX_QUOTED, tftp_get
from phoneemu.phone.boot import BootTarget
from phoneemu.phone.phone import Phone
from phoneemu.phone.profile import get_profile
from tests.helpers import run
from tests.tftp_helpers import udp_server

_HUGE_MESSAGE = b"\x1b" * 65000  # an escape sequence's start, 65,000 times: "\x1b" once escaped


def _answering(reply: bytes, *, requests: int) -> tuple[int, list[bytes], threading.Event]:
    """A server answering each of at most ``requests`` RRQs with ``reply`` from its own port; it collects
    what the client sends back (bounded: 3 s without a packet ends it)."""

    def serve(s: socket.socket, got: list[bytes]) -> None:
        for _ in range(requests * 2):
            pkt, addr = s.recvfrom(2048)
            got.append(pkt)
            if pkt[:2] == b"\x00\x01":
                s.sendto(reply, addr)

    return udp_server(serve, timeout=3)


@pytest.mark.parametrize(("code", "kind"), [(0, "error"), (1, "not-found"), (2, "refused")])
def test_a_huge_error_message_is_quoted_short_with_its_size(code: int, kind: str) -> None:
    error = b"\x00\x05" + code.to_bytes(2, "big") + _HUGE_MESSAGE + b"\x00"
    port, _got, _done = _answering(error, requests=1)
    with pytest.raises(TransportError) as info:
        run(tftp_get("127.0.0.1", port, "SEP001122334455.cnf.xml", timeout=0.5, retries=1), limit=5.0)
    err = info.value
    assert err.kind == kind and err.code == code
    assert err.message.startswith(f"TFTP error {code}: " + "\\x1b" * MAX_QUOTED + "... (65000 characters)")
    assert len(err.message) < 4 * MAX_QUOTED + 100


def test_a_short_error_message_is_quoted_whole() -> None:
    port, _got, _done = _answering(b"\x00\x05\x00\x02denied \x07here\x00", requests=1)
    with pytest.raises(TransportError) as info:
        run(tftp_get("127.0.0.1", port, "f", timeout=0.5, retries=1), limit=5.0)
    assert info.value.message == "TFTP error 2: denied \\x07here"


def test_an_oack_of_thousands_of_unasked_options_is_refused_naming_a_few() -> None:
    options = b"".join(b"o%d\x001\x00" % i for i in range(8000))
    port, got, done = _answering(b"\x00\x06" + options, requests=1)
    with pytest.raises(TransportError) as info:
        run(tftp_get("127.0.0.1", port, "f", blksize=1024, timeout=0.5, retries=1), limit=5.0)
    err = info.value
    assert err.kind == "protocol" and "bad OACK" in err.message
    assert "options we did not ask for: ['o0', 'o1', 'o10', 'o100', 'o1000', 'o1001', 'o1002', 'o1003'] " \
           f"and {8000 - MAX_NAMED_OPTIONS} more" in err.message
    assert len(err.message) < 400
    done.wait(4)
    assert got[-1][:4] == b"\x00\x05\x00\x08"  # the server is told: option negotiation refused (RFC 2347)


def test_a_long_unasked_option_name_is_cut() -> None:
    port, _got, _done = _answering(b"\x00\x06" + b"x" * 500 + b"\x001\x00", requests=1)
    with pytest.raises(TransportError) as info:
        run(tftp_get("127.0.0.1", port, "f", timeout=0.5, retries=1), limit=5.0)
    assert f"did not ask for: ['{'x' * 40}...']" in info.value.message
    assert len(info.value.message) < 200


def test_a_boot_against_a_server_writing_huge_errors_keeps_a_short_timeline() -> None:
    """Every file the phone asks for is refused with a 65,000-byte message: its event log stays small
    (before: 260,000 characters per failed file, over a megabyte per boot)."""
    port, _got, _done = _answering(b"\x00\x05\x00\x00" + _HUGE_MESSAGE + b"\x00", requests=20)
    phone = Phone(mac="001122334455", profile=get_profile("cp-8861"), flash=None, clock=lambda: 1_700_000_000,
                  fetch_timeout=0.3, fetch_retries=1)
    run(phone.boot(BootTarget(host="127.0.0.1", tftp_port=port, use_http=False)), limit=10.0)
    texts = [f"{e.detail or ''}{e.reason or ''}" for e in phone.events]
    failed = [t for t in texts if "TFTP error 0" in t]
    assert failed, texts  # the phone did meet the server's errors
    assert sum(map(len, texts)) < 10_000
    assert all("... (65000 characters)" in t for t in failed)
