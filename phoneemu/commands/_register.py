"""``--register [HOST[:PORT]]``, ``--sips-port N`` and ``--call USER [--packets N]`` of ``boot`` and
``fleet boot`` (spec §G.13, §G.9, §H.5, §G.14)."""

from __future__ import annotations

import argparse

from phoneemu.commands._argtypes import call_packets, positive_float, sip_user
from phoneemu.commands._cluster_address import asked_port
from phoneemu.errors import PhoneEmuError
from phoneemu.values import parse_host_port

__all__ = [
    "CALL_PACKETS", "FROM_CONFIG", "add_call_options", "add_register_options", "call_of", "checked_packets",
    "registrar", "sips_port",
]

#: ``--register`` given without an address: the CallManagers of the phone's config
FROM_CONFIG = ""


def add_register_options(p: argparse.ArgumentParser, *, after: str) -> None:
    """The two options; ``after`` says when the phones register and what the command reports of it."""
    from phoneemu.protocols.defaults import SIP_PORT, SIPS_PORT  # what the options show

    p.add_argument("--register", metavar="HOST[:PORT]", nargs="?", const=FROM_CONFIG,
                   help=f"{after} register over SIP, answering the registrar's digest challenge from the "
                   "config: without a value, with the CallManagers the config names (devicePool, priority "
                   "order, the next one when one is unreachable; each on its sipPort / securedSipPort), as "
                   f"a real phone does; with HOST[:PORT], with that registrar (TCP, port {SIP_PORT} when not "
                   "given; a CUCM node, or lab serve --sip-port). Over TLS (securedSipPort, or --sips-port) "
                   "when the phone's security mode and CTL say so (spec G.9, G.13). A request the registrar "
                   "sends meanwhile (an OPTIONS keep-alive) is answered, never taken for its answer: OPTIONS "
                   "200, another method 405, an unknown one 501")
    p.add_argument("--sips-port", type=sips_port, default=SIPS_PORT, metavar="N",
                   help=f"with --register HOST: the registrar's SIP over TLS port (default {SIPS_PORT})")


def sips_port(text: str) -> int:
    """argparse type of ``--sips-port N``: the registrar's SIP over TLS port, 1..65535, as ``--http-port``
    (:func:`~phoneemu.commands._cluster_address.asked_port`). 0 was taken silently (a port, 0..65535), the
    phone then dialling port 0 over TLS, where 70000 was refused as "outside 0..65535"."""
    from phoneemu.protocols.defaults import SIPS_PORT

    return asked_port(text, zero_hint=f": the registrar's SIP over TLS port, default {SIPS_PORT}")


#: Media packets each way of a ``--call`` when ``--packets`` is not given.
CALL_PACKETS = 10


def checked_packets(args: argparse.Namespace, *, each: str = "the phone's") -> int:
    """``args.packets`` as the call sends it: ``--packets N`` goes with ``--call`` (without it, it was
    ignored silently; with ``--answer`` too, as the caller's INVITE says how many packets the answering
    phone sends, spec §G.14 ``X-Phoneemu-Packets``); not given: :data:`CALL_PACKETS`. ``each``: whose call
    the message names (``each phone's`` for a fleet). ``--realtime`` (boot) goes with ``--call`` or
    ``--answer`` the same way: without either there is no media to pace."""
    if getattr(args, "realtime", False) and args.call is None and getattr(args, "answer", None) is None:
        raise PhoneEmuError("--realtime goes with --call or --answer (it paces the call's media, one packet "
                            "every 20 ms)", path="realtime")
    if args.packets is not None and args.call is None:
        why = "; with --answer, the caller says how many" if getattr(args, "answer", None) is not None else ""
        raise PhoneEmuError(f"--packets goes with --call (the media packets of {each} call{why})",
                            path="packets")
    return CALL_PACKETS if args.packets is None else int(args.packets)


def add_call_options(p: argparse.ArgumentParser, *, what: str, answer: bool = False) -> None:
    """``--call USER`` and ``--packets N`` (with ``answer``, one phone's ``--answer S`` and ``--realtime``
    too); ``what`` says what the command reports of the call."""
    p.add_argument("--call", type=sip_user, metavar="USER",
                   help="with --register: once registered, call USER over the same connection and exchange "
                   "media: SRTP when the phone is in encrypted mode over TLS (its own SDES keys in the SDP "
                   "offer, each packet's authentication tag verified), else RTP (spec G.14). On a lab (lab "
                   "serve --sip-port): moh, annunciator or ivr, its media resources; on a real cluster a "
                   f"directory number that answers. {what}")
    # default None: "not given", refused without --call (checked_packets), then CALL_PACKETS
    p.add_argument("--packets", type=call_packets, default=None, metavar="N",
                   help=f"with --call: 20 ms G.711 packets each way (1..1000, default {CALL_PACKETS})")
    if answer:
        p.add_argument("--realtime", action="store_true",
                       help="with --call or --answer: send the media in real time, one packet every 20 ms, "
                       "as a phone does (a real phone at the far end expects that cadence); default: all at "
                       "once")
        p.add_argument("--answer", type=positive_float, metavar="S",
                       help="with --register, instead of --call: keep the registered connection and answer "
                       "the first call the CallManager brings there within S seconds (another phone's "
                       "--call SEP<MAC> on a lab, or a real phone dialling it), by the same rules (spec "
                       "G.14); another request meanwhile is answered as while registering (OPTIONS 200). "
                       f"{what}")


def call_of(args: argparse.Namespace) -> tuple[str, int] | None:
    """(user, packets) of ``--call``, None without it; PhoneEmuError when --register is missing (or
    ``--answer`` is given too)."""
    answer = getattr(args, "answer", None)
    if args.call is None and answer is None:
        return None
    option = "--call" if args.call is not None else "--answer"
    if args.register is None:
        raise PhoneEmuError(f"{option} needs --register (the phone calls and answers over the connection "
                            "it registered on)", path=option[2:])
    if args.call is not None and answer is not None:
        raise PhoneEmuError("--call or --answer, not both (one call at a time)", path="call")
    return (args.call, args.packets) if args.call is not None else None


def registrar(args: argparse.Namespace) -> tuple[str | None, int, int] | None:
    """(host, TCP port, TLS port) of ``--register``, host None for the config's CallManagers; None
    without it; PhoneEmuError for a bad address."""
    from phoneemu.protocols.defaults import SIP_PORT

    if args.register is None:
        return None
    if args.register == FROM_CONFIG:
        return None, SIP_PORT, args.sips_port
    host, sip_port = parse_host_port(args.register, what="--register", default_port=SIP_PORT)
    return host, sip_port, args.sips_port
