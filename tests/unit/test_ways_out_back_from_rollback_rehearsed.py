"""The way back from the rollback ITL after a move (``phoneemu.phone.ways_out``: a phone holding a CTL and
the rollback ITL that refused a trust list) names the catalogue scenario that rehearses it, and that
scenario does what the way's lab command says, in its order: the phones locked out under the way's rule,
then ``lab rollback OLD off``, a reset at the old cluster, ``lab exchange OLD NEW``, ``lab restart-tvs
OLD`` and the move, then the same phones not locked, their config accepted. Was: the way named none
(``rehearse:`` missing from its lines)."""

from __future__ import annotations

import shlex
from pathlib import Path

from phoneemu.phone import ways_out as wo
from phoneemu.scenario.loader import load_file
from phoneemu.scenario.model import Expectation, Step

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
HOLDING_BOTH = wo.HeldLists(ctl=True, empty_itl=True)


def _way() -> wo.WayOut:
    way = wo.ways_out("G.3.5-reject-unknown-signer", "CTL", held=HOLDING_BOTH)[0]
    assert way.lab.startswith("phoneemu lab rollback OLD off && phoneemu boot --lab OLD")
    return way


def test_the_way_back_names_its_scenario_in_text_and_json() -> None:
    way = _way()
    assert way.scenario == "migration-ctl-rollback-back"
    assert (SCENARIOS / f"{way.scenario}.yaml").is_file()
    lines = wo.way_out_lines("G.3.5-reject-unknown-signer", "CTL", held=HOLDING_BOTH)
    assert lines[1].endswith("   rehearse: phoneemu run scenarios/migration-ctl-rollback-back.yaml"), lines
    assert wo.ways_out("G.3.4-tvs-unknown-signer", "ITL", held=HOLDING_BOTH)[0] == way  # an ITL refused too


def test_its_scenario_locks_out_then_does_the_way_s_steps_in_order_then_recovers() -> None:
    way = _way()
    steps = load_file(SCENARIOS / f"{way.scenario}.yaml").steps
    locked, lockout = next((i, s) for i, s in enumerate(steps) if isinstance(s, Expectation)
                           and s.checks.get("deciding_rule") == "G.3.5-reject-unknown-signer"
                           and s.checks.get("locked_out") is True)
    # the lab operations of the way's command, in its order: rollback off, exchange, restart-tvs
    wanted = [shlex.split(part)[2] for part in way.lab.split("&&") if shlex.split(part)[1] == "lab"]
    assert wanted == ["rollback", "exchange", "restart-tvs"]
    admin = [(i, s) for i, s in enumerate(steps) if i > locked and isinstance(s, Step) and s.kind == "admin"]
    assert [s.args["op"] for _i, s in admin] == wanted
    rollback_off, exchange = admin[0], admin[1]
    assert rollback_off[1].args.get("on") is False and exchange[1].args.get("with")
    # between the rollback off and the exchange, the phones reset at the old cluster take its full ITL
    between = steps[rollback_off[0] + 1:exchange[0]]
    assert any(isinstance(s, Step) and s.kind in ("reset", "boot") for s in between)
    assert any(isinstance(s, Expectation) and s.phones == lockout.phones and s.checks.get("itl") == "updated"
               for s in between)
    assert any(isinstance(s, Expectation) and s.phones == lockout.phones
               and s.checks.get("locked_out") is False and s.checks.get("config") == "accepted"
               and s.checks.get("tvs_used") is True for s in steps[admin[-1][0] + 1:])
