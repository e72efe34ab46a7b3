"""``ways_out.ways_group``: the lists phones hold are part of a fleet's group only where they choose other
ways (spec §G.3 note: the rollback ITL does not blank a CTL); each group's JSON and text say them.

Was: ``ways_key`` grouped by rule, kind and code only, every group told the table's ways.
"""

from __future__ import annotations

from phoneemu.phone.ways_out import (
    HeldLists,
    ways_group,
    ways_group_of,
    ways_out,
    ways_out_doc,
    ways_out_text,
)

RULE = "G.3.5-reject-unknown-signer"
BOTH = HeldLists.of(ctl=True, empty_itl=True)


def test_held_lists_are_a_group_only_where_they_choose_the_ways() -> None:
    assert ways_group(RULE, "ITL", held=HeldLists(ctl=False, empty_itl=True)) == (RULE, "ITL", None, None)
    assert ways_group(RULE, "ITL") == (RULE, "ITL", None, None)
    group = ways_group(RULE, "ITL", held=HeldLists(ctl=True, empty_itl=True))
    assert group == (RULE, "ITL", None, BOTH) and group[3] is BOTH  # the shared value
    # a file's own fault: the lists held change nothing (690a3af), so no group of their own
    assert ways_group("G.3.1-oversize", "ITL", held=BOTH) == ("G.3.1-oversize", "ITL", None, None)


def test_each_group_has_the_ways_of_the_lists_its_phones_hold() -> None:
    doc = ways_out_doc({ways_group(RULE, "ITL"): 3, ways_group(RULE, "ITL", held=BOTH): 2})
    plain, both = doc
    assert "held" not in plain and both["held"] == {"ctl": True, "empty_itl": True}
    assert [w["scenario"] for w in both["ways"]] == [w.scenario for w in ways_out(RULE, "ITL", held=BOTH)]
    assert both["ways"][0]["scenario"] == "migration-ctl-rollback-back" != plain["ways"][0]["scenario"]
    assert [ways_group_of(e) for e in doc] == [(RULE, "ITL", None, None), (RULE, "ITL", None, BOTH)]
    text = "\n".join(ways_out_text(doc))
    head = f"ways out of {RULE} (ITL, holding a CTL and the rollback ITL; 2 phones locked out):"
    assert head in text and "lab rollback OLD off" in text.split(head)[1]
    assert "lab rollback OLD on" not in text.split(head)[1] and "lab rollback OLD on" in text.split(head)[0]
