"""State machine over the trust store: whatever the sequence of files, TVS answers, clock steps, erases,
factory resets and reboots (flash save/load), every installed CTL/ITL/config traces to an accepting
Decision of a named rule, and no stored trust file exceeds the profile limit (spec §G, §B.5)."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import tempfile
from functools import cache
from pathlib import Path

from cryptography import x509
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from phoneemu.crypto import certs
from phoneemu.crypto.keys import KeySpec, PrivateKey, generate_key
from phoneemu.formats import config as config_fmt
from phoneemu.formats import signed, trustlist
from phoneemu.formats.config import DeviceConfig, Server
from phoneemu.formats.header import FileSigner
from phoneemu.formats.trustlist import Role, TrustRecord
from phoneemu.phone import rules
from phoneemu.phone.events import Decision
from phoneemu.phone.flash import Flash
from phoneemu.phone.profile import profile_from_dict
from phoneemu.phone.store import TVS_CACHE_MAX, InternCache, TrustStore, TvsAnswer, TvsResult, TvsStatus

NOW = 1_800_000_000
PROFILE = profile_from_dict("cp-8861", {"trust_list_limit": 6000})
CFG = "SEP001122334455.cnf.xml"
KNOWN_RULES = frozenset(re.findall(r"``((?:G|D)[.0-9]*-[a-z0-9.-]+)``", rules.__doc__ or ""))


@cache
def _ident(name: str) -> tuple[PrivateKey, x509.Certificate]:
    key = generate_key(KeySpec(kind="rsa", bits=1024), unsafe_seed=f"machine-{name}")
    t = dt.datetime.fromtimestamp(NOW, tz=dt.UTC)
    req = certs.CertRequest(subject=f"CN={name};O=Lab", public_key=key.public_key(), serial=100 + len(name),
                            not_before=t - dt.timedelta(days=1), not_after=t + dt.timedelta(days=3000))
    return key, certs.issue_certificate(req, issuer_key=key)


def _rec(name: str, role: int) -> TrustRecord:
    return TrustRecord.from_certificate(_ident(name)[1], role)


def _signer(name: str) -> FileSigner:
    key, cert = _ident(name)
    return FileSigner(key=key, cert=cert)


def _tamper(b: bytes) -> bytes:
    return b[:-1] + bytes([b[-1] ^ 1])


@cache
def _files() -> dict[str, list[bytes]]:
    a = [_rec("rec-a", Role.SAST), _rec("cm-a", Role.CCM_TFTP), _rec("tvs-a", Role.TVS)]
    b = [_rec("rec-b", Role.SAST), _rec("cm-b", Role.CCM_TFTP)]
    itl_a = trustlist.build(kind="ITL", records=a, signer=_signer("rec-a"), timestamp=NOW)
    itl_a2 = trustlist.build(kind="ITL", records=a, signer=_signer("rec-a"), timestamp=NOW + 1)
    itl_b = trustlist.build(kind="ITL", records=b, signer=_signer("rec-b"), timestamp=NOW)
    rollback = trustlist.build(kind="ITL", records=trustlist.rollback_records(a), signer=_signer("rec-a"),
                               timestamp=NOW + 2)
    oversize = trustlist.build(kind="ITL", records=a * 3, signer=_signer("rec-a"), timestamp=NOW + 3)
    assert len(oversize) > PROFILE.trust_list_limit
    ctl_a = trustlist.build(kind="CTL", records=[_rec("cm-a", Role.SAST), _rec("cm-a", Role.CCM_TFTP)],
                            signer=_signer("cm-a"), timestamp=NOW)
    ctl_b = trustlist.build(kind="CTL", records=[_rec("cm-b", Role.SAST), _rec("cm-b", Role.CCM_TFTP)],
                            signer=_signer("cm-b"), timestamp=NOW)
    xml = config_fmt.build(DeviceConfig(device_name="SEP001122334455",
                                        tvs_servers=(Server(host="127.0.0.1", port=2445),)))
    sgn_a = signed.build(body=xml, filename=CFG + ".sgn", signer=_signer("cm-a"), timestamp=NOW)
    sgn_b = signed.build(body=xml, filename=CFG + ".sgn", signer=_signer("cm-b"), timestamp=NOW)
    return {
        "ITL": [itl_a, itl_a2, itl_b, rollback, oversize, _tamper(itl_a2), b"\x00junk"],
        "CTL": [ctl_a, ctl_b, _tamper(ctl_b)],
        "config": [xml, sgn_a, sgn_b, _tamper(sgn_a)],
    }


def _answers() -> list[TvsResult | None]:
    def ans(name: str, roles: set[int], ttl: int) -> TvsAnswer:
        return TvsAnswer(cert_der=certs.cert_der(_ident(name)[1]), roles=frozenset(roles), ttl=ttl)
    return [None, TvsStatus.UNREACHABLE, TvsStatus.NOT_FOUND, ans("rec-b", {0}, 600), ans("cm-b", {2}, 60),
            ans("cm-b", {0, 2}, 3600), ans("rec-b", {3}, 600)]


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="phoneemu-machine-"))
        self.intern = InternCache()
        self.store = TrustStore(profile=PROFILE, intern=self.intern)
        self.now = NOW
        # what the accepting decisions said should be installed: kind -> (raw bytes, rule)
        self.expected: dict[str, tuple[bytes, str] | None] = {"CTL": None, "ITL": None, "config": None}

    @initialize(booted=st.booleans())
    def start(self, booted: bool) -> None:
        """Half the runs start as a phone booted on cluster A (ITL A + signed config listing TVS)."""
        if booted:
            self.offer_trust_list("ITL", 0, 0)
            self.offer_config(1, 0)
            assert self.store.itl_rule == "G.2-first-itl-tofu" and self.store.tvs_servers

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def _apply(self, d: Decision, kind: str) -> None:
        assert d.rule in KNOWN_RULES, d.rule
        if d.accepted:
            assert d.reason_code is None and d.needs_tvs is None
        self.store.apply(d)
        if d.accepted and d.artefact is not None:
            raw = d.artefact.raw if isinstance(d.artefact, trustlist.TrustList) else \
                d.artefact.xml  # type: ignore[attr-defined]
            self.expected[kind] = (raw, d.rule)

    def _ask(self, first: Decision, answer: TvsResult | None, redo: object) -> Decision:
        if first.needs_tvs is None or answer is None:
            return first
        self.store.cache_tvs(first.needs_tvs, answer, self.now)
        d = redo(answer)  # type: ignore[operator]
        assert isinstance(d, Decision) and not d.pending
        return d

    @rule(kind=st.sampled_from(["CTL", "ITL"]), i=st.integers(0, 6), a=st.integers(0, 6))
    def offer_trust_list(self, kind: str, i: int, a: int) -> None:
        files = _files()[kind]
        data = files[i % len(files)]
        answer = _answers()[a]

        def decide(tvs: TvsResult | None = None) -> Decision:
            return rules.decide_trust_list(self.store, data, kind=kind, profile=PROFILE,  # type: ignore[arg-type]
                                           now=self.now, tvs_answer=tvs)
        self._apply(self._ask(decide(), answer, decide), kind)

    @rule(i=st.integers(0, 3), a=st.integers(0, 6))
    def offer_config(self, i: int, a: int) -> None:
        data = _files()["config"][i]
        name = CFG if i == 0 else CFG + ".sgn"
        answer = _answers()[a]

        def decide(tvs: TvsResult | None = None) -> Decision:
            return rules.decide_config(self.store, name, data, profile=PROFILE, now=self.now, tvs_answer=tvs)
        d = self._ask(decide(), answer, decide)
        if self.store.locked:
            assert d.rule == "G.3.5-locked-ignores-config" and not d.accepted
        self._apply(d, "config")

    @rule(seconds=st.integers(0, 7200))
    def advance_clock(self, seconds: int) -> None:
        self.now += seconds
        self.store.expire_tvs(self.now)

    @rule()
    def erase(self) -> None:
        self.store.erase_trust_lists()
        self.expected["CTL"] = self.expected["ITL"] = None

    @rule()
    def factory_reset(self) -> None:
        self.store.factory_reset()
        self.expected = {"CTL": None, "ITL": None, "config": None}

    @rule()
    def reboot(self) -> None:
        """Save to flash and boot from it (locked state and TVS cache are RAM-only)."""
        fl = Flash(self.dir, profile=PROFILE, intern=self.intern)
        fl.save(self.store)
        self.store = fl.load()
        assert fl.problems == []

    @invariant()
    def installed_files_trace_to_accepting_rules(self) -> None:
        s = self.store
        for kind, tl, rule_name in (("CTL", s.ctl, s.ctl_rule), ("ITL", s.itl, s.itl_rule)):
            exp = self.expected[kind]
            if tl is None:
                assert exp is None
                continue
            assert exp is not None and tl.raw == exp[0] and rule_name == exp[1] and rule_name in KNOWN_RULES
            assert len(tl.raw) <= PROFILE.trust_list_limit
        exp = self.expected["config"]
        if s.config is None:
            assert exp is None
        else:
            assert exp is not None and s.config.xml == exp[0] and s.config_rule == exp[1]

    @invariant()
    def tvs_cache_bounded(self) -> None:
        assert self.store.tvs_cache_size <= TVS_CACHE_MAX


StoreMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)
TestStoreMachine = StoreMachine.TestCase
