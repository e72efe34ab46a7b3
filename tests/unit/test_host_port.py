"""``values.host_port`` writes what ``values.parse_host_port`` reads back; a bare IPv6 address with
what reads like a port is explained, not called 'neither an IP address nor a DNS name'."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phoneemu.errors import EncodeError, PhoneEmuError
from phoneemu.values import host_port, parse_host_port


@pytest.mark.parametrize(("host", "port", "text"), [
    ("127.0.0.1", 6969, "127.0.0.1:6969"), ("::1", 6970, "[::1]:6970"),
    ("2001:db8::10", 2445, "[2001:db8::10]:2445"), ("cucm-1.example.net", 69, "cucm-1.example.net:69"),
])
def test_host_port_brackets_ipv6_only(host: str, port: int, text: str) -> None:
    assert host_port(host, port) == text
    assert parse_host_port(text) == (host, port)


@given(st.ip_addresses(), st.integers(min_value=1, max_value=65535))
def test_host_port_round_trips(addr: object, port: int) -> None:
    assert parse_host_port(host_port(str(addr), port)) == (str(addr), port)


def test_bare_ipv6_with_a_port_that_is_no_address_says_how_to_write_it() -> None:
    """``::1:60654`` is no IPv6 address (a group holds 4 hex digits): the port was meant."""
    with pytest.raises(PhoneEmuError, match=r"takes no port: for port 60654 write \[::1\]:60654"):
        parse_host_port("::1:60654")
    assert parse_host_port("::1:6969") == ("::1:6969", 69)  # a valid address: port 69 (documented)
    with pytest.raises(PhoneEmuError, match="neither an IP address nor a DNS name"):
        parse_host_port("::zz")


def test_host_matcher_knows_a_peer_by_its_address() -> None:
    """``fuzz --serve --device``: a dual-stack server sees an IPv4 phone as ``::ffff:A.B.C.D`` and a
    link-local one with its ``%scope``; a name or a bad address is refused where it is written."""
    from phoneemu.values import host_matcher

    v4 = host_matcher("10.0.0.5")
    assert v4("10.0.0.5") and v4("::ffff:10.0.0.5") and not v4("10.0.0.50") and not v4("?")
    v6 = host_matcher("[FE80::1]")
    assert v6("fe80::1%eth0") and v6("fe80:0::1") and not v6("fe80::2")
    for bad in ("phone7", "10.0.0.300", ""):
        with pytest.raises(PhoneEmuError, match="not an IP address"):
            host_matcher(bad)


def test_a_dotted_quad_out_of_range_is_no_host() -> None:
    """``127.0.0.256`` is no IPv4 address and no DNS name (none ends in a number, RFC 3696 §2): it was
    taken as a name, written into configs, and ``lab serve`` then failed with 'Unknown error -2'."""
    from phoneemu.lab.cluster import check_host

    with pytest.raises(PhoneEmuError, match="neither an IP address nor a DNS name"):
        parse_host_port("127.0.0.256:69")
    with pytest.raises(EncodeError, match="not a valid IPv4 address"):
        check_host("127.0.0.256")
    assert parse_host_port("tftp.example.com:69") == ("tftp.example.com", 69)
    assert check_host("cucm-1.example.com") == "cucm-1.example.com"


def test_a_scoped_address_naming_no_interface_is_refused() -> None:
    """``[fe80::1%nosuchif]``: every datagram to it failed, unseen, and the boot waited out its retries
    to say 'nothing answered'; now one line naming the interface."""
    with pytest.raises(PhoneEmuError, match="no network interface 'nosuchif' on this machine"):
        parse_host_port("[fe80::1%nosuchif]:69")
    with pytest.raises(PhoneEmuError, match="no network interface '99999'"):
        parse_host_port("[fe80::1%99999]:69")
    import socket

    here = socket.if_nameindex()[0][1]  # an interface this machine has (the loopback one, typically)
    assert parse_host_port(f"[fe80::1%{here}]:69") == (f"fe80::1%{here}", 69)
