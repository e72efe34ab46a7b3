"""The ways out of a lockout (``phoneemu.phone.ways_out``): every rule is one a phone decides, every
scenario is in the catalogue, every lab command is one the CLI takes, and they are said where a
lockout is reported."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from phoneemu.cli import build_parser
from phoneemu.phone.rule_ids import RULE_IDS
from phoneemu.phone.ways_out import WAYS_BY_KIND, way_out_lines, ways_out, ways_out_doc, ways_out_text

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
_ALL = [(kind, rule, way) for kind, table in WAYS_BY_KIND.items() for rule, ways in table.items()
        for way in ways]
_SAMPLES = {"DIR": "/tmp/lab", "OLD": "/tmp/old", "NEW": "/tmp/new", "CENTRAL": "/tmp/central",
            "FLASH": "/tmp/ph1", "FLEET": "/tmp/fleet", "MAC": "0A0000000001", "FIRST": "0A0000000001",
            "N": "50"}


def test_every_rule_is_a_lockout_rule_a_phone_decides() -> None:
    for kind, rule, _way in _ALL:
        assert rule in RULE_IDS, rule
        want = {"ITL": ("G.3",), "CTL": ("G.3",), "config": ("G.4",), "sip": ("G.5-sip", "G.13"),
                "media": ("G.14",)}[kind]
        assert rule.startswith(want), (kind, rule)


@pytest.mark.parametrize(("kind", "rule", "way"), _ALL, ids=[f"{k}-{r}-{w.scenario}" for k, r, w in _ALL])
def test_each_way_names_a_catalogue_scenario_and_commands_the_cli_takes(kind: str, rule: str,
                                                                        way: object) -> None:
    from phoneemu.phone.ways_out import WayOut

    assert isinstance(way, WayOut)
    assert not way.scenario or (SCENARIOS / f"{way.scenario}.yaml").is_file(), way.scenario  # "": none yet
    assert way.when and way.action and "phoneemu run" not in way.lab
    parser = build_parser()
    for written in [*way.lab.split("&&"), *way.fleet_lab.split("&&")]:
        if not written:
            continue
        command = written
        for name, value in _SAMPLES.items():
            command = command.replace(name, value)
        argv = shlex.split(command)
        assert argv[0] == "phoneemu", command
        parser.parse_args(argv[1:])  # SystemExit (a failed test) for a command the CLI refuses


def test_lines_fill_what_is_known_and_quote_it() -> None:
    lines = way_out_lines("G.3.4-tvs-unreachable", "ITL", fill={"DIR": "/tmp/a lab", "FLASH": "ph1"})
    assert lines[0].startswith("  way out (a TVS outage, or TVS moved): bring TVS back where the phones' "
                               "config names it")
    assert lines[1] == ("    lab: phoneemu lab service '/tmp/a lab' tvs start   "
                        "rehearse: phoneemu run scenarios/tvs-outage.yaml")
    assert any("phoneemu phone erase --flash ph1" in line for line in lines)
    assert any("phoneemu lab rollback OLD on" in line for line in lines)  # not known: left for the user
    assert ways_out("G.3.4-vouched-by-tvs", "ITL") == ()
    assert way_out_lines("G.4-malformed", "config") == []
    from phoneemu.phone.ways_out import ways_out_json  # JSON: a flash of an older phoneemu names neither

    assert ways_out_json(None, "ITL") == ways_out_json("G.3.4-tvs-unreachable", None) == []
    assert ways_out_json("G.3.4-tvs-unreachable", "ITL")[0]["scenario"] == "tvs-outage"
    # many phones: the phone-by-phone way out is written for the whole fleet
    assert ways_out_json("G.3.4-tvs-unreachable", "ITL")[-1]["lab"] == "phoneemu phone erase --flash FLASH"
    assert ways_out_json("G.3.4-tvs-unreachable", "ITL", fleet=True)[-1]["lab"] == \
        "phoneemu phone erase --fleet-flash FLEET"
    assert any("phoneemu phone erase --fleet-flash /tmp/f" in line for line in way_out_lines(
        "G.3.4-tvs-unreachable", "ITL", fill={"FLEET": "/tmp/f"}, fleet=True))
    # a CTL is not blanked by the rollback ITL (spec §G.3 note): its ways out are the CTL reset's
    # ... and moved between secure clusters, the bulk export (spec §G.6: required there)
    assert [w.scenario for w in ways_out("G.3.4-tvs-unknown-signer", "CTL")] == \
        ["migration-old-tvs-unaware", "ctl-reset-locked-phones", "migration-manual-itl-delete"]


def test_doc_counts_phones_by_rule_and_kind_most_first() -> None:
    doc = ways_out_doc({("G.3.4-tvs-unreachable", "ITL"): 2, ("G.3.4-tvs-unknown-signer", "ITL"): 7,
                        ("G.4-malformed", "config"): 5, ("G.3.4-vouched-by-tvs", "ITL"): 9})
    # a rule with no documented way out is listed with why (test_ways_out_none_fleet); one that decides no
    # lockout, not
    assert [(d["rule"], d["phones"]) for d in doc] == [("G.3.4-tvs-unknown-signer", 7), ("G.4-malformed", 5),
                                                        ("G.3.4-tvs-unreachable", 2)]
    assert doc[1]["ways"] == [] and doc[1]["no_way_out"]
    assert doc[0]["ways"][0]["scenario"] == "migration-old-tvs-unaware"
    text = ways_out_text(doc)
    assert text[0] == "ways out of G.3.4-tvs-unknown-signer (ITL; 7 phones locked out):"


def test_a_reset_way_out_boots_the_phones_before_its_last_step() -> None:
    """`utils itl reset` / `utils ctl reset`: the phones must boot on the reset list before TFTP is
    restarted or the CTL updated (seed: reset the phones, then ...): run as printed without that boot, a
    CTL-locked fleet stayed locked out. Both forms (one phone, a fleet) say so."""
    from phoneemu.phone.ways_out import _CTL_RESET, _ITL_RESET

    for way in (_ITL_RESET, _CTL_RESET):
        for fleet in (False, True):
            steps = [s.strip() for s in way.command(fleet=fleet).split("&&")]
            assert len(steps) == 3 and "reset DIR localkey" in steps[0], steps
            boot = "phoneemu fleet boot --lab DIR" if fleet else "phoneemu boot --lab DIR"
            assert steps[1].startswith(boot), steps


def test_a_fleets_way_out_by_mac_names_its_run() -> None:
    """A way out for phones by MAC (a CAPF install, the encrypted security mode) names the fleet's run,
    ``--mac FIRST --count N``, where one phone's names ``--mac MAC``: a fleet summary printed the
    placeholder ``--mac MAC`` for 2,000 phones."""
    rule = "G.14-rtp-not-encrypted-mode"
    run = {"DIR": "/tmp/lab", "FIRST": "0A0000000001", "N": "50"}
    fleet = way_out_lines(rule, "media", fill=run, fleet=True)
    assert any("lab security-mode /tmp/lab --mac 0A0000000001 --count 50 encrypted" in line for line in fleet)
    one = way_out_lines(rule, "media", fill={"DIR": "/tmp/lab", "MAC": "0A0000000007"})
    assert any("lab security-mode /tmp/lab --mac 0A0000000007 encrypted" in line for line in one)
