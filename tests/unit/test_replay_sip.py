"""replay's SIP: the registrar's certificate from a TLS handshake, the phone from its own (§G.5, §F.9)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import ssl
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phoneemu.crypto.certs import CertRequest, cert_der, issue_certificate
from phoneemu.crypto.keys import KeySpec, generate_key
from phoneemu.net.capture import PcapPacket
from phoneemu.net.tls import client_context, server_context
from phoneemu.net.tls_handshake import client_certificate, device_of_certificate, server_certificate
from phoneemu.scenario._capture_flows import FlowScanner, Limits
from phoneemu.scenario.replay_sip import SipCollector

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _identity(cn: str) -> tuple[object, object]:
    key = generate_key(KeySpec.parse("ec-p256"))
    req = CertRequest(subject=f"CN={cn};O=phoneemu", public_key=key.public_key(), serial=7,
                      not_before=NOW - dt.timedelta(days=1), not_after=NOW + dt.timedelta(days=9))
    return key, issue_certificate(req, issuer_key=key)


def _handshake(version: str) -> tuple[bytes, bytes, bytes, bytes]:
    """A whole handshake in memory: (client stream, server stream, server certificate, client certificate)."""
    skey, scert = _identity("cucm-pub")
    ckey, ccert = _identity("CP-8861-SEP0011223344AA")
    sctx = server_context(scert, skey, client_trust=[ccert], max_version=version)  # type: ignore[arg-type]
    cctx = client_context(trust=[scert], chain=ccert, key=ckey)  # type: ignore[arg-type]
    ci, co, si, so = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client, server = cctx.wrap_bio(ci, co, server_hostname="x"), sctx.wrap_bio(si, so, server_side=True)
    cs, ss = bytearray(), bytearray()
    for _ in range(10):
        for obj in (client, server):
            with contextlib.suppress(ssl.SSLWantReadError):
                obj.do_handshake()
        out_c, out_s = co.read(), so.read()
        cs += out_c
        ss += out_s
        si.write(out_c)
        ci.write(out_s)
        if not out_c and not out_s:
            break
    return bytes(cs), bytes(ss), cert_der(scert), cert_der(ccert)  # type: ignore[arg-type]


def test_the_certificates_of_a_tls12_handshake_are_read_in_clear() -> None:
    cs, ss, scert, _ccert = _handshake("1.2")
    assert server_certificate(ss) == (scert, "", "")
    assert device_of_certificate(client_certificate(cs)) == "0011223344AA"  # its MIC names the phone


def test_tls13_and_garbage_say_why_there_is_no_certificate() -> None:
    cs, ss, _s, _c = _handshake("1.3")
    assert server_certificate(ss) == (None, "TLSv1.3", "TLS 1.3 sends the certificate encrypted: not read")
    assert device_of_certificate(client_certificate(cs)) is None
    empty_certificate = b"\x16\x03\x03\x00\x04\x0b\x00\x00\x00"
    for junk in (b"", b"\x16\x03\x03\xff\xff" + b"\x0b" * 10, b"\x17\x03\x03\x00\x01x", empty_certificate):
        cert, _v, why = server_certificate(junk)
        assert cert is None and why, junk
        assert device_of_certificate(client_certificate(junk)) is None


def _tcp(src: tuple[str, int], dst: tuple[str, int], seq: int, flags: int, data: bytes = b"") -> PcapPacket:
    return PcapPacket(ts=0.0, src=src[0], dst=dst[0], proto="tcp", sport=src[1], dport=dst[1], payload=data,
                      seq=seq, ack=0, flags=flags)


def test_a_plain_sip_connection_is_kept_within_its_cap() -> None:
    """A REGISTER over TCP is collected (its device, the final answers by CSeq); a peer that sends more
    than ``max_sip_stream`` is cut there with a warning, memory bounded."""
    from phoneemu.net.capture import ACK, SYN
    from phoneemu.protocols import sip

    phone, cucm = ("10.0.0.9", 40000), ("10.0.0.1", 5060)
    register = sip.build_message("REGISTER sip:10.0.0.1 SIP/2.0", [("From", "<sip:SEP0011223344AA@10.0.0.1>"),
                                                                   ("CSeq", "1 REGISTER")])
    ok = sip.build_message("SIP/2.0 200 OK", [("CSeq", "1 REGISTER")])
    warnings: list[str] = []
    found = []
    for flood in (b"", b"x" * 5000):
        collector = SipCollector()
        scanner = FlowScanner(None, sip=collector, limits=Limits(max_sip_stream=1000), warn=warnings.append)
        scanner.feed(_tcp(phone, cucm, 100, SYN))
        scanner.feed(_tcp(cucm, phone, 900, SYN | ACK))
        scanner.feed(_tcp(phone, cucm, 101, ACK, register))
        scanner.feed(_tcp(cucm, phone, 901, ACK, ok + flood))
        scanner.close()
        found += collector.found
    plain, flooded = found
    assert (plain.transport, plain.mac, plain.registers, plain.statuses) == ("tcp", "0011223344AA", 1, (200,))
    assert plain.outcome == "registered (200 OK)"
    assert not flooded.readable and "longer than 1000 bytes" in flooded.outcome, flooded
    assert any("sip 10.0.0.9:40000 -> 10.0.0.1:5060: server stream longer than 1000 bytes" in w
               for w in warnings), warnings


_CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "sip-tls-callmanager-in-ctl.pcap"


def _non_secure_phone() -> tuple[Any, Any]:
    """A cp-8861's profile and a store holding a non-secure config of SEP0011223344AA."""
    from phoneemu.formats import config as config_fmt
    from phoneemu.phone.profile import get_profile
    from phoneemu.phone.store import AcceptedConfig, TrustStore

    prof = get_profile("cp-8861")
    store = TrustStore(profile=prof)
    cfg = config_fmt.DeviceConfig(device_name="SEP0011223344AA")  # non-secure
    store.config = AcceptedConfig(file="SEP.cnf.xml", xml=config_fmt.build(cfg), config=cfg)
    return prof, store


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 255)), min_size=1, max_size=30))
def test_a_damaged_sip_capture_is_read_and_checked_without_a_crash(flips: list[tuple[int, int]]) -> None:
    """Bytes of the reference SIP capture's packets changed (TLS handshakes, certificates, REGISTERs and
    answers): the scan collects what it can read (saying why not for the rest) and the SIP checks of a
    replay describe each, nothing raises."""
    import asyncio

    from phoneemu.net.capture import read_pcap
    from phoneemu.net.tls_decrypt import read_keylog
    from phoneemu.scenario.replay import replay_phone
    from phoneemu.scenario.replay_tvs import scan_capture

    packets = list(read_pcap(_CAPTURE))
    damaged = []
    for i, p in enumerate(packets):
        payload = bytearray(p.payload)
        for at, value in flips:
            if payload and at % len(packets) == i:
                payload[at % len(payload)] = value
        damaged.append(dataclasses.replace(p, payload=bytes(payload)))
    keys = read_keylog(_CAPTURE.with_suffix(".keys"))
    for secrets in (None, keys):
        collector = SipCollector(secrets)
        scanner = FlowScanner(None, sip=collector)
        for p in damaged:
            scanner.feed(p)
        scanner.close()
        for c in collector.found:
            assert c.outcome and c.transport in ("tcp", "tls")
    scan = scan_capture(_CAPTURE, mac="0A0000004201", secrets=keys)  # the clean files; the damaged SIP
    results = asyncio.run(replay_phone(scan.index, "0A0000004201", sip_capture=collector.found))
    assert all(c.describe() for r in results for c in r.sip)


def test_captured_calls_are_checked_against_g14() -> None:
    """A captured INVITE's SDP offer set against §G.14 on the transport used: SRTP keys over TCP differ
    (in the clear), and so does SRTP offered by a non-secure device; an RTP offer over TCP agrees; the
    answer's suite is read (the far end's choice, not a phone verdict)."""
    from phoneemu.crypto import srtp
    from phoneemu.net.capture import ACK, SYN
    from phoneemu.protocols import sdp, sip
    from phoneemu.scenario.replay_sip import check_sip

    phone, cucm = ("10.0.0.9", 40000), ("10.0.0.1", 5060)
    key = srtp.inline_key(*srtp.make_master_key())

    def body(profile: str, crypto: tuple[sdp.Crypto, ...]) -> bytes:
        return sdp.build_sdp(sdp.AudioOffer(address="10.0.0.9", port=30000, profile=profile, formats=(0,),
                                            crypto=crypto))

    def capture(offer: bytes, answer: bytes) -> object:
        dev = "<sip:SEP0011223344AA@10.0.0.1>"
        register = sip.build_message("REGISTER sip:10.0.0.1 SIP/2.0", [("From", dev), ("CSeq", "1 REGISTER")])
        invite = sip.build_message("INVITE sip:moh@10.0.0.1 SIP/2.0", [("From", dev), ("CSeq", "2 INVITE"),
                                                                        ("Content-Type", "application/sdp")],
                                   offer)
        ok = sip.build_message("SIP/2.0 200 OK", [("CSeq", "1 REGISTER")])
        ok2 = sip.build_message("SIP/2.0 200 OK", [("CSeq", "2 INVITE")], answer)
        collector = SipCollector()
        scanner = FlowScanner(None, sip=collector, limits=Limits(), warn=lambda _w: None)
        scanner.feed(_tcp(phone, cucm, 100, SYN))
        scanner.feed(_tcp(cucm, phone, 900, SYN | ACK))
        scanner.feed(_tcp(phone, cucm, 101, ACK, register + invite))
        scanner.feed(_tcp(cucm, phone, 901, ACK, ok + ok2))
        scanner.close()
        (found,) = collector.found
        return found

    prof, store = _non_secure_phone()
    keyed = (sdp.Crypto(tag=1, suite="AES_CM_128_HMAC_SHA1_80", key_params=key),)
    srtp_call = capture(body("RTP/SAVP", keyed), body("RTP/SAVP", keyed))
    (check,) = check_sip(store, prof, "0011223344AA", {"10.0.0.9"}, [srtp_call])  # type: ignore[list-item]
    call = check.captured.calls[0]
    assert (call.offered, call.suites, call.status, call.answered) == (
        "srtp", ("AES_CM_128_HMAC_SHA1_80",), 200, "srtp AES_CM_128_HMAC_SHA1_80")
    assert check.media_rule == "G.14-rtp-not-encrypted-mode"
    assert check.differs == ("sip:moh@10.0.0.1: SRTP keys sent over tcp (in the clear; the rules give RTP: "
                             "G.14-rtp-not-encrypted-mode)",)
    assert "DIFFERS: sip:moh@10.0.0.1: SRTP keys sent over tcp" in check.describe()
    rtp_call = capture(body("RTP/AVP", ()), body("RTP/AVP", ()))
    (check,) = check_sip(store, prof, "0011223344AA", {"10.0.0.9"}, [rtp_call])  # type: ignore[list-item]
    assert check.differs == () and "offered rtp, answered 200 rtp" in check.describe()
    assert check.as_dict()["calls"] == [{"target": "sip:moh@10.0.0.1", "direction": "out", "offered": "rtp",
                                         "suites": [],
                                         "status": 200, "answered": "rtp", "problem": "", "media": "",
                                         "media_differs": ""}]


def test_a_calls_captured_media_is_checked_with_the_keys_of_its_sdp() -> None:
    """The call's first packets each way between the two SDP addresses: over SRTP each unprotected with
    its sender's key (the phone's offered line of the answer's tag, the far end's answer line); the
    phone's packets sent in the clear differ; the far end's that fail are reported, not held against the
    phone; over RTP they are counted. Flows and packets kept are bounded."""
    from phoneemu.crypto import srtp
    from phoneemu.net.capture import ACK, SYN
    from phoneemu.protocols import rtp, sdp, sip
    from phoneemu.scenario.replay_sip import MAX_MEDIA_PACKETS

    phone, cucm = ("10.0.0.9", 40000), ("10.0.0.1", 5060)
    p_rtp, f_rtp = ("10.0.0.9", 30000), ("10.0.0.1", 31000)
    pk, fk = srtp.make_master_key(), srtp.make_master_key()
    suite = "AES_CM_128_HMAC_SHA1_80"

    def body(addr: tuple[str, int], key: tuple[bytes, bytes]) -> bytes:
        line = sdp.Crypto(tag=1, suite=suite, key_params=srtp.inline_key(*key))
        return sdp.build_sdp(sdp.AudioOffer(address=addr[0], port=addr[1], profile="RTP/SAVP", formats=(0,),
                                            crypto=(line,)))

    def udp(src: tuple[str, int], dst: tuple[str, int], data: bytes) -> PcapPacket:
        return PcapPacket(ts=0.0, src=src[0], dst=dst[0], proto="udp", sport=src[1], dport=dst[1],
                          payload=data)

    def scan(phone_packets: list[bytes], far_packets: list[bytes]) -> Any:
        dev = "<sip:SEP0011223344AA@10.0.0.1>"
        register = sip.build_message("REGISTER sip:10.0.0.1 SIP/2.0", [("From", dev), ("CSeq", "1 REGISTER")])
        invite = sip.build_message("INVITE sip:moh@10.0.0.1 SIP/2.0", [("From", dev), ("CSeq", "2 INVITE")],
                                   body(p_rtp, pk))
        ok = sip.build_message("SIP/2.0 200 OK", [("CSeq", "1 REGISTER")]) + sip.build_message(
            "SIP/2.0 200 OK", [("CSeq", "2 INVITE")], body(f_rtp, fk))
        collector = SipCollector()
        scanner = FlowScanner(None, sip=collector, media=collector, warn=lambda _w: None)
        scanner.feed(_tcp(phone, cucm, 100, SYN))
        scanner.feed(_tcp(cucm, phone, 900, SYN | ACK))
        scanner.feed(_tcp(phone, cucm, 101, ACK, register + invite))
        scanner.feed(_tcp(cucm, phone, 901, ACK, ok))
        for data in phone_packets:
            scanner.feed(udp(p_rtp, f_rtp, data))
        for data in far_packets:
            scanner.feed(udp(f_rtp, p_rtp, data))
        scanner.close()
        collector.finish()
        (conn,) = collector.found
        return conn.calls[0]

    plain = list(rtp.tone_packets(20))
    mine, theirs = srtp.SrtpContext(suite, *pk), srtp.SrtpContext(suite, *fk)
    good = scan([mine.protect(p) for p in plain], [theirs.protect(p) for p in plain[:4]])
    assert good.media == f"phone {MAX_MEDIA_PACKETS} of {MAX_MEDIA_PACKETS} authenticated; far end 4 of 4 " \
        "authenticated", good.media
    assert good.media_differs == ""
    clear = scan(plain[:3], [theirs.protect(p) for p in plain[4:6]])
    assert clear.media.startswith("phone 0 of 3 authenticated")
    assert "3 of the phone's 3 packets do not authenticate with the key it sent" in clear.media_differs
    flipped = [bytes([*p[:-1], p[-1] ^ 1]) for p in (theirs.protect(x) for x in plain[6:8])]
    far_bad = scan([mine.protect(p) for p in plain[8:10]], flipped)
    assert "far end 0 of 2 authenticated (the phone drops the others" in far_bad.media
    assert far_bad.media_differs == ""


def test_media_kept_for_the_check_is_bounded() -> None:
    """At most MAX_MEDIA_FLOWS flows (the rest counted) and MAX_MEDIA_PACKETS datagrams each; what is not
    RTP version 2 is not kept."""
    from phoneemu.scenario.replay_sip import MAX_MEDIA_FLOWS, MAX_MEDIA_PACKETS

    c = SipCollector()
    for n in range(MAX_MEDIA_FLOWS + 5):
        c.datagram(("10.0.0.9", n), ("10.0.0.1", 9), b"\x80" + bytes(20))
    for _ in range(MAX_MEDIA_PACKETS + 3):
        c.datagram(("10.0.0.9", 0), ("10.0.0.1", 9), b"\x80" + bytes(20))
    c.datagram(("10.0.0.9", 1), ("10.0.0.1", 9), b"\x00" + bytes(20))  # version 0: not RTP
    assert len(c.flows) == MAX_MEDIA_FLOWS and c.flows_not_kept == 5
    assert len(c.flows[(("10.0.0.9", 0), ("10.0.0.1", 9))]) == MAX_MEDIA_PACKETS
    assert len(c.flows[(("10.0.0.9", 1), ("10.0.0.1", 9))]) == 1


def test_a_call_the_phone_received_is_checked_by_its_answer() -> None:
    """An INVITE the CallManager sent the phone over its registered connection, and the phone's 200: the
    answer set against §G.14 (media_rules.decide_incoming) — SRTP keys answered over TCP differ, RTP to
    the far end's SRTP offer from a non-secure phone agrees."""
    from phoneemu.crypto import srtp
    from phoneemu.net.capture import ACK, SYN
    from phoneemu.protocols import sdp, sip
    from phoneemu.scenario.replay_sip import check_sip

    phone, cucm = ("10.0.0.9", 40000), ("10.0.0.1", 5060)
    key = srtp.inline_key(*srtp.make_master_key())
    line = sdp.Crypto(tag=1, suite="AES_CM_128_HMAC_SHA1_80", key_params=key)

    def sdp_body(addr: str, port: int, srtp_on: bool) -> bytes:
        return sdp.build_sdp(sdp.AudioOffer(address=addr, port=port, formats=(0,),
                                            profile="RTP/SAVP" if srtp_on else "RTP/AVP",
                                            crypto=(line,) if srtp_on else ()))

    def received(answer_srtp: bool) -> Any:
        dev = "<sip:SEP0011223344AA@10.0.0.1>"
        register = sip.build_message("REGISTER sip:10.0.0.1 SIP/2.0", [("From", dev), ("CSeq", "1 REGISTER")])
        invite = sip.build_message("INVITE sip:SEP0011223344AA@10.0.0.9 SIP/2.0", [
            ("From", "<sip:SEP0011223344BB@10.0.0.1>;tag=x"), ("CSeq", "7 INVITE")],
            sdp_body("10.0.0.8", 30000, True))
        answer = sip.build_message("SIP/2.0 200 OK", [("CSeq", "7 INVITE")],
                                   sdp_body("10.0.0.9", 31000, answer_srtp))
        collector = SipCollector()
        scanner = FlowScanner(None, sip=collector, limits=Limits(), warn=lambda _w: None)
        scanner.feed(_tcp(phone, cucm, 100, SYN))
        scanner.feed(_tcp(cucm, phone, 900, SYN | ACK))
        scanner.feed(_tcp(phone, cucm, 101, ACK, register))
        scanner.feed(_tcp(cucm, phone, 901, ACK, sip.build_message("SIP/2.0 200 OK", [("CSeq", "1 REGISTER")])
                          + invite))
        scanner.feed(_tcp(phone, cucm, 101 + len(register), ACK, answer))
        scanner.close()
        (found,) = collector.found
        return found

    prof, store = _non_secure_phone()
    keys_out = received(answer_srtp=True)
    (call,) = keys_out.calls
    assert (call.direction, call.target, call.offered, call.answered) == (
        "in", "from sip:SEP0011223344BB@10.0.0.1", "srtp", "srtp AES_CM_128_HMAC_SHA1_80")
    (check,) = check_sip(store, prof, "0011223344AA", {"10.0.0.9"}, [keys_out])
    assert check.differs == ("from sip:SEP0011223344BB@10.0.0.1: SRTP keys answered over tcp (in the clear)",)
    assert "call from sip:SEP0011223344BB@10.0.0.1 (received): offered srtp (AES_CM_128_HMAC_SHA1_80), the " \
        "phone answered 200 srtp AES_CM_128_HMAC_SHA1_80" in check.describe()
    (check,) = check_sip(store, prof, "0011223344AA", {"10.0.0.9"}, [received(answer_srtp=False)])
    assert check.differs == () and check.as_dict()["calls"][0]["direction"] == "in"  # type: ignore[index]
