"""Bringing TVS back without a lab folder (``phone show``, ``replay``): a host the phones booted against and
a TVS server their reason names, one a DNS name and the other an address, cannot be compared without a
lookup — it cannot be told, ``DIR`` stays (review s39). Was: taken as another cluster's TVS, ``lab service OLD
tvs start`` and "OLD: the cluster the phone came from" for a phone that booted with ``--tftp localhost:PORT``
against its own lab (configs naming ``127.0.0.1``), its own TVS down."""

from __future__ import annotations

import pytest

from phoneemu.phone import ways_out
from phoneemu.phone.show import last_boot_tvs_fill

RULE = "G.3.4-tvs-unreachable"


def _reason(*servers: str) -> str:
    """A deciding reason of a TVS that did not answer, naming each server as the boot writes them."""
    tried = "; ".join(f"{server}: cannot connect: connection refused" for server in servers)
    return f"TVS unreachable: signer cannot be vouched for (no TVS server answered: {tried})"


@pytest.mark.parametrize(("hosts", "named"), [
    (["localhost (tftp 6969)"], "127.0.0.1:2445"),  # booted by name, the lab's configs name its address
    (["10.0.0.5"], "cucm-a.example:2445"),  # a capture's address, a lab whose configs name a DNS name
    (["[::1] (tftp 6969)"], "cucm-a.example:2445"),
    (["cucm-a.example", "cucm-b.example"], "10.0.0.9:2445"),
])
def test_a_name_and_an_address_cannot_be_told_apart_dir_stays(hosts: list[str], named: str) -> None:
    assert ways_out.tvs_back_fill(None, [(RULE, _reason(named))], hosts=hosts) == {}


@pytest.mark.parametrize(("hosts", "named"), [
    (["10.0.0.5"], "10.0.0.6:2445"),  # two addresses: another cluster's TVS, as before
    (["cucm-a.example (tftp 69)"], "cucm-b.example:2445"),  # two names: compared as text, as before
])
def test_hosts_of_one_kind_are_still_compared(hosts: list[str], named: str) -> None:
    assert ways_out.tvs_back_fill(None, [(RULE, _reason(named))], hosts=hosts) == \
        {ways_out.TVS_ELSEWHERE: named}


def test_phone_show_of_a_phone_booted_by_name_against_its_own_lab_says_dir() -> None:
    """``last-boot.json`` of ``boot --tftp localhost:PORT`` (the end-to-end case above): its own TVS down."""
    last = {"target": "localhost (tftp 48440)", "deciding_rule": RULE,
            "deciding": f"{RULE} (rejected) ITLSEP001122334455.tlv: {_reason('127.0.0.1:38135')}"}
    fill = last_boot_tvs_fill([last])
    assert fill == {}
    lines = ways_out.way_out_lines(RULE, "ITL", fill={"MAC": "001122334455", **fill})
    assert any("phoneemu lab service DIR tvs start" in line for line in lines), lines


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "255.255.255.255", "10.0.0.5", "::1", "::0001",
                                  "[fe80::1%eth0]", "::ffff:10.0.0.5", "2001:db8::1", "localhost",
                                  "CUCM-A.example.", "256.1.1.1", "010.0.0.1", "1.2.3", "1.2.3.4.5",
                                  "10.0.0.5x", "123", "a1.2.3.4"])
def test_an_address_key_is_told_from_a_name_key_by_its_form(host: str) -> None:
    """The kind of a compared host (``_address_key``'s text) as the address parser says it, without parsing
    it again."""
    from phoneemu.values import address_of

    key = ways_out._address_key(f"[{host.strip('[]')}]:0")[0]
    assert ways_out._is_address_key(key) == (address_of(host.strip("[]")) is not None), key
