"""The boot target of a replayed boot, as its capture shows it (``replay``'s reports and JSON).

Rule (ours): the server and, per transport the phone used, its port — ``[::1]:37999 (http)``,
``127.0.0.1 (tftp 6969, http 6970)``. A boot over HTTP alone names no TFTP port: the capture does not
show one, and :class:`~phoneemu.phone.boot.BootTarget` would print the default 69.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from phoneemu.phone.boot import BootTarget

__all__ = ["CapturedTarget", "captured_target"]


@dataclass(frozen=True, kw_only=True)
class CapturedTarget(BootTarget):
    """A :class:`BootTarget` that prints the transports and ports the capture shows (module rule)."""

    seen: tuple[tuple[str, int], ...] = ()  # (protocol, server port), in first-use order

    def __str__(self) -> str:
        used = ", ".join(f"{proto} {port}" for proto, port in self.seen)
        return f"{self.host} ({used})" if used else super().__str__()


def captured_target(boot: Any) -> CapturedTarget:
    """The target of a captured boot (``boot.server``, its downloads ``boot.own``)."""
    seen = tuple(dict.fromkeys((d.protocol, d.server[1]) for d in boot.own))
    tftp = next((port for proto, port in seen if proto == "tftp"), 69)
    http = next((port for proto, port in seen if proto == "http"), None)
    return CapturedTarget(host=boot.server, tftp_port=tftp, http_port=http, use_http=http is not None,
                          seen=seen)
