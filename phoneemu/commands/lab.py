"""``phoneemu lab``: create a lab cluster, add phones, run the admin operations that change trust.

Every operation edits ``DIR/cluster.json``, bumps the generation and rebuilds the served files in
``DIR/tftp`` (spec §G; see ``phoneemu.lab.cluster``). Errors print as one line.
``phoneemu lab serve --dir DIR`` (from ``phoneemu.commands.lab_serve``) runs the lab servers.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import shlex
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phoneemu import json_doc
from phoneemu.commands._argtypes import integer, mac_option, non_negative_int, positive_int, unix_time
from phoneemu.commands._mistakes import misplaced_lab_folder, takes_lab_folder_first
from phoneemu.commands._said import command_of, say, teller
from phoneemu.errors import EncodeError, PhoneEmuError
from phoneemu.words import counted

if TYPE_CHECKING:  # the cluster (its PKI, its files) is imported where an operation runs (start-up time)
    from phoneemu.lab.cluster import LabCluster, UntakenRegenerations
    from phoneemu.lab.state import LogEntry
    from phoneemu.phone.profile import PhoneProfile

__all__ = ["register"]

_EPILOG = """\
examples:
  phoneemu lab init /tmp/lab --seed 1                 reproducible cluster (same seed = same files)
  phoneemu lab phone add /tmp/lab --mac 00:11:22:33:44:55 --encrypt pki
  phoneemu lab show /tmp/lab --itl                    state summary and 'show itl'
  phoneemu lab regenerate /tmp/lab itlrecovery        new ITLRecovery: phones need TVS to follow
  phoneemu lab mixed-mode /tmp/lab on                 serve a CTL
  phoneemu lab rollback /tmp/lab on                   serve the empty ITL (migration escape)
  phoneemu lab itlrecovery /tmp/lab export /tmp/ITLRecovery.pem
  phoneemu lab itl-reset /tmp/lab remotekey --key-file /tmp/ITLRecovery.pem
  phoneemu lab restart-tftp /tmp/lab                  ITL signed by ITLRecovery again
  phoneemu lab exchange /tmp/labA /tmp/labB           bulk certificate exchange (TVS of each)
  phoneemu lab tamper /tmp/lab ITLFile.tlv --offset 100
  phoneemu lab serve --dir /tmp/lab --tftp-port 6969  run the servers (Ctrl-C stops)

Lab convenience: each phone's MIC key is kept in DIR/phones/<MAC>/mic.key (0600) with mic.pem,
so an emulated phone can be provisioned with it (a real MIC key never leaves the phone).
Operations hold DIR/.lab.lock; one that finds it held waits, saying so on stderr ('phoneemu lab
regenerate: waiting for the lab lock DIR/.lab.lock: held by ...'), and runs once it is free.
'exchange DIR OTHER_DIR' writes both labs and holds both locks, taken in the order of the folders,
whatever paths name them.

exit status: each operation's --help says it (0 done; 2 refused, one line on stderr; 130 interrupted;
lab serve's are its own); 'lab' without an operation prints this help and exits 2.
"""

#: The exit statuses of every lab operation (``lab serve``'s are its own), under each one's --help: what
#: :func:`_op`, :func:`_init` and :func:`_show` return, an error of the project or a file that cannot be read
#: or written being exit 2 (:func:`phoneemu.cli._handled`), Ctrl-C or SIGTERM 130 (:func:`phoneemu.cli.main`).
OP_EXIT_STATUS = """\
exit status: 0 done; 2 refused, said in one line on stderr: a mistake in the arguments, DIR not a lab
cluster (lab init: DIR not new or empty), a file that cannot be read or written; 130 interrupted (Ctrl-C
or SIGTERM), also while waiting for the lab lock.
"""


#: Example lines per operation (one to three), shown under its --help.
_OP_EXAMPLES: dict[str, tuple[str, ...]] = {
    "init": ("phoneemu lab init /tmp/lab --seed 1 --nodes 2",
             "phoneemu lab init /tmp/lab --host 192.0.2.10      configs name the address phones reach",
             "phoneemu lab init /tmp/lab --host ::1             IPv6, bare (then boot --tftp [::1]:PORT)"),
    "show": ("phoneemu lab show /tmp/lab --itl", "phoneemu lab show /tmp/lab --files --log"),
    "regenerate": ("phoneemu lab regenerate /tmp/lab itlrecovery      phones need TVS to follow",
                   "phoneemu lab regenerate /tmp/lab tvs-2            the second node's TVS"),
    "mixed-mode": ("phoneemu lab mixed-mode /tmp/lab on",),
    "itl-reset": ("phoneemu lab itl-reset /tmp/lab localkey",
                  "phoneemu lab itl-reset /tmp/lab remotekey --key-file /tmp/ITLRecovery.pem"),
    "restart-tftp": ("phoneemu lab restart-tftp /tmp/lab",),
    "restart-tvs": ("phoneemu lab restart-tvs /tmp/lab",),
    "service": ("phoneemu lab service /tmp/lab tvs stop             TVS down (lab serve follows)",
                "phoneemu lab service /tmp/lab tvs start"),
    "ctl-reset": ("phoneemu lab ctl-reset /tmp/lab localkey",),
    "ctl-update": ("phoneemu lab ctl-update /tmp/lab",),
    "add-node": ("phoneemu lab add-node /tmp/lab                    node 2: tvs-2 joins the ITL",),
    "remove-node": ("phoneemu lab remove-node /tmp/lab                 the last node leaves the ITL",),
    "security-mode": ("phoneemu lab security-mode /tmp/lab --mac 001122334455 encrypted",
                      "phoneemu lab security-mode /tmp/lab --mac 0A0000000000 --count 50 authenticated"
                      "   (the phones of lab phone add --count 50)"),
    "calling-search-space": (
        "phoneemu lab calling-search-space /tmp/lab --mac 0A0000000001 --partition Executives",
        "phoneemu lab calling-search-space /tmp/lab --mac 0A0000000002 --count 5 --css Executives,Staff",
        "phoneemu lab calling-search-space /tmp/lab --mac 0A0000000001 --partition '<None>' --css ''"),
    "rollback": ("phoneemu lab rollback /tmp/lab on                 serve the empty ITL",),
    "digest": ("phoneemu lab digest /tmp/lab --mac 001122334455 --user alice --password lab-secret",
               "phoneemu lab digest /tmp/lab --mac 001122334455 --user alice --password x --exclude"),
    "itl-capf": ("phoneemu lab itl-capf /tmp/lab off                 CAPF server then vouched by TVS",),
    "secure-urls": ("phoneemu lab secure-urls /tmp/lab http            directory over plain HTTP (no TVS)",
                    "phoneemu lab secure-urls /tmp/lab https           back to CUCM's HTTPS URLs"),
    "add-certs": ("phoneemu lab add-certs /tmp/lab --count 40        an ITL over 64 KB",),
    "remove-certs": ("phoneemu lab remove-certs /tmp/lab                 all of them: back under 64 KB",),
    "encryption": ("phoneemu lab encryption /tmp/lab --mac 001122334455 on",
                   "phoneemu lab encryption /tmp/lab --mac 001122334455 on --mode symmetric "
                   "--symmetric-key 00112233445566778899AABBCCDDEEFF   (a model with a manual key: lab "
                   "phone add --model 7962)"),
    "signature-algorithm": ("phoneemu lab signature-algorithm /tmp/lab sha512",),
    "upgraded": ("phoneemu lab upgraded /tmp/lab on --years 5",),
    "exchange": ("phoneemu lab exchange /tmp/labA /tmp/labB          each TVS vouches for the other",
                 "phoneemu lab exchange /tmp/labA /tmp/labB --store callmanager-trust   known without SAST"),
    "tamper": ("phoneemu lab tamper /tmp/lab ITLFile.tlv --offset 100",),
    "sbd": ("phoneemu lab sbd /tmp/lab off",),
    "autoregistration": ("phoneemu lab autoregistration /tmp/lab on",),
    "tvs-ttl": ("phoneemu lab tvs-ttl /tmp/lab 300",),
    "load": ("phoneemu lab load /tmp/lab sip88xx.14-2-1",
             "phoneemu lab load /tmp/lab sip88xx.14-2-1 --mac 001122334455 --tamper"),
    "capf": ("phoneemu lab capf /tmp/lab install --mac 001122334455 --auth-string 123456",
             "phoneemu lab capf /tmp/lab delete --mac 001122334455 --auth-mode lsc",
             "phoneemu lab capf /tmp/lab install --mac 0A0000000000 --count 2000 --auth-mode null-string"
             "   (phones added first with lab phone add --count 2000; then fleet boot --count 2000: a CAPF "
             "enrolment storm)"),
    "itlrecovery": ("phoneemu lab itlrecovery /tmp/lab export /tmp/ITLRecovery.pem",),
    "clock": ("phoneemu lab clock /tmp/lab --advance 86400",),
}


#: ``lab phone add``'s examples, under its --help and under ``lab phone --help``
_PHONE_ADD_EXAMPLES = """\
examples:
  phoneemu lab phone add /tmp/lab --mac 001122334455 --encrypt pki
  phoneemu lab phone add /tmp/lab --mac 0A0000000000 --count 50   the MACs of fleet boot --count 50
  phoneemu lab phone add /tmp/lab --mac 001122334456 --capf install --auth-string 123456
"""

#: ``lab phone`` without an action prints its help: exit 2 (:func:`_help`)
_PHONE_GROUP_EXIT_STATUS = """\
exit status: 'lab phone' alone prints this help and exits 2; 'lab phone add --help' gives add's.
"""


def _dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", type=Path, metavar="DIR", help="lab cluster directory")


def _now(cluster: LabCluster, args: argparse.Namespace) -> int | None:
    """Seeded clusters run on their lab clock; others follow the real time unless --now is given, never
    behind the lab clock: a ``lab clock --advance`` (certificate expiry) holds until the real time passes
    it, the next operation does not take the clock back."""
    if getattr(args, "now", None) is not None:
        return int(args.now)
    return None if cluster.state.seed is not None else cluster.state.now_at(time.time())


#: phones from which a lab operation says on stderr that it builds every served file again
REBUILD_NOTICE_PHONES = 2000


def _say_rebuild(args: argparse.Namespace) -> Callable[[int], None]:
    """A large lab's rebuild takes a while (each phone's config is signed again): said first, by the
    operation as typed."""
    def say_rebuild(phones: int) -> None:
        if phones >= REBUILD_NOTICE_PHONES:
            say(args, f"building the served files of {phones} phones again (each phone's config is signed "
                      "again) ...")
    return say_rebuild


def _op(fn: Callable[[LabCluster, argparse.Namespace, int | None], str | None], *,
        also: Callable[[argparse.Namespace], list[Path]] = lambda args: []) \
        -> Callable[[argparse.Namespace], int]:
    """A lab operation holds an exclusive ``flock`` on ``DIR/.lab.lock`` from loading ``cluster.json``
    to its last write (:mod:`phoneemu.lab.lock`): two operations on one lab run one after the other, so
    neither loses the other's change (each would load, change and save the whole state). ``also``: the
    other labs it writes (``exchange``'s OTHER_DIR), whose locks it holds too, all taken in one fixed order
    (:func:`phoneemu.lab.lock.hold_lab_locks`: no deadlock between ``exchange A B`` and ``exchange B A``)."""
    def handler(args: argparse.Namespace) -> int:
        from phoneemu.lab.cluster import LabCluster
        from phoneemu.lab.lock import hold_lab_locks
        from phoneemu.lab.trust_line import trust_line

        # not a lab (no cluster.json): no lock file is left there, LabCluster.open says why; a lab folder
        # given after another operand, the command line with it first (phoneemu.commands._mistakes)
        swapped = misplaced_lab_folder(getattr(args, "parser_used", None), args.dir)
        if swapped:
            raise EncodeError(f"not a lab cluster; {swapped}", path=str(args.dir))
        with hold_lab_locks([args.dir, *also(args)], on_wait=teller(command_of(args))):
            cluster = LabCluster.open(args.dir)
            cluster.on_rebuild = _say_rebuild(args)
            msg = fn(cluster, args, _now(cluster, args))
        if msg:
            print(msg)
        print(trust_line(cluster))
        return 0
    return handler


def itlrecovery_warning(cluster: LabCluster, lab: str = "DIR") -> str:
    """The warning CUCM shows on its CLI and GUI before the ITLRecovery certificate is regenerated (seed
    "Certificate Management Changes for ITLRecovery Certificate"), with what this cluster's phones will
    meet: its TVS stopped (``lab service``: no TVS vouches, each phone locks out as it takes the new
    list, spec G.3.4), the rollback ITL served (spec G.3 note: it helps only phones without a CTL) and its
    mixed mode (a tokenless CTL); ``lab`` names the cluster folder in the command that starts TVS again."""
    ctl = ("this cluster is in mixed mode with a tokenless CTL: if you regenerate the CallManager "
           "certificate, make sure the CTL file has the updated CallManager certificate and that it reaches "
           "the phones (phoneemu lab ctl-update, then reset them)") if cluster.state.mixed_mode else (
           "with a tokenless CTL (mixed mode), a regenerated CallManager certificate must also be in the CTL "
           "file and reach the phones")
    rollback = ("; the rollback (empty) ITL is served: phones holding it and no CTL take the new lists "
                "unchecked (G.2, G.3.6), those holding a CTL have no TVS to ask and lock out "
                "(G.3.5-reject-unknown-signer)") if cluster.state.rollback else ""
    return ("warning: regenerating the ITLRecovery certificate. Phones holding the current CTL/ITL trust "
            "the new signer only through TVS (spec G.3.4)" + _tvs_stopped_said(cluster, lab) + rollback + "; "
            + ctl + ".")


def _tvs_stopped_said(cluster: LabCluster, lab: str) -> str:
    """What the TVS services kept stopped (``lab service DIR tvs stop``, ``tvs-N``) do to phones taking a
    list with a new signer: all of them stopped, no TVS answers and every such phone locks out
    (``G.3.4-tvs-unreachable``); some of them, the phones ask the others (spec §E.7: each TVS the config
    names, in turn). Empty when every TVS runs."""
    tvs = ["tvs", *(f"tvs-{n}" for n in range(2, cluster.state.nodes + 1))]
    stopped = [name for name in tvs if name in cluster.state.stopped]
    if not stopped:
        return ""
    start = " && ".join(f"phoneemu lab service {shlex.quote(lab)} {name} start" for name in stopped)
    if len(stopped) == len(tvs):
        return (f", and TVS is stopped ({', '.join(stopped)}): no TVS answers, so every phone locks out as "
                "it takes the new ITL (or CTL) and stays locked until TVS is back (G.3.4-tvs-unreachable); "
                f"start it first: {start}")
    return (f"; TVS {', '.join(stopped)} stopped: the phones ask the other TVS their config names "
            f"({', '.join(n for n in tvs if n not in stopped)}); {start} brings it back")


def _regenerate(cluster: LabCluster, args: argparse.Namespace, now: int | None) -> None:
    """``lab regenerate``: CUCM's warning first for the ITLRecovery certificate (on stderr); then, where this
    regeneration and an earlier one lock out the phones that took no ITL between (the list signer's and
    every TVS's: :meth:`~phoneemu.lab.cluster.LabCluster.untaken_regenerations`), or, one standing, changes
    its way out (the CallManager or ITLRecovery certificate regenerated: was nothing said), that lockout and
    its way out (was: nothing said, ``regenerate tvs`` then ``regenerate itlrecovery`` locked every phone
    out). Never refused: a lockout is rehearsed on purpose."""
    if args.cert == "itlrecovery":
        say(args, itlrecovery_warning(cluster, str(args.dir)))
    try:
        cluster.regenerate(args.cert, now=now)
    except EncodeError as exc:
        meant = _regenerate_meant(args.cert, str(args.dir), _regeneratable(cluster.state.nodes))
        if meant is None:
            raise
        raise EncodeError(f"{exc.message}; {meant}", path=exc.path) from None
    untaken = cluster.untaken_regenerations()
    if untaken is not None and args.cert in untaken.at_stake:
        say(args, untaken_regenerations_warning(untaken, args.cert, str(args.dir),
                                                phones=len(cluster.state.phones)))


def _regeneratable(nodes: int) -> frozenset[str]:
    """The names ``lab regenerate`` takes on a lab of ``nodes`` nodes, as
    :meth:`~phoneemu.lab.cluster.LabCluster.regenerate` takes them (``callmanager``, ``tvs``, ``tvs-2``
    ...)."""
    from phoneemu.lab.pki import node_identity

    return frozenset({"itlrecovery", "capf", *(node_identity(base, n) for base in ("callmanager", "tvs")
                                               for n in range(1, nodes + 1))})


def _regenerate_meant(cert: str, lab: str, accepted: frozenset[str]) -> str | None:
    """What ``lab regenerate DIR CERT`` meant when the lab refuses CERT, or None: ``tftp`` (CUCM's "TFTP
    certificate" is the CallManager one: the TFTP service signs the configs with it, spec §G.5), and a
    known name in another case (``CallManager``, ``TVS-2``); the command to type, ``lab`` filled in, only
    with a name the lab takes (``accepted``: was ``callmanager-2`` told to a lab of one node,
    ``callmanager-x`` for ``tftp-x``, ``capf-2`` for ``CAPF-2``, each refused in turn). Was: the refusal
    listed the names, so a voice engineer asked to regenerate "the TFTP certificate" was not told which one
    that is (walk s38)."""
    low = cert.lower()
    base, dash, node = low.partition("-")
    if base == "tftp":
        why = "the TFTP certificate is the CallManager one (CUCM's TFTP signs the configs with it, spec G.5)"
        name = f"callmanager{dash}{node}"
        return f"{why}: phoneemu lab regenerate {shlex.quote(lab)} {name}" if name in accepted else why
    if low != cert and low in accepted:
        return f"names are lower case: phoneemu lab regenerate {shlex.quote(lab)} {low}"
    return None


def _counted_from(untaken: UntakenRegenerations) -> str:
    """Where the lockout warnings count from, as said (:data:`~phoneemu.lab.cluster.PHONES_RESET_AT`): a CTL
    served, the CTL reset too (was: the ITL's reset alone, so a CTL reset the phones followed left a false
    warning, phone erase named); none served, there is no CTL to reset."""
    if untaken.ctl_served:
        return ("lab itl-reset or ctl-reset, or the restart-tftp or ctl-update that closed it, that did not "
                "leave the phones locked")
    return "lab itl-reset, or the restart-tftp that closed it, that did not leave the phones locked"


def untaken_regenerations_warning(untaken: UntakenRegenerations, cert: str, lab: str, *,
                                  phones: int = 1) -> str:
    """The lockout ``lab regenerate`` of ``cert`` completes or keeps (:func:`_regenerate`; ``cert`` one it or
    its way out rests on, :attr:`~phoneemu.lab.cluster.UntakenRegenerations.at_stake`): which regenerations,
    since when (ours: counted from the last list reset, ``lab itl-reset`` or ``ctl-reset``, or the
    ``restart-tftp`` / ``ctl-update`` that closed it, that did not leave the phones locked, the lab records no
    boot: :func:`_counted_from`), the rule a phone that took no ITL between hits (:func:`_untaken_lockout`),
    how CUCM avoids it, and the way out that works (:func:`_untaken_ways`: was the bulk ITL reset always,
    which leaves the phones locked where the CallManager key is new too), the boots for the lab's ``phones``
    (:func:`_reset_boots`)."""
    last = {_regenerated(e): e for e in untaken.entries[:-1] if _regenerated(e) != cert}  # each one's last
    earlier = [_regenerated_said(e) for e in sorted(last.values(), key=lambda e: e.generation)]
    note = (f"warning: {', '.join([*earlier, f'and now {cert}'])}, regenerated {_since(untaken)} (ours: "
            f"the lab records no boot; it counts from the last {_counted_from(untaken)}): "
            f"{_untaken_lockout(untaken)}. To avoid it, regenerate one certificate at a time and reset the "
            "phones between: each takes the ITL with the new one (ours, from the seed's Initial Trust List: "
            "the ITL brings the TVS certificates).")
    return f"{note} {_untaken_ways(untaken, shlex.quote(lab), phones=phones)}."


def itl_reset_lockout_warning(untaken: UntakenRegenerations, lab: str, *, kind: str = "ITL",
                              phones: int = 1) -> str:
    """``lab itl-reset`` where the CallManager key that signs the reset ITL is new, with every TVS the configs
    name, since the reset point before it (:meth:`~phoneemu.lab.cluster.LabCluster.untaken_regenerations`
    ``at_reset``; ours: the lab records no boot): a phone that took no ITL since cannot verify the reset ITL
    (nor, a CTL served, the CTL whose signer is new, which the reset ITL no longer lets it take at the boot
    after): the reset does not help it, locked out at its next boot (``G.3.4-tvs-server-untrusted``; was:
    nothing said, only the reset note "reset the phones now"). ``kind`` "CTL": ``lab ctl-reset``, the reset
    CTL signed by that key (:func:`_ctl_reset`; its ways say the CTL reset does not help). The way out that
    works, as :func:`untaken_regenerations_warning`'s, each checked with real boots
    (tests/unit/test_walk_s35_p11_regenerate_lockout_warning.py)."""
    said = [_regenerated_said(e) for e in untaken.entries]
    helps = "; this reset does not help it" if untaken.ctl_served and kind == "ITL" else ""  # else the ways
    return (f"warning: the reset {kind} is signed by the CallManager key, new {_since(untaken)} with every "
            f"TVS the configs name ({', '.join(said)}; ours: the lab records no boot, it counts from the "
            f"last {_counted_from(untaken)}, before this one): {_untaken_lockout(untaken)}{helps}. "
            f"{_untaken_ways(untaken, shlex.quote(lab), phones=phones)}.")


def _restart_tftp(cluster: LabCluster, args: argparse.Namespace, now: int | None) -> None:
    """``lab restart-tftp``: where it signs the ITL with the ITLRecovery key again and that key is new, with
    every TVS the configs name (a CTL served: its signer new too, the lockout lasting now), since the phones
    last took the lists, the lockout it completes or keeps (:func:`restart_tftp_lockout_warning`)."""
    signer = cluster.state.itl_signer
    cluster.restart_tftp(now=now)
    untaken = cluster.untaken_regenerations()
    if signer != cluster.state.itl_signer and untaken is not None and untaken.itl_signer is not None:
        say(args, restart_tftp_lockout_warning(untaken, str(args.dir), phones=len(cluster.state.phones)))


def restart_tftp_lockout_warning(untaken: UntakenRegenerations, lab: str, *, kind: str = "ITL",
                                 phones: int = 1) -> str:
    """``lab restart-tftp`` closing an ``itl-reset`` where the ITLRecovery key it signs the ITL with again is
    new with every TVS the configs name since the phones last took the lists
    (:meth:`~phoneemu.lab.cluster.LabCluster.untaken_regenerations`; ours: the lab records no boot): a phone
    that took no ITL since locks out at its next boot, or stays locked (``G.3.4-tvs-server-untrusted``; was:
    nothing said, ``itl-reset``, ``regenerate tvs``, ``regenerate itlrecovery``, ``restart-tftp`` locked the
    phones out, and an ``itl-reset`` warning named this restart as the way out where a regeneration since
    made it none). ``kind`` "CTL": ``lab ctl-update`` closing a ``ctl-reset`` (:func:`_ctl_update`). The way
    out that works, as :func:`untaken_regenerations_warning`'s, each checked with real boots
    (tests/unit/test_walk_s35_p11_regenerate_lockout_warning.py)."""
    said = [_regenerated_said(e) for e in untaken.entries]
    return (f"warning: the {kind} is signed by the ITLRecovery key again, new {_since(untaken)} with every "
            f"TVS the configs name ({', '.join(said)}; ours: the lab records no boot, it counts from the "
            f"last {_counted_from(untaken)}): {_untaken_lockout(untaken)}. "
            f"{_untaken_ways(untaken, shlex.quote(lab), phones=phones)}.")


def _since(untaken: UntakenRegenerations) -> str:
    """Since when :class:`~phoneemu.lab.cluster.UntakenRegenerations` counts, as said."""
    return "since the change log began" if untaken.since is None else \
        f"since lab {untaken.since.op} (generation {untaken.since.generation})"


def _untaken_lockout(untaken: UntakenRegenerations) -> str:
    """What a phone that took no ITL since the count began meets at its next boot (each checked with real
    boots). No CTL served: the ITL signed by a new key. A CTL served: the CTL, which every phone checks first,
    one holding none against its ITL (ours, from real boots: the same SAST keys; a new ITL signer alone locks
    none out, :class:`~phoneemu.lab.cluster.UntakenRegenerations`); the ITL's signer not new, it takes the
    ITL at that boot, which names the CTL's signer, and the CTL at the next."""
    tvs = f"holds none with the new TVS certificate ({', '.join(untaken.tvs)})"
    untrusted = ("so it asks TVS, which presents a certificate its ITL lacks: it refuses to ask and locks "
                 "out at its next boot (G.3.4-tvs-server-untrusted)")
    if not untaken.ctl_served:
        return (f"a phone that took no ITL between {tvs}, and the lists served are signed by a new "
                f"{' and '.join(untaken.signers)} key it does not hold, {untrusted}")
    lockout = (f"a phone that took no ITL between {tvs}, and the CTL served, which every phone checks first "
               "(holding a CTL or not: one holding none checks it against its ITL, the same SAST keys), is "
               f"signed by a new {untaken.ctl_signer} key it does not hold, {untrusted}")
    if untaken.lasting:
        return f"{lockout}, and stays locked: the ITL is signed by a new {untaken.itl_signer} key too"
    return (f"{lockout}; it takes the ITL then (its signer not new), which names the new "
            f"{untaken.ctl_signer} key a SAST record, and the CTL at the boot after")


def _untaken_ways(untaken: UntakenRegenerations, folder: str, *, phones: int = 1) -> str:
    """The way out of :func:`_untaken_lockout`, each checked with real boots (tests): through the list a phone
    checks first (the CTL where one is served: the CTL it takes names the ITL's signer, so the ITL follows;
    else the ITL) — its reset (seed Perform Bulk Reset of ITL File, Reset CTL Localkey) where the CallManager
    key that signs the reset list is not new; TFTP restarted (the CTL: ``ctl-update``) where the CallManager
    key signs the list now and ITLRecovery's is not new; else the phone's lists erased, the next taken on
    first use (spec §G.2, §G.6; the ways out table's last resort). A CTL served and the lockout not lasting,
    also a second reset (:attr:`~phoneemu.lab.cluster.UntakenRegenerations.lasting`). The boots are the
    fleet's for a lab of many ``phones`` (:func:`_reset_boots`)."""
    from phoneemu.phone.ways_out import ways_out

    fleet = phones > 1

    def way(kind: str, word: str) -> str:
        found = next(w for w in ways_out("G.3.4-tvs-server-untrusted", kind) if word in w.lab)
        return re.sub(r"\bDIR\b", lambda _m: folder, found.command(fleet=fleet))

    boot, flash = _reset_boots(folder, phones)
    erase = f"{way('ITL', 'phone erase')} && {boot}"
    new_cm = "the reset list is signed by the CallManager key, new too"
    erase_way = ("Way out, erase the CTL and ITL on each phone (Settings > Security > Trust List, or a "
                 "factory reset): it takes the next lists on first use (seed Migrate IP Phones Between "
                 f"Clusters; spec G.2, G.6): {erase}")
    if untaken.ctl_served:
        signer, kind = untaken.ctl_signer, untaken.ctl_way
        ways = {"reset": f"Way out, the CTL reset (seed Reset CTL Localkey): {way('CTL', 'ctl-reset')}",
                "recovery-signed": f"The CTL reset does not help ({new_cm}). Way out, update the CTL: it "
                                   "is signed by the ITLRecovery key again, which such a phone holds (spec "
                                   f"G.3.2, G.3.3): phoneemu lab ctl-update {folder} && {boot}",
                "erase": f"The CTL reset does not help ({new_cm}"
                         + (", and so is the ITLRecovery key a CTL update signs with"
                            if signer == "callmanager" else "") + f"). {erase_way}"}
        text = ways[kind] if kind is not None else ""
        if not untaken.lasting:
            text += f"; or reset the phones twice (the ITL, then the CTL): {boot} && {boot}"
        return f"{text} {flash}"
    signer, kind = untaken.itl_signer, untaken.itl_way
    ways = {"reset": "Way out, the bulk ITL reset (seed Perform Bulk Reset of ITL File): "
                     f"{way('ITL', 'itl-reset')}",
            "recovery-signed": f"The bulk ITL reset does not help ({new_cm}). Way out, restart TFTP: the "
                               "ITL is signed by the ITLRecovery key again, which such a phone holds (spec "
                               f"G.3.3, G.7): phoneemu lab restart-tftp {folder} && {boot}",
            "erase": f"The bulk ITL reset does not help ({new_cm}"
                     + (", and so is the ITLRecovery key a TFTP restart signs with" if signer == "callmanager"
                        else "") + f"). {erase_way}"}
    return f"{ways[kind] if kind is not None else ''} {flash}"


def _reset_boots(folder: str, phones: int) -> tuple[str, str]:
    """The boot that resets the phones of a lab of ``phones`` in a lockout's way out, and what its
    placeholder stands for: one phone's (``boot --lab DIR --flash FLASH``) where the lab has one, else the
    fleet's (``fleet boot --lab DIR --flash FLEET``, as the ways out of ``fleet boot`` write it; was one
    phone's for a lab of 200)."""
    from phoneemu.phone.ways_out import PLACEHOLDERS

    if phones > 1:
        return (f"phoneemu fleet boot --lab {folder} --flash FLEET", f"(FLEET: {PLACEHOLDERS['FLEET']})")
    return f"phoneemu boot --lab {folder} --flash FLASH", "(FLASH: each phone's flash folder)"


def _regenerated(entry: LogEntry) -> str:
    """The certificate a change log entry of :class:`~phoneemu.lab.cluster.UntakenRegenerations` replaced."""
    return str(entry.args.get("cert", "itlrecovery"))


def _regenerated_said(entry: LogEntry) -> str:
    """A change log entry of :class:`~phoneemu.lab.cluster.UntakenRegenerations`, as the user typed it:
    ``regenerate tvs (generation 3)``, ``itlrecovery import (generation 5)``."""
    what = f"regenerate {entry.args.get('cert')}" if entry.op == "regenerate" else "itlrecovery import"
    return f"{what} (generation {entry.generation})"


def _mixed_mode(cluster: LabCluster, args: argparse.Namespace, now: int | None) -> None:
    """``lab mixed-mode``: turned off while phones are in a secure mode, those phones are said on stderr
    with what they will do — their CTL names no CallManager, so no TLS: four tries for the trust list,
    then SIP over TCP, unprotected (spec G.9). Turned off while the rollback ITL is served, what the
    phones holding a CTL and that ITL will do (:data:`_MIXED_MODE_OFF_WITH_ROLLBACK`; was: nothing said)."""
    cluster.set_mixed_mode(args.state == "on", now=now)
    if args.state == "off" and cluster.state.rollback and cluster.state.ctl_exists:
        say(args, _MIXED_MODE_OFF_WITH_ROLLBACK.format(lab=shlex.quote(str(args.dir))))
    secure = [mac for mac, ph in cluster.state.phones.items() if ph.security_mode != 1]
    if args.state == "off" and secure:
        shown = ", ".join(secure[:3]) + (f" and {len(secure) - 3} more" if len(secure) > 3 else "")
        each, their = ("it", "its config") if len(secure) == 1 else ("each", "their configs")
        say(args, f"note: {counted(len(secure), 'phone')} in a secure mode (authenticated or encrypted: "
                  f"{shown}): the CTL names no CallManager now, so {each} asks for it four times, then "
                  "registers over TCP, unprotected (spec G.9); phoneemu lab security-mode "
                  f"{shlex.quote(str(args.dir))} --mac MAC non-secure says so in {their}")


#: ``lab mixed-mode DIR off`` while the rollback ITL is served (:func:`_mixed_mode`): the non-secure CTL
#: served now has its CCM+TFTP records emptied and the rollback ITL its TFTP and TVS records (spec B.7, G.3
#: note), so a phone holding a CTL and that ITL finds the config signer in neither and no TVS to ask (G.4)
_MIXED_MODE_OFF_WITH_ROLLBACK = (
    "note: the rollback ITL is served (Prepare Cluster for Rollback to pre-8.0): phones holding a CTL and "
    "that ITL will refuse their configs (G.4-reject-unknown-signer) and keep the config they hold — the CTL "
    "served now has its CCM+TFTP records emptied and the rollback ITL its TFTP and TVS records (spec B.7, "
    "G.3 note), so no list they hold names the config signer and they have no TVS to ask; phoneemu lab "
    "rollback {lab} off, then reset them: the full ITL they take names it")


def _rollback(cluster: LabCluster, args: argparse.Namespace, now: int | None) -> None:
    """``lab rollback``: turned on, which services do not work while it is on (:func:`_rollback_https_note`;
    was: nothing said) and, where a CTL is served, what the phones holding it will do, on stderr (was:
    nothing said; seed Migrate IP Phones Between Clusters offers the empty ITL for a move, spec G.3 note)."""
    cluster.set_rollback(args.state == "on", now=now)
    if args.state == "on":
        say(args, _rollback_https_note(cluster, shlex.quote(str(args.dir))))
    if args.state == "on" and cluster.state.ctl_exists:
        say(args, _ROLLBACK_WITH_A_CTL.format(lab=shlex.quote(str(args.dir))))


def _rollback_https_note(cluster: LabCluster, lab: str) -> str:
    """The note of ``lab rollback DIR on``: phone services that use HTTPS do not work while it is on, basic
    calls do (seed Roll Back Cluster to a Pre-8.0 Release, step 1's note; spec G.6), and what the lab's own
    HTTPS services do: its directory (E.7.1) finds no TVS in the empty ITL to vouch for it unless the
    secure URLs are plain HTTP (``secure-urls``, seed steps 6-7); with ``--https-key`` its 6971 config
    download (H.1) is not asked, the empty ITL holding no TFTP record with an EC key."""
    if cluster.state.secure_urls_http:
        directory = ("the lab's directory is named over plain HTTP (secure-urls http): phones reach it, "
                     "unauthenticated")
    else:
        directory = ("the lab's HTTPS directory fails on phones holding the empty ITL "
                     "(E.7.1-https-not-trusted: no TVS to vouch for it); "
                     f"phoneemu lab secure-urls {lab} http names it over plain HTTP")
    config = ("; the HTTPS config download (6971) is not asked: the empty ITL holds no TFTP record with an "
              "EC key, so phones take their config over HTTP 6970/TFTP") if cluster.state.https_key else ""
    return ("note: while the rollback is on, phone services that use HTTPS (for example extension mobility) "
            "do not work; basic calls do (seed Roll Back Cluster to a Pre-8.0 Release, spec G.6): "
            + directory + config)


#: ``lab rollback DIR on`` serving a CTL (:func:`_rollback`): the rollback ITL does not blank a CTL (spec G.3
#: note) and leaves the phones no TVS (B.7): a move to another secure cluster needs the old TVS (G.6)
_ROLLBACK_WITH_A_CTL = (
    "note: this cluster serves a CTL: the rollback ITL does not blank the CTL its phones hold (spec G.3 "
    "note), which still checks every new CTL, ITL and config, and leaves them no TVS to ask (its TVS record "
    "blanked, B.7) — moved to another secure cluster they lock out (G.3.5-reject-unknown-signer); move them "
    "with the bulk certificate export while the rollback is off (spec G.6: phoneemu lab exchange {lab} NEW, "
    "phoneemu lab restart-tvs {lab}), or, holding the rollback ITL, after phoneemu lab rollback {lab} off "
    "and a reset")


def _itl_reset(cluster: LabCluster, args: argparse.Namespace, now: int | None) -> None:
    """``lab itl-reset``: what follows on stderr, in the seed's order ("Perform Bulk Reset of ITL File"
    steps 4-5, spec G.7): reset the phones while the CallManager key signs the ITL, then restart TFTP
    (was: only who signs the ITL now; restarting TFTP first serves the ITLRecovery-signed ITL again), as
    :func:`_itl_reset_note` says it for the lists the cluster serves; then, where the CallManager key that
    signs the reset ITL is new with every TVS since the reset point before, the lockout it leaves
    (:func:`itl_reset_lockout_warning`)."""
    cluster.itl_reset(args.key, key_file=args.key_file, now=now)
    say(args, _itl_reset_note(cluster.state.rollback, cluster.state.ctl_exists, shlex.quote(str(args.dir)),
                              mixed_mode=cluster.state.mixed_mode, phones=len(cluster.state.phones)))
    untaken = cluster.untaken_regenerations(at_reset=True)
    if untaken is not None and "callmanager" in untaken.new:
        say(args, itl_reset_lockout_warning(untaken, str(args.dir), phones=len(cluster.state.phones)))


def _itl_reset_note(rollback: bool, ctl: bool, lab: str, *, mixed_mode: bool = True, phones: int = 1) -> str:
    """The note of ``lab itl-reset`` (spec G.7). The rollback on: the reset ITL is served as the rollback ITL,
    empty (B.7), before and after TFTP restarts, so the phones that take it hold no TVS until the rollback is
    off. A CTL served (mixed mode): a phone holding it checks it first at each boot (G.3.2; the rollback ITL
    does not blank it, G.3 note), so one refusing the CTL (its ITLRecovery signer regenerated) stays locked
    at the reset that brings it the reset ITL and takes the CTL at its next, the new ITLRecovery a SAST record
    of that ITL. Was, in both: "reset the phones now (each takes it ...)", as if that reset ended the
    lockout and brought the full ITL. Both, the CTL non-secure (``mixed_mode`` off: its CCM+TFTP records
    emptied): no list a phone holding it holds names the config signer, so taking the CTL ends no lockout
    (G.4-reject-unknown-signer, as ``lab mixed-mode off`` says) until the rollback is off and a reset (was:
    "they hold the empty ITL ... until ... rollback off", as if they took their configs meanwhile). The
    reset's boot is the fleet's for a lab of many ``phones`` (:func:`_reset_boots`), what its placeholder
    stands for said at the end (was left bare: ``--flash FLEET``)."""
    lists = "its CTL or ITL" if ctl else "its ITL"
    if rollback:
        served = ("the rollback is on: the reset ITL is served as the rollback ITL, empty (its TFTP and TVS "
                  "records blanked, spec B.7), after TFTP restarts too, and signed by the CallManager key "
                  "until then")
        taken = f"a SAST record of {lists}" + ("" if ctl else ", or any ITL after the rollback ITL, G.3.6")
    else:
        served = "the ITL is signed by the CallManager key until TFTP restarts"
        taken = f"a SAST record of {lists} or vouched by TVS"
    boot, meaning = _reset_boots(lab, phones)  # the fleet's boot for a lab of many phones
    note = (f"note: {served}: reset the phones now (each takes it, the CallManager certificate {taken}, spec "
            f"G.7; {boot}), then phoneemu lab restart-tftp {lab} signs it with ITLRecovery again, which they "
            "then trust")
    if ctl:
        kept = "; the rollback ITL does not blank it, G.3 note" if rollback else ""
        note += (f"; a phone holding the CTL checks it first at each boot (spec G.3.2{kept}): one refusing "
                 "the CTL (its ITLRecovery signer regenerated) stays locked at that reset, though it takes "
                 "the reset ITL, and takes the CTL at its next, the new ITLRecovery a SAST record of that "
                 "ITL: reset the phones again after the restart")
    if rollback and ctl and not mixed_mode:
        note += ("; the CTL served is non-secure (mixed mode off: its CCM+TFTP records emptied) and the "
                 "rollback ITL has its TFTP record blanked (spec B.7): a phone holding a CTL and the "
                 "rollback ITL refuses its config (G.4-reject-unknown-signer) at every reset, the CTL taken "
                 f"or not, locked with no TVS to ask, until phoneemu lab rollback {lab} off and a reset (the "
                 "full ITL names the config signer)")
    elif rollback:
        note += (f"; they hold the empty ITL, no TVS to ask, until phoneemu lab rollback {lab} off and a "
                 "reset (their full ITL)")
    return f"{note} {meaning}"  # what the boot's placeholder stands for (was left bare)


def _ctl_reset(cluster: LabCluster, args: argparse.Namespace, now: int | None) -> None:
    """``lab ctl-reset``: what follows on stderr, in the seed's order ("Reset CTL Localkey" steps 4-5):
    reset the phones while the CallManager key signs the CTL, then ``ctl-update``; then, where that key is new
    with every TVS since the reset point before, the lockout it leaves (:func:`itl_reset_lockout_warning`;
    was: nothing said, ``regenerate tvs``, ``regenerate callmanager``, ``ctl-reset`` locked every phone out
    at its next boot)."""
    cluster.ctl_reset(args.key, now=now)
    lab = shlex.quote(str(args.dir))
    boot, meaning = _reset_boots(lab, len(cluster.state.phones))  # the fleet's boot for a lab of many phones
    say(args, "note: the CTL is signed by the CallManager key until the CTL is updated: reset the phones "
              f"now (each takes it, the CallManager certificate a SAST record of its CTL; {boot}), then "
              f"phoneemu lab ctl-update {lab} signs it with ITLRecovery again {meaning}")
    untaken = cluster.untaken_regenerations(at_reset=True)
    if untaken is not None and untaken.ctl_signer is not None:
        say(args, itl_reset_lockout_warning(untaken, str(args.dir), kind="CTL",
                                            phones=len(cluster.state.phones)))


def _ctl_update(cluster: LabCluster, args: argparse.Namespace, now: int | None) -> None:
    """``lab ctl-update``: closing a ``ctl-reset``, where the ITLRecovery key it signs the CTL with again is
    new with every TVS the configs name since the reset point before (counted from there: the phones that
    refuse that CTL and take the ITL make it one, the lockout not lasting), the lockout it completes or keeps
    (:func:`restart_tftp_lockout_warning`; was: nothing said, ``ctl-reset``, ``regenerate tvs``, ``regenerate
    itlrecovery``, ``ctl-update`` locked every phone out)."""
    signer = cluster.state.ctl_signer
    cluster.ctl_update(now=now)
    untaken = cluster.untaken_regenerations(at_reset=True)
    if signer != cluster.state.ctl_signer and untaken is not None and untaken.ctl_signer is not None:
        say(args, restart_tftp_lockout_warning(untaken, str(args.dir), kind="CTL",
                                               phones=len(cluster.state.phones)))


#: the trust-list limit of the phones (spec §B.5, seed "Interactions and Restrictions": 64 kilobytes)
_ITL_LIMIT = 64 * 1024


def _served_itl_size(args: argparse.Namespace) -> int:
    """The size of the ITL the lab serves (0: none served)."""
    itl = Path(args.dir) / "tftp" / "ITLFile.tlv"
    return itl.stat().st_size if itl.is_file() else 0


def _oversize_consequence(size: int, extra: int, *, still: bool = False) -> str:
    """What an ITL above the phones' limit does to them (spec §B.5, seed "Interactions and Restrictions":
    the ITL does not load, registration fails): the note ``add-certs`` and ``remove-certs`` give."""
    certs = counted(extra, "extra certificate")
    still_text = "still " if still else ""
    return (f"the ITL is {still_text}{size} bytes, above the phones' 64 KiB ({_ITL_LIMIT}-byte) "
            f"limit ({certs}; seed: more than 39 certificates): each phone refuses it at its "
            "next reset, keeps its installed ITL and takes no config: locked out (G.3.1-oversize; the "
            "seed: registration fails), a phone without an ITL too")


def _itl_size_lines(size: int, extra: int, lab: str, *, indent: str) -> list[str]:
    """``lab show``'s line under the ITL's size where it is above the phones' 64 KiB limit, as ``add-certs``
    says it (:func:`_oversize_consequence`; was: the size alone, which read as harmless)."""
    if size <= _ITL_LIMIT:
        return []
    return [f"{indent}note: {_oversize_consequence(size, extra)}; phoneemu lab remove-certs {lab} brings it "
            "back under"]


def _add_certs(cluster: LabCluster, args: argparse.Namespace, now: int | None) -> None:
    """``lab add-certs``: an ITL above 64 KiB is said on stderr with what phones do about it — they are
    locked out (was: its md5 only; then "keeps its installed ITL", which read as harmless)."""
    cluster.add_certs(args.count, now=now)
    size = _served_itl_size(args)
    if size > _ITL_LIMIT:
        note = _oversize_consequence(size, cluster.state.extra_certs)
        lab = shlex.quote(str(args.dir))
        say(args, f"note: {note}; phoneemu lab remove-certs {lab} brings it back under")


def _remove_certs(cluster: LabCluster, args: argparse.Namespace, now: int | None) -> None:
    """``lab remove-certs``: an ITL still above 64 KiB after it is said on stderr, as ``add-certs`` says it
    (was: nothing — ``--count`` too small left the phones locked out, ``G.3.1-oversize``, in silence); one
    brought back under says the phones take it at their next reset."""
    before = _served_itl_size(args)
    cluster.remove_certs(args.count, now=now)
    size = _served_itl_size(args)
    lab = shlex.quote(str(args.dir))
    if size > _ITL_LIMIT:
        say(args, f"note: {_oversize_consequence(size, cluster.state.extra_certs, still=True)}; phoneemu lab "
                  f"remove-certs {lab} removes the rest")
    elif before > _ITL_LIMIT:
        say(args, f"note: the ITL is {size} bytes, back under the phones' 64 KiB ({_ITL_LIMIT}-byte) limit: "
                  "each phone takes it at its next reset")


def _security_mode(cluster: LabCluster, args: argparse.Namespace, now: int | None) -> None:
    """``lab security-mode``: a secure mode on a cluster not in mixed mode is said on stderr with what its
    phones will do — no CTL, so no CallManager certificate for TLS: four tries for the trust list, then
    SIP over TCP, unencrypted (spec G.9) — and the operation that changes it (was: nothing said, the
    phones' boots showing only the retries and the fall-back)."""
    cluster.set_security_mode(_macs(args), args.mode, now=now)
    if args.mode != "non-secure" and not cluster.state.mixed_mode:
        say(args, f"note: the cluster is not in mixed mode (no CTL): a phone in {args.mode} mode finds no "
                  "CallManager certificate to set up TLS with, asks for the CTL four times, then registers "
                  f"over TCP, unprotected (spec G.9); phoneemu lab mixed-mode {shlex.quote(str(args.dir))} "
                  "on serves a CTL")


_AUTH_MODE_NAMES = {"none": 0, "string": 1, "auth-string": 1, "null-string": 2, "lsc": 3, "mic": 4}
_AUTH_MODE_HELP = ("how the phone proves itself to CAPF (capfAuthMode, spec §H.5): string (1: the "
                   "--auth-string typed on the phone), null-string (2: no proof; any device with this MAC "
                   "can enrol), lsc (3), mic (4), or 0..4")


def _auth_mode_arg(text: str) -> int:
    t = text.strip().lower()
    if t.isdigit() and int(t) in range(5):
        return int(t)
    if t in _AUTH_MODE_NAMES:
        return _AUTH_MODE_NAMES[t]
    raise argparse.ArgumentTypeError(f"{text!r}: one of {', '.join(_AUTH_MODE_NAMES)} or 0..4")


def _require_auth_choice(operation: str | None, auth_mode: int | None, auth_string: str | None, *,
                         option: str | None = None) -> None:
    """A CAPF operation with neither --auth-mode nor --auth-string would enrol with a null string
    (no proof at all): make that choice explicit. The error names the operation as it was typed
    (``option``: ``--capf install``; none: the positional ``install`` of ``lab capf``)."""
    if operation in ("install", "fetch", "delete") and auth_mode is None and auth_string is None:
        asked = f"{option} {operation}" if option else f"CAPF {operation}"
        raise EncodeError(f"{asked}: say how the phone authenticates: --auth-string DIGITS "
                          "(4..16 digits, typed on the phone), --auth-mode null-string (no proof: any device "
                          "with this MAC can enrol), --auth-mode lsc or --auth-mode mic")


def _required(value: str | None, option: str, why: str) -> str:
    if value is None:
        raise EncodeError(f"needed ({why})", path=option)
    return value


def _onoff(p: argparse.ArgumentParser, what: str) -> None:
    # metavar: a missing or misspelt value is said as the usage line shows it, {on,off} (was: "state")
    p.add_argument("state", choices=("on", "off"), metavar="{on,off}", help=what)


def register(sub: Any) -> None:
    from phoneemu.lab.defaults import EXCHANGE_STORE_NAMES, SECURE_URL_SCHEMES  # two operations' choices

    lab = sub.add_parser("lab", help="lab cluster: init, phones, admin operations that change trust, serve "
                         "(TFTP, HTTP, TVS, CAPF; SIP with --sip-port)",
                         description="A stand-in for the cluster side: PKI, signed files, admin operations, "
                         "and its servers (lab serve: TFTP, HTTP, TVS, CAPF, and the SIP registrar with "
                         "--sip-port / --sips-port).",
                         epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    lab.set_defaults(handler=lambda _args: _help(lab))
    ops = lab.add_subparsers(dest="lab_command", metavar="OPERATION")

    def add(name: str, help_text: str, *, now: bool = True,
            lab_first: bool = True) -> argparse.ArgumentParser:
        """An operation's parser: DIR, and ``--now`` unless the operation has no time to set (``show``
        reads, ``clock`` moves the clock by ``--advance``: a ``--now`` there was taken and ignored). A lab
        folder given after another operand is said to come first (``lab_first``; not ``exchange``, whose
        OTHER_DIR is a lab folder too)."""
        p: argparse.ArgumentParser = ops.add_parser(name, help=help_text, description=help_text)
        _dir(p)
        if lab_first:
            takes_lab_folder_first(p)
        if now:
            p.add_argument("--now", type=unix_time, metavar="UNIX",
                           help="lab-clock time of the operation, Unix seconds (default: the real time; "
                           "for a --seed cluster its lab clock)")
        return p

    p = ops.add_parser("init", help="create a lab cluster in DIR",
                       description="Create a lab cluster: keys and certificates, then the served files.")
    _dir(p)
    p.add_argument("--seed", type=integer, metavar="N",
                   help="deterministic keys and validity (labs and tests only; default: random keys)")
    p.add_argument("--name", default="lab", help="cluster name (default lab)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address written in configs and records (default 127.0.0.1)")
    p.add_argument("--nodes", type=positive_int, default=1, metavar="N",
                   help="number of nodes, each with CallManager and TVS (default 1)")
    p.add_argument("--itlrecovery-years", type=positive_int, metavar="N",
                   help="ITLRecovery validity in years (1..30), now and at every regeneration (default 20; "
                        "with --upgraded "
                        "the first certificate lasts 5)")
    p.add_argument("--upgraded", action="store_true",
                   help="an upgraded cluster (its ITLRecovery carried over: 5 years; regenerated: 20)")
    p.add_argument("--key", default="rsa2048",
                   help="key of cluster identities: rsa1024, rsa2048 or rsa4096 (default rsa2048)")
    p.add_argument("--load", metavar="NAME",
                   help="cluster-wide loadInformation (firmware served as NAME.loads); default: none")
    p.add_argument("--https-key", metavar="SPEC",
                   help="add the HTTPS (6971) TFTP identity, e.g. ec-p256: an ITL record with role TFTP "
                   "(the ITL then carries signer version 1.1); lab serve then runs the HTTPS configuration "
                   "download on 6971 (--https-config-port), presenting it; default: none")
    p.add_argument("--now", type=unix_time, metavar="UNIX",
                   help="start of the lab clock, Unix seconds (default: the real time)")
    p.set_defaults(handler=_init)

    p = ops.add_parser("phone", help="phones known to the cluster (add)",
                       description="Phones known to the cluster. add: add a phone (or update one), issue its "
                       "MIC and serve its config, signed, and encrypted with --encrypt.",
                       epilog=_PHONE_ADD_EXAMPLES + "\n" + _PHONE_GROUP_EXIT_STATUS,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    phone_ops = p.add_subparsers(dest="phone_command", metavar="ACTION")
    p.set_defaults(handler=lambda _args: _help(p))
    pa = phone_ops.add_parser("add", help="add (or update) a phone and issue its MIC",
                              description="Add a phone to the cluster (or update one): issue its MIC "
                              "(DIR/phones/<MAC>/mic.pem, key mic.key 0600) and serve its config, signed, "
                              "and with --encrypt encrypted (SEP<MAC>.cnf.xml.enc.sgn), as the output says.")
    _dir(pa)
    takes_lab_folder_first(pa)
    pa.add_argument("--mac", required=True, type=mac_option,
                    help="MAC, e.g. 001122334455, 00:11:22:33:44:55 or SEP001122334455")
    pa.add_argument("--count", type=_phone_count, default=1, metavar="N",
                    help="add N phones with consecutive MACs from --mac (as fleet boot --mac-start "
                    "numbers them), the same options each; one rebuild (default 1)")
    pa.add_argument("--model", help="model written in its MIC and config (phoneModel CP-MODEL), e.g. 7962 "
                    "(default 8861); the emulated phone's own profile is boot --profile")
    pa.add_argument("--encrypt", choices=("pki", "symmetric"),
                    help="config file encryption (default: none); symmetric needs --symmetric-key")
    pa.add_argument("--symmetric-key", metavar="HEX", help="manual key, 32 or 64 hex digits")
    pa.add_argument("--capf", choices=("install", "fetch", "delete", "none"),
                    help="pending CAPF operation (default: none); install, fetch and delete need "
                    "--auth-string or --auth-mode")
    pa.add_argument("--auth-mode", type=_auth_mode_arg, metavar="MODE", help=_AUTH_MODE_HELP)
    pa.add_argument("--auth-string", metavar="DIGITS",
                    help="CAPF authentication string (4..16 digits); implies --auth-mode string")
    pa.add_argument("--lsc-key", metavar="SPEC",
                    help="LSC key the phone makes (rsa2048, ec-p256 ...; default rsa2048)")
    pa.add_argument("--now", type=unix_time, metavar="UNIX",
                    help="lab-clock time of the operation, Unix seconds (default: the real time; for a "
                    "--seed cluster its lab clock)")
    pa.set_defaults(handler=_op(_phone_add))

    p = add("show", "state summary, ITL/CTL checksums; --itl/--ctl print 'show itl'/'show ctl'", now=False)
    p.description = ("State summary, ITL/CTL checksums; --itl/--ctl print 'show itl'/'show ctl'. The lab is "
                     "read under DIR/.lab.lock, shared: a lab operation under way is waited for "
                     "('phoneemu lab show: waiting for the lab lock ...' on stderr), never shown "
                     "half-changed; printed once the lock is released.")
    p.add_argument("--itl", action="store_true", help="print the served ITL as CUCM's 'show itl' does")
    p.add_argument("--ctl", action="store_true", help="print the served CTL as CUCM's 'show ctl' does")
    p.add_argument("--json", action="store_true", help="summary as JSON")
    p.add_argument("--phones", action="store_true",
                   help=f"list every phone (default: one line each up to {_PHONES_SHOWN}, then counts)")
    p.add_argument("--files", action="store_true", help="list served files with sizes")
    p.add_argument("--log", action="store_true", help="print the change log")
    p.set_defaults(handler=_show)

    p = add("regenerate", "regenerate a certificate (callmanager, tvs, itlrecovery, capf; tvs-2 ...)")
    p.add_argument("cert", metavar="CERT",
                   help="callmanager, tvs, itlrecovery or capf; -N for node N's (tvs-2, callmanager-2). "
                   "callmanager is also CUCM's TFTP certificate: it signs the configs (spec G.5)")
    p.set_defaults(handler=_op(_regenerate))

    p = add("mixed-mode", "mixed mode on (serve a CTL) or off (non-secure: CTL with empty CCM+TFTP records)")
    _onoff(p, "mixed mode")
    p.set_defaults(handler=_op(_mixed_mode))

    p = add("itl-reset", "utils itl reset localkey|remotekey: ITL signed by CallManager until restart-tftp")
    p.add_argument("key", choices=("localkey", "remotekey"),
                   help="localkey: sign with the CallManager key; remotekey: the same, after restoring the "
                   "exported ITLRecovery key (--key-file)")
    p.add_argument("--key-file", type=Path, metavar="FILE",
                   help="remotekey: the key exported with 'lab itlrecovery DIR export FILE' (default: "
                   "DIR/exported/itlrecovery.pem)")
    p.set_defaults(handler=_op(_itl_reset))

    p = add("restart-tftp", "TFTP service restart: ITL signed by ITLRecovery again")
    p.set_defaults(handler=_op(_restart_tftp))

    p = add("restart-tvs", "TVS service restart (logged; TVS presents its current certificate and "
            "knowledge at every connection anyway)")
    p.set_defaults(handler=_op(lambda c, a, n: c.restart_tvs(now=n)))

    p = add("service", "stop or start a service of a running 'lab serve' (tvs: a TVS outage during a "
            "certificate change)")
    p.add_argument("service", metavar="SERVICE", help="tftp, http, tvs, capf, tvs-N (node N's TVS), or sip / "
                   "sips (the SIP registrar over TCP / TLS: the CallManager the configs name, down; sip-N / "
                   "sips-N node N's), or https-config (a lab made with --https-key: the HTTPS config "
                   "download, 6971, down; phones take their config over HTTP/TFTP)")
    p.add_argument("action", choices=("stop", "start"), help="take the service down or bring it back")
    p.set_defaults(handler=_op(_service))

    p = add("ctl-reset", "utils ctl reset localkey: CTL signed by CallManager until ctl-update")
    p.add_argument("key", choices=("localkey",), help="localkey: the CallManager key signs the CTL")
    p.set_defaults(handler=_op(_ctl_reset))

    p = add("ctl-update", "utils ctl update CTLFile: CTL signed by ITLRecovery again")
    p.set_defaults(handler=_op(_ctl_update))

    p = add("add-node", "add a CallManager/TVS node: its TVS cert joins the ITL; 'lab serve' runs its TVS")
    p.set_defaults(handler=_op(lambda c, a, n: c.add_node(now=n)))

    p = add("remove-node", "remove the last node: its TVS and CallManager certificates leave the ITL/CTL/TVS")
    p.set_defaults(handler=_op(lambda c, a, n: c.remove_node(now=n)))

    p = add("rollback", "Prepare Cluster for Rollback to pre-8.0: serve the empty ITL")
    _onoff(p, "rollback parameter")
    p.set_defaults(handler=_op(_rollback))

    p = add("add-certs", "add N extra certificates (TVS role) to the ITL, e.g. to cross 64 KB")
    p.add_argument("--count", type=positive_int, required=True, metavar="N",
                   help="certificates to add (1..200)")
    p.set_defaults(handler=_op(_add_certs))

    p = add("remove-certs", "remove the last N extra certificates from the ITL (default: all of them)")
    p.add_argument("--count", type=positive_int, metavar="N", help="certificates to remove (default: all)")
    p.set_defaults(handler=_op(_remove_certs))

    p = add("encryption", "configuration file encryption of a phone on/off")
    _mac_options(p)
    _onoff(p, "encryption")
    p.add_argument("--mode", choices=("pki", "symmetric"), default=None,
                   help="pki: encrypted for the phone's certificate (the default); symmetric: a manual key "
                   "(the default with --symmetric-key)")
    p.add_argument("--symmetric-key", metavar="HEX", help="the manual key, 32 or 64 hex digits (implies "
                   "--mode symmetric)")
    p.set_defaults(handler=_op(_encryption))

    p = add("security-mode", "device security mode of phones (deviceSecurityMode: TLS needs a CTL, spec G.9)")
    _mac_options(p)
    p.add_argument("mode", choices=("non-secure", "authenticated", "encrypted"),
                   help="the device security mode written into the phones' configs")
    p.set_defaults(handler=_op(_security_mode))

    p = add("calling-search-space", "dial plan of phones (seed Authorization; the lab's convention): the "
            "partition of their line and their calling search space, the partitions their calls reach; a "
            "call to a phone in a partition the caller's calling search space does not list is refused "
            "with 404 Not Found (<None> is reached by every calling search space)")
    _mac_options(p)
    p.add_argument("--partition", metavar="NAME",
                   help="the partition of the phones' line: 1..50 letters, digits, _ - or . ('<None>' or '': "
                   "CUCM's <None> partition, which every calling search space reaches; default: unchanged, "
                   "<None> unless set)")
    p.add_argument("--css", metavar="NAME,NAME",
                   help="the phones' calling search space: partition names, comma-separated ('': it reaches "
                   "<None> only; default: unchanged, empty unless set)")
    p.set_defaults(handler=_op(_calling_search_space))

    p = add("digest", "SIP digest credentials of phones, written into their configs (lab values only)")
    _mac_options(p)
    p.add_argument("--user", help="digest user (required unless --clear)")
    p.add_argument("--password", help="digest password (a lab value: it is stored in the cluster state)")
    p.add_argument("--exclude", action="store_true",
                   help="Exclude Digest Credential in Configuration File: keep them out of the config")
    p.add_argument("--clear", action="store_true", help="remove the phones' digest credentials")
    p.set_defaults(handler=_op(lambda c, a, n: c.set_digest(
        _macs(a), None if a.clear else _required(a.user, "--user", "or --clear to remove the credentials"),
        None if a.clear else a.password, exclude=a.exclude, now=n)))

    p = add("itl-capf", "whether the ITL carries the CAPF record (off: phones ask TVS about the CAPF server)")
    _onoff(p, "CAPF record in the ITL")
    p.set_defaults(handler=_op(lambda c, a, n: c.set_itl_capf(a.state == "on", now=n)))

    p = add("secure-urls", "scheme of the secure service URLs in configs (enterprise parameters; http: "
                           "the workaround while phones cannot verify the HTTPS directory; taken at a reset)")
    p.add_argument("scheme", choices=SECURE_URL_SCHEMES,
                   help="https (CUCM's default) or http (secureDirectoryURL http://HOST:8080/...)")
    p.set_defaults(handler=_op(lambda c, a, n: c.set_secure_urls(a.scheme, now=n)))

    p = add("signature-algorithm", "TFTP file signature algorithm (enterprise parameter)")
    p.add_argument("hash", choices=("sha1", "sha512"), help="hash of the signed files' signatures")
    p.set_defaults(handler=_op(lambda c, a, n: c.set_signature_algorithm(a.hash, now=n)))

    p = add("upgraded", "mark the cluster upgraded (the ITLRecovery certificate is carried over as it is)")
    _onoff(p, "upgraded flag")
    p.add_argument("--years", type=positive_int, metavar="N",
                   help="validity of the next regenerated ITLRecovery in years (1..30; default: unchanged, "
                        "20 unless chosen)")
    p.set_defaults(handler=_op(lambda c, a, n: c.set_upgraded(a.state == "on", years=a.years, now=n)))

    p = add("exchange", "bulk certificate exchange with another lab cluster (each TVS vouches for the other)",
            lab_first=False)
    p.add_argument("other", type=Path, metavar="OTHER_DIR", help="the other lab cluster's directory")
    p.add_argument("--store", choices=EXCHANGE_STORE_NAMES, default="both",
                   help="the trust stores the certificates are imported into: both (default; "
                        "CallManager-trust and Phone-SAST-trust, spec G.6: TVS answers roles SAST, TFTP) or "
                        "callmanager-trust (TFTP only, no SAST: phones refuse a trust list signed by them, "
                        "G.3.4-tvs-wrong-role; ours, the spec names no store's roles)")
    p.set_defaults(handler=_op(_exchange, also=lambda a: [a.other]))  # OTHER_DIR is written too: its lock

    p = add("tamper", "flip one byte of a served file until a cluster-wide operation rebuilds it (a "
            "one-phone change — phone add, encryption of a phone — rebuilds only that phone's files)")
    p.add_argument("file", metavar="FILE",
                   help="a served file's name, e.g. ITLFile.tlv (lab show DIR --files)")
    p.add_argument("--offset", type=integer, metavar="N",
                   help="byte offset (default: last byte; negative from the end)")
    p.set_defaults(handler=_op(lambda c, a, n: f"flipped byte {c.tamper(a.file, offset=a.offset, now=n)} "
                               f"of {a.file}"))

    p = add("sbd", "Security By Default for the default config (on: also serve XmlDefault.cnf.xml.sgn)")
    _onoff(p, "SBD")
    p.set_defaults(handler=_op(lambda c, a, n: c.set_sbd(a.state == "on", now=n)))

    p = add("autoregistration", "serve the default config XmlDefault.cnf.xml(.sgn) or not")
    _onoff(p, "autoregistration")
    p.set_defaults(handler=_op(lambda c, a, n: c.set_autoregistration(a.state == "on", now=n)))

    p = add("tvs-ttl", "TTL TVS returns with its answers (seconds)")
    p.add_argument("seconds", type=positive_int, metavar="SECONDS",
                   help="the TTL in seconds (1..2592000, 30 days); the lab's default is 86400")
    p.set_defaults(handler=_op(lambda c, a, n: c.set_tvs_ttl(a.seconds, now=n)))

    p = add("load", "name a firmware load in loadInformation (cluster-wide or --mac)")
    p.add_argument("name", metavar="NAME", help="the load name, e.g. sip88xx.14-2-1 (served as NAME.loads)")
    _mac_options(p, required=False, what="only this phone's config (repeatable; default: cluster-wide)")
    p.add_argument("--tamper", action="store_true", help="serve the load with a broken signature")
    p.set_defaults(handler=_op(lambda c, a, n: c.set_load(a.name, macs=_macs(a), tamper=a.tamper, now=n)))

    p = add("capf", "set a pending CAPF operation on phones")
    p.add_argument("operation", choices=("install", "fetch", "delete", "none"),
                   help="the operation the phones run at their next boot (none: cancel it)")
    _mac_options(p)
    p.add_argument("--auth-mode", type=_auth_mode_arg, metavar="MODE", help=_AUTH_MODE_HELP)
    p.add_argument("--auth-string", metavar="DIGITS",
                   help="CAPF authentication string (4..16 digits); implies --auth-mode string")
    p.add_argument("--lsc-key", metavar="SPEC",
                   help="LSC key the phone generates (rsa2048, ec-p256 ...; default: unchanged, rsa2048 "
                   "unless chosen)")
    p.set_defaults(handler=_op(_capf))

    p = add("itlrecovery", "export or import the ITLRecovery key (stand-in for ITLRecovery.p12)")
    p.add_argument("action", choices=("export", "import"),
                   help="export: write the key out (as 'file get tftp ITLRecovery.p12'); import: restore it")
    p.add_argument("file", type=Path, metavar="FILE", help="the PEM file (certificate and key; written 0600)")
    p.set_defaults(handler=_op(_itlrecovery))

    p = add("clock", "advance the lab clock", now=False)
    p.add_argument("--advance", type=non_negative_int, required=True, metavar="SECONDS",
                   help="seconds to move the lab clock forward (certificate expiry)")
    p.set_defaults(handler=_op(lambda c, a, n: c.advance_clock(a.advance)))

    _register_serve(ops)
    for name, lines in _OP_EXAMPLES.items():
        op = ops.choices[name]
        op.epilog = ("example" + ("s" if len(lines) > 1 else "") + ":\n" + "".join(f"  {x}\n" for x in lines)
                     + "\n" + OP_EXIT_STATUS)
        op.formatter_class = argparse.RawDescriptionHelpFormatter
    pa.epilog = _PHONE_ADD_EXAMPLES + "\n" + OP_EXIT_STATUS
    pa.formatter_class = argparse.RawDescriptionHelpFormatter


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _seed_text(seed: int | None) -> str:
    """``seed 7``, or ``no seed: random keys``: never Python's ``None``."""
    return f"seed {seed}" if seed is not None else "no seed: random keys"


def _init(args: argparse.Namespace) -> int:
    """``lab init``: the cluster made, then the served ITL's checksums as ``lab show`` and CUCM's ``show itl``
    give them, md5 and sha1 (spec §H.4): a phone shows one of them, which by its model (§G.1; ``phone show``
    names it: a cp-8861's is SHA-1). Was the md5 alone, compared by a newcomer with a cp-8861's SHA-1."""
    from phoneemu.lab.cluster import LabCluster

    def progress() -> None:  # seeded RSA keys are made in pure Python: say why it takes seconds
        if args.seed is not None:
            say(args, "creating the cluster's identities (seeded keys are made in pure Python: a few "
                      "seconds)...")

    # the progress line comes once every option is checked: a refusal is one line
    cluster = LabCluster.init(args.dir, seed=args.seed, name=args.name, host=args.host, nodes=args.nodes,
                              itlrecovery_years=args.itlrecovery_years, upgraded=args.upgraded,
                              key_spec=args.key, load=args.load, now=args.now, https_key=args.https_key,
                              before_keys=progress)
    s = cluster.summary()
    print(f"lab cluster {s['name']!r} created in {args.dir} ({_seed_text(s['seed'])}, "
          f"{counted(s['nodes'], 'node')}, ITLRecovery {counted(s['itlrecovery_years'], 'year')})")
    print(f"ITL md5 {s['itl_md5']}  sha1 {s['itl_sha1']}  {s['files']} served files in {args.dir / 'tftp'}")
    return 0


def _capf(c: LabCluster, a: argparse.Namespace, now: int | None) -> None:
    _require_auth_choice(a.operation, a.auth_mode, a.auth_string)
    c.set_capf(_macs(a), a.operation, auth_mode=a.auth_mode, auth_string=a.auth_string, key=a.lsc_key,
               now=now)


def _encryption(c: LabCluster, a: argparse.Namespace, now: int | None) -> None:
    """``--symmetric-key`` implies ``--mode symmetric`` (as ``--auth-string`` implies string mode); with
    ``--mode pki`` it is refused rather than ignored."""
    mode = a.mode or ("symmetric" if a.symmetric_key is not None else "pki")
    if mode == "pki" and a.symmetric_key is not None:
        raise PhoneEmuError("--symmetric-key goes with --mode symmetric (--mode pki encrypts for the "
                            "phone's certificate)", path="symmetric-key")
    macs = _macs(a)
    c.set_encryption(macs, a.state == "on", mode=mode, symmetric_key=a.symmetric_key, now=now)
    if a.state == "on" and mode == "symmetric":
        _warn_no_manual_key(c, a, macs)
    elif a.state == "on":
        _warn_no_pki_decryption(c, a, macs)


def _warn_no_manual_key(c: LabCluster, args: argparse.Namespace, macs: Sequence[str]) -> None:
    """One stderr warning when phones given a manual config key are of a model that has none (spec §C.5:
    the manual key is the symmetric-only models'; a cp-8861 decrypts with its certificate): the lab then
    serves them only a ``.enc.sgn`` they cannot read, and they boot on the default config."""
    _warn_unable(c, args, macs, lambda p: bool(p.symmetric_key_bits), (
        "has no manual config key (its configs are encrypted for its certificate): it will find no config it "
        "can read and take the default config; use --encrypt pki (lab encryption ... --mode pki), or a model "
        "with one (--model 7942, 7962)"))


def _warn_no_pki_decryption(c: LabCluster, args: argparse.Namespace, macs: Sequence[str]) -> None:
    """One stderr warning when phones whose configs are encrypted for their certificate are of a model that
    cannot decrypt them (a profile not ``pki_capable``: the cp-7942-symmetric reads only configs encrypted
    with its manual key, spec §C.4, §C.5). A warning, not a refusal: the lab may rehearse the phone taking
    the default config."""
    _warn_unable(c, args, macs, lambda p: p.pki_capable, (
        "cannot decrypt a config encrypted for its certificate (its only config encryption is the manual "
        "key, spec §C.5): it will find no config it can read and take the default config; use --encrypt "
        "symmetric --symmetric-key HEX (lab encryption ... --mode symmetric)"))


def _warn_unable(c: LabCluster, args: argparse.Namespace, macs: Sequence[str],
                 can: Callable[[PhoneProfile], bool], why: str) -> None:
    """One stderr warning naming the first of ``macs`` whose model's profile ``can`` not do what its configs
    need, how many more, and ``why`` (a model without a profile here is not judged)."""
    from phoneemu.phone.profile import get_profile
    from phoneemu.scenario.phone_models import profile_for_model

    unable: list[tuple[str, str]] = []
    for mac in macs:
        ph = c.state.phones.get(mac)
        name = profile_for_model(ph.model) if ph is not None else None
        if ph is not None and name is not None and not can(get_profile(name)):
            unable.append((mac, f"model {ph.model} ({name})"))
    if unable:
        mac, what = unable[0]
        more = f" and {len(unable) - 1} more" if len(unable) > 1 else ""
        say(args, f"warning: phone {mac}{more}: {what} {why}")


def _note_key_unused(c: LabCluster, args: argparse.Namespace, macs: Sequence[str]) -> None:
    """One stderr note when ``--symmetric-key`` is given without ``--encrypt`` to phones whose configs are
    not encrypted with it: the key is stored (a later ``lab encryption ... on --mode symmetric`` takes it),
    not used now."""
    unused = [mac for mac in macs if (ph := c.state.phones.get(mac)) is not None and ph.manual_key() is None]
    if unused:
        more = f" and {len(unused) - 1} more" if len(unused) > 1 else ""
        say(args, f"note: phone {unused[0]}{more}: --symmetric-key stored, not used: the config is not "
                  f"encrypted with it until lab encryption {c.root} --mac {unused[0]} on --mode symmetric "
                  "(or --encrypt symmetric here)")


def _exchange(c: LabCluster, a: argparse.Namespace, now: int | None) -> str:
    """Say what each TVS now answers for the other's certificates: the roles each ends with, an earlier
    import's kept (roles merge, ``LabCluster._import_trust``; was: the store's roles, "roles TFTP" for a
    certificate TVS answers SAST and TFTP for)."""
    from phoneemu.lab.cluster import LabCluster

    c.exchange_certificates(a.other, store=a.store, now=now)
    peer = LabCluster.open(a.other)

    def who(x: LabCluster) -> str:  # two labs of one name (both "lab" by default): their folders say which
        return x.state.name if c.state.name != peer.state.name else f"{x.state.name} ({x.root})"
    for x in (c, peer):
        if x.state.rollback and x.state.ctl_exists:
            say(a, f"note: {who(x)} serves the rollback ITL and a CTL: its phones holding the CTL and that "
                   "ITL have no TVS to ask (its TVS record blanked, spec B.7, G.3 note): they ask its TVS, "
                   "which this exchange taught, once they take its full ITL again (phoneemu lab rollback "
                   f"{shlex.quote(str(x.root))} off, then reset them)")
    return (f"TVS of {who(c)} now vouches for {who(peer)}'s {_vouched(c, peer, a.store)}; TVS of "
            f"{who(peer)} for {who(c)}'s {_vouched(peer, c, a.store)} — a snapshot: "
            "a certificate regenerated later needs another exchange")


def _vouched(me: LabCluster, peer: LabCluster, store: str) -> str:
    """``peer``'s exported certificates by common name, grouped by the roles ``me``'s TVS answers for
    each (``CN1, CN2 (roles SAST, TFTP)``); roles beyond ``store``'s are said to come from an earlier
    import."""
    from phoneemu.crypto.certs import cert_der, dn_common_name, dn_text
    from phoneemu.formats.trustlist import Role
    from phoneemu.lab.cluster import EXCHANGE_STORES

    def name(code: int) -> str:
        return Role(code).name if code in Role._value2member_map_ else str(code)

    wanted = {int(r) for r in EXCHANGE_STORES[store]}
    groups: dict[tuple[int, ...], list[str]] = {}
    for cert in peer.exported_certs():
        entry = me.tvs_lookup(cert_der(cert))
        roles = tuple(sorted(set(entry.roles))) if entry is not None else ()
        groups.setdefault(roles, []).append(dn_common_name(dn_text(cert.subject)))
    out = []
    for roles, cns in groups.items():
        said = ", ".join(name(r) for r in roles) or "none"
        earlier = [name(r) for r in roles if r not in wanted]
        if earlier:
            said += f": {', '.join(earlier)} from an earlier import"
        out.append(f"{', '.join(cns)} (roles {said})")
    return ", ".join(out)


def _service(c: LabCluster, a: argparse.Namespace, now: int | None) -> str:
    """Record the service's wanted state in the cluster; this command cannot tell whether a ``lab serve``
    runs, so it says what one does (follows within a second, or starts that way) rather than claim it."""
    c.set_service(a.service, a.action == "start", now=now)
    stopped = ", ".join(c.state.stopped) or "none"
    done = "started" if a.action == "start" else "stopped"
    return (f"{a.service}: marked {done} in the cluster; a running 'lab serve' follows within a second, "
            f"one started later too (stopped now: {stopped})")


def _phone_count(text: str) -> int:
    n = int(text) if text.isascii() and text.isdigit() else 0
    if not 1 <= n <= 100_000:
        raise argparse.ArgumentTypeError(f"{text!r}: a number of phones, 1..100000")
    return n


def _consecutive(mac: str, count: int) -> list[str]:
    """``count`` consecutive MACs from ``mac``, numbered as ``fleet boot --mac-start`` numbers them."""
    from phoneemu.fleet.engine import mac_range, mac_text, parse_mac

    try:
        return [mac_text(m) for m in mac_range(parse_mac(mac), count)]
    except EncodeError as exc:
        raise EncodeError(f"--mac {mac} --count {count}: {exc.message}", path="mac") from None


def _mac_options(p: argparse.ArgumentParser, *, required: bool = True,
                 what: str = "phone MAC (repeatable)") -> None:
    """``--mac`` (repeatable) and ``--count N``: the phones of a per-phone operation (:func:`_macs`)."""
    p.add_argument("--mac", required=required, action="append", default=None if required else [],
                   type=mac_option, help=what)
    p.add_argument("--count", type=_phone_count, default=1, metavar="N",
                   help="N phones with consecutive MACs from one --mac, as lab phone add --count and fleet "
                   "boot --mac-start number them (default 1)")


def _calling_search_space(c: LabCluster, a: argparse.Namespace, now: int | None) -> str:
    """``lab calling-search-space``: the phones' partition and calling search space (``--css A,B``; '':
    none); says what the phones now have."""
    css = None if a.css is None else [n.strip() for n in a.css.split(",")] if a.css.strip() else []
    macs = _macs(a)
    from phoneemu.formats.config import normalise_mac
    from phoneemu.lab.dial_plan import NONE_PARTITION, css_problem, describe_css, partition_problem

    if a.partition is None and css is None:
        raise EncodeError("give --partition NAME, --css NAME,NAME or both", path="--partition")
    problem = None if a.partition is None else partition_problem(a.partition)
    if problem is not None:
        raise EncodeError(problem, path="--partition")
    found = None if css is None else css_problem(css)
    if found is not None:
        raise EncodeError(found[1] + ("" if found[0] is None else f" (name {found[0] + 1} of {a.css!r})"),
                          path="--css")
    c.set_calling_search_space(macs, partition=a.partition, css=css, now=now)

    plans = {c.dial_plan(normalise_mac(m)) for m in macs}
    lines = [f"partition {p.partition or NONE_PARTITION}, calling search space {describe_css(p.css)}"
             for p in plans if p is not None]
    who = f"phone {macs[0]}" if len(macs) == 1 else f"{len(macs)} phones"
    return f"{who}: " + ("; ".join(sorted(lines)) if len(lines) <= 3 else f"{len(lines)} dial plans")


def _macs(a: argparse.Namespace) -> list[str]:
    """The phones ``--mac`` names, or with ``--count N`` the N consecutive MACs from the one ``--mac``."""
    if a.count == 1:
        return list(a.mac)
    if len(a.mac) != 1:
        raise PhoneEmuError(f"--count {a.count} takes exactly one --mac (the first of {a.count} consecutive "
                            f"MACs), got {len(a.mac)}", path="count")
    return _consecutive(a.mac[0], a.count)


def _mic_progress(args: argparse.Namespace, every: float = 5.0) -> Callable[[int, int], None]:
    """``N/M MICs issued, R/s, about S s left`` on stderr every ``every`` seconds, and when the last
    MIC is issued (then the served files are built: one signed config per phone): a line each time
    (not redrawn), said by the command as typed."""
    start = last = time.monotonic()

    def tell(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < every and done != total:
            return
        last = now
        rate = done / max(now - start, 1e-9)
        left = (total - done) / rate if rate else 0.0
        tail = f", about {left:.0f} s left" if done != total else "; building the served files..."
        say(args, f"{done}/{total} MICs issued, {rate:.0f}/s{tail}")
    return tell


def _phone_add(c: LabCluster, a: argparse.Namespace, now: int | None) -> str:
    _require_auth_choice(a.capf, a.auth_mode, a.auth_string, option="--capf")
    if a.encrypt == "pki" and a.symmetric_key is not None:
        raise PhoneEmuError("--symmetric-key goes with --encrypt symmetric (--encrypt pki encrypts for the "
                            "phone's certificate)", path="symmetric-key")
    macs = _consecutive(a.mac, a.count)
    if len(macs) > 1:
        slower = " (seeded keys: slower)" if c.state.seed is not None else ""
        say(a, f"adding {len(macs)} phones, one MIC each{slower}...")
    c.add_phones(macs, model=a.model, encrypt=a.encrypt, symmetric_key=a.symmetric_key,
                 capf_operation=a.capf, capf_auth_mode=a.auth_mode, auth_string=a.auth_string,
                 lsc_key=a.lsc_key, now=now, progress=_mic_progress(a) if len(macs) > 1 else None)
    if a.encrypt == "symmetric":
        _warn_no_manual_key(c, a, macs)
    elif a.encrypt == "pki":
        _warn_no_pki_decryption(c, a, macs)
    elif a.symmetric_key is not None:
        _note_key_unused(c, a, macs)
    if len(macs) == 1:
        return (f"phone {macs[0]}: MIC in {c.phone_dir(macs[0])}/mic.pem (key mic.key, 0600)"
                + _encrypt_said(a.encrypt, f"config served as SEP{macs[0]}.cnf.xml.enc.sgn", "its"))
    return (f"{len(macs)} phones {macs[0]}..{macs[-1]}: MICs in {c.root}/phones/<MAC>/mic.pem "
            "(key mic.key, 0600)"
            + _encrypt_said(a.encrypt, "configs served as SEP<MAC>.cnf.xml.enc.sgn", "each one's"))


def _encrypt_said(encrypt: str | None, served: str, whose: str) -> str:
    """What ``lab phone add --encrypt`` did, said after the MIC as ``lab show`` words it (``encrypt pki``):
    ``served`` (the config served as ``SEP<MAC>.cnf.xml.enc.sgn``, spec §C.4, §C.5), encrypted for the phone's
    certificate or with its manual key; nothing without ``--encrypt`` (was: nothing said of it either)."""
    if encrypt is None:
        return ""
    key = f"for {whose} certificate" if encrypt == "pki" else f"with {whose} manual key"
    return f"; encrypt {encrypt}: {served}, encrypted {key}"


def _itlrecovery(c: LabCluster, a: argparse.Namespace, now: int | None) -> str:
    if a.action == "export":
        c.export_itlrecovery(a.file)
        return f"ITLRecovery certificate and key written to {a.file} (0600)"
    c.import_itlrecovery(a.file, now=now)
    return f"ITLRecovery replaced from {a.file}"


_PHONES_SHOWN = 20
"""``lab show`` lists the phones one by one up to this many; beyond, it counts them (``--phones``: all)."""


def _phone_lines(phones: dict[str, dict[str, Any]], *, every: bool, w: int) -> list[str]:
    """One line per phone, or for a large lab the first few and counts by model, encryption, pending
    CAPF operation and LSC (a 40,000-phone lab printed 40,000 lines)."""
    def line(mac: str, ph: dict[str, Any]) -> str:
        status = f", ITL File Status {ph['itl_file_status']}" if "itl_file_status" in ph else ""
        # what differs from a new phone's defaults: its security profile, its dial plan
        security = f", security {ph['security']}" if ph.get("security", "non-secure") != "non-secure" else ""
        partition = f", partition {ph['partition']}" if ph.get("partition") else ""
        css = f", css {','.join(ph['css'])}" if ph.get("css") else ""
        lsc = "no" if not ph["lsc"] else f"yes ({ph['lsc_problem']})" if ph.get("lsc_problem") else "yes"
        return (f"phone {mac}: model {ph['model']}{security}, encrypt {ph['encrypt'] or 'off'}, "
                f"capf {ph['capf'] or '-'}, LSC {lsc}{partition}{css}{status}")
    if every or len(phones) <= _PHONES_SHOWN:
        return [line(m, ph) for m, ph in phones.items()]

    def counts(field: str, none: str) -> str:
        c = Counter(str(ph[field] or none) for ph in phones.values())
        return ", ".join(f"{k} {v}" for k, v in c.most_common())
    macs = list(phones)
    out = [f"{'phones:':<{w}}{len(phones)} ({macs[0]}..{macs[-1]}); model {counts('model', '-')}; "
           f"encrypt {counts('encrypt', 'off')}; capf pending {counts('capf', 'none')}; "
           f"LSC {sum(1 for ph in phones.values() if ph['lsc'])}"
           + (f"; ITL File Status {counts('itl_file_status', 'Unknown')}"
              if any("itl_file_status" in ph for ph in phones.values()) else "")]
    out += [line(m, phones[m]) for m in macs[:_PHONES_SHOWN]]
    # "1 more phone" (was "1 more phones" for a lab of 21 phones)
    more = counted(len(phones) - _PHONES_SHOWN, "more phone")
    out.append(f"... and {more} (--phones lists every one; --json has them)")
    return out


def _itl_file_status(cluster: LabCluster, summary: dict[str, Any], args: argparse.Namespace) -> None:
    """Each phone's ITL File Status (spec §G.1: Match / MisMatch / Not Installed / Unknown) from what it
    reported at its last SIP registration with ``lab serve`` (:mod:`phoneemu.lab.registrations`); nothing
    when no phone ever registered (a problem reading the reports is said on stderr)."""
    from phoneemu.lab.registrations import itl_file_status, read_registrations

    reports, problem = read_registrations(cluster.root)
    if problem is not None:
        say(args, problem)
    if not reports:
        return
    current = cluster.checksums("ITL")
    for mac, ph in summary["phones"].items():
        itl, at = reports.get(mac, (None, None))
        ph["itl_file_status"] = itl_file_status(itl, current)
        if at is not None:
            ph["registered_at"] = at


def _show_json(cluster: LabCluster, summary: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """``lab show --json``: the summary, plus what --log, --files, --itl and --ctl ask for (the log
    whole, file sizes, the served trust lists decoded as ``inspect --json`` decodes them)."""
    from phoneemu.inspection import inspect_bytes

    doc = dict(summary)
    if args.log:
        doc["log"] = [{"time": e.time, "generation": e.generation, "op": e.op, "args": e.args}
                      for e in cluster.state.log]
    if args.files:
        doc["served_files"] = {name: len(data) for name, data in sorted(cluster.files().items())}
    for kind, wanted in (("ITL", args.itl), ("CTL", args.ctl)):
        if wanted:
            data = cluster.get(f"{kind}File.tlv")
            doc[f"{kind.lower()}_file"] = inspect_bytes(data, name=f"{kind}File.tlv") if data else None
    return doc


def _iso(unix: int) -> str:
    """A change log time, as a person reads it (UTC)."""
    import datetime as dt

    return dt.datetime.fromtimestamp(unix, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _brief(args: dict[str, Any], *, shown: int = 3) -> dict[str, Any]:
    """A change log entry's arguments for the text view: a long list (``lab capf --count 40000``'s MACs)
    as its first items and a count, consecutive MACs as a range (``--json`` has every one)."""
    out: dict[str, Any] = dict(args)
    for key, value in args.items():
        if isinstance(value, list) and len(value) > 2 * shown:
            ints = [int(v, 16) for v in value if isinstance(v, str) and len(v) == 12
                    and all(c in "0123456789ABCDEFabcdef" for c in v)]
            if len(ints) == len(value) and ints == list(range(ints[0], ints[0] + len(ints))):
                out[key] = f"{value[0]}..{value[-1]} ({len(value)})"
            else:
                out[key] = [*value[:shown], f"... {len(value) - shown} more"]
    return out


def _show(args: argparse.Namespace) -> int:
    """``lab show``: the lab is read under the lab lock, shared (:mod:`phoneemu.lab.lock`: an operation
    under way is waited for, said on stderr, never read half-changed), and printed after the lock is
    released (a reader of the output that is slow — a pager — holds up no operation)."""
    from phoneemu.lab.lock import hold_lab_lock

    with hold_lab_lock(args.dir, shared=True, on_wait=teller(command_of(args))):
        out = _show_text(args)
    print(out, end="")
    return 0


def _show_text(args: argparse.Namespace) -> str:
    """What ``lab show`` prints (read while the caller holds the lab lock)."""
    from phoneemu.crypto.certs import dn_common_name
    from phoneemu.lab.cluster import LabCluster

    cluster = LabCluster.open(args.dir)
    s = cluster.summary()
    _itl_file_status(cluster, s, args)
    listed = args.json or args.phones or len(s["phones"]) <= _PHONES_SHOWN
    for mac in list(s["phones"])[:None if listed else _PHONES_SHOWN]:  # the phones shown one by one
        ph = s["phones"][mac]
        if ph["lsc"]:  # an LSC CAPF and the registrar would refuse now says so (expired, old CAPF)
            ph["lsc_problem"] = cluster.lsc_problem(mac)
    if args.json:  # one JSON document, whatever else is asked (text after it would break jq)
        return json_doc.dumps(_show_json(cluster, s, args), indent=2, sort_keys=True) + "\n"  # json_doc rule
    lines: list[str] = []
    keys = ("name", "dir", "host", "seed", "nodes", "generation", "clock", "ports", "mixed_mode",
            "itl_signer", "ctl_signer", "rollback", "secure_urls", "extra_certs", "signature_algorithm",
            "upgraded", "itlrecovery_years", "itlrecovery_regenerate_years", "sbd",
            "autoregistration", "tvs_ttl", "load", "tvs_trust")
    w = max(len(k) for k in keys) + 2
    served = any(entry.op == "ports" for entry in cluster.state.log)  # the last one is kept (state rules)
    for key in keys:
        shown = ("none (random keys)" if key == "seed" and s[key] is None
                 else _ports_text(s[key], served=served) if key == "ports" else _value_text(s[key]))
        lines.append(f"{key + ':':<{w}}{shown}")
    if s["stopped"]:
        lines.append(f"{'stopped:':<{w}}{', '.join(s['stopped'])} (lab serve keeps them down: phoneemu lab "
                     f"service {args.dir} NAME start)")
    lines.append(f"{'certificates:':<{w}}(as Certificate Management lists them; UTC)")
    for name, cert in s["certificates"].items():
        cn = dn_common_name(cert["subject"])
        years = int(cert["not_after"][:4]) - int(cert["not_before"][:4])
        lines.append(f"  {name:<{w - 2}}{cn}  valid {cert['not_before'][:10]} .. {cert['not_after'][:10]} "
                     f"({years} years)  sha1 {cert['sha1']}")
    lines.append(f"{'ITL:':<{w}}{s['itl_length']} bytes  md5 {s['itl_md5']}  sha1 {s['itl_sha1']}")
    lines += _itl_size_lines(s["itl_length"], s["extra_certs"], shlex.quote(str(args.dir)), indent=" " * w)
    if s["ctl"]:
        lines.append(f"{'CTL:':<{w}}md5 {s['ctl_md5']}  sha1 {s['ctl_sha1']}")
    else:
        lines.append(f"{'CTL:':<{w}}none (not in mixed mode)")
    lines.append("\n".join(_phone_lines(s["phones"], every=args.phones, w=w)))
    if s["tampered"]:
        flipped = ", ".join(f"{name} byte {offset}" for name, offset in s["tampered"].items())
        lines.append(f"{'tampered:':<{w}}{flipped} (flipped until a cluster-wide operation rebuilds it)")
    if args.files:
        for name, data in sorted(cluster.files().items()):
            lines.append(f"{len(data):>8}  {name}")
    if args.log:
        for e in cluster.state.log:
            brief = json.dumps(_brief(e.args), sort_keys=True)
            lines.append(f"{_iso(e.time)}  gen {e.generation:<4} {e.op} {brief}")
    text = "".join(f"{line}\n" for line in lines)
    if args.itl:
        text += cluster.show_itl()
    if args.ctl:
        text += cluster.show_ctl()
    return text


def _value_text(value: object) -> str:
    """A ``lab show`` value as its other lines say it: a setting ``on``/``off`` (as the operation that
    changes it takes it: ``lab mixed-mode DIR on``), nothing as ``none`` (was Python's ``True``,
    ``None``)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return "none" if value is None else str(value)


def _ports_text(ports: dict[str, int], *, served: bool) -> str:
    """``lab show``'s ports: each service and its port, the real CUCM services first in lab serve's order
    (``tftp 6969, http 6970, tvs 2445, capf 3804, sip 5060``), and whose ports they are — where a lab serve
    of the lab last listened (it records them when it starts: ``boot --lab DIR`` goes there) or the real
    ones (spec §H.1) of a lab never served. Was the Python dict, ``{'capf': 3804, 'http': 6970, ...}``."""
    from phoneemu.lab.defaults import DEFAULT_PORTS

    order = [*(name for name in DEFAULT_PORTS if name in ports), *sorted(set(ports) - set(DEFAULT_PORTS))]
    whose = ("where lab serve last listened: the ports it recorded" if served
             else "the real CUCM ports: no lab serve has recorded its own")
    return ", ".join(f"{name} {ports[name]}" for name in order) + f" ({whose})"


def _register_serve(ops: Any) -> None:
    """``lab serve`` comes from :mod:`phoneemu.commands.lab_serve` (the servers' own module) when present."""
    try:
        module = importlib.import_module("phoneemu.commands.lab_serve")
    except ModuleNotFoundError as exc:
        if exc.name != "phoneemu.commands.lab_serve":
            raise
        return
    module.register_serve(ops)
