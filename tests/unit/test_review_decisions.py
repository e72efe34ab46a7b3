"""Review of the phone's new decisions (88a70cb, 152a718, 11f4156): a live boot, ``predict`` and ``replay``
decide alike, and a boot locked on a §G.9 retry is decided by the CTL refusal that locked it.

* A CTL refused on a §G.9 retry (spec §G.3.5, §G.9; ours [INF], ``phoneemu.phone.boot``) after a static file
  or a CAPF decision of the same boot failed: the boot is locked out, and its deciding decision is that CTL
  refusal — its ways out follow from it (was: the static file's or CAPF's rejection, a lockout with neither
  ways out nor a reason for none). ``replay`` of the boot's capture says the same.
* ``G.3.1-no-signer-record`` (§B.4, §G.5) and a record's certificate key (§G.3 step 2, tag 7 only without a
  certificate): the live boot, ``predict`` from the same files and ``replay`` of the boot's capture reach
  the same decisions; and phones sharing what a fleet shard shares (parsed lists, successful signature
  checks) each decide by their own record's key.

The "capture" is the live boot's downloads in request order (:class:`Recording`), indexed as a pcap scan
indexes them: the same :func:`~phoneemu.scenario.replay.boots_of` split and
:class:`~phoneemu.scenario.replay.ReplayFetcher` answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from phoneemu.crypto import keys, signatures
from phoneemu.errors import TransportError
from phoneemu.formats import signed, trustlist
from phoneemu.formats.config import Server
from phoneemu.lab.cluster import LabCluster
from phoneemu.net.fetch import MemoryFetcher
from phoneemu.phone import rules
from phoneemu.phone.boot import BootReport
from phoneemu.phone.phone import Phone
from phoneemu.phone.profile import get_profile
from phoneemu.phone.store import InternCache, TrustStore
from phoneemu.scenario._capture_flows import Download
from phoneemu.scenario.predict import predict_boot
from phoneemu.scenario.replay import CaptureIndex, boots_of, replay_boots
from tests.helpers import pristine_lab
from tests.unit.test_locked_boot import (
    CONFIG,
    LOAD,
    MAC,
    NOW,
    TARGET,
    CtlOnRetry,
    Files,
    Tvs,
    lab_config,
    make_phone,
    secure_config_with_load,
    signed_config,
)

P8861 = get_profile("cp-8861")

base_lab, lab = pristine_lab("review-decisions", now=NOW, phones={MAC: {"now": NOW, "lsc_key": "rsa1024"}})


class Recording:
    """A MemoryFetcher that keeps what each request was answered with (bytes, or None: not found)."""

    def __init__(self, files: Files) -> None:
        self.inner = MemoryFetcher(files)
        self.log: list[tuple[str, bytes | None]] = []

    async def fetch(self, name: str) -> bytes:
        try:
            data = await self.inner.fetch(name)
        except TransportError:
            self.log.append((name, None))
            raise
        self.log.append((name, data))
        return data


def live_boot(p: Phone, files: Files, log: list[tuple[str, bytes | None]]) -> BootReport:
    """Boot ``p`` on ``files``; its requests and answers appended to ``log`` (the capture)."""
    f = Recording(files)
    report = asyncio.run(asyncio.wait_for(p.boot(TARGET, fetcher=f), 60))
    log += f.log
    return report


def replayed(lab: LabCluster, log: Sequence[tuple[str, bytes | None]]) -> list[BootReport]:
    """``replay`` of the captured boots: TVS answers "not found" to every question, as :class:`Tvs` does."""
    downloads = tuple(
        Download(name=name, protocol="tftp", client=("127.0.0.5", 40000), server=("127.0.0.1", 69),
                 start=float(i), end=float(i), outcome="ok" if data is not None else "not-found", data=data,
                 size=None if data is None else len(data), order=i)
        for i, (name, data) in enumerate(log))
    boots = boots_of(CaptureIndex(downloads=downloads, packets=0), MAC)
    results = asyncio.run(asyncio.wait_for(replay_boots(
        boots, MAC, now=NOW, image_signers=[lab.identity("imagesigning").cert],
        tvs_certs=[lab.identity("imagesigning").cert]), 60))  # vouches only for a certificate never asked
    return [r.report for r in results]


def outcome(r: BootReport) -> tuple[Any, ...]:
    """What a boot decided: its outcome, deciding decision and every decision, in order."""
    deciding = None if r.deciding is None else (r.deciding.rule, r.deciding.kind, r.deciding.reason)
    return (r.ok, r.locked_out, r.config, r.firmware, dict(r.trust), deciding,
            [(d.rule, d.kind, d.accepted) for d in r.decisions])


# --------------------------------------------------------------------------- a lock on a §G.9 retry decides
@pytest.mark.parametrize("before", ["static file refused", "CAPF waiting for an authentication string"])
def test_a_ctl_refused_on_a_g9_retry_decides_the_lockout_before_a_static_file_or_capf(
        lab: LabCluster, before: str) -> None:
    """The boot reads a config (encrypted mode, a new load) that names a static file the phone would
    refuse (G.4-tvs-unknown-signer) or a CAPF operation it would wait on (F.7-wait-auth-string: capfAuthMode
    1, nothing typed in), and a §G.9 retry's CTL is refused: locked out before either is reached (the
    retries come before the config is acted on), and the deciding decision is the CTL refusal, whose ways
    out the report gives. Was: a static file's or CAPF's rejection decided a lockout it did not cause.
    ``replay`` of the boot's capture decides the same as the live boot."""
    p = make_phone(lab, Tvs(lab))
    log: list[tuple[str, bytes | None]] = []
    live_boot(p, lab.get, log)
    rogue = trustlist.build(kind="CTL", records=lab.itl_records(), signer=lab.identity("capf").signer,
                            timestamp=NOW)
    tones: bytes | None = None
    if before == "static file refused":
        cfg_data = secure_config_with_load(lab)
        tones = signed.build(body=b"<tones/>", filename="g3-tones.xml.sgn",
                             signer=lab.identity("capf").signer, timestamp=NOW)
    else:
        lab.set_load(LOAD, now=NOW)
        cfg_data = signed_config(lab, dataclasses.replace(
            lab_config(lab), device_security_mode=3, load_information=LOAD, capf_auth_mode=1,
            capf_servers=(Server(host="127.0.0.1", port=3804),)))
    on_retry = CtlOnRetry(lab, rogue, cfg_data)
    r = live_boot(p, lambda n: tones if n == "g3-tones.xml.sgn" and tones else on_retry(n), log)
    failed_first = "G.4-tvs-unknown-signer" if tones else "F.7-wait-auth-string"
    rules_seen = [d.rule for d in r.decisions]
    # the §G.9 retries come before the config is acted on (phoneemu.phone.boot): neither is reached
    assert failed_first not in rules_seen and "G.9-retry-trust-file" in rules_seen, rules_seen
    assert r.locked_out and not r.ok and rules_seen[-1] == "G.3.5-locked-ignores-config"
    assert r.deciding is not None and r.deciding.kind == "CTL" and not r.deciding.accepted
    assert r.deciding.rule == "G.3.4-tvs-unknown-signer" and r.deciding.reason.startswith("§G.9 retry 1:")
    doc = r.as_dict()
    assert doc["ways_out"] or doc["no_way_out"], doc["deciding"]  # a lockout says what follows it
    assert p.store.config is not None and p.store.config.config.device_security_mode != 3  # the held one
    assert p.store.config.file == CONFIG and p.store.firmware_load is None
    first, again = replayed(lab, log)
    assert outcome(again) == outcome(r)
    assert first.ok and again.deciding is not None and again.deciding.reason == r.deciding.reason


# --------------------------------------------------------------------------- live, predict and replay agree
def _predicted(tmp_path: Path, installed: dict[str, bytes], new: dict[str, bytes]) -> BootReport:
    """``predict`` of a phone holding ``installed`` (ITL, config) on the ``new`` files (by name)."""
    def written(folder: str, files: dict[str, bytes]) -> dict[str, Path]:
        (tmp_path / folder).mkdir()
        for name, data in files.items():
            (tmp_path / folder / name).write_bytes(data)
        return {name: tmp_path / folder / name for name in files}

    held, given = written("installed", installed), written("new", new)
    result = asyncio.run(asyncio.wait_for(predict_boot(
        list(given.values()), installed_itl=held["ITLFile.tlv"], installed_config=held[CONFIG], mac=MAC,
        now=NOW), 60))
    return result.report


def _three_ways(lab: LabCluster, tmp_path: Path, first_itl: bytes,
                new_itl: bytes) -> tuple[BootReport, BootReport, BootReport]:
    """The second boot of a phone that took ``first_itl`` at first contact, served ``new_itl``: live, as
    ``predict`` forecasts it from the files, and as ``replay`` decides it from the capture."""
    p = make_phone(lab, Tvs(lab))
    log: list[tuple[str, bytes | None]] = []
    def serving(itl: bytes) -> Callable[[str], bytes | None]:  # ITLSEP<MAC>.tlv and ITLFile.tlv
        return lambda n: itl if n.startswith("ITL") else lab.get(n)

    assert live_boot(p, serving(first_itl), log).ok
    cfg = lab.get(CONFIG)
    assert cfg is not None
    upto = len(log)
    live = live_boot(p, serving(new_itl), log)
    served = {name: data for name, data in log[upto:] if data is not None}  # the cluster's files
    predicted = _predicted(tmp_path, {"ITLFile.tlv": first_itl, CONFIG: cfg}, served)
    _first, again = replayed(lab, log)
    return live, predicted, again


def test_an_itl_not_naming_its_signer_is_refused_alike_live_predicted_and_replayed(lab: LabCluster,
                                                                                  tmp_path: Path) -> None:
    """G.3.1-no-signer-record: the next ITL is signed by the installed ITL's ITLRecovery SAST record but
    lists ITLRecovery in no record of its own — refused, the phone locked out, its config kept."""
    itlr = lab.identity("itlrecovery")
    first_itl = lab.get("ITLFile.tlv")
    assert first_itl is not None
    unnamed = trustlist.build(kind="ITL", records=lab.itl_records()[1:], signer=itlr.signer,
                              timestamp=NOW + 5)
    live, predicted, again = _three_ways(lab, tmp_path, first_itl, unnamed)
    assert live.deciding is not None and live.deciding.rule == "G.3.1-no-signer-record" and live.locked_out
    assert outcome(predicted) == outcome(live)
    assert outcome(again) == outcome(live)


def test_a_record_whose_tag7_is_another_key_verifies_by_its_certificate_alike(lab: LabCluster,
                                                                             tmp_path: Path) -> None:
    """§G.3 step 2: the installed ITL's ITLRecovery SAST record carries the CAPF key in tag 7; the next ITL,
    signed by the ITLRecovery certificate's key, is an update (G.3.3) for the live boot, ``predict`` and
    ``replay`` alike."""
    itlr, capf = lab.identity("itlrecovery"), lab.identity("capf")
    recs = lab.itl_records()
    mixed = [dataclasses.replace(recs[0], public_key=keys.encode_record_public_key(capf.key.public_key())),
             *recs[1:]]
    assert mixed[0].key_disagreement() is not None
    first_itl = trustlist.build(kind="ITL", records=mixed, signer=itlr.signer, timestamp=NOW)
    next_itl = trustlist.build(kind="ITL", records=recs, signer=itlr.signer, timestamp=NOW + 5)
    live, predicted, again = _three_ways(lab, tmp_path, first_itl, next_itl)
    assert live.ok and live.trust["ITL"] == "updated" and "G.3.3-signed-by-itl-sast" in [
        d.rule for d in live.decisions]
    assert outcome(predicted) == outcome(live)
    assert outcome(again) == outcome(live)


# --------------------------------------------------------------------------- what a fleet shard shares
@pytest.mark.parametrize("first", ["certificate", "tag 7 only"])
def test_phones_sharing_parsed_lists_and_checked_signatures_decide_by_their_own_records(lab: LabCluster,
                                                                                       first: str) -> None:
    """A fleet shard's phones share the parse of identical files (an InternCache keyed by their bytes) and
    the signature checks that succeeded (a VerifyCache keyed by key, signature and data): what one phone
    verified never decides for another whose record gives another key (§G.3 step 2). Two phones hold an
    ITL whose ITLRecovery SAST record carries the CAPF key in tag 7 — one with ITLRecovery's certificate
    too (verified by the certificate's key), one without (by tag 7) — and decide one new ITL signed by
    ITLRecovery, in either order."""
    itlr, capf = lab.identity("itlrecovery"), lab.identity("capf")
    recs = lab.itl_records()
    tag7 = keys.encode_record_public_key(capf.key.public_key())
    held = {"certificate": dataclasses.replace(recs[0], public_key=tag7),
            "tag 7 only": dataclasses.replace(recs[0], certificate=None, public_key=tag7)}
    shared = InternCache()
    stores: dict[str, TrustStore] = {}
    for how, rec in held.items():
        stores[how] = TrustStore(profile=P8861, intern=shared)
        itl = trustlist.build(kind="ITL", records=[rec, *recs[1:]], signer=itlr.signer, timestamp=NOW)
        taken = rules.decide_trust_list(stores[how], itl, kind="ITL", profile=P8861, now=NOW)
        assert taken.rule == "G.2-first-itl-tofu", taken
        stores[how].apply(taken)
    new = trustlist.build(kind="ITL", records=recs, signer=itlr.signer, timestamp=NOW + 5)
    cache = signatures.VerifyCache()
    old = signatures.set_verify_cache(cache)
    try:
        got = {how: rules.decide_trust_list(stores[how], new, kind="ITL", profile=P8861, now=NOW).rule
               for how in sorted(held, key=lambda h: h != first)}
    finally:
        signatures.set_verify_cache(old)
    assert got == {"certificate": "G.3.3-signed-by-itl-sast", "tag 7 only": "G.3-bad-signature"}
    assert len(cache) == 1  # the one check that succeeded (by the certificate's key)
