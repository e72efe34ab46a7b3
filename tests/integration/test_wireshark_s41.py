"""The TVS/CAPF Lua dissector on TLS captures as a Wireshark user makes them (spec §E, §F): CAPF on its
standard port 3804 with the key log only, a message whose first TLS record is shorter than its header,
every message of a packet in the Info column, a header that is not TVS's (Decode As on another stream),
values of a length the protocol does not allow, the PASSWORD field."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.commands.wireshark import tshark_args
from phoneemu.crypto.certs import CertRequest, issue_certificate
from phoneemu.crypto.keys import KeySpec, generate_key
from phoneemu.net.capture import PcapWriter, TcpFlow
from phoneemu.net.tls import client_context_verify_after_handshake, server_context
from phoneemu.protocols import capf, tvs
from tests.helpers import MemoryTlsPair

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")

AUTH_REQUEST = capf.encode(capf.message(1, 9, (13, b"SEP001122334455\0")))
AUTH_RESPONSE = capf.encode(capf.message(2, 9, (1, b"\x01")))
END_SESSION = capf.encode(capf.message(15, 9, (1, b"\x01")))
QUERY = tvs.encode(tvs.query_request(7, "SEP001122334455", "CN=a", "CN=b", b"\x01\x02"))


def _element(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + len(value).to_bytes(2, "big") + value


def _capf(command: int, *elements: bytes) -> bytes:
    """A CAPF message built by hand (the encoder refuses the malformed values these tests need)."""
    body = b"".join(elements)
    return bytes([0x55, command]) + (9).to_bytes(4, "big") + len(body).to_bytes(2, "big") + body


class _CapturedPair(MemoryTlsPair):
    """A TLS pair in memory whose every pump is one TCP segment each way in ``flow`` (client's first)."""

    def __init__(self, flow: TcpFlow, cctx: ssl.SSLContext, sctx: ssl.SSLContext) -> None:
        super().__init__(cctx, sctx, server_hostname="capf")
        self.flow = flow

    def pump(self) -> None:
        sent, got = len(self.to_server), len(self.to_client)
        super().pump()
        if len(self.to_server) > sent:
            self.flow.client_data(bytes(self.to_server[sent:]))
        if len(self.to_client) > got:
            self.flow.server_data(bytes(self.to_client[got:]))


def _tls_capture(tmp_path: Path, port: int, client: list[bytes], server: list[bytes]) -> tuple[Path, Path]:
    """A TLS 1.3 session on loopback to ``port``: each item of ``client`` and ``server`` is one TLS record
    (each side's records in one TCP segment, the client's first); the capture and its key log."""
    pcap, keys = tmp_path / f"s{port}.pcap", tmp_path / f"s{port}.keys"
    now = dt.datetime.now(dt.UTC)
    key = generate_key(KeySpec.parse("ec-p256"))
    req = CertRequest(subject="CN=capf;O=phoneemu", public_key=key.public_key(), serial=5,
                      not_before=now - dt.timedelta(days=1), not_after=now + dt.timedelta(days=30))
    cert = issue_certificate(req, issuer_key=key)
    with PcapWriter(pcap) as w:
        flow = TcpFlow(w, ("127.0.0.1", 40000), ("127.0.0.2", port))
        flow.open()
        pair = _CapturedPair(flow, client_context_verify_after_handshake(keylog_filename=keys),
                             server_context(cert, key))
        pair.handshake(10)
        for record in client:
            pair.client.write(record)
        pair.pump()
        for record in server:
            pair.server.write(record)
        pair.pump()
        flow.close()
    return pcap, keys


def _fields(args: list[str], *fields: str, home: Path) -> list[list[str]]:
    """tshark's ``-T fields`` rows (personal plugins from ``home`` only)."""
    cmd = ["tshark", *args, "-T", "fields"]
    for f in fields:
        cmd += ["-e", f]
    env = {**os.environ, "HOME": str(home)}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False, env=env)
    assert done.returncode == 0 and "Lua: Error" not in done.stderr, done.stderr
    return [line.split("\t") for line in done.stdout.splitlines()]


def test_capf_on_3804_decodes_with_the_key_log_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After --install, plain tshark (no -d tcp.port==3804,tls) decodes CAPF on its standard port:
    Wireshark gives TCP 3804 to HiQnet, so TLS never ran there (was: nothing shown)."""
    pcap, keys = _tls_capture(tmp_path, 3804, [AUTH_REQUEST], [AUTH_RESPONSE])
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["wireshark", "--install"]) == 0
    rows = _fields(["-r", str(pcap), "-o", f"tls.keylog_file:{keys}", "-Y", "capf"], "capf.command",
                   "capf.device_name", home=tmp_path)
    assert rows == [["1", "SEP001122334455"], ["2", ""]]


@pytest.mark.parametrize(("port", "message", "cuts"), [
    (3804, AUTH_REQUEST, [7]), (3804, AUTH_REQUEST, [3]), (3804, AUTH_REQUEST, [7, 2]),
    (3804, AUTH_REQUEST, [1] * 8), (2445, QUERY, [7]), (2445, QUERY, [3]), (2445, QUERY, [7, 2])],
    ids=["capf-7", "capf-3", "capf-7-2", "capf-1x8", "tvs-7", "tvs-3", "tvs-7-2"])
def test_a_message_whose_first_record_is_shorter_than_its_header(tmp_path: Path, port: int, message: bytes,
                                                                 cuts: list[int]) -> None:
    """Split over TLS records 7+rest, 3+rest, 7+2+rest ... (CAPF's header is 8 bytes, TVS's 10): the
    message is reassembled (was: lost, only the response showed)."""
    records, at = [], 0
    for n in cuts:
        records.append(message[at:at + n])
        at += n
    records.append(message[at:])
    pcap, keys = _tls_capture(tmp_path, port, records, [AUTH_RESPONSE if port == 3804 else QUERY])
    proto = "capf" if port == 3804 else "tvs"
    rows = _fields([*tshark_args(pcap, keys, [port]), "-Y", proto], f"{proto}.device_name",
                   "_ws.expert.message", home=tmp_path)
    assert rows[0] == ["SEP001122334455", ""]
    assert len(rows) == 2


def test_every_message_of_a_packet_is_in_the_info_column(tmp_path: Path) -> None:
    """Two messages in one record, or in two records of one segment: both named, in order, once (was:
    the last one only)."""
    first = "CAPF AUTH_REQUEST #9 SEP001122334455, CAPF END_SESSION #9 reason update / success"
    both = ", ".join(["CAPF AUTH_RESPONSE #9 reason update / success"] * 2)
    for client, server in [([AUTH_REQUEST + END_SESSION], [AUTH_RESPONSE + AUTH_RESPONSE]),
                           ([AUTH_REQUEST, END_SESSION], [AUTH_RESPONSE, AUTH_RESPONSE]),
                           ([AUTH_REQUEST + END_SESSION[:3], END_SESSION[3:]], [AUTH_RESPONSE] * 2)]:
        pcap, keys = _tls_capture(tmp_path, 3804, client, server)
        rows = _fields([*tshark_args(pcap, keys, [3804]), "-Y", "capf"], "_ws.col.Info", home=tmp_path)
        assert rows == [[first], [both]], (client, server)


def test_a_header_that_is_not_tvs_is_marked_malformed(tmp_path: Path) -> None:
    """Decode As TVS on a stream that is not (an HTTP request, a version 2 header): an expert error
    naming the byte, nothing decoded as a message (was: 'TVS type 84 #...' waiting for 64 KiB bodies,
    a version 2 header decoded)."""
    pcap = tmp_path / "http.pcap"
    with PcapWriter(pcap) as w:
        flow = TcpFlow(w, ("127.0.0.1", 40000), ("127.0.0.2", 8080))
        flow.open()
        flow.client_data(b"GET / HTTP/1.1\r\nHost: tvs\r\n\r\n")
        flow.server_data(b"\x57\x02\x01\x00\x00\x00\x00\x01\x00\x00")
        flow.server_data(QUERY)
        flow.close()
    rows = _fields([*tshark_args(pcap, None, []), "-d", "tcp.port==8080,tvs", "-Y", "tvs"], "tvs.type",
                   "_ws.expert.message", "_ws.col.Info", home=tmp_path)
    assert rows[0][:2] == ["", "protocol discriminator 0x47 (0x57 expected) at offset 0: not a TVS message, "
                           "the rest is not decoded"]
    assert rows[0][2] == "TVS malformed header: protocol discriminator 0x47 (0x57 expected)"
    assert rows[1][:2] == ["", "version 2 (1 expected) at offset 0: not a TVS message, the rest is not "
                           "decoded"]
    assert rows[2][:2] == ["3", ""]  # the next segment, a TVS message: decoded


def test_values_of_a_length_the_protocol_does_not_allow_and_the_password(tmp_path: Path) -> None:
    """KEY_SIZE of 1 byte, CERTIFICATE under its 5-byte wrapper, REASON of no byte, TVS STATUS of 2:
    expert errors naming them (were: dropped silently); PASSWORD as capf.password (was: capf.value only)."""
    request = _capf(3, _element(10, b"\x08"), _element(4, b"\x01\x00"), _element(1, b""),
                    _element(11, b"secret\0"), _element(10, b"\x08\x00"))
    pcap, keys = _tls_capture(tmp_path, 3804, [request], [AUTH_RESPONSE])
    rows = _fields([*tshark_args(pcap, keys, [3804]), "-Y", "capf.command == 3"], "capf.password",
                   "capf.key_size", "_ws.expert.message", home=tmp_path)
    assert rows == [["secret", "2048", "KEY_SIZE of 1 byte at body offset 0 (2 expected),CERTIFICATE of 2 "
                     "bytes at body offset 4 (at least 5 expected),REASON of 0 bytes at body offset 9 (1 "
                     "expected)"]]
    pcap = tmp_path / "status.pcap"
    with PcapWriter(pcap) as w:
        flow = TcpFlow(w, ("127.0.0.1", 40000), ("127.0.0.2", 2445))
        flow.server_data(b"\x57\x01\x04\x00\x00\x00\x00\x07\x00\x05\x07\x00\x02\x00\x00")
        flow.close()
    rows = _fields([*tshark_args(pcap, None, []), "-d", "tcp.port==2445,tvs", "-Y", "tvs"], "tvs.status",
                   "_ws.expert.message", home=tmp_path)
    assert rows == [["", "STATUS of 2 bytes at body offset 0 (1 expected)"]]
