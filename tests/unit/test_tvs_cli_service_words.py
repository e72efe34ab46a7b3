"""CUCM's words for the TVS service and where a node's services are started are one text
(:data:`phoneemu.phone.ways_out.CUCM_TVS_SERVICE`, :data:`~phoneemu.phone.ways_out.CUCM_SERVICEABILITY`):
bringing TVS back (the ways out), ``tvs``'s hint of a TVS port nothing listens on, and ``boot``'s hint of
a TFTP nothing answered at take them from there (were written out in each)."""

from __future__ import annotations

import pytest

from phoneemu.commands import boot, tvs
from phoneemu.errors import TransportError
from phoneemu.phone import ways_out
from phoneemu.phone.boot import BootTarget
from phoneemu.phone.ways_out import CUCM_SERVICEABILITY, CUCM_TVS_SERVICE, way_out_lines

REFUSED = TransportError("cannot connect: connection refused", kind="unreachable", path="tvs")


def test_the_ways_out_and_the_tvs_hint_say_the_same_words() -> None:
    assert CUCM_TVS_SERVICE == "the Cisco Trust Verification Service"
    assert CUCM_SERVICEABILITY == "Cisco Unified Serviceability"
    back = " ".join(way_out_lines("G.3.4-tvs-unreachable", "ITL"))
    assert f"start {CUCM_TVS_SERVICE} on that node ({CUCM_SERVICEABILITY})" in back, back
    hint = tvs._what_to_try(("10.0.0.5", 2445), REFUSED, 5.0)
    assert hint == (f"nothing listens on 10.0.0.5:2445: is {CUCM_TVS_SERVICE} running on that node "
                    f"({CUCM_SERVICEABILITY})?"), hint


def test_the_commands_take_the_words_from_the_ways_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """Changed there, changed in both commands' hints."""
    monkeypatch.setattr(ways_out, "CUCM_TVS_SERVICE", "the TVS service")
    monkeypatch.setattr(ways_out, "CUCM_SERVICEABILITY", "the node's services page")
    hint = tvs._what_to_try(("10.0.0.5", 2445), REFUSED, 5.0)
    assert hint.endswith("is the TVS service running on that node (the node's services page)?"), hint
    target = BootTarget(host="10.0.0.5", tftp_port=69, http_port=6970, use_http=True)
    said = boot.nothing_answered_hint(target)
    assert "is its TFTP service activated and started on that node (the node's services page)" in said, said
