"""The verdicts CI relies on, each rule stated once and checked both ways (found by mutation testing of
scenario/checks.py, results.py and runner.py: a changed comparison or a dropped line there went unnoticed
by the fast tests, and a CI run would have gone green on a broken cluster, or red on a good one).

The rules: results.py's module docstring (design §3.10: PASS / FAIL, XFAIL / XPASS, worst first, a run
fails on FAIL, XPASS or ERROR), an expectation's phones each checked (runner.py ``_evaluate``; ``{mac}``
in an expected text is the phone's MAC) and each check's own rule (checks.py's module docstring and the
check's docstring)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

import pytest

from phoneemu.errors import VerifyReason
from phoneemu.formats.trustlist import Role
from phoneemu.phone.events import Decision
from phoneemu.scenario import checks, runner
from phoneemu.scenario.model import Expectation, HoldsFor
from phoneemu.scenario.results import (
    CheckResult,
    ExpectationResult,
    Outcome,
    RunSummary,
    ScenarioResult,
    apply_xfail,
    combine,
)
from tests.helpers import FakePhoneView

# --- results.py: the verdict of an expectation, a scenario and a run ---------------------------------


def test_xfail_turns_fail_into_xfail_and_pass_into_xpass() -> None:
    assert apply_xfail(True, None) is Outcome.PASS
    assert apply_xfail(False, None) is Outcome.FAIL
    assert apply_xfail(True, "known bug") is Outcome.XPASS      # the mark is stale
    assert apply_xfail(False, "known bug") is Outcome.XFAIL


def test_only_fail_xpass_and_error_are_bad() -> None:
    """A run fails (non-zero exit) on any FAIL or XPASS, or on an ERROR; PASS and XFAIL do not fail it."""
    assert {o for o in Outcome if o.bad} == {Outcome.FAIL, Outcome.XPASS, Outcome.ERROR}


_WORST_FIRST = [Outcome.ERROR, Outcome.FAIL, Outcome.XPASS, Outcome.XFAIL, Outcome.PASS]


@pytest.mark.parametrize("worst", range(len(_WORST_FIRST)))
def test_combine_is_the_worst_outcome_in_any_order(worst: int) -> None:
    """Worst first: ERROR > FAIL > XPASS > XFAIL > PASS, wherever the worst one stands in the list."""
    milder = _WORST_FIRST[worst:]
    assert combine(milder) is _WORST_FIRST[worst]
    assert combine(list(reversed(milder))) is _WORST_FIRST[worst]
    assert combine([Outcome.PASS] * 3) is Outcome.PASS
    assert combine([]) is Outcome.PASS


def _check(phone: str, held: bool, check: str = "boot") -> CheckResult:
    return CheckResult(phone=phone, check=check, expected="ok", actual="ok" if held else "failed", held=held)


def _expectation(*held_by_phone: tuple[str, bool], xfail: str | None = None,
                 holds_for: HoldsFor | None = None) -> ExpectationResult:
    return ExpectationResult(where="t.yaml:7", label="l", xfail=xfail, holds_for=holds_for,
                             checks=[_check(p, h) for p, h in held_by_phone])


def test_an_expectation_passes_only_when_every_check_of_every_phone_holds() -> None:
    assert _expectation(("a", True), ("b", True)).outcome is Outcome.PASS
    assert _expectation(("a", True), ("b", False)).outcome is Outcome.FAIL
    assert _expectation(("a", False), ("a", True)).outcome is Outcome.FAIL   # one check of two failed
    assert _expectation(("a", True), ("b", False), xfail="bug").outcome is Outcome.XFAIL
    assert _expectation(("a", True), ("b", True), xfail="bug").outcome is Outcome.XPASS


def test_a_phone_matches_only_when_every_check_holds_for_it() -> None:
    e = _expectation(("a", True), ("b", True), ("b", False), ("c", True), ("a", True))
    assert e.named_phones() == ["a", "b", "c"]
    assert e.matched_phones() == ["a", "c"]
    assert [(c.phone, c.held) for c in e.failures()] == [("b", False)]
    assert e.needed() == (3, 3)


_AT_LEAST_2 = HoldsFor(at_least=2, text="at least 2")
_NONE = HoldsFor(at_least=0, at_most=0, text="none")


def test_holds_for_counts_the_phones_that_matched_against_its_bound() -> None:
    """``17 of 20 phones matched (needed at least 18)``: the bound decides, not every phone."""
    two_of_three = _expectation(("a", True), ("b", False), ("c", True), holds_for=_AT_LEAST_2)
    assert two_of_three.outcome is Outcome.PASS and two_of_three.bound_met()
    assert two_of_three.count_text() == "2 of 3 phones matched (needed at least 2)"
    assert two_of_three.needed() == (2, None)
    one_of_three = _expectation(("a", True), ("b", False), ("c", False), holds_for=_AT_LEAST_2)
    assert one_of_three.outcome is Outcome.FAIL
    assert one_of_three.count_text() == "1 of 3 phones matched (needed at least 2)"
    assert _expectation(("a", True), ("b", True), holds_for=_AT_LEAST_2, xfail="bug").outcome is Outcome.XPASS
    assert _expectation(("a", True)).count_text() is None


def test_holds_for_none_fails_on_a_phone_that_matched_and_explains_that_one() -> None:
    """``holds_for: none``: a phone that matched is the failure, and its checks are the ones shown."""
    e = _expectation(("a", False), ("b", True), holds_for=_NONE)
    assert e.outcome is Outcome.FAIL and e.too_many_matched()
    assert [c.phone for c in e.shown_checks()] == ["b"]
    passing = _expectation(("a", False), ("b", False), holds_for=_NONE)
    assert passing.outcome is Outcome.PASS and not passing.too_many_matched()
    assert not _expectation(("a", True), ("b", True)).too_many_matched()   # no bound: all may match
    assert [c.phone for c in _expectation(("a", False), ("b", True)).shown_checks()] == ["a"]


def _scenario(*outcomes: Outcome, error: str | None = None) -> ScenarioResult:
    """A scenario result whose expectations have these outcomes."""
    made = {Outcome.PASS: _expectation(("a", True)), Outcome.FAIL: _expectation(("a", False)),
            Outcome.XFAIL: _expectation(("a", False), xfail="bug"),
            Outcome.XPASS: _expectation(("a", True), xfail="bug")}
    return ScenarioResult(name="s", path="s.yaml", reproduces="", error=error,
                          expectations=[made[o] for o in outcomes])


def test_a_scenario_is_its_worst_expectation_and_an_error_is_an_error() -> None:
    assert _scenario(Outcome.PASS, Outcome.XFAIL).outcome is Outcome.XFAIL
    assert _scenario(Outcome.PASS, Outcome.FAIL, Outcome.XPASS).outcome is Outcome.FAIL
    assert _scenario(Outcome.PASS, Outcome.PASS).outcome is Outcome.PASS
    # an ERROR stands whatever the expectations evaluated before it said (they all passed here)
    assert _scenario(Outcome.PASS, error="boot failed: port taken").outcome is Outcome.ERROR


@pytest.mark.parametrize(("outcomes", "ok"), [
    ([Outcome.PASS, Outcome.XFAIL], True),
    ([Outcome.PASS, Outcome.FAIL], False),
    ([Outcome.XPASS], False),
])
def test_a_run_is_ok_only_without_fail_xpass_or_error(outcomes: list[Outcome], ok: bool) -> None:
    summary = RunSummary(scenarios=[_scenario(o) for o in outcomes])
    assert summary.ok is ok
    assert summary.counts() == {o.value: outcomes.count(o) for o in outcomes}
    assert summary.expectation_counts() == summary.counts()
    assert RunSummary(scenarios=[_scenario(Outcome.PASS), _scenario(error="x")]).ok is False


def test_an_interrupted_run_is_not_ok_even_when_all_that_ran_passed() -> None:
    assert RunSummary(scenarios=[_scenario(Outcome.PASS)], interrupted=True).ok is False
    assert RunSummary(scenarios=[_scenario(Outcome.PASS)]).ok is True


# --- runner.py: an expectation evaluated on each phone it names ---------------------------------------


@dataclass
class _Phone(FakePhoneView):
    """A phone as ``World.select`` hands it to the runner: a MAC, a timeline and what the checks read."""

    mac: str = ""
    lines: list[str] = field(default_factory=list)

    def timeline(self) -> list[str]:
        return list(self.lines)


class _World:
    def __init__(self, *phones: _Phone) -> None:
        self.phones = {p.mac: p for p in phones}

    def select(self, names: tuple[str, ...]) -> list[_Phone]:
        return [p for p in self.phones.values() if p.mac in names or "all" in names]


def _boot(ok: bool, deciding: Decision | None = None, **fields: Any) -> SimpleNamespace:
    return SimpleNamespace(ok=ok, locked_out=False, deciding=deciding,
                           decisions=(deciding,) if deciding else (), **fields)


_REFUSED = Decision(rule="G.3.5-reject-unknown-signer", accepted=False, reason="signer unknown",
                    file="ITLSEP0A.tlv", kind="ITL")


def _evaluated(world: _World, checks: dict[str, Any], *, phones: tuple[str, ...] = ("all",),
               holds_for: HoldsFor | None = None, xfail: str | None = None) -> ExpectationResult:
    exp = Expectation(where="t.yaml:9", phones=phones, checks=checks, holds_for=holds_for, xfail=xfail)
    return runner._evaluate(world, exp)


def test_every_check_is_evaluated_on_every_phone_named() -> None:
    good = _Phone(mac="0A01", report=_boot(True), lines=["booted"])
    bad = _Phone(mac="0A02", report=_boot(False, _REFUSED), lines=["ITL refused"])
    world = _World(good, bad)
    result = _evaluated(world, {"boot": "ok", "locked_out": False})
    assert [(c.phone, c.check, c.held) for c in result.checks] == [
        ("0A01", "boot", True), ("0A01", "locked_out", True),
        ("0A02", "boot", False), ("0A02", "locked_out", True)]
    assert result.outcome is Outcome.FAIL
    # the failure explains the phone that failed: its timeline, its deciding decision
    assert result.timelines == {"0A02": ["ITL refused"]}
    assert result.deciding == {"0A02": _REFUSED.summary()}
    assert _evaluated(world, {"boot": "ok"}, phones=("0A01",)).outcome is Outcome.PASS
    assert _evaluated(world, {"boot": "ok"}, xfail="bug").outcome is Outcome.XFAIL


def test_a_failed_check_names_the_decision_about_what_it_reads() -> None:
    itl = Decision(rule="G.3-unchanged", accepted=True, reason="ITL unchanged", file="ITLSEP0A.tlv",
                   kind="ITL")
    config = Decision(rule="G.4-reject-bad-signature", accepted=False, reason="bad signature",
                      file="SEP0A01.cnf.xml.sgn", kind="config")
    p = _Phone(mac="0A01", report=_boot(False, config, trust={"ITL": "unchanged"}), trust=True)
    p.report.decisions = (itl, config)
    result = _evaluated(_World(p), {"itl": "updated", "boot": "failed"})
    assert result.outcome is Outcome.FAIL
    assert result.deciding == {"0A01": config.summary()}
    assert result.decisions == {"0A01": {"itl": itl.summary()}}   # the failed check's item only


def test_holds_for_met_explains_no_phone_and_none_explains_the_ones_that_matched() -> None:
    world = _World(_Phone(mac="0A01", report=_boot(True), lines=["ok"]),
                   _Phone(mac="0A02", report=_boot(False, _REFUSED), lines=["refused"]))
    met = _evaluated(world, {"boot": "ok"}, holds_for=HoldsFor(at_least=1, text="at least 1"))
    assert met.outcome is Outcome.PASS and met.timelines == {}
    none = _evaluated(world, {"boot": "ok"}, holds_for=_NONE)
    assert none.outcome is Outcome.FAIL and set(none.timelines) == {"0A01"}


def test_mac_in_an_expected_text_is_each_phones_own() -> None:
    """``{mac}`` in an expected text stands for the phone's MAC (``SEP{mac}.cnf.xml.sgn``), in lists too."""
    world = _World(_Phone(mac="0A01", report=_boot(True, config_file="SEP0A01.cnf.xml.sgn")),
                   _Phone(mac="0A02", report=_boot(True, config_file="SEP0A02.cnf.xml.sgn")))
    assert _evaluated(world, {"config_file": "SEP{mac}.cnf.xml.sgn"}).outcome is Outcome.PASS
    # a value that is no text is taken as written
    assert _evaluated(world, {"trust_file_retries": 0, "locked_out": False}).outcome is Outcome.PASS
    assert _evaluated(world, {"config_file": ["x", "SEP{mac}.cnf.xml.sgn"]}).outcome is Outcome.PASS
    assert _evaluated(world, {"config_file": "SEP0A01.cnf.xml.sgn"}).outcome is Outcome.FAIL
    result = _evaluated(world, {"config_file": "SEP{mac}.cnf.xml.sgn"}, phones=("0A02",))
    assert result.checks[0].expected == "SEP0A02.cnf.xml.sgn"


def test_an_unlabelled_expectation_is_named_by_its_phones_and_checks() -> None:
    """What the reports call an expectation: its ``label``, else ``PHONES: CHECK=VALUE, ...``."""
    world = _World(_Phone(mac="0A01", report=_boot(True, config="accepted")))
    assert _evaluated(world, {"boot": "ok", "config": "accepted"}, phones=("p", "0A01")).label == \
        "p/0A01: boot=ok, config=accepted"
    exp = Expectation(where="t.yaml:9", phones=("all",), checks={"boot": "ok"}, label="phones boot")
    assert runner._evaluate(world, exp).label == "phones boot"


def test_a_failed_close_makes_the_scenario_an_error_after_the_error_it_had(
        capsys: pytest.CaptureFixture[str]) -> None:
    """runner.py: a world whose close raises is an ERROR naming what the close raised, after the error the
    scenario had already; a bug's (neither PhoneEmuError nor OSError) traceback is kept and printed."""
    passed = _scenario(Outcome.PASS)
    runner._close_failed(passed, OSError("port busy"), "phoneemu run")
    assert passed.outcome is Outcome.ERROR
    assert passed.error == "closing its lab servers failed: OSError: port busy"
    assert passed.error_trace == [] and capsys.readouterr().err == ""
    failed = _scenario(Outcome.PASS, error="boot failed: x")
    try:
        raise RuntimeError("bug")
    except RuntimeError as exc:
        runner._close_failed(failed, exc, "phoneemu run")
    assert failed.error == "boot failed: x; then closing its lab servers failed: RuntimeError: bug"
    assert failed.error_trace[-1] == "RuntimeError: bug"
    assert "phoneemu run: scenario s: internal error:" in capsys.readouterr().err


# --- checks.py: each check's own rule -------------------------------------------------------------------


class _Listed(FakePhoneView):
    """A phone holding an ITL with these records (``ROLE CN``, file order), and no CTL."""

    def __init__(self, *entries: str) -> None:
        super().__init__()
        self.entries = list(entries)
        roles = {"SAST": Role.SAST, "TVS": Role.TVS}
        self.records = [SimpleNamespace(role=roles[role], is_empty=False, subject=f"CN={cn}")
                        for role, cn in (e.split() for e in entries)]

    def trust_list(self, kind: str) -> Any:
        return SimpleNamespace(records=self.records) if kind == "ITL" else None

    def reported_checksum(self, kind: str) -> tuple[str, str] | None:
        return None

    def cluster_checksums(self, kind: str) -> dict[str, str] | None:
        return None


def test_records_in_any_order_each_pattern_its_own_record() -> None:
    """``itl_records`` (README): the installed list's records, all of them, in any order, each entry a
    pattern. A wide pattern written before a narrow one must not take the record the narrow one needs
    (was: each pattern took the first record it matched, and ``[SAST *, SAST ITLRECOVERY_*]`` failed on
    the ITL whose records are exactly those two, a good cluster reported broken)."""
    itl = _Listed("SAST ITLRECOVERY_lab-pub", "SAST lab-pub", "TVS lab-pub-TVS")
    assert checks.evaluate("itl_records", itl, ["SAST *", "SAST ITLRECOVERY_*", "TVS *"])[1]
    assert checks.evaluate("itl_records", itl, ["TVS *", "SAST lab-pub", "SAST *"])[1]
    assert checks.evaluate("itl_records", itl, ["*", "*", "SAST ITLRECOVERY_*"])[1]
    # still: a missing, extra or changed record fails, and two patterns cannot share one record
    assert not checks.evaluate("itl_records", itl, ["SAST *", "SAST ITLRECOVERY_*"])[1]
    assert not checks.evaluate("itl_records", itl, ["SAST *", "SAST *", "TVS *", "TVS *"])[1]
    assert not checks.evaluate("itl_records", itl, ["SAST ITLRECOVERY_*", "SAST ITLRECOVERY_*", "TVS *"])[1]
    assert not checks.evaluate("itl_records", itl, ["SAST *", "SAST *", "CCM+TFTP *"])[1]
    assert checks.evaluate("itl_records", itl, ["SAST *"]) == (itl.entries, False)
    assert checks.evaluate("ctl_records", itl, []) == ("absent", True)
    assert checks.evaluate("ctl_records", itl, ["SAST *"]) == ("absent", False)
    assert checks.evaluate("itl_records", _Listed(), []) == ([], True)


@dataclass
class _Held(FakePhoneView):
    """A phone with everything a check may read: the last boot, the last ``sip`` / ``call`` step, the lab's
    on-path attacker and CAPF server (the real cluster's phone lacks ``capf_pending`` / ``capf_server_log``:
    plain :class:`FakePhoneView`)."""

    sip: Any = None
    call: Any = None
    on_path: Any = None
    empty: bool = False
    lsc: bool = False
    xml: bytes | None = None
    pending: str = "none"
    server_log: str | None = None

    def trust_is_empty(self, kind: str) -> bool:
        return self.empty

    def has_lsc(self) -> bool:
        return self.lsc

    def config_xml(self) -> bytes | None:
        return self.xml

    def capf_pending(self) -> str:
        return self.pending

    def capf_server_log(self) -> str | None:
        return self.server_log

    def trust_list(self, kind: str) -> Any:
        return None

    def reported_checksum(self, kind: str) -> tuple[str, str] | None:
        return None

    def cluster_checksums(self, kind: str) -> dict[str, str] | None:
        return None


_SIGNER_UNKNOWN = Decision(rule="G.3.5-reject-unknown-signer", accepted=False, reason="signer not in the ITL",
                           file="SEP0A.cnf.xml.sgn", reason_code=VerifyReason.UNKNOWN_SIGNER, kind="config")
_KEYGEN = Decision(rule="F.6-capf-failed", accepted=False, reason="failure during keygen", file="",
                   reason_code=VerifyReason.OTHER, kind="capf")
_ASK_TVS = Decision(rule="G.3.4-needs-tvs", accepted=False, reason="bad-signature? ask TVS", file="ITL.tlv",
                    needs_tvs=SimpleNamespace(), kind="ITL")   # type: ignore[arg-type]
_ACCEPTED = Decision(rule="G.4-accept", accepted=True, reason="expired certificate tolerated", file="x",
                     kind="config")


def _r(**fields: Any) -> SimpleNamespace:
    """A last boot report with these fields (the others as a good boot's)."""
    base: dict[str, Any] = dict(ok=True, trust={}, config="accepted", config_file="SEP0A.cnf.xml.sgn",
                                decisions=(), deciding=None, statuses=(), lsc="absent", locked_out=False,
                                encrypted=False, tvs_used=False, retransmits=0, fetched_over={})
    return SimpleNamespace(**{**base, **fields})


_SIP = SimpleNamespace(registered=True, rule="G.13-registered", reason="", server="cm1", client_cert="LSC",
                       passed_over=["cm0"], tls="TLSv1.2 AES128-SHA", transport="tls", challenged=True,
                       stale=False)
_UNREACHABLE = SimpleNamespace(registered=False, rule="G.13-unreachable", reason="", server="cm1",
                               client_cert="", passed_over=[], tls="", transport="", challenged=False,
                               stale=False)
_CALL = SimpleNamespace(accepted=True, rule="G.14-srtp", reason="", target="moh", media="srtp",
                        suite="AES_CM_128_HMAC_SHA1_80", refused=2, status=200)

@dataclass
class _Summed(_Held):
    """The checksum the phone reports for its ITL, and those of the ITL its cluster serves (None: none)."""

    reported: tuple[str, str] | None = None
    served: dict[str, str] | None = None

    def reported_checksum(self, kind: str) -> tuple[str, str] | None:
        return self.reported

    def cluster_checksums(self, kind: str) -> dict[str, str] | None:
        return self.served


_BOTH = {"md5": "aa", "sha1": "bb"}

#: (check, phone, expected, held): each rule of checks.py both ways (the check's docstring)
_RULES: list[tuple[str, Any, Any, bool]] = [
    # itl / ctl: the boot's outcome, or the stored state (present / empty / absent); a list is "any of"
    ("itl", _Held(_r(trust={"ITL": "updated"}), trust=True), "updated", True),
    ("itl", _Held(_r(trust={"ITL": "updated"}), trust=True), "rejected", False),
    ("itl", _Held(_r(trust={"ITL": "updated"}), trust=True), ["rejected", "updated"], True),
    ("itl", _Held(_r(trust={"ITL": "updated"}), trust=True), "present", True),
    ("itl", _Held(_r(trust={"ITL": "updated"}), trust=True), "absent", False),
    ("itl", _Held(_r(trust={"ITL": "updated"}), trust=True), "empty", False),
    ("itl", _Held(_r(trust={"ITL": "unchanged"}), trust=True, empty=True), "empty", True),
    ("itl", _Held(None), "absent", True),
    ("itl", _Held(None), "present", False),
    ("ctl", _Held(_r(trust={"ITL": "updated"}), trust=False), "updated", False),
    # fields of the last boot as they are
    ("config", _Held(_r(config="rejected")), "rejected", True),
    ("config", _Held(_r(config="rejected")), ["accepted", "none"], False),
    ("config", _Held(None), "accepted", False),
    ("boot", _Held(_r(ok=True)), "ok", True),
    ("boot", _Held(_r(ok=False)), "ok", False),
    ("boot", _Held(_r(ok=False)), "failed", True),
    ("boot", _Held(None), "ok", False),
    ("locked_out", _Held(_r(locked_out=True)), True, True),
    ("locked_out", _Held(_r(locked_out=True)), False, False),
    ("locked_out", _Held(None), False, True),
    ("retransmitted", _Held(_r(retransmits=3)), True, True),
    ("retransmitted", _Held(_r(retransmits=0)), True, False),
    ("retransmitted", _Held(_r(retransmits=1)), False, False),
    # reason: a code matches the rejections' codes, other text their reasons; not accepted nor pending ones
    ("reason", _Held(_r(decisions=(_SIGNER_UNKNOWN,))), "unknown-signer", True),
    ("reason", _Held(_r(decisions=(_SIGNER_UNKNOWN,))), "bad-signature", False),
    ("reason", _Held(_r(decisions=(_KEYGEN,))), "failure during keygen", True),
    ("reason", _Held(_r(decisions=(_KEYGEN,))), ["bad-signature", "keygen"], True),
    ("reason", _Held(_r(decisions=(_ACCEPTED,))), "expired certificate", False),
    ("reason", _Held(_r(decisions=(_ASK_TVS,))), "bad-signature", False),
    ("reason", _Held(None), "unknown-signer", False),
    # status: a text of a status message, any case
    ("status", _Held(_r(statuses=("Trust List Update Failed",))), "update failed", True),
    ("status", _Held(_r(statuses=("Trust List Updated",))), "update failed", False),
    # lsc: the boot's outcome, or held (present) / not (absent)
    ("lsc", _Held(_r(lsc="installed"), lsc=True), "installed", True),
    ("lsc", _Held(_r(lsc="installed"), lsc=True), "present", True),
    ("lsc", _Held(_r(lsc="installed"), lsc=True), "absent", False),
    ("lsc", _Held(_r(lsc="absent"), lsc=False), "present", False),
    ("lsc", _Held(_r(lsc="absent"), lsc=False), "absent", True),
    # config_contains: every text; config_lacks: none of them; no config holds neither
    ("config_contains", _Held(xml=b"<authName>alice</authName>"), ["alice", "bob"], False),
    ("config_contains", _Held(xml=b"<authName>alice</authName>"), "alice", True),
    ("config_lacks", _Held(xml=b"<authName>alice</authName>"), ["bob", "alice"], False),
    ("config_lacks", _Held(xml=b"<authName>alice</authName>"), "bob", True),
    ("config_contains", _Held(), "alice", False),
    # fetched_over: every file's transport; https: the config came over 6971
    ("fetched_over", _Held(_r(fetched_over={"a": "http", "b": "http"})), "http", True),
    ("fetched_over", _Held(_r(fetched_over={"a": "http", "b": "tftp"})), "http", False),
    ("fetched_over", _Held(_r(fetched_over={"a": "http", "b": "tftp"})), "mixed", True),
    ("fetched_over", _Held(_r(fetched_over={"a": "https", "b": "http"})), "https", True),
    ("fetched_over", _Held(_r(fetched_over={"a": "https", "b": "http"})), "http", False),
    ("fetched_over", _Held(_r(fetched_over={"a": "tftp"})), "https", False),
    ("fetched_over", _Held(_r()), "none", True),
    # sip: how the last registration ended
    ("sip", _Held(sip=_SIP), "registered", True),
    ("sip", _Held(sip=_SIP), "rejected", False),
    ("sip", _Held(sip=_UNREACHABLE), "unreachable", True),
    ("sip", _Held(sip=_UNREACHABLE), "rejected", False),
    ("sip", _Held(sip=SimpleNamespace(registered=False, rule="G.13-digest-rejected")), "rejected", True),
    ("sip", _Held(), "registered", False),
    ("sip_client_cert", _Held(sip=_SIP), "lsc", True),
    ("sip_client_cert", _Held(sip=_SIP), "mic", False),
    ("sip_client_cert", _Held(sip=_UNREACHABLE), "none", True),
    ("sip_passed_over", _Held(sip=_SIP), 1, True),
    ("sip_passed_over", _Held(sip=_SIP), 0, False),
    ("sip_passed_over", _Held(), 0, True),
    ("sip_cipher", _Held(sip=_SIP), "AES128-SHA", True),
    ("sip_cipher", _Held(sip=_SIP), "none", False),
    ("sip_cipher", _Held(sip=_UNREACHABLE), "none", True),
    ("sip_transport", _Held(sip=_SIP), "tls", True),
    ("sip_transport", _Held(sip=_UNREACHABLE), "none", True),
    ("sip_transport", _Held(sip=_UNREACHABLE), "tls", False),
    ("sip_challenged", _Held(sip=_SIP), True, True),
    ("sip_challenged", _Held(sip=_UNREACHABLE), True, False),
    # call: the last call step's media, suite, packets refused, final status
    ("media", _Held(call=_CALL), "srtp", True),
    ("media", _Held(call=_CALL), "rtp", False),
    ("media", _Held(), "none", True),
    ("media_suite", _Held(call=_CALL), "AES_CM_128_HMAC_SHA1_80", True),
    ("media_suite", _Held(call=_CALL), "none", False),
    ("media_suite", _Held(), "none", True),
    ("media_refused", _Held(call=_CALL), 2, True),
    ("media_refused", _Held(call=_CALL), 0, False),
    ("media_refused", _Held(), 0, True),
    ("call_status", _Held(call=_CALL), 200, True),
    ("call_status", _Held(call=_CALL), 404, False),
    ("call_status", _Held(call=SimpleNamespace(status=None)), "none", True),
    ("call_status", _Held(), 200, False),
    # a list is "any of", for values that are no text too
    ("locked_out", _Held(_r(locked_out=True)), [True, False], True),
    ("media_refused", _Held(call=_CALL), [0, 2], True),
    # a code is looked for in the codes only (one coded ``other`` whose text says "expired" is not one)
    ("reason", _Held(_r(decisions=(_KEYGEN,))), "expired", False),
    ("reason", _Held(_r(decisions=(replace(_KEYGEN, reason="certificate expired"),))), "expired", False),
    # itl_file_status: the phone's checksum vs the one the cluster serves now
    ("itl_file_status", _Summed(reported=None, served={"md5": "aa"}), "not-installed", True),
    ("itl_file_status", _Summed(reported=("md5", "aa"), served=None), "unknown", True),
    ("itl_file_status", _Summed(reported=("md5", "aa"), served=None), "match", False),
    ("itl_file_status", _Summed(reported=("md5", "aa"), served=_BOTH), "match", True),
    ("itl_file_status", _Summed(reported=("sha1", "aa"), served=_BOTH), "mismatch", True),
    ("itl_file_status", _Summed(reported=("sha1", "aa"), served=_BOTH), "match", False),
    # the lab's on-path attacker
    ("media_intercepted", _Held(on_path=SimpleNamespace(intercepted=4, replay="none")), 4, True),
    ("media_intercepted", _Held(on_path=SimpleNamespace(intercepted=4, replay="none")), 0, False),
    ("media_intercepted", _Held(), 0, True),
    ("sip_replay", _Held(on_path=SimpleNamespace(intercepted=0, replay="refused (401)")), "refused", True),
    ("sip_replay", _Held(on_path=SimpleNamespace(intercepted=0, replay="refused (401)")), "accepted", False),
    ("sip_replay", _Held(), "none", True),
    # the lab's CAPF server; a real cluster's phone: unknown / none
    ("capf_pending", _Held(pending="install"), "install", True),
    ("capf_pending", _Held(pending="install"), "none", False),
    ("capf_pending", FakePhoneView(), "unknown", True),
    ("capf_pending", FakePhoneView(), "none", False),
    ("capf_server", _Held(server_log="op=install timeout: nothing for 1.5s"), "TIMEOUT", True),
    ("capf_server", _Held(server_log="op=install done"), "timeout", False),
    ("capf_server", FakePhoneView(), "none", True),
    ("capf_server", FakePhoneView(), "timeout", False),
]


@pytest.mark.parametrize(("check", "phone", "expected", "held"), _RULES,
                         ids=[f"{c}={e}->{h}" for c, _, e, h in _RULES])
def test_each_check_holds_exactly_when_its_rule_says(check: str, phone: Any, expected: Any,
                                                     held: bool) -> None:
    assert checks.evaluate(check, phone, expected)[1] is held


def test_what_a_check_shows_is_what_it_read() -> None:
    """The actual value a report prints beside the expected one: the codes when only codes were asked for
    (else the reasons as written), which texts the config holds, both checksums."""
    boot = _Held(_r(decisions=(_KEYGEN,)))
    assert checks.evaluate("reason", boot, "other")[0] == ["other"]
    assert checks.evaluate("reason", boot, "keygen")[0] == ["failure during keygen"]
    xml = _Held(xml=b"<authName>alice</authName>")
    assert checks.evaluate("config_contains", xml, ["alice", "bob"])[0] == "contains ['alice']"
    assert checks.evaluate("config_lacks", xml, "bob")[0] == "contains none of them"
    other = _Summed(reported=("sha1", "aa"), served={"sha1": "bb"})
    assert checks.evaluate("itl_file_status", other, "match")[0] == "mismatch (phone sha1 aa, cluster bb)"
    assert checks.evaluate("itl_file_status", _Summed(reported=("sha1", "aa"), served=None), "match")[0] == \
        "unknown (phone sha1 aa)"
    over = _Held(_r(fetched_over={"SEP0A.cnf.xml": "https", "ITLFile.tlv": "tftp"}))
    assert checks.evaluate("fetched_over", over, "https")[0] == \
        "https (SEP0A.cnf.xml; the other files over tftp)"
    assert checks.evaluate("fetched_over", _Held(_r(fetched_over={"SEP0A.cnf.xml": "https"})), "https") == \
        ("https", True)


def _listed(*decisions: Decision) -> _Held:
    return _Held(_r(decisions=decisions))


def test_a_failure_names_the_decision_its_item_came_from() -> None:
    """``decision_about`` (checks.py module docstring): a trust list's decision is the one its outcome came
    from — a later §G.9 retry's replaces an installed or rejected list's only when it changed the list; an
    item of a step is that step's result; other items the last decision of their kind."""
    installed = Decision(rule="G.2-first-itl-tofu", accepted=True, reason="installed", file="ITL", kind="ITL",
                         artefact=object())
    rejected = Decision(rule="G.3.5-reject-unknown-signer", accepted=False, reason="unknown", file="ITL",
                        reason_code=VerifyReason.UNKNOWN_SIGNER, kind="ITL")
    unchanged = Decision(rule="G.3-unchanged", accepted=True, reason="unchanged", file="ITL", kind="ITL")
    retried = Decision(rule="G.9-retry-trust-file", accepted=True, reason="again", file="ITL", kind="ITL")
    retried_new = replace(retried, reason="a new list", artefact=object())
    assert checks.decision_about("itl", _listed(installed, retried)) == installed.summary()
    assert checks.decision_about("itl", _listed(rejected, retried)) == rejected.summary()
    assert checks.decision_about("itl", _listed(rejected, retried_new)) == retried_new.summary()
    assert checks.decision_about("itl", _listed(unchanged, rejected)) == rejected.summary()
    assert checks.decision_about("itl", _listed(unchanged, retried)) == retried.summary()
    assert checks.decision_about("ctl", _listed(installed)) is None
    old = Decision(rule="D-signed-by-image-key", accepted=True, reason="old load", file="a", kind="firmware")
    new = replace(old, reason="new load")
    assert checks.decision_about("firmware", _listed(old, new)) == new.summary()
    assert checks.decision_about("firmware", _Held(None)) is None
    sip = SimpleNamespace(registered=False, rule="G.13-digest-rejected", reason="401 again", server="cm1")
    assert checks.decision_about("sip", _Held(sip=sip)) == "G.13-digest-rejected (rejected) cm1: 401 again"
    assert checks.decision_about("call", _Held(call=_CALL)) == "G.14-srtp (accepted) moh: "
    assert checks.decision_about("sip", _Held()) is None
