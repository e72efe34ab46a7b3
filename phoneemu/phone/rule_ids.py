"""Every rule id a phone decision can carry (spec §E.7.1, §F, §G, §H.1, §H.3): the vocabulary of ``rule:``.

A rule id is ``<spec section>-<outcome>``, e.g. ``G.3.4-vouched-by-tvs``. A scenario's ``rule:``
expectation names a whole id or a section prefix of one (``G.3.4``, ``G.3``): the loader refuses,
before anything runs, a value that is neither (a typo would otherwise fail only at run time).
``tests/unit/test_rule_ids.py`` checks that every id written in the source (``D-*`` firmware ids
included) or composed by ``rules._fail_rule`` is listed here, and that every listed id is produced.
"""

from __future__ import annotations

import difflib

__all__ = ["RULE_IDS", "close_matches", "is_known"]

RULE_IDS: frozenset[str] = frozenset({
    # D firmware images (``_fail_rule("D", ...)`` writes the last four)
    "D-already-running", "D-fetch-failed", "D-malformed", "D-signed-by-image-key", "D-unknown-signer",
    "D-wrong-load", "D-bad-signature", "D-expired-signer", "D-unsupported-hash", "D-unsupported-key",
    # E.7.1 HTTPS server certificates (directory, services)
    "E.7.1-https-cached", "E.7.1-https-cert-in-trust-list", "E.7.1-https-cert-too-large",
    "E.7.1-https-malformed",
    "E.7.1-https-needs-tvs", "E.7.1-https-not-trusted", "E.7.1-https-phone-locked",
    "E.7.1-https-tvs-server-untrusted", "E.7.1-https-tvs-unknown",
    "E.7.1-https-tvs-unreachable", "E.7.1-https-tvs-wrong-role", "E.7.1-https-vouched-by-tvs",
    "E.7.1-plain-http",
    # F CAPF
    "F.1-capf-cert-in-trust-list", "F.1-capf-cert-too-large", "F.1-capf-needs-tvs",
    "F.1-capf-vouched-by-tvs",
    "F.1-capf-not-supported", "F.1-capf-server-untrusted", "F.1-capf-unreachable", "F.1-no-capf-server",
    "F.1-capf-not-replayed",  # replay: the capture holds the CAPF session, replay has no CAPF server
    "F.6-capf-rejected", "F.6-fetched", "F.6-lsc-deleted", "F.6-lsc-installed", "F.6-nothing-pending",
    "F.7-no-capf-operation", "F.7-wait-auth-string",
    # G.2 first trust list, G.3 trust-list updates
    "G.2-first-ctl-tofu", "G.2-first-itl-tofu", "G.2-legacy-ignores-itl",
    "G.3-bad-signature", "G.3-expired-signer", "G.3-unchanged", "G.3-unsupported-key",
    "G.3.1-malformed", "G.3.1-no-signer-record", "G.3.1-oversize", "G.3.1-unsupported-hash",
    "G.3.1-wrong-file-name",
    "G.3.2-signed-by-ctl", "G.3.3-signed-by-itl-sast", "G.3.4-needs-tvs", "G.3.4-tvs-unknown-signer",
    "G.3.4-tvs-server-untrusted", "G.3.4-tvs-unreachable", "G.3.4-tvs-wrong-role", "G.3.4-vouched-by-tvs",
    "G.3.5-locked-ignores-config", "G.3.5-reject-unknown-signer", "G.3.6-empty-itl-accepts-any",
    # G.4 signed files
    "G.4-bad-signature", "G.4-expired-signer", "G.4-unsupported-key",
    "G.4-empty-itl-accepts-unsigned", "G.4-empty-itl-signature-unchecked",
    "G.4-malformed", "G.4-needs-tvs", "G.4-reject-unknown-signer", "G.4-signed-by-ctl-tftp",
    "G.4-signed-by-itl-tftp", "G.4-signed-unchecked-no-trust-list", "G.4-tvs-unknown-signer",
    "G.4-tvs-server-untrusted", "G.4-tvs-unreachable", "G.4-tvs-wrong-role", "G.4-unsigned-no-trust-list",
    "G.4-unsigned-rejected",
    "G.4-unsupported-hash", "G.4-vouched-by-tvs", "G.4-wrong-file-name",
    # G.5 the SIP registrar over TLS, G.13 SIP registration with digest authentication
    "G.5-sip-server-in-ctl", "G.5-sip-server-untrusted",
    "G.13-device-cert-refused", "G.13-digest-rejected", "G.13-no-callmanager", "G.13-no-config",
    "G.13-no-credentials", "G.13-registered", "G.13-registrar-refused", "G.13-unreachable",
    # G.9 secure connections, G.10 default config, G.12 encrypted configs
    "G.9-fallback-tcp", "G.9-retry-trust-file", "G.9-tls-with-ctl",
    "G.10-device-config", "G.10-no-config", "G.10-use-default-config",
    "G.12.1-plain-config", "G.12.2-cert-hash-match", "G.12.2-cert-hash-mismatch",
    "G.12.2-no-symmetric-key", "G.12.2-symmetric-key-present", "G.12.2-wait-auth-string",
    "G.12.3-decrypt-failed", "G.12.3-decrypted", "G.12.3-no-key", "G.12.5-encrypted-config-missing",
    # G.14 media encryption (calls)
    "G.14-answer-refused", "G.14-call-refused", "G.14-media-refused", "G.14-media-unauthenticated",
    "G.14-no-media", "G.14-offer-srtp", "G.14-rtp-fallback", "G.14-rtp-not-encrypted-mode",
    "G.14-rtp-phone-no-srtp", "G.14-rtp-signalling-not-tls", "G.14-signalling-tampered", "G.14-srtp",
    # H.1 the HTTPS config download (TCP 6971), H.3 transport
    "H.1-https-config", "H.1-https-config-malformed", "H.1-https-config-server-untrusted",
    "H.1-https-config-wrong-device",
    "H.3-config-transport-failed",
})

_PREFIXES = frozenset(p for rule in RULE_IDS for p in (
    [rule.split("-", 1)[0]] + [".".join(rule.split("-", 1)[0].split(".")[:i])
                               for i in range(2, rule.count(".") + 1)]))


def is_known(value: str) -> bool:
    """A whole rule id, or a section prefix of one (``G.3.4``, ``G.3``; not ``G.3.`` or ``G``)."""
    return value in RULE_IDS or value in _PREFIXES


def close_matches(value: str, n: int = 3) -> list[str]:
    """The known ids and prefixes nearest ``value`` (for "did you mean" messages)."""
    return difflib.get_close_matches(value, sorted(RULE_IDS | _PREFIXES), n=n, cutoff=0.6)
