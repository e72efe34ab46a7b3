"""Formats benchmark: ``python bench/formats.py [--seconds S]``.

Prints operations per second, on one core, for:

* parse + verify of a 39-certificate ITL (RSA-2048 records and signer, SHA-1) — the phone's
  hot path; target >= 5,000/s. Measured twice: with the record-key cache warm (the same ITL is
  re-verified, as a phone does on every boot; the header and record decode memos of
  ``formats._tlv`` are warm too) and cold (key cache and decode memos cleared before every iteration);
* parse + verify of a 10 KB ``.sgn``;
* decrypt of an ``.enc.sgn`` (PKI method) when ``phoneemu.formats.encrypted`` exists;
* SRTP protect and unprotect of a 20 ms G.711 packet (a call's media, spec §G.14);
* a bare RSA-2048 PKCS#1 v1.5 SHA-1 verify over the same ITL bytes (the floor), and the ratio.

Each figure is the best of three rounds, so a busy machine disturbs it less; still run it on an
otherwise idle core for figures worth writing down.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import time
from collections.abc import Callable

from phoneemu.crypto import certs, keys, signatures
from phoneemu.crypto.hashes import HashAlg
from phoneemu.formats import header, signed, trustlist
from phoneemu.formats._tlv import clear_memos

NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def _identity(name: str, serial: int) -> header.FileSigner:
    key = keys.generate_key(keys.KeySpec.parse("rsa2048"))
    cert = certs.issue_certificate(
        certs.CertRequest(subject=f"CN={name};OU=VTG;O=bench;C=NZ", public_key=key.public_key(),
                          serial=serial, not_before=NOW, not_after=NOW + dt.timedelta(days=3650)),
        issuer_key=key)
    return header.FileSigner(key=key, cert=cert)


def _rate(fn: Callable[[], object], seconds: float, rounds: int = 3) -> float:
    """Best of ``rounds`` runs of ``seconds / rounds`` each (robust against a busy machine)."""
    fn()
    best = 0.0
    for _ in range(rounds):
        n, start = 0, time.perf_counter()
        deadline = start + seconds / rounds
        while True:
            for _ in range(20):
                fn()
            n += 20
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, n / (now - start))
    return best


def _srtp_rates(secs: float) -> list[tuple[str, float]]:
    """SRTP protect and unprotect of a 20 ms G.711 packet (spec §G.14, RFC 3711), AES_CM_128_HMAC_SHA1_80:
    what a call's media costs a phone per packet each way."""
    from phoneemu.crypto import srtp
    from phoneemu.protocols import rtp

    key, salt = srtp.make_master_key()
    sender = srtp.SrtpContext("AES_CM_128_HMAC_SHA1_80", key, salt)
    packets = [rtp.build_rtp(rtp.RtpPacket(payload_type=0, sequence=n & 0xFFFF, timestamp=160 * n, ssrc=7,
                                           payload=rtp.g711_tone(n))) for n in range(1 << 16)]
    protected: list[bytes] = []
    state = {"n": 0}

    def protect() -> None:
        n = state["n"]
        state["n"] = n + 1
        wire = sender.protect(packets[n & 0xFFFF])
        if len(protected) < 200_000:
            protected.append(wire)

    rate_p = _rate(protect, secs)
    receiver = [srtp.SrtpContext("AES_CM_128_HMAC_SHA1_80", key, salt)]
    stream = [iter(protected)]

    def unprotect() -> None:
        wire = next(stream[0], None)
        if wire is None:  # the stream again, to a fresh receiver (the old one would call it a replay)
            receiver[0], stream[0] = srtp.SrtpContext("AES_CM_128_HMAC_SHA1_80", key, salt), iter(protected)
            wire = next(stream[0])
        receiver[0].unprotect(wire)

    rate_u = _rate(unprotect, secs)
    return [("SRTP protect 172 B RTP (AES_CM_128_HMAC_SHA1_80)", rate_p),
            ("SRTP unprotect (tag verified, replay window)", rate_u)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0,
                    help="time per measurement, split in 3 rounds, best kept (default 3)")
    args = ap.parse_args()
    secs: float = args.seconds

    print("generating 39 RSA-2048 identities ...", flush=True)
    sast = _identity("ITLRECOVERY_bench", 1000)
    others = [_identity(f"node{i}", 2000 + i) for i in range(38)]
    records = [trustlist.TrustRecord.from_certificate(sast.cert, trustlist.Role.SAST)]
    roles = [trustlist.Role.CCM_TFTP, trustlist.Role.TVS, trustlist.Role.CAPF]
    records += [trustlist.TrustRecord.from_certificate(o.cert, roles[i % 3], dns_name=f"node{i}",
                                                       ip=f"10.0.0.{i + 1}") for i, o in enumerate(others)]
    itl = trustlist.build(kind="ITL", records=records, signer=sast, timestamp=1767115542)
    tl = trustlist.parse(itl)
    tl.verify_self()
    print(f"ITL: {len(itl)} bytes, {len(tl)} records (limit {trustlist.DEFAULT_LIMIT})")

    def itl_warm() -> None:
        trustlist.parse(itl).verify_self()

    def itl_cold() -> None:
        trustlist._load_key.cache_clear()
        clear_memos()
        trustlist.parse(itl).verify_self()

    body = (b"<device>" + b"x" * 10_000 + b"</device>")[:10_240]
    sgn = signed.build(body=body, filename="SEP001122334455.cnf.xml.sgn", signer=others[0],
                       timestamp=1767115542)

    def sgn_verify() -> None:
        signed.verify(signed.parse(sgn), others[0].cert)

    pub = certs.cert_public_key(sast.cert)
    msg, sig = tl.signed_message, tl.header.signature

    def bare() -> None:
        signatures.verify(pub, sig, msg, HashAlg.SHA1)

    results: list[tuple[str, float]] = []
    results.append(("ITL 39 certs parse+verify (warm key cache, decode memos)", _rate(itl_warm, secs)))
    results.append(("ITL 39 certs parse+verify (cold)", _rate(itl_cold, secs)))
    results.append((f"sgn {len(sgn)} B parse+verify", _rate(sgn_verify, secs)))
    try:
        enc = importlib.import_module("phoneemu.formats.encrypted")
    except ImportError:
        print("note: phoneemu.formats.encrypted not available; .enc.sgn decrypt skipped")
    else:
        phone = _identity("SEP001122334455", 3000)
        blob = enc.build_pki(plaintext=body, filename="SEP001122334455.cnf.xml.enc.sgn", signer=others[0],
                             recipient_cert=phone.cert, timestamp=1767115542, rand=os.urandom)

        def decrypt() -> None:
            clear_memos()  # measure the real RSA unwrap, not a remembered one
            enc.decrypt_pki(enc.parse(blob), phone.key)

        results.append((f"enc.sgn {len(blob)} B parse+decrypt (RSA-2048 unwrap)", _rate(decrypt, secs)))
    results += _srtp_rates(secs)
    floor = _rate(bare, secs)
    results.append(("bare RSA-2048 SHA-1 verify over the ITL bytes (floor)", floor))
    width = max(len(n) for n, _ in results)
    for name, rate in results:
        print(f"{name:<{width}}  {rate:>10,.0f} ops/s  ({rate / floor:5.2f} x floor)")
    warm = results[0][1]
    print(f"target ITL parse+verify >= 5,000/s: {'MET' if warm >= 5000 else 'NOT MET'} ({warm:,.0f}/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
