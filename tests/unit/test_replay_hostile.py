"""replay on hostile captures: nothing of the capture reaches the terminal raw (its control characters
and escape sequences are printed escaped), and TCP reassembly stays linear in the segments it holds."""

from __future__ import annotations

import sys
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.net.capture import SYN, PcapPacket, PcapWriter, TcpFlow
from phoneemu.protocols import tvs
from phoneemu.scenario._capture_flows import _Stream
from phoneemu.scenario.replay_tvs import CapturedTvs

MAC = "0A0000000001"
RAW = ("\x1b", "\x07", "\x9b", "\x8e", "\r")  # ESC, BEL, CSI and SS2 (C1), CR: none may be printed raw


def _rrq(name: bytes) -> bytes:
    return b"\x00\x01" + name + b"\0octet\0"


def _sip(start: bytes, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> bytes:
    head = b"".join(k + b": " + v + b"\r\n" for k, v in headers)
    return start + b"\r\n" + head + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body


def _hostile_capture(path: Path) -> Path:
    """A phone's boot whose names, TFTP errors, HTTP status line and SIP URIs carry escape sequences."""
    server = "10.0.0.1"
    with PcapWriter(path) as w:
        c1 = ("10.0.0.2", 50000)
        w.udp(c1, (server, 69), _rrq(b"CTLSEP" + MAC.encode() + b".tlv"), ts=1.0)
        w.udp((server, 40000), c1, b"\x00\x05\x00\x01\x1b[31mnot found\x1b[0m\r\0", ts=1.1)
        c2 = ("10.0.0.2", 50001)
        w.udp(c2, (server, 69), _rrq(b"ITLFile.tlv\x1b[2J\x1b]0;title\x07"), ts=1.2)
        w.udp((server, 40001), c2, b"\x00\x03\x00\x01" + b"A" * 512, ts=1.3)
        w.udp(c2, (server, 40001), b"\x00\x05\x00\x00\x1b[5mclient abort\x1b[0m\0", ts=1.4)
        web = TcpFlow(w, ("10.0.0.2", 50100), (server, 6970))
        web.client_data(b"GET /SEP" + MAC.encode() + b".cnf.xml HTTP/1.1\r\nHost: x\r\n\r\n", ts=2.0)
        web.server_data(b"HTTP/1.1 500 \x1b[2JBad\x8e\x1b]0;t\x07\r\nContent-Length: 0\r\n\r\n", ts=2.1)
        web.close(ts=2.2)
        web2 = TcpFlow(w, ("10.0.0.2", 50101), (server, 6970))
        web2.client_data(b"GET /XmlDefault%1b%5b2J%0d%c2%9b.cnf.xml HTTP/1.1\r\n\r\n", ts=2.3)
        web2.server_data(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", ts=2.4)
        web2.close(ts=2.5)
        sip = TcpFlow(w, ("10.0.0.2", 50200), (server, 5060))
        sender = (b"From", b"<sip:SEP" + MAC.encode() + b"@10.0.0.1>;tag=1")
        sip.client_data(_sip(b"REGISTER sip:10.0.0.1 SIP/2.0", [sender, (b"CSeq", b"1 REGISTER")]), ts=3.0)
        sip.server_data(_sip(b"SIP/2.0 200 OK", [(b"CSeq", b"1 REGISTER")]), ts=3.1)
        sdp = (b"v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n"
               b"m=audio 4000 RTP/AVP 0\r\n")
        typed = (b"Content-Type", b"application/sdp")
        # (a C0 control in the Request-URI makes the INVITE malformed: refused, never shown; a C1 one, CSI
        # to an 8-bit terminal, is a character SIP allows: shown escaped)
        invite = "INVITE sip:\u009b2J\u009b]0;pwn@x SIP/2.0".encode()
        sip.client_data(_sip(invite, [sender, (b"CSeq", b"2 INVITE"), typed], sdp), ts=3.2)
        sip.server_data(_sip(b"SIP/2.0 200 OK", [(b"CSeq", b"2 INVITE"), typed], sdp), ts=3.3)
        sip.server_data(_sip(b"INVITE sip:phone@x SIP/2.0", [(b"From", "<sip:\u009b31mevil>".encode()),
                                                              (b"CSeq", b"9 INVITE"), typed], sdp), ts=3.4)
        sip.close(ts=3.5)
    return path


@pytest.mark.parametrize("mode", [["--list"], ["--mac", MAC], ["--list", "--mac", MAC], ["--all"]])
def test_capture_text_reaches_the_terminal_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   mode: list[str]) -> None:
    capture = _hostile_capture(tmp_path / "hostile.pcap")
    main(["replay", str(capture), *mode])
    out, err = capsys.readouterr()
    for text in (out, err):
        assert not [c for c in RAW if c in text], text
    if mode[0] == "--list":
        assert "ITLFile.tlv\\x1b[2J\\x1b]0;title\\x07" in out  # the name, escaped
        assert "client aborted: TFTP error 0: \\x1b[5mclient abort" in out
        assert "HTTP 500 \\x1b[2JBad\\x8e" in out
    elif mode[0] == "--mac":
        assert "captured outcome: error HTTP 500 \\x1b[2JBad" in out
        assert "call sip:\\u009b2J\\u009b]0;pwn@x" in out  # the character U+009B (CSI), not a byte
        assert "call from sip:\\u009b31mevil (received)" in out


def test_captured_tvs_exchange_describes_its_fields_escaped() -> None:
    req = tvs.QueryRequest(session_id=1, device_name="SEP0A0000000001\x1b[2J", subject="CN=x",
                           issuer="CN=\x1b]0;evil\x07", serial=b"\x01")
    text = CapturedTvs(start=0.0, client=("10.0.0.2", 1), server=("10.0.0.1", 2445), tls="TLSv1.2",
                       request=req, response=None).describe()
    assert "\x1b" not in text and "\x07" not in text
    assert "SEP0A0000000001\\x1b[2J: QUERY issuer CN=\\x1b]0;evil\\x07" in text


def _segment(seq: int, payload: bytes, flags: int = 0x18) -> PcapPacket:
    return PcapPacket(ts=1.0, proto="tcp", src="10.0.0.2", dst="10.0.0.1", sport=5, dport=6970,
                      payload=payload, seq=seq, flags=flags)


def _python_calls(run: Any) -> int:
    """How many Python functions ``run()`` calls (a work count, not a time: no timed assertions)."""
    calls = [0]

    def count(_frame: FrameType, event: str, _arg: object) -> None:
        if event == "call":
            calls[0] += 1
    sys.setprofile(count)
    try:
        run()
    finally:
        sys.setprofile(None)
    return calls[0]


def test_out_of_order_segments_are_reassembled_in_linear_work() -> None:
    """Each in-order segment used to sort every segment waiting (quadratic: minutes for a 12 MB capture
    of one-byte segments); the waiting ones are a heap, ties in arrival order."""
    got = bytearray()
    stream = _Stream(lambda _n: None)
    stream.sink = lambda _at, _ts, piece: got.extend(piece)
    stream.add(_segment(0, b"", SYN), 1 << 30, lambda: "flow", lambda _t: None)
    waiting, in_order = 2000, 3000
    for i in reversed(range(waiting)):  # far ahead, newest first; a second copy of the first loses
        stream.add(_segment(1 + in_order + 2 * i, b"A"), 1 << 30, lambda: "flow", lambda _t: None)
    stream.add(_segment(1 + in_order, b"Z"), 1 << 30, lambda: "flow", lambda _t: None)

    def feed() -> None:
        for i in range(in_order):
            stream.add(_segment(1 + i, b"B"), 1 << 30, lambda: "flow", lambda _t: None)
    calls = _python_calls(feed)
    assert bytes(got) == b"B" * in_order + b"A"  # then the gap at the next offset
    assert calls < 50 * in_order, calls  # a sort per segment: millions of key calls
    assert stream.pending_bytes == len(stream.pending) == waiting - 1  # the "Z" copy was dropped


def test_predict_note_names_a_given_file_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file given by name that the phone never asks for is named in a note: escaped, never raw."""
    itl = Path(__file__).parent.parent / "vectors" / "itl_lab.tlv"
    stray = tmp_path / "SEP0A0000000002.cnf.xml\x1b[2J\x1b]0;title\x07"
    stray.write_bytes(b"not a config")
    main(["predict", "--installed-itl", str(itl), str(stray)])
    out, _err = capsys.readouterr()
    assert not [c for c in RAW if c in out], out
    assert "note: SEP0A0000000002.cnf.xml\\x1b[2J\\x1b]0;title\\x07 given but never asked for" in out


def test_wireshark_print_quotes_a_capture_name_with_escapes(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """The printed tshark command names the capture as bash's $'...' (still runs as printed), never raw."""
    capture = _hostile_capture(tmp_path / "t\x1b[2J\x07'.pcap")
    assert main(["wireshark", str(capture), "--print"]) == 0
    out, _err = capsys.readouterr()
    assert not [c for c in RAW if c in out], out
    assert f"-r $'{tmp_path}/t\\x1b[2J\\x07\\'.pcap'" in out


def test_predict_fleet_names_entries_and_files_escaped(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """--fleet-flash: a skipped entry and a given file no phone asked for are named escaped, never raw."""
    capture = _hostile_capture(tmp_path / "hostile.pcap")
    fleet = tmp_path / "fleet"
    main(["replay", str(capture), "--all", "--export-flash", str(fleet)])
    (fleet / "0A0000000009\x1b[2J").mkdir()  # not a phone's flash: skipped
    stray = tmp_path / "stray\x1b]0;title\x07.tlv"
    stray.write_bytes(b"not a trust list")
    capsys.readouterr()
    main(["predict", "--fleet-flash", str(fleet), str(stray)])
    out, _err = capsys.readouterr()
    assert not [c for c in RAW if c in out], out
    assert "asked for by no phone of the fleet: stray\\x1b]0;title\\x07.tlv" in out
    assert "  0A0000000009\\x1b[2J: " in out


HOSTILE_NAME = "cap\x1b[2J\x1b]0;t\x07\x9b\r"  # a capture named by whoever filled a folder of captures


@pytest.mark.parametrize("mode", [["--mac", MAC], ["--all"]])
def test_a_capture_name_reaches_the_terminal_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     mode: list[str]) -> None:
    capture = _hostile_capture(tmp_path / f"{HOSTILE_NAME}.pcap")
    main(["replay", str(capture), *mode])
    out, err = capsys.readouterr()
    assert not [c for c in RAW if c in out + err], out + err
    assert "from " + str(tmp_path) + "/cap\\x1b[2J\\x1b]0;t\\x07\\u009b\\x0d.pcap (profile" in out


@pytest.mark.parametrize("argv", [
    ["replay", "{bad}", "--list"],  # an OSError's file name (cli.main)
    ["replay", "{damaged}", "--list"],  # a PhoneEmuError naming the file (cli.main)
    ["inspect", "{damaged}"],  # inspect says its own errors
    ["inspect", "{bad}"],
    ["run", "{damaged}"],
    ["replay", "{damaged}", "--list", "{bad}"],  # a usage error echoing the argument (argparse)
])
def test_an_error_naming_a_hostile_file_reaches_the_terminal_escaped(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    damaged = tmp_path / f"{HOSTILE_NAME}.pcap"
    damaged.write_bytes(b"garbage")
    names = {"{bad}": str(tmp_path / HOSTILE_NAME), "{damaged}": str(damaged)}
    try:
        code = main([names.get(a, a) for a in argv])
    except SystemExit as exc:  # argparse's usage error
        code = int(str(exc.code))
    out, err = capsys.readouterr()
    assert code in (1, 2), (code, err)
    assert not [c for c in RAW if c in out + err], out + err
    assert "cap\\x1b[2J\\x1b]0;t\\x07" in err, err
