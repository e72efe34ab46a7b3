"""``boot`` and ``fleet boot`` against a TFTP server whose replies come from another of its addresses (a
multi-homed server; asked at 127.0.0.1, answering from 127.0.0.2): the client rightly ignores them (RFC
1350 transfer IDs) and the boot fails for want of a config, but the hint said "nothing answered ... is the
cluster's TFTP server running there?" (red team of fleet boot). It now says replies came, the first of
them, and what to do (:func:`phoneemu.commands.boot.nothing_answered_hint`, ``heard``).
"""

from __future__ import annotations

import socket

import pytest

from phoneemu.cli import main
from phoneemu.commands.boot import ignored_heard
from tests.tftp_helpers import udp_server

OTHER = "127.0.0.2"


def _answering_from_other_address(requests: int) -> tuple[int, int]:
    """A server asked at 127.0.0.1 answering each of ``requests`` RRQs with DATA 1 from 127.0.0.2."""
    answer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    answer.bind((OTHER, 0))
    answer_port = int(answer.getsockname()[1])

    def serve(s: socket.socket, got: list[bytes]) -> None:
        with answer:
            for _ in range(requests):
                rrq, addr = s.recvfrom(2048)
                got.append(rrq)
                answer.sendto(b"\x00\x03\x00\x01hello", addr)

    port, _got, _done = udp_server(serve, timeout=3.0)
    return port, answer_port


@pytest.mark.parametrize("command", [["boot", "--mac", "0A0000000F01"],
                                     ["fleet", "boot", "--count", "2", "--mac-start", "0A0000000F10", "-q",
                                      "--shards", "0", "--retries", "1"]])
def test_replies_from_another_address_are_said_not_nothing_answered(
        command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    port, answer_port = _answering_from_other_address(64)
    assert main([*command, "--tftp", f"127.0.0.1:{port}", "--no-http", "--timeout", "0.1"]) == 1
    err = capsys.readouterr().err
    assert "is the cluster's TFTP server running there?" not in err, err
    assert f"no reply at 127.0.0.1 (TFTP port {port}) could be taken, but replies came: the first, a reply " \
           f"from {OTHER}:{answer_port}: not 127.0.0.1:{port}, the address asked. A TFTP reply must come " \
           "from the address asked" in err, err
    assert "ask that one (--tftp ADDRESS)" in err


@pytest.mark.parametrize(("reason", "heard"), [
    ("timeout: no answer after 1 retries (2 datagram(s) ignored, the first a reply from 127.0.0.1:5: DATA 3 "
     "out of order (block 1 awaited))", "a reply from 127.0.0.1:5: DATA 3 out of order (block 1 awaited)"),
    ("timeout: no answer after 1 retries", None),
    ("", None),
])
def test_ignored_heard_reads_the_first_one(reason: str, heard: str | None) -> None:
    assert ignored_heard(reason) == heard


@pytest.mark.parametrize("heard", [
    "a reply from 127.0.0.1:4711: DATA 3 before DATA 1",
    "a reply from 127.0.0.1:4712: another port than the transfer's (ERROR 5 sent)",
])
def test_a_reply_from_the_address_asked_is_not_sent_to_another_address(heard: str) -> None:
    """Review of a8422d0: the first reply ignored came from the address asked, out of order: the hint said
    "a server with several addresses may answer from another: ask that one (--tftp ADDRESS)" of it too."""
    from phoneemu.commands.boot import nothing_answered_hint
    from phoneemu.phone.boot import BootTarget

    hint = nothing_answered_hint(BootTarget(host="127.0.0.1", tftp_port=69, use_http=False), heard=heard)
    assert f"the first, {heard}. A TFTP reply must come from the address asked" in hint, hint
    assert "--tftp ADDRESS" not in hint and "several addresses" not in hint, hint
    assert "came from the address asked, out of turn: check the server" in hint, hint
    other = nothing_answered_hint(BootTarget(host="127.0.0.1", tftp_port=69, use_http=False),
                                  heard="a reply from 127.0.0.2:4711: not 127.0.0.1:69, the address asked")
    assert "ask that one (--tftp ADDRESS)" in other, other
