"""The HTTP client's ``Host`` (RFC 9110 §7.2): the port unless it is the scheme's default, an IPv6 literal in
brackets without its zone, a name in IDNA form (:func:`phoneemu.net.http.host_header`)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phoneemu.net import http
from phoneemu.net.http import host_header
from tests.helpers import http_heads_server, run, v6_loopback_missing


@pytest.mark.parametrize(("host", "port", "default", "want"), [
    ("10.0.0.1", 6970, 80, "10.0.0.1:6970"),
    ("10.0.0.1", 80, 80, "10.0.0.1"),
    ("cucm.example", 443, 443, "cucm.example"),
    ("cucm.example", 8443, 443, "cucm.example:8443"),
    ("cucm.example", 80, 443, "cucm.example:80"),  # http's default is no default for https
    ("::1", 6970, 80, "[::1]:6970"),
    ("[2001:db8::5]", 443, 443, "[2001:db8::5]"),  # already in brackets: not twice
    ("fe80::1%eth0", 6970, 80, "[fe80::1]:6970"),  # the zone is local to this host (RFC 6874 §4)
    ("[fe80::1%25eth0]", 443, 443, "[fe80::1]"),
    ("::ffff:10.0.0.1", 8443, 443, "[::ffff:10.0.0.1]:8443"),
    ("bücher.example", 6970, 80, "xn--bcher-kva.example:6970"),  # IDNA A-label, as it was resolved
    ("a b\r\nX-Evil: 1", 80, 80, "a%20b%0D%0AX-Evil%3A%201"),  # cannot end the header line
])
def test_host_header(host: str, port: int, default: int, want: str) -> None:
    assert host_header(host, port, default) == want


_HOSTS = st.text(st.characters(codec=None, exclude_categories=()), max_size=40) | st.from_regex(
    r"\[?[0-9a-fA-F:.]{2,30}(%[a-z0-9]{1,5})?\]?", fullmatch=True)  # any text; address-like ones


@given(_HOSTS, st.integers(1, 65535), st.sampled_from([80, 443]))
def test_a_host_header_is_always_one_ascii_field_value(host: str, port: int, default: int) -> None:
    value = host_header(host, port, default)
    value.encode("ascii")  # what the request is encoded as
    assert all(0x21 <= ord(c) < 0x7F for c in value), value  # no white space, no control: one token
    assert value.endswith(f":{port}") == (port != default)


async def _get_with_host(host: str, port: int, monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, str]:
    """``http_get(host, port)`` answered by a loopback server that records the request's Host line;
    ``host`` is resolved to the server (what a name, a zone or a default port would reach)."""
    async with http_heads_server("127.0.0.1", b"ok") as (to, heads):
        real = asyncio.open_connection

        async def resolved(_host: str, _port: int, **kw: Any) -> Any:
            return await real("127.0.0.1", to, **kw)

        monkeypatch.setattr(asyncio, "open_connection", resolved)  # the module http uses
        try:
            body = await http.http_get(host, port, "SEP001122334455.cnf.xml", timeout=10)
        finally:
            monkeypatch.undo()
    seen = [line[6:].decode("latin-1") for head in heads for line in head.split(b"\r\n")
            if line.startswith(b"Host: ")]
    assert len(seen) == 1, seen
    return body, seen[0]


@pytest.mark.parametrize(("host", "port", "want"), [
    ("10.0.0.5", 6970, "10.0.0.5:6970"),
    ("2001:db8::5", 6970, "[2001:db8::5]:6970"),
    ("fe80::1%eth0", 6970, "[fe80::1]:6970"),  # was [fe80::1%eth0]:6970: not a valid uri-host
    ("cucm.example", 80, "cucm.example"),  # was cucm.example:80
    ("bücher.example", 6970, "xn--bcher-kva.example:6970"),  # was a UnicodeEncodeError out of http_get
])
def test_http_get_sends_this_host_header(host: str, port: int, want: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    body, sent = run(_get_with_host(host, port, monkeypatch))
    assert (body, sent) == (b"ok", want)


def test_http_get_over_ipv6_loopback_names_the_bracketed_address_and_port() -> None:
    why = v6_loopback_missing()
    if why is not None:
        pytest.skip(why)
    async def main() -> bytes:
        async with http_heads_server("::1", b"ok") as (port, seen):
            body = await http.http_get("::1", port, "f", timeout=10)
        assert f"\r\nHost: [::1]:{port}\r\n".encode() in seen[0]
        return body

    assert run(main()) == b"ok"
