"""Scenarios of one booted phone and one expectation, and a stand-in ``run_scenario`` that passes them
without a lab: the set-up of the ``phoneemu run`` interrupt tests (each module had a copy)."""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from phoneemu import cli
from phoneemu.scenario.loader import load_text
from phoneemu.scenario.model import Scenario
from phoneemu.scenario.results import ExpectationResult, RunSummary, ScenarioResult
from phoneemu.scenario.runner import RunOptions

#: line of the ``- expect:`` step (steps[1]) in :func:`one_boot_text`
EXPECT_LINE = 6


def one_boot_text(mac: str, label: str = "ran") -> str:
    """A scenario (spec §G.2) booting phone ``p`` (``mac``), then expecting ``label``: its config accepted."""
    return (f"reproduces: spec G.2\nphones:\n  p: {{mac: {mac}}}\nsteps:\n  - boot: p\n"
            f"  - expect: {{phones: p, label: {label}, config: accepted}}\n")


def _macs(names: Iterable[str], mac_prefix: str) -> list[tuple[str, str]]:
    """(name, MAC) of each scenario: ``mac_prefix`` then its index in two hex digits."""
    return [(name, f"{mac_prefix}{n:02X}") for n, name in enumerate(names)]


def loaded_scenarios(folder: Path, names: Iterable[str], *, mac_prefix: str,
                     label: str = "ran") -> list[Scenario]:
    """:func:`one_boot_text` scenarios named ``names``, loaded as from ``folder/NAME.yaml`` (not written)."""
    return [load_text(one_boot_text(mac, label), str(folder / f"{name}.yaml"))
            for name, mac in _macs(names, mac_prefix)]


def written_scenarios(folder: Path, names: Iterable[str], *, mac_prefix: str,
                      label: str = "ran") -> list[str]:
    """:func:`one_boot_text` scenarios written to ``folder/NAME.yaml``: their paths."""
    files = []
    for name, mac in _macs(names, mac_prefix):
        path = folder / f"{name}.yaml"
        path.write_text(one_boot_text(mac, label))
        files.append(str(path))
    return files


def scenario_in_cwd(folder: Path, monkeypatch: pytest.MonkeyPatch, *, mac_prefix: str) -> Path:
    """A scenario a.yaml (:func:`written_scenarios`) in ``folder``, made the cwd."""
    monkeypatch.chdir(folder)
    (written,) = written_scenarios(folder, "a", mac_prefix=mac_prefix)
    return Path(written)


def exit_code(argv: list[str]) -> Any:
    """``phoneemu ARGV``'s exit status, a usage error's (SystemExit) included."""
    try:
        return cli.main(argv)
    except SystemExit as exc:
        return exc.code


def passing_run_scenario(ran: list[str]) -> Callable[..., Awaitable[ScenarioResult]]:
    """A stand-in for ``runner.run_scenario``: notes the scenario's name in ``ran`` and evaluates its
    expectation (steps[1], PASS); no lab, no phone."""
    async def run_scenario(sc: Scenario, options: RunOptions, result: ScenarioResult | None = None,
                           tracker: Any = None) -> ScenarioResult:
        assert result is not None
        ran.append(sc.name)
        result.expectations.append(ExpectationResult(where=sc.steps[1].where, label="ran", xfail=None))
        return result
    return run_scenario


def send_once(sig: signal.Signals) -> Callable[[], None]:
    """A function that sends ``sig`` to this process the first time it is called, nothing after (its
    handler runs before the call returns)."""
    sent: list[bool] = []

    def send() -> None:
        if not sent:
            sent.append(True)
            signal.raise_signal(sig)
    return send


def verdicts(summary: RunSummary) -> dict[str, str]:
    """Each scenario's verdict (PASS, ERROR, ...) by name."""
    return {s.name: s.outcome.value for s in summary.scenarios}


def earlier_reports(folder: Path, text: str) -> tuple[Path, Path]:
    """``folder/out.xml`` and ``folder/out.json`` holding ``text``: an earlier run's reports, which a run must
    replace or remove (never leave)."""
    junit, json_report = folder / "out.xml", folder / "out.json"
    junit.write_text(text)
    json_report.write_text(text)
    return junit, json_report


def junit_errors(path: Path) -> list[str]:
    """The error messages of a JUnit report (it parses: it is not the earlier text)."""
    import xml.etree.ElementTree as ET

    return [e.get("message", "") for e in ET.parse(path).getroot().iter("error")]
