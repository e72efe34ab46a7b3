"""The documented ways out of a lockout, by the rule that decided it (seed chapter, spec §G.6, §G.7).

A phone that rejected a trust list stays locked (spec §G.3.5) until one of the procedures of the seed
chapter makes it accept one again. ``boot``, ``predict``, ``fleet boot``, ``replay --all`` and
``phone show`` say them under a lockout, each with the situation it fits, the procedure on a real
cluster, the same in the lab, and the catalogue scenario that rehearses it — the question after
"3,000 phones would lock out" is "and then?".

Which procedure fits is a matter of the situation, which a phone cannot see (moved to another cluster,
or a certificate regenerated on its own): every way out names the situation it is for (``when``). The
choice of ways per rule is ours, from the seed chapter and the scenarios that reproduce it:

* a new signer TVS does not know (§G.6 problem 3): bulk certificate export (migration); rollback ITL
  on the old cluster before the move; ``utils itl reset`` on the same cluster; deleting the ITL by hand;
* TVS unreachable (§G.6 problem 2, an outage, or TVS moved away from the address the phone's config
  names): TVS back there; itl reset; rollback; deleting the ITL (a bulk export does not help while the
  old TVS cannot be reached). The rollback is a migration's way (spec §G.6: Prepare Cluster for Rollback
  on the old cluster, the phones reset there before the move): on the phones' own cluster (its ITLRecovery
  or TVS certificate regenerated, ``lab regenerate DIR itlrecovery``) the rollback ITL has the signer they
  refuse and they lock out again, so under this rule and ``-tvs-server-untrusted``, which lock phones out
  on their own cluster too, it comes after the itl reset, and its situation says it is not for their own
  cluster (was: second, before the reset that works there);
* TVS not asked because the QUERY does not fit its frame (reason code ``too-large``, spec §E.2: the
  ``-tvs-unreachable`` rule carries it, ``decide_with_tvs`` of :mod:`phoneemu.phone.boot`): shorter names
  (the signer's subject and issuer, or the model in the phone's device name, §E.4: the reason gives their
  lengths), then the rule's ways that need no TVS answer — TVS back, or a bulk export, does not help;
* the rollback ITL (rollback, central TFTP, pre-8.0 cluster) helps only phones without a CTL: it does
  not blank a CTL (spec §G.3 note), a new ITL is authenticated with the CTL (§G.3 step 2) and configs
  are checked against it (our rules ``G.3.6``, ``G.4-empty-itl-*``);
* a CTL (mixed mode) is not blanked by the rollback ITL (spec §G.3 note): ``utils ctl reset localkey``;
* a new CTL refused by phones holding an ITL and no CTL (a cluster put in mixed mode, or one they moved
  to; where the lists held are known: :func:`_for_held`): the rollback ITL on the cluster they left, whose
  empty ITL lets them take the new CTL on first use (spec §G.2, §G.6; was not offered, though it works),
  and the CTL reset only for their own cluster, its CallManager key a SAST record of the ITL they hold
  (§G.3 step 3; was labelled for phones holding a CTL, "the rollback ITL does not blank a CTL");
* a CTL (mixed mode) moved to another secure cluster: the bulk certificate export (spec §G.6: required
  between secure clusters; the old TVS must vouch for the new CTL signer, §G.3 note);
* an ITL refused by phones whose lists lack the certificate the bulk ITL reset is signed with (its
  cluster's CallManager one, the refused ITL's CCM+TFTP record: regenerated since they took an ITL, or a
  cluster they moved to; :func:`itl_reset_signer_held`, ``BootReport.held``): no bulk ITL reset, which they
  would refuse too (was: first under the TVS rules, and again after it was followed);
* a CTL refused by phones whose lists lack the certificate the CTL reset is signed with (its cluster's
  publisher CallManager one, the refused CTL's SAST record that is a CCM+TFTP record too: regenerated since
  they took a CTL, or a cluster they moved to; :func:`ctl_reset_signer_held`, ``BootReport.held``): no CTL
  reset (``lab ctl-reset``), which they would refuse too (was: offered first, and again after it was
  followed, while ``lab ctl-reset`` warned that it does not help);
* a CTL and the rollback ITL (the phone's lists, where known: :func:`held_lists`, ``BootReport.held``),
  moved: no TVS to ask (§B.7), so first back to the old cluster's full ITL — rollback off there, a reset —
  then the bulk export and the move (:func:`_for_held`); the lists held choose only among the ways of a
  signer no list or TVS vouches for (:data:`_SIGNER_RULES`), not those of a file's own fault (too large,
  a hash the model lacks, expired, a bad signature);
* TVS knows the signer in a role that may not sign the file (``-tvs-wrong-role``), or presents a
  certificate the phone's ITL does not hold (``-tvs-server-untrusted``): the ways that need no TVS
  answer, as for an unknown signer with TVS not usable. Not the bulk export under ``G.3.4-tvs-wrong-role``:
  it is the escape for an old TVS without the new certificates (spec §G.6 problem 3), and this TVS has the
  signer already; the sources give roles by trust store only by example (spec §E.6: an eToken certificate
  in Phone-SAST-trust gets SAST; that a trust list's signer must come back as SAST is [INF], §E.7.4) and say
  neither which store gives a certificate a role without SAST nor that importing it again changes the role
  TVS answers; the seed chapter has no bulk export at all;
* an ITL above the phone's limit: fewer certificates; an expired signer: a regenerated one (a config's:
  the CallManager certificate, which the ITL brings); files signed with a hash the model cannot verify:
  SHA-1 signing again (spec §A.4);
* a bad signature from a trusted signer (a file changed after it was signed): the file signed again;
* not a lockout — the phone boots, it does not register (kind ``sip``): a registrar certificate its CTL
  lacks (§G.5: the CallManager certificate regenerated, the CTL not updated or the phone not reset): the
  CTL updated and the phone reset; its LSC refused by the registrar (§F.9: the CAPF certificate
  regenerated): a new LSC from the current CAPF;
* not a lockout — the call carries RTP or no media (kind ``media``, §G.14): a security profile that is not
  Encrypted: set it; encrypted mode signalling over TCP (no CTL): mixed mode; SRTP whose tags fail (the
  media changed on the path): find what changes it.

Some lockouts have no way out on purpose (:data:`NO_WAY_OUT`, each with why): no procedure of the seed
or spec addresses them (a damaged file, a key the model cannot use), or the rule never decides a boot.
``boot`` and ``phone show`` say so under such a lockout, with why (:func:`no_way_out_lines`;
``no_way_out`` in their JSON, null where there are ways out); a fleet's summary gives such a group its
entry too, with why and no ways (:func:`ways_out_doc`, :func:`ways_out_text`).

Lab commands are written with ``DIR`` (the cluster), ``OLD``/``NEW`` (two clusters) and ``FLASH``
(an emulated phone's flash) for the user to fill in; tests parse each one with the real CLI. Phones
pointed at a cluster that is not a lab (``boot`` / ``fleet boot --tftp`` without ``--lab``: ``fill``
carries :data:`NOT_A_LAB`, the cluster's address) are told no lab command — a user with no lab folder
could not run ``phoneemu lab itl-reset DIR ...``, and its ``boot --lab DIR --flash <their flash>`` step
named a lab they do not have: the procedure (in CUCM's terms), the phoneemu command where it needs no lab,
labelled by what it acts on (the emulated phones: ``phone erase --flash``; the refused file: ``inspect
FILE``), and the scenario that rehearses it in a lab; ``phone erase`` of phones booted without ``--flash``
(:data:`FLASH_NOT_KEPT`) says there is nothing to erase and how to keep their flash, and a reset's boot
on that flash (``boot --flash FLASH`` between ``lab itl-reset`` and ``lab restart-tftp``) is written
without ``--flash``, saying why (was ``--flash FLASH`` left in a fleet's JUnit). Where many
phones are locked (``fleet boot``, ``predict`` and ``phone show`` of a fleet, ``replay --all``) a way
out done phone by phone is written for all of them: ``--fleet-flash FLEET`` (``fleet_lab``), FLEET filled
in with the phones' flash folder where the command knows it (``fleet boot --flash``, ``phone show
--fleet-flash``, ``predict --fleet-flash``, ``replay --all --export-flash`` or ``--fleet-flash``). A
placeholder a fleet's text leaves is said once under its ways, what it stands for and why it is left
(:func:`placeholder_lines`: ``DIR: the lab folder (not known to predict)``; ``phone show --fleet-flash``
without ``--cluster``: ``--cluster DIR fills it``); ``predict`` fills ``DIR`` and ``NEW`` when its new files
are a lab's served folder or files in it (``LAB/tftp``), ``boot --lab`` ``NEW`` as ``DIR``. Bringing TVS back
is for the TVS the phones could not reach, the one their installed config names: ``DIR`` only when that is
the filled lab's own (:func:`tvs_back_fill`, :data:`TVS_ELSEWHERE`), or with no lab folder known (``phone
show``, ``replay``: DIR "the lab serving" the address the phones booted against) one at that address, else
``OLD`` (a migration's phones name the TVS of the cluster they left; was ``lab service NEW tvs start`` while
NEW's TVS ran, and ``phone show`` and ``replay`` did not check). One phone's
ways (``boot``, ``phone show``) say theirs the same way, once under them (:func:`phone_placeholders_left`,
:func:`legend_lines`; was ``OLD`` and ``DIR`` left bare, with no legend).
There the lockouts are grouped by rule and kind, and by reason code where it chooses other ways
(:func:`ways_key`: a QUERY too large is not told to bring TVS back in a fleet's summary either), and by
the lists the phones hold where they choose other ways (:func:`ways_group`: phones holding a CTL are not
told the ways through the rollback ITL, those holding the rollback ITL too are told the way back from it,
while the phones of the same rule without a CTL are told the rule's own, each group its ways; was: one
group by rule, kind and code, every phone told ``lab rollback ... on``).
"""

from __future__ import annotations

import functools
import itertools
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from phoneemu.errors import VerifyReason

if TYPE_CHECKING:
    from phoneemu.formats.trustlist import TrustList
    from phoneemu.phone.profile import PhoneProfile
    from phoneemu.phone.store import TrustStore

__all__ = ["CUCM_SERVICEABILITY", "CUCM_TVS_SERVICE", "FLASH_NOT_KEPT", "FLASH_STARTS_HOLDING", "NOT_A_LAB",
           "NO_WAY_OUT", "PLACEHOLDERS", "TVS_ELSEWHERE", "WAYS_BY_KIND", "HeldLists", "WayOut",
           "WaysGroup", "ctl_reset_signer_held", "held_lists", "itl_reset_signer_held", "legend_lines",
           "no_way_out", "no_way_out_lines", "phone_placeholders_left", "placeholder_lines", "tvs_back_fill",
           "way_out_lines", "ways_doc_said", "ways_group", "ways_group_of", "ways_json_said", "ways_key",
           "ways_out", "ways_out_doc", "ways_out_doc_run", "ways_out_json", "ways_out_text"]

#: CUCM's name of the service that answers the phones' TVS queries (seed: Trust Verification Service), in
#: bringing TVS back (:data:`_TVS_BACK`) and in ``tvs``'s hint of a TVS port nothing listens on: one text
CUCM_TVS_SERVICE = "the Cisco Trust Verification Service"
#: where a CUCM node's services (TVS, TFTP) are activated and started: said with :data:`CUCM_TVS_SERVICE`,
#: and in ``boot``'s hint of a TFTP server nothing answered at
CUCM_SERVICEABILITY = "Cisco Unified Serviceability"


@dataclass(frozen=True)
class WayOut:
    """One documented way out: for which situation, what to do, the lab command, the scenario (empty:
    none rehearses it); and the lab command for a fleet of emulated phones where it is another
    (``fleet_lab``)."""

    when: str
    action: str
    lab: str
    scenario: str
    fleet_lab: str = ""

    def command(self, *, fleet: bool) -> str:
        """The lab command for one phone, or with ``fleet`` for many."""
        return (self.fleet_lab or self.lab) if fleet else self.lab

    def needs_a_lab(self, *, fleet: bool) -> bool:
        """Whether :meth:`command` runs a lab operation or boots against a lab (``--lab``): of no use
        against a cluster that is not one (:data:`NOT_A_LAB`)."""
        words = _words(self.command(fleet=fleet))
        return "--lab" in words or any(pair == ("phoneemu", "lab") for pair in itertools.pairwise(words))


#: the ``fill`` key of :func:`way_out_lines` / :func:`ways_out_text` saying that the phones were pointed at
#: a cluster that is not a lab (``--tftp`` without ``--lab``), its address the value: no lab command then
#: (module doc), the procedure, a command on the emulated phones themselves, and the rehearsal
NOT_A_LAB = "NOT-A-LAB"


#: the ``fill`` key of :func:`way_out_lines` / :func:`ways_out_text` saying that the phones' flash was not
#: kept (booted without ``--flash``: a temporary folder, or memory only, each run starting from an empty
#: one), the command that boots them the value (``phoneemu boot``): ``phone erase`` of their flash cannot
#: be run then, so the line says so and how to keep it instead; a boot on it is one without ``--flash``
FLASH_NOT_KEPT = "FLASH-NOT-KEPT"

#: the ``fill`` key of :func:`way_out_lines` / :func:`ways_out_text` saying that the phones whose flash was
#: not kept (:data:`FLASH_NOT_KEPT`) start each run holding what options give them, those options as given the
#: value (``fleet boot --installed-itl F --installed-config-dir D``): not from an empty flash, so the line
#: of ``phone erase`` says so, and that a run without them is the phones erased (was "each run starts from
#: an empty one", untrue of them)
FLASH_STARTS_HOLDING = "FLASH-STARTS-HOLDING"

#: the ``fill`` key of :func:`way_out_lines` / :func:`ways_out_text` saying that the TVS servers the locked
#: phones could not reach (those their installed config names) are not the filled lab's (``DIR``) own, the
#: addresses they named the value (:func:`tvs_back_fill`): bringing TVS back is then written for ``OLD``,
#: the cluster they left, filled where known, else said under the ways (was ``lab service DIR tvs start``,
#: DIR the lab booted against, whose TVS ran)
TVS_ELSEWHERE = "TVS-ELSEWHERE"

#: what each placeholder of the lab commands stands for (module doc), in the order :func:`placeholder_lines`
#: says those a text leaves (tests: every placeholder word of the catalogue's commands is here)
PLACEHOLDERS: dict[str, str] = {
    "DIR": "the lab folder", "OLD": "the lab folder of the cluster the phones left",
    "NEW": "the lab folder of the cluster they moved to", "CENTRAL": "the lab folder of the central TFTP",
    "FLASH": "the phone's flash folder, as boot --flash keeps it",
    "FLEET": "the folder of the phones' flashes, as fleet boot --flash keeps them",
    "MAC": "the phone's MAC", "FIRST": "the first of the phones' consecutive MACs", "N": "how many phones",
    "FILE": "the refused file"}

#: what a command that needs no lab acts on, by its words after ``phoneemu``: the label said before it
#: against a cluster that is not a lab (tests: every such command of the catalogue has one)
_ACTS_ON: dict[tuple[str, ...], str] = {("phone", "erase"): "on the emulated phone",
                                        ("inspect",): "the refused file"}


#: how :func:`ways_out_doc` is given its groups: (rule, kind), :func:`ways_key`'s (rule, kind, code) or
#: :func:`ways_group`'s (rule, kind, code, the lists held)
_GroupKey = TypeVar("_GroupKey", tuple[str, str], tuple[str, str, str | None],
                    tuple[str, str, str | None, "HeldLists | None"])

#: what a way through the rollback (empty) ITL adds: it does not help a phone holding a CTL (module doc)
_NOT_WITH_A_CTL = " — not on phones holding a CTL, which it does not blank (spec §G.3 note)"

_EXPORT = WayOut(
    "moved to another cluster whose TVS they can reach",
    "bulk certificate export between the clusters (imported into CallManager-trust and Phone-SAST-trust), "
    "then restart TVS on the old one: it vouches for the new signer (spec §G.6; the seed's Migrate IP Phones "
    "Between Clusters names the problem, problem 3, not this procedure)",
    "phoneemu lab exchange OLD NEW && phoneemu lab restart-tvs OLD", "migration-old-tvs-unaware")
_ROLLBACK = WayOut(
    "moving away from a cluster that still serves them",
    "Prepare Cluster for Rollback to pre-8.0 on the old cluster and reset the phones there first: the "
    f"empty ITL accepts any new ITL{_NOT_WITH_A_CTL} (seed: Migrate IP Phones Between Clusters)",
    "phoneemu lab rollback OLD on", "rollback-empty-itl-escape")
#: the rollback under the TVS rules that lock phones out on their own cluster too (module doc): a migration's
#: way only, said so (under the config rules the rollback's empty ITL does let the phones take an unsigned
#: config, G.4-empty-itl-accepts-unsigned: not said there)
_ROLLBACK_MIGRATION_ONLY = replace(
    _ROLLBACK, when="a migration, moving away from a cluster that still serves them; not a lockout on "
    "their own cluster, whose rollback ITL has the signer they refuse")
_ITL_RESET = WayOut(
    "their own cluster, its ITLRecovery or TVS certificate regenerated",
    "utils itl reset localkey (or remotekey with the exported ITLRecovery.p12), reset the phones, then "
    "restart TFTP: the ITL signed by the CallManager key they trust brings the new certificates "
    "(seed: Perform Bulk Reset of ITL File)",
    # the phones boot between the two: restarting TFTP first serves the ITLRecovery-signed ITL again
    "phoneemu lab itl-reset DIR localkey && phoneemu boot --lab DIR --flash FLASH && "
    "phoneemu lab restart-tftp DIR", "bulk-itl-reset-localkey",
    fleet_lab="phoneemu lab itl-reset DIR localkey && phoneemu fleet boot --lab DIR --flash FLEET && "
    "phoneemu lab restart-tftp DIR")
_DELETE = WayOut(
    "any situation; the last resort, phone by phone",
    "erase the CTL and ITL on each phone (Settings > Security > Trust List; or a factory reset): it then "
    "trusts the next trust list on first use (seed: Migrate IP Phones Between Clusters; spec §G.6)",
    "phoneemu phone erase --flash FLASH", "migration-manual-itl-delete",
    fleet_lab="phoneemu phone erase --fleet-flash FLEET")
_TVS_BACK = WayOut(
    "a TVS outage, or TVS moved",
    f"bring TVS back where the phones' config names it: start {CUCM_TVS_SERVICE} on that node "
    f"({CUCM_SERVICEABILITY}) — their last accepted config lists the TVS servers they ask; a TVS "
    "moved to another address is unreachable to them — and the phones take the file they "
    "refused at their next reset, TVS vouching for its signer (seed: Trust Verification Service)",
    "phoneemu lab service DIR tvs start", "tvs-outage")
#: :data:`_TVS_BACK` where the TVS the phones named is not the filled lab's (:data:`TVS_ELSEWHERE`)
_TVS_BACK_ELSEWHERE = replace(_TVS_BACK, lab="phoneemu lab service OLD tvs start")
_CTL_RESET = WayOut(
    "mixed mode, their own cluster (the rollback ITL does not blank a CTL)",
    "utils ctl reset localkey, reset the phones, then utils ctl update CTLFile: the CTL signed by the "
    "CallManager key, a SAST record of theirs, brings the new certificates (seed: Reset CTL Localkey)",
    # the phones boot between the two: updating the CTL first serves the SAST-signed CTL they refuse again
    "phoneemu lab ctl-reset DIR localkey && phoneemu boot --lab DIR --flash FLASH && "
    "phoneemu lab ctl-update DIR", "ctl-reset-locked-phones",
    fleet_lab="phoneemu lab ctl-reset DIR localkey && phoneemu fleet boot --lab DIR --flash FLEET && "
    "phoneemu lab ctl-update DIR")
#: :data:`_CTL_RESET` for phones holding an ITL and no CTL (:func:`_for_held`): it helps on their own cluster
#: only, the reset CTL signed by its CallManager key, a SAST record of the ITL they hold (spec §G.3 step 3)
_CTL_RESET_ITL_HELD = replace(
    _CTL_RESET,
    when="mixed mode on their own cluster, whose ITL they hold (no CTL); not a cluster they moved to, whose "
    "CallManager key their ITL does not hold",
    action="utils ctl reset localkey, reset the phones, then utils ctl update CTLFile: the CTL signed by the "
    "CallManager key, a SAST record of the ITL they hold, brings the new certificates (seed: Reset CTL "
    "Localkey)")
_FEWER_CERTS = WayOut(
    "an ITL above the phone's limit (64 KiB)",
    "remove certificates from the ITL (the extra TVS/application certificates) until it fits (seed: "
    "Interactions and Restrictions: more than 39 certificates exceed 64 kilobytes)",
    "phoneemu lab remove-certs DIR", "itl-over-64k-fails")
_REGENERATE = WayOut(
    "an expired signer (ITLRecovery of an upgraded cluster: 5 years)",
    "regenerate the certificate (ITLRecovery: the new one lasts 20 years); TVS vouches for the new "
    "signer (seed: View the Validity Period of ITLRecovery Certificate)",
    "phoneemu lab regenerate DIR itlrecovery", "itlrecovery-expiry")
_RENEW_CALLMANAGER = WayOut(
    "an expired config signer (the CallManager certificate of the TFTP server signs the configs)",
    "regenerate the CallManager certificate and reset the phones: the ITL, signed by the ITLRecovery key "
    "they trust, brings the new one in its CCM+TFTP record (seed: Initial Trust List); in mixed mode the CTL "
    "must list it too, updated to the phones (seed: Certificate Management Changes for ITLRecovery "
    "Certificate)",
    "phoneemu lab regenerate DIR callmanager", "callmanager-expiry")
_SHA1_SIGNING = WayOut(
    "files signed with a hash the phone model cannot verify (TFTP File Signature Algorithm SHA-512 on a "
    "SHA-1-only model)",
    "set the enterprise parameter TFTP File Signature Algorithm back to SHA-1, its default, and reset the "
    "phones: the files are signed again with a hash they verify (spec §A.4: phones that do not support "
    "SHA-512 stop working)",
    "phoneemu lab signature-algorithm DIR sha1", "signature-algorithm-sha1-again")
_CENTRAL = WayOut(
    "files from a central (proxy) TFTP signed by another cluster",
    "Prepare Cluster for Rollback on the central TFTP: its empty ITL disables the signature check of "
    f"the home configs{_NOT_WITH_A_CTL} (seed: Update ITL File for Cisco Unified IP Phones)",
    "phoneemu lab rollback CENTRAL on", "centralized-tftp-caveat")
_PRE_8 = WayOut(
    "moved to a pre-8.0 cluster (unsigned configs only)",
    "Prepare Cluster for Rollback on the old cluster and reset the phones there before the move: the "
    f"empty ITL accepts unsigned configs{_NOT_WITH_A_CTL} (seed: Roll Back Cluster to a Pre-8.0 Release)",
    "phoneemu lab rollback OLD on", "migration-pre-8-cluster")

#: the way out of the rollback ITL for phones holding a CTL (:func:`ways_out` with ``held``): it blanks no
#: CTL (spec §G.3 note), so their CTL still checks every new list and config, and the empty ITL leaves them
#: no TFTP record or TVS to check a config the CTL does not vouch for (a non-secure CTL, §B.7)
_ROLLBACK_OFF = WayOut(
    "phones holding a CTL and the rollback ITL (Prepare Cluster for Rollback on where they took it; it "
    "does not blank a CTL: spec §G.3 note)",
    "set Prepare Cluster for Rollback to pre-8.0 back to False on that cluster and reset the phones: they "
    "take its full ITL again, signed by a SAST record of their CTL, and check configs with its TFTP record "
    "(seed: Migrate IP Phones Between Clusters, \"disable ... to restore Security By Default\"; Switch Back "
    "to Release 8.6 or Later After Revert)",
    "phoneemu lab rollback DIR off", "rollback-switch-back")
#: the way out of a phone holding a CTL and the rollback ITL that refused a trust list (moved to another
#: cluster): the rollback ITL leaves it no TVS to ask (its TVS record blanked, spec §B.7) and its CTL checks
#: every new list (§G.3 note), so the bulk export helps only once it holds its old cluster's full ITL again
_BACK_FROM_ROLLBACK = WayOut(
    "phones holding a CTL and the rollback ITL, moved to another cluster (Prepare Cluster for Rollback was "
    "on where they took it: it does not blank a CTL, spec §G.3 note, and leaves them no TVS to ask)",
    "point them back at the old cluster, set Prepare Cluster for Rollback to pre-8.0 back to False there and "
    "reset them: they take its full ITL again, signed by a SAST record of their CTL, and its TVS; then the "
    "bulk certificate export between the clusters, TVS restarted on the old one, and move them again: the "
    "old TVS vouches for the new cluster's signer (seed: Migrate IP Phones Between Clusters, \"disable ... "
    "to restore Security By Default\"; spec §G.3 note, §G.6: required between secure clusters)",
    "phoneemu lab rollback OLD off && phoneemu boot --lab OLD --flash FLASH && phoneemu lab exchange OLD NEW "
    "&& phoneemu lab restart-tvs OLD && phoneemu boot --lab NEW --flash FLASH", "migration-ctl-rollback-back",
    fleet_lab="phoneemu lab rollback OLD off && phoneemu fleet boot --lab OLD --flash FLEET && phoneemu lab "
    "exchange OLD NEW && phoneemu lab restart-tvs OLD && phoneemu fleet boot --lab NEW --flash FLEET")

_RESIGNED = WayOut(
    "a file changed on its way or on the TFTP server (the signer is trusted, the signature fails)",
    "serve the file as the cluster signs it: restart the TFTP service (it builds and signs the files "
    "again) and find what changed it (seed: File Authentication)",
    "phoneemu lab restart-tftp DIR", "tampered-config-rejected")

_RESET_PHONE = WayOut(
    "the CallManager certificate regenerated in mixed mode (the registrar presents one the phone's CTL "
    "lacks)",
    "make the CTL list it — utils ctl update CTLFile, TFTP restarted — and reset the phones: each fetches "
    "the new CTL (seed: Certificate Management Changes for ITLRecovery Certificate, tokenless CTL; a phone "
    "not reset since keeps the old CTL and refuses the registrar until it resets)",
    "phoneemu lab ctl-update DIR && phoneemu boot --lab DIR --flash FLASH --register",
    "sip-tls-callmanager-in-ctl",
    fleet_lab="phoneemu lab ctl-update DIR && phoneemu fleet boot --lab DIR --flash FLEET --register")
_NEW_LSC = WayOut(
    "the CAPF certificate regenerated (the phones' LSCs were issued by the old one)",
    "a CAPF install operation for the phones, then a reset: each gets an LSC from the current CAPF "
    "(or keep the old CAPF certificate in CallManager-trust until every phone has one; seed: Device "
    "Authentication)",
    "phoneemu lab capf DIR install --mac MAC --auth-mode null-string", "sip-tls-mutual-authentication",
    fleet_lab="phoneemu lab capf DIR install --mac FIRST --count N --auth-mode null-string")

_ENCRYPTED_PROFILE = WayOut(
    "the phone's security profile is Non Secure or Authenticated (media encryption needs encrypted "
    "signalling)",
    "set the device security mode of its phone security profile to Encrypted, the cluster in mixed mode, "
    "and reset the phone: it registers over TLS and offers SRTP keys of its own (seed: Media Encryption)",
    "phoneemu lab security-mode DIR --mac MAC encrypted", "media-encryption-needs-encrypted-signalling",
    fleet_lab="phoneemu lab security-mode DIR --mac FIRST --count N encrypted")
_MIXED_MODE = WayOut(
    "encrypted phones on a cluster not in mixed mode (no CallManager certificate in a CTL: they signal over "
    "TCP and send no keys)",
    "put the cluster in mixed mode (utils ctl set-cluster mixed-mode) and reset the phones: each fetches "
    "the CTL, registers over TLS and calls with SRTP (seed: Signaling Authentication, Media Encryption)",
    "phoneemu lab mixed-mode DIR on", "media-encryption-needs-encrypted-signalling")
_MEDIA_PATH = WayOut(
    "SRTP packets arrive whose authentication tag fails (changed on the path: an ALG, an SBC or an "
    "attacker rewriting media; the phone drops them, the call is silent)",
    "find and stop what changes the media between the endpoints; then call again and check that every "
    "packet authenticates (seed: AES 256 Support in SRTP SIP Call Signaling)",
    "phoneemu boot --lab DIR --flash FLASH --register --call moh", "srtp-tampered-media-dropped",
    fleet_lab="phoneemu fleet boot --lab DIR --flash FLEET --register --call moh")

_SIGNALLING_PATH = WayOut(
    "a TLS record from the CallManager fails its integrity check (something on the path alters the SIP "
    "signalling: a firewall's SIP inspection or ALG, an SBC, an attacker; the phone drops the call)",
    "find and stop what rewrites the SIP-TLS stream between the phones and the CallManager (no SIP "
    "inspection on TLS 5061); then call again (seed: Authentication, Integrity, and Authorization)",
    "phoneemu boot --lab DIR --flash FLASH --register --call moh", "sip-signalling-on-path-attacker",
    fleet_lab="phoneemu fleet boot --lab DIR --flash FLEET --register --call moh")

_QUERY_TOO_LARGE = WayOut(
    "a TVS QUERY too large to send (reason code too-large: device name, signer subject and issuer above "
    "64 KiB, spec §E.2)",
    "shorten what the reason shows long (it gives each length): the signer's subject and issuer — sign "
    "with a certificate of ordinary names (inspect shows the refused file's signer) — or the model name of "
    "the phones' profile (device name CP-<model>-SEP<MAC>, spec §E.4); TVS is not asked until the QUERY "
    "fits, so bringing it back does not help",
    "phoneemu inspect FILE", "")
#: the ways that rest on TVS answering the phone's QUERY (module doc: none helps a QUERY too large to send)
_NEED_A_TVS_ANSWER = frozenset({_EXPORT, _TVS_BACK, _REGENERATE})
#: the rules under which the boot reports a QUERY too large to send (reason code too-large)
_QUERY_RULES = frozenset({"G.3.4-tvs-unreachable", "G.4-tvs-unreachable"})

#: deleting the ITL as a wrong role's way out: its own scenario rehearses it there (``lab exchange --store
#: callmanager-trust``: the old TVS knows the new ITL's signer without SAST)
_DELETE_WRONG_ROLE = replace(_DELETE, scenario="migration-tvs-wrong-role")

_ITL_WAYS: dict[str, tuple[WayOut, ...]] = {
    "G.3.4-tvs-unknown-signer": (_EXPORT, _ROLLBACK, _ITL_RESET, _DELETE),
    # the bulk ITL reset before the rollback: these lock phones out on their own cluster too (its ITLRecovery
    # or TVS certificate regenerated), where the rollback ITL, signed by the signer they refuse, does not help
    "G.3.4-tvs-unreachable": (_TVS_BACK, _ITL_RESET, _ROLLBACK_MIGRATION_ONLY, _DELETE),
    "G.3.4-tvs-server-untrusted": (_ITL_RESET, _ROLLBACK_MIGRATION_ONLY, _DELETE),
    # no bulk export (_EXPORT) under a wrong role: not documented for it (module doc: spec §E.6, §E.7.4, §G.6)
    "G.3.4-tvs-wrong-role": (_ROLLBACK, _ITL_RESET, _DELETE_WRONG_ROLE),
    "G.3.5-reject-unknown-signer": (_ROLLBACK, _ITL_RESET, _DELETE),
    "G.3.1-oversize": (_FEWER_CERTS,),
    "G.3.1-unsupported-hash": (_SHA1_SIGNING,),
    "G.3-expired-signer": (_REGENERATE, _ITL_RESET),
    "G.3-bad-signature": (_RESIGNED,),
}
_CTL_WAYS: dict[str, tuple[WayOut, ...]] = {
    "G.3.4-tvs-unknown-signer": (_EXPORT, _CTL_RESET, _DELETE),
    "G.3.4-tvs-unreachable": (_TVS_BACK, _CTL_RESET, _DELETE),
    "G.3.4-tvs-server-untrusted": (_CTL_RESET, _DELETE),
    "G.3.4-tvs-wrong-role": (_CTL_RESET, _DELETE),  # no bulk export either (as for the ITL)
    "G.3.5-reject-unknown-signer": (_CTL_RESET, _DELETE),
    "G.3-expired-signer": (_REGENERATE, _CTL_RESET),
    "G.3.1-unsupported-hash": (_SHA1_SIGNING,),
    "G.3-bad-signature": (_RESIGNED,),
}
_CONFIG_WAYS: dict[str, tuple[WayOut, ...]] = {
    "G.4-reject-unknown-signer": (_CENTRAL, _ROLLBACK, _ITL_RESET),
    "G.4-tvs-unknown-signer": (_CENTRAL, _EXPORT, _ITL_RESET),
    "G.4-tvs-unreachable": (_TVS_BACK, _ITL_RESET),
    "G.4-tvs-server-untrusted": (_CENTRAL, _ROLLBACK, _ITL_RESET),
    "G.4-tvs-wrong-role": (_CENTRAL, _ROLLBACK),
    "G.4-unsigned-rejected": (_PRE_8, _DELETE),
    "G.4-expired-signer": (_RENEW_CALLMANAGER,),
    "G.4-unsupported-hash": (_SHA1_SIGNING,),
    "G.4-bad-signature": (_RESIGNED,),
}

_SIP_WAYS: dict[str, tuple[WayOut, ...]] = {
    "G.5-sip-server-untrusted": (_RESET_PHONE,),
    "G.13-device-cert-refused": (_NEW_LSC,),
}

_MEDIA_WAYS: dict[str, tuple[WayOut, ...]] = {
    "G.14-rtp-not-encrypted-mode": (_ENCRYPTED_PROFILE,),
    "G.14-rtp-signalling-not-tls": (_MIXED_MODE,),
    "G.14-media-unauthenticated": (_MEDIA_PATH,),
    "G.14-signalling-tampered": (_SIGNALLING_PATH,),
}

#: Every rule with ways out, by the kind of file it rejected, ``sip`` for a registration refused, or
#: ``media`` for a call without SRTP (tests check the names against the rule ids, the scenarios and the CLI).
WAYS_BY_KIND: dict[str, dict[str, tuple[WayOut, ...]]] = {"ITL": _ITL_WAYS, "CTL": _CTL_WAYS,
                                                          "config": _CONFIG_WAYS, "sip": _SIP_WAYS,
                                                          "media": _MEDIA_WAYS}


_DAMAGED = ("the file does not parse: no procedure of the seed or spec; the phone keeps its list and "
            "takes a well-formed file at a later reset (inspect FILE shows what is wrong)")
_MISNAMED = ("the TFTP server serves another file under that name (spec §A.2 tag 14: an ITL as the CTL, "
             "another phone's file): a serving error no procedure addresses")
_SIGNER_NOT_LISTED = ("a list signed by a signer the phone trusts that does not name that signer in a SAST "
                      "record of its own (spec §B.4, §G.5): a building error of the cluster no procedure "
                      "addresses; the phone keeps its list")
_KEY = ("a signer key the model cannot use (spec §A.5: its size, or EC on a model without EC): no "
        "procedure of the seed or spec, and the lab cannot choose a signer's key")
_NEVER_DECIDES = ("never the deciding rule: the trust-list rejection that locked the phone comes first in "
                  "its boot and has the ways out")
#: Lockout rules (kinds ITL, CTL, config) with no way out on purpose, and why (tests: every lockout rule
#: is here or in :data:`WAYS_BY_KIND`).
NO_WAY_OUT: dict[tuple[str, str], str] = {
    **{(kind, rule): why for kind in ("ITL", "CTL") for rule, why in (
        ("G.3.1-malformed", _DAMAGED), ("G.3.1-wrong-file-name", _MISNAMED), ("G.3-unsupported-key", _KEY),
        ("G.3.1-no-signer-record", _SIGNER_NOT_LISTED))},
    ("CTL", "G.3.1-oversize"): "the seed's 64 KiB limit is the ITL's (more than 39 certificates); no "
                               "procedure shrinks a CTL (a few records: the lab's stays small)",
    ("config", "G.4-malformed"): _DAMAGED,
    ("config", "G.4-wrong-file-name"): _MISNAMED,
    ("config", "G.4-unsupported-key"): _KEY,
    ("config", "G.3.5-locked-ignores-config"): _NEVER_DECIDES,
}


@dataclass(frozen=True, slots=True)
class HeldLists:
    """The trust lists a locked phone holds, where known (its flash): a CTL, and whether its ITL is the
    rollback (empty) one (spec §B.7); ``reset_untrusted``: known from an ITL it refused (the boot's,
    :meth:`after_boot`) that neither list holds the certificate its cluster's bulk ITL reset is signed with
    (:func:`itl_reset_signer_held`), so the reset cannot help it (False: it can, or not known);
    ``ctl_reset_untrusted`` the same of the CTL reset, known from a CTL it refused
    (:func:`ctl_reset_signer_held`)."""

    ctl: bool
    empty_itl: bool
    reset_untrusted: bool = False
    ctl_reset_untrusted: bool = False

    @classmethod
    def of(cls, ctl: bool, empty_itl: bool, reset_untrusted: bool = False,
           ctl_reset_untrusted: bool = False) -> HeldLists:
        """One of the sixteen shared values (a fleet's records hold a reference each, never a copy: four
        bits of what each phone holds, the record one slot larger)."""
        return _SHARED_HELD[(bool(ctl), bool(empty_itl), bool(reset_untrusted), bool(ctl_reset_untrusted))]

    @classmethod
    def shared(cls, held: HeldLists | None) -> HeldLists | None:
        """``held`` as its shared value (:meth:`of`); None stays None (not known)."""
        return None if held is None else cls.of(held.ctl, held.empty_itl, held.reset_untrusted,
                                                 held.ctl_reset_untrusted)

    @classmethod
    def after_boot(cls, store: TrustStore, refused_itl: bytes | None = None,
                   refused_ctl: bytes | None = None) -> HeldLists:
        """What ``store`` holds after a boot (``BootReport.held``), ``refused_itl`` the ITL the boot refused
        (None: none): whether the bulk ITL reset can help is told from it (:func:`itl_reset_signer_held`;
        was: not known, so ``lab itl-reset`` was the first way out of a phone that could not take the
        reset ITL, and again after it was followed); ``refused_ctl`` the CTL it refused, whether the CTL
        reset can (:func:`ctl_reset_signer_held`; was not known: ``lab ctl-reset`` offered, followed and
        offered again)."""
        untrusted = _reset_untrusted(store, refused_itl, "ITL", itl_reset_signer_held)
        ctl_untrusted = _reset_untrusted(store, refused_ctl, "CTL", ctl_reset_signer_held)
        return cls.of(store.ctl is not None, store.itl_is_empty, untrusted, ctl_untrusted)

    def as_json(self) -> dict[str, bool]:
        """``{"ctl": ..., "empty_itl": ...}``, as ``phone show --json`` names them (``ctl``,
        ``itl.empty_itl``); ``"reset_signer_held": false`` too where :attr:`reset_untrusted`,
        ``"ctl_reset_signer_held": false`` where :attr:`ctl_reset_untrusted` (each absent where not: it can
        help, or not known, as in a document of an older phoneemu)."""
        out = {"ctl": self.ctl, "empty_itl": self.empty_itl}
        if self.reset_untrusted:
            out["reset_signer_held"] = False
        if self.ctl_reset_untrusted:
            out["ctl_reset_signer_held"] = False
        return out

    @classmethod
    def from_json(cls, value: Any) -> HeldLists | None:
        """:meth:`as_json` read back (shared); None for anything else (not known: a record or document of an
        older phoneemu has none)."""
        if not isinstance(value, Mapping) or not all(isinstance(value.get(k), bool)
                                                     for k in ("ctl", "empty_itl")):
            return None
        return cls.of(value["ctl"], value["empty_itl"], value.get("reset_signer_held") is False,
                      value.get("ctl_reset_signer_held") is False)

    def said(self) -> str:
        """What the phones hold, in a group's head line: ``holding a CTL and the rollback ITL``; ``, not the
        signer of the ITL reset`` where :attr:`reset_untrusted`, ``the CTL reset`` where
        :attr:`ctl_reset_untrusted`."""
        held = [what for what, has in (("a CTL", self.ctl), ("the rollback ITL", self.empty_itl)) if has]
        said = "holding " + " and ".join(held) if held else "holding no CTL"
        resets = [what for what, untrusted in (("the ITL reset", self.reset_untrusted),
                                               ("the CTL reset", self.ctl_reset_untrusted)) if untrusted]
        return f"{said}, not the signer of {' or '.join(resets)}" if resets else said


_SHARED_HELD = {(ctl, empty, untrusted, ctl_untrusted): HeldLists(ctl=ctl, empty_itl=empty,
                                                                  reset_untrusted=untrusted,
                                                                  ctl_reset_untrusted=ctl_untrusted)
                for ctl in (False, True) for empty in (False, True) for untrusted in (False, True)
                for ctl_untrusted in (False, True)}


def _reset_untrusted(store: TrustStore, refused: bytes | None, kind: Literal["CTL", "ITL"],
                     held: Callable[[TrustList | None, TrustList | None, TrustList], bool | None]) -> bool:
    """Whether a list of ``kind`` the boot refused (``refused``, None: none) shows that the lists in
    ``store`` lack the signer of that list's reset (``held``: :func:`itl_reset_signer_held` or
    :func:`ctl_reset_signer_held` False); False where not, or not known. Parsed only on a rejection: a boot
    that refused nothing costs nothing more."""
    if refused is None:
        return False
    from phoneemu.errors import PhoneEmuError

    try:
        tl = store.intern.trust_list(refused, kind=kind, limit=store.profile.trust_list_limit)
    except PhoneEmuError:  # a refused list that does not parse names no reset signer: not known
        return False
    return held(store.ctl, store.itl, tl) is False


def itl_reset_signer_held(ctl: TrustList | None, itl: TrustList | None, refused: TrustList) -> bool | None:
    """Whether a phone holding ``ctl`` and ``itl`` can take the bulk ITL reset of the cluster that served it
    ``refused``, an ITL it refused: the reset ITL is signed by the CallManager key (spec §G.7) of the TFTP
    node, the refused ITL's CCM+TFTP record (the reset ITL's too: ours, the lab's), which the phone takes
    only from a SAST record of a list it holds (§G.3 steps 2, 3; matched by serial and issuer, §B.4) — TVS,
    step 4, did not vouch for the refused ITL's signer, and vouches for no signer of a cluster whose TVS it
    cannot use or reach, or does not know (a cluster it moved to, §G.6 problem 3). So the reset does not
    help a phone whose lists lack it: its CallManager certificate regenerated since the phone last took an
    ITL, or a cluster it moved to (was: offered first, ``lab itl-reset``, and again after it was followed);
    nor where the refused ITL is the reset ITL itself, signed by that record (such a phone lacks it: else
    step 3 had taken it). None where it cannot be told: no CCM+TFTP record with a serial."""
    from phoneemu.formats.trustlist import Role

    signers = [(r.serial, r.issuer) for r in refused.records
               if r.role == Role.CCM_TFTP and r.serial and r.issuer is not None]
    return _held_as_sast(ctl, itl, signers)


def ctl_reset_signer_held(ctl: TrustList | None, itl: TrustList | None, refused: TrustList) -> bool | None:
    """Whether a phone holding ``ctl`` and ``itl`` can take the CTL reset (``utils ctl reset localkey``) of
    the cluster that served it ``refused``, a CTL it refused: the reset CTL is signed by the publisher's
    CallManager key (spec §G.7, §B.5), the refused CTL's SAST record that is also one of its CCM+TFTP records
    (the tokenless CTL's, §B.6; the lab's), which the phone takes only from a SAST record of a list it holds
    (§G.3 steps 2, 3; matched by serial and issuer, §B.4) — TVS, as for the ITL reset
    (:func:`itl_reset_signer_held`), did not vouch for the refused CTL's signer. So the CTL reset does not
    help a phone whose lists lack it: the CallManager certificate regenerated since the phone last took a
    CTL (with ITLRecovery and TVS: ``lab ctl-reset`` says so), or a cluster it moved to (was: offered, and
    again after it was followed); nor where the refused CTL is the reset CTL itself. None where it cannot be
    told: no SAST record that is a CCM+TFTP one too (a non-secure CTL's CCM+TFTP records are empty)."""
    from phoneemu.crypto.certs import same_issuer
    from phoneemu.formats.trustlist import Role

    sast = [(r.serial, r.issuer) for r in refused.records
            if r.role == Role.SAST and r.serial and r.issuer is not None]
    signers = [(serial, issuer) for serial, issuer in sast
               if any(r.role == Role.CCM_TFTP and r.serial == serial and r.issuer is not None
                      and same_issuer(r.issuer, issuer) for r in refused.records)]
    return _held_as_sast(ctl, itl, signers)


def _held_as_sast(ctl: TrustList | None, itl: TrustList | None,
                  signers: list[tuple[bytes, str]]) -> bool | None:
    """Whether a SAST record of ``ctl`` or ``itl`` is one of ``signers`` (serial, issuer: spec §B.4); None
    where there are none (not known)."""
    from phoneemu.crypto.certs import same_issuer  # the phone's own matching of a signer to a record (§B.4)
    from phoneemu.formats.trustlist import Role

    if not signers:
        return None
    anchors = [r for tl in (ctl, itl) if tl is not None for r in tl.records if r.role == Role.SAST]
    return any(a.serial == serial and same_issuer(a.issuer, issuer)
               for serial, issuer in signers for a in anchors)


def held_lists(flash: str | Path, *, profile: PhoneProfile | None = None) -> HeldLists | None:
    """What the flash folder ``flash`` holds (``CTLFile.tlv``, ``ITLFile.tlv``), read as the phone's boot
    loads it (:meth:`phoneemu.phone.flash.Flash.held_files`, ``profile``'s limit, a CP-8861's when not
    given): a list that is not a regular file, above the limit or not parsing counts as absent, as the boot
    does not load it; each read bounded, none blocking (was: read whole, a FIFO waited for a writer for ever
    and a link to a device was read without end). None when it is no folder."""
    from phoneemu.phone.flash import Flash
    from phoneemu.phone.profile import get_profile

    folder = Path(flash)
    if not folder.is_dir():
        return None
    prof = profile or get_profile("cp-8861")
    held = Flash(folder, profile=prof).held_files()
    itl = held["itl"]
    return HeldLists(ctl=held["ctl"] is not None,
                     empty_itl=itl is not None and _empty_itl(itl, limit=prof.trust_list_limit))


def _empty_itl(path: Path, *, limit: int) -> bool:
    """Whether the ITL at ``path`` (one the boot loads: :func:`held_lists`) is the rollback (empty) one;
    read again at most ``limit`` bytes, False if it changed meanwhile into one that does not load."""
    from phoneemu.errors import PhoneEmuError
    from phoneemu.files import read_at_most
    from phoneemu.formats import trustlist

    try:
        return trustlist.parse(read_at_most(path, limit, what="ITL", timeout=0.0), limit=limit).is_empty
    except (OSError, PhoneEmuError):
        return False


def ways_out(rule: str, kind: str, reason_code: str | VerifyReason | None = None, *,
             held: HeldLists | None = None) -> tuple[WayOut, ...]:
    """The ways out of a lockout decided by ``rule`` on a file of ``kind`` (``ITL``, ``CTL`` or
    ``config``), of a registration refused (``sip``) or of a call without SRTP (``media``); none for a
    rule that no procedure addresses. ``reason_code`` ``too-large`` under a ``-tvs-unreachable`` rule: a
    QUERY too large to send (module doc), its own way first, then the rule's that need no TVS answer.
    ``held``: the lists the phone holds, where known (:func:`_for_held`)."""
    ways = WAYS_BY_KIND.get(kind, {}).get(rule, ())
    if rule in _QUERY_RULES and ways and _code(reason_code) == VerifyReason.TOO_LARGE.value:
        ways = (_QUERY_TOO_LARGE, *(w for w in ways if w not in _NEED_A_TVS_ANSWER))
    return _for_held(ways, rule, kind, held)


#: the ways through the rollback (empty) ITL: none helps a phone holding a CTL (module doc)
_THROUGH_ROLLBACK = frozenset({_ROLLBACK, _ROLLBACK_MIGRATION_ONLY, _CENTRAL, _PRE_8})

#: the rollback for a CTL refused by phones holding an ITL and no CTL (:func:`_for_itl_only`), by the ITL's
#: rollback of that rule: the empty ITL lets them take the new cluster's CTL on first use (spec §G.2)
_ROLLBACK_FOR_CTL = {way: replace(way, action=(
    "Prepare Cluster for Rollback to pre-8.0 on the old cluster and reset the phones there first: holding "
    "its empty ITL and no CTL they take the new cluster's CTL on first use (spec §G.2), then any new ITL "
    "(seed: Migrate IP Phones Between Clusters)")) for way in (_ROLLBACK, _ROLLBACK_MIGRATION_ONLY)}
#: under the TVS rules, on their own cluster the rollback ITL is signed as its full ITL: it helps while they
#: still take that (the CTL refused, not the ITL; was the ITL's words, "whose rollback ITL has the signer
#: they refuse": the signer they refuse is the CTL's)
_ROLLBACK_FOR_CTL[_ROLLBACK_MIGRATION_ONLY] = replace(
    _ROLLBACK_FOR_CTL[_ROLLBACK_MIGRATION_ONLY], when="a migration, moving away from a cluster that still "
    "serves them; on their own cluster only while they still take its ITL (its rollback ITL is signed as "
    "the full one)")

#: the rules under which the lists a phone holds choose its ways (:func:`_for_held`): no list it holds and
#: no TVS vouches for the signer (spec §G.3.4, §G.3.5, §G.4), or a trust list refuses an unsigned config.
#: Not a file's own fault (too large, a hash or key the model lacks, expired, a bad signature): a CTL or
#: the rollback ITL changes nothing of those ways, and erasing the lists fixes no such file
_SIGNER_RULES = frozenset({
    "G.3.4-tvs-unknown-signer", "G.3.4-tvs-unreachable", "G.3.4-tvs-server-untrusted", "G.3.4-tvs-wrong-role",
    "G.3.5-reject-unknown-signer", "G.4-reject-unknown-signer", "G.4-tvs-unknown-signer",
    "G.4-tvs-unreachable", "G.4-tvs-server-untrusted", "G.4-tvs-wrong-role", "G.4-unsigned-rejected"})


def _for_held(ways: tuple[WayOut, ...], rule: str, kind: str, held: HeldLists | None) -> tuple[WayOut, ...]:
    """``ways`` for a phone holding a CTL (spec §G.3 note: the rollback ITL does not blank it), under a rule
    of :data:`_SIGNER_RULES`: the ways through the rollback ITL left out (was: offered first, ``lab rollback
    ... on``, also to a phone that already held the rollback ITL), erasing the lists then the last resort;
    holding the rollback ITL too, the bulk ITL reset as well (while the rollback is on it serves an empty
    ITL again; elsewhere its CallManager signer is no SAST of their CTL), and first: for a trust list
    refused (``ITL``, ``CTL``) the way back to the old cluster's full ITL and its TVS
    (:data:`_BACK_FROM_ROLLBACK`; was: only erasing the lists for an ITL, and for a CTL the bulk export,
    whose TVS the phone cannot ask), for a refused signed config turning the rollback off
    (:data:`_ROLLBACK_OFF`; not for an unsigned one: a pre-8.0 cluster has no rollback to turn off). As
    they are under another rule (was: the way back or the rollback off first, and erasing the lists last,
    under an oversized ITL, an unsupported hash, an expired signer, a bad signature), for a phone without
    a CTL, or not known (``held`` None). An ITL refused by a phone whose lists lack the signer of the bulk
    ITL reset (:attr:`HeldLists.reset_untrusted`): the reset left out first (:func:`_without_itl_reset`);
    a CTL refused by one whose lists lack the CTL reset's (:attr:`HeldLists.ctl_reset_untrusted`): the CTL
    reset left out last, as said for the lists held (:func:`_without_ctl_reset`)."""
    if ways == () or held is None or rule not in _SIGNER_RULES:
        return ways
    if held.ctl_reset_untrusted and kind == "CTL":
        return _without_ctl_reset(_for_lists_held(ways, rule, kind, held))
    return _for_lists_held(ways, rule, kind, held)


def _for_lists_held(ways: tuple[WayOut, ...], rule: str, kind: str, held: HeldLists) -> tuple[WayOut, ...]:
    """:func:`_for_held` but for the CTL reset's signer."""
    if held.reset_untrusted and kind == "ITL":
        ways = _without_itl_reset(ways)
    if not held.ctl:
        return _for_itl_only(ways, rule) if kind == "CTL" and not held.empty_itl else ways
    if kind == "CTL" and not held.empty_itl:  # no way through the rollback ITL among a CTL's
        return ways
    gone = set(_THROUGH_ROLLBACK)
    first: list[WayOut] = []
    if held.empty_itl:  # no TVS to ask: a trust list's bulk export is a step of _BACK_FROM_ROLLBACK
        gone |= {_ITL_RESET} | ({_EXPORT} if kind != "config" else set())
        first = [_BACK_FROM_ROLLBACK] if kind != "config" else \
            [_ROLLBACK_OFF] if rule != "G.4-unsigned-rejected" else []
    kept = [w for w in ways if w not in gone]
    if not first and len(kept) == len(ways):  # nothing left out: the rule's own ways
        return ways
    last = [] if any(w.when == _DELETE.when for w in kept) else [_DELETE]
    return (*first, *kept, *last)


def _without_itl_reset(ways: tuple[WayOut, ...]) -> tuple[WayOut, ...]:
    """``ways`` of an ITL refused by a phone whose lists lack the signer of the bulk ITL reset
    (:attr:`HeldLists.reset_untrusted`): the reset left out, erasing the lists then the last resort (was:
    ``lab itl-reset`` first under ``G.3.4-tvs-server-untrusted`` and ``-tvs-unreachable``, "their own
    cluster" after a migration under ``-tvs-unknown-signer``; followed, the phone refused the reset ITL and
    was told it again, while ``lab regenerate`` had said "the bulk ITL reset does not help")."""
    kept = tuple(w for w in ways if w != _ITL_RESET)
    return kept if any(w.when == _DELETE.when for w in kept) else (*kept, _DELETE)


def _without_ctl_reset(ways: tuple[WayOut, ...]) -> tuple[WayOut, ...]:
    """``ways`` of a CTL refused by a phone whose lists lack the signer of the CTL reset
    (:attr:`HeldLists.ctl_reset_untrusted`): the CTL reset left out (either wording of it), erasing the
    lists then the last resort (was: ``lab ctl-reset`` first under ``G.3.4-tvs-server-untrusted``; followed,
    the phone refused the reset CTL and was told it again, while ``lab ctl-reset`` itself warned "the CTL
    reset does not help")."""
    kept = tuple(w for w in ways if w not in (_CTL_RESET, _CTL_RESET_ITL_HELD))
    return kept if any(w.when == _DELETE.when for w in kept) else (*kept, _DELETE)


def _for_itl_only(ways: tuple[WayOut, ...], rule: str) -> tuple[WayOut, ...]:
    """``ways`` of a CTL refused by phones holding an ITL and no CTL (not the rollback one: it takes any
    first CTL, spec §G.2): the CTL reset said for their own cluster (:data:`_CTL_RESET_ITL_HELD`: its
    CallManager key a SAST record of their ITL; was "mixed mode, their own cluster (the rollback ITL does not
    blank a CTL)"), and the rollback ITL on the cluster they left beside it (:data:`_ROLLBACK_FOR_CTL`; was
    not offered: spec §G.6), before or after the reset as the ITL's ways of the rule have them (after
    under the rules that lock phones out on their own cluster too, module doc)."""
    itl = _ITL_WAYS.get(rule, ())
    rollback = next((w for w in itl if w in _ROLLBACK_FOR_CTL), None)
    if _CTL_RESET not in ways or rollback is None or _ITL_RESET not in itl:
        return ways
    pair = (_ROLLBACK_FOR_CTL[rollback], _CTL_RESET_ITL_HELD)
    if itl.index(rollback) > itl.index(_ITL_RESET):
        pair = pair[::-1]
    return tuple(way for w in ways for way in (pair if w == _CTL_RESET else (w,)))


def _lists_choose(rule: str, kind: str) -> bool:
    """Whether the lists a phone holds can change the ways out of ``rule`` on a file of ``kind``
    (:func:`_for_held`: a rule of :data:`_SIGNER_RULES` with ways out): else they need not be read."""
    return rule in _SIGNER_RULES and bool(WAYS_BY_KIND.get(kind, {}).get(rule))


def _code(reason_code: str | VerifyReason | None) -> str | None:
    """A decision's reason code as its report writes it (``too-large``)."""
    return reason_code.value if isinstance(reason_code, VerifyReason) else reason_code


def _filled(command: str, fill: Mapping[str, str]) -> str:
    """``command`` with each placeholder word of ``fill`` replaced by its value, quoted for a shell, all in
    one pass: a value is never read again as a placeholder (``--flash /tmp/N-phones`` with ``N`` known
    was ``/tmp/2-phones``, a lab ``/srv/FLASH-lab`` with ``FLASH`` known the flash inside the lab's path)."""
    if not fill:
        return command
    names = "|".join(re.escape(name) for name in sorted(fill, key=len, reverse=True))
    return re.sub(rf"\b(?:{names})\b", lambda m: shlex.quote(fill[m.group(0)]), command)


@functools.lru_cache(maxsize=128)
def _words(command: str) -> tuple[str, ...]:
    """A way's lab command (:meth:`WayOut.command`, one of the table's) split as a shell splits it.
    Remembered: a fleet's JUnit asks for each way of each locked phone (40,000 phones, flashes not kept: 4
    splits each, half of ``fleet boot --junit``'s time: 8.0 -> 4.1 CPU s)."""
    return tuple(shlex.split(command))


def _acts_on(command: str, *, fleet: bool) -> str:
    """The label of a command that needs no lab (:data:`_ACTS_ON`): what it acts on, the phones in the plural
    for a fleet; the neutral "command" for one not listed (none in the catalogue: tests)."""
    words = _words(command)[1:]
    for head, label in _ACTS_ON.items():
        if tuple(words[:len(head)]) == head:
            return f"{label}s" if fleet and label.endswith(" phone") else label
    return "command"


#: a boot on the phones' own flash in a lab command (``--flash FLASH``, ``--flash FLEET``)
_ON_THE_FLASH = re.compile(r" --flash (?:FLASH|FLEET)\b")


def _installed_options_in(holding: str) -> int:
    """How many ``--installed-*`` options :data:`FLASH_STARTS_HOLDING`'s text (the options as typed, paths
    shell-quoted) gives: one "gives", several "give" (counted as words, not as text a path may hold)."""
    try:
        words = shlex.split(holding)
    except ValueError:
        words = holding.split()
    return sum(1 for w in words if w.startswith("--installed-"))


def _kept_or_not(way: WayOut, fill: Mapping[str, str], *, fleet: bool) -> str:
    """``way``'s command filled in; with :data:`FLASH_NOT_KEPT` in ``fill`` the phones' flash is gone:
    ``phone erase`` of it cannot be run — there is nothing to erase, and how to keep it; what each run starts
    holding where :data:`FLASH_STARTS_HOLDING` says (``--installed-itl``) —, and a boot on it
    (``boot --flash FLASH`` of the bulk ITL reset) is the boot without ``--flash`` (one phone's with
    ``--mac`` where known: its flash named it), with this run's options, saying why (was the command, FLASH
    or FLEET left for the user to fill in with a folder that never held the phones). With
    :data:`TVS_ELSEWHERE` in ``fill``, bringing TVS back names ``OLD``, not ``DIR``."""
    if way == _TVS_BACK and TVS_ELSEWHERE in fill:
        way = _TVS_BACK_ELSEWHERE
    command = way.command(fleet=fleet)
    keep = fill.get(FLASH_NOT_KEPT)
    if keep is None:
        return _filled(command, fill)
    whose, it = ("their flashes were", "them") if fleet else ("its flash was", "it")
    holding = fill.get(FLASH_STARTS_HOLDING)
    several = holding is not None and _installed_options_in(holding) > 1
    starts = "each run starts from an empty one" if holding is None else \
        f"each run starts holding what {holding} {'give' if several else 'gives'}; a run without " \
        f"{'them' if several else 'it'} starts {it} erased"
    not_kept = f"{whose} not kept (no --flash: {starts}; {keep} --flash FOLDER keeps {it})"
    if _words(command)[1:3] == ("phone", "erase"):
        return f"nothing to erase: {not_kept}"
    if _ON_THE_FLASH.search(command) is None:
        return _filled(command, fill)
    return (f"{_filled(_ON_THE_FLASH.sub(_phones_named(fill, fleet=fleet), command), fill)} — boot {it} with "
            f"this run's options: {not_kept}")


def _phones_named(fill: Mapping[str, str], *, fleet: bool) -> str:
    """What names the phones in a boot whose ``--flash`` named them (:func:`_kept_or_not`): one phone's
    ``--mac MAC``, consecutive MACs' ``--mac-start FIRST --count N`` where ``fill`` knows them (was nothing
    for a fleet: ``fleet boot --lab DIR`` is refused, --count N is required), else nothing."""
    if not fleet:
        return " --mac MAC" if "MAC" in fill else ""
    return " --mac-start FIRST --count N" if "FIRST" in fill and "N" in fill else ""


def tvs_back_fill(lab: str | Path | None, decided: Iterable[tuple[object, object]], *,
                  hosts: Iterable[str] = ()) -> dict[str, str]:
    """What a fill with the lab ``lab`` (``DIR``) adds for bringing TVS back (:data:`_TVS_BACK`), from the
    deciding (rule, reason) of the locked phones (one for ``boot``, a fleet's for its summary):
    :data:`TVS_ELSEWHERE` with the addresses named when a phone locked out by a TVS it could not reach
    (a ``-tvs-unreachable`` rule, its reason naming each server: ``no TVS server answered: HOST:PORT: ...``)
    named none of the TVS servers of the cluster ``DIR`` stands for; else nothing, ``DIR`` stays: the
    lab's own TVS is the one to start. That cluster's TVS servers: those ``lab``'s configs name (its
    recorded host and TVS ports); without a lab folder, any at one of ``hosts``, the addresses the phones
    reached that cluster at (``HOST``, or ``HOST (tftp PORT)`` as a flash's last boot names it: ``phone
    show --flash``, ``--fleet-flash`` without ``--cluster``, ``replay``, whose ``DIR`` is "the lab serving"
    that address; a lab's TVS listens at its host, its port is not known there; a DNS name and an address
    are not compared: DIR's, :func:`_own_tvs`). Nothing either where it cannot be told (no lab nor host, a
    lab that cannot be read, a reason naming no server): the one home
    of this decision for ``boot --lab``, ``fleet boot --lab``, ``predict``, ``phone show`` and ``replay``
    (was ``lab service DIR tvs start`` always, DIR the lab booted against: a migration with the old
    cluster's TVS down sent the user to start the new one's, running; ``phone show`` and ``replay`` were
    not told)."""
    # each list of servers tried read once (a fleet's phones share a few: 40,000 were a parse and address
    # keys each; a flash's deciding line names the phone's own file before it)
    tried = {_servers_tried(reason) for rule, reason in decided
             if rule in _QUERY_RULES and isinstance(reason, str)}
    named = [servers for text in tried if text and (servers := _tvs_named_in(text))]
    if not named:
        return {}
    is_own = _own_tvs(lab, hosts)
    if is_own is None:
        return {}
    elsewhere = sorted({text for servers in named if not any(is_own(key) for _text, key in servers)
                        for text, _key in servers})
    return {TVS_ELSEWHERE: ", ".join(elsewhere)} if elsewhere else {}


def _servers_tried(reason: str) -> str:
    """The part of a reason that names the TVS servers tried (from :data:`phoneemu.net.tvs_client.
    NO_TVS_ANSWER` on), empty without one."""
    from phoneemu.net.tvs_client import NO_TVS_ANSWER  # the words the boot, predict and replay write

    at = reason.find(NO_TVS_ANSWER)
    return reason[at:] if at >= 0 else ""


def _own_tvs(lab: str | Path | None, hosts: Iterable[str]) -> Callable[[tuple[str, int]], bool] | None:
    """Whether a TVS server (its :func:`_address_key`) is one of the cluster ``DIR`` stands for
    (:func:`tvs_back_fill`): ``lab``'s, else any at one of ``hosts``; None when it cannot be told. A DNS name
    and an address cannot be compared without a lookup (``--tftp localhost:PORT``, configs naming
    ``127.0.0.1``): a server named one way where a host is the other is taken as DIR's, DIR stays (was OLD's:
    ``lab service OLD tvs start`` for a phone's own lab)."""
    if lab is not None:
        own = _lab_tvs(Path(lab))
        return None if own is None else own.__contains__
    at = {_host_key(host) for host in hosts}
    if not at:
        return None
    kinds = {_is_address_key(host) for host in at}
    return lambda key: key[0] in at or (not _is_address_key(key[0])) in kinds


#: an IPv4 address as :func:`_address_key` writes it (``str(IPv4Address)``: no leading zeros)
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4_KEY = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def _is_address_key(host: str) -> bool:
    """Whether ``host``, an :func:`_address_key` host, is an IP address (its canonical text: an IPv6 one has a
    colon, which no DNS name has), not a DNS name; told by its form, the address not parsed again (a fleet's
    JUnit asks for each locked phone)."""
    return ":" in host or _IPV4_KEY.fullmatch(host) is not None


@functools.lru_cache(maxsize=64)
def _host_key(host: str) -> str:
    """A host the phones reached their cluster at as :func:`_address_key` compares it: ``HOST (tftp
    PORT)`` (a flash's last boot) as ``HOST``, brackets of ``[v6]`` dropped. Remembered: ``replay --all
    --junit`` asks for each locked phone, of a few addresses (was an address parsed per phone)."""
    return _address_key(f"[{host.split(' (tftp ', 1)[0].strip().strip('[]')}]:0")[0]


#: a TVS server a phone named, as a reason of no answer names each (``HOST:PORT: why``, ``[v6]:PORT: why``,
#: ``; ``-separated: :data:`phoneemu.net.tvs_client.NO_TVS_ANSWER`)
_SERVER_NAMED = re.compile(r"(?:^|; )(\[[^\]\s]+\]|[^\s:;\[\]()]+):(\d{1,5}): ")


@functools.lru_cache(maxsize=64)
def _tvs_named_in(reason: str) -> tuple[tuple[str, tuple[str, int]], ...]:
    """The TVS servers a reason of no TVS answer names, in its order, each ``HOST:PORT`` and its
    :func:`_address_key`; none without one. Remembered: a fleet's JUnit asks for each locked phone, whose
    reasons are a few texts (was a parse and an address key per phone and server, 40,000 phones)."""
    from phoneemu.net.tvs_client import NO_TVS_ANSWER  # the words the boot, predict and replay write

    at = reason.find(NO_TVS_ANSWER)
    if at < 0:
        return ()
    named = (f"{m.group(1)}:{m.group(2)}" for m in _SERVER_NAMED.finditer(reason[at + len(NO_TVS_ANSWER):]))
    return tuple((server, _address_key(server)) for server in named)


def _address_key(server: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT``) as compared: an address as the address it is (``::0001`` is ``::1``),
    a name without case or a final dot."""
    from phoneemu.values import address_of

    host, _, port = server.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    addr = address_of(host)
    return (str(addr) if addr is not None else host.rstrip(".").casefold()), int(port)


def _lab_tvs(lab: Path) -> frozenset[tuple[str, int]] | None:
    """The TVS servers ``lab``'s configs name (:func:`_address_key`), read once per version of its state
    (a fleet's JUnit asks for each locked phone); None when it cannot be read."""
    from phoneemu.lab.state import STATE_FILE

    try:
        st = (lab / STATE_FILE).stat()
    except OSError:
        return None
    return _lab_tvs_of(str(lab), st.st_ino, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=8)
def _lab_tvs_of(lab: str, _ino: int, _mtime_ns: int, _size: int) -> frozenset[tuple[str, int]] | None:
    """:func:`_lab_tvs` of one version of the lab's state file (its inode, time and size the cache key): as
    :meth:`phoneemu.lab.cluster.LabCluster._device_config` names them — its host, node 1's TVS port and each
    other node's recorded; none before 8.0."""
    from phoneemu.errors import PhoneEmuError
    from phoneemu.lab.state import load_state

    try:
        state = load_state(Path(lab))
    except (PhoneEmuError, OSError):
        return None
    if state.pre_8_0:
        return frozenset()
    ports = [port for name, port in state.ports.items()
             if name == "tvs" or (name.startswith("tvs-") and name[4:].isdigit())]
    return frozenset(_address_key(f"[{state.host}]:{port}") for port in ports)


def ways_out_json(rule: str | None, kind: str | None, *, fleet: bool = False,
                  reason_code: str | VerifyReason | None = None,
                  held: HeldLists | None = None) -> list[dict[str, str]]:
    """:func:`ways_out` as JSON (``ways_out`` of a boot report, ``phone show --json``; ``fleet``: the
    commands for many phones; ``held``: the lists the phone holds, where known); none when the rule or
    kind is not known (a flash written by an older phoneemu keeps neither)."""
    if not isinstance(rule, str) or not isinstance(kind, str):
        return []
    return [{"when": w.when, "action": w.action, "lab": w.command(fleet=fleet), "scenario": w.scenario}
            for w in ways_out(rule, kind, reason_code, held=held)]


def way_out_lines(rule: str, kind: str, *, indent: str = "  ", fill: Mapping[str, str] | None = None,
                  fleet: bool = False, reason_code: str | VerifyReason | None = None,
                  held: HeldLists | None = None) -> list[str]:
    """Text lines: ``way out (<situation>): <action>`` then the lab command (``fleet``: for many phones)
    and scenario, if one rehearses it; ``fill`` replaces the command's placeholders that are known
    (``{"DIR": "/tmp/lab", "FLASH": "/tmp/ph1"}``). With :data:`NOT_A_LAB` in ``fill`` (phones pointed at
    a cluster that is not a lab) no lab command: only those that need none, each labelled by what it acts
    on (``on the emulated phone: phoneemu phone erase ...``, ``the refused file: phoneemu inspect FILE``;
    was "on the emulated phone" for both), and ``rehearse in a lab: ...``. With :data:`FLASH_NOT_KEPT`, a
    command on a flash that is gone says how to keep it instead (:func:`_kept_or_not`). ``held``: the lists
    the phone holds; not given, they are read from the flash ``fill`` names (``FLASH``: ``boot --flash``,
    ``phone show --flash``), so a phone holding a CTL is not told the ways through the rollback ITL
    (:func:`ways_out`) — only where they can choose the ways (:func:`_lists_choose`; was for every rule,
    a registration refused or a call without SRTP too: ``fleet boot --flash --junit`` read and parsed each
    such phone's lists and config for nothing)."""
    lines: list[str] = []
    real = NOT_A_LAB in (fill or {})
    for w in _phone_ways(rule, kind, fill or {}, fleet=fleet, reason_code=reason_code, held=held):
        lab = _kept_or_not(w, fill or {}, fleet=fleet)
        lines.append(f"{indent}way out ({w.when}): {w.action}")
        if not real:
            rehearse = f"   rehearse: phoneemu run scenarios/{w.scenario}.yaml" if w.scenario else ""
            lines.append(f"{indent}  lab: {lab}{rehearse}")
            continue
        acts_on = _acts_on(w.command(fleet=fleet), fleet=fleet)
        said = [] if w.needs_a_lab(fleet=fleet) else [f"{acts_on}: {lab}"]
        said += [f"rehearse in a lab: phoneemu run scenarios/{w.scenario}.yaml"] if w.scenario else []
        lines += [f"{indent}  {'   '.join(said)}"] if said else []
    return lines


def _phone_ways(rule: str, kind: str, fill: Mapping[str, str], *, fleet: bool,
                reason_code: str | VerifyReason | None, held: HeldLists | None) -> tuple[WayOut, ...]:
    """The ways :func:`way_out_lines` says (:func:`_phone_held`)."""
    return ways_out(rule, kind, reason_code, held=_phone_held(rule, kind, fill, fleet=fleet, held=held))


def _phone_held(rule: str, kind: str, fill: Mapping[str, str], *, fleet: bool,
                held: HeldLists | None) -> HeldLists | None:
    """The lists that choose one phone's ways: ``held`` not given, read from the flash ``fill`` names (one
    phone's ``FLASH``), only where they can choose the ways (:func:`_lists_choose`)."""
    flash = fill.get("FLASH")
    if held is None and flash is not None and not fleet and _lists_choose(rule, kind):
        return held_lists(flash)
    return held


def phone_placeholders_left(rule: str, kind: str, fill: Mapping[str, str] | None = None, *,
                            reason_code: str | VerifyReason | None = None,
                            held: HeldLists | None = None) -> list[str]:
    """The placeholders :func:`way_out_lines` of one phone leaves in the commands it shows with ``fill`` (the
    same arguments), in :data:`PLACEHOLDERS`' order: what ``boot`` and ``phone show`` say under their ways
    with :func:`legend_lines`, as a fleet's text does with :func:`placeholder_lines` (was: ``OLD``, ``DIR``
    left bare in one phone's commands). Remembered by what it depends on (:func:`_placeholders_left_of`)."""
    fill = fill or {}
    held = HeldLists.shared(_phone_held(rule, kind, fill, fleet=False, held=held))
    return list(_placeholders_left_of(rule, kind, _code(reason_code), held, frozenset(fill)))


@functools.lru_cache(maxsize=512)
def _placeholders_left_of(rule: str, kind: str, code: str | None, held: HeldLists | None,
                          filled: frozenset[str]) -> tuple[str, ...]:
    """:func:`phone_placeholders_left` of the lists held (read already) and the names ``fill`` gives: what
    it leaves depends on no value of ``fill`` (:func:`_left_in` masks them; :data:`NOT_A_LAB`,
    :data:`TVS_ELSEWHERE`, :data:`FLASH_NOT_KEPT` act by their name). Remembered: a fleet's JUnit asks it
    for each locked phone, of a few rules (40,000 phones' legends: 0.08 s of CPU; were a table walk and a
    command filled per way and phone, 74-115 us a phone, 3-4.6 s)."""
    masked = dict.fromkeys(filled, "-")
    ways = ways_out(rule, kind, code, held=held)
    return tuple(_left_in(_not_needing_a_lab(ways, masked, fleet=False), masked, fleet=False))


def no_way_out(rule: str | None, kind: str | None) -> str | None:
    """Why a lockout decided by ``rule`` on a file of ``kind`` has no documented way out
    (:data:`NO_WAY_OUT`); None when it has ways out or the rule or kind is not known (a flash written by
    an older phoneemu keeps neither): ``no_way_out`` of a boot report and of ``phone show --json``."""
    if not isinstance(rule, str) or not isinstance(kind, str):
        return None
    return NO_WAY_OUT.get((kind, rule))


def no_way_out_lines(rule: str | None, kind: str | None, *, indent: str = "  ") -> list[str]:
    """The text of :func:`no_way_out`, where :func:`way_out_lines` has none: ``no documented way out:
    <why>`` (``boot``, ``phone show``), so a lockout never ends without saying what follows it."""
    why = no_way_out(rule, kind)
    return [f"{indent}no documented way out: {why}"] if why else []


def ways_key(rule: str, kind: str,
             reason_code: str | VerifyReason | None = None) -> tuple[str, str, str | None]:
    """What lockouts are grouped by for their ways out where the lists the phones hold are not known: the
    deciding rule, the kind, and the reason code where it changes the ways (``too-large`` under a
    ``-tvs-unreachable`` rule, module doc), else None: a code that chooses no other way is no group."""
    rule, kind, code, _held = ways_group(rule, kind, reason_code)
    return rule, kind, code


#: a group of lockouts for their ways out (:func:`ways_group`): rule, kind, reason code, lists held
WaysGroup = tuple[str, str, str | None, HeldLists | None]


def ways_group(rule: str, kind: str, reason_code: str | VerifyReason | None = None, *,
               held: HeldLists | None = None) -> WaysGroup:
    """What lockouts are grouped by for their ways out (``fleet boot``, ``predict --fleet-flash``, ``phone
    show --fleet-flash``, ``replay --all``): :func:`ways_key`'s rule, kind and reason code, and the lists
    the phones hold (``held``, shared: :meth:`HeldLists.of`) where they change the ways (:func:`_for_held`:
    a CTL, the rollback ITL), else None: phones of one rule holding a CTL and not are two groups, each
    told its own ways (was: one group, the table's ways, ``lab rollback ... on`` to phones holding a CTL)."""
    return _group(rule, kind, _code(reason_code), HeldLists.shared(held))


@functools.lru_cache(maxsize=256)
def _group(rule: str, kind: str, code: str | None, held: HeldLists | None) -> WaysGroup:
    """:func:`ways_group` of a shared ``held``, remembered: a fleet asks it once per locked phone, of a few
    rules (40,000 phones: a look-up each, not four tables of ways)."""
    if code is not None and ways_out(rule, kind, code) == ways_out(rule, kind):
        code = None
    if held is not None and held.reset_untrusted:  # kept only where it leaves the bulk ITL reset out
        trusted = HeldLists.of(held.ctl, held.empty_itl, False, held.ctl_reset_untrusted)
        if ways_out(rule, kind, code, held=held) == ways_out(rule, kind, code, held=trusted):
            held = trusted  # (was: a CTL's lockout, or another rule's, a group of its own, said "not the
            # signer of the ITL reset" where no reset was offered)
    if held is not None and held.ctl_reset_untrusted:  # the same of the CTL reset (an ITL's lockout: not)
        trusted = HeldLists.of(held.ctl, held.empty_itl, held.reset_untrusted)
        if ways_out(rule, kind, code, held=held) == ways_out(rule, kind, code, held=trusted):
            held = trusted
    if held is not None and ways_out(rule, kind, code, held=held) == ways_out(rule, kind, code):
        held = None
    return rule, kind, code, held


def ways_group_of(entry: Mapping[str, Any]) -> WaysGroup:
    """The :func:`ways_group` of an entry of :func:`ways_out_doc` (``held`` absent: None)."""
    code = entry.get("reason_code")
    return (str(entry["rule"]), str(entry["kind"]), code if isinstance(code, str) else None,
            HeldLists.from_json(entry.get("held")))


def ways_out_doc(locked: Mapping[_GroupKey, int]) -> list[dict[str, Any]]:
    """JSON view of the ways out of many lockouts: ``locked`` counts phones by (deciding rule, kind of
    file), by :func:`ways_key` (the reason code too where it changes the ways) or by :func:`ways_group`
    (the lists the phones hold too, where they change the ways); one entry per group that has ways out or
    none documented (:data:`NO_WAY_OUT`: ``ways`` empty, ``no_way_out`` the why, else None), the most
    phones first, its ``reason_code`` None unless it chose them, and ``held`` (``{"ctl": ..., "empty_itl":
    ...}``) only where the lists held chose them."""
    groups = [(_as_group(key), n) for key, n in locked.items()]
    out: list[dict[str, Any]] = []
    for (rule, kind, code, held), n in sorted(groups, key=lambda g: (-g[1], g[0][0], g[0][1], g[0][2] or "",
                                                                     _held_order(g[0][3]))):
        ways = ways_out_json(rule, kind, fleet=True, reason_code=code, held=held)
        why = None if ways else no_way_out(rule, kind)
        if ways or why:
            out.append({"rule": rule, "kind": kind, "phones": n, "ways": ways, "reason_code": code,
                        "no_way_out": why, **({"held": held.as_json()} if held is not None else {})})
    return out


def ways_out_doc_run(doc: list[dict[str, Any]], fill: Mapping[str, str]) -> list[dict[str, Any]]:
    """``doc`` (:func:`ways_out_doc`) with each way's ``run``: its lab command (``lab``, the placeholders
    left for a user) as this run says it in text — the placeholders known filled in, what to do instead
    where the flash was not kept (:func:`_kept_or_not`), None for a lab command when the cluster is not a
    lab (:data:`NOT_A_LAB`): ``fleet boot --json`` (was ``lab`` only, ``--flash FLEET`` with the flashes
    not kept)."""
    def run(way: WayOut) -> str | None:
        no_lab = NOT_A_LAB in fill and way.needs_a_lab(fleet=True)
        return None if no_lab else _kept_or_not(way, fill, fleet=True)

    out: list[dict[str, Any]] = []
    for entry in doc:
        rule, kind, code, held = ways_group_of(entry)
        ways = zip(ways_json_said(entry["ways"], fill), ways_out(rule, kind, code, held=held), strict=True)
        out.append({**entry, "ways": [{**said, "run": run(way)} for said, way in ways]})
    return out


def ways_json_said(ways: list[dict[str, Any]], fill: Mapping[str, str]) -> list[dict[str, Any]]:
    """JSON ways out (:func:`ways_out_json`, a :func:`ways_out_doc` entry's ``ways``) whose ``lab`` names the
    cluster the text's command names: bringing TVS back for ``OLD`` where ``fill`` has :data:`TVS_ELSEWHERE`
    (:func:`_kept_or_not`), the other placeholders left. Was ``lab service DIR tvs start`` in the JSON of
    ``boot``, ``phone show``, ``predict``, ``replay`` and ``fleet boot`` (its ``run`` said OLD) while the
    text said OLD: filling DIR in started the TVS that ran, not the one the phones could not reach."""
    if TVS_ELSEWHERE not in fill:
        return ways
    back, elsewhere = _TVS_BACK.lab, _TVS_BACK_ELSEWHERE.lab
    return [{**way, "lab": elsewhere} if way.get("lab") == back else way for way in ways]


def ways_doc_said(doc: list[dict[str, Any]], fill: Mapping[str, str]) -> list[dict[str, Any]]:
    """A fleet's :func:`ways_out_doc` whose ways' ``lab`` name the cluster its text's commands name with
    ``fill`` (:func:`ways_json_said`, each group's): the JSON of ``predict --fleet-flash``, ``replay --all``
    and ``phone show --fleet-flash``."""
    return [{**entry, "ways": ways_json_said(entry["ways"], fill)} for entry in doc]


def _as_group(key: tuple[Any, ...]) -> WaysGroup:
    """A key of :func:`ways_out_doc` (2 to 4 parts) as a :data:`WaysGroup`."""
    code = key[2] if len(key) > 2 else None
    held = key[3] if len(key) > 3 else None
    return str(key[0]), str(key[1]), code, held if isinstance(held, HeldLists) else None


def _held_order(held: HeldLists | None) -> tuple[bool, bool, bool, bool, bool]:
    """Groups of one rule, kind and code in a stable order: not chosen by the lists held first."""
    return (held is not None, held is not None and held.ctl, held is not None and held.empty_itl,
            held is not None and held.reset_untrusted, held is not None and held.ctl_reset_untrusted)


def _group_said(entry: Mapping[str, Any]) -> str:
    """A group of :func:`ways_out_doc` in a head line: ``<rule> (<kind>[, reason <code>][, holding a CTL];
    N phones locked out)`` (``not registered`` for kind ``sip``, ``calling without SRTP`` for ``media``)."""
    n = entry["phones"]
    code = entry.get("reason_code")
    held = HeldLists.from_json(entry.get("held"))
    what = {"sip": "not registered", "media": "calling without SRTP"}.get(entry["kind"], "locked out")
    return (f"{entry['rule']} ({entry['kind']}{f', reason {code}' if code else ''}"
            f"{f', {held.said()}' if held is not None else ''}; {n} phone{'s' if n != 1 else ''} {what})")


def ways_out_text(doc: list[dict[str, Any]], fill: Mapping[str, str] | None = None) -> list[str]:
    """The text of :func:`ways_out_doc`: a head line per group (its reason code, and the lists its phones
    hold, where they chose the ways), then its ways (:func:`way_out_lines`, by those lists: the JSON's); a
    group with none documented, one line saying why (``no documented way out of <rule> (<kind>; N phones
    locked out): <why>``)."""
    lines: list[str] = []
    for entry in doc:
        if not entry.get("ways") and entry.get("no_way_out"):  # absent in a document of an older phoneemu
            lines.append(f"no documented way out of {_group_said(entry)}: {entry['no_way_out']}")
            continue
        lines.append(f"ways out of {_group_said(entry)}:")
        lines += way_out_lines(entry["rule"], entry["kind"], fill=fill, fleet=True,
                               reason_code=entry.get("reason_code"),
                               held=HeldLists.from_json(entry.get("held")))
    return lines


def _shown_ways(doc: list[dict[str, Any]], fill: Mapping[str, str]) -> list[WayOut]:
    """The ways whose command :func:`ways_out_text` shows for ``doc``: every way of each group, but none
    needing a lab for a cluster that is not one (:data:`NOT_A_LAB`)."""
    shown: list[WayOut] = []
    for entry in doc:
        if entry.get("ways"):
            rule, kind, code, held = ways_group_of(entry)
            shown += _not_needing_a_lab(ways_out(rule, kind, code, held=held), fill, fleet=True)
    return shown


def _not_needing_a_lab(ways: tuple[WayOut, ...], fill: Mapping[str, str], *, fleet: bool) -> list[WayOut]:
    """``ways`` whose command is shown with ``fill``: none needing a lab for a cluster that is not one."""
    real = NOT_A_LAB in fill
    return [w for w in ways if not (real and w.needs_a_lab(fleet=fleet))]


#: a placeholder word of a lab command (:data:`PLACEHOLDERS`)
_PLACEHOLDER = re.compile(rf"\b(?:{'|'.join(PLACEHOLDERS)})\b")


def placeholders_left(doc: list[dict[str, Any]], fill: Mapping[str, str]) -> list[str]:
    """The placeholders :func:`ways_out_text` of ``doc`` leaves in the commands it shows with ``fill``, in
    :data:`PLACEHOLDERS`' order. The commands are filled with values that name no placeholder (a folder
    ``/srv/DIR`` is not DIR left)."""
    return _left_in(_shown_ways(doc, fill), fill, fleet=True)


def _left_in(ways: list[WayOut], fill: Mapping[str, str], *, fleet: bool) -> list[str]:
    """The placeholders the commands of ``ways`` keep once filled with ``fill``, in :data:`PLACEHOLDERS`'
    order (filled with values that name no placeholder: a folder ``/srv/DIR`` is not DIR left)."""
    masked = dict.fromkeys(fill, "-")
    left = {m.group(0) for way in ways for m in _PLACEHOLDER.finditer(_kept_or_not(way, masked, fleet=fleet))}
    return [name for name in PLACEHOLDERS if name in left]


def placeholder_lines(doc: list[dict[str, Any]], fill: Mapping[str, str], why: Mapping[str, str],
                      otherwise: str) -> list[str]:
    """Said once under :func:`ways_out_text`: each placeholder its commands leave, what it stands for and why
    it is left (``why`` by name, else ``otherwise``): ``DIR: the lab folder (not known to predict)`` (was a
    bare DIR in ``predict --fleet-flash``'s commands, FLEET in ``--models``', DIR in ``phone show
    --fleet-flash``'s without ``--cluster``)."""
    return legend_lines(placeholders_left(doc, fill), why, otherwise)


def legend_lines(names: Iterable[str], why: Mapping[str, str], otherwise: str, *,
                 indent: str = "") -> list[str]:
    """One line per placeholder of ``names`` (once each, in :data:`PLACEHOLDERS`' order): ``DIR: the lab
    folder (<why>)``, ``why`` by name, else ``otherwise`` — a fleet's (:func:`placeholder_lines`) and one
    phone's (:func:`phone_placeholders_left`: ``boot``, ``phone show``) alike."""
    wanted = set(names)
    return [f"{indent}{name}: {meaning} ({why.get(name, otherwise)})"
            for name, meaning in PLACEHOLDERS.items() if name in wanted]
