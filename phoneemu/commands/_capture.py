"""``--capture F.pcap`` of ``boot`` and ``fleet boot``: one live capture of the cluster's hosts.

Rules (both commands, one implementation):

* The key log goes to ``--keylog`` when given (appended to, as without ``--capture``), else to
  ``F.keys`` beside the pcap, emptied first: one capture, one key log (as ``run --capture``). Both
  paths are checked writable before any work is done. Both are 0600 whatever the umask: the key log
  holds every session's secrets, the pcap the configs, which may carry SIP digest passwords
  (:data:`phoneemu.net.capture.CAPTURE_MODE`).
* The capture is live only (:class:`phoneemu.scenario.capturing.LiveCapture` with no built-in lab
  range, the TFTP host as its external cluster): every IPv4/IPv6 packet to or from the ``--tftp``
  host and each host the phones connect to over TCP (TVS, CAPF, HTTP, SIP elsewhere), on every
  interface — however short the connection: the phones' connection points, here and in ``fleet
  boot``'s shards, tell the capture where they connect (:mod:`phoneemu.scenario.capturing`). Where
  the packet socket cannot be opened (not Linux, no root or CAP_NET_RAW) it is a
  :class:`~phoneemu.errors.PhoneEmuError` naming ``--capture`` (one line, exit 2), before any boot.
* ``max_bytes`` bounds the pcap (our convention: 256 MiB by default); past it the capture keeps
  nothing more, and the summary line and the note file ``F.note.txt`` say so.
* A capture stopped early (its FIFO's reader went away, a write failed: the boot or storm goes on) says
  so in its summary line, in place of its size: ``capture: F stopped after 100 bytes (reader went away):
  12 packets written, 48 dropped, ...``; the note file and ``fleet boot --json`` (``capture.stopped``)
  too (:class:`phoneemu.scenario.capturing.CaptureStop`, ours).
* What the capture says on stderr — a FIFO ``F`` waiting for its reader, a capture stopped early — is
  said by the command as typed (``said_by``: ``phoneemu boot: capture F: waiting for a reader ...``;
  :mod:`phoneemu.cli` rules, :func:`phoneemu.net.capture.fifo_wait_teller`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from phoneemu.errors import PhoneEmuError
from phoneemu.files import check_writable, private_file

if TYPE_CHECKING:
    from phoneemu.scenario.capturing import LiveCapture

__all__ = ["DEFAULT_LIMIT_MIB", "capture_json", "capture_keylog", "capture_summary", "keys_beside",
           "open_host_capture"]

#: ``--capture-limit`` default, MiB (our convention: as ``run --capture``'s bound).
DEFAULT_LIMIT_MIB = 256.0
_MIB = 1024 * 1024


def keys_beside(capture: Path) -> Path:
    """The key log beside CAPTURE: its suffix ``.keys`` — of ``x.pcap.gz`` (a capture gzipped afterwards),
    ``x.keys`` too. The one name: ``boot``/``fleet boot --capture`` write it, ``wireshark`` and ``replay``
    take it up."""
    return (capture.with_suffix("") if capture.suffix == ".gz" else capture).with_suffix(".keys")


def capture_keylog(capture: Path | None, keylog: Path | None) -> Path | None:
    """The key log to use: ``keylog`` (made if absent, appended to), else ``capture``'s ``.keys``
    (emptied); None without either. Both are checked writable first (PhoneEmuError naming the option)
    and the key log is 0600 (a FIFO or device is left as it is)."""
    fresh = capture is not None and keylog is None
    if capture is not None and keylog is None:  # (mypy: fresh alone does not narrow)
        keylog = keys_beside(capture)
    check_writable(capture, "--capture")
    check_writable(keylog, "--keylog")
    if keylog is not None:  # one capture, one key log (emptied); a --keylog given is appended to. Made
        private_file(keylog, empty=fresh)  # now, 0600 whatever the umask: it exists as the summary says
    return keylog


def open_host_capture(path: Path | None, keylog: Path, host: str, *,
                      max_bytes: int = int(DEFAULT_LIMIT_MIB * _MIB),
                      limit_name: str = "max_bytes", said_by: str = "phoneemu") -> LiveCapture | None:
    """``--capture``: a live capture of the packets with ``host`` and the hosts the phones connect to
    over TCP (:mod:`phoneemu.scenario.capturing`, external clusters); no lab range on ``lo``. What it
    says on stderr is said by ``said_by`` (module rules)."""
    if path is None:
        return None
    from phoneemu.net.capture import fifo_wait_teller
    from phoneemu.scenario.capturing import LiveCapture, resolve_external

    try:
        return LiveCapture(path, keylog, hosts=("0.0.0.0", "0.0.0.0"), external=resolve_external([host]),
                           max_bytes=max_bytes, limit_name=limit_name, on_wait=fifo_wait_teller(said_by))
    except (PermissionError, AttributeError, OSError) as exc:
        raise PhoneEmuError(f"--capture {path}: live capture not possible here (Linux, root or CAP_NET_RAW "
                            f"needed): {exc}", path="capture") from exc


def capture_summary(capture: LiveCapture) -> list[str]:
    """What a closed capture holds: its line (a capture stopped early says so: module rules), then one per
    thing missing from it."""
    lines = [f"capture: {capture.path} {_held(capture)}, TLS key log {capture.keylog}, what it holds: "
             f"{capture.note_path}"]
    return lines + [f"capture: {line}" for line in capture.missing]  # as the note file says them


def _held(capture: LiveCapture) -> str:
    """``(60 packets, 6,100 bytes)``, or how it stopped early (module rules)."""
    if capture.early_stop is not None:
        return capture.early_stop.text()
    written = f"{capture.path.stat().st_size:,} bytes" if capture.path.is_file() else \
        "written as they came"  # a FIFO or a device has no size to tell
    return f"({capture.count} packets, {written})"


def capture_json(capture: LiveCapture) -> dict[str, object]:
    """``fleet boot --json``'s ``capture``: the files, the packets written, the bounds, and ``stopped``
    (how it stopped early, null if it did not: module rules)."""
    stop = capture.early_stop
    return {"pcap": str(capture.path), "keylog": str(capture.keylog), "note": str(capture.note_path),
            "packets": capture.count, "limit_bytes": capture.max_bytes, "truncated": capture.truncated,
            "kernel_drops": capture.kernel_drops, "stopped": stop.as_dict() if stop is not None else None}
