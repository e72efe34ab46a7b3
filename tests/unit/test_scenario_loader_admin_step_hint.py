"""A step whose verb is a lab operation (``- regenerate: itlrecovery``) is refused naming the admin step it
is written as (``admin: {op: regenerate, cert: itlrecovery}``), the value given placed where it goes when
that is plain (was "unknown step" with no hint, or a misleading one: ``itl-reset`` -> ``reset``)."""

from __future__ import annotations

import pytest

from phoneemu.errors import ScenarioError
from phoneemu.scenario.loader import load_text
from phoneemu.scenario.model import Step


def _refused(step: str) -> str:
    text = f'name: t\nphones:\n  p: {{mac: "0A0000000001"}}\nsteps:\n  - boot: p\n  - {step}\n'
    with pytest.raises(ScenarioError) as info:
        load_text(text, "t.yaml")
    return str(info.value)


@pytest.mark.parametrize(("step", "written"), [
    ("regenerate: itlrecovery", "admin: {op: regenerate, cert: itlrecovery}"),
    ("regenerate: tvs-2", "admin: {op: regenerate, cert: tvs-2}"),
    ("itl-reset: localkey", "admin: {op: itl-reset, key: localkey}"),
    ("mixed-mode: on", "admin: {op: mixed-mode, on: true}"),
    ("rollback: true", "admin: {op: rollback, on: true}"),
    ("encryption: symmetric", "admin: {op: encryption, mode: symmetric}"),
    ("tvs-ttl: 600", "admin: {op: tvs-ttl, seconds: 600}"),
    ("digest: [p]", "admin: {op: digest, phones: [p]}"),
    ("exchange: {with: b, store: both}", "admin: {op: exchange, with: b, store: both}"),
    ("restart_tvs:", "admin: {op: restart-tvs}"),
    ("Restart-TFTP:", "admin: {op: restart-tftp}"),
    ("rollback: maybe", "admin: {op: rollback, ...}"),
    ("regenerate: 'on'", 'admin: {op: regenerate, cert: "on"}'),
])
def test_a_lab_operation_as_a_step_is_shown_as_an_admin_step(step: str, written: str) -> None:
    said = _refused(step)
    verb = step.split(":", maxsplit=1)[0]
    hint = f"unknown step {verb!r} — a lab operation is an admin step: {written} (expected one of:"
    assert hint in said, said
    assert "did you mean" not in said, said


def test_the_admin_step_shown_loads() -> None:
    text = ('name: t\nclusters:\n  c: {}\nphones:\n  p: {mac: "0A0000000001"}\nsteps:\n  - boot: p\n'
            "  - admin: {op: regenerate, cert: itlrecovery}\n  - expect: {boot: ok}\n")
    step = load_text(text, "t.yaml").steps[-2]
    assert isinstance(step, Step) and step.args == {"op": "regenerate", "cert": "itlrecovery", "cluster": "c"}


def test_another_unknown_step_keeps_its_near_miss() -> None:
    assert "unknown step 'bot' — did you mean 'boot'?" in _refused("bot: p")
