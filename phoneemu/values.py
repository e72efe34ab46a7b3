"""Plain values read from text: ASCII decimal numbers and the Unix times phoneemu can represent.

* Digits are ASCII only. ``str.isdigit()`` is true for ``'²'`` (which ``int()`` then refuses with a
  ValueError) and for Arabic-Indic or full-width digits (which ``int()`` silently accepts): a port, a
  status code or a length on the wire or the command line is ``[0-9]+`` and nothing else.
* Times are Unix seconds from :data:`MIN_TIME` (1970-01-01) to :data:`MAX_TIME` (9000-01-01 UTC).
  ``datetime`` ends at the year 9999 and ``time_t`` conversions overflow well before a large ``int``
  does; the margin leaves room for certificate lifetimes added to the clock. A time outside the
  range is refused where it enters (``--now``, a scenario ``clock: advance``), not deep inside a
  date conversion.
* A server address is ``HOST``, ``HOST:PORT``, ``[V6]:PORT``, ``[V6]`` or a bare IPv6 address
  (:func:`parse_host_port`; ``--tftp``, a scenario's ``external: {tftp: ...}``). A colon must be
  followed by a port 1..65535 and a ``[`` closed by ``]`` followed by nothing but ``:PORT``: a
  typo is refused where it is written, never silently sent to port 69 or to a host named ``[::1]``.
  The host is an IP address (inside ``[...]``: an IPv6 one) or an ASCII DNS name (labels of
  letters, digits, hyphens and underscores): ``host name``, ``ü`` or ``[::zz]`` is bad input, not a
  name that fails to resolve after every retry of a boot. A bare IPv6 address never carries a port:
  ``::1:6969`` is the address ``::1:6969`` (port 69); write ``[::1]:6969`` for port 6969.
* A peer is matched by its IP address (:func:`host_matcher`, ``fuzz --serve --device``): an
  IPv4-mapped IPv6 peer of a dual-stack socket is its IPv4 address, a ``%scope`` is dropped.
* An address is shown as :func:`host_port` writes it — ``host:port``, ``[V6]:port`` for IPv6 — in
  every message, log line, report and URL, so what is printed can be given back to ``--tftp``
  (``::1:6969`` would read as an address without a port).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from phoneemu.errors import PhoneEmuError

__all__ = [
    "MAX_TIME", "MIN_TIME", "address_of", "check_time", "host_matcher", "host_port", "is_ascii_digits",
    "parse_ascii_int", "parse_host_port",
]

_DNS_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")

MIN_TIME = 0
MAX_TIME = 221_845_392_000
"""9000-01-01T00:00:00Z in Unix seconds."""


def is_ascii_digits(text: str) -> bool:
    """True for a non-empty run of ASCII ``0-9`` (and nothing else: no sign, space, ``_``, ``'²'``)."""
    return text.isascii() and text.isdigit()


def parse_ascii_int(text: str, *, max_digits: int = 20) -> int | None:
    """``int(text)`` if ``text`` is 1..``max_digits`` ASCII digits, else None."""
    if len(text) > max_digits or not is_ascii_digits(text):
        return None
    return int(text)


def check_time(value: int, what: str) -> int:
    """``value`` if it is a Unix time in [MIN_TIME, MAX_TIME]; PhoneEmuError naming ``what`` otherwise."""
    if not MIN_TIME <= value <= MAX_TIME:
        raise PhoneEmuError(f"time {value} is outside the supported range {MIN_TIME}..{MAX_TIME} "
                            f"(1970-01-01 to 9000-01-01 UTC)", path=what)
    return value


def parse_host_port(text: str, *, what: str = "--tftp", default_port: int = 69) -> tuple[str, int]:
    """(host, port) of ``HOST[:PORT]``, ``[V6][:PORT]`` or a bare IPv6 address (module rules);
    PhoneEmuError naming ``what`` and the text otherwise."""
    t = text.strip()
    if t.startswith("["):
        host, bracket, rest = t[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise PhoneEmuError(f"{what} {text!r}: expected [IPV6] or [IPV6]:PORT", path=what.lstrip("-"))
        has_port, port = bool(rest), rest[1:]
    elif t.count(":") == 1:
        host, _, port = t.partition(":")
        has_port = True
    else:
        host, has_port, port = t, False, ""
    if not host:
        raise PhoneEmuError(f"{what} {text!r}: no host", path=what.lstrip("-"))
    if not _is_host(host, v6_only=t.startswith("[")):
        expected = ("not an IPv6 address (brackets are for IPv6)" if t.startswith("[") else
                    "neither an IP address nor a DNS name (ASCII letters, digits, hyphens, dots)")
        head, _, last = host.rpartition(":")
        if not t.startswith("[") and head and is_ascii_digits(last) and _is_host(head, v6_only=True):
            expected = (f"not an IPv6 address; a bare IPv6 address takes no port: for port {last} "
                        f"write [{head}]:{last}")
        raise PhoneEmuError(f"{what} {text!r}: host {host!r} is {expected}", path=what.lstrip("-"))
    scope = _missing_scope(host)
    if scope is not None:
        raise PhoneEmuError(f"{what} {text!r}: no network interface {scope!r} on this machine (the scope of "
                            f"the link-local address {host})", path=what.lstrip("-"))
    if not has_port:
        return host, default_port
    value = parse_ascii_int(port, max_digits=5)
    if value is None or not 0 < value < 65536:
        raise PhoneEmuError(f"{what} {text!r}: port must be 1..65535", path=what.lstrip("-"))
    return host, value


def _missing_scope(host: str) -> str | None:
    """The interface a scoped IPv6 address (``fe80::1%eth9``) names when this machine has none of that
    name or index (every datagram to it would fail, unseen: a boot would wait out every retry)."""
    _, percent, scope = host.partition("%")
    if not percent or not scope:
        return None
    import socket  # only for a scoped address

    try:
        if is_ascii_digits(scope):
            socket.if_indextoname(int(scope))
        else:
            socket.if_nametoindex(scope)
    except (OSError, ValueError, OverflowError):
        return scope
    return None


def host_port(host: object, port: object) -> str:
    """``host:port``, or ``[host]:port`` when ``host`` is an IPv6 address (it holds a colon), as
    :func:`parse_host_port` reads it back; ``host`` and ``port`` as a socket address gives them."""
    text = str(host)
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"


def _is_host(host: str, *, v6_only: bool) -> bool:
    """An IP address (IPv6 only when ``v6_only``: it was written in brackets) or an ASCII DNS name."""
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        if v6_only or len(host) > 253 or not host.isascii():
            return False
        labels = host.removesuffix(".").split(".")
        # 127.0.0.256 is no address, and no DNS name ends in a numeric label (RFC 3696 §2)
        return all(_DNS_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit()
    return not v6_only or addr.version == 6


def address_of(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address ``text`` names, an IPv4-mapped IPv6 one (a dual-stack socket's peer) as IPv4 and
    a ``%scope`` dropped; None when it is not an address."""
    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def host_matcher(text: str, *, what: str = "--device") -> Callable[[str], bool]:
    """``match(peer_host)``: whether a socket peer's host is the IP address ``text`` (``10.0.0.5``
    matches a dual-stack server's ``::ffff:10.0.0.5``; ``fe80::1%eth0`` is ``fe80::1``). A text
    that is not an IP address is refused naming ``what``: a peer is known by its address only."""
    want = address_of(text.strip("[]"))
    if want is None:
        raise PhoneEmuError(f"{text!r}: not an IP address (e.g. 10.0.0.5 or 2001:db8::5)", path=what)
    return lambda host: address_of(host) == want
