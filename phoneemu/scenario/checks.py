"""Expectation checks: how each scenario check reads a phone's last boot report.

One function per check name of ``loader.CHECKS``; each returns the *actual* value to show
in reports and whether it matches the expected value (a list expected value means "any of").
The ``https`` check reads the phone's last HTTPS result (``https`` step, spec §E.7.1); ``rule``,
``deciding_rule`` and ``status`` also see that result's rule and status message, beside the last boot's.
``rule`` matches any decision of the last boot; ``deciding_rule`` only the one that decided its outcome.

``itl_file_status`` / ``ctl_file_status`` compare the checksum the phone shows and reports for its
installed list (MD5 or SHA-1 by model, spec §G.1, §H.4) with the one ``show itl`` / ``show ctl``
prints for the file its cluster serves now — CUCM's "ITL File Status": ``match``, ``mismatch``,
``not-installed`` (the phone holds none) or ``unknown`` (a real cluster, or the cluster serves none).
``itl_records`` / ``ctl_records`` list the installed list's records as ``ROLE CN`` (``SAST``, ``CCM``,
``CCM+TFTP``, ``TFTP``, ``CAPF``, ``SRST``, ``APP-SERVER``, ``TVS``; an empty rollback record reads
``ROLE (empty)``); the expected list is the whole file's records in any order, each entry a pattern
(``*`` and ``?`` as in file names), so a missing, extra or changed record fails. ``itl_signer`` /
``ctl_signer`` is a text the installed list's signer (header SIGNERID subject) must contain.
``signaling`` (tls / tcp / none) and ``trust_file_retries`` (an integer) read the §G.9 decisions.
``retransmitted`` (true / false) holds when the last boot sent a TFTP request or ACK again after a
timeout (RFC 1350, spec §H.3) as wanted; it shows how many it sent (``BootReport.retransmits``).
``fetched_over`` is the transport every file the last boot received came over (spec §H.1: HTTP 6970
first, TFTP on failure): ``http``, ``tftp``, ``mixed`` (some over each of two or more) or ``none`` (no
file received) — so a conformance run notices a cluster whose HTTP 6970 is down while phones still boot
over TFTP; ``https`` holds when the config came over the HTTPS config download (TCP 6971, §H.1, which
serves the config only: the other files still come over HTTP/TFTP, ``http`` then does not hold), and the
value shown names that file and what the others came over.
``capf_pending`` (install / fetch / delete / none) is the CAPF operation the phone's lab cluster still
holds for it, ``capf_server`` a text the lab CAPF server's log of the phone's last session contains
(ours: what an administrator reads on the cluster after a slow phone's key generation, spec §F.6, §F.8).

A failed check names the decision about what it reads (:data:`SUBJECTS`, :func:`decision_about`), beside
the boot's deciding one: the last boot's decision of that kind (``itl``, ``ctl``, ``config``, ``firmware``,
``capf``, ``transport``: the §G.9 choice) or the last ``https`` / ``sip`` / ``call`` step's rule. A trust
list's is the decision its outcome came from: a §G.9 retry's replaces an earlier installed, updated or
rejected list's only when the retry changed the list, as the boot's outcome does (phone/boot.py); so is
the config's: the decision that installed it, or the rejection that stands (not a short config's §G.12
step recorded after it).

A check that reads the last boot report, on a phone that has not booted by its step, shows
:data:`NOT_BOOTED` (``boot: expected 'ok', got 'not booted yet'``; was ``got 'failed'``, ``'absent'``,
``None``, ``False`` or ``0``: a boot that never happened read as one that failed) — ``rule``,
``deciding_rule`` and ``status`` their ``https``, ``sip`` or ``call`` step's result's when there is one.
Whether it holds is unchanged by that: what is true of a phone that never booted holds (``locked_out:
false``, ``trust_file_retries: 0``, ``fetched_over: none``; ``itl``/``ctl`` and ``lsc`` present, empty or
absent read the stored state), a boot outcome does not (``boot`` neither ``ok`` nor ``failed``: was
``failed``; ``itl: installed``; ``lsc: unchanged``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any, Protocol

from phoneemu.crypto.certs import dn_common_name
from phoneemu.formats.trustlist import Role, TrustList
from phoneemu.phone.events import Decision

__all__ = ["NOT_BOOTED", "STEP_ITEMS", "SUBJECTS", "PhoneView", "decision_about", "evaluate"]

#: The actual value of a check that reads the last boot report before the phone's first boot (module rules)
NOT_BOOTED = "not booted yet"

_Check = Callable[["PhoneView", Any], tuple[Any, bool]]


class PhoneView(Protocol):
    """What a check may look at: the last boot report and the phone's stored state."""

    @property
    def report(self) -> Any: ...          # BootReport | None (phone/boot.py)

    def has_trust(self, kind: str) -> bool: ...

    def trust_is_empty(self, kind: str) -> bool: ...

    def has_lsc(self) -> bool: ...

    def lsc_key(self) -> str | None: ...  # the stored LSC's public key, "RSA 2048" / "EC secp256r1"

    def config_xml(self) -> bytes | None: ...  # the plaintext XML of the config the phone holds

    @property
    def running_load(self) -> str | None: ...

    def trust_list(self, kind: str) -> TrustList | None: ...

    def reported_checksum(self, kind: str) -> tuple[str, str] | None: ...   # (algorithm, hex)

    def cluster_checksums(self, kind: str) -> dict[str, str] | None: ...


def _any_of(expected: Any) -> list[Any]:
    return expected if isinstance(expected, list) else [expected]


def _after_boot(check: _Check) -> _Check:
    """``check`` reads only the last boot report: before the phone's first boot it shows
    :data:`NOT_BOOTED`, and holds as ``check`` says of no report (module rules)."""
    def booted(p: PhoneView, expected: Any) -> tuple[Any, bool]:
        actual, held = check(p, expected)
        return (NOT_BOOTED if p.report is None else actual), held
    booted.__doc__ = check.__doc__
    return booted


def _trust(kind: str) -> Callable[[PhoneView, Any], tuple[Any, bool]]:
    def check(p: PhoneView, expected: Any) -> tuple[Any, bool]:
        r = p.report
        outcome = r.trust.get(kind, "absent") if r is not None else NOT_BOOTED
        present = p.has_trust(kind)
        empty = present and p.trust_is_empty(kind)
        held = False
        for want in _any_of(expected):
            if want == "present":
                held |= present
            elif want == "empty":
                held |= empty
            elif want == "absent":
                held |= not present
            else:
                held |= outcome == want  # (never NOT_BOOTED: not a value of the check)
        actual = outcome if outcome != "unchanged" or not empty else "unchanged (empty)"
        return actual, held
    return check


def _report_field(name: str) -> Callable[[PhoneView, Any], tuple[Any, bool]]:
    @_after_boot
    def check(p: PhoneView, expected: Any) -> tuple[Any, bool]:
        actual = getattr(p.report, name) if p.report is not None else None
        return actual, actual in _any_of(expected)
    return check


def _last_https(p: PhoneView) -> Any:
    return getattr(p, "https", None)  # HttpsResult | None (phone/https.py)


def _step_results(p: PhoneView) -> list[Any]:
    """The last ``https``, ``sip`` and ``call`` steps' results that applied a rule (their rule and status
    count for ``rule``, ``deciding_rule`` and ``status`` beside the last boot's)."""
    return [r for r in (_last_https(p), getattr(p, "sip", None), getattr(p, "call", None))
            if r is not None and r.rule]


def _matches(rule: str, wanted: Any) -> bool:
    """``rule`` equals ``wanted`` or lies under it ("G.3" matches "G.3.5-reject-unknown-signer")."""
    w = str(wanted)
    return rule == w or rule.startswith(f"{w}-") or rule.startswith(f"{w}.")


def _deciding_rules(p: PhoneView) -> list[str]:
    """The last boot's deciding rule (``BootReport.deciding``) and the last HTTPS result's rule."""
    r = p.report
    out = [r.deciding.rule] if r is not None and r.deciding is not None else []
    return out + [res.rule for res in _step_results(p)]


def _rule(p: PhoneView, expected: Any) -> tuple[Any, bool]:
    """Any decision of the last boot (or the last HTTPS result) — not only the deciding one: a boot
    that asked TVS records ``G.3.4-needs-tvs`` and then its verdict, and both match."""
    r = p.report
    rules = [d.rule for d in (*getattr(r, "pending", ()), *r.decisions)] if r is not None else []
    rules += [rule for res in _step_results(p) for rule in (getattr(res, "rules", ()) or (res.rule,))]
    held = any(_matches(rule, w) for w in _any_of(expected) for rule in rules)
    if r is None and not rules:
        return NOT_BOOTED, False
    return list(dict.fromkeys(rules)), held


def _deciding_rule(p: PhoneView, expected: Any) -> tuple[Any, bool]:
    """Only the decision that determined the boot's outcome (``BootReport.deciding``, phone/boot.py)."""
    deciding = _deciding_rules(p)
    held = any(_matches(rule, w) for w in _any_of(expected) for rule in deciding)
    actual: Any = deciding[0] if len(deciding) == 1 else deciding if deciding else None
    if p.report is None and not deciding:
        return NOT_BOOTED, False
    return actual, held


def _is_code(text: str) -> bool:
    """``text`` is (part of) a rejection code (:class:`~phoneemu.errors.VerifyReason`)."""
    from phoneemu.errors import VerifyReason

    return any(text in r.value for r in VerifyReason)


@_after_boot
def _reason(p: PhoneView, expected: Any) -> tuple[Any, bool]:
    """The rejections of the last boot: a value that is part of a rejection code matches the codes (a
    decision without a code: its reason text); other text is matched in the reasons as written
    (``failure during keygen``, a CAPF rejection coded ``other``), and the texts are shown then."""
    r = p.report
    rejected = [d for d in r.decisions if not d.accepted and d.needs_tvs is None] if r is not None else []
    # (a pending "ask TVS" is not a rejection)
    codes = [(d.reason_code.value if d.reason_code is not None else None) or d.reason for d in rejected]
    texts = [d.reason for d in rejected]
    wanted = [str(w) for w in _any_of(expected)]
    held = any(w in x for w in wanted for x in (codes if _is_code(w) else [*codes, *texts]))
    return (codes if all(_is_code(w) for w in wanted) else texts), held


def _status(p: PhoneView, expected: Any) -> tuple[Any, bool]:
    statuses = list(p.report.statuses) if p.report is not None else []
    https = _last_https(p)
    if https is not None and https.status:
        statuses.append(https.status)
    if p.report is None and not statuses:
        return NOT_BOOTED, False
    held = any(str(w).lower() in s.lower() for w in _any_of(expected) for s in statuses)
    return statuses, held


def _lsc(p: PhoneView, expected: Any) -> tuple[Any, bool]:
    """The last boot's LSC outcome; ``present`` / ``absent`` read the stored LSC (before any boot too)."""
    outcome = p.report.lsc if p.report is not None else NOT_BOOTED
    present = p.has_lsc()
    held = False
    for want in _any_of(expected):
        held |= (want == "present" and present) or (want == "absent" and not present) or outcome == want
    return outcome, held


def _lsc_key(p: PhoneView, expected: Any) -> tuple[Any, bool]:
    """The stored LSC's key ("RSA 2048", "EC secp256r1"); "none" without an LSC (seed: CAPF's default key
    size is 2048 bits). A value is the whole text, or its key type alone: ``RSA`` holds for any RSA key,
    ``EC`` for any curve (was: ``EC`` failed against ``EC secp256r1``)."""
    actual = p.lsc_key() or "none"
    key_type = actual.split(" ", 1)[0]
    return actual, any(str(v) in (actual, key_type) for v in _any_of(expected))


def _config_text(present: bool) -> Callable[[PhoneView, Any], tuple[Any, bool]]:
    """``config_contains`` / ``config_lacks``: every text of the list is (is not) in the plaintext XML
    of the config the phone holds (seed "Digest Authentication": credentials in the config file)."""
    def check(p: PhoneView, expected: Any) -> tuple[Any, bool]:
        xml = p.config_xml()
        if xml is None:
            return "no config", False
        text = xml.decode("utf-8", "replace")
        found = [str(w) for w in _any_of(expected) if str(w) in text]
        held = len(found) == len(_any_of(expected)) if present else not found
        return (f"contains {found}" if found else "contains none of them"), held
    return check


def _load(p: PhoneView, expected: Any) -> tuple[Any, bool]:
    return p.running_load, p.running_load in _any_of(expected)


def _bool_field(name: str) -> Callable[[PhoneView, Any], tuple[Any, bool]]:
    @_after_boot
    def check(p: PhoneView, expected: Any) -> tuple[Any, bool]:
        actual = bool(getattr(p.report, name)) if p.report is not None else False
        return actual, any(actual == bool(w) for w in _any_of(expected))
    return check


def _boot(p: PhoneView, expected: Any) -> tuple[Any, bool]:
    """ok / failed: how the last boot ended; neither holds before the first boot (:data:`NOT_BOOTED`)."""
    if p.report is None:
        return NOT_BOOTED, False
    actual = "ok" if p.report.ok else "failed"
    return actual, actual in _any_of(expected)


def _https(p: PhoneView, expected: Any) -> tuple[Any, bool]:
    r = _last_https(p)
    actual = "none" if r is None else "plain" if r.how == "plain-http" else \
        "trusted" if r.trusted else "untrusted"
    return actual, actual in _any_of(expected)


def _file_status(kind: str) -> Callable[[PhoneView, Any], tuple[Any, bool]]:
    def check(p: PhoneView, expected: Any) -> tuple[Any, bool]:
        reported = p.reported_checksum(kind)
        served = p.cluster_checksums(kind)
        if reported is None:
            actual = "not-installed"
        elif served is None:
            actual = "unknown"
        else:
            alg, value = reported
            actual = "match" if served.get(alg) == value else "mismatch"
        shown = actual if reported is None else f"{actual} (phone {reported[0]} {reported[1]}" + (
            f", cluster {served.get(reported[0])})" if served is not None else ")")
        return shown, actual in _any_of(expected)
    return check


_ROLE_SHORT = {Role.SAST: "SAST", Role.CCM: "CCM", Role.CCM_TFTP: "CCM+TFTP", Role.TFTP: "TFTP",
               Role.CAPF: "CAPF", Role.SRST: "SRST", Role.APP_SERVER: "APP-SERVER", Role.TVS: "TVS"}


def record_entries(tl: TrustList) -> list[str]:
    """``ROLE CN`` per record of ``tl`` (``ROLE (empty)`` for an empty rollback record), file order."""
    out = []
    for rec in tl.records:
        try:
            role = _ROLE_SHORT.get(Role(rec.role), str(rec.role))
        except ValueError:
            role = str(rec.role)
        out.append(f"{role} (empty)" if rec.is_empty else f"{role} {dn_common_name(rec.subject or '?')}")
    return out


def _records(kind: str) -> Callable[[PhoneView, Any], tuple[Any, bool]]:
    def check(p: PhoneView, expected: Any) -> tuple[Any, bool]:
        tl = p.trust_list(kind)
        if tl is None:
            return "absent", expected in ([], "absent")
        actual = record_entries(tl)
        patterns = [str(w) for w in _any_of(expected)]
        return actual, len(patterns) == len(actual) and _each_has_its_own(patterns, actual)
    return check


def _each_has_its_own(patterns: list[str], entries: list[str]) -> bool:
    """Whether every pattern can be given a record of its own that it matches (a bipartite matching, one
    breadth-first augmenting path per pattern, no recursion: a list of thousands of records stays within
    bounds): a wide pattern written before a narrow one (``SAST *``, ``SAST ITLRECOVERY_*``) gives up the
    record the narrow one needs (was: each took the first record it matched, and the check failed)."""
    matches = [[j for j, entry in enumerate(entries) if fnmatch.fnmatchcase(entry, pattern)]
               for pattern in patterns]
    owner: dict[int, int] = {}  # entry index -> the pattern holding it
    held: dict[int, int] = {}  # pattern -> the entry it holds
    for start in range(len(patterns)):
        reached_from: dict[int, int] = {}  # entry -> the pattern whose turn reached it
        queue, free = [start], None
        for pattern in queue:  # grows while read: each entry is reached once, so at most len(entries) more
            for j in matches[pattern]:
                if j in reached_from:
                    continue
                reached_from[j] = pattern
                if j not in owner:
                    free = j
                    break
                queue.append(owner[j])
            if free is not None:
                break
        if free is None:
            return False
        entry = free
        while True:  # hand each entry on the path to the pattern that reached it
            pattern = reached_from[entry]
            given_up = held.get(pattern)
            owner[entry], held[pattern] = pattern, entry
            if pattern == start or given_up is None:
                break
            entry = given_up
    return True


def _signer(kind: str) -> Callable[[PhoneView, Any], tuple[Any, bool]]:
    def check(p: PhoneView, expected: Any) -> tuple[Any, bool]:
        tl = p.trust_list(kind)
        actual = tl.header.signer.name if tl is not None else "absent"
        return actual, any(str(w).lower() in actual.lower() for w in _any_of(expected))
    return check


@_after_boot
def _signaling(p: PhoneView, expected: Any) -> tuple[Any, bool]:
    """tls / tcp: the transport the last boot chose for call signalling (spec §G.9); none: no choice
    was made (non-secure device, or no config)."""
    r = p.report
    chosen = [d.action for d in r.decisions if d.kind == "transport" and d.action != "retry"] \
        if r is not None else []
    actual = {"use-tls": "tls", "use-tcp": "tcp"}.get(chosen[-1], "none") if chosen else "none"
    return actual, actual in _any_of(expected)


@_after_boot
def _trust_file_retries(p: PhoneView, expected: Any) -> tuple[Any, bool]:
    """How many times the last boot fetched the trust file again for a secure device: spec §G.9's
    "tries four times" is the boot's own request and 3 retries."""
    r = p.report
    actual = sum(1 for d in r.decisions if d.rule == "G.9-retry-trust-file") if r is not None else 0
    return actual, any(actual == w for w in _any_of(expected))


@_after_boot
def _retransmitted(p: PhoneView, expected: Any) -> tuple[Any, bool]:
    """Whether the last boot retransmitted over TFTP; the actual value shown is the count."""
    count = int(p.report.retransmits) if p.report is not None else 0
    return count, any((count > 0) == bool(w) for w in _any_of(expected))


@_after_boot
def _fetched_over(p: PhoneView, expected: Any) -> tuple[Any, bool]:
    """http / tftp / https / mixed / none: what the last boot's received files came over (§H.1; module
    docstring). ``https`` holds when a file came over the HTTPS config download (6971 serves the config
    only), the others read every file; a boot with one over HTTPS shows it and what the others came over,
    ``https (SEP<MAC>.cnf.xml.sgn; the other files over http)``."""
    by_file = p.report.fetched_over if p.report is not None else {}
    over = set(by_file.values())
    token = "none" if not over else next(iter(over)) if len(over) == 1 else "mixed"
    secure = [name for name, how in by_file.items() if how == "https"]
    held = any(bool(secure) if want == "https" else token == want for want in _any_of(expected))
    if not secure or token == "https":
        return token, held
    others = sorted(over - {"https"})
    return f"https ({', '.join(secure)}; the other files over {' and '.join(others)})", held


def _sip(p: PhoneView, expected: Any) -> tuple[Any, bool]:
    """registered / rejected / unreachable: how the last ``sip`` step's registration ended (§G.13)."""
    res = getattr(p, "sip", None)
    actual = None if res is None else "registered" if res.registered else \
        "unreachable" if res.rule == "G.13-unreachable" else "rejected"
    return actual, actual in _any_of(expected)


def _sip_client_cert(p: PhoneView, expected: Any) -> tuple[Any, bool]:
    """lsc / mic / none: the phone's own certificate the last ``sip`` step presented over TLS (mutual
    authentication: its LSC, else its MIC, spec §F.9); none over TCP or when it holds neither."""
    res = getattr(p, "sip", None)
    actual = (res.client_cert.lower() if res is not None else "") or "none"
    return actual, actual in _any_of(expected)


def _sip_passed_over(p: PhoneView, expected: Any) -> tuple[Any, bool]:
    """How many of its config's CallManagers the last ``sip`` step passed over (unreachable, or over TLS
    a certificate the CTL does not list) before the one that ended it (spec §H.5, §G.5)."""
    res = getattr(p, "sip", None)
    actual = len(res.passed_over) if res is not None else 0
    return actual, any(actual == w for w in _any_of(expected))


def _sip_cipher(p: PhoneView, expected: Any) -> tuple[Any, bool]:
    """The cipher the last ``sip`` step negotiated over TLS (``AES128-SHA``); ``none`` over TCP."""
    res = getattr(p, "sip", None)
    actual = res.tls.split(" ", 1)[-1] if res is not None and res.tls else "none"
    return actual, actual in [str(v) for v in _any_of(expected)]


def _sip_field(name: str, none: Any) -> Callable[[PhoneView, Any], tuple[Any, bool]]:
    """A field of the last ``sip`` step's result (``none`` before any, or when it was not tried)."""
    def check(p: PhoneView, expected: Any) -> tuple[Any, bool]:
        res = getattr(p, "sip", None)
        actual = (getattr(res, name) if res is not None else None) or none
        return actual, actual in _any_of(expected)
    return check


def _media(p: PhoneView, expected: Any) -> tuple[Any, bool]:
    """srtp / rtp / none: what the last ``call`` step's media was (§G.14; none: no packet came, or the
    call did not happen)."""
    res = getattr(p, "call", None)
    actual = res.media if res is not None else "none"
    return actual, actual in _any_of(expected)


def _media_suite(p: PhoneView, expected: Any) -> tuple[Any, bool]:
    """The SRTP suite the last ``call`` step used (``AES_CM_128_HMAC_SHA1_80``); ``none`` over RTP."""
    res = getattr(p, "call", None)
    actual = (res.suite if res is not None else "") or "none"
    return actual, actual in [str(v) for v in _any_of(expected)]


def _media_refused(p: PhoneView, expected: Any) -> tuple[Any, bool]:
    """How many of the far end's packets the last ``call`` step dropped (SRTP tag, replay, malformed)."""
    res = getattr(p, "call", None)
    actual = res.refused if res is not None else 0
    return actual, any(actual == w for w in _any_of(expected))


def _call_status(p: PhoneView, expected: Any) -> tuple[Any, bool]:
    """The final SIP status of the last ``call`` step's INVITE (200, 404 when the caller's calling search
    space does not reach the called phone's partition, 480 ...); ``none`` when no INVITE was answered."""
    res = getattr(p, "call", None)
    status = res.status if res is not None else None
    actual: Any = status if status is not None else "none"
    return actual, actual in _any_of(expected)


def _media_intercepted(p: PhoneView, expected: Any) -> tuple[Any, bool]:
    """How many media packets of the last ``call`` step the lab's on-path attacker relayed (both ways;
    ``network: {tamper_signalling: true}`` over TCP, :mod:`phoneemu.lab.on_path`); 0 when none."""
    seen = getattr(p, "on_path", None)
    actual = seen.intercepted if seen is not None else 0
    return actual, any(actual == w for w in _any_of(expected))


def _sip_replay(p: PhoneView, expected: Any) -> tuple[Any, bool]:
    """refused / accepted / none: the registrar's answer when the on-path attacker replayed the REGISTER
    of the last ``sip`` / ``call`` step (``network: {replay_sip: true}``; none: nothing captured, over
    TLS, or no attacker). The actual value shown may say more (``none (...)``)."""
    seen = getattr(p, "on_path", None)
    actual = seen.replay if seen is not None else "none"
    return actual, actual.split(" ", 1)[0] in _any_of(expected)


def _capf_pending(p: PhoneView, expected: Any) -> tuple[Any, bool]:
    """install / fetch / delete / none: the CAPF operation the phone's lab cluster still holds pending for
    it (spec §F.6: a session cut before its end records nothing); unknown for a real cluster."""
    read = getattr(p, "capf_pending", None)
    actual = read() if read is not None else "unknown"
    return actual, actual in _any_of(expected)


def _capf_server(p: PhoneView, expected: Any) -> tuple[Any, bool]:
    """Text the lab CAPF server's log line of the phone's last session contains, in any case (``op=install
    timeout: nothing for 1.5s in state wait-keygen ...``; none: no session logged, or a real cluster)."""
    read = getattr(p, "capf_server_log", None)
    actual = (read() if read is not None else None) or "none"
    return actual, any(str(w).lower() in actual.lower() for w in _any_of(expected))


_CHECKS: dict[str, Callable[[PhoneView, Any], tuple[Any, bool]]] = {
    "itl": _trust("ITL"),
    "ctl": _trust("CTL"),
    "config": _report_field("config"),
    "config_file": _report_field("config_file"),
    "rule": _rule,
    "deciding_rule": _deciding_rule,
    "reason": _reason,
    "status": _status,
    "lsc": _lsc,
    "lsc_key": _lsc_key,
    "config_contains": _config_text(True),
    "config_lacks": _config_text(False),
    "firmware": _report_field("firmware"),
    "load": _load,
    "locked_out": _bool_field("locked_out"),
    "encrypted": _bool_field("encrypted"),
    "tvs_used": _bool_field("tvs_used"),
    "boot": _boot,
    "https": _https,
    "itl_file_status": _file_status("ITL"),
    "ctl_file_status": _file_status("CTL"),
    "itl_records": _records("ITL"),
    "ctl_records": _records("CTL"),
    "itl_signer": _signer("ITL"),
    "ctl_signer": _signer("CTL"),
    "signaling": _signaling,
    "trust_file_retries": _trust_file_retries,
    "retransmitted": _retransmitted,
    "fetched_over": _fetched_over,
    "sip": _sip,
    "sip_passed_over": _sip_passed_over,
    "sip_client_cert": _sip_client_cert,
    "sip_transport": _sip_field("transport", "none"),
    "sip_challenged": _sip_field("challenged", False),
    "sip_stale": _sip_field("stale", False),
    "sip_cipher": _sip_cipher,
    "media": _media,
    "media_suite": _media_suite,
    "media_refused": _media_refused,
    "call_status": _call_status,
    "media_intercepted": _media_intercepted,
    "sip_replay": _sip_replay,
    "capf_pending": _capf_pending,
    "capf_server": _capf_server,
}


def evaluate(check: str, phone: PhoneView, expected: Any) -> tuple[Any, bool]:
    """(actual, held) for one check on one phone."""
    return _CHECKS[check](phone, expected)


#: The item each check reads, whose decision a failed expectation names (module rules); None: a check of
#: the boot as a whole, which its deciding decision explains.
SUBJECTS: dict[str, str | None] = {
    **dict.fromkeys(("itl", "itl_file_status", "itl_records", "itl_signer"), "itl"),
    **dict.fromkeys(("ctl", "ctl_file_status", "ctl_records", "ctl_signer"), "ctl"),
    **dict.fromkeys(("config", "config_file", "config_contains", "config_lacks", "encrypted"), "config"),
    **dict.fromkeys(("firmware", "load"), "firmware"),
    **dict.fromkeys(("lsc", "lsc_key", "capf_pending", "capf_server"), "capf"),
    **dict.fromkeys(("signaling", "trust_file_retries"), "transport"),
    "https": "https",
    **dict.fromkeys(("sip", "sip_passed_over", "sip_client_cert", "sip_transport", "sip_challenged",
                     "sip_stale", "sip_cipher", "sip_replay"), "sip"),
    **dict.fromkeys(("media", "media_suite", "media_refused", "call_status", "media_intercepted"), "call"),
    **dict.fromkeys(("rule", "deciding_rule", "reason", "status", "boot", "locked_out", "tvs_used",
                     "retransmitted", "fetched_over"), None),
}

#: an item of the boot and the ``Decision.kind`` of its decisions
_BOOT_KINDS = {"itl": "ITL", "ctl": "CTL", "config": "config", "firmware": "firmware", "capf": "capf",
               "transport": "transport"}
#: an item of a step: its result's verdict field and what it was about
_STEP_FIELDS = {"https": ("trusted", "server"), "sip": ("registered", "server"),
                "call": ("accepted", "target")}
#: the items a step's result holds (the others: the last boot's decisions)
STEP_ITEMS = tuple(_STEP_FIELDS)


def _trust_list_decision(decisions: list[Decision]) -> Decision | None:
    """The decision a trust list's outcome came from, as phone/boot.py keeps the outcome: a later one (a
    §G.9 retry) replaces the one chosen when it changed the list (it carries the list installed), or when
    the one chosen neither changed the list nor was a rejection (``G.3-unchanged``)."""
    chosen: Decision | None = None
    for d in decisions:
        meaningful = chosen is not None and (chosen.artefact is not None or chosen.reason_code is not None)
        if not meaningful or (d.accepted and d.artefact is not None):
            chosen = d
    return chosen


def decision_about(item: str, p: PhoneView) -> str | None:
    """The decision about ``item`` (a :data:`SUBJECTS` value) as one line, ``RULE (accepted|rejected)
    [FILE: ]REASON`` like ``Decision.summary``; None when the last boot (or step) made none."""
    if item in _STEP_FIELDS:
        res = getattr(p, item, None)
        if res is None:
            return None
        verdict, about = _STEP_FIELDS[item]
        return Decision(rule=res.rule or "-", accepted=bool(getattr(res, verdict)), reason=res.reason,
                        file=getattr(res, about)).summary()
    r = p.report
    of_kind = [d for d in r.decisions if d.kind == _BOOT_KINDS[item]] if r is not None else []
    if item in ("itl", "ctl"):
        chosen = _trust_list_decision(of_kind)
    elif item == "config":
        chosen = _config_decision(of_kind, getattr(r, "config", None))
    else:
        chosen = of_kind[-1] if of_kind else None
    return chosen.summary() if chosen is not None else None


def _config_decision(decisions: list[Decision], outcome: str | None) -> Decision | None:
    """The decision the boot's config outcome came from (``BootReport.config``, phone/boot.py): accepted,
    the last one that carried the config installed (not the short config's §G.12 step read after it);
    rejected, the last rejection (a failed decryption stands although the short config read after it was
    accepted, §G.12.3); otherwise the last config decision."""
    if outcome == "accepted":
        matching = [d for d in decisions if d.accepted and d.artefact is not None]
    elif outcome == "rejected":
        matching = [d for d in decisions if not d.accepted]
    else:
        matching = []
    return matching[-1] if matching else decisions[-1] if decisions else None
