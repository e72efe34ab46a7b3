"""``fleet boot``'s wording for one phone, and ``--json -`` (red team, fleet).

* ``1 phones 0A0000000000..0A0000000000``: the banner now says ``1 phone 0A0000000000`` (one MAC once),
  and the other counts it says (models file notes, the JUnit suite, phones not started) agree in number.
* ``--json -`` wrote a file named ``-`` in the current folder: refused at parse time (stdout carries the
  summary), as is ``--junit -``; ``./-`` still names such a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main

FLEET = ["fleet", "boot", "--tftp", "127.0.0.1:9", "--shards", "0", "--timeout", "0.2", "--retries", "0"]


class _StormAskedError(Exception):
    """The storm was asked for: the banner and the notes before it are all said."""


def _said_before_storm(argv: list[str], capsys: pytest.CaptureFixture[str],
                       monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The stderr lines ``argv`` says before its storm would start (none starts)."""
    def stop(*_a: Any, **_k: Any) -> Any:
        raise _StormAskedError
    monkeypatch.setattr("phoneemu.commands.fleet.run_fleet", stop)
    with pytest.raises(_StormAskedError):
        main(argv)
    return capsys.readouterr().err.splitlines()


def test_the_banner_of_one_phone(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _said_before_storm([*FLEET, "--count", "1", "-q"], capsys, monkeypatch)
    assert lines[-1].startswith("phoneemu fleet boot: 1 phone 0A0000000000 (cp-8861) -> 127.0.0.1"), lines
    lines = _said_before_storm([*FLEET, "--count", "2", "-q"], capsys, monkeypatch)
    assert lines[-1].startswith("phoneemu fleet boot: 2 phones 0A0000000000..0A0000000001 (cp-8861)"), lines


def test_the_notes_of_a_models_file_of_one_phone(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_path / "site.csv"
    models.write_text("001122334455,Cisco 9999\n")
    lines = _said_before_storm([*FLEET, "--models", str(models), "-q"], capsys, monkeypatch)
    assert lines[0].startswith("phoneemu fleet boot: 1 phone's model has no profile here, e.g. "), lines
    assert lines[1] == f"phoneemu fleet boot: 1 of the 1 phone has a model in {models}", lines
    assert lines[-1].startswith(f"phoneemu fleet boot: 1 phone of {models}, 001122334455 (cp-8861)"), lines


def test_the_junit_suite_of_one_phone(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A real storm of one phone on loopback (nothing listens on port 9: it fails at once)."""
    monkeypatch.chdir(tmp_path)
    assert main([*FLEET, "--count", "1", "-q", "--junit", "phones.xml"]) == 1
    capsys.readouterr()
    xml = (tmp_path / "phones.xml").read_text()
    assert 'name="fleet boot 1 phone -&gt; 127.0.0.1' in xml, xml[:400]


@pytest.mark.parametrize("option", ["--json", "--junit"])
def test_a_report_to_dash_is_refused(option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main([*FLEET, "--count", "1", "-q", option, "-"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: '-' is not stdout here: stdout carries the summary" in err, err
    assert list(tmp_path.iterdir()) == []  # no file "-"


def test_a_file_named_dash_is_still_written_as_dot_slash_dash(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([*FLEET, "--count", "1", "-q", "--json", "./-"]) == 1
    capsys.readouterr()
    assert (tmp_path / "-").read_text().startswith("{")


def test_the_help_says_dash_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["fleet", "boot", "--help"])
    assert "'-' is refused: stdout carries the summary" in " ".join(capsys.readouterr().out.split())
