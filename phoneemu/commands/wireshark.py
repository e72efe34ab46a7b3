"""``phoneemu wireshark``: our TVS/CAPF dissectors for Wireshark and tshark, and captures opened with them.

Wireshark knows neither TVS (spec §E) nor CAPF (spec §F); ``phoneemu/wireshark/tvs_capf.lua`` is a
dissector for both (decrypted TLS application data; registered on TLS ports 2445 and 3804, which it
gives to TLS, and as a heuristic on TLS). Lab services listen on ephemeral ports, which Wireshark
does not take for TLS: for a capture this command finds every TCP port that received a TLS
ClientHello and decodes it as TLS, so the TVS and CAPF messages show up whatever the ports; so does
SIP over TLS (the dissector hands it to Wireshark's SIP, whose SDP sets up the RTP/SRTP). A copy
installed with --install that differs from this one is named on stderr: Wireshark loads it first and
decodes with it.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phoneemu.commands._capture import keys_beside
from phoneemu.commands._said import say
from phoneemu.errors import DecodeError, PhoneEmuError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["dissector_path", "register", "shell_word", "tls_server_ports", "tshark_args"]

_EPILOG = """\
examples:
  phoneemu wireshark --install                    the dissector into ~/.local/lib/wireshark/plugins
  phoneemu wireshark caps/tvs-outage.pcap         TVS/CAPF messages of a capture (tshark; key log
                                                  caps/tvs-outage.keys taken when present)
  phoneemu wireshark caps/tvs-outage.pcap --print
                                                  the tshark command only (the same -X/-o/-d
                                                  options work for the wireshark GUI)
  phoneemu wireshark --lua                        where the dissector is

fields for -Y / -T fields: tvs.type tvs.session_id tvs.device_name tvs.subject tvs.issuer
tvs.serial tvs.status tvs.role tvs.ttl capf.command capf.session_id capf.device_name capf.reason
capf.auth_type capf.certificate_type capf.key_size capf.key_type capf.curve capf.password

exit status: tshark's own when it runs (0 it showed the capture; 2 also when it showed a capture cut
short or damaged, the packets before the end or the damage); 0 for --lua, --install and --print; 2
refused, one line on stderr: no CAPTURE, a folder or a file that is not a capture, --keylog FILE missing,
tshark not installed; 130 interrupted (Ctrl-C or SIGTERM).
"""

_PLUGIN_DIR = Path("~/.local/lib/wireshark/plugins")
_PLUGIN_NAME = "phoneemu_tvs_capf.lua"


def dissector_path() -> Path:
    """The installed ``tvs_capf.lua``."""
    return Path(str(resources.files("phoneemu") / "wireshark" / "tvs_capf.lua"))


def tls_server_ports(pcap: Path, *, damaged: Callable[[DecodeError], None] | None = None) -> list[int]:
    """TCP ports that received a TLS ClientHello in ``pcap`` (record type 22, handshake type 1).

    The capture is read one packet at a time and only the set of ports is kept: memory stays bounded
    whatever the size of the capture; one cut short inside its last packet gives the ports before.
    A capture damaged after its start (a packet that cannot be read: tshark shows the ones before it)
    raises DecodeError, or with ``damaged`` gives the ports before the damage and tells it the error;
    one that is not a capture (its file header unreadable) raises either way."""
    from phoneemu.net.capture import read_pcap

    ports: set[int] = set()
    read = False
    try:
        for p in read_pcap(pcap, cut_short=lambda _exc: None):  # tshark warns of that itself
            read = True
            if (p.proto == "tcp" and p.payload[:1] == b"\x16" and p.payload[1:2] == b"\x03"
                    and p.payload[5:6] == b"\x01"):
                ports.add(p.dport)
    except DecodeError as exc:
        if damaged is None or not (read or (exc.path or "").startswith("packet[")):
            raise
        damaged(exc)
    return sorted(ports)


def _damage_note(capture: Path, exc: DecodeError) -> str:
    """The note for a capture damaged at ``exc``: where (packet numbered from 1, as tshark numbers
    its frames; the file offset), what, and that tshark shows the packets before it."""
    import re

    index = re.match(r"packet\[(\d+)\]", exc.path or "")
    where = f"packet {int(index[1]) + 1} " if index else ""
    offset = f"offset {exc.offset}: " if exc.offset is not None else ""
    return f"note: {capture}: damaged at {where}({offset}{exc.message}): tshark shows the packets before it"


def tshark_args(pcap: Path, keylog: Path | None, ports: list[int]) -> list[str]:
    """Options that load the dissector, the key log and decode ``ports`` as TLS."""
    args = ["-X", f"lua_script:{dissector_path()}"]
    if keylog is not None:
        args += ["-o", f"tls.keylog_file:{keylog}"]
    for port in ports:
        args += ["-d", f"tcp.port=={port},tls"]
    return [*args, "-r", str(pcap)]


def shell_word(arg: str) -> str:
    """``arg`` quoted for a POSIX shell (:func:`shlex.quote`); one with control characters or bytes that
    are not UTF-8 (a capture's file name) as bash's ``$'...'`` with ``\\xHH`` escapes: the printed
    command never carries them raw to the terminal, and still runs as printed."""
    if arg.isprintable():
        return shlex.quote(arg)
    out = []
    for c in arg:
        if c in "\\'":
            out.append("\\" + c)
        elif c.isprintable():
            out.append(c)
        else:  # a lone surrogate (surrogateescape) is the byte it stands for
            out += [f"\\x{b:02x}" for b in c.encode("utf-8", errors="surrogateescape")]
    return "$'" + "".join(out) + "'"


def register(sub: Any) -> None:
    p = sub.add_parser("wireshark", help="TVS/CAPF dissectors for Wireshark/tshark; show a capture with them",
                       description=__doc__, epilog=_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("capture", nargs="?", type=Path, metavar="CAPTURE.pcap",
                   help="a capture (pcap or pcapng) to show with tshark (TVS and CAPF messages)")
    p.add_argument("--keylog", type=Path, metavar="FILE",
                   help="TLS key log (default: CAPTURE with the suffix .keys, when it exists; x.keys for "
                   "x.pcap.gz too)")
    p.add_argument("--filter", default="tvs || capf", metavar="EXPR",
                   help="display filter (default 'tvs || capf')")
    p.add_argument("--print", action="store_true", help="print the tshark command instead of running it")
    p.add_argument("--lua", action="store_true", help="print the path of the Lua dissector")
    p.add_argument("--install", action="store_true",
                   help=f"copy the dissector into Wireshark's personal plugin folder ({_PLUGIN_DIR})")
    p.set_defaults(handler=handler)


def _install() -> int:
    folder = _PLUGIN_DIR.expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / _PLUGIN_NAME
    shutil.copyfile(dissector_path(), target)
    print(f"installed {target} (Wireshark and tshark load it at start; Help -> About -> Plugins lists it)")
    return 0


def _stale_install() -> Path | None:
    """The installed plugin when it is not this phoneemu's dissector: Wireshark loads it first, so it
    is the one that decodes (and a copy without the load-once guard clashes with -X lua_script:)."""
    target = _PLUGIN_DIR.expanduser() / _PLUGIN_NAME
    try:
        return None if target.read_bytes() == dissector_path().read_bytes() else target
    except OSError:  # not installed (or unreadable: Wireshark will not load it either)
        return None


def _embeds_keylog(capture: Path) -> bool:
    """Whether ``capture`` is a pcapng with a TLS key log in it (a Decryption Secrets Block, ``editcap
    --inject-secrets``): tshark decrypts with it, no key log file needed."""
    from phoneemu.net.capture import embedded_keylog

    try:
        return bool(embedded_keylog(capture))
    except DecodeError:  # damaged: the secrets before the damage are not looked for
        return False


def _shows_nothing(capture: Path, keylog: Path | None, ports: list[int], shown: str, *,
                   damaged: bool = False) -> list[str]:
    """Notes for a capture whose TVS and CAPF messages cannot show, said before tshark runs (it printed
    nothing, and nothing said why): TVS and CAPF run over TLS (spec §E, §F), so a capture with no TLS
    session holds none (``damaged``: before the damage, all tshark shows), and one without a key log —
    none given, no ``CAPTURE.keys`` beside it, none embedded in the pcapng — or with an empty one stays
    encrypted. Only for a display filter that asks for ``tvs`` or ``capf``."""
    if "tvs" not in shown and "capf" not in shown:
        return []
    if not ports:
        where = "before the damage" if damaged else "in it"
        return [f"note: {capture}: no TLS session {where} (no ClientHello), so no TVS or CAPF message to "
                "show (they run over TLS)"]
    to = f"the TLS to port{'s' if len(ports) > 1 else ''} {', '.join(map(str, ports))}"
    if keylog is None:
        if _embeds_keylog(capture):  # tshark decrypts with it
            return []
        return [f"note: no key log ({keys_beside(capture)} is not there; --keylog FILE names one): {to} "
                "stays encrypted, no TVS or CAPF message shows (boot, fleet boot and run --capture write "
                "one beside the capture)"]
    try:
        empty = keylog.stat().st_size == 0
    except OSError:  # tshark says it
        return []
    if empty:
        return [f"note: key log {keylog} is empty: {to} stays encrypted, no TVS or CAPF message shows"]
    return []


def handler(args: argparse.Namespace) -> int:
    if args.lua:
        print(dissector_path())
        return 0
    if args.install:
        return _install()
    if args.capture is None:
        raise PhoneEmuError("give CAPTURE.pcap, --lua or --install", path="capture")
    if args.capture.is_dir():
        raise PhoneEmuError(f"{args.capture}: is a folder, not a capture file", path="capture")
    keylog = args.keylog
    beside = keys_beside(args.capture)
    if keylog is None and beside.exists():
        keylog = beside
    if keylog is not None and not keylog.is_file():
        raise PhoneEmuError(f"--keylog {keylog}: no such file", path="keylog")
    damage: list[DecodeError] = []
    ports = tls_server_ports(args.capture, damaged=damage.append)
    cmd = ["tshark", *tshark_args(args.capture, keylog, ports), "-Y", args.filter]
    for exc in damage:
        say(args, _damage_note(args.capture, exc))
    for note in _shows_nothing(args.capture, keylog, ports, args.filter, damaged=bool(damage)):
        say(args, note)
    stale = _stale_install()
    if stale is not None:
        say(args, f"note: Wireshark also loads {stale}, another version of this dissector, and decodes "
                  "with that one: phoneemu wireshark --install replaces it")
    if args.print:
        print(" ".join(shell_word(a) for a in cmd))
        return 0
    tshark = shutil.which("tshark")
    if tshark is None:
        raise PhoneEmuError("tshark is not installed (Debian: apt-get install tshark); --print gives the "
                            "command and its options for the wireshark GUI", path="tshark")
    sys.stdout.flush()
    return subprocess.run([tshark, *cmd[1:]], check=False).returncode
