"""A phone group's symmetric encryption is checked in stages, each mistake told once (docs/scenarios.md:
"a check that reads another value waits for that value to be right").

The rules: ``encrypt: symmetric`` on a registered group needs a profile that takes a manual config key
(spec §C.5), and then the key itself (``symmetric_key``). A group whose profile takes no key is told that
alone (was also told to add a key, which it cannot take); a group whose profile has a mistake is told that
alone; an unregistered group (``registered: false``: no device entry, its ``encrypt`` unused) is not
refused for either (was refused since 17d5f8c, loaded before it)."""

from __future__ import annotations

import pytest

from phoneemu.errors import ScenarioError
from phoneemu.scenario.loader import load_text

KEY128 = "00112233445566778899AABBCCDDEEFF"


def scenario(group: str) -> str:
    return f"name: t\nphones:\n  p: {{{group}}}\nsteps:\n  - boot: all\n  - expect: {{itl: installed}}\n"


def mistakes(text: str) -> list[str]:
    """Each mistake of ``text`` (as t.yaml), as printed."""
    with pytest.raises(ScenarioError) as info:
        load_text(text, "t.yaml")
    return [str(m) for m in info.value.mistakes]


def test_a_profile_without_a_manual_key_is_not_also_told_to_add_one() -> None:
    """``encrypt: symmetric`` on a cp-8861 with no key was told twice on one field, first 'give the phones'
    key' (a key it cannot take), then that the profile takes none."""
    found = mistakes(scenario('mac: "0A0000000001", encrypt: symmetric'))
    assert len(found) == 1, found
    assert found[0].startswith("t.yaml:3 phones.p.encrypt: symmetric encryption needs phones that take a "
                               "manual config key"), found


def test_a_keyed_profile_without_its_key_is_told_the_key_is_missing() -> None:
    found = mistakes(scenario('mac: "0A0000000001", profile: cp-7942-symmetric, encrypt: symmetric'))
    assert found == ["t.yaml:3 phones.p.encrypt: symmetric encryption needs the phones' key: symmetric_key: "
                     "32 or 64 hex digits"], found


def test_a_broken_profile_is_told_alone() -> None:
    """Whether the phones need a key waits for the profile (was also told 'give the phones' key')."""
    found = mistakes(scenario('mac: "0A0000000001", profile: nosuch, encrypt: symmetric'))
    assert len(found) == 1 and found[0].startswith("t.yaml:3 phones.p.profile: unknown phone profile"), found


@pytest.mark.parametrize("profile", ["cp-8861", "cp-7942-symmetric"])
def test_an_unregistered_group_is_not_refused_for_symmetric_encryption(profile: str) -> None:
    """No device entry, so nothing is encrypted for it: it loads, as before 17d5f8c."""
    group = f'mac: "0A0000000001", profile: {profile}, encrypt: symmetric, registered: false'
    loaded = load_text(scenario(group), "t.yaml").phones["p"]
    assert loaded.encrypt == "symmetric" and not loaded.registered


def test_a_registered_keyed_group_with_its_key_loads() -> None:
    group = f'mac: "0A0000000001", profile: cp-7942-symmetric, encrypt: symmetric, symmetric_key: "{KEY128}"'
    assert load_text(scenario(group), "t.yaml").phones["p"].symmetric_key == KEY128


def test_an_all_zero_key_to_encrypt_with_is_a_mistake_of_its_line() -> None:
    """All zeros clear a phone's manual key (spec §C.5): the cluster cannot encrypt with it (was an ERROR
    when the lab refused the phones, naming no line); without ``encrypt: symmetric`` it only clears."""
    zero = "0" * 32
    found = mistakes(scenario(f'mac: "0D0000000003", profile: cp-7942-symmetric, encrypt: symmetric, '
                              f'symmetric_key: "{zero}"'))
    assert found == ["t.yaml:3 phones.p.symmetric_key: an all-zero key clears a phone's manual config key "
                     "(spec §C.5): the cluster cannot encrypt with it; give another"], found
    load_text(scenario(f'mac: "0D0000000003", profile: cp-7942-symmetric, symmetric_key: "{zero}"'), "t.yaml")
