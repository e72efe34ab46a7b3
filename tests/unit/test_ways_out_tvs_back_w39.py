"""Bringing TVS back without a lab folder (task W, s39): :func:`phoneemu.phone.ways_out.tvs_back_fill` with
``hosts`` — ``phone show`` and ``replay``, whose ``DIR`` is "the lab serving" the address the phones booted
against — tells a TVS at that address (DIR's own) from one elsewhere (OLD's), as a lab folder's recorded TVS
does for ``boot --lab``. Was: no check there, ``lab service DIR tvs start`` always."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.phone import ways_out
from phoneemu.phone.show import last_boot_tvs_fill

RULE = "G.3.4-tvs-unreachable"


def _reason(*servers: str) -> str:
    """A deciding reason of a TVS that did not answer, naming each server as the boot writes them."""
    tried = "; ".join(f"{server}: cannot connect: connection refused" for server in servers)
    return f"TVS unreachable: signer cannot be vouched for (no TVS server answered: {tried})"


@pytest.mark.parametrize(("host", "named", "elsewhere"), [
    ("10.0.0.5", "10.0.0.5:2445", None),  # its own address: DIR's TVS
    ("10.0.0.5 (tftp 69)", "10.0.0.5:2445", None),  # as a flash's last boot names its target
    ("10.0.0.5 (tftp 69)", "10.0.0.6:2445", "10.0.0.6:2445"),  # another cluster's: OLD
    ("::1 (tftp 6969)", "[::0001]:2445", None),  # an address as the address it is
    ("[::1]", "[::2]:2445", "[::2]:2445"),
    ("CUCM-A.example.", "cucm-a.example:2445", None),  # a name without case or a final dot
])
def test_a_tvs_at_the_address_booted_against_is_dirs_own(host: str, named: str,
                                                          elsewhere: str | None) -> None:
    fill = ways_out.tvs_back_fill(None, [(RULE, _reason(named))], hosts=[host])
    assert fill == ({} if elsewhere is None else {ways_out.TVS_ELSEWHERE: elsewhere})


def test_without_a_lab_or_a_host_nothing_is_told(tmp_path: Path) -> None:
    """No lab nor host, a lab folder that cannot be read, a reason naming no server, another rule: DIR stays
    (nothing can be told). A lab given decides by its recorded TVS, not by the hosts."""
    reason = _reason("10.0.0.6:2445")
    assert ways_out.tvs_back_fill(None, [(RULE, reason)]) == {}
    assert ways_out.tvs_back_fill(tmp_path, [(RULE, reason)], hosts=["10.0.0.5"]) == {}  # no lab there
    assert ways_out.tvs_back_fill(None, [(RULE, "TVS QUERY too large")], hosts=["10.0.0.5"]) == {}
    assert ways_out.tvs_back_fill(None, [("G.3.4-tvs-server-untrusted", reason)], hosts=["10.0.0.5"]) == {}


def test_a_tvs_at_one_of_the_addresses_is_their_clusters() -> None:
    """Phones that booted against two addresses: a TVS at either is taken as DIR's; one the phones named at
    neither is OLD's, and one phone naming it is enough (as a fleet's summary decides)."""
    hosts = ["10.0.0.5", "10.0.0.7"]
    assert ways_out.tvs_back_fill(None, [(RULE, _reason("10.0.0.7:2445"))], hosts=hosts) == {}
    decided = [(RULE, _reason("10.0.0.5:2445")), (RULE, _reason("10.0.0.9:2445", "10.0.0.8:2445"))]
    assert ways_out.tvs_back_fill(None, decided, hosts=hosts) == \
        {ways_out.TVS_ELSEWHERE: "10.0.0.8:2445, 10.0.0.9:2445"}


def test_phone_show_reads_the_last_boots_as_the_flash_keeps_them() -> None:
    """``last-boot.json``'s deciding line and target (``HOST (tftp PORT)``); a boot with no target (a flash
    of an older phoneemu) decides nothing."""
    last = {"target": "10.0.0.5 (tftp 69)", "deciding_rule": RULE,
            "deciding": f"{RULE} (rejected) ITLSEP0A0000003901.tlv: {_reason('10.0.0.6:2445')}"}
    assert last_boot_tvs_fill([last]) == {ways_out.TVS_ELSEWHERE: "10.0.0.6:2445"}
    assert last_boot_tvs_fill([{**last, "target": "10.0.0.6 (tftp 69)"}]) == {}
    assert last_boot_tvs_fill([{**last, "target": None}]) == {}


def test_the_command_names_old_where_the_tvs_is_elsewhere() -> None:
    """The fill written into the command, and the legend then says what OLD stands for."""
    fill = {"DIR": "/srv/new", **ways_out.tvs_back_fill(None, [(RULE, _reason("10.0.0.6:2445"))],
                                                        hosts=["10.0.0.5"])}
    lines = ways_out.way_out_lines(RULE, "ITL", fill=fill)
    assert "    lab: phoneemu lab service OLD tvs start   rehearse: phoneemu run scenarios/tvs-outage.yaml" \
        in lines
    assert "OLD" in ways_out.phone_placeholders_left(RULE, "ITL", fill)
