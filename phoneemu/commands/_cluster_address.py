"""Where ``boot`` and ``fleet boot`` find the cluster: ``--tftp HOST[:PORT]`` and ``--http-port N``, or,
without ``--tftp``, the address and ports the ``--lab DIR`` cluster's ``lab serve`` last listened on (it
records them in the lab when it starts, and they stay recorded when it stops; a lab never served has the
real CUCM ports, spec §H.1).
``phoneemu boot --lab /tmp/lab --mac ...`` then needs no port copied from ``lab serve``'s banner; given
``--tftp`` at the very address and TFTP port that lab serve recorded, the phones take its HTTP port too
(else HTTP 6970 would be tried first by each phone for each file, and fall back to TFTP). "The very
address" is compared as addresses, not as text: ``--tftp localhost:PORT`` is the lab recorded at
``127.0.0.1`` or ``::1`` when ``localhost`` resolves to it (that one lookup is the command's only one:
:func:`check_resolves` reuses it), ``::0001`` is ``::1``, and names differ in case only. A lab recorded
under a name is compared with a ``--tftp`` name by text (no second lookup: ours).
The HTTPS config download port (TCP 6971, spec §H.1) follows the HTTP port's rule: ``--https-config-port N``,
else the ``https-config`` port the lab's lab serve recorded (without ``--tftp``, or with ``--tftp`` at its
very address), else None — the phone's default, 6971 (a lab without the HTTPS identity records none)."""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from phoneemu.commands._argtypes import port
from phoneemu.commands._said import teller
from phoneemu.errors import PhoneEmuError
from phoneemu.values import address_of, host_port, parse_ascii_int, parse_host_port

__all__ = ["ClusterAddress", "asked_port", "check_resolves", "cluster_address", "http_port",
           "https_config_port", "lab_read_lock", "lab_recorded_elsewhere", "lab_served_now"]


def asked_port(text: str, *, zero_hint: str = "") -> int:
    """argparse type of a cluster port a phone asks (``--http-port``, ``--sips-port``): 1..65535, refused
    at parse time like any bad port, ``zero_hint`` said after 0. Port 0 is a server's "any free port"
    (``lab serve --http-port 0``), no port a phone can ask: the plain ``_argtypes.port`` (0..65535) let it
    through, to be refused later or not at all."""
    t = text.strip()
    digits = parse_ascii_int(t.removeprefix("-"))
    if digits is not None and (t.startswith("-") or not 1 <= digits <= 65535):
        hint = f" (no port a phone can ask{zero_hint})" if digits == 0 else ""
        raise argparse.ArgumentTypeError(f"{t} is outside 1..65535{hint}")
    return port(text)  # not a number: said as for every port


def http_port(text: str) -> int:
    """argparse type of ``--http-port N`` (``boot``, ``fleet boot``): the cluster's HTTP file port, 1..65535
    (:func:`asked_port`). 0 passed the parse (0..65535) and was refused only later, after the banner, by
    the boot target naming its field (``http_port: http_port 0 outside 1..65535``), where 70000 was
    ``argument --http-port: 70000 is outside 0..65535``: two messages, two ranges."""
    return asked_port(text, zero_hint="; --no-http: TFTP only")


def https_config_port(text: str) -> int:
    """argparse type of ``--https-config-port N`` (``boot``): the cluster's HTTPS config download port
    (spec §H.1), 1..65535 (:func:`asked_port`)."""
    return asked_port(text, zero_hint="; --no-https-config: not asked")


@dataclass(frozen=True)
class ClusterAddress:
    host: str
    tftp_port: int
    http_port: int
    from_lab: bool  # taken from --lab DIR (the commands say so on stderr)
    served: bool = False  # --lab DIR: a lab serve of it recorded the ports it listened on (may have stopped)
    #: the HTTPS config download port (module docstring); None: the phone's default, 6971 (spec §H.1)
    https_config_port: int | None = None
    #: the addresses of ``host``, a name, when :func:`cluster_address` looked it up to compare it with the
    #: lab's recorded address (the resolver's order, the lab's address first), for :func:`check_resolves`
    #: to take instead of a second lookup; empty: not looked up
    addresses: tuple[str, ...] = field(default=(), compare=False)

    def __str__(self) -> str:
        return f"{host_port(self.host, self.tftp_port)} (HTTP {self.http_port})"

    def lab_line(self, command: str, lab: object) -> str:
        """What ``command`` says on stderr of an address taken from the lab ``lab``: the ports a lab serve
        recorded when it started are where it last listened — the record outlives it, so whether it
        still runs is for the boot to find out (was "where lab serve of DIR listens", also when nothing
        did)."""
        if self.served:
            return (f"{command}: cluster at {self}, where lab serve of {lab} last listened (the ports it "
                    "recorded)")
        return (f"{command}: cluster at {self}, the real CUCM ports: no lab serve of {lab} has recorded its "
                "own (it does when it starts; started just now? give it a second)")


@dataclass(frozen=True)
class _Recorded:
    """Where a lab's ``lab serve`` last listened: the address its configs name and the ports it recorded."""
    host: str
    tftp_port: int
    http_port: int
    https_config_port: int | None = None  # none recorded: a lab without the HTTPS identity, or older


def _recorded(lab: Path | None) -> _Recorded | None:
    """Where ``lab``'s lab serve last listened; None without a lab, for a lab never served (no ``ports``
    entry in its log) or one that cannot be read (said by the command when it reads the lab for the
    phones' MICs)."""
    if lab is None:
        return None
    from phoneemu.lab.state import load_state

    try:
        state = load_state(lab)
    except (PhoneEmuError, OSError):
        return None
    if not any(entry.op == "ports" for entry in state.log):
        return None
    return _Recorded(state.host, state.ports["tftp"], state.ports["http"], state.ports.get("https-config"))


def _same_host(given: str, recorded: str, addresses: Sequence[str] = ()) -> bool:
    """Whether ``--tftp``'s host ``given`` is the lab's ``recorded`` host: the same name (case and a final
    dot aside), the same address (``::0001`` is ``::1``), or a name whose ``addresses`` (its lookup)
    hold the recorded address. A lab recorded under a name against a ``--tftp`` address: not the same
    (knowing would take a second lookup, of the lab's name)."""
    if given.rstrip(".").casefold() == recorded.rstrip(".").casefold():
        return True
    want = address_of(recorded)
    if want is None:
        return False
    got = address_of(given)
    if got is not None:
        return got == want
    return any(address_of(a) == want for a in addresses)


def _lab_first(addresses: list[str], recorded: str) -> tuple[str, ...]:
    """``addresses`` with the lab's ``recorded`` address first when it is one of them: where its lab serve
    listened is where the phones ask (with ``--no-http`` too, which takes the first)."""
    want = address_of(recorded)
    first = [a for a in addresses if want is not None and address_of(a) == want]
    return tuple(first + [a for a in addresses if a not in first])


def _tftp_address(args: argparse.Namespace, host: str, port: int) -> ClusterAddress:
    """``--tftp HOST:PORT``: the HTTP port ``--http-port`` gives, else the one ``--lab DIR``'s lab serve
    recorded when it listened at that TFTP address and port (a lab served on other ports than the real
    ones), else 6970 (spec §H.1); the HTTPS config port likewise (``--https-config-port``, else the lab's
    ``https-config``, else None: 6971). A name is looked up (once) only to compare it with a lab recorded
    at an address on that TFTP port."""
    from phoneemu.lab.state import DEFAULT_PORTS

    https: int | None = getattr(args, "https_config_port", None)
    lab = _recorded(getattr(args, "lab", None))
    if args.http_port is not None and (https is not None or lab is None or lab.https_config_port is None):
        return ClusterAddress(host, port, args.http_port, from_lab=False, https_config_port=https)
    if lab is None or lab.tftp_port != port:
        return ClusterAddress(host, port, args.http_port or DEFAULT_PORTS["http"], from_lab=False,
                              https_config_port=https)
    looked_up: list[str] = []
    if address_of(host) is None and address_of(lab.host) is not None and not _same_host(host, lab.host):
        looked_up = _look_up(host, port, given="--tftp")
    same = _same_host(host, lab.host, looked_up)
    http = args.http_port or (lab.http_port if same else DEFAULT_PORTS["http"])
    https = https if https is not None else lab.https_config_port if same else None
    return ClusterAddress(host, port, http, from_lab=False, addresses=_lab_first(looked_up, lab.host),
                          https_config_port=https)


def lab_recorded_elsewhere(lab: Path | None, host: str, tftp_port: int, *,
                           addresses: Sequence[str] = ()) -> str | None:
    """With ``--lab DIR`` and ``--tftp HOST:PORT``: where that lab's lab serve last listened when it is not
    ``HOST:PORT`` (``[::1]:6969 (HTTP 6970)``), else None (no lab, never served, or the same address:
    :func:`_same_host`, ``addresses`` being the name's lookup, :attr:`ClusterAddress.addresses`). A
    ``--tftp`` port copied wrong went unseen while HTTP answered, and a boot nothing answered was told to
    start lab serve on the port it asked, beside the lab serve running on another."""
    recorded = _recorded(lab)
    if recorded is None:
        return None
    if recorded.tftp_port == tftp_port and _same_host(host, recorded.host, addresses):
        return None
    return f"{host_port(recorded.host, recorded.tftp_port)} (HTTP {recorded.http_port})"


def lab_served_now(lab: Path | None) -> str | None:
    """With ``--lab DIR``: what the ``lab serve`` serving it now noted in ``DIR/.serve.lock`` (``pid 4242,
    tftp 127.0.0.1:6969, http 127.0.0.1:6970, ...``: where it listens) while it holds that lock; None when
    none does (no lab, not served, or a lab serve gone: its lock freed, its last note maybe left), or the
    lock file cannot be read. One lab serve per lab folder (:func:`phoneemu.lab.lock.serving`): while one
    runs, ``phoneemu lab serve DIR`` is refused, so no hint may offer it. The lock is tried shared without
    waiting, and only when a note is left (a lab serve running, or one killed), then released at once; a lab
    serve starting meanwhile waits for that, not refused (:func:`phoneemu.lab.lock.serving`)."""
    if lab is None:
        return None
    import fcntl
    import os

    from phoneemu.lab.lock import SERVE_LOCK_FILE

    try:
        fd = os.open(lab / SERVE_LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        held = os.pread(fd, 1024, 0).decode("utf-8", "replace").strip()
        if held:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # taken: nobody serves the lab (closing frees it)
        return None
    except BlockingIOError:  # held: a lab serve runs
        return held or None
    except OSError:
        return None
    finally:
        os.close(fd)


def cluster_address(args: argparse.Namespace) -> ClusterAddress:
    """``args.tftp`` / ``args.http_port`` (None: not given), else those of ``args.lab``'s cluster; a
    ``--tftp`` where the lab's ``lab serve`` listens takes its HTTP port too (:func:`_tftp_address`)."""
    if args.tftp is not None:
        host, port = parse_host_port(args.tftp, what="--tftp")
        return _tftp_address(args, host, port)
    if getattr(args, "lab", None) is None:
        raise PhoneEmuError("--tftp HOST[:PORT] is required (or --lab DIR: the address its lab serve "
                            "listens on)", path="tftp")
    from phoneemu.lab.state import load_state

    state = load_state(args.lab)
    http = args.http_port if args.http_port is not None else state.ports["http"]
    https = getattr(args, "https_config_port", None)
    served = any(entry.op == "ports" for entry in state.log)
    return ClusterAddress(state.host, state.ports["tftp"], http, from_lab=True, served=served,
                          https_config_port=https if https is not None else state.ports.get("https-config"))


def check_resolves(where: ClusterAddress, *, http: bool = True) -> str:
    """The address the phones are pointed at (DHCP option 150 gives phones addresses): the cluster's host
    when it is one, else the first address its name resolves to, the one each TFTP transfer took
    (``tftp_client._resolve``), looked up once here before any phone boots; the commands say the name.
    Each transfer and HTTP request of each phone looked the name up again (a 40,000-phone ``fleet boot``:
    200,000 lookups in the loops' executors). A name that does not resolve is a mistyped argument, not a
    cluster down: one line naming it, exit 2 (was: ``fleet boot --count 100`` took 2 minutes and wrote 275
    "Future exception was never retrieved" tracebacks; ``boot`` asked whether the TFTP server ran there).
    A temporary failure (``EAI_AGAIN``: the resolver did not answer in time) is said as one, still one line,
    exit 2: the name may well be right (was: "the name does not resolve", as for a mistyped one).
    A name of several addresses with ``http`` (no ``--no-http``): the first whose HTTP port takes a TCP
    connection (:func:`_answering`), as each HTTP request's own lookup found it. A name
    :func:`cluster_address` looked up already (:attr:`ClusterAddress.addresses`) is not looked up again."""
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(where.host)
        return where.host  # an address: no lookup (as tftp_client._literal)
    given = "the lab's recorded host" if where.from_lab else "--tftp"
    # looked up by cluster_address already (compared with the lab's address): not again
    addresses = list(where.addresses) or _look_up(where.host, where.tftp_port, given=given)
    return _answering(addresses, where.http_port) if http and len(addresses) > 1 else addresses[0]


def _look_up(host: str, tftp_port: int, *, given: str) -> list[str]:
    """The addresses of the name ``host`` (the resolver's order, each once), as a TFTP transfer looks it
    up; a PhoneEmuError naming ``given`` (the option) when it does not resolve (:func:`check_resolves`)."""
    try:
        infos = socket.getaddrinfo(host, tftp_port, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as exc:
        why = exc.strerror if isinstance(exc, socket.gaierror) and exc.strerror else str(exc)
        if isinstance(exc, socket.gaierror) and exc.errno == socket.EAI_AGAIN:
            raise PhoneEmuError(f"{given} {host}: a temporary failure of name resolution ({why}): "
                                "try again, or check this machine's resolver (can it reach its DNS "
                                "servers?)", path="tftp") from None
        raise PhoneEmuError(f"{given} {host}: the name does not resolve ({why}): give the TFTP "
                            "server's address (DHCP option 150 gives phones addresses) or a name this "
                            "machine resolves", path="tftp") from None
    if not infos:  # as tftp_client._resolve: "cannot resolve"
        raise PhoneEmuError(f"{given} {host}: the name resolves to no address", path="tftp")
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


#: addresses of one name :func:`_answering` tries, and how long it waits for each (seconds)
_PROBED_MAX = 8
_PROBE_TIMEOUT = 1.0


def _answering(addresses: list[str], http_port: int) -> str:
    """The first of a name's ``addresses`` (the resolver's order) whose ``http_port`` takes a TCP
    connection, else the first: each HTTP request looked the name up and connected to the first address
    that took it (``localhost``: ``::1``, then ``127.0.0.1``). Asking only the first broke a cluster on one
    of them (``--tftp localhost:PORT``, lab serve on 127.0.0.1 and ``::1`` first: every file unreachable,
    was a boot over HTTP). Once per command, at most :data:`_PROBED_MAX` addresses, each
    :data:`_PROBE_TIMEOUT` seconds; nothing is sent."""
    for address in addresses[:_PROBED_MAX]:
        with contextlib.suppress(OSError):
            socket.create_connection((address, http_port), timeout=_PROBE_TIMEOUT).close()
            return address
    return addresses[0]


def lab_read_lock(lab: Path | None, command: str) -> contextlib.AbstractContextManager[None]:
    """``--lab DIR`` (``boot``, ``fleet boot``): the lab lock, shared, held while the command reads the
    lab — its address, the phones' models, MICs, keys and strings, the image-signing certificate — and
    released before any phone boots (:mod:`phoneemu.lab.lock` rules; ``fleet boot``'s shards read each
    phone's MIC files under it again, a phone at a time: :func:`phoneemu.fleet.mics.lab_mic`): a lab
    operation under way is waited for, said on stderr as the lab commands say it, and the lab is never
    read half-changed (an operation's new certificates beside its old state). No lab: nothing held."""
    if lab is None:
        return contextlib.nullcontext()
    from phoneemu.lab.lock import hold_lab_lock

    return hold_lab_lock(lab, shared=True, on_wait=teller(command))
