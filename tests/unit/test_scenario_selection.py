"""``run -k`` (substring or glob) and ``--tag``; load-time checks of profile overrides and the
refused ``flash`` field."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.errors import ScenarioError
from phoneemu.scenario.loader import load_text

DOC = """\
name: {name}
reproduces: test
tags: {tags}
phones:
  p: {{mac: "0A0000000001"}}
steps:
  - boot: p
  - expect: {{boot: ok}}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name, tags in [("migration-old-tvs", "[migration, tvs]"), ("tvs-outage", "[tvs]"),
                       ("rollback", "[]")]:
        (tmp_path / f"{name}.yaml").write_text(DOC.format(name=name, tags=tags))
    return tmp_path


def _listed(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line.split()[0] for line in capsys.readouterr().out.splitlines()]


@pytest.mark.parametrize(("args", "names"), [
    (["-k", "tvs"], ["migration-old-tvs", "tvs-outage"]),
    (["-k", "tvs-*"], ["tvs-outage"]),
    (["-k", "*-tvs"], ["migration-old-tvs"]),
    (["--tag", "migration"], ["migration-old-tvs"]),
    (["--tag", "tvs"], ["migration-old-tvs", "tvs-outage"]),
    (["--tag", "tvs", "-k", "outage"], ["tvs-outage"]),
])
def test_selection(folder: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                   names: list[str]) -> None:
    assert main(["run", str(folder), "--list", *args]) == 0
    assert _listed(capsys) == names


def test_selecting_nothing_is_an_error(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(folder), "--list", "--tag", "capf"]) == 2
    assert "tags in use: migration, tvs" in capsys.readouterr().err
    assert main(["run", str(folder), "--list", "-k", "nomatch"]) == 2


BASE = 'reproduces: t\nphones:\n  p:\n    mac: "0A0000000001"\n    {field}\nsteps:\n  - boot: p\n' \
       '  - expect: {{boot: ok}}\n'


@pytest.mark.parametrize(("field", "where", "words"), [
    ("profile: {base: cp-8861, trust_list_limt: 32768}", "x.yaml:5 phones.p.profile.trust_list_limt",
     "did you mean 'trust_list_limit'"),
    ("profile: {base: cp-8861, trust_list_limit: 3}", "x.yaml:5 phones.p.profile.trust_list_limit",
     "outside"),
    ("flash: {itl: x}", "x.yaml:5 phones.p.flash", "not supported"),
])
def test_profile_overrides_and_flash_are_checked_at_load_time(field: str, where: str, words: str) -> None:
    with pytest.raises(ScenarioError) as err:
        load_text(BASE.format(field=field), "x.yaml")
    assert str(err.value).startswith(where) and words in str(err.value)
    ok = load_text(BASE.format(field="profile: {base: cp-7962, trust_list_limit: 32768}"), "x.yaml")
    assert ok.phones["p"].profile_overrides == {"trust_list_limit": 32768}


@pytest.mark.parametrize(("field", "ok"), [
    ("capf: {operation: install}", False),
    ("capf: {operation: install, auth_string: \"1234\"}", True),
    ("capf: {operation: install, auth_mode: null-string}", True),
    ("capf: {operation: none}", True),
])
def test_scenario_capf_needs_an_explicit_auth_choice(field: str, ok: bool) -> None:
    text = BASE.format(field=field)
    if ok:
        load_text(text, "x.yaml")
        return
    with pytest.raises(ScenarioError, match=r"x\.yaml:5 phones\.p\.capf: CAPF install: say how the phone"):
        load_text(text, "x.yaml")
    admin = BASE.format(field="profile: cp-8861") + "  - admin: {op: capf, phones: p, operation: delete}\n"
    with pytest.raises(ScenarioError, match="admin: CAPF delete: say how"):
        load_text(admin, "x.yaml")
