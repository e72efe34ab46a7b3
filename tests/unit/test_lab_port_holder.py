"""``lab serve``'s port in use names the process holding it (phoneemu.lab.servers ``port_holder``), read from
a ``/proc`` made here: the socket that clashes with the address served, not any socket on that port number.

Labs served side by side on loopback addresses of their own (``--host 127.0.0.11``, ``--host 127.0.0.12``)
share the default port numbers: a port taken on 127.0.0.12 named the lab serve on 127.0.0.11 (the first
process found holding a socket of that number), so the user was told to stop the wrong one. A wildcard
socket (0.0.0.0, ``::``: dual-stack) clashes with every address of its family (``::`` with IPv4's too). And
the look is bounded: the socket tables count towards ``_HOLDER_SCAN_LIMIT`` with the open files (a machine
with a million sockets: was its whole table read into memory)."""

from __future__ import annotations

import errno
import functools
import ipaddress
import os
import struct
from collections.abc import Sequence
from pathlib import Path

import pytest

from phoneemu.lab import servers
from phoneemu.lab.servers import port_holder

PORT = 6970
_HEAD = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"


def _hex(address: str) -> str:
    """An address as ``/proc/net/tcp[6]`` prints it: each 32-bit word in the machine's byte order."""
    packed = ipaddress.ip_address(address).packed
    return "".join(f"{struct.unpack('=I', packed[i:i + 4])[0]:08X}" for i in range(0, len(packed), 4))


def _row(n: int, address: str, port: int, inode: int, state: str = "0A") -> str:
    zero = "0" * len(_hex(address))
    return (f"{n:4}: {_hex(address)}:{port:04X} {zero}:0000 {state} 00000000:00000000 00:00000000 00000000  "
            f"1000        0 {inode} 1 0000000000000000 100 0 0 10 0\n")


def _proc(tmp_path: Path, tcp: Sequence[tuple[str, int, int]], holders: dict[int, tuple[int, str]],
          tcp6: Sequence[tuple[str, int, int]] = ()) -> Path:
    """A ``/proc`` with these listening sockets (address, port, inode) and processes (pid: inode held,
    command line)."""
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    for table, rows in (("tcp", tcp), ("tcp6", tcp6)):
        (proc / "net" / table).write_text(_HEAD + "".join(_row(i, *row) for i, row in enumerate(rows)))
    for pid, (inode, command) in holders.items():
        (proc / str(pid) / "fd").mkdir(parents=True)
        os.symlink("/dev/null", proc / str(pid) / "fd" / "0")
        os.symlink(f"socket:[{inode}]", proc / str(pid) / "fd" / "3")
        (proc / str(pid) / "cmdline").write_bytes(command.replace(" ", "\0").encode() + b"\0")
    return proc


def test_the_holder_of_another_address_on_that_port_is_not_named(tmp_path: Path) -> None:
    """127.0.0.12:6970 is held by a process this user cannot see (another user's lab serve); the lab serve
    on 127.0.0.11 holds the same port number on its own address: it is not the one in the way."""
    proc = _proc(tmp_path, tcp=[("127.0.0.11", PORT, 111), ("127.0.0.12", PORT, 222)],
                 holders={100: (111, "phoneemu lab serve /tmp/lab11 --host 127.0.0.11")})
    assert port_holder(PORT, udp=False, host="127.0.0.12", proc=proc) is None  # was: pid 100 (lab11)
    assert port_holder(PORT, udp=False, host="127.0.0.11", proc=proc) == (
        "pid 100 (phoneemu lab serve /tmp/lab11 --host 127.0.0.11)")


def test_a_port_in_use_on_the_address_served_names_no_process_on_another(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The error line itself (``_bind_error``): not "held by pid 100 (phoneemu lab serve /tmp/lab11 ...)"."""
    proc = _proc(tmp_path, tcp=[("127.0.0.11", PORT, 111), ("127.0.0.12", PORT, 222)],
                 holders={100: (111, "phoneemu lab serve /tmp/lab11 --host 127.0.0.11")})
    monkeypatch.setattr(servers, "port_holder", functools.partial(port_holder, proc=proc))
    error = servers._bind_error("http", "127.0.0.12", PORT, OSError(errno.EADDRINUSE, "in use"))
    assert "pid 100" not in str(error) and "lab11" not in str(error), str(error)
    assert str(error) == ("cannot listen for http on 127.0.0.12:6970: Address already in use (port in use, "
                          "e.g. by another 'phoneemu lab serve': stop it, or pick another --http-port (0 = "
                          "any free port))")


def test_of_two_holders_of_the_port_the_one_on_the_address_is_named(tmp_path: Path) -> None:
    proc = _proc(tmp_path, tcp=[("127.0.0.11", PORT, 111), ("127.0.0.12", PORT, 222)],
                 holders={100: (111, "lab serve /tmp/lab11"), 200: (222, "lab serve /tmp/lab12")})
    assert port_holder(PORT, udp=False, host="127.0.0.12", proc=proc) == "pid 200 (lab serve /tmp/lab12)"
    assert port_holder(PORT, udp=False, host="127.0.0.11", proc=proc) == "pid 100 (lab serve /tmp/lab11)"


@pytest.mark.parametrize(("bound", "table", "host", "clash"), [
    ("0.0.0.0", "tcp", "127.0.0.12", True),  # every IPv4 address
    ("127.0.0.11", "tcp", "0.0.0.0", True),
    ("127.0.0.11", "tcp", "::", True),  # '::' is dual-stack: IPv4's addresses too
    ("::", "tcp6", "127.0.0.12", True),
    ("::1", "tcp6", "::1", True),
    ("::1", "tcp6", "127.0.0.1", False),
    ("0.0.0.0", "tcp", "::1", False),
    ("::", "tcp6", "0.0.0.0", True),
    ("::ffff:127.0.0.12", "tcp6", "127.0.0.12", True),  # an IPv4-mapped address is that IPv4 address
    ("127.0.0.11", "tcp", "localhost", True),  # a name, not an address: any socket on the port, as before
])
def test_what_clashes_with_the_address_served(tmp_path: Path, bound: str, table: str, host: str,
                                              clash: bool) -> None:
    rows = [(bound, PORT, 333)]
    proc = _proc(tmp_path, tcp=rows if table == "tcp" else [], tcp6=rows if table == "tcp6" else [],
                 holders={300: (333, "httpd")})
    assert port_holder(PORT, udp=False, host=host, proc=proc) == ("pid 300 (httpd)" if clash else None)


def test_the_socket_tables_count_towards_the_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``_HOLDER_SCAN_LIMIT`` entries looked at, table rows included, the holder is not named."""
    others = [(f"127.0.1.{i}", 5000 + i, 1000 + i) for i in range(8)]
    proc = _proc(tmp_path, tcp=[*others, ("127.0.0.12", PORT, 222)], holders={200: (222, "httpd")})
    assert port_holder(PORT, udp=False, host="127.0.0.12", proc=proc) == "pid 200 (httpd)"
    monkeypatch.setattr(servers, "_HOLDER_SCAN_LIMIT", 5)
    assert port_holder(PORT, udp=False, host="127.0.0.12", proc=proc) is None  # was: its whole table read
