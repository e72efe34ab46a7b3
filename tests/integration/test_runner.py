"""Runner verdicts, exit codes and reports, on small scenarios over loopback."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from phoneemu.cli import main

# Every lab cluster of these scenarios has RSA-1024 keys (``key: rsa1024``): no test here is about the key
# size, and the default RSA-2048 keys made ~9 fresh keys of ~55 ms each per scenario run. In BASE the
# option sits on the line the phone group had, the group written in flow style on the line before, so
# that the boot step stays on line 6 (the ``{bad}:6`` mistakes below).
BASE = """\
# Reproduces: spec G.2 (test scenario)
reproduces: spec G.2
phones: {{p: {{mac: 0B0000000001}}}}
clusters: {{lab: {{key: rsa1024}}}}
steps:
  - boot: p
  - expect: {{phones: p, label: first, config: accepted{extra}}}
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    f = tmp_path / f"{name}.yaml"
    f.write_text(text)
    return f


def test_pass_writes_junit_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _write(tmp_path, "ok", BASE.format(extra=", itl: installed"))
    junit, js = tmp_path / "r.xml", tmp_path / "r.json"
    assert main(["run", str(f), "--junit", str(junit), "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert "PASS  ok" in out and "OK: 1 scenario passed (1 PASS)" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "1" and suite.get("failures") == "0"
    doc = json.loads(js.read_text())
    assert doc["ok"] is True and doc["scenarios"][0]["outcome"] == "PASS"
    assert doc["phoneemu"].startswith("phoneemu ")  # what ran, for the CI record


def test_fail_exits_nonzero_with_timeline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _write(tmp_path, "bad", BASE.format(extra=", itl: rejected"))
    junit = tmp_path / "r.xml"
    assert main(["run", str(f), "--junit", str(junit)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  bad" in out
    assert "itl: expected 'rejected', got 'installed'" in out
    assert "timeline of 0B0000000001" in out and "G.2-first-itl-tofu" in out
    case = ET.parse(junit).getroot().find("testsuite/testcase/failure")
    assert case is not None and "expected 'rejected'" in (case.text or "")
    # the one line CI pages show first says what failed, not only that something did
    assert case.get("message") == \
        "expectation failed: itl: expected 'rejected', got 'installed' (0B0000000001)"


def test_a_sites_own_scenario_needs_no_reproduces(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``reproduces:`` names the spec section a catalogue file reproduces; a site's own conformance
    scenario has none to name: it runs, and its reports carry no empty reproduces."""
    f = _write(tmp_path, "site", BASE.format(extra=", itl: installed").replace("reproduces: spec G.2\n", ""))
    junit, js = tmp_path / "r.xml", tmp_path / "r.json"
    assert main(["run", str(f), "--junit", str(junit), "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert "PASS  site" in out and "reproduces" not in out
    assert main(["run", str(f), "--list"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("(1 expectation)")  # no empty 'reproduces: '
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.find("properties") is None
    assert json.loads(js.read_text())["scenarios"][0]["reproduces"] == ""


def test_junit_message_counts_the_phones_that_failed_alike(tmp_path: Path) -> None:
    text = BASE.format(extra=", itl: rejected").replace("p: {mac: 0B0000000001}",
                                                        "p: {mac_start: 0B0000000001, count: 3}")
    f = _write(tmp_path, "many", text)
    junit = tmp_path / "r.xml"
    assert main(["run", str(f), "--junit", str(junit)]) == 1
    case = ET.parse(junit).getroot().find("testsuite/testcase/failure")
    assert case is not None and case.get("message") == \
        "expectation failed: itl: expected 'rejected', got 'installed' (3 of 3 phones, first 0B0000000001)"


def test_xfail_and_xpass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    xfail = _write(tmp_path, "xf", BASE.format(extra=", itl: rejected, xfail: known"))
    assert main(["run", str(xfail)]) == 0
    assert "XFAIL xf" in capsys.readouterr().out
    xpass = _write(tmp_path, "xp", BASE.format(extra=", xfail: stale mark"))
    assert main(["run", str(xpass)]) == 1
    assert "XPASS xp" in capsys.readouterr().out


def test_scenario_mistake_is_reported_before_running(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(tmp_path, "a", BASE.format(extra=""))
    bad = _write(tmp_path, "b", BASE.format(extra="").replace("boot: p", "boot: q"))
    assert main(["run", str(good), str(bad)]) == 2
    captured = capsys.readouterr()
    assert f"{bad}:6 steps[0].boot: unknown phone group 'q'" in captured.err
    assert "PASS" not in captured.out  # nothing ran
    worse = _write(tmp_path, "c", BASE.format(extra="").replace("boot: p", "boot: r"))
    assert main(["run", "--list", str(good), str(bad), str(worse)]) == 2  # every file's mistakes at once
    assert capsys.readouterr().err.splitlines() == [
        "phoneemu run: 2 mistakes in 2 scenario files (nothing ran):",
        f"  {bad}:6 steps[0].boot: unknown phone group 'q' (defined: p)",
        f"  {worse}:6 steps[0].boot: unknown phone group 'r' (defined: p)"]


def test_a_selection_that_matches_nothing_is_an_error(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A mistyped ``-k`` must not make a CI job pass by running nothing."""
    f = _write(tmp_path, "only", BASE.format(extra=""))
    assert main(["run", str(f), "-k", "onyl*"]) == 2
    captured = capsys.readouterr()
    assert "-k 'onyl*' does not match the 1 scenario (only)" in captured.err
    assert "passed" not in captured.out
    assert main(["run", str(f), "-k", "on*", "--list"]) == 0
    assert "only" in capsys.readouterr().out


def test_lab_operation_on_an_external_cluster_is_refused_before_running(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    text = """\
reproduces: test
clusters:
  real: {external: {tftp: "127.0.0.1:9"}}
phones:
  p: {mac: 0B0000000002, cluster: real}
steps:
  - admin: {op: rollback, on: true}
  - expect: {phones: p, boot: failed}
"""
    f = _write(tmp_path, "ext", text)
    assert main(["run", str(f)]) == 2  # refused when the file is loaded, before anything runs
    captured = capsys.readouterr()
    assert f"{f}:7 steps[0].admin: cluster 'real' is external" in captured.err
    assert "PASS" not in captured.out and "ERROR" not in captured.out


def test_sip_step_on_an_external_cluster_needs_its_registrar(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A phone of a real cluster without ``external.sip`` registers with the CallManagers its config
    names (here it has none: not registered, no ERROR); a step naming that cluster as the registrar
    is an ERROR naming the step and what to write; a bad address is refused at load."""
    text = """\
reproduces: test
clusters:
  real: {external: {tftp: "127.0.0.1:9"}}
phones:
  p: {mac: 0B0000000003, cluster: real}
steps:
  - sip: p
  - expect: {phones: p, sip: registered}
"""
    f = _write(tmp_path, "extsip", text)
    assert main(["run", str(f)]) == 1
    out = capsys.readouterr().out
    assert "ERROR" not in out and "expected 'registered', got 'rejected'" in out
    named = _write(tmp_path, "extsipnamed", text.replace("- sip: p", "- sip: {phones: p, cluster: real}"))
    assert main(["run", str(named)]) == 1
    out = capsys.readouterr().out
    assert "ERROR" in out and f"{named}:7" in out and "external: {sip: HOST[:PORT], sips_port: N}" in out
    bad = _write(tmp_path, "extsipbad",
                 text.replace('tftp: "127.0.0.1:9"', 'tftp: "127.0.0.1:9", sip: "a b"'))
    assert main(["run", str(bad)]) == 2
    assert f"{bad}:3 clusters.real.external.sip:" in capsys.readouterr().err


def test_ctrl_c_keeps_what_ran_and_lists_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A real SIGINT in the middle of the second scenario: the reports are still written, with
    the first scenario's verdict, the second as ERROR (interrupted) and the third as not run."""
    import signal

    from phoneemu.scenario import runner

    first = _write(tmp_path, "a-first", BASE.format(extra=""))
    second = _write(tmp_path, "b-second", BASE.format(extra="") + "  - boot: p\n"
                    "  - expect: {phones: p, label: second, config: accepted}\n")
    third = _write(tmp_path, "c-third", BASE.format(extra=""))
    evaluate = runner._evaluate
    calls = []

    def evaluate_then_interrupt(world: object, exp: object) -> object:
        calls.append(exp)
        if len(calls) == 2:  # b-second's first expectation: Ctrl-C, as a user would press it
            signal.raise_signal(signal.SIGINT)
        return evaluate(world, exp)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "_evaluate", evaluate_then_interrupt)
    junit, js = tmp_path / "r.xml", tmp_path / "r.json"
    # as in a terminal: a test run started in the background of a non-interactive shell ignores SIGINT
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        rc = main(["run", str(first), str(second), str(third), "--junit", str(junit), "--json", str(js)])
    finally:
        signal.signal(signal.SIGINT, old)
    out = capsys.readouterr().out
    assert rc == 130
    assert "PASS  a-first" in out and "ERROR b-second" in out and "interrupted" in out
    assert "1 scenario not run (c-third)" in out
    doc = json.loads(js.read_text())
    assert doc["ok"] is False and doc["interrupted"] is True and doc["not_run"] == ["c-third"]
    assert [s["outcome"] for s in doc["scenarios"]] == ["PASS", "ERROR"]
    assert len(doc["scenarios"][1]["expectations"]) == 1  # what b-second evaluated is kept
    suites = {s.get("name"): s for s in ET.parse(junit).getroot().iter("testsuite")}
    assert set(suites) == {"a-first", "b-second", "c-third"}
    assert suites["b-second"].get("errors") == "1" and suites["c-third"].get("skipped") == "1"


def test_parallel_run_reports_like_a_sequential_one(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """-j 2: the same verdicts, in the scenario order, in the text, JUnit and JSON reports."""
    files = [str(_write(tmp_path, "a-ok", BASE.format(extra=", itl: installed"))),
             str(_write(tmp_path, "b-bad", BASE.format(extra=", itl: rejected"))),
             str(_write(tmp_path, "c-ok", BASE.format(extra="")))]
    outcomes = []
    for jobs in ("1", "2"):
        junit, js = tmp_path / f"r{jobs}.xml", tmp_path / f"r{jobs}.json"
        assert main(["run", *files, "-j", jobs, "--junit", str(junit), "--json", str(js)]) == 1
        out = capsys.readouterr().out
        assert out.index("PASS  a-ok") < out.index("FAIL  b-bad") < out.index("PASS  c-ok")
        doc = json.loads(js.read_text())
        outcomes.append([(s["name"], s["outcome"]) for s in doc["scenarios"]])
        suites = [s.get("name") for s in ET.parse(junit).getroot().iter("testsuite")]
        assert suites == ["a-ok", "b-bad", "c-ok"]
    assert outcomes[0] == outcomes[1] == [("a-ok", "PASS"), ("b-bad", "FAIL"), ("c-ok", "PASS")]
    with pytest.raises(SystemExit) as usage:  # a usage error, as every command's bad number
        main(["run", *files, "-j", "-1"])
    assert usage.value.code == 2


def test_parallel_workers_fit_the_lab_address_range() -> None:
    from phoneemu.scenario.loader import load_text
    from phoneemu.scenario.parallel import usable_jobs

    one = load_text(BASE.format(extra=""), "one.yaml")
    two = load_text(BASE.format(extra="").replace("{lab: {key: rsa1024}}", "{a: {}, b: {}}"), "two.yaml")
    assert usable_jobs(8, [one] * 3, 11) == (3, 1)  # never more workers than scenarios
    assert usable_jobs(64, [one] * 100, 11) == (30, 1)  # 127.0.0.11 .. 127.0.0.40
    assert usable_jobs(64, [one, two] * 50, 11) == (15, 2)  # two clusters each: 15 workers
    assert usable_jobs(4, [two] * 9, 39) == (1, 2)  # no room: one worker, as a sequential run


def test_junit_names_are_stable_and_the_summary_counts_scenarios(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """testcase name = the expectation's label (no file:line: adding a line keeps CI history);
    classname = the scenario; file/line attributes and a where property; tags as suite properties."""
    text = BASE.format(extra=", itl: installed").replace("reproduces:", "tags: [smoke, tvs]\nreproduces:", 1)
    text += "  - expect: {phones: p, itl: installed, label: first}\n  - expect: {phones: p, itl: rejected}\n"
    f = _write(tmp_path, "named", text)
    junit = tmp_path / "r.xml"
    assert main(["run", str(f), "--junit", str(junit)]) == 1
    out = capsys.readouterr().out
    assert out.rstrip().splitlines()[-1].startswith("FAILED: 1 of 1 scenario failed (1 FAIL) in ")
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    props = [(p.get("name"), p.get("value")) for p in suite.findall("properties/property")]
    assert ("tag", "smoke") in props and ("tag", "tvs") in props
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases][:2] == ["first", "first #2"]
    assert all(c.get("classname") == "named" and ".yaml" not in (c.get("name") or "") for c in cases)
    assert cases[0].get("file") == str(f) and (cases[0].get("line") or "").isdigit()
    where = cases[0].find("properties/property")
    assert where is not None and where.get("value") == f"{f}:{cases[0].get('line')}"


def test_phones_that_fail_alike_are_one_group(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Many phones locked out the same way read as one finding: the MACs, the failed check and the
    deciding decision once, one timeline — not a timeline per phone."""
    f = _write(tmp_path, "alike", """\
reproduces: spec G.6 (test scenario)
clusters: {old: {key: rsa1024}, new: {key: rsa1024}}
phones:
  p: {count: 3, mac_start: "0B0000000011", cluster: old}
  q: {mac: "0B0000000021", cluster: old, profile: cp-7940}
steps:
  - boot: [p, q]
  - move: {phones: [p, q], to: new}
  - reset: [p, q]
  - expect: {phones: [p, q], label: moved, config: accepted}
""")
    js = tmp_path / "r.json"
    assert main(["run", str(f), "--json", str(js)]) == 1
    out = capsys.readouterr().out
    assert "3 phones (0B0000000011, 0B0000000012, 0B0000000013): config: expected 'accepted', got " \
        "'rejected'" in out
    assert "deciding: G.3.4-tvs-unknown-signer (rejected) ITLSEP0B0000000011.tlv" in out
    assert "timeline of 0B0000000011 (the other 2 alike):" in out
    assert out.count("timeline of") == 1  # the legacy phone passed; the locked ones share one timeline
    doc = json.loads(js.read_text())
    deciding = doc["scenarios"][0]["expectations"][0]["deciding"]
    assert sorted(deciding) == ["0B0000000011", "0B0000000012", "0B0000000013"]
    assert all(v.startswith("G.3.4-tvs-unknown-signer (rejected)") for v in deciding.values())


LOSSY = """\
# Reproduces: spec H.3 (test scenario: TFTP retransmission)
reproduces: spec H.3
clusters: {lab: {key: rsa1024}}
phones:
  t: {mac: 0B0000000011, profile: cp-7962, tftp: {timeout_ms: 30, retries: 30}}
  d: {mac: 0B0000000012, profile: cp-7962}
steps:
  - network: {loss: 0.3, seed: 5, tftp: {timeout_ms: 30, retries: 30}}
  - boot: t
  - expect: {phones: t, label: lossy, itl: installed, config: accepted, retransmitted: true}
  - network: {}
  - reset: t
  - expect: {phones: t, label: clean, config: accepted, retransmitted: false}
"""


def test_lossy_tftp_scenario_retransmits_on_short_timers(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Both ends of TFTP on the scenario's timing (phone group and ``network`` step): a phone that asks
    TFTP only loses packets, sends them again and ends as on a clean network (spec §H.3)."""
    js = tmp_path / "r.json"
    code = main(["run", str(_write(tmp_path, "lossy", LOSSY)), "--json", str(js)])
    assert code == 0, capsys.readouterr().out
    lossy, clean = json.loads(js.read_text())["scenarios"][0]["expectations"]
    assert next(c["actual"] for c in lossy["checks"] if c["check"] == "retransmitted") > 0
    assert [c["actual"] for c in clean["checks"] if c["check"] == "retransmitted"] == [0]


def test_a_groups_tftp_timing_reaches_its_phones(tmp_path: Path) -> None:
    import asyncio

    from phoneemu.scenario.loader import load_text
    from phoneemu.scenario.world import World

    async def main_() -> tuple[tuple[float, int], tuple[float, int]]:
        world = World(load_text(LOSSY, "lossy.yaml"), tmp_path, start_time=1_780_272_000)
        try:
            await world.start()
            t, d = (world.phones[m].phone for m in ("0B0000000011", "0B0000000012"))
            return (t.fetch_timeout, t.fetch_retries), (d.fetch_timeout, d.fetch_retries)
        finally:
            await world.close()

    assert asyncio.run(main_()) == ((0.03, 30), (1.0, 5))  # a group without tftp: the phone's own


SLOW_HTTP = """\
# Reproduces: spec H.1 (test scenario: HTTP 6970 slower than the phone waits, TFTP fallback)
reproduces: spec H.1
clusters: {lab: {key: rsa1024}}
phones:
  p: {mac: 0B0000000021, profile: cp-8861, http: {timeout_ms: 40}, tvs: {timeout_ms: 700}}
  q: {mac: 0B0000000022, profile: cp-8861}
steps:
  - network: {delay_ms: 45}
  - boot: p
  - expect: {phones: p, itl: installed, config: rejected}
"""


def test_a_slow_http_falls_back_to_tftp_on_the_groups_wait(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """``http: {timeout_ms}`` of a group: HTTP 6970 answers after 45 ms, the phone waits 40 ms, so every
    file comes over TFTP (§H.1) and the timeline says why (the lab and the phone share one event loop: the
    phone's wait, begun first and shorter, always ends first; each TFTP datagram is delayed too). The
    expectation is wrong on purpose (the config is accepted) so that the report carries the timeline."""
    js = tmp_path / "r.json"
    code = main(["run", str(_write(tmp_path, "slowhttp", SLOW_HTTP)), "--json", str(js)])
    out = capsys.readouterr().out
    assert code == 1, out
    exp = json.loads(js.read_text())["scenarios"][0]["expectations"][0]
    assert [(c["check"], c["actual"]) for c in exp["checks"]] == [("itl", "installed"),
                                                                   ("config", "accepted")]
    timeline = "\n".join(exp["timelines"]["0B0000000021"])
    fetched = [line for line in timeline.splitlines() if " bytes" in line]
    # the port named is the one the phone tried (the lab's HTTP port), each URL in the reason naming it
    assert fetched and all(re.search(r"over TFTP \(HTTP (\d+) timeout: http://[^ ]+:\1/", line)
                           and "timeout after 0.04s, connected, but no response to the GET" in line
                           for line in fetched), timeline


def test_a_groups_http_and_tvs_waits_reach_its_phones(tmp_path: Path) -> None:
    import asyncio

    from phoneemu.scenario.loader import load_text
    from phoneemu.scenario.world import World

    async def main_() -> list[tuple[float, float]]:
        world = World(load_text(SLOW_HTTP, "slow.yaml"), tmp_path, start_time=1_780_272_000)
        try:
            await world.start()
            phones = [world.phones[m].phone for m in ("0B0000000021", "0B0000000022")]
            return [(p.http_timeout, p.tvs_timeout) for p in phones]
        finally:
            await world.close()

    assert asyncio.run(main_()) == [(0.04, 0.7), (5.0, 5.0)]  # a group without them: the phone's own


def test_sigterm_is_handled_like_ctrl_c(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM (a ``kill``, a CI timeout) mid-run: the reports are written, exit 130."""
    import signal

    from phoneemu.scenario import runner

    first = _write(tmp_path, "a-first", BASE.format(extra=""))
    second = _write(tmp_path, "b-second", BASE.format(extra=""))
    evaluate = runner._evaluate
    calls = []

    def evaluate_then_term(world: object, exp: object) -> object:
        calls.append(exp)
        if len(calls) == 2:
            signal.raise_signal(signal.SIGTERM)
        return evaluate(world, exp)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "_evaluate", evaluate_then_term)
    before = signal.getsignal(signal.SIGTERM)
    js = tmp_path / "r.json"
    rc = main(["run", str(first), str(second), "--json", str(js)])
    capsys.readouterr()
    assert rc == 130
    assert json.loads(js.read_text())["interrupted"] is True
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_scenarios_expected_tls_refusals_are_no_warnings(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """The registrar refusing an LSC of a regenerated CAPF is what the scenario expects: its lab logs the
    failed handshake at INFO (its request log has it), not as a warning line in the middle of
    ``phoneemu run``'s output (the catalogue printed one); ``lab serve`` still warns (TlsServer's default).
    The catalogue file as it is but for RSA-1024 lab keys (the catalogue tests run it as it is)."""
    import logging

    from phoneemu.net.tls import TlsServer

    catalogue = Path(__file__).resolve().parents[2] / "scenarios"
    text = (catalogue / "sip-tls-mutual-authentication.yaml").read_text()
    old = "  lab: {mixed_mode: true}\n"
    assert old in text
    scenario = _write(tmp_path, "sip-tls-mutual-authentication",
                      text.replace(old, "  lab: {mixed_mode: true, key: rsa1024}\n"))
    with caplog.at_level(logging.INFO, logger="phoneemu"):
        assert main(["run", str(scenario)]) == 0
    capsys.readouterr()
    failed = [r for r in caplog.records if "TLS handshake failed" in r.getMessage()]
    assert failed, "the scenario's refused handshake was not logged at all"
    assert all(r.levelno == logging.INFO for r in failed), [(r.levelname, r.getMessage()) for r in failed]

    async def nothing(_reader: object, _writer: object) -> None:
        return None

    assert TlsServer(nothing, None).failure_log_level == logging.WARNING
