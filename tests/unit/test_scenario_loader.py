"""Scenario files: valid files load; every mistake names file:line and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from phoneemu.errors import ScenarioError
from phoneemu.scenario.loader import discover, load_file, load_text, parse_duration
from phoneemu.scenario.model import Expectation, Step
from tests.helpers import run

GOOD = """\
name: demo
reproduces: spec G.2
clusters:
  lab: {seed: 7}
  other: {seed: 8}
phones:
  sbd: {count: 3, mac_start: "00:11:22:33:44:0a", profile: cp-8861}
  legacy: {profile: {base: cp-7940, trust_list_limit: 2000}}
steps:
  - boot: sbd
  - admin: {op: regenerate, cert: callmanager}
  - move: {phones: sbd, to: other}
  - clock: {advance: 25y}
  - expect: {phones: [sbd, legacy], itl: [installed, updated], xfail: known gap}
"""


def test_good_file_loads() -> None:
    s = load_text(GOOD, "demo.yaml")
    assert s.name == "demo" and s.reproduces == "spec G.2"
    assert s.phones["sbd"].macs() == ["00112233440A", "00112233440B", "00112233440C"]
    assert s.phones["legacy"].profile == "cp-7940"
    assert s.phones["legacy"].profile_overrides == {"trust_list_limit": 2000}
    kinds = [x.kind if isinstance(x, Step) else "expect" for x in s.steps]
    assert kinds == ["boot", "admin", "move", "clock", "expect"]
    admin = s.steps[1]
    assert isinstance(admin, Step) and admin.args["cluster"] == "lab" and admin.where == "demo.yaml:11"
    clock = s.steps[3]
    assert isinstance(clock, Step) and clock.args["advance"] == 25 * 365 * 86400
    exp = s.steps[4]
    assert isinstance(exp, Expectation) and exp.xfail == "known gap" and exp.checks["itl"] == [
        "installed", "updated"]


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "words"),
    [
        ("- boot: sbd", "- bot: sbd", 10, "steps[0].bot", "unknown step"),
        ("op: regenerate", "op: regen", 11, "steps[1].admin.op", "unknown operation"),
        ("to: other", "to: nowhere", 12, "steps[2].move.to", "unknown cluster"),
        ("advance: 25y", "advance: soon", 13, "steps[3].clock.advance", "duration"),
        ("itl: [installed, updated]", "itl: [installed, instaled]", 14, "steps[4].expect.itl",
         "unknown value"),
        ("count: 3", "count: 0", 7, "phones.sbd.count", "integer"),
        ('"00:11:22:33:44:0a"', "zz", 7, "phones.sbd.mac_start", "12 hex"),
        ("profile: cp-8861}", "profil: cp-8861}", 7, "phones.sbd.profil", "unknown field"),
        ("- boot: sbd", "- boot: nobody", 10, "steps[0].boot", "unknown phone group"),
        ("- boot: sbd", '- boot: "001122334499"', 10, "steps[0].boot", "no phone has MAC 001122334499"),
        ("profile: cp-8861}", "profile: cp-9999}", 7, "phones.sbd.profile", "unknown phone profile"),
        ("base: cp-7940", "base: cp-79", 8, "phones.legacy.profile", "unknown phone profile"),
        ("cert: callmanager", "cert: callmgr", 11, "steps[1].admin.cert", "unknown cert"),
        ("cert: callmanager", "cert: tvs-x", 11, "steps[1].admin.cert", "unknown cert"),
        ("cert: callmanager", "cert: capf-2", 11, "steps[1].admin.cert", "unknown cert"),  # one CAPF
        ("cert: callmanager", "cert: itlrecovery-2", 11, "steps[1].admin.cert", "unknown cert"),
        (", cert: callmanager", "", 11, "steps[1].admin", "missing required field 'cert'"),
        ("op: regenerate, cert: callmanager", "op: itl-reset, key: local", 11, "steps[1].admin.key",
         "expected one of: localkey, remotekey"),
    ],
)
def test_mistakes_name_line_and_field(old: str, new: str, line: int, field: str, words: str) -> None:
    assert old in GOOD
    with pytest.raises(ScenarioError) as info:
        load_text(GOOD.replace(old, new), "demo.yaml")
    err = info.value
    assert (err.file, err.line, err.path) == ("demo.yaml", line, field), str(err)
    assert words in str(err)
    assert str(err).startswith(f"demo.yaml:{line} {field}")


def test_a_step_may_name_one_phone_by_mac() -> None:
    """A MAC of a group's range selects that phone (one outside every group is refused: see
    test_mistakes_name_line_and_field)."""
    step = load_text(GOOD.replace("- boot: sbd", '- boot: "00:11:22:33:44:0C"'), "demo.yaml").steps[0]
    assert isinstance(step, Step) and step.args["phones"] == ("00:11:22:33:44:0C",)


REAL = """\
name: real
reproduces: spec G.2
clusters:
  real: {external: {tftp: "127.0.0.1:6969"}}
  lab: {}
phones:
  p: {count: 1}
steps:
  - boot: p
  - STEP
  - expect: {phones: p, boot: ok}
"""


@pytest.mark.parametrize(
    ("step", "field"),
    [
        ("admin: {op: regenerate, cert: tvs}", "steps[1].admin"),  # default cluster: the first, external
        ("admin: {cluster: real, op: restart-tvs}", "steps[1].admin.cluster"),
        ("service: {cluster: real, tvs: stop}", "steps[1].service.cluster"),
        ("network: {cluster: real, loss: 0.5}", "steps[1].network.cluster"),
        ("tamper: {cluster: real, file: ITLFile.tlv}", "steps[1].tamper.cluster"),
        ("admin: {cluster: lab, op: exchange, with: real}", "steps[1].admin.with"),
    ],
)
def test_lab_steps_on_a_real_cluster_are_refused_before_running(step: str, field: str) -> None:
    with pytest.raises(ScenarioError) as info:
        load_text(REAL.replace("STEP", step), "real.yaml")
    err = info.value
    assert (err.file, err.line, err.path) == ("real.yaml", 10, field), str(err)
    assert "'real' is external" in str(err)
    ok = load_text(REAL.replace("STEP", "admin: {cluster: lab, op: restart-tvs}"), "real.yaml")
    assert ok.clusters["real"].external == {"tftp": "127.0.0.1:6969"}


@pytest.mark.parametrize(("external", "field", "words"), [
    ('{tftp: "127.0.0.1:abc"}', "tftp", "port must be 1..65535"),       # was a run-time ValueError
    ('{tftp: "127.0.0.1:99999"}', "tftp", "port must be 1..65535"),
    ('{tftp: "127.0.0.1:"}', "tftp", "port must be 1..65535"),
    ('{tftp: "[::1]x"}', "tftp", "expected [IPV6] or [IPV6]:PORT"),
    ("{tftp: [1]}", "tftp", "expected text"),                           # was the host name "[1]"
    ('{tftp: "127.0.0.1:6969", http_port: "x"}', "http_port", "expected an integer in 1..65535"),
    ('{tftp: "127.0.0.1:6969", http_port: 0}', "http_port", "expected an integer in 1..65535"),
    ('{tftp: "127.0.0.1:6969", use_http: "no"}', "use_http", "expected true/false"),  # was bool("no")
])
def test_a_real_clusters_address_is_checked_at_load_time(external: str, field: str, words: str) -> None:
    text = REAL.replace('{external: {tftp: "127.0.0.1:6969"}}', f"{{external: {external}}}")
    with pytest.raises(ScenarioError) as info:
        load_text(text.replace("  - STEP\n", ""), "real.yaml")
    err = info.value
    assert (err.file, err.line, err.path) == ("real.yaml", 4, f"clusters.real.external.{field}"), str(err)
    assert words in str(err)


def test_a_real_clusters_address_forms_load() -> None:
    from phoneemu.scenario.world import World

    ext = '{external: {tftp: "[::1]:6969", http_port: 6970, use_http: off}}'
    text = REAL.replace("  - STEP\n", "").replace('{external: {tftp: "127.0.0.1:6969"}}', ext)
    spec = load_text(text, "real.yaml").clusters["real"]
    assert spec.external == {"tftp": "[::1]:6969", "http_port": 6970, "use_http": False}
    handle = run(World._start_cluster(cast(Any, None), spec, 0))
    assert (handle.host, handle.tftp_port, handle.http_port) == ("::1", 6969, None)


def test_a_real_cluster_runs_on_the_real_clock() -> None:
    """A lab-only scenario starts at the fixed epoch (reproducible); one with a real cluster at the real
    time, by which that cluster's certificates are dated; an explicit start wins."""
    import time

    from phoneemu.scenario.runner import DEFAULT_START, scenario_start

    lab_only = load_text(GOOD, "demo.yaml")
    real = load_text(REAL.replace("STEP", "clock: {advance: 1d}"), "real.yaml")
    assert scenario_start(lab_only, None) == DEFAULT_START
    before = int(time.time())
    assert before <= scenario_start(real, None) <= int(time.time())
    assert scenario_start(real, 1234) == 1234 and scenario_start(lab_only, 1234) == 1234


@pytest.mark.parametrize("text", ["", "a: [", "- 1\n- 2", "reproduces: x\nphones: {}\nsteps: []",
                                  "reproduces: x\nphones: {a: {}}\nsteps:\n  - boot: a",
                                  "reproduces: x\nreproduces: y\nphones: {a: {}}\nsteps: [{expect: {}}]",
                                  "!!python/object:os.system x", "reproduces: x\nphones: \x00{}"])
def test_malformed_documents_raise_scenario_error(text: str) -> None:
    with pytest.raises(ScenarioError) as info:
        load_text(text, "bad.yaml")
    assert all(m.file == "bad.yaml" for m in info.value.mistakes), str(info.value)


@pytest.mark.parametrize(("value", "words"), [
    ("2024-13-45", "'2024-13-45' is not a valid YAML timestamp (month must be in 1..12)"),
    ("2024-02-30", "is not a valid YAML timestamp (day is out of range for month)"),
    ("!!float abc", "'abc' is not a valid YAML float"),
    ("!!int abc", "'abc' is not a valid YAML int"),
    ("!!bool maybe", "'maybe' is not a valid YAML bool; quote it"),
    ("!!timestamp abc", "'abc' is not a valid YAML timestamp; quote it"),
])
def test_scalars_yaml_cannot_construct_name_their_line(value: str, words: str) -> None:
    """Were a ValueError / KeyError / AttributeError out of PyYAML's constructor: a traceback, exit 1."""
    text = GOOD.replace("name: demo\n", f"name: demo\ndescription: {value}\n")
    with pytest.raises(ScenarioError) as info:
        load_text(text, "demo.yaml")
    err = info.value
    assert (err.file, err.line) == ("demo.yaml", 2) and words in str(err), str(err)


@pytest.mark.parametrize(("admin", "field", "words"), [
    ('{op: add-certs, count: "x"}', "count", "expected an integer in 1..200, got 'x'"),  # was a failed step
    ("{op: add-certs, count: 2.5}", "count", "expected an integer in 1..200, got 2.5"),  # was int(2.5) = 2
    ("{op: remove-certs, count: true}", "count", "expected an integer"),
    ('{op: tvs-ttl, seconds: "x"}', "seconds", "expected an integer in 1..2592000"),
    ("{op: mixed-mode, on: maybe}", "on", "expected true/false"),
    ('{op: load, name: x1, tamper: "no"}', "tamper", "expected true/false"),             # was bool("no")
    ("{op: load, name: [1]}", "name", "expected text, got [1]"),
    ("{op: digest, user: [1], password: p}", "user", "expected text, got [1]"),      # was the user "[1]"
])
def test_admin_arguments_are_typed_at_load_time(admin: str, field: str, words: str) -> None:
    text = GOOD.replace("  - admin: {op: regenerate, cert: callmanager}", f"  - admin: {admin}")
    with pytest.raises(ScenarioError) as info:
        load_text(text, "demo.yaml")
    err = info.value
    assert (err.line, err.path) == (11, f"steps[1].admin.{field}") and words in str(err), str(err)
    ok = load_text(GOOD.replace("{op: regenerate, cert: callmanager}", "{op: load, name: x1, tamper: on}"),
                   "demo.yaml").steps[1]
    assert isinstance(ok, Step) and ok.args["tamper"] is True


@pytest.mark.parametrize(("group", "field", "words"), [
    ('{profile: cp-7962, symmetric_key: "zz", encrypt: symmetric}', "symmetric_key",
     "expected 32 or 64 hex digits"),
    ("{profile: cp-7962, encrypt: symmetric}", "encrypt", "symmetric encryption needs the phones' key"),
    ("{capf: {operation: bogus, auth_mode: mic}}", "capf.operation", "unknown CAPF operation 'bogus'"),
    ("{capf: {operation: install, auth_mode: 9}}", "capf.auth_mode", "expected 0..4 or one of"),
    ("{capf: {operation: install, auth_mode: mic, key: rsa99}}", "capf.key", "unsupported RSA size 99"),
    ('{profile: {base: cp-7940, tls_versions: ["1.5"]}}', "profile.tls_versions",
     "'1.5' is not a TLS version"),  # was dropped without a word: the phone spoke TLS 1.2/1.3
])
def test_phone_group_keys_and_capf_are_checked_at_load_time(group: str, field: str, words: str) -> None:
    """Were accepted, then an ERROR without file:line when the lab enrolled the phones."""
    text = GOOD.replace("  legacy: {profile: {base: cp-7940, trust_list_limit: 2000}}", f"  legacy: {group}")
    with pytest.raises(ScenarioError) as info:
        load_text(text, "demo.yaml")
    err = info.value
    assert (err.line, err.path) == (8, f"phones.legacy.{field}") and words in str(err), str(err)
    bad_step = GOOD.replace("{op: regenerate, cert: callmanager}", "{op: capf, auth_mode: 7}")
    with pytest.raises(ScenarioError, match=r"demo\.yaml:11 steps\[1\]\.admin\.auth_mode: expected 0\.\.4"):
        load_text(bad_step, "demo.yaml")
    ok = GOOD.replace("  legacy: {profile: {base: cp-7940, trust_list_limit: 2000}}",
                      '  legacy: {profile: cp-7962, encrypt: symmetric, '
                      'symmetric_key: "00112233445566778899aabbccddeeff", '
                      "capf: {operation: install, auth_mode: null-string, key: ec-p256}}")
    assert load_text(ok, "demo.yaml").phones["legacy"].symmetric_key == "00112233445566778899aabbccddeeff"


def test_duration() -> None:
    assert parse_duration("10m") == 600
    assert parse_duration(5) == 5
    assert parse_duration("25y") == 25 * 365 * 86400
    for bad in (True, "soon", -1, None, "5w"):
        with pytest.raises(ScenarioError):
            parse_duration(bad)


def test_files_and_discovery(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yml").write_text(GOOD)
    (tmp_path / "notes.txt").write_text("x")
    found = discover([tmp_path])
    assert [p.name for p in found] == ["a.yaml", "b.yml"]
    assert load_file(found[0]).name == "demo"
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe")
    with pytest.raises(ScenarioError, match="UTF-8"):
        load_file(tmp_path / "bin.yaml")
    with pytest.raises(ScenarioError, match="no such"):
        discover([tmp_path / "missing"])


def _alias_bomb(levels: int) -> str:
    lines = ["b0: &b0 [q,q,q,q,q,q,q,q,q]"]
    lines += [f"b{i}: &b{i} [" + ",".join([f"*b{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\nreproduces: x\nphones: {p: {}}\nsteps: [{boot: p}]\n"


@pytest.mark.parametrize(("text", "words"), [
    (_alias_bomb(9), "alias bomb"),  # 9**9 values if expanded: refused after 100,000
    ("[" * 50_000, "nested too deeply"),
    ("a: " + "{a: " * 100 + "1" + "}" * 100, "nested more than 64"),
])
def test_alias_bombs_and_deep_nesting_are_refused_quickly(text: str, words: str) -> None:
    with pytest.raises(ScenarioError, match=words) as info:
        load_text(text, "bomb.yaml")
    assert info.value.file == "bomb.yaml"


@pytest.mark.parametrize(("option", "words"), [
    ('pre_8_0: "no"', "expected true/false"),      # was bool("no"): a pre-8.0 cluster
    ("pre_8_0: 3", "expected true/false"),
    ('mixed_mode: "no"', "expected true/false"),   # was truthy: mixed mode on
    ("nodes: 100000", "expected an integer in 1..8"),
    ("extra_certs: 1000000000", "expected an integer in 0..200"),
    ("tvs_ttl: -1", "expected an integer in 1..2592000"),
    ("itlrecovery_years: 500", "expected an integer in 1..30"),
    ("itl_signer: x", "expected itlrecovery or callmanager"),
    ("key: [1]", "expected text, got [1]"),
])
def test_cluster_options_are_typed_at_load_time(option: str, words: str) -> None:
    text = GOOD.replace("  other: {seed: 8}", f"  other: {{seed: 8, {option}}}")
    with pytest.raises(ScenarioError, match=r"demo\.yaml:5 clusters\.other\.") as exc:
        load_text(text, "demo.yaml")
    assert words in str(exc.value)


def test_cluster_option_booleans_and_numbers_load() -> None:
    text = GOOD.replace("  other: {seed: 8}", "  other: {seed: 8, pre_8_0: on, mixed_mode: false, nodes: 2}")
    assert load_text(text, "demo.yaml").clusters["other"].options == {"pre_8_0": True, "mixed_mode": False,
                                                                       "nodes": 2}


@pytest.mark.parametrize("fail", ["['']", "['../SEP{mac}.cnf.xml']", "'a\\\\b'", f"['{'x' * 300}']"])
def test_network_fail_names_a_served_file(fail: str) -> None:
    """An empty name, a path or an over-long name would silently match no download."""
    text = GOOD.replace("  - boot: sbd\n", f"  - boot: sbd\n  - network: {{fail: {fail}}}\n")
    with pytest.raises(ScenarioError, match=r"demo\.yaml:11 steps\[1\]\.network\.fail.*served file name"):
        load_text(text, "demo.yaml")
    ok = GOOD.replace("  - boot: sbd\n",
                      "  - boot: sbd\n  - network: {fail: ['SEP{mac}.cnf.xml', '*.tlv']}\n")
    step = load_text(ok, "demo.yaml").steps[1]
    assert isinstance(step, Step) and step.args["fail"] == ["SEP{mac}.cnf.xml", "*.tlv"]


@pytest.mark.parametrize("fail", ["3", "[3]", "[true]", "['a.tlv', 2.5]"])
def test_network_fail_refuses_numbers(fail: str) -> None:
    """``fail: 3`` reads like "fail 3 times" but names no file: it was taken as a file named "3"."""
    text = GOOD.replace("  - boot: sbd\n", f"  - boot: sbd\n  - network: {{fail: {fail}}}\n")
    with pytest.raises(ScenarioError, match=r"demo\.yaml:11 steps\[1\]\.network\.fail\[\d\].*quote a name"):
        load_text(text, "demo.yaml")
    quoted = GOOD.replace("  - boot: sbd\n", "  - boot: sbd\n  - network: {fail: ['3']}\n")
    step = load_text(quoted, "demo.yaml").steps[1]
    assert isinstance(step, Step) and step.args["fail"] == ["3"]


@pytest.mark.parametrize(("check", "field", "words"), [
    ('locked_out: "no"', "locked_out", "expected true/false"),   # was bool("no"): True
    ("tvs_used: 2", "tvs_used", "expected true/false"),
    ("trust_file_retries: three", "trust_file_retries", "expected an integer in 0..100"),
    ("trust_file_retries: true", "trust_file_retries", "expected an integer"),
    ("itl_records: [{role: SAST}]", r"itl_records\[0\]", "expected text"),
    ("ctl_records: [[SAST x]]", r"ctl_records\[0\]", "expected text"),
    ("itl_records: [null]", r"itl_records\[0\]", r"expected text, got nothing \(an empty value\)"),
    ("itl_signer: ''", "itl_signer", "empty text"),
    ("deciding_rule: {a: 1}", "deciding_rule", "expected text"),
    ("itl_file_status: [match, {a: 1}]", r"itl_file_status\[1\]", "expected text"),
])
def test_expectation_values_are_typed_at_load_time(check: str, field: str, words: str) -> None:
    text = GOOD.replace("itl: [installed, updated], xfail: known gap", check)
    with pytest.raises(ScenarioError, match=rf"demo\.yaml:14 steps\[4\]\.expect\.{field}: .*{words}"):
        load_text(text, "demo.yaml")


def test_expectation_values_keep_their_meaning() -> None:
    text = GOOD.replace("itl: [installed, updated], xfail: known gap",
                        "locked_out: off, trust_file_retries: [3, 4], itl_records: ['SAST *', 'TVS*']")
    exp = load_text(text, "demo.yaml").steps[4]
    assert isinstance(exp, Expectation)
    assert exp.checks == {"locked_out": False, "trust_file_retries": [3, 4],
                          "itl_records": ["SAST *", "TVS*"]}


def test_rollback_reset_phones_is_a_boolean() -> None:
    """Unified CM 10.5+ resets the phones when the rollback parameter changes (seed "Update ITL File")."""
    text = GOOD.replace("{op: regenerate, cert: callmanager}", "{op: rollback, on: true, reset_phones: on}")
    admin = load_text(text, "demo.yaml").steps[1]
    assert isinstance(admin, Step) and admin.args["reset_phones"] is True
    with pytest.raises(ScenarioError, match="true/false"):
        load_text(text.replace("reset_phones: on", "reset_phones: sometimes"), "demo.yaml")
    with pytest.raises(ScenarioError, match="reset_phones"):
        load_text(GOOD.replace("cert: callmanager}", "cert: callmanager, reset_phones: true}"), "demo.yaml")


def test_tftp_for_names_another_built_in_cluster() -> None:
    """A centralized TFTP (``tftp_for``) serves another lab cluster's phones (seed "Update ITL File")."""
    s = load_text(GOOD.replace("other: {seed: 8}", "other: {seed: 8, tftp_for: lab}"), "demo.yaml")
    assert s.clusters["other"].options["tftp_for"] == "lab"
    for bad, words in (("tftp_for: nowhere", "not a built-in lab"), ("tftp_for: other", "its own")):
        with pytest.raises(ScenarioError, match=words):
            load_text(GOOD.replace("other: {seed: 8}", f"other: {{seed: 8, {bad}}}"), "demo.yaml")


def test_lab_cluster_host_is_refused_with_where_clusters_listen() -> None:
    text = GOOD.replace("  other: {seed: 8}", "  other: {seed: 8, host: 10.0.0.5}")
    with pytest.raises(ScenarioError, match=r"demo\.yaml:5 clusters\.other\.host: .*PHONEEMU_LAB_HOST_BASE"):
        load_text(text, "demo.yaml")


@pytest.mark.parametrize(
    ("old", "new", "suggestion"),
    [
        ("- boot: sbd", "- bot: sbd", "did you mean 'boot'?"),
        ("op: regenerate", "op: regenrate", "did you mean 'regenerate'?"),
        ("op: regenerate", "op: regen", "did you mean 'regenerate'?"),
        ("cert: callmanager", "cert: callmanger", "did you mean 'callmanager'?"),
        ("xfail: known gap", "locked: true", "did you mean 'locked_out'?"),
    ],
)
def test_a_near_miss_is_named(old: str, new: str, suggestion: str) -> None:
    with pytest.raises(ScenarioError, match="did you mean") as info:
        load_text(GOOD.replace(old, new), "demo.yaml")
    assert suggestion in str(info.value) and "expected one of" in str(info.value)


def test_tftp_timing_of_phones_and_of_the_lab_network_loads() -> None:
    """``tftp: {timeout_ms, retries}`` on a phone group (the phones' RFC 1350 timer) and on a
    ``network`` step (the lab TFTP server's), so a lossy scenario need not wait whole seconds."""
    text = GOOD.replace("profile: cp-8861}", "profile: cp-8861, tftp: {timeout_ms: 50, retries: 10}}")
    network = "  - network: {loss: 0.1, tftp: {timeout_ms: 40}}\n"
    text = text.replace("  - boot: sbd\n", network + "  - boot: sbd\n")
    s = load_text(text, "demo.yaml")
    assert (s.phones["sbd"].tftp_timeout_ms, s.phones["sbd"].tftp_retries) == (50, 10)
    assert (s.phones["legacy"].tftp_timeout_ms, s.phones["legacy"].tftp_retries) == (None, None)
    step = s.steps[0]
    assert isinstance(step, Step) and step.args["tftp"] == {"timeout_ms": 40}


def test_http_and_tvs_waits_of_phones_load() -> None:
    """``http: {timeout_ms}`` / ``tvs: {timeout_ms}`` on a phone group: how long its phones wait for
    HTTP 6970 (§H.1) and TVS (§E); a group without them keeps the phone's own (None)."""
    waits = "http: {timeout_ms: 80}, tvs: {timeout_ms: 300}"
    text = GOOD.replace("profile: cp-8861}", f"profile: cp-8861, {waits}}}")
    s = load_text(text, "demo.yaml")
    assert (s.phones["sbd"].http_timeout_ms, s.phones["sbd"].tvs_timeout_ms) == (80, 300)
    assert (s.phones["legacy"].http_timeout_ms, s.phones["legacy"].tvs_timeout_ms) == (None, None)


@pytest.mark.parametrize("key", ["http", "tvs"])
@pytest.mark.parametrize(("value", "words"), [
    ("{timeout_ms: 5}", "timeout_ms: expected an integer in 10..60000, got 5"),
    ("{retries: 3}", "retries: unknown field"),
    ("{timeout: 50}", "did you mean 'timeout_ms'?"),
    ("50", "expected a mapping"),
])
def test_http_and_tvs_wait_mistakes_name_line_and_field(key: str, value: str, words: str) -> None:
    group = GOOD.replace("profile: cp-8861}", f"profile: cp-8861, {key}: {value}}}")
    with pytest.raises(ScenarioError, match=rf"demo\.yaml:7 phones\.sbd\.{key}") as info:
        load_text(group, "demo.yaml")
    assert words in str(info.value)


@pytest.mark.parametrize(("tftp", "field", "words"), [
    ("{timeout_ms: 5}", "timeout_ms", "expected an integer in 10..60000, got 5"),
    ("{timeout_ms: 0.05}", "timeout_ms", "expected an integer in 10..60000"),
    ("{retries: -1}", "retries", "expected an integer in 0..100, got -1"),
    ("{timeout: 50}", "timeout", "unknown field — did you mean 'timeout_ms'?"),
    ("{retry: 3}", "retry", "did you mean 'retries'?"),
    ("50", "", "expected a mapping"),
])
def test_tftp_timing_mistakes_name_line_and_field(tftp: str, field: str, words: str) -> None:
    dotted = rf"\.{field}" if field else ""
    group = GOOD.replace("profile: cp-8861}", f"profile: cp-8861, tftp: {tftp}}}")
    with pytest.raises(ScenarioError, match=rf"demo\.yaml:7 phones\.sbd\.tftp{dotted}") as info:
        load_text(group, "demo.yaml")
    assert words in str(info.value)
    step = GOOD.replace("  - boot: sbd\n", f"  - network: {{tftp: {tftp}}}\n  - boot: sbd\n")
    with pytest.raises(ScenarioError, match=rf"demo\.yaml:10 steps\[0\]\.network\.tftp{dotted}") as info:
        load_text(step, "demo.yaml")
    assert words in str(info.value)


def test_retransmitted_is_a_boolean_check() -> None:
    ok = GOOD.replace("itl: [installed, updated]", "retransmitted: true")
    exp = load_text(ok, "demo.yaml").steps[4]
    assert isinstance(exp, Expectation) and exp.checks["retransmitted"] is True
    where = r"demo\.yaml:14 steps\[4\]\.expect\.retransmitted"
    with pytest.raises(ScenarioError, match=rf"{where}: expected true"):
        load_text(GOOD.replace("itl: [installed, updated]", "retransmitted: 3"), "demo.yaml")


def test_every_mistake_of_a_file_is_told_at_once() -> None:
    """Each cluster, phone group and step is checked even after one failed: one error lists them all,
    each with its line and field (the groups' only once the clusters have none, the steps' once the
    groups have none: an unknown name would be one mistake told twice)."""
    text = GOOD.replace("cert: callmanager", "cert: calmanager").replace("to: other", "to: nowhere") \
        .replace("itl: [installed, updated]", "itl: [installd]")
    with pytest.raises(ScenarioError) as info:
        load_text(text, "demo.yaml")
    got = [(m.line, m.path) for m in info.value.mistakes]
    assert got == [(11, "steps[1].admin.cert"), (12, "steps[2].move.to"), (14, "steps[4].expect.itl")]
    lines = str(info.value).splitlines()
    assert lines[0] == "3 mistakes in demo.yaml (nothing ran):"
    assert lines[1].startswith("  demo.yaml:11 steps[1].admin.cert: ") and "did you mean" in lines[1]
    groups = GOOD.replace("count: 3", "count: -3").replace("trust_list_limit: 2000", "trust_list_limt: 1") \
        .replace("cert: callmanager", "cert: calmanager")
    with pytest.raises(ScenarioError) as info:
        load_text(groups, "demo.yaml")
    assert [m.path for m in info.value.mistakes] == ["phones.sbd.count",
                                                     "phones.legacy.profile.trust_list_limt"]
    one = GOOD.replace("cert: callmanager", "cert: calmanager")
    with pytest.raises(ScenarioError) as info:
        load_text(one, "demo.yaml")
    assert info.value.mistakes == (info.value,) and info.value.line == 11  # one mistake: as before


def test_mistakes_beyond_twenty_are_counted() -> None:
    steps = "".join(f"  - boot: nobody{i}\n" for i in range(25))
    with pytest.raises(ScenarioError) as info:
        load_text(f"phones:\n  p: {{}}\nsteps:\n{steps}  - expect: {{phones: p, itl: installed}}\n",
                  "many.yaml")
    assert len(info.value.mistakes) == 25
    text = str(info.value)
    assert text.splitlines()[0] == "25 mistakes in many.yaml (nothing ran):"
    assert text.count("unknown phone group") == 20 and text.endswith("... and 5 more")
