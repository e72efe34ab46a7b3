"""Per-phone Python heap of an idle booted phone's trust store (issue #4: <= 32 KiB beyond shared data).

Builds one cluster's ITL, CTL and signed config, boots N phones through the real rules
(``decide_trust_list`` / ``decide_config`` + ``TrustStore.apply``), each from its own copy of
the downloaded bytes (as a fetch would give it) and with its own MIC (certificate DER + RSA-2048
key PEM, issued per phone), and measures the traced heap with tracemalloc:

* shared: the first phone (parsed trust lists, parsed config, intern cache entries);
* per phone: (heap after N phones - heap after the first) / (N - 1), with and without an
  EventLog holding a boot's worth of events.

Usage: ``python bench/phone_memory.py [N]`` (default 1000, at least 2). Prints the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import time
import tracemalloc
from typing import TYPE_CHECKING

from phoneemu.crypto import certs, keys
from phoneemu.crypto.keys import KeySpec
from phoneemu.formats import config as config_fmt
from phoneemu.formats import signed, trustlist
from phoneemu.formats.config import DeviceConfig, Server
from phoneemu.formats.header import FileSigner
from phoneemu.formats.trustlist import Role, TrustRecord
from phoneemu.phone import rules
from phoneemu.phone.events import EventLog
from phoneemu.phone.profile import get_profile
from phoneemu.phone.store import Credential, InternCache, TrustStore

if TYPE_CHECKING:
    from phoneemu.lab.cluster import LabCluster

NOW = 1_800_000_000
PROFILE = get_profile("cp-8861")
CFG = "SEP001122334455.cnf.xml.sgn"


def _identity(name: str, spec: str = "rsa2048", serial: int = 1,
              issuer: FileSigner | None = None) -> FileSigner:
    key = keys.generate_key(KeySpec.parse(spec), unsafe_seed=f"bench-{name}")
    t = dt.datetime.fromtimestamp(NOW, tz=dt.UTC)
    req = certs.CertRequest(subject=f"CN={name};OU=VTG;O=Lab", public_key=key.public_key(), serial=serial,
                            not_before=t - dt.timedelta(days=1), not_after=t + dt.timedelta(days=3650))
    cert = certs.issue_certificate(req, issuer_key=issuer.key if issuer else key,
                                   issuer=issuer.cert if issuer else None)
    return FileSigner(key=key, cert=cert)


def _cluster() -> tuple[bytes, bytes, bytes]:
    rec, cm, tvs, capf = (_identity(n, serial=i + 10) for i, n in enumerate(
        ("itlrecovery", "callmanager", "tvs", "capf")))
    def r(who: FileSigner, role: int) -> TrustRecord:
        return TrustRecord.from_certificate(who.cert, role)

    itl = trustlist.build(kind="ITL", signer=rec, timestamp=NOW, records=[
        r(rec, Role.SAST), r(cm, Role.CCM_TFTP), r(tvs, Role.TVS), r(capf, Role.CAPF)])
    ctl = trustlist.build(kind="CTL", signer=cm, timestamp=NOW, records=[
        r(cm, Role.SAST), r(rec, Role.SAST), r(cm, Role.CCM_TFTP), r(capf, Role.CAPF)])
    xml = config_fmt.build(DeviceConfig(device_name="SEP001122334455",
                                        tvs_servers=(Server(host="127.0.0.1", port=2445),)))
    return itl, ctl, signed.build(body=xml, filename=CFG, signer=cm, timestamp=NOW)


def _boot(store: TrustStore, itl: bytes, ctl: bytes, cfg: bytes, log: EventLog | None) -> None:
    for kind, raw in (("CTL", ctl), ("ITL", itl)):
        d = rules.decide_trust_list(store, bytes(bytearray(raw)), kind=kind,  # type: ignore[arg-type]
                                    profile=PROFILE, now=NOW)
        assert d.accepted, d
        store.apply(d)
        if log is not None:
            log.record(d, time=NOW, phone="SEP")
    d = rules.decide_config(store, CFG, bytes(bytearray(cfg)), profile=PROFILE, now=NOW)
    assert d.accepted, d
    store.apply(d)
    if log is not None:
        log.record(d, time=NOW, phone="SEP")
        for name in ("CTLSEP001122334455.tlv", "ITLSEP001122334455.tlv"):
            log.status(f"File Not Found <{name}>")


def measure(n: int, *, with_log: bool) -> tuple[float, float]:
    """(shared bytes of the first phone, per-phone bytes of the others)."""
    itl, ctl, cfg = _cluster()
    mic_ca = _identity("manufacturer-ca", serial=99)
    mic_key = keys.generate_key(KeySpec.parse("rsa2048"), unsafe_seed="bench-mic")
    mics: list[tuple[bytes, bytes]] = []
    t = dt.datetime.fromtimestamp(NOW, tz=dt.UTC)
    for i in range(n):  # one MIC per phone (one key reused for speed; the PEM is copied per phone)
        req = certs.CertRequest(subject=f"CN=SEP{i:012X};O=Cisco", public_key=mic_key.public_key(),
                                serial=1000 + i, not_before=t, not_after=t + dt.timedelta(days=3650))
        cert = certs.issue_certificate(req, issuer_key=mic_ca.key, issuer=mic_ca.cert)
        mics.append((certs.cert_der(cert), keys.private_key_pem(mic_key)))
    intern = InternCache()
    phones: list[tuple[TrustStore, EventLog | None]] = []

    def add(i: int) -> None:
        der, pem = mics[i]
        store = TrustStore(profile=PROFILE, intern=intern,
                           mic=Credential(cert_der=bytes(bytearray(der)), key_pem=bytes(bytearray(pem))))
        log = EventLog() if with_log else None
        _boot(store, itl, ctl, cfg, log)
        phones.append((store, log))

    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    add(0)
    gc.collect()
    first = tracemalloc.get_traced_memory()[0]
    for i in range(1, n):
        add(i)
    gc.collect()
    total = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert all(p[0].itl is phones[0][0].itl for p in phones)  # one shared parsed ITL
    return first - base, (total - first) / max(1, n - 1)


def measure_booted_phones(n: int) -> float:
    """Heap per whole :class:`Phone` after a real boot sequence (rules, event log, TVS cache, report)
    against a lab cluster's files served in memory; the first phone's boot warms the shared caches."""
    import tempfile
    from pathlib import Path

    from phoneemu.lab.cluster import LabCluster

    with tempfile.TemporaryDirectory(prefix="phoneemu-bench-memory-") as tmp:
        lab = LabCluster.init(Path(tmp) / "lab", seed=3, key="rsa1024")
        return _per_booted_phone(lab, n)


def _per_booted_phone(lab: LabCluster, n: int) -> float:
    """Heap per phone of ``n`` phones booted against ``lab``, the first phone's not counted."""
    import asyncio

    from phoneemu.net.fetch import MemoryFetcher
    from phoneemu.phone.boot import BootTarget
    from phoneemu.phone.phone import Phone

    macs = [f"0D{i:010X}" for i in range(n)]
    lab.add_phones(macs)
    ids = {m: lab.phone_identity(m) for m in macs}
    fetcher = MemoryFetcher(lab.get)
    target = BootTarget(host="127.0.0.1", tftp_port=69)
    now = lab.clock

    async def run() -> float:
        def phone(mac: str) -> Phone:
            return Phone(mac=mac, profile=PROFILE, flash=None, clock=lambda: now, mic=ids[mac])
        first = phone(macs[0])
        if not (await first.boot(target, fetcher=fetcher)).ok:
            raise SystemExit("first phone did not boot")
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        kept = []
        for mac in macs[1:]:
            p = phone(mac)
            if not (await p.boot(target, fetcher=fetcher)).ok:
                raise SystemExit(f"{mac} did not boot")
            kept.append(p)
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        return used / max(1, len(kept))

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("phones", type=int, nargs="?", default=1000,
                    help="phones booted (default 1000; at least 2)")
    n = ap.parse_args(argv).phones
    if n < 2:
        ap.error("phones must be at least 2 (the first phone is the shared data)")
    t0 = time.perf_counter()
    shared, per = measure(n, with_log=False)
    shared_l, per_l = measure(n, with_log=True)
    per_phone = measure_booted_phones(n)
    took = time.perf_counter() - t0
    print(f"phones: {n}  profile: {PROFILE.name}  (ITL+CTL+signed config, RSA-2048 MIC per phone)")
    print(f"shared (first phone, parsed lists + config): {shared / 1024:.1f} KiB")
    print(f"per phone, trust store + MIC:                {per / 1024:.2f} KiB")
    print(f"per phone, + EventLog with a boot's events:  {per_l / 1024:.2f} KiB"
          f"   (first phone {shared_l / 1024:.1f} KiB)")
    print(f"per booted Phone (orchestrator, event log, report; real boot): {per_phone / 1024:.2f} KiB")
    worst = max(per, per_l, per_phone)
    print(f"target <= 32 KiB per idle phone: {'met' if worst <= 32 * 1024 else 'NOT met'}"
          f"   ({took:.1f} s)")


if __name__ == "__main__":
    main()
