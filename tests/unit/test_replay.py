"""pcap → per-phone downloads (TFTP and HTTP 6970 reassembly) and offline replay of the phone's decisions.

Captures are written here with :class:`PcapWriter` / :class:`TcpFlow` (synthetic but faithfully framed).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import struct
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phoneemu.cli import main
from phoneemu.crypto import certs
from phoneemu.crypto.keys import KeySpec, generate_key
from phoneemu.errors import DecodeError, PhoneEmuError, TransportError
from phoneemu.formats import config as config_fmt
from phoneemu.formats import signed, trustlist
from phoneemu.formats.config import DeviceConfig
from phoneemu.formats.header import FileSigner
from phoneemu.formats.trustlist import Role, TrustRecord
from phoneemu.net.capture import PcapWriter, TcpFlow, read_pcap
from phoneemu.net.tftp_codec import Data, Error, OptionAck, ReadRequest, encode
from phoneemu.scenario.replay import (
    ReplayFetcher,
    boots_of,
    http_downloads,
    index_capture,
    index_packets,
    mac_of,
    replay_phone,
    tftp_downloads,
)

NOW = 1_780_272_000
MAC = "0A0000000001"
MAC2 = "0A0000000002"
LAB = "127.0.0.11"
PHONE = "127.0.0.1"
FILE = bytes(range(256)) * 7 + b"tail"  # 1796 bytes


class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        self.t += 0.001
        return self.t


def tftp_transfer(w: PcapWriter, name: str, data: bytes | None, *, client: int = 40000, tid: int = 50000,
                  blksize: int | None = 512, lose_last: bool = False, dup: bool = False,
                  server: tuple[str, int] = (LAB, 69)) -> None:
    """One TFTP read as a real client/server pair would put it on the wire."""
    c, s = (PHONE, client), (server[0], tid)
    opts = {"blksize": str(blksize)} if blksize and blksize != 512 else {}
    w.udp(c, server, encode(ReadRequest(filename=name, options=opts)))
    if data is None:
        w.udp(s, c, encode(Error(code=1, message="File not found")))
        return
    size = blksize or 512
    if opts:
        w.udp(s, c, encode(OptionAck(options=opts)))
        w.udp(c, s, b"\x00\x04\x00\x00")
    blocks = [data[i : i + size] for i in range(0, len(data) + 1, size)]
    if len(data) % size:
        blocks = [data[i : i + size] for i in range(0, len(data), size)]
    for n, chunk in enumerate(blocks, 1):
        if lose_last and n == len(blocks):
            break
        w.udp(s, c, encode(Data(block=n & 0xFFFF, data=chunk)))
        if dup and n == 1:
            w.udp(s, c, encode(Data(block=1, data=chunk)))
            w.udp((server[0], tid + 1), c, encode(Data(block=2, data=b"X" * size)))  # stray TID: ignored
        w.udp(c, s, struct.pack("!HH", 4, n & 0xFFFF))


def http_response(status: int, body: bytes, *, chunked: bool = False) -> bytes:
    reason = {200: "OK", 404: "Not Found"}.get(status, "Error")
    if chunked:
        chunks = b"".join(f"{len(body[i:i+500]):x}\r\n".encode() + body[i : i + 500] + b"\r\n"
                          for i in range(0, len(body), 500))
        return (f"HTTP/1.1 {status} {reason}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
                + chunks + b"0\r\n\r\n")
    return f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


def http_get(w: PcapWriter, files: list[tuple[str, bytes | None]], *, port: int = 41000,
             chunked: bool = False, http_port: int = 6970, server: str = LAB) -> TcpFlow:
    f = TcpFlow(w, (PHONE, port), (server, http_port), mss=700)
    for name, body in files:
        f.client_data(f"GET /{name} HTTP/1.1\r\nHost: {server}\r\n\r\n".encode())
        f.server_data(http_response(200, body, chunked=chunked) if body is not None
                      else http_response(404, b"not found\n"))
    f.close()
    return f


def write(tmp: Path, build: Callable[[PcapWriter], None]) -> Path:
    p = tmp / "c.pcap"
    with PcapWriter(p, clock=Clock()) as w:
        build(w)
    return p


# --------------------------------------------------------------------------- names
def test_mac_of_names() -> None:
    assert mac_of(f"CTLSEP{MAC}.tlv") == MAC
    assert mac_of(f"ITLSEP{MAC.lower()}.tlv") == MAC
    assert mac_of(f"SEP{MAC}.cnf.xml.enc.sgn") == MAC
    assert mac_of("ITLFile.tlv") is None
    assert mac_of("SEP12345.cnf.xml") is None


# --------------------------------------------------------------------------- TFTP
def test_tftp_transfer_with_oack_duplicates_and_retransmitted_rrq(tmp_path: Path) -> None:
    def build(w: PcapWriter) -> None:
        w.udp((PHONE, 40000), (LAB, 69), encode(ReadRequest(filename=f"ITLSEP{MAC}.tlv",
                                                             options={"blksize": "1024"})))
        tftp_transfer(w, f"ITLSEP{MAC}.tlv", FILE, blksize=1024, dup=True)
        tftp_transfer(w, "CTLFile.tlv", None, client=40001)
        tftp_transfer(w, f"SEP{MAC}.cnf.xml.sgn", b"x" * 1024, client=40002, tid=50002)  # empty last block
    idx = index_capture(write(tmp_path, build))
    got = {d.name: d for d in idx.downloads}
    assert len(idx.downloads) == 3
    itl = got[f"ITLSEP{MAC}.tlv"]
    assert (itl.protocol, itl.outcome, itl.data) == ("tftp", "ok", FILE)
    assert itl.server == (LAB, 69) and itl.client == (PHONE, 40000)
    assert got["CTLFile.tlv"].outcome == "not-found" and got["CTLFile.tlv"].data is None
    assert got[f"SEP{MAC}.cnf.xml.sgn"].data == b"x" * 1024
    assert idx.macs() == [MAC]
    assert [d.name for d in idx.shared()] == ["CTLFile.tlv"]


def test_tftp_truncated_and_unanswered_transfers_are_reported_not_raised(tmp_path: Path) -> None:
    def build(w: PcapWriter) -> None:
        tftp_transfer(w, f"ITLSEP{MAC}.tlv", FILE, lose_last=True)
        w.udp((PHONE, 40009), (LAB, 69), encode(ReadRequest(filename="ITLFile.tlv")))
        w.udp((PHONE, 40010), (LAB, 69), b"\x00\x09garbage")  # not TFTP: skipped
    idx = index_capture(write(tmp_path, build))
    got = {d.name: d for d in idx.downloads}
    assert got[f"ITLSEP{MAC}.tlv"].outcome == "incomplete"
    assert "last block missing" in got[f"ITLSEP{MAC}.tlv"].detail
    assert got["ITLFile.tlv"].outcome == "no-reply"
    assert idx.skipped == 1


def test_tftp_block_number_rollover() -> None:
    from phoneemu.net.capture import PcapPacket
    data = bytes(range(251)) * 2100  # 527100 bytes = 65888 blocks of 8 (the last one short)

    def pkt(src: tuple[str, int], dst: tuple[str, int], payload: bytes) -> PcapPacket:
        return PcapPacket(ts=NOW, proto="udp", src=src[0], sport=src[1], dst=dst[0], dport=dst[1],
                          payload=payload)
    c, s = (PHONE, 40000), (LAB, 50000)
    pkts = [pkt(c, (LAB, 69), encode(ReadRequest(filename="big.bin", options={"blksize": "8"}))),
            pkt(s, c, encode(OptionAck(options={"blksize": "8"})))]
    pkts += [pkt(s, c, b"\x00\x03" + struct.pack("!H", (i // 8 + 1) & 0xFFFF) + data[i : i + 8])
             for i in range(0, len(data), 8)]
    pkts.insert(65601, pkts[65600])  # a retransmitted block after the wrap: ignored
    pkts.insert(300, pkts[299])
    (d,), _ = tftp_downloads(pkts)
    assert d.outcome == "ok" and d.data == data


def test_tftp_size_is_bounded(tmp_path: Path) -> None:
    def build(w: PcapWriter) -> None:
        tftp_transfer(w, "big.bin", b"y" * 5000)
    (d,), _ = tftp_downloads(read_pcap(write(tmp_path, build)), max_file=2000)
    assert d.outcome == "too-large" and d.data is None


def test_reused_client_port_starts_a_new_transfer(tmp_path: Path) -> None:
    def build(w: PcapWriter) -> None:
        tftp_transfer(w, f"ITLSEP{MAC}.tlv", FILE, client=40000, tid=50000)
        tftp_transfer(w, f"SEP{MAC}.cnf.xml.sgn", b"cfg", client=40000, tid=50001)
    idx = index_capture(write(tmp_path, build))
    assert [(d.name, d.data) for d in idx.downloads] == [(f"ITLSEP{MAC}.tlv", FILE),
                                                        (f"SEP{MAC}.cnf.xml.sgn", b"cfg")]


# --------------------------------------------------------------------------- HTTP
@pytest.mark.parametrize("chunked", [False, True])
def test_http_keepalive_requests_paired_with_responses(tmp_path: Path, chunked: bool) -> None:
    def build(w: PcapWriter) -> None:
        http_get(w, [(f"CTLSEP{MAC}.tlv", None), (f"ITLSEP{MAC}.tlv", FILE), (f"SEP{MAC}.cnf.xml.sgn", b"c")],
                 chunked=chunked)
    idx = index_capture(write(tmp_path, build))
    assert [(d.name, d.outcome, d.data) for d in idx.downloads] == [
        (f"CTLSEP{MAC}.tlv", "not-found", None), (f"ITLSEP{MAC}.tlv", "ok", FILE),
        (f"SEP{MAC}.cnf.xml.sgn", "ok", b"c")]
    assert all(d.protocol == "http" and d.server == (LAB, 6970) for d in idx.downloads)


def test_http_out_of_order_and_retransmitted_segments(tmp_path: Path) -> None:
    body = http_response(200, FILE)
    c, s = (PHONE, 41000), (LAB, 6970)
    def build(w: PcapWriter) -> None:
        w.tcp(c, s, seq=99, ack=0, flags=0x02)
        w.tcp(s, c, seq=499, ack=100, flags=0x12)
        w.tcp(c, s, seq=100, ack=500, flags=0x18, payload=b"GET /%49TLFile.tlv?x=1 HTTP/1.1\r\n\r\n")
        w.tcp(s, c, seq=500 + 1000, ack=100, flags=0x18, payload=body[1000:])  # later half first
        w.tcp(s, c, seq=500, ack=100, flags=0x18, payload=body[:1200])  # overlaps
        w.tcp(s, c, seq=500, ack=100, flags=0x18, payload=body[:1000])  # retransmission
        w.tcp(s, c, seq=500 + len(body), ack=100, flags=0x11)
    (d,) = http_downloads(read_pcap(write(tmp_path, build)))
    assert (d.name, d.outcome, d.data) == ("ITLFile.tlv", "ok", FILE)


def test_http_connections_reusing_a_port_pair_are_kept_apart(tmp_path: Path) -> None:
    def build(w: PcapWriter) -> None:
        http_get(w, [("ITLFile.tlv", FILE)], port=41000)
        http_get(w, [("CTLFile.tlv", b"ctl")], port=41000)
    assert [(d.name, d.data) for d in index_capture(write(tmp_path, build)).downloads] == [
        ("ITLFile.tlv", FILE), ("CTLFile.tlv", b"ctl")]


def test_http_truncated_body_and_missing_response(tmp_path: Path) -> None:
    body = http_response(200, FILE)
    c, s = (PHONE, 41000), (LAB, 6970)
    def build(w: PcapWriter) -> None:
        f = TcpFlow(w, c, s)
        f.client_data(b"GET /ITLFile.tlv HTTP/1.1\r\n\r\nGET /CTLFile.tlv HTTP/1.1\r\n\r\n")
        f.server_data(body[:-10])
    a, b = http_downloads(read_pcap(write(tmp_path, build)))
    assert (a.name, a.outcome, a.data) == ("ITLFile.tlv", "incomplete", None)
    assert "of 1796 bytes" in a.detail
    assert (b.name, b.outcome) == ("CTLFile.tlv", "no-reply")


def test_tls_and_other_tcp_is_ignored(tmp_path: Path) -> None:
    def build(w: PcapWriter) -> None:
        f = TcpFlow(w, (PHONE, 42000), (LAB, 2445))
        f.client_data(b"\x16\x03\x01\x00\x05hello")
        f.server_data(b"\x16\x03\x03\x00\x02hi")
        f.close()
    assert index_capture(write(tmp_path, build)).downloads == ()


# --------------------------------------------------------------------------- malformed input
def test_malformed_pcap_raises_decode_error_naming_offset(tmp_path: Path) -> None:
    p = write(tmp_path, lambda w: tftp_transfer(w, "ITLFile.tlv", FILE))
    data = p.read_bytes()
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(data[:60])
    with pytest.raises(DecodeError) as ei:
        index_capture(bad)
    assert ei.value.offset == 32 and ei.value.fmt == "pcap"
    bad.write_bytes(b"\x00" * 30)
    with pytest.raises(DecodeError, match="magic"):
        index_capture(bad)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=4000), flip=st.integers(min_value=0, max_value=4000),
       value=st.integers(min_value=0, max_value=255))
def test_damaged_captures_only_ever_raise_decode_error(tmp_path: Path, cut: int, flip: int,
                                                       value: int) -> None:
    def build(w: PcapWriter) -> None:
        tftp_transfer(w, f"ITLSEP{MAC}.tlv", FILE[:900])
        http_get(w, [(f"SEP{MAC}.cnf.xml.sgn", FILE[:900])])
    data = bytearray(write(tmp_path, build).read_bytes())
    if flip < len(data):
        data[flip] = value
    p = tmp_path / "damaged.pcap"
    p.write_bytes(bytes(data[: max(cut, 24)]) if cut < len(data) else bytes(data))
    try:
        idx = index_capture(p)
    except DecodeError:
        return
    for d in idx.downloads:
        assert d.outcome in ("ok", "not-found", "refused", "error", "incomplete", "no-reply", "too-large")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=80)), max_size=12))
def test_random_payloads_never_crash_the_reassembly(payloads: list[tuple[bool, bytes]]) -> None:
    from phoneemu.net.capture import PcapPacket
    pkts = []
    for i, (is_udp, payload) in enumerate(payloads):
        prefix = b"GET /a HTTP/1.1\r\n" if i == 0 and not is_udp else b""
        pkts.append(PcapPacket(ts=NOW + i, proto="udp" if is_udp else "tcp", src=PHONE if i % 2 else LAB,
                               dst=LAB if i % 2 else PHONE, sport=40000 + i % 2, dport=40000 + (i + 1) % 2,
                               payload=prefix + payload, seq=1000 + 7 * i, flags=0x18, index=i))
    index_packets(pkts)


# --------------------------------------------------------------------------- boots and fetcher
def test_boots_split_and_shared_names_served_from_the_window(tmp_path: Path) -> None:
    def build(w: PcapWriter) -> None:
        for boot in range(2):
            for mac, port in ((MAC, 41000), (MAC2, 41100)):
                http_get(w, [(f"CTLSEP{mac}.tlv", None), ("CTLFile.tlv", b"ctl%d" % boot),
                             (f"ITLSEP{mac}.tlv", b"itl"), (f"SEP{mac}.cnf.xml.sgn", None),
                             (f"SEP{mac}.cnf.xml.sgn", None)], port=port + boot)
    idx = index_capture(write(tmp_path, build))
    boots = boots_of(idx, MAC)
    assert len(boots) == 2 and [len(b.own) for b in boots] == [4, 4]
    assert boots_of(idx, "0A00000000FF") == []

    async def run() -> None:
        f = ReplayFetcher(boots[1])
        assert await f.fetch("CTLFile.tlv") == b"ctl1"
        assert await f.fetch(f"ITLSEP{MAC}.tlv") == b"itl"
        with pytest.raises(TransportError) as ei:
            await f.fetch(f"CTLSEP{MAC}.tlv")
        assert ei.value.kind == "not-found"
        with pytest.raises(TransportError, match="not requested"):
            await f.fetch("g3-tones.xml")
        assert await f.fetch(f"ITLSEP{MAC}.tlv") == b"itl"  # asked again: the last answer again
    asyncio.run(run())


def test_shared_name_from_the_phones_own_endpoint_wins(tmp_path: Path) -> None:
    def build(w: PcapWriter) -> None:
        tftp_transfer(w, f"CTLSEP{MAC}.tlv", None, client=40000)
        tftp_transfer(w, "ITLFile.tlv", b"other phone's answer", client=40100, tid=50100)
        tftp_transfer(w, "ITLFile.tlv", None, client=40000, tid=50001)  # same socket as CTLSEP
    (boot,) = boots_of(index_capture(write(tmp_path, build)), MAC)

    async def run() -> None:
        f = ReplayFetcher(boot)
        with pytest.raises(TransportError):
            await f.fetch("ITLFile.tlv")
        assert f.served[-1] == ("ITLFile.tlv", "not-found via tftp (cluster-wide name, same client endpoint)")
    asyncio.run(run())


def test_capture_started_mid_boot(tmp_path: Path) -> None:
    def build(w: PcapWriter) -> None:
        http_get(w, [(f"SEP{MAC}.cnf.xml.sgn", b"a")], port=41000)
        for boot in range(2):
            http_get(w, [(f"CTLSEP{MAC}.tlv", None), (f"ITLSEP{MAC}.tlv", b"itl"),
                         (f"SEP{MAC}.cnf.xml.sgn", b"c")], port=41001 + boot)
    boots = boots_of(index_capture(write(tmp_path, build)), MAC)
    assert [[d.name[:6] for d in b.own] for b in boots] == [["SEP0A0"], ["CTLSEP", "ITLSEP", "SEP0A0"],
                                                             ["CTLSEP", "ITLSEP", "SEP0A0"]]


# --------------------------------------------------------------------------- offline decisions
@cache
def cluster_files() -> dict[str, bytes]:
    """A tiny cluster: ITL (ITLRecovery SAST + CallManager CCM+TFTP) and a config signed by CallManager."""
    def ident(name: str) -> FileSigner:
        key = generate_key(KeySpec.parse("rsa1024"), unsafe_seed=f"replay-{name}")
        t = dt.datetime.fromtimestamp(NOW, tz=dt.UTC)
        req = certs.CertRequest(subject=f"CN={name};OU=VTG;O=Lab", public_key=key.public_key(), serial=7,
                                not_before=t - dt.timedelta(days=30), not_after=t + dt.timedelta(days=3650))
        return FileSigner(key=key, cert=certs.issue_certificate(req, issuer_key=key))
    rec, cm = ident("itlrecovery"), ident("callmanager")
    itl = trustlist.build(kind="ITL", records=[TrustRecord.from_certificate(rec.cert, Role.SAST),
                                               TrustRecord.from_certificate(cm.cert, Role.CCM_TFTP)],
                          signer=rec, timestamp=NOW)
    out = {"ITLFile.tlv": itl}
    for mac in (MAC, MAC2):
        body = config_fmt.build(DeviceConfig(device_name=f"SEP{mac}"))
        out[f"ITLSEP{mac}.tlv"] = itl
        out[f"SEP{mac}.cnf.xml.sgn"] = signed.build(body=body, filename=f"SEP{mac}.cnf.xml.sgn", signer=cm,
                                                    timestamp=NOW)
    return out


def boot_capture(tmp: Path, *, tamper: bool = False, via_tftp: bool = False) -> Path:
    files = dict(cluster_files())
    if tamper:
        cfg = bytearray(files[f"SEP{MAC}.cnf.xml.sgn"])
        cfg[-3] ^= 0x20
        files[f"SEP{MAC}.cnf.xml.sgn"] = bytes(cfg)
    order = [f"CTLSEP{MAC}.tlv", "CTLFile.tlv", f"ITLSEP{MAC}.tlv", f"SEP{MAC}.cnf.xml.sgn"]

    def build(w: PcapWriter) -> None:
        for boot in range(2):
            if via_tftp:
                for i, name in enumerate(order):
                    tftp_transfer(w, name, files.get(name), client=40000 + 10 * boot + i,
                                  tid=50000 + 10 * boot + i, server=(LAB, 6969))
            else:
                http_get(w, [(n, files.get(n)) for n in order], port=41000 + boot)
    return write(tmp, build)


@pytest.mark.parametrize("via_tftp", [False, True])
def test_replay_reproduces_first_itl_trust_and_config_acceptance(tmp_path: Path, via_tftp: bool) -> None:
    idx = index_capture(boot_capture(tmp_path, via_tftp=via_tftp))
    first, second = asyncio.run(replay_phone(idx, MAC))
    r1, r2 = first.report, second.report
    assert r1.ok and r1.trust["ITL"] == "installed" and r1.config == "accepted"
    assert any(d.rule.startswith("G.2") and d.accepted and d.file == f"ITLSEP{MAC}.tlv" for d in r1.decisions)
    assert r1.config_file == f"SEP{MAC}.cnf.xml.sgn"
    assert r2.ok and r2.trust["ITL"] == "unchanged"
    how = "tftp (cluster-wide name, from this boot's window)" if via_tftp else \
        "http (cluster-wide name, same client endpoint)"  # one keep-alive connection
    assert ("CTLFile.tlv", f"not-found via {how}") in first.served
    assert first.as_dict()["report"]["config"] == "accepted"


def test_replay_of_tampered_config_rejects_it(tmp_path: Path) -> None:
    idx = index_capture(boot_capture(tmp_path, tamper=True))
    first, _ = asyncio.run(replay_phone(idx, MAC))
    assert first.report.trust["ITL"] == "installed"
    assert first.report.config != "accepted" and not first.report.ok
    assert first.report.deciding is not None and not first.report.deciding.accepted


def test_replay_of_unknown_mac_names_the_macs(tmp_path: Path) -> None:
    idx = index_capture(boot_capture(tmp_path))
    with pytest.raises(PhoneEmuError, match=MAC):
        asyncio.run(replay_phone(idx, "001122334455"))


def test_cli_replay_list_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json
    p = boot_capture(tmp_path)
    assert main(["replay", str(p), "--list"]) == 0
    out = capsys.readouterr().out
    assert f"phone {MAC}: 2 boots" in out and "ITLSEP" in out
    assert main(["replay", str(p), "--mac", MAC.lower(), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [b["report"]["trust"]["ITL"] for b in doc["boots"]] == ["installed", "unchanged"]
    assert main(["replay", str(p), "--mac", "0a:00:00:00:00:01"]) == 0
    assert "G.2" in capsys.readouterr().out
    assert main(["replay", str(p)]) == 2
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"nope")
    assert main(["replay", str(bad), "--list"]) == 2
    assert f"{bad} header at offset 0" in capsys.readouterr().err


def test_cli_replay_warns_of_a_key_log_without_secrets(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The capture given as --keylog by mistake, or an empty key log: said at once, not only as "no key-log
    entry" per connection."""
    p = boot_capture(tmp_path)
    assert main(["replay", str(p), "--list", "--keylog", str(p)]) == 0
    assert f"replay: warning: --keylog {p}: no secrets" in capsys.readouterr().err
    keys = tmp_path / "x.keys"
    keys.write_text(f"# a comment\nCLIENT_RANDOM {'ab' * 32} {'cd' * 48}\n")
    assert main(["replay", str(p), "--list", "--keylog", str(keys)]) == 0
    assert "no secrets" not in capsys.readouterr().err


def test_cli_replay_of_a_capture_cut_inside_its_last_packet(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """tcpdump killed while writing: the boots before the cut replay as they would, with a warning."""
    import json
    p = boot_capture(tmp_path)
    assert main(["replay", str(p), "--mac", MAC, "--json"]) == 0
    whole = json.loads(capsys.readouterr().out)["boots"]
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(p.read_bytes()[:-3])
    assert main(["replay", str(cut), "--mac", MAC, "--json"]) == 0
    out, err = capsys.readouterr()
    def decisions(boots: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in b["report"].items() if k != "duration_s"} for b in boots]
    assert decisions(json.loads(out)["boots"]) == decisions(whole)
    assert f"replay: warning: pcap: {cut} packet[" in err and "the capture ends inside this packet" in err


def test_a_secure_phones_ctl_retries_are_one_boot_not_three() -> None:
    """Consecutive requests for the CTL are one boot's retries (secure mode without a CTL "tries four
    times", spec §G.9): they split a capture into boots at the last of the run only when another name
    follows it; an HTTP request and its TFTP fallback are one fetch. (Each retry after the first used to
    start a boot of its own, and the next real boot was merged into the retries.)"""
    from phoneemu.scenario._capture_flows import Download
    from phoneemu.scenario.replay import boot_groups

    mac = "0A0000004201"
    ctl, itl, cfg = f"CTLSEP{mac}.tlv", f"ITLSEP{mac}.tlv", f"SEP{mac}.cnf.xml.sgn"

    def run(*spec: tuple[str, str]) -> list[list[str]]:
        own = [Download(protocol=proto, name=name, client=("10.0.0.9", 1000 + i), server=("10.0.0.1", 69),
                        outcome="ok", data=b"x", start=float(i), end=float(i), order=i)
               for i, (name, proto) in enumerate(spec)]
        return [[f"{d.name[:3]}/{d.protocol}" for d in g] for g in boot_groups(own, mac)]

    h, t = "http", "tftp"
    assert run((ctl, h), (itl, h), (cfg, h), (ctl, h), (ctl, h), (ctl, h), (ctl, h), (itl, h), (cfg, h)) == [
        ["CTL/http", "ITL/http", "SEP/http", "CTL/http", "CTL/http", "CTL/http"],
        ["CTL/http", "ITL/http", "SEP/http"]]
    # an HTTP request, then its TFTP fallback: one fetch
    assert run((ctl, h), (ctl, t), (itl, h), (ctl, h), (ctl, t), (itl, t)) == [
        ["CTL/http", "CTL/tftp", "ITL/http"], ["CTL/http", "CTL/tftp", "ITL/tftp"]]
    assert run((ctl, h), (itl, h), (ctl, h), (ctl, h)) == [["CTL/http", "ITL/http", "CTL/http", "CTL/http"]]
    # a capture cut short during a boot: that boot's first request
    assert run((ctl, h), (itl, h), (ctl, h)) == [["CTL/http", "ITL/http"], ["CTL/http"]]
