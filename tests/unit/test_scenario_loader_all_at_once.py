"""A scenario file's mistakes come out all at once, and a manual config key is checked against the phones'
profile when the file is loaded.

The rules: docs/scenarios.md ("every mistake of every file at once"): every independent mistake of a
phone group, of an expectation, of a step and of the file's top level is told in one run, each as
``file:line field: problem``; a check that reads another value waits for that value to be right (a
group naming a broken cluster, ``holds_for`` counting the phones of a broken ``phones``). A symmetric key
(``symmetric_key``, a ``set-key`` step) is one the phones' profile takes (spec §C.5: the trust store's
rule, the profile's ``symmetric_key_bits``; 32 zeros clear any phone's key), and ``encrypt: symmetric`` is
for profiles that take a manual key at all: both were a run-time ERROR or a silent XmlDefault."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.errors import ScenarioError
from phoneemu.scenario.loader import load_text
from phoneemu.scenario.model import Step

KEY128 = "00112233445566778899AABBCCDDEEFF"
KEY256 = KEY128 * 2
EXPECT = "  - expect: {itl: installed}\n"


def mistakes(text: str) -> list[str]:
    """Each mistake of ``text`` (as t.yaml), as printed."""
    with pytest.raises(ScenarioError) as info:
        load_text(text, "t.yaml")
    return [str(m) for m in info.value.mistakes]


def scenario(phones: str, steps: str = "  - boot: all\n" + EXPECT, top: str = "") -> str:
    return f"name: t\n{top}phones:\n{phones}steps:\n{steps}"


def test_every_mistake_of_a_phone_group_at_once() -> None:
    """``clustr`` was told, and only on the next run the bad MAC (then the next ...)."""
    found = mistakes(scenario('  r: {mac: "0A10000001", clustr: lab, count: 0, encrypt: symetric}\n'))
    assert [m.split(":", 2)[1].split(" ")[1] for m in found] == [
        "phones.r.clustr", "phones.r.count", "phones.r.mac", "phones.r.encrypt"], found
    assert "did you mean 'cluster'?" in found[0] and "MAC must be 12 hex digits, got '0A10000001'" in found[2]


def test_every_mistake_of_an_expectation_at_once_with_a_near_value_named() -> None:
    """``itl: instaled, lockd_out: true`` said only ``lockd_out``; ``instaled`` had no did-you-mean."""
    found = mistakes(scenario('  p: {mac: "0A0000000001"}\n',
                              "  - boot: p\n  - expect: {itl: instaled, lockd_out: true, boot: failled}\n"))
    assert len(found) == 3 and found[0].startswith(
        "t.yaml:6 steps[1].expect.lockd_out: unknown field — did you mean 'locked_out'?"), found
    assert found[1:] == [
        "t.yaml:6 steps[1].expect.itl: unknown value 'instaled' — did you mean 'installed'? (expected one "
        "of: installed, updated, unchanged, rejected, absent, empty, present)",
        "t.yaml:6 steps[1].expect.boot: unknown value 'failled' — did you mean 'failed'? (expected one of: "
        "ok, failed)"], found


def test_the_top_level_is_checked_with_the_groups_and_steps() -> None:
    """A file-level ``timeout: 5 minutes`` was told only once every phone and step mistake was fixed."""
    found = mistakes(scenario('  p: {mac: "0A0000000001", count: 0, registered: maybe}\n',
                              "  - boot: p\n  - clock: 3\n", top="timeout: 5 minutes\ntags: [a, [b]]\n"))
    assert [m.split(" ")[0] + " " + m.split(" ")[1] for m in found] == [  # as the file reads
        "t.yaml:2 timeout:", "t.yaml:3 tags[1]:", "t.yaml:5 phones.p.count:", "t.yaml:5 phones.p.registered:",
        "t.yaml:7 steps:"], found
    assert "needs at least one 'expect' step" in found[-1]


def test_every_mistake_of_a_step_at_once() -> None:
    found = mistakes(scenario(
        '  p: {mac: "0A0000000001"}\n',
        "  - move: {phones: q, to: nowhere, keep_trust: maybe, wat: 1}\n"
        "  - admin: {op: digest, user: [1], password: [2]}\n"
        "  - network: {loss: 2, delay_ms: -1, fail: 3}\n" + EXPECT))
    assert [m.split(" ")[1] for m in found] == [
        "steps[0].move.wat:", "steps[0].move.phones:", "steps[0].move.to:", "steps[0].move.keep_trust:",
        "steps[1].admin.user:", "steps[1].admin.password:",
        "steps[2].network.fail[0]:", "steps[2].network.loss:", "steps[2].network.delay_ms:"], found


def test_a_check_that_reads_another_value_waits_for_it() -> None:
    """Still staged: a group naming a broken cluster is not a second mistake; ``holds_for`` counts the
    phones of ``phones`` only once those are right; steps wait for the groups."""
    broken_cluster = "clusters:\n  lab: {nodes: 99}\n"
    found = mistakes(scenario('  p: {mac: "0A0000000001", cluster: lab}\n', top=broken_cluster))
    assert len(found) == 1 and "clusters.lab.nodes" in found[0], found
    found = mistakes(scenario('  p: {mac: "0A0000000001"}\n',
                              "  - expect: {phones: q, holds_for: {at_least: 5}, itl: installed}\n"))
    assert len(found) == 1 and "steps[0].expect.phones: unknown phone group 'q'" in found[0], found
    found = mistakes(scenario('  p: {mac: "0A0000000001", count: 0}\n', "  - boot: q\n" + EXPECT))
    assert len(found) == 1 and "phones.p.count" in found[0], found


def test_a_groups_key_its_profile_does_not_take_is_a_load_mistake(tmp_path: Path) -> None:
    """Was an ERROR naming no line or group when the phones were made (``symmetric_key: 256-bit key;
    cp-7942-symmetric takes 128-bit keys, when: in set-up``, exit 1)."""
    short = f'  short: {{mac: "0D0000000003", profile: cp-7942-symmetric, encrypt: symmetric, ' \
        f'symmetric_key: "{KEY256}"}}\n'
    assert mistakes(scenario(short)) == [
        "t.yaml:3 phones.short.symmetric_key: 256-bit key; cp-7942-symmetric takes 128-bit keys"]
    path = tmp_path / "t.yaml"
    path.write_text(scenario(short))
    assert main(["run", "--list", str(path)]) == 2
    fits = short.replace(KEY256, KEY128)
    assert load_text(scenario(fits), "t.yaml").phones["short"].symmetric_key == KEY128
    wide = short.replace("profile: cp-7942-symmetric",
                         "profile: {base: cp-7942-symmetric, symmetric_key_bits: 256}")
    assert load_text(scenario(wide), "t.yaml").phones["short"].symmetric_key == KEY256
    # no key typed in: clears it on any profile, as the phone does (with encrypt: symmetric, a mistake: the
    # cluster cannot encrypt with it, test_scenario_loader_symmetric_staging)
    zeros = short.replace(KEY256, "0" * 64).replace(" encrypt: symmetric,", "")
    assert load_text(scenario(zeros), "t.yaml").phones["short"].symmetric_key == "0" * 64


def test_symmetric_encryption_on_a_profile_without_a_manual_key_is_a_load_mistake() -> None:
    """``encrypt: symmetric`` on a cp-8861 (no manual key, spec §C.4) silently ended on XmlDefault."""
    big = f'  big: {{mac: "0D0000000013", encrypt: symmetric, symmetric_key: "{KEY128}"}}\n'
    found = mistakes(scenario(big))
    assert len(found) == 1 and found[0].startswith("t.yaml:3 phones.big.encrypt: symmetric encryption needs "
                                                   "phones that take a manual config key"), found
    assert "cp-8861 has none" in found[0] and found[0].endswith("cp-7962, cp-7942-symmetric"), found
    pki = f'  big: {{mac: "0D0000000013", encrypt: pki, symmetric_key: "{KEY128}"}}\n'
    assert load_text(scenario(pki), "t.yaml").phones["big"].encrypt == "pki"  # the key is the lab's only
    keyed = f'  big: {{mac: "0D0000000013", profile: {{base: cp-8861, symmetric_key_bits: 128}}, ' \
        f'encrypt: symmetric, symmetric_key: "{KEY128}"}}\n'
    assert load_text(scenario(keyed), "t.yaml").phones["big"].encrypt == "symmetric"


@pytest.mark.parametrize(("phones", "key", "words"), [
    ("short", KEY256, "group 'short': 256-bit key; cp-7942-symmetric takes 128-bit keys"),
    ("all", KEY128, "group 'big': cp-8861 has no manual config key"),
    ('"0D0000000013"', KEY128, "group 'big': cp-8861 has no manual config key"),
])
def test_a_set_key_step_whose_phones_refuse_the_key_is_a_load_mistake(phones: str, key: str,
                                                                      words: str) -> None:
    """Was an ERROR of the step when it ran (the phone's store refused the key)."""
    groups = '  short: {mac: "0D0000000003", profile: cp-7942-symmetric}\n  big: {mac: "0D0000000013"}\n'
    found = mistakes(scenario(groups, f'  - set-key: {{phones: {phones}, key: "{key}"}}\n' + EXPECT))
    assert found == [f"t.yaml:6 steps[0].set-key.key: {words}" + (
        "" if "256" in words else " (it decrypts configs with its certificate, spec §C.4); symmetric keys "
        "are for models such as cp-7942-symmetric")], found
    for ok_phones, ok_key in (("short", KEY128), ("all", "0" * 32), ("big", "0" * 64)):
        steps = f'  - set-key: {{phones: {ok_phones}, key: "{ok_key}"}}\n' + EXPECT
        step = load_text(scenario(groups, steps), "t.yaml").steps[0]
        assert isinstance(step, Step) and step.args["key"] == ok_key


def test_a_misspelt_key_is_not_told_as_missing_too() -> None:
    """A key misspelt is one mistake (its did-you-mean), not also the key it was meant as missing."""
    group = '  p: {mac: "0A0000000001", capf: {operation: install, auth_mod: mic}}\n'
    assert [m.split(" ")[1] for m in mistakes(scenario(group))] == ["phones.p.capf.auth_mod:"]
    steps = "  - move: {phonse: p, to: lab}\n  - admin: {op: capf, auth_mod: mic}\n" \
        "  - admin: {op: calling-search-space, cs: [A]}\n" + EXPECT
    found = mistakes(scenario('  p: {mac: "0A0000000001"}\n', steps))
    assert [m.split(" ")[1] for m in found] == ["steps[0].move.phonse:", "steps[1].admin.auth_mod:",
                                                "steps[2].admin.cs:"], found
    unmeant = steps.replace("phonse: p, ", "").replace("auth_mod: mic", "key: rsa2048")  # none near
    assert [m.split(" ")[1] for m in mistakes(scenario('  p: {mac: "0A0000000001"}\n', unmeant))] == [
        "steps[0].move:", "steps[1].admin:", "steps[2].admin.cs:"]
