"""Every JUnit failure of a lockout carries its ways out and the legend of what they leave (task W2, s39).

From a migration's phones (booted on ``old``, moved to ``new``, old's TVS not served) and a lab's own phones
(``new``, its ITLRecovery regenerated, its TVS down) — :func:`tests.ways_out_helpers.migration_labs`. Was:

* ``replay --all --junit``: no ways out at all in a failure body (README: "their JUnit failures");
* ``fleet boot --junit``: ``lab service OLD tvs start`` and ``lab rollback OLD on`` with no legend line
  saying what OLD stands for, where ``predict --junit`` and the terminal's summary have one.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.phone.ways_out import PLACEHOLDERS
from tests.helpers import legend_of
from tests.ways_out_helpers import MACS, migration_labs

OLD_HOST, NEW_HOST = "127.0.0.68", "127.0.0.69"  # not W39's: a capture holds whatever goes to them
OLD_SAID = ("OLD: the lab folder of the cluster the phones left (not known to fleet boot: --lab names the "
            "cluster it boots against, not the one they left)")
_PLACEHOLDER = re.compile(rf"\b(?:{'|'.join(PLACEHOLDERS)})\b")


@pytest.fixture(scope="module")
def labs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migration_labs(tmp_path_factory.mktemp("w39b"), hosts=(OLD_HOST, NEW_HOST), seeds=(68, 69))


def _bodies(report: Path) -> list[str]:
    return [f.text or "" for f in ET.parse(report).getroot().iter("failure")]


def _commands(text: str) -> list[str]:
    """The lab commands of the ways out in ``text`` (without the rehearsal after them)."""
    return [line.split("lab: ", 1)[1].split("   rehearse: ")[0] for line in text.splitlines()
            if line.strip().startswith("lab: ")]


def _tvs_back(text: str) -> list[str]:
    return [command for command in _commands(text) if " tvs start" in command]


def _left(text: str) -> set[str]:
    """The placeholder words the lab commands of ``text`` leave."""
    return {m.group(0) for command in _commands(text) for m in _PLACEHOLDER.finditer(command)}


def _legend_names(text: str) -> set[str]:
    return {line.split(":", 1)[0] for line in legend_of(text)}


def _said_every_placeholder(body: str) -> None:
    """Each placeholder the body's commands leave has its legend line, at the end, and no other."""
    legend = legend_of(body)
    assert legend and body.rstrip().splitlines()[-len(legend):] == legend, body
    assert _legend_names(body) == _left(body), body


def test_junit_failures_of_a_lockout_carry_their_ways_out_and_legend(
        labs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # fleet boot --junit: OLD said, as the summary says it; the lab's own TVS filled in for those that stayed
    for fleet, tvs_back in (("moved", "phoneemu lab service OLD tvs start"),
                            ("stayed", f"phoneemu lab service {labs / 'new'} tvs start")):
        bodies = _bodies(labs / f"{fleet}.xml")
        assert len(bodies) == len(MACS)
        for body in bodies:
            assert _tvs_back(body) == [tvs_back], body
            _said_every_placeholder(body)
            assert OLD_SAID in body.splitlines(), body  # the rollback's OLD, both fleets
    # replay --all --junit: the ways the summary gives the phone's group, one phone's commands, legend
    for fleet, tvs_back, where in (("moved", "phoneemu lab service OLD tvs start", "OLD"),
                                   ("stayed", "phoneemu lab service DIR tvs start", "DIR")):
        before, report = labs / f"{fleet}-before", labs / f"replay-{fleet}.xml"
        argv = ["replay", str(labs / f"{fleet}.pcap"), "--all", "--fleet-flash", str(before)]
        assert main([*argv, "--junit", str(report)]) == 1
        summary = capsys.readouterr().out
        bodies = _bodies(report)
        assert len(bodies) == 1, (bodies, summary)  # one phone captured, one failure (seen 2 once under load)
        body = bodies[0]
        ways = [line for line in body.splitlines() if line.startswith("way out (")]
        assert ways and ways == [line.strip() for line in summary.splitlines()
                                 if line.strip().startswith("way out (")], (body, summary)
        assert _tvs_back(body) == [tvs_back], body
        assert f"phoneemu phone erase --flash {before / MACS[0]}" in _commands(body), body  # its own flash
        _said_every_placeholder(body)
        assert where in _legend_names(body), body
    dir_said = [line for line in legend_of(body) if line.startswith("DIR: ")]  # the stayed phone's
    assert dir_said == [f"DIR: the lab folder (not known to replay: the lab serving {NEW_HOST} in the "
                        "capture)"], body
