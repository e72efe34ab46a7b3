"""``rule`` (any decision of the last boot) vs ``deciding_rule`` (the decision that decided it), and
digit-string fields YAML would read as numbers (MACs, keys, auth strings)."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from phoneemu.errors import ScenarioError, VerifyReason
from phoneemu.phone.events import Decision
from phoneemu.scenario import checks, loader
from tests.helpers import FakePhoneView


@dataclass
class _View(FakePhoneView):
    trust: bool = True


def _locked_boot() -> _View:
    """The boot of migration-old-tvs-unaware: the ITL refused by TVS decides it; G.3.5 follows."""
    itl = Decision(rule="G.3.4-tvs-unknown-signer", accepted=False, reason="TVS: not found",
                   file="ITLSEP0A.tlv", reason_code=VerifyReason.UNKNOWN_SIGNER, kind="ITL")
    cfg = Decision(rule="G.3.5-locked-ignores-config", accepted=False, reason="locked",
                   file="SEP0A.cnf.xml.sgn", reason_code=VerifyReason.UNKNOWN_SIGNER, kind="config")
    return _View(SimpleNamespace(decisions=(itl, cfg), deciding=itl))


def test_rule_matches_any_decision_of_the_boot() -> None:
    v = _locked_boot()
    both = ["G.3.4-tvs-unknown-signer", "G.3.5-locked-ignores-config"]
    assert checks.evaluate("rule", v, "G.3.5") == (both, True)
    assert checks.evaluate("rule", v, "G.3.4")[1]
    assert not checks.evaluate("rule", v, "G.4")[1]


def test_rule_matches_the_pending_ask_tvs_decision_too() -> None:
    """docs/scenarios.md: "a boot that asked TVS records G.3.4-needs-tvs and then the answer's rule; both
    match" — the pending decision is in ``BootReport.pending``, not ``decisions`` (it matched nothing)."""
    asked = Decision(rule="G.3.4-needs-tvs", accepted=False, reason="ask TVS", file="ITLSEP0A.tlv",
                     kind="ITL")
    itl = Decision(rule="G.3.4-vouched-by-tvs", accepted=True, reason="TVS: SAST", file="ITLSEP0A.tlv",
                   kind="ITL")
    v = _View(SimpleNamespace(pending=(asked,), decisions=(itl,), deciding=itl))
    both = ["G.3.4-needs-tvs", "G.3.4-vouched-by-tvs"]
    assert checks.evaluate("rule", v, "G.3.4-needs-tvs") == (both, True)
    assert checks.evaluate("rule", v, "G.3.4-vouched-by-tvs")[1]
    assert not checks.evaluate("deciding_rule", v, "G.3.4-needs-tvs")[1]


def test_deciding_rule_matches_only_the_deciding_decision() -> None:
    v = _locked_boot()
    deciding = "G.3.4-tvs-unknown-signer"
    assert checks.evaluate("deciding_rule", v, deciding) == (deciding, True)
    assert checks.evaluate("deciding_rule", v, "G.3.4")[1]
    assert checks.evaluate("deciding_rule", v, ["G.3.5", "G.3.4"])[1]
    assert checks.evaluate("deciding_rule", v, "G.3.5") == ("G.3.4-tvs-unknown-signer", False)
    assert checks.evaluate("deciding_rule", _View(None), "G.3.4") == ("not booted yet", False)


def _scenario(expect: str) -> str:
    return ("reproduces: test\nphones:\n  p: {mac: \"0A0000000001\"}\nsteps:\n  - boot: p\n"
            f"  - expect: {{phones: p, {expect}}}\n")


def test_deciding_rule_ids_are_checked_at_load_time() -> None:
    s = loader.load_text(_scenario("deciding_rule: G.3.4-tvs-unknown-signer"), "x.yaml")
    assert s.steps[1].checks == {"deciding_rule": "G.3.4-tvs-unknown-signer"}  # type: ignore[union-attr]
    with pytest.raises(ScenarioError) as err:
        loader.load_text(_scenario("deciding_rule: G.3.4-tvs-unknwn-signer"), "x.yaml")
    text = str(err.value)
    assert text.startswith("x.yaml:6 steps[1].expect.deciding_rule: unknown rule")
    assert "did you mean G.3.4-tvs-unknown-signer" in text


@pytest.mark.parametrize(("line", "field", "fix"), [
    ("  p: {mac: 001122334466}", "phones.p.mac", 'write mac: "001122334466"'),
    ("  p: {mac_start: 10:11:22:33:44:55}", "phones.p.mac_start", 'write mac_start: "10:11:22:33:44:55"'),
    ("  p: {mac: \"0A0000000001\", capf: {operation: install, auth_string: 0123}}",
     "phones.p.capf.auth_string", 'write auth_string: "0123"'),
])
def test_digit_strings_read_as_numbers_say_to_quote(line: str, field: str, fix: str) -> None:
    text = f"reproduces: test\nphones:\n{line}\nsteps:\n  - boot: p\n  - expect: {{boot: ok}}\n"
    with pytest.raises(ScenarioError) as err:
        loader.load_text(text, "x.yaml")
    assert str(err.value).startswith(f"x.yaml:3 {field}: ")
    assert "must be a quoted string" in str(err.value) and fix in str(err.value)


def test_unquoted_macs_that_yaml_keeps_as_text_still_load() -> None:
    text = "reproduces: t\nphones:\n  p: {mac: 0A0000000701}\n  q: {mac: 001122334489}\nsteps:\n" \
           "  - boot: p\n  - expect: {phones: [p, \"001122334489\"], boot: ok}\n"
    s = loader.load_text(text, "x.yaml")
    assert s.phones["p"].mac_start == "0A0000000701" and s.phones["q"].mac_start == "001122334489"
    with pytest.raises(ScenarioError, match='MAC must be a quoted string: write phones: "001122334466"'):
        loader.load_text(text.replace('"001122334489"', "001122334466"), "x.yaml")


def test_lsc_key_reads_the_stored_lsc() -> None:
    """``lsc_key``: the stored LSC's key ("RSA 2048", seed: CAPF's default key size); "none" without one."""

    class _WithLsc(_View):
        def lsc_key(self) -> str | None:
            return "RSA 2048"

    assert checks.evaluate("lsc_key", _WithLsc(report=None), "RSA 2048") == ("RSA 2048", True)
    other = ["RSA 1024", "EC secp256r1"]
    assert checks.evaluate("lsc_key", _WithLsc(report=None), other) == ("RSA 2048", False)
    assert checks.evaluate("lsc_key", _View(report=None), "none") == ("none", True)
    assert loader.CHECKS["lsc_key"] is None


def test_config_contains_and_lacks() -> None:
    class _WithConfig(_View):
        def config_xml(self) -> bytes | None:
            return b"<device><authName>alice</authName></device>"

    p = _WithConfig(report=None)
    assert checks.evaluate("config_contains", p, ["alice", "authName"])[1]
    assert not checks.evaluate("config_contains", p, ["alice", "bob"])[1]
    assert checks.evaluate("config_lacks", p, "bob")[1] and not checks.evaluate("config_lacks", p, "alice")[1]
    assert checks.evaluate("config_lacks", _View(report=None), "x") == ("no config", False)
