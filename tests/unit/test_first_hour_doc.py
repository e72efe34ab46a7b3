"""docs/first-hour.md, the newcomers' guided tour, stays runnable: every ``phoneemu`` line of its ``sh``
blocks parses with the real argument parser (a misspelt command or a renamed option fails here), and the
README's quick start points newcomers to it.

The lines are found by test_docs_commands' own reader of the README's ``sh`` blocks, pointed at this
document; only the parser runs. What the commands print was checked by running the tour (each command's
own tests check its output).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import build_parser
from tests.unit import test_docs_commands as docs_commands

ROOT = Path(__file__).resolve().parents[2]
TOUR = ROOT / "docs" / "first-hour.md"


def tour_commands(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ``phoneemu`` command lines of the tour's ``sh`` blocks, read as the README's are."""
    monkeypatch.setattr(docs_commands, "README", TOUR.read_text(encoding="utf-8"))
    return docs_commands.readme_commands()


def test_tour_commands_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    commands = tour_commands(monkeypatch)
    verbs = {" ".join(c.split()[1:3]) for c in commands}
    # each step of the tour is there: a lab served, a lockout rehearsed and predicted, a fleet, CI, fuzzing
    assert {"lab serve", "lab regenerate", "predict --flash", "fleet boot", "run ci/",
            "replay /tmp/first-hour/boot.pcap", "fuzz --format"} <= verbs, sorted(verbs)
    assert len(commands) >= 20
    parser = build_parser()
    for command in commands:
        docs_commands._parses(command, parser)


def test_readme_quick_start_points_to_the_tour() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "docs/first-hour.md" in quick_start
