"""Scenario authoring audit: mistakes that passed ``run --list`` and failed at run time (or ran wrong), and
messages that did not say what was given or what is expected."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.errors import PhoneEmuError, ScenarioError
from phoneemu.lab.cluster import LabCluster
from phoneemu.scenario.loader import load_file, load_text
from phoneemu.scenario.reports import render_text
from phoneemu.scenario.results import CheckResult, ExpectationResult, RunSummary, ScenarioResult
from phoneemu.scenario.runner import RunOptions, run_scenario
from tests.helpers import loader_error, run_passing_scenario


def _refused(text: str) -> str:
    with pytest.raises(ScenarioError) as info:
        load_text(text, "t.yaml")
    return str(info.value)


# --------------------------------------------------------------------------- 1: the cluster's key
_KEYED = """\
clusters:
  c: {{key: {key}}}
phones:
  a: {{mac: "0A00000F0001"}}
steps:
  - boot: all
  - expect: {{phones: a, boot: ok}}
"""


@pytest.mark.parametrize("key", ["rsa512", "rsa3072", "ec256", "ec-p256", "rsa204"])
def test_a_cluster_key_the_lab_cannot_use_is_a_load_time_mistake(key: str) -> None:
    """rsa512 passed --list then ended in a traceback; rsa3072 in an ERROR without file:line; ec256 was
    answered with a hint naming ec-p256, itself refused."""
    err = _refused(_KEYED.format(key=key))
    assert f"t.yaml:2 clusters.c.key: expected rsa1024, rsa2048 or rsa4096, got '{key}'" in err
    assert "e.g." not in err and "did you mean 'ec" not in err


@pytest.mark.parametrize("key", ["rsa1024", "RSA-2048", "rsa4096"])
def test_the_keys_lab_init_offers_load(key: str) -> None:
    assert load_text(_KEYED.format(key=key), "t.yaml").clusters["c"].options["key"] == key


def test_lab_init_refuses_an_unusable_key_before_making_anything(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """``lab init DIR --key rsa3072`` made keys and certificates, then failed and left them."""
    assert main(["lab", "init", str(tmp_path / "lab"), "--key", "rsa3072"]) == 2
    assert "expected rsa1024, rsa2048 or rsa4096, got 'rsa3072'" in capsys.readouterr().err
    assert not (tmp_path / "lab").exists()
    with pytest.raises(PhoneEmuError, match="must be RSA"):
        LabCluster.init(tmp_path / "lab", key_spec="ec-p256")
    assert not (tmp_path / "lab").exists()


@pytest.mark.parametrize("existed", [False, True])
def test_lab_init_failing_half_way_removes_what_it_made(tmp_path: Path, existed: bool,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "lab"
    if existed:
        root.mkdir()

    def fail(*_args: object, **_kw: object) -> None:
        raise PhoneEmuError("disk full")

    monkeypatch.setattr(LabCluster, "_commit", fail)
    with pytest.raises(PhoneEmuError, match="disk full"):
        LabCluster.init(root, key_spec="rsa1024")
    assert (root.is_dir() and not any(root.iterdir())) if existed else not root.exists()


# --------------------------------------------------------------------------- 2: tamper's {mac}
def test_tamper_mac_expands_over_the_phones_the_cluster_serves(tmp_path: Path) -> None:
    """``{mac}`` went over every phone of the scenario: a phone of another cluster, or of a group the
    cluster has not registered, has no config there, and the step failed."""
    run_passing_scenario(tmp_path / "t.yaml", """\
clusters: {old: {}, new: {}}
phones:
  a: {cluster: old, mac: "0A00001A0001"}
  u: {cluster: old, mac: "0A00001A0011", registered: false}
  b: {cluster: new, mac: "0A00001A0101"}
steps:
  - boot: all
  - tamper: {cluster: old, file: "SEP{mac}.cnf.xml.sgn", offset: 200}
  - reset: a
  - expect: {phones: a, config: rejected}
  - expect: {phones: b, config: accepted}
""")


def test_a_scenarios_tamper_refusal_names_no_temporary_folder(tmp_path: Path) -> None:
    """It told to run ``phoneemu lab show /tmp/phoneemu-XXXX/clusters/lab --files``: a folder removed
    once the scenario ended."""
    f = tmp_path / "t.yaml"
    f.write_text("""\
phones:
  a: {count: 3, mac_start: "0A00001A0001"}
steps:
  - boot: all
  - tamper: {file: "SEP{mac}.cnf.xml.sgx"}
  - expect: {phones: a, boot: ok}
""")
    result = asyncio.run(run_scenario(load_file(f), RunOptions()))
    assert result.error is not None and "no served file 'SEP0A00001A0001.cnf.xml.sgx'" in result.error
    assert " more" in result.error and "lab show" not in result.error, result.error


def test_a_users_lab_still_names_the_command_that_lists_its_files() -> None:
    from phoneemu.lab.cluster import _served_names_text

    names = [f"f{i}" for i in range(10)]
    assert _served_names_text(names, Path("/labs/a")).endswith(
        "and 2 more (phoneemu lab show /labs/a --files lists them)")
    assert _served_names_text(names, None).endswith("and 2 more")


# --------------------------------------------------------------------------- 3: phone groups' MACs
_GROUPS = """\
phones:
{groups}
steps:
  - boot: all
  - expect: {{phones: all, boot: ok}}
"""


def test_overlapping_mac_ranges_are_a_load_time_mistake() -> None:
    """They passed --list and failed when the scenario started, once its labs were made."""
    err = _refused(_GROUPS.format(groups='  p: {count: 3, mac_start: "0A0000120001"}\n'
                                         '  q: {count: 2, mac_start: "0A0000120002"}'))
    assert err.startswith("t.yaml:3 phones.q.mac_start: MAC 0A0000120002 is a phone of groups 'p' "
                          "(0A0000120001..0A0000120003) and 'q' (0A0000120002..0A0000120003)"), err


def test_overlap_with_a_group_listed_later_but_starting_earlier_is_found() -> None:
    err = _refused(_GROUPS.format(groups='  a: {mac: "0A0000120009"}\n  b: {mac: "0A0000120100"}\n'
                                         '  c: {count: 20, mac_start: "0A0000120001"}'))
    assert err.startswith("t.yaml:4 phones.c.mac_start: MAC 0A0000120009 is a phone of groups 'a' "), err


def test_two_groups_on_the_default_mac_collide_at_load_time() -> None:
    err = _refused(_GROUPS.format(groups="  p: {}\n  q: {count: 2}"))
    assert err.startswith("t.yaml:3 phones.q: MAC 001122330001 is a phone of groups 'p'"), err
    assert "'p' and 'q' give no mac or mac_start, so start at 001122330001" in err


def test_groups_apart_still_load_and_one_group_keeps_the_default_mac() -> None:
    s = load_text(_GROUPS.format(groups='  p: {count: 3, mac_start: "0A0000120001"}\n'
                                        '  q: {count: 2, mac_start: "0A0000120004"}\n  r: {}'), "t.yaml")
    assert s.phones["r"].mac_start == "001122330001"


def test_mac_and_mac_start_together_are_refused() -> None:
    """``mac`` was silently ignored."""
    err = _refused(_GROUPS.format(groups='  p: {mac: "0A0000120009", mac_start: "0A0000120001"}'))
    assert err.startswith("t.yaml:2 phones.p.mac: give mac or mac_start, not both"), err


# --------------------------------------------------------------------------- 4: smaller
def test_a_bad_service_state_is_echoed_with_a_suggestion() -> None:
    err = str(loader_error("- service: {tvs: stopp}"))
    assert "steps[1].service.tvs: expected start or stop, got 'stopp' — did you mean 'stop'?" in err


def test_a_bad_encrypt_mode_is_echoed_with_a_suggestion() -> None:
    err = _refused(_GROUPS.format(groups='  p: {mac: "0A0000120001", encrypt: symetric}'))
    assert "phones.p.encrypt: expected pki, symmetric or none, got 'symetric' — did you mean 'symmetric'?" \
        in err


def test_a_number_for_phones_asks_for_a_group_or_mac() -> None:
    """``phones: 5`` was told to write ``phones: "5"``, as if 5 were a MAC."""
    err = str(loader_error("- expect: {phones: 5, boot: ok}"))
    assert "steps[1].expect.phones: expected a phone group name, a MAC or all, got 5 (defined: a)" in err
    assert 'write' not in err


@pytest.mark.parametrize("ref", ['"0A000012001"', "00000120001"])
def test_a_mac_with_a_digit_missing_is_told_as_such(ref: str) -> None:
    err = str(loader_error(f"- boot: {ref}"))
    assert "looks like a MAC with 11 hex digits, 12 expected" in err, err


def test_a_cut_timeline_says_how_many_lines_were_left_out() -> None:
    exp = ExpectationResult(where="t.yaml:9", label="x", xfail=None,
                            checks=[CheckResult(phone="0A0000000001", check="boot", expected="ok",
                                                actual="failed", held=False)],
                            timelines={"0A0000000001": [f"line {i}" for i in range(30)]})
    text = render_text(RunSummary(scenarios=[ScenarioResult(name="t", path="t.yaml", reproduces="",
                                                            expectations=[exp])]))
    assert "        ... 5 earlier lines\n        line 5\n" in text and "line 4\n" not in text
    assert "earlier lines" not in render_text(RunSummary(scenarios=[ScenarioResult(
        name="t", path="t.yaml", reproduces="", expectations=[exp])]), timeline_lines=30)


def test_a_run_without_evaluated_expectations_says_so() -> None:
    text = render_text(RunSummary(scenarios=[ScenarioResult(name="t", path="t.yaml", reproduces="",
                                                            error="boom")]))
    assert "\nexpectations: none evaluated\n" in text


def test_run_help_points_at_the_file_format(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "docs/scenarios.md" in capsys.readouterr().out
