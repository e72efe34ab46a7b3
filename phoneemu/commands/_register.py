"""``--register [HOST[:PORT]]`` and ``--sips-port N`` of ``boot`` and ``fleet boot`` (spec §G.13, §G.9,
§H.5)."""

from __future__ import annotations

import argparse

from phoneemu.commands._argtypes import port
from phoneemu.protocols.sip import SIP_PORT, SIPS_PORT
from phoneemu.values import parse_host_port

__all__ = ["FROM_CONFIG", "add_register_options", "registrar"]

#: ``--register`` given without an address: the CallManagers of the phone's config
FROM_CONFIG = ""


def add_register_options(p: argparse.ArgumentParser, *, after: str) -> None:
    """The two options; ``after`` says when the phones register and what the command reports of it."""
    p.add_argument("--register", metavar="HOST[:PORT]", nargs="?", const=FROM_CONFIG,
                   help=f"{after} register over SIP, answering the registrar's digest challenge from the "
                   "config: without a value, with the CallManagers the config names (devicePool, priority "
                   "order, the next one when one is unreachable; each on its sipPort / securedSipPort), as "
                   f"a real phone does; with HOST[:PORT], with that registrar (TCP, port {SIP_PORT} when not "
                   "given; a CUCM node, or lab serve --sip-port). Over TLS (securedSipPort, or --sips-port) "
                   "when the phone's security mode and CTL say so (spec G.9, G.13)")
    p.add_argument("--sips-port", type=port, default=SIPS_PORT, metavar="N",
                   help=f"with --register HOST: the registrar's SIP over TLS port (default {SIPS_PORT})")


def registrar(args: argparse.Namespace) -> tuple[str | None, int, int] | None:
    """(host, TCP port, TLS port) of ``--register``, host None for the config's CallManagers; None
    without it; PhoneEmuError for a bad address."""
    if args.register is None:
        return None
    if args.register == FROM_CONFIG:
        return None, SIP_PORT, args.sips_port
    host, sip_port = parse_host_port(args.register, what="--register", default_port=SIP_PORT)
    return host, sip_port, args.sips_port
