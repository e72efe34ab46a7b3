"""``--register HOST[:PORT]`` and ``--sips-port N`` of ``boot`` and ``fleet boot`` (spec §G.13, §G.9)."""

from __future__ import annotations

import argparse

from phoneemu.commands._argtypes import port
from phoneemu.protocols.sip import SIP_PORT, SIPS_PORT
from phoneemu.values import parse_host_port

__all__ = ["add_register_options", "registrar"]


def add_register_options(p: argparse.ArgumentParser, *, after: str) -> None:
    """The two options; ``after`` says when the phones register and what the command reports of it."""
    p.add_argument("--register", metavar="HOST[:PORT]",
                   help=f"{after} register over SIP with this registrar (TCP, port {SIP_PORT} when not "
                   "given; a CUCM node, or lab serve --sip-port), answering its digest challenge from the "
                   "config; over TLS on --sips-port when the phone's security mode and CTL say so (spec "
                   "G.9, G.13)")
    p.add_argument("--sips-port", type=port, default=SIPS_PORT, metavar="N",
                   help=f"the registrar's SIP over TLS port (default {SIPS_PORT})")


def registrar(args: argparse.Namespace) -> tuple[str, int, int] | None:
    """(host, TCP port, TLS port) of ``--register``; None without it; PhoneEmuError for a bad address."""
    if args.register is None:
        return None
    host, sip_port = parse_host_port(args.register, what="--register", default_port=SIP_PORT)
    return host, sip_port, args.sips_port
