"""The phone's trust decision rules (spec §G), sans-I/O: each rule is a named function returning a Decision.

Nothing here does I/O or reads a clock: the store, the file bytes, ``now`` (Unix seconds) and any
TVS answer are passed in. The boot sequence / phone orchestrator (built on top of this module)
fetches files, calls the entry points, asks TVS when told to, and applies the decision with
:meth:`phoneemu.phone.store.TrustStore.apply` — the only way anything is installed.

Entry points (one per artefact)::

    decide_trust_list(store, new, *, kind, profile, now, tvs_answer=None, file=None) -> Decision
    decide_config(store, file_name, data, *, profile, now, tvs_answer=None) -> Decision
    decide_short_config(store, cfg, *, profile) -> Decision              (spec §G.12 steps 1-2)
    decide_static_file(store, file_name, data, *, profile, now, tvs_answer=None)  (§G.4, §C.6 row 6)
    decide_firmware(store, data, *, profile, now, image_signers) -> Decision   (spec §D)
    decide_secure_transport(store, cfg, *, profile, attempts) -> Decision | None  (spec §G.9)
    decide_auto_registration(store, *, profile, device_config_found, default_config_found)  (§G.10)
    decide_https_server(store, cert_der, *, profile, now, tvs_answer=None, server="")  (§E.7.1)
    decide_capf_server(store, cert_der, *, profile, now, tvs_answer=None, server="")   (§F.1, §G.5)
    tvs_server_trusted(store, cert_der) -> bool                      (§E.1: the TVS peer certificate)
    https_config_applies(store, profile) -> bool               (§H.1: ask TCP 6971 for the config first)
    decide_https_config_server(store, cert_der, *, file, server="")   (§H.1, §G.5: the 6971 server)
    decide_https_config(store, file, body, *, server) -> Decision      (§H.1: the config it served)
    config_request_names(store, profile, mac) -> tuple[str, ...]              (spec §C.6 row 5)

A call's media encryption (spec §G.14) has its rules beside these, sans-I/O as well:
:mod:`phoneemu.phone.media_rules` (``decide_media_offer``, ``decide_media_answer``, ``decide_incoming``,
``decide_media_received``).

TVS protocol between rule and caller (two-phase, no callbacks): when a rule needs TVS it returns a
*pending* decision (``accepted=False``, ``needs_tvs=QueryKey(subject, issuer, serial)``, rule
``"...-needs-tvs"``). The caller sends a QUERY to the TVS servers of ``store.tvs_servers``, caches
a certificate answer with ``store.cache_tvs(key, answer, now)``, and calls the same entry point
again with ``tvs_answer=`` a :class:`~phoneemu.phone.store.TvsAnswer`, ``TvsStatus.NOT_FOUND`` or
``TvsStatus.UNREACHABLE``. A still-valid cached answer is used without asking. A pending decision
never installs anything and never locks the phone.

Rule names: ``"<spec section>-<what decided>"``. The complete list:

Trust lists (``decide_trust_list``; kind CTL or ITL):
  ``G.2-legacy-ignores-itl``      non-SBD phone: the ITL is ignored ("No Trust List installed")
  ``G.3.1-oversize``              above the profile limit, 64 KiB (spec §B.5) — TOO_LARGE
  ``G.3.1-malformed``             header or any record does not parse — OTHER
  ``G.3.1-wrong-file-name``       header FILENAME (§A.2 tag 14) is not ``<kind>File.tlv`` nor the
                                  requested name (e.g. an ITL served as the CTL) — OTHER; checked even
                                  for trust on first use (:func:`trust_list_name_problem`)
  ``G.3.1-unsupported-hash``      header hash code the model cannot verify — UNSUPPORTED_HASH
                                  (checked first, so ``G.3-unsupported-hash`` is never reached)
  ``G.3.1-no-signer-record``      verified by a trusted key (G.3.2-G.3.4), but the file does not name
                                  its signer (issuer + serial) in a SAST record of its own (§B.4, §G.5)
                                  — UNKNOWN_SIGNER, or WRONG_ROLE when only another-role record names
                                  it (:func:`_own_signer_problem`)
  ``G.3-unchanged``               same bytes as the installed file (accepted, nothing changes)
  ``G.2-first-itl-tofu``          no CTL and no ITL: first ITL accepted unchecked (trust on first use)
  ``G.2-first-ctl-tofu``          no CTL and no ITL (or the empty rollback ITL): first CTL accepted
                                  unchecked (spec §G.2 [INF]); with an ITL installed a first CTL is a
                                  new trust list "when one is installed" (§G.3): its signer must be a
                                  SAST of the ITL or vouched by TVS
  ``G.3.6-empty-itl-accepts-any`` installed rollback ITL: any new ITL accepted
  ``G.3.2-signed-by-ctl``         signer is a SAST record of the installed CTL, signature good
  ``G.3.3-signed-by-itl-sast``    signer is a SAST record of the installed ITL, signature good
  ``G.3.4-needs-tvs``             pending: ask TVS (QUERY) for the signer
  ``G.3.4-vouched-by-tvs``        TVS returned the signer with role SAST, signature good
  ``G.3.4-tvs-wrong-role``        TVS knows the signer but not as SAST — WRONG_ROLE
  ``G.3.4-tvs-unknown-signer``    TVS does not know the signer — UNKNOWN_SIGNER
  ``G.3.4-tvs-unreachable``       TVS could not be reached — TVS_UNREACHABLE
  ``G.3.4-tvs-server-untrusted``  every TVS server reached presented a certificate that is not an ITL
                                  TVS record (§E.1, :func:`tvs_server_trusted`) — TVS_UNREACHABLE
  ``G.3.5-reject-unknown-signer`` no list knows the signer and TVS is not usable — UNKNOWN_SIGNER
                                  (WRONG_ROLE when a list has the certificate in another role); the
                                  reason ends with why TVS is not usable (:func:`_tvs_unusable_why`,
                                  as do G.4's, E.7.1's and F.1's)
  ``G.3-bad-signature``           signer known, signature (tampered file) fails — BAD_SIGNATURE
  ``G.3-unsupported-key``         signer key too big / EC on a non-EC model — UNSUPPORTED_KEY
  ``G.3-expired-signer``          signer certificate outside its validity at ``now`` — EXPIRED

Configs (``decide_config``; ``.cnf.xml``, ``.sgn``, ``.enc.sgn``):
  ``G.3.5-locked-ignores-config`` phone locked by a failed trust-list update: the served config is
                                  not applied and the phone keeps its installed one (§G.3.5 "ignores
                                  configuration changes"); the reason says when the served config is
                                  that same config (unchanged) — UNKNOWN_SIGNER either way (our
                                  convention: a locked boot is reported as not ok)
  ``G.4-wrong-file-name``         a ``.sgn`` / ``.enc.sgn`` whose header FILENAME is not the requested
                                  name (another phone's config) — OTHER, whatever the trust state
                                  (:func:`signed_file_name_problem`)
  ``G.4-unsigned-no-trust-list``  no CTL/ITL: unsigned config accepted
  ``G.4-empty-itl-accepts-unsigned``  rollback ITL (and no CTL): unsigned config accepted
  ``G.4-unsigned-rejected``       trust list installed: unsigned config refused — NOT_SIGNED
  ``G.4-signed-unchecked-no-trust-list``  no trust anchor: signature cannot be checked; accepted
  ``G.4-empty-itl-signature-unchecked``   rollback ITL disables signature checks (spec §G.11)
  ``G.4-signed-by-ctl-tftp`` / ``G.4-signed-by-itl-tftp`` / ``G.4-vouched-by-tvs``
  ``G.4-needs-tvs`` / ``G.4-tvs-wrong-role`` / ``G.4-tvs-unknown-signer`` / ``G.4-tvs-unreachable`` /
  ``G.4-tvs-server-untrusted``
  ``G.4-reject-unknown-signer`` / ``G.4-bad-signature`` / ``G.4-unsupported-hash`` /
  ``G.4-unsupported-key`` / ``G.4-expired-signer`` / ``G.4-malformed``
  ``G.12.3-decrypted``            ``.enc.sgn`` decrypted, hash checked, config accepted
  ``G.12.3-decrypt-failed``       wrong key / hash mismatch — DECRYPT_FAILED or HASH_MISMATCH
  ``G.12.3-no-key``               no LSC/MIC (PKI) or no manual key (symmetric) — DECRYPT_FAILED
  ``G.12.3-signer-not-checked``   (in ``reason``) models that ignore the signature of a manual-key
                                  (symmetric) ``.enc.sgn`` (§C.3, §C.5); a PKI ``.enc.sgn`` is always
                                  signer-checked (§G.12 step 3: it is encrypted to a public key)
Static files (``decide_static_file``: ring list, locale, dial rules a config names; seed "File
Authentication", spec §C.6 row 6): the ``G.4-*`` ids above with kind ``static``; nothing is
installed, a rejected file is just not used.
Short config (``decide_short_config``, spec §G.12 steps 1-2):
  ``G.12.1-plain-config`` / ``G.12.2-cert-hash-match`` / ``G.12.2-cert-hash-mismatch`` /
  ``G.12.2-wait-auth-string`` / ``G.12.2-symmetric-key-present`` / ``G.12.2-no-symmetric-key``
  ``G.12.5-encrypted-config-missing`` (``encrypted_config_missing``) the short config says encrConfig=true
  but the ``.enc.sgn`` could not be fetched — NOT_FOUND
Firmware (``decide_firmware``, spec §D; failure keeps the running load):
  ``D-wrong-load`` (not the requested load: load name or header FILENAME) /
  ``D-already-running`` (an *authenticated* image of the running load) / ``D-signed-by-image-key`` /
  ``D-unknown-signer`` / ``D-bad-signature`` /
  ``D-unsupported-hash`` / ``D-unsupported-key`` / ``D-expired-signer`` / ``D-malformed``
Transport (``decide_secure_transport``, spec §G.9; a non-secure device has no §G.9 decision: None):
  ``G.9-tls-with-ctl`` / ``G.9-retry-trust-file`` / ``G.9-fallback-tcp``
The SIP registrar over TLS (``decide_sip_server``, spec §G.5 "SIP-TLS server: CCM / CCM+TFTP in CTL"):
  ``G.5-sip-server-in-ctl`` / ``G.5-sip-server-untrusted`` (the registration itself, §G.13, is
  :mod:`phoneemu.phone.sip`'s: ``G.13-*``)
Auto-registration (``decide_auto_registration``, spec §G.10):
  ``G.10-device-config`` / ``G.10-use-default-config`` / ``G.10-no-config``
HTTPS application servers (``decide_https_server``, spec §E.7.1, §E.7.6, §G.5 "HTTPS XML services"):
  ``E.7.1-https-cert-in-trust-list``  server certificate is a CTL/ITL record with an HTTPS role
  ``E.7.1-https-needs-tvs``       pending: send TVS VERIFY with the full server certificate
  ``E.7.1-https-vouched-by-tvs``  TVS answered valid with an HTTPS role ("Authenticated the HTTPS
                                  conn via TVS"); the answer is cached for its TTL
  ``E.7.1-https-cached``          a cached valid TVS answer within its TTL: TVS not asked
  ``E.7.1-https-tvs-wrong-role``  TVS knows the certificate but with no HTTPS role — WRONG_ROLE
  ``E.7.1-https-tvs-unknown``     TVS does not know the certificate — UNKNOWN_SIGNER, "Host Not Found"
  ``E.7.1-https-tvs-unreachable`` TVS could not be reached — TVS_UNREACHABLE, "Host Not Found"
  ``E.7.1-https-cert-too-large``  the certificate does not fit a VERIFY request (uint16 body length,
                                  §E.2: about 64 KiB): TVS is not asked — TOO_LARGE, "Host Not Found"
  ``E.7.1-https-tvs-server-untrusted``  the TVS servers presented certificates that are not ITL TVS
                                  records (§E.1) — TVS_UNREACHABLE, "Host Not Found"
  ``E.7.1-https-not-trusted``     not in the lists and TVS not usable — UNKNOWN_SIGNER, "Host Not Found"
  ``E.7.1-https-malformed``       the server presented no (parsable) certificate — OTHER
  ``E.7.1-https-phone-locked``    a trust-list update failed (the phone is locked, §G.3.5): "HTTPS
                                  services fail" whatever the certificate — OTHER, "Host Not Found"
  ``E.7.1-plain-http``            (``plain_http_directory``) the config's secure directory URL is
                                  http:// (§G.11 workaround): no TLS, nothing to authenticate — accepted

The HTTPS config download (TCP 6971; ``https_config_applies``, ``decide_https_config_server``,
``decide_https_config``; spec §H.1, §A tag 28, §B.3 role 3, §G.5 "HTTPS provisioning (6971) server cert"):
  ``H.1-https-config``            the 6971 server's certificate is an ITL TFTP record with an EC key and the
                                  file it served (unsigned, §H.1) parses: the config, accepted and acted
                                  on as a signed config accepted by §G.4 is (a short one goes to §G.12)
  ``H.1-https-config-server-untrusted``  the certificate is not such a record — the request is not sent;
                                  the phone asks for its config the normal way (HTTP 6970 / TFTP, §G.4)
  ``H.1-https-config-malformed``  the file served over 6971 is no config — the normal way, as above
  ``H.1-https-config-wrong-device``  its ``<deviceName>`` names another device (ours: nothing else binds the
                                  unsigned file to the phone, as a ``.sgn``'s FILENAME does) — as above
  No refusal locks the phone nor decides its boot when the normal way gives a config (ours).

CAPF servers (``decide_capf_server``, spec §F.1, §G.5 "CAPF server: CAPF role (or TVS)"):
  ``F.1-capf-cert-in-trust-list``  the certificate is a CAPF record of the CTL/ITL
  ``F.1-capf-needs-tvs``          pending: ask TVS (QUERY) for the certificate
  ``F.1-capf-cert-too-large``     its subject + issuer do not fit a QUERY request (uint16 body length,
                                  §E.2): TVS is not asked, the phone does not talk to that server
  ``F.1-capf-vouched-by-tvs``     TVS returned exactly this certificate with role CAPF
  ``F.1-capf-server-untrusted``   anything else (no CAPF record and TVS not usable, unknown to TVS,
                                  wrong role, TVS unreachable) — the phone does not talk to that server

How the spec's flows follow (spec §G.5-§G.7):

* Roles (§G.5): trust lists need a SAST signer (installed-list record or TVS role 0); configs a
  TFTP (3) or CCM+TFTP (2) signer; firmware the model's image-signing certificate.
* Cluster move (§G.6): a new cluster's ITL is signed by a key no installed list knows; TVS (from
  the current config) is asked; the old TVS does not know it → ``G.3.4-tvs-unknown-signer`` and
  the phone is locked. Escapes: the old cluster's rollback ITL (signed by a key the phone trusts)
  is installed by G.3.3, after which G.3.6 accepts the new cluster's ITL and G.4 unsigned configs;
  bulk certificate exchange makes the old TVS answer with SAST (G.3.4); erase/factory reset
  returns the phone to first contact (G.2).
* ITL reset (§G.7): ``utils itl reset localkey`` serves an ITL signed by the CallManager key.
  The phone accepts it through G.3.3 because its current ITL carries the CallManager certificate
  as a SAST record (CUCM 8.x-9.x style, and CUCM lists it as SAST in the ITL); when the current
  ITL's SAST records are only ITLRecovery, the file is accepted through G.3.4 if TVS vouches for
  the CallManager certificate with role SAST. Re-signing with ITLRecovery afterwards is G.3.3.

Our conventions (spec [UNK]/[INF]), stated once here:

* Validity: file-signer certificates (installed-list records that carry a certificate, TVS
  answers, firmware signers) are checked against ``now`` (the lab clock); a record without a
  certificate has no validity to check. TOFU (G.2) checks nothing. TLS peer certificates (CAPF,
  TVS, HTTPS application servers, the SIP-TLS registrar) are matched against trust-list records here
  (:func:`decide_capf_server`, :func:`tvs_server_trusted`, :func:`decide_https_server`,
  :func:`decide_sip_server`); their validity dates are not checked — spec §E.1 ("the phone compares
  the certificate TVS presents with its ITL entry"), §E.7.1, §F.1 and §G.5 state only the record/role
  match (or TVS for HTTPS and CAPF), and neither spec nor seed documents a date check on these peers
  (the seed's only certificate dates are the ITLRecovery validity, spec §G.8). So an expired peer
  certificate that is a record of the list is accepted.
* Profile limits apply before any trust rule: size (§B.5) and header hash code, even for TOFU
  (a SHA-1-only model cannot take a SHA-512 ITL); key size/type when a signature is verified.
* A signer found in a list but whose signature fails is rejected at once (no fall-through to TVS).
  Every record of that list naming the signer (issuer + serial, §B.4) is tried first: two records
  with the same serial and issuer (an old and a new certificate) are both "the signer"
  (:func:`_verify_with_records`).
* A TVS answer vouches for a *file signer* (trust lists §G.3.4, configs and static files §G.4 (c))
  only with a certificate TVS returned (a QUERY answer, §E.7.2; :attr:`TvsAnswer.cert_from_tvs`). A
  VERIFY answer cached by an HTTPS check (§E.7.1) holds the certificate the HTTPS server presented;
  it still serves HTTPS and CAPF (both compare that exact DER), but for a file signer the phone asks
  TVS (QUERY) — CUCM's TVS matches a VERIFY by serial + issuer (§E.6), so a forged certificate with a
  known serial and issuer must not become a trust-list signer through the cache.
* TVS is usable when the profile has TVS, the last accepted config lists TVS servers and the
  installed ITL has a TVS record carrying a certificate or a key (spec §E.7.5, §E.1): a TVS record
  without either cannot authenticate a TVS server, and the phone never talks to a TVS its ITL does
  not name (:func:`tvs_server_trusted`; a TLS peer matches a record by :func:`record_matches_peer`).
* The first CTL is accepted on trust (spec §G.2 [INF]) only when no ITL, or only the rollback ITL, is
  installed; past a real ITL it is a new trust list "when one is installed" (§G.3: an ITL SAST signer
  or TVS). The first ITL is accepted on trust only when no CTL is installed (with a CTL, the ITL is
  authenticated by the CTL, §G.3.2).
* With no trust anchor at all a signed config's signature is not checked (nothing to check it
  against); with a rollback ITL and no CTL signature checking is off (spec §G.11).
* ``certHash`` comparison (§C.4, §G.12) accepts MD5 (32 hex digits) or SHA-1 (40), any case.
* Issuer names (a header's signer, a record's ISSUER_NAME, a certificate's issuer; §A.7, §B.4) are
  compared in any RDN order, separator (``;`` or ``,``), case and spacing (``certs.dn_key``): CUCM and
  certutils write the same DN in opposite orders, and phones accept either (§A.7).
* HTTPS server roles (§G.5 "APP-SERVER role, or TVS"; [INF] for the others): APP-SERVER (7), CCM (1),
  CCM+TFTP (2) and TFTP (3) records authenticate an HTTPS server; a list record matches by the exact
  certificate DER, or by key (+ serial and issuer) when it has no certificate — never by serial +
  issuer alone (:func:`record_matches_peer`). The TVS VERIFY cache key is the certificate's
  (subject, issuer, serial) :class:`QueryKey`. A failed HTTPS authentication shows "Host Not Found"
  (spec §E.7.6). Like other TLS peers, the HTTPS certificate's validity is not checked here.
* HTTPS config download (§H.1; the spec says what the port serves, not when a phone uses it): a phone
  asks TCP 6971 first when its model has EC support (our reading of §A tag 28, "ITL version 1.1 ...
  enables EC keys": the cp-8861 profile), the installed ITL's header carries signer version 1.1 (tag
  28), the ITL holds a TFTP (3) record with an EC key, and the phone is not locked (§G.3.5: a locked phone
  goes the normal way, where its rules refuse the config). The server's certificate must match such a
  record (:func:`record_matches_peer`); CCM+TFTP (2) and RSA TFTP records do not serve (§G.5 "TFTP role,
  EC key"), and TVS is not asked (§G.5 names no TVS for this certificate). Its validity is not checked,
  as for other TLS peers.
"""

from __future__ import annotations

import datetime as dt
import string
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Literal, Protocol

from cryptography import x509

from phoneemu.crypto import certs, keys
from phoneemu.crypto.keys import PublicKey
from phoneemu.errors import DecodeError, DecryptionError, SizeLimitError, VerificationError, VerifyReason
from phoneemu.formats import config as config_fmt
from phoneemu.formats import encrypted, firmware, signed
from phoneemu.formats.config import DeviceConfig
from phoneemu.formats.header import ParsedHeader, SignedHeader, verify_signature
from phoneemu.formats.trustlist import Role, TrustList, TrustRecord, roles_text
from phoneemu.phone import status
from phoneemu.phone.events import Decision, QueryKey
from phoneemu.phone.profile import PhoneProfile
from phoneemu.phone.store import AcceptedFirmware, TrustStore, TvsAnswer, TvsResult, TvsStatus
from phoneemu.protocols import tvs as tvs_proto

__all__ = [
    "CAPF_ROLES",
    "HTTPS_CONFIG_SIGNER_VERSION",
    "HTTPS_FAILED_STATUS",
    "HTTPS_ROLES",
    "NO_CONFIG_HELD",
    "NO_PHONE_CERTIFICATE",
    "TFTP_ROLES",
    "TVS_NOT_USABLE",
    "TrustKind",
    "TvsServerCheck",
    "config_request_names",
    "decide_auto_registration",
    "decide_capf_server",
    "decide_config",
    "decide_firmware",
    "decide_https_config",
    "decide_https_config_server",
    "decide_https_server",
    "decide_secure_transport",
    "decide_short_config",
    "decide_sip_server",
    "decide_static_file",
    "decide_trust_list",
    "encrypted_config_missing",
    "https_config_applies",
    "https_config_records",
    "https_query_key",
    "plain_http_directory",
    "query_key",
    "readable_records",
    "record_matches_peer",
    "signed_file_name_problem",
    "sip_server_certificates",
    "sip_transport",
    "static_request_name",
    "trust_list_name_problem",
    "tvs_cert_mismatch",
    "tvs_device_name",
    "tvs_server_trusted",
    "tvs_usable",
]

TrustKind = Literal["CTL", "ITL"]
#: Roles that may sign configs (spec §G.4, §G.5).
TFTP_ROLES = frozenset({Role.TFTP, Role.CCM_TFTP})
_SAST = frozenset({Role.SAST})
_FAILED = status.TRUST_LIST_UPDATE_FAILED
#: the words of every rejection because :func:`tvs_usable` is False (G.3.5, G.4, E.7.1, F.1), followed by
#: ``: `` and why (:func:`_tvs_unusable_why`); ``predict`` tells such a lockout by them
#: (:func:`phoneemu.scenario.predict.rests_on_no_config`): one text, written here only
TVS_NOT_USABLE = "TVS not usable"
#: why TVS is not usable on a phone holding no config (:func:`_tvs_unusable_why`); the reason ends with it
#: alone when nothing else stands in TVS's way, the lockout then resting on the config only
NO_CONFIG_HELD = "no config installed (the config names the TVS servers)"


# --------------------------------------------------------------------------- helpers
#: the G.12.2 reason a phone holding no certificate (no MIC, no LSC) gives: ``boot``'s no-MIC hint reads it
NO_PHONE_CERTIFICATE = "no phone certificate"

def query_key(header: SignedHeader) -> QueryKey:
    """The TVS QUERY key for a file's signer (subject, issuer, serial; spec §E.7.2, §B.4)."""
    s = header.signer
    return QueryKey(subject=s.name, issuer=s.issuer, serial=s.serial)


class _Memo(dict[tuple[object, ...], object]):
    """A bounded memo of values derived from immutable objects, keyed by their identity (``id``) and
    plain values (perf only, issue #6: a fleet hands the same parsed trust lists, headers, keys and
    certificates to thousands of phones, so what a rule derives from them is computed once per process,
    not once per boot). ``memo[key]`` is the value remembered, else :data:`_MISS` (a dict: a hit runs no
    Python code of ours, a few dozen a boot).

    Rule: an entry keeps a strong reference to the objects whose ``id`` its key holds, so while it exists
    no other object can have that ``id``: a hit is always about the very same objects, and its value is
    exactly what the computation would return. When ``max_items`` is reached the memo is emptied (memory
    stays bounded)."""

    __slots__ = ("_held", "max_items")

    def __init__(self, max_items: int = 4096) -> None:
        super().__init__()
        self._held: dict[tuple[object, ...], tuple[object, ...]] = {}
        self.max_items = max_items

    def __missing__(self, key: tuple[object, ...]) -> object:
        return _MISS

    def put(self, key: tuple[object, ...], objs: tuple[object, ...], value: object) -> None:
        """Remember ``value`` for ``key``, whose ids are those of ``objs`` (held while the entry lives)."""
        if len(self) >= self.max_items:
            self.clear()
            self._held.clear()
        self[key] = value
        self._held[key] = objs


_MISS = object()
#: trust lists larger than this are not remembered (each memo entry holds its list: 64 + 256 + 256 entries
#: of a 16 MiB list would be gigabytes); a cluster's lists are a few KiB
_MEMO_LIST_MAX = 256 * 1024
# (the memos holding trust lists are small: a fuzzing run's thousands of distinct lists are not kept)
_SIGNER_TEXT = _Memo(1024)
_FOUND = _Memo(256)
_KEY_PROBLEM = _Memo(256)
_VALIDITY = _Memo(1024)
_TVS_RECORD = _Memo(64)
_TVS_PEER = _Memo(256)
_RECORD_KEY = _Memo(1024)
_OWN_SIGNER = _Memo(64)
_HTTPS_CONFIG_RECORDS = _Memo(64)


def _signer_text(header: SignedHeader) -> str:
    key = (id(header),)
    value = _SIGNER_TEXT[key]
    if value is not _MISS:
        return value  # type: ignore[return-value]
    s = header.signer
    text = f"{s.name} (serial {s.serial.hex().upper()})"
    _SIGNER_TEXT.put(key, (header,), text)
    return text


#: the one issuer comparison (spec §A.7, §B.4: any RDN order, separator, case, spacing), shared with
#: ``inspect`` and the lab TVS; ``a`` None (a record without ISSUER_NAME) matches any ``b``
_same_issuer = certs.same_issuer


def _find(tl: TrustList | None, header: SignedHeader,
          roles: frozenset[int]) -> tuple[tuple[TrustRecord, ...], bool]:
    """The records of ``tl`` naming the signer (serial and issuer, §B.4) with one of ``roles``, in list
    order; and whether another-role one does (a pure function of the list and the signer's serial and
    issuer: remembered per list, :class:`_Memo`)."""
    if tl is None:
        return (), False
    signer = header.signer
    if len(tl.raw) > _MEMO_LIST_MAX:
        return _find_in(tl, signer.serial, signer.issuer, roles)
    key = (id(tl), signer.serial, signer.issuer, roles)
    value = _FOUND[key]
    if value is not _MISS:
        return value  # type: ignore[return-value]
    found = _find_in(tl, signer.serial, signer.issuer, roles)
    _FOUND.put(key, (tl,), found)
    return found


def _find_in(tl: TrustList, serial: bytes, issuer: str,
             roles: frozenset[int]) -> tuple[tuple[TrustRecord, ...], bool]:
    found: list[TrustRecord] = []
    other = False
    for i in range(len(tl)):
        try:
            rec = tl.record(i)
        except DecodeError:
            continue
        if rec.serial != serial or not _same_issuer(rec.issuer, issuer):
            continue
        if rec.role in roles:
            found.append(rec)
        else:
            other = True
    return tuple(found), other


def _key_problem(key: PublicKey, profile: PhoneProfile) -> str | None:
    memo = (id(key), id(profile))
    value = _KEY_PROBLEM[memo]
    if value is not _MISS:
        return value  # type: ignore[return-value]
    problem = _key_problem_of(key, profile)
    _KEY_PROBLEM.put(memo, (key, profile), problem)
    return problem


def _key_problem_of(key: PublicKey, profile: PhoneProfile) -> str | None:
    desc = keys.key_description(key)
    if desc.upper().startswith("EC"):
        if not profile.ec_support:
            return f"{profile.name} does not support EC keys ({desc})"
        # another curve (secp256k1, brainpool...) in a certificate a trust list or TVS hands the phone is
        # an unsupported key, as it is in a record's tag 7 (keys.decode_record_public_key)
        if desc.split(" ", 1)[-1] not in keys.SUPPORTED_CURVES:  # "EC secp256k1" (keys.key_description)
            return f"{desc} signer key: {profile.name} supports only the P-256, P-384 and P-521 curves"
        return None
    bits = keys.key_size_bits(key)
    if bits > profile.max_rsa_bits:
        return f"{bits}-bit RSA signer key exceeds the {profile.name} limit of {profile.max_rsa_bits} bits"
    return None


def _validity_problem(cert: x509.Certificate, now: int) -> str | None:
    memo = (id(cert), now)
    value = _VALIDITY[memo]
    if value is not _MISS:
        return value  # type: ignore[return-value]
    t = dt.datetime.fromtimestamp(now, tz=dt.UTC)
    problem: str | None = None
    if t < cert.not_valid_before_utc:
        problem = f"signer certificate not valid before {cert.not_valid_before_utc.isoformat()}"
    elif t > cert.not_valid_after_utc:
        problem = f"signer certificate expired {cert.not_valid_after_utc.isoformat()}"
    _VALIDITY.put(memo, (cert,), problem)
    return problem


def _verify(header: SignedHeader, signed_message: bytes, key: PublicKey, cert: x509.Certificate | None, *,
            profile: PhoneProfile, now: int, what: str) -> tuple[VerifyReason, str] | None:
    """Profile limits, validity and signature; the failure (reason, text) or None when good."""
    if header.hash_alg not in profile.hash_algorithms:  # (profile.supports_hash, inlined: per file)
        return VerifyReason.UNSUPPORTED_HASH, f"hash code {header.hash_alg} not supported by {profile.name}"
    problem = _key_problem(key, profile)
    if problem:
        return VerifyReason.UNSUPPORTED_KEY, problem
    if cert is not None:
        problem = _validity_problem(cert, now)
        if problem:
            return VerifyReason.EXPIRED, problem
    ph = ParsedHeader(header=header, body_offset=header.header_length, signature_span=(0, 0),
                      signed_message=signed_message)
    try:
        verify_signature(ph, key, fmt=what, what=what)
    except VerificationError as exc:
        return exc.reason, exc.message
    return None


def _record_key(rec: TrustRecord) -> tuple[PublicKey, x509.Certificate | None] | str:
    """The key (and certificate) of an installed record naming a signer, or why it has none a phone can
    verify with (a DSA or Ed25519 certificate, an unknown key algorithm, a tag 7 that does not decode).

    §G.3 step 2 "verify signature with [the signer certificate]": a record carrying a certificate gives
    the certificate's key — the one whose validity is checked — whatever its PUBLIC_KEY (tag 7) says; tag 7
    is the key of a record without a certificate. (Was: tag 7 first, so a record whose tag 7 is another
    key, e.g. that of an expired certificate, verified files by that key under a valid certificate's
    dates.) The rule is :meth:`TrustRecord.signature_key`'s, which ``inspect`` follows too. TLS peers are
    matched the same way, certificate first (:func:`record_matches_peer`). The answer is remembered per
    (immutable) record: one key object, so the key memos hit."""
    value = _RECORD_KEY[(id(rec),)]
    if value is not _MISS:
        return value  # type: ignore[return-value]
    got: tuple[PublicKey, x509.Certificate | None] | str
    try:
        got = rec.signature_key(), rec.x509() if rec.certificate is not None else None
    except DecodeError as exc:
        got = f"signer record has no usable key: {exc.message}"
    _RECORD_KEY.put((id(rec),), (rec,), got)
    return got


def _verify_with_records(recs: Sequence[TrustRecord], header: SignedHeader, signed_message: bytes, *,
                         profile: PhoneProfile, now: int, what: str,
                         prefix: str) -> tuple[str, VerifyReason, str] | None:
    """§G.3 steps 2-3, §G.4 (a)-(b): verify with the records of one installed list that name the signer.

    Issuer + serial is all that names a signer (§B.4, §G.3 step 1), so every such record is tried (e.g.
    an old and a new certificate with the same serial and issuer but different keys): None as soon as
    one passes (profile limits, validity, signature). Otherwise the failure of the first, as (rule,
    reason code, text); the text adds the others' when there were several."""
    failures: list[tuple[str, VerifyReason, str]] = []
    for rec in recs:
        got = _record_key(rec)
        if isinstance(got, str):
            failures.append((f"{prefix}-bad-signature", VerifyReason.UNSUPPORTED_KEY, got))
            continue
        fail = _verify(header, signed_message, got[0], got[1], profile=profile, now=now, what=what)
        if fail is None:
            return None
        failures.append((_fail_rule(prefix, fail[0]), fail[0], fail[1]))
    rule, code, text = failures[0]
    if len(failures) > 1:
        text = f"{len(failures)} records name the signer and none verifies: " + \
            "; ".join(f"record {n}: {why}" for n, (_, _, why) in enumerate(failures, 1))
    return rule, code, text


def _own_signer_problem(tl: TrustList) -> tuple[VerifyReason, str] | None:
    """§B.4, §G.5 ("ITLFile.tlv: SAST record inside the file"): a trust list names its signer (issuer +
    serial, all that names a signer) in a SAST record of its own; why it does not, else None. That the
    phone refuses such a list is our inference [INF]: the sources say where the signer is, not what a
    phone does without it.

    Checked once a trusted key verified the file (§G.3 steps 2-4), so it changes no other rejection; not
    for trust on first use (§G.2) or under the rollback ITL (§G.3.6), which check nothing. Without it a
    list signed by a trusted key but listing that signer in no SAST record (absent, or only as TFTP) was
    installed, and the phone then refused every later list from the signer that signed it. A pure
    function of the (shared, immutable) list: remembered per list."""
    small = len(tl.raw) <= _MEMO_LIST_MAX
    value = _OWN_SIGNER[(id(tl),)] if small else _MISS
    if value is not _MISS:
        return value  # type: ignore[return-value]
    recs, other = _find(tl, tl.header, _SAST)
    problem: tuple[VerifyReason, str] | None = None
    if not recs:
        where = "only in a non-SAST record" if other else "in no SAST record"
        problem = (VerifyReason.WRONG_ROLE if other else VerifyReason.UNKNOWN_SIGNER,
                   f"the {tl.kind} lists the signer that signed it {where} (spec §B.4, §G.5: the signer is "
                   "a SAST record inside the file)")
    if small:
        _OWN_SIGNER.put((id(tl),), (tl,), problem)
    return problem


def _identifies_peer(rec: TrustRecord) -> bool:
    """A record a TLS peer's certificate can be matched against: it carries a certificate or a key."""
    return not rec.is_empty and (rec.certificate is not None or rec.public_key is not None)


def record_matches_peer(rec: TrustRecord, cert_der: bytes, cert: x509.Certificate) -> bool:
    """Is the TLS peer certificate ``cert_der`` (parsed: ``cert``) the one record ``rec`` names?

    Our convention (spec §B.2, §E.1, §F.1: the phone "compares the certificate with its ITL entry"):
    a record with a certificate matches exactly that DER; a record without one matches a certificate
    with the same public key (tag 7) and, where the record carries them, the same serial and issuer.
    Serial and issuer alone never match (anyone can write them into a self-made certificate; the TLS
    handshake proves only the key). An empty record matches nothing.
    """
    if rec.is_empty:
        return False
    if rec.certificate is not None:
        return rec.certificate == cert_der
    if rec.public_key is None:
        return False
    try:
        same_key = keys.encode_record_public_key(rec.public_key_obj()) == \
            keys.encode_record_public_key(certs.cert_public_key(cert))
    except (DecodeError, ValueError, TypeError):
        return False
    if not same_key:
        return False
    if rec.serial is not None and rec.serial != certs.serial_bytes(cert.serial_number):
        return False
    return rec.issuer is None or _same_issuer(rec.issuer, certs.dn_text(cert.issuer))


def tvs_usable(store: TrustStore, profile: PhoneProfile) -> bool:
    """TVS can be asked: model has TVS, config lists servers, and the ITL has a TVS record the TVS
    server's certificate can be checked against — a certificate or a key (spec §E.7.5, §E.1, §G.5)."""
    if not profile.tvs_enabled or not store.tvs_servers or store.itl is None:
        return False
    itl = store.itl
    value = _TVS_RECORD[(id(itl),)]
    if value is not _MISS:
        return bool(value)
    usable = any(_identifies_peer(r) for r in readable_records(itl) if r.role == Role.TVS)
    if len(itl.raw) <= _MEMO_LIST_MAX:
        _TVS_RECORD.put((id(itl),), (itl,), usable)
    return usable


def _tvs_unusable_why(store: TrustStore, profile: PhoneProfile) -> str:
    """Why :func:`tvs_usable` is False, from the facts it checks, each that fails: the model has no TVS
    (alone: the rest would not help), the phone's config names no TVS server (or it holds no config), no
    ITL is installed, or the installed ITL has no TVS record a server's certificate can be checked against
    (the rollback ITL blanks it, spec §B.7). Reasons of the rejections :func:`tvs_usable` decides (G.3.5,
    G.4, E.7.1, F.1) end with it, so that a CI reader knows what to fix; called on those rejections only,
    never on an accepting path."""
    if not profile.tvs_enabled:
        return f"{profile.name} has no TVS"
    why = []
    if store.config is None:
        why.append(NO_CONFIG_HELD)
    elif not store.tvs_servers:
        why.append("the installed config names no TVS server")
    itl = store.itl
    if itl is None:
        why.append("no ITL installed")
    elif itl.is_empty:
        why.append("the installed ITL is the empty (rollback) one: no TVS record a server can be checked "
                   "against (spec §B.7)")
    elif not any(r.role == Role.TVS for r in readable_records(itl)):
        why.append("the installed ITL has no TVS record")
    elif not any(_identifies_peer(r) for r in readable_records(itl) if r.role == Role.TVS):
        why.append("the installed ITL's TVS record has no certificate or key")
    return " and ".join(why) or "no ITL TVS record a server can be checked against"  # (tvs_usable: never)


def tvs_server_trusted(store: TrustStore, cert_der: bytes | None) -> bool:
    """§E.1, §G.5 "TVS server: TVS role in ITL": the certificate a TVS server presents must match an ITL
    TVS (21) record (:func:`record_matches_peer`). No ITL, no such record, or no certificate → False:
    the phone never talks to a TVS its trust list does not name."""
    if not cert_der or store.itl is None:
        return False
    itl = store.itl
    der = bytes(cert_der)
    value = _TVS_PEER[(id(itl), der)]
    if value is not _MISS:
        return bool(value)
    try:
        cert = certs.load_cert_der(der)
    except DecodeError:
        trusted = False
    else:
        trusted = any(record_matches_peer(r, der, cert) for r in readable_records(itl) if r.role == Role.TVS)
    if len(itl.raw) <= _MEMO_LIST_MAX:
        _TVS_PEER.put((id(itl), der), (itl,), trusted)
    return trusted


class TvsServerCheck:
    """§E.1 for one TVS exchange: the ``accept_server`` callback (:func:`tvs_server_trusted` per server
    tried); it keeps the verdicts, so that "servers were reached and every one was refused" (``refused``:
    ``TvsStatus.SERVER_UNTRUSTED``) is told apart from "unreachable". ``on_refused`` is called per refusal."""

    def __init__(self, store: TrustStore, on_refused: Callable[[], None] | None = None) -> None:
        self.store = store
        self.on_refused = on_refused
        self.seen: set[bool] = set()

    @property
    def refused(self) -> bool:
        return self.seen == {False}

    def __call__(self, der: bytes | None) -> bool:
        ok = tvs_server_trusted(self.store, der)
        self.seen.add(ok)
        if not ok and self.on_refused is not None:
            self.on_refused()
        return ok


def readable_records(tl: TrustList) -> Iterable[TrustRecord]:
    """The records of ``tl`` that decode (a broken record is skipped: it matches nothing)."""
    for i in range(len(tl)):
        try:
            yield tl.record(i)
        except DecodeError:
            continue


def _signer_answer(store: TrustStore, key: QueryKey, now: int,
                   tvs_answer: TvsResult | None) -> TvsResult | None:
    """The TVS answer about a file signer: ``tvs_answer``, else a cached answer whose certificate TVS
    returned (a QUERY answer, §G.3.4, §E.7.2). A cached VERIFY answer (``cert_from_tvs`` False: the
    certificate an HTTPS server presented, §E.7.1) is not one — None, so the rule asks TVS (QUERY)."""
    if tvs_answer is not None:
        return tvs_answer
    cached = store.tvs_lookup(key, now)
    return cached if cached is not None and cached.cert_from_tvs else None


def _tvs_cert(answer: TvsAnswer, header: SignedHeader) -> x509.Certificate | None:
    """The answered certificate if TVS returned it (a QUERY answer, not a VERIFY one: §G.3.4 "TVS
    returns the certificate") and it is the signer's (serial and issuer match), else None. The match is
    :meth:`TvsAnswer.mismatch`'s verdict, kept on the answer (the boot judged it when the answer came)."""
    if not answer.cert_from_tvs or answer.mismatch(query_key(header)) is not None:
        return None
    return certs.load_cert_der(answer.cert_der)  # readable: mismatch None says so (loads are cached)


def _tvs_cert_key(cert: x509.Certificate) -> PublicKey | str:
    """The public key of a certificate TVS returned, or why it has none a phone can verify with (a DSA or
    Ed25519 key, an unknown key algorithm: the answer is network input, and the signer it names is then
    refused as an unsupported key, never an error out of the rule)."""
    try:
        return certs.cert_public_key(cert)
    except DecodeError as exc:
        return f"the signer certificate TVS returned has no usable key: {exc.message}"


def tvs_cert_mismatch(cert: x509.Certificate, key: QueryKey) -> tuple[Literal["serial", "issuer"], ...]:
    """What differs between the certificate a TVS QUERY answer returned and the signer asked about
    (``key``, spec §E.7.2): ``"serial"`` (as a header writes it, §A.2 tag 5) and/or ``"issuer"``
    (normalised DN); empty when it is the signer's. A phone takes a certificate that differs as no answer,
    "TVS does not know the signer" (§G.3.4, :func:`_tvs_cert`); ``phoneemu tvs`` says so too."""
    differs: list[Literal["serial", "issuer"]] = []
    if certs.serial_bytes(cert.serial_number) != key.serial:
        differs.append("serial")
    if not _same_issuer(certs.dn_text(cert.issuer), key.issuer):
        differs.append("issuer")
    return tuple(differs)


_FAIL_RULE = {
    VerifyReason.UNSUPPORTED_HASH: "unsupported-hash",
    VerifyReason.UNSUPPORTED_KEY: "unsupported-key",
    VerifyReason.EXPIRED: "expired-signer",
}


def _fail_rule(prefix: str, reason: VerifyReason) -> str:
    return f"{prefix}-{_FAIL_RULE.get(reason, 'bad-signature')}"


# --------------------------------------------------------------------------- header FILENAME (§A.2 tag 14)
_ASCII_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)


def _name_key(name: str) -> str:
    """A file name as compared: ``\\`` read as ``/``, leading ``/`` dropped, ASCII letters upper-cased
    (our convention). Only ASCII folds: ``str.upper`` would make a name with a dotless i (U+0131), an
    fi ligature (U+FB01) or a long s (U+017F) equal to the ASCII ``ITLFile.tlv`` / ``SEP….sgn``."""
    return name.replace("\\", "/").lstrip("/").translate(_ASCII_UPPER)


def _shown(name: str) -> str:
    """``name`` for a reason text: repr, cut to 120 characters (a FILENAME may be 64 KB)."""
    return repr(name) if len(name) <= 120 else repr(name[:120]) + f"... ({len(name)} characters)"


def trust_list_name_problem(header_filename: str, *, kind: TrustKind,
                            requested: str | None = None) -> str | None:
    """Why a trust list whose header FILENAME is ``header_filename`` is not the ``kind`` asked for; None
    if it is.

    Spec §A.2 tag 14 / §B.1: a CTL names itself ``CTLFile.tlv`` and an ITL ``ITLFile.tlv``, also when
    served as the per-device ``CTLSEP<MAC>.tlv`` / ``ITLSEP<MAC>.tlv``. Our convention (the spec does
    not say how exactly a phone compares, [UNK]): the name is compared case-insensitively, ``\\`` as
    ``/`` and without a leading ``/``; ``<kind>File.tlv`` is accepted, and so is exactly the
    ``requested`` name (a per-device file naming itself), nothing else — an ITL served as the CTL, or
    another phone's per-device list, is refused. Shared by the boot (:func:`decide_trust_list`) and
    ``phoneemu predict`` (its installed lists).
    """
    if header_filename == f"{kind}File.tlv" or (requested and header_filename == requested):
        return None  # (fast path: the same answer as below)
    got = _name_key(header_filename)
    allowed = {f"{kind}FILE.TLV"}
    if requested:
        allowed.add(_name_key(requested))
    if got in allowed:
        return None
    asked = f" (requested {requested})" if requested else ""
    return (f"header FILENAME {_shown(header_filename)} is not {kind}File.tlv{asked}: not the {kind} "
            "asked for")


def signed_file_name_problem(header_filename: str, requested: str) -> str | None:
    """Why a ``.sgn`` / ``.enc.sgn`` whose header FILENAME is ``header_filename`` is not ``requested``; None
    if it is.

    Spec §A.2 tag 14 / §C.1: the FILENAME of a signed file is its own name (base name + ``.sgn``, or its
    relative path for files in sub-directories), and the name is inside the signed bytes. Our
    convention ([UNK] how a phone compares): equal to the requested name, compared case-insensitively
    (``SEP<MAC>`` hex digits may be either case), ``\\`` as ``/``, without a leading ``/``; the
    extensions must match too (a ``.sgn`` is not an ``.enc.sgn``). So another phone's correctly signed
    ``SEPAAA….cnf.xml.sgn`` served when ``SEPBBB….cnf.xml.sgn`` was requested is refused.
    """
    if header_filename == requested or _name_key(header_filename) == _name_key(requested):
        return None
    return f"header FILENAME {_shown(header_filename)} is not the requested {requested!r}"


# --------------------------------------------------------------------------- §G.2/§G.3 trust lists
def _no_ctl_held(store: TrustStore) -> str:
    """What ``G.2-first-ctl-tofu`` found installed: no CTL and no ITL, or no CTL and the empty (rollback)
    ITL, which accepts any new CTL/ITL as no list would (spec §B.7, §G.3.6)."""
    if store.itl is None:
        return "no CTL or ITL installed"
    return "no CTL installed and the installed ITL is the empty (rollback) one"


def decide_trust_list(store: TrustStore, new: TrustList | bytes, *, kind: TrustKind, profile: PhoneProfile,
                      now: int, tvs_answer: TvsResult | None = None, file: str | None = None) -> Decision:
    """Decide a downloaded CTL/ITL (spec §G.2, §G.3, §B.5). See the module docstring for the rules."""
    fname = file or f"{kind}File.tlv"

    def d(rule: str, accepted: bool, reason: str, *, code: VerifyReason | None = None,
          signer: str | None = None, st: str | None = None, tl: TrustList | None = None,
          needs: QueryKey | None = None) -> Decision:
        shown = (st or None) if st is not None else (None if accepted else _FAILED)
        return Decision(rule=rule, accepted=accepted, reason=reason, file=fname, signer=signer,
                        reason_code=code, status=shown,
                        needs_tvs=needs, kind=kind, artefact=tl,
                        action="ask-tvs" if needs is not None else None)

    if kind == "ITL" and not profile.sbd:
        return d("G.2-legacy-ignores-itl", False, f"{profile.name} has no Security By Default: ITL ignored",
                 st=status.NO_TRUST_LIST)
    raw = new.raw if isinstance(new, TrustList) else bytes(new)
    limit = profile.trust_list_limit
    if len(raw) > limit:
        return d("G.3.1-oversize", False, f"{len(raw)} bytes exceeds the {limit}-byte trust-list limit",
                 code=VerifyReason.TOO_LARGE)
    try:
        tl = new if isinstance(new, TrustList) and new.kind == kind else \
            store.intern.trust_list(raw, kind=kind, limit=limit)
        _ = tl.records  # every record must decode (cached on the shared object)
    except SizeLimitError as exc:  # pragma: no cover - size checked above
        return d("G.3.1-oversize", False, exc.message, code=VerifyReason.TOO_LARGE)
    except DecodeError as exc:
        return d("G.3.1-malformed", False, str(exc), code=VerifyReason.OTHER)
    h = tl.header
    who = _signer_text(h)
    wrong = trust_list_name_problem(h.filename, kind=kind, requested=file)
    if wrong is not None:
        return d("G.3.1-wrong-file-name", False, wrong, code=VerifyReason.OTHER, signer=who)
    if h.hash_alg not in profile.hash_algorithms:  # (profile.supports_hash, inlined: per file)
        return d("G.3.1-unsupported-hash", False, f"hash code {h.hash_alg} not supported by {profile.name}",
                 code=VerifyReason.UNSUPPORTED_HASH, signer=who)
    installed = store.trust_list(kind)
    if installed is not None and installed.raw == tl.raw:
        return d("G.3-unchanged", True, f"{kind} unchanged", signer=who, st="")
    # §G.2 trust on first use
    if kind == "CTL" and store.ctl is None and (store.itl is None or store.itl_is_empty):
        return d("G.2-first-ctl-tofu", True, f"{_no_ctl_held(store)}: first CTL accepted unchecked",
                 signer=who, st=status.installed_message(ctl=True, itl=store.itl is not None), tl=tl)
    if kind == "ITL" and store.ctl is None and store.itl is None:
        return d("G.2-first-itl-tofu", True, "no CTL or ITL installed: first ITL accepted without "
                 "signature check (leap of faith)", signer=who, st=status.ITL_INSTALLED, tl=tl)
    if kind == "ITL" and store.ctl is None and store.itl_is_empty:
        return d("G.3.6-empty-itl-accepts-any", True, "installed ITL is the rollback (empty) ITL: any new "
                 "ITL accepted", signer=who, st=status.TRUST_LIST_UPDATED, tl=tl)
    # §G.3.2 / §G.3.3 installed lists, SAST records
    other_role = False
    for rule, anchor_list in (("G.3.2-signed-by-ctl", store.ctl), ("G.3.3-signed-by-itl-sast", store.itl)):
        recs, other = _find(anchor_list, h, _SAST)
        other_role = other_role or other
        if not recs:
            continue
        failed = _verify_with_records(recs, h, tl.signed_message, profile=profile, now=now, what=kind,
                                      prefix="G.3")
        if failed is not None:
            return d(failed[0], False, failed[2], code=failed[1], signer=who)
        if (own := _own_signer_problem(tl)) is not None:
            return d("G.3.1-no-signer-record", False, own[1], code=own[0], signer=who)
        return d(rule, True, f"signature verified with the SAST record of the installed "
                 f"{'CTL' if anchor_list is store.ctl else 'ITL'}", signer=who,
                 st=status.TRUST_LIST_UPDATED, tl=tl)
    # §G.3.4 TVS
    if tvs_usable(store, profile):
        key = query_key(h)
        answer = _signer_answer(store, key, now, tvs_answer)
        if answer is None:
            return d("G.3.4-needs-tvs", False, "signer unknown to the installed lists: ask TVS",
                     signer=who, st="", needs=key)
        if answer is TvsStatus.UNREACHABLE:
            return d("G.3.4-tvs-unreachable", False, "TVS unreachable: signer cannot be vouched for",
                     code=VerifyReason.TVS_UNREACHABLE, signer=who)
        if answer is TvsStatus.SERVER_UNTRUSTED:
            return d("G.3.4-tvs-server-untrusted", False, "TVS server certificate is not an ITL TVS record "
                     "(spec §E.1): TVS not used, signer cannot be vouched for",
                     code=VerifyReason.TVS_UNREACHABLE, signer=who)
        cert = _tvs_cert(answer, h) if isinstance(answer, TvsAnswer) else None
        if cert is None or not isinstance(answer, TvsAnswer):
            return d("G.3.4-tvs-unknown-signer", False, "TVS does not know the signer",
                     code=VerifyReason.UNKNOWN_SIGNER, signer=who)
        if Role.SAST not in answer.roles:
            return d("G.3.4-tvs-wrong-role", False, f"TVS roles {roles_text(answer.roles)} lack SAST (0)",
                     code=VerifyReason.WRONG_ROLE, signer=who)
        tvs_key = _tvs_cert_key(cert)
        if isinstance(tvs_key, str):
            return d("G.3-unsupported-key", False, tvs_key, code=VerifyReason.UNSUPPORTED_KEY, signer=who)
        fail = _verify(h, tl.signed_message, tvs_key, cert, profile=profile, now=now, what=kind)
        if fail is not None:
            return d(_fail_rule("G.3", fail[0]), False, fail[1], code=fail[0], signer=who)
        if (own := _own_signer_problem(tl)) is not None:
            return d("G.3.1-no-signer-record", False, own[1], code=own[0], signer=who)
        return d("G.3.4-vouched-by-tvs", True, "TVS returned the signer with role SAST; signature verified",
                 signer=who, st=status.TRUST_LIST_UPDATED, tl=tl)
    code = VerifyReason.WRONG_ROLE if other_role else VerifyReason.UNKNOWN_SIGNER
    why = "signer is in the installed lists only with a non-SAST role" if other_role else \
        "signer unknown to the installed CTL/ITL"
    why = f"{why} and {TVS_NOT_USABLE}: {_tvs_unusable_why(store, profile)}"
    return d("G.3.5-reject-unknown-signer", False, why, code=code, signer=who)


# --------------------------------------------------------------------------- §G.4/§G.12 configs
def _config_kind(file_name: str) -> Literal["plain", "sgn", "enc"]:
    if file_name.endswith(".enc.sgn"):
        return "enc"
    if file_name.endswith(".sgn"):
        return "sgn"
    return "plain"


def _anchors(store: TrustStore, profile: PhoneProfile) -> Literal["none", "empty", "full"]:
    itl = store.itl if profile.sbd else None
    if store.ctl is None and itl is None:
        return "none"
    if store.ctl is None and itl is not None and itl.is_empty:
        return "empty"
    return "full"


def _check_config_signer(store: TrustStore, header: SignedHeader, signed_message: bytes, *,
                         profile: PhoneProfile, now: int, tvs_answer: TvsResult | None,
                         file: str, kind: str = "config") -> Decision | None:
    """§G.4 signer rules for a signed config (or another signed TFTP/HTTP file, ``kind``); None when the
    signature is accepted (caller goes on)."""
    who = _signer_text(header)

    def d(rule: str, reason: str, code: VerifyReason | None, needs: QueryKey | None = None) -> Decision:
        return Decision(rule=rule, accepted=False, reason=reason, file=file, signer=who, reason_code=code,
                        needs_tvs=needs, kind=kind, action="ask-tvs" if needs is not None else None)

    if header.hash_alg not in profile.hash_algorithms:  # (profile.supports_hash, inlined: per file)
        return d("G.4-unsupported-hash", f"hash code {header.hash_alg} not supported by {profile.name}",
                 VerifyReason.UNSUPPORTED_HASH)
    other_role = False
    itl = store.itl if profile.sbd else None
    for anchor in (store.ctl, itl):
        recs, other = _find(anchor, header, TFTP_ROLES)
        other_role = other_role or other
        if not recs:
            continue
        failed = _verify_with_records(recs, header, signed_message, profile=profile, now=now, what="config",
                                      prefix="G.4")
        if failed is not None:
            return d(failed[0], failed[2], failed[1])
        return None
    if tvs_usable(store, profile):
        key = query_key(header)
        answer = _signer_answer(store, key, now, tvs_answer)
        if answer is None:
            return d("G.4-needs-tvs", "config signer unknown to the installed lists: ask TVS", None, key)
        if answer is TvsStatus.UNREACHABLE:
            return d("G.4-tvs-unreachable", "TVS unreachable", VerifyReason.TVS_UNREACHABLE)
        if answer is TvsStatus.SERVER_UNTRUSTED:
            return d("G.4-tvs-server-untrusted", "TVS server certificate is not an ITL TVS record "
                     "(spec §E.1)", VerifyReason.TVS_UNREACHABLE)
        cert = _tvs_cert(answer, header) if isinstance(answer, TvsAnswer) else None
        if cert is None or not isinstance(answer, TvsAnswer):
            return d("G.4-tvs-unknown-signer", "TVS does not know the config signer",
                     VerifyReason.UNKNOWN_SIGNER)
        if not answer.roles & TFTP_ROLES:
            return d("G.4-tvs-wrong-role",
                     f"TVS roles {roles_text(answer.roles)} lack TFTP (3) / CCM+TFTP (2)",
                     VerifyReason.WRONG_ROLE)
        tvs_key = _tvs_cert_key(cert)
        if isinstance(tvs_key, str):
            return d("G.4-unsupported-key", tvs_key, VerifyReason.UNSUPPORTED_KEY)
        fail = _verify(header, signed_message, tvs_key, cert, profile=profile, now=now, what="config")
        if fail is not None:
            return d(_fail_rule("G.4", fail[0]), fail[1], fail[0])
        return None
    code = VerifyReason.WRONG_ROLE if other_role else VerifyReason.UNKNOWN_SIGNER
    return d("G.4-reject-unknown-signer", "config signer is not a TFTP/CCM+TFTP certificate of the "
             f"installed lists and {TVS_NOT_USABLE}: {_tvs_unusable_why(store, profile)}", code)


def _signer_source(store: TrustStore, header: SignedHeader, profile: PhoneProfile) -> str:
    if _find(store.ctl, header, TFTP_ROLES)[0]:
        return "G.4-signed-by-ctl-tftp"
    if profile.sbd and _find(store.itl, header, TFTP_ROLES)[0]:
        return "G.4-signed-by-itl-tftp"
    return "G.4-vouched-by-tvs"


def _unchanged_config(store: TrustStore, file_name: str, data: bytes,
                      kind: Literal["plain", "sgn", "enc"]) -> bool:
    """Does ``data`` (served as ``file_name``) carry exactly the installed config?

    Our convention for §G.3.5 ("ignores configuration changes"): unchanged = the same file name as the
    installed config and the same XML — the plain bytes, or a ``.sgn`` body whose header FILENAME is the
    requested name. An ``.enc.sgn`` cannot be compared without decrypting and counts as a change.
    """
    inst = store.config
    if inst is None or _name_key(inst.file) != _name_key(file_name) or kind == "enc":
        return False
    body = data
    if kind == "sgn":
        try:
            sf = signed.parse(data)
        except DecodeError:
            return False
        if signed_file_name_problem(sf.header.filename, file_name) is not None:
            return False
        body = sf.body
    return body == inst.xml


def decide_config(store: TrustStore, file_name: str, data: bytes, *, profile: PhoneProfile, now: int,
                  tvs_answer: TvsResult | None = None) -> Decision:
    """Decide a downloaded config by its name: plain, ``.sgn`` or ``.enc.sgn`` (spec §G.4, §G.12)."""
    kind = _config_kind(file_name)
    trust = _anchors(store, profile)

    def reject(rule: str, reason: str, code: VerifyReason | None, *, signer: str | None = None,
               action: str | None = None) -> Decision:
        return Decision(rule=rule, accepted=False, reason=reason, file=file_name, signer=signer,
                        reason_code=code, kind="config", action=action)

    def accept(rule: str, reason: str, xml: bytes, *, signer: str | None = None) -> Decision:
        try:
            acc = store.parse_config(xml, file=file_name)
        except DecodeError as exc:
            return reject("G.4-malformed", str(exc), VerifyReason.OTHER, signer=signer)
        return Decision(rule=rule, accepted=True, reason=reason, file=file_name, signer=signer,
                        kind="config", artefact=acc)

    if store.locked:
        if _unchanged_config(store, file_name, data, kind):
            return reject("G.3.5-locked-ignores-config", "trust-list update failed: the served config is "
                          "unchanged — the phone keeps running its installed config (it ignores "
                          "configuration changes, spec §G.3.5)", VerifyReason.UNKNOWN_SIGNER)
        if store.config is None:
            first = "" if store.has_trust_list else "; on a phone holding no trust list this is our " \
                "convention — the seed: an ITL over 64 KiB makes registration fail"
            return reject("G.3.5-locked-ignores-config", "trust list refused: the phone holds no config "
                          f"and takes none until a trust list loads (spec §G.3.5{first})",
                          VerifyReason.UNKNOWN_SIGNER)
        return reject("G.3.5-locked-ignores-config", "trust-list update failed: the phone ignores "
                      "configuration changes and keeps its installed config (spec §G.3.5)",
                      VerifyReason.UNKNOWN_SIGNER)
    if kind == "plain":
        if trust == "none":
            return accept("G.4-unsigned-no-trust-list", "no trust list installed: unsigned config accepted",
                          data)
        if trust == "empty":
            return accept("G.4-empty-itl-accepts-unsigned", "rollback ITL installed: unsigned config "
                          "accepted", data)
        return reject("G.4-unsigned-rejected", "a trust list is installed: only signed configs are "
                      "accepted", VerifyReason.NOT_SIGNED)
    try:
        env: signed.SignedFile | encrypted.EncryptedFile = \
            signed.parse(data) if kind == "sgn" else encrypted.parse(data)
    except DecodeError as exc:
        return reject("G.4-malformed", str(exc), VerifyReason.OTHER)
    who = _signer_text(env.header)
    wrong = signed_file_name_problem(env.header.filename, file_name)
    if wrong is not None:
        return reject("G.4-wrong-file-name", wrong, VerifyReason.OTHER, signer=who)
    # §C.3/§C.5: only the manual-key (symmetric) .enc.sgn of some models goes unchecked; a PKI one is
    # encrypted to the phone's *public* key, so anyone could build it: its signer is always checked.
    check_signer = kind == "sgn" or profile.enc_signer_checked or \
        not (isinstance(env, encrypted.EncryptedFile) and env.method == "symmetric")
    rule, reason = "", ""
    if trust == "none":
        rule, reason = "G.4-signed-unchecked-no-trust-list", "no trust anchor: signature not checked"
    elif trust == "empty":
        rule, reason = "G.4-empty-itl-signature-unchecked", "rollback ITL: signature checking disabled"
    elif not check_signer:
        rule, reason = "G.12.3-decrypted", f"G.12.3-signer-not-checked: {profile.name} ignores the " \
            "signature of a manual-key .enc.sgn (spec §C.3)"
    else:
        bad = _check_config_signer(store, env.header, env.signed_message, profile=profile, now=now,
                                   tvs_answer=tvs_answer, file=file_name)
        if bad is not None:
            return bad
        rule = _signer_source(store, env.header, profile)
        reason = "signature verified"
    if isinstance(env, signed.SignedFile):
        return accept(rule, reason, env.body, signer=who)
    return _decrypt_config(store, env, file_name, profile=profile, reason=reason, signer=who, accept=accept,
                           reject=reject)


def decide_static_file(store: TrustStore, file_name: str, data: bytes, *, profile: PhoneProfile, now: int,
                       tvs_answer: TvsResult | None = None) -> Decision:
    """§G.4 for the static files a config names (ring list, locale, dial rules; seed "File
    Authentication", spec §C.6 row 6): the same trust states and signer rules as a config.

    ``file_name`` is the name requested: ``<name>.sgn`` when a (non-empty) trust list is installed,
    the plain name otherwise (:func:`static_request_name`). Nothing is installed (the decision carries
    no artefact; kind ``static``): an accepted file is used, a rejected one is not.
    """
    trust = _anchors(store, profile)

    def d(rule: str, accepted: bool, reason: str, code: VerifyReason | None = None, *,
          signer: str | None = None) -> Decision:
        return Decision(rule=rule, accepted=accepted, reason=reason, file=file_name, signer=signer,
                        reason_code=code, kind="static")

    if not file_name.endswith(".sgn"):
        if trust == "none":
            return d("G.4-unsigned-no-trust-list", True, "no trust list installed: unsigned file accepted")
        if trust == "empty":
            return d("G.4-empty-itl-accepts-unsigned", True, "rollback ITL installed: unsigned file accepted")
        return d("G.4-unsigned-rejected", False, "a trust list is installed: only signed files are accepted",
                 VerifyReason.NOT_SIGNED)
    try:
        sf = _parse_static(data)
    except DecodeError as exc:
        return d("G.4-malformed", False, str(exc), VerifyReason.OTHER)
    who = _signer_text(sf.header)
    wrong = signed_file_name_problem(sf.header.filename, file_name)
    if wrong is not None:
        return d("G.4-wrong-file-name", False, wrong, VerifyReason.OTHER, signer=who)
    if trust == "none":
        return d("G.4-signed-unchecked-no-trust-list", True, "no trust anchor: signature not checked",
                 signer=who)
    if trust == "empty":
        return d("G.4-empty-itl-signature-unchecked", True, "rollback ITL: signature checking disabled",
                 signer=who)
    bad = _check_config_signer(store, sf.header, sf.signed_message, profile=profile, now=now,
                               tvs_answer=tvs_answer, file=file_name, kind="static")
    if bad is not None:
        return bad
    return d(_signer_source(store, sf.header, profile), True, "signature verified", signer=who)


#: static files parsed, by their bytes (the same locale and dial rules for every phone of a cluster)
_STATIC_PARSED: OrderedDict[bytes, signed.SignedFile] = OrderedDict()
_STATIC_PARSED_MAX = 32
_STATIC_SHARED_SIZE = 256 * 1024  # larger files are parsed each time (the memory kept stays small)


def _parse_static(data: bytes) -> signed.SignedFile:
    """``signed.parse(data)``, shared between the phones of a process that fetch the same bytes (a
    parsed :class:`~phoneemu.formats.signed.SignedFile` is immutable; only parses that succeed are kept,
    files up to 256 KiB, in a bounded LRU): a fleet parses each static file once, and the rules' memos
    see one header."""
    key = bytes(data)
    if len(key) > _STATIC_SHARED_SIZE:
        return signed.parse(key)
    got = _STATIC_PARSED.get(key)
    if got is not None:
        _STATIC_PARSED.move_to_end(key)
        return got
    sf = signed.parse(key)
    _STATIC_PARSED[key] = sf
    if len(_STATIC_PARSED) > _STATIC_PARSED_MAX:
        _STATIC_PARSED.popitem(last=False)
    return sf


def static_request_name(store: TrustStore, profile: PhoneProfile, name: str) -> str:
    """The name to request for static file ``name``: ``.sgn`` with a (non-empty) trust list (§G.4)."""
    return name + ".sgn" if _anchors(store, profile) == "full" else name


def _decrypt_config(store: TrustStore, ef: encrypted.EncryptedFile, file_name: str, *, profile: PhoneProfile,
                    reason: str, signer: str, accept: _Accept, reject: _Reject) -> Decision:
    """§G.12 step 3: unwrap with LSC/MIC (PKI) or the manual key (symmetric), decrypt, check hash. The
    plaintext hash (tag 26) is the phone's own computation, signer checked or not: a model that does
    not have that hash cannot check it (§A.4: SHA-512 stops the phones without it), so it refuses."""
    capf = "start-capf" if profile.capf and profile.pki_capable else None
    alg = ef.encryption.hash_alg
    if alg is not None and not profile.supports_hash(alg):
        return reject("G.12.3-decrypt-failed", f"decrypt file failed: plaintext hash code {alg} not "
                      f"supported by {profile.name}", VerifyReason.UNSUPPORTED_HASH, signer=signer)
    try:
        if ef.method == "symmetric":
            if store.symmetric_key is None:
                return reject("G.12.3-no-key", "no manual config key set on the phone",
                              VerifyReason.DECRYPT_FAILED, signer=signer)
            xml = encrypted.decrypt_symmetric(ef, store.symmetric_key)
        else:
            cred = store.credential
            if cred is None or not profile.pki_capable:
                return reject("G.12.3-no-key", "no LSC or MIC to unwrap the config key",
                              VerifyReason.DECRYPT_FAILED, signer=signer, action=capf)
            xml = encrypted.decrypt_pki(ef, cred.key())
    except DecryptionError as exc:
        return reject("G.12.3-decrypt-failed", f"decrypt file failed: {exc.message}", exc.reason,
                      signer=signer, action=capf)
    except VerificationError as exc:
        return reject("G.12.3-decrypt-failed", f"decrypt file failed: {exc.message}",
                      VerifyReason.DECRYPT_FAILED, signer=signer, action=capf)
    except DecodeError as exc:
        return reject("G.12.3-decrypt-failed", f"decrypt file failed: {exc}", VerifyReason.DECRYPT_FAILED,
                      signer=signer, action=capf)
    return accept("G.12.3-decrypted", f"decrypted and hash checked; {reason}", xml, signer=signer)


class _Accept(Protocol):
    def __call__(self, rule: str, reason: str, xml: bytes, *, signer: str | None = None) -> Decision: ...


class _Reject(Protocol):
    def __call__(self, rule: str, reason: str, code: VerifyReason | None, *, signer: str | None = None,
                 action: str | None = None) -> Decision: ...


def encrypted_config_missing(file: str, *, transport: str, not_found: bool) -> Decision:
    """§G.12 steps 2-3/5: encrConfig=true yet ``file`` (the ``.enc.sgn``) could not be fetched, so the
    phone has no configuration to apply (the short config itself is not a full config)."""
    return Decision(rule="G.12.5-encrypted-config-missing", accepted=False, file=file, kind="config",
                    reason=f"short config says encrConfig=true but {file} could not be fetched ({transport})",
                    reason_code=VerifyReason.NOT_FOUND,
                    status=status.cfg_file_not_found(file) if not_found else None)


def decide_short_config(store: TrustStore, cfg: DeviceConfig, *, profile: PhoneProfile,
                        file: str = "short config") -> Decision:
    """§G.12 steps 1-2: what the short (stub) config tells the phone to do next."""
    def d(rule: str, accepted: bool, reason: str, *, code: VerifyReason | None = None,
          action: str | None = None) -> Decision:
        return Decision(rule=rule, accepted=accepted, reason=reason, file=file, reason_code=code,
                        kind="config", action=action)

    if not cfg.encr_config:
        return d("G.12.1-plain-config", True, "encrConfig=false: use this config")
    if not profile.pki_capable or store.symmetric_key is not None:
        if store.symmetric_key is None:
            return d("G.12.2-no-symmetric-key", False, "encrypted config but no manual key set",
                     code=VerifyReason.DECRYPT_FAILED)
        return d("G.12.2-symmetric-key-present", True, "manual key set: fetch the encrypted config",
                 action="fetch-encrypted")
    want = (cfg.cert_hash or "").strip().lower()
    cred = store.credential
    mine = ""
    if cred is not None and want:
        mine = cred.fingerprint("sha1" if len(want) == 40 else "md5")
    if want and mine == want:
        return d("G.12.2-cert-hash-match", True, "certHash matches the phone certificate: fetch the "
                 "encrypted config", action="fetch-encrypted")
    why = NO_PHONE_CERTIFICATE if cred is None else ("blank certHash" if not want else "certHash mismatch")
    if cfg.capf_auth_mode == 1:
        return d("G.12.2-wait-auth-string", False, f"{why}: waiting for a user-entered auth string",
                 code=VerifyReason.HASH_MISMATCH, action="wait-auth-string")
    return d("G.12.2-cert-hash-mismatch", False, f"{why}: start a CAPF session",
             code=VerifyReason.HASH_MISMATCH, action="start-capf" if profile.capf else None)


def config_request_names(store: TrustStore, profile: PhoneProfile, mac: str) -> tuple[str, ...]:
    """Config names to ask for, in order (spec §C.6 row 5; policy per profile): the signed config when a
    trust list is installed, else the plain one — a legacy ``plain`` phone too (no encrypted config):
    holding a mixed-mode cluster's CTL it accepts only signed files (§G.4), so asking for the plain one
    alone it could never take a config there."""
    base = config_fmt.config_file_name(mac, "plain")
    trusted = _anchors(store, profile) == "full"
    names: list[str] = []
    if profile.config_policy == "plain":
        return (base + ".sgn" if trusted else base,)
    wants_enc = store.symmetric_key is not None or (
        store.config is not None and store.config.config.encr_config)
    if profile.config_policy == "encrypted-first" and wants_enc:
        names.append(base + ".enc.sgn")
    names.append(base + ".sgn" if trusted else base)
    return tuple(names)


# --------------------------------------------------------------------------- §D firmware
def decide_firmware(store: TrustStore, data: bytes, *, profile: PhoneProfile, now: int,
                    image_signers: Sequence[x509.Certificate], file: str = "firmware",
                    requested_load: str | None = None) -> Decision:
    """§D: a load is installed only if signed by an image-signing certificate the model trusts.

    With ``requested_load`` (the config's ``loadInformation``) the image must be that load: its load
    name must be the requested one and its header FILENAME (§A.2 tag 14) the requested ``file``
    (:func:`signed_file_name_problem`) — otherwise ``D-wrong-load``: a genuinely signed *other* load
    (e.g. an older, vulnerable one) served under the requested name is not installed.

    ``D-already-running`` (accepted, nothing installed) is said only of an image that authenticates
    (§D: "a tampered image fails authentication and is rejected"): an unsigned, tampered or foreign-signed
    image whose manifest names the running load is rejected like any other (``D-unknown-signer``,
    ``D-bad-signature``, ...), so no forged file is ever reported as accepted.
    """
    def reject(rule: str, reason: str, code: VerifyReason, signer: str | None = None) -> Decision:
        return Decision(rule=rule, accepted=False, reason=f"{reason}; keeps running load "
                        f"{store.firmware_load or '(none)'}", file=file, signer=signer, reason_code=code,
                        kind="firmware")
    try:
        img = firmware.parse(data)
    except DecodeError as exc:
        return reject("D-malformed", str(exc), VerifyReason.OTHER)
    who = _signer_text(img.header)
    if requested_load is not None:
        wrong = signed_file_name_problem(img.header.filename, file) if file.endswith(".loads") else None
        if img.load_name != requested_load:
            wrong = f"image carries load {img.load_name!r}, not the requested {requested_load!r}"
        if wrong is not None:
            return reject("D-wrong-load", wrong, VerifyReason.OTHER, who)
    s = img.header.signer
    cert = next((c for c in image_signers if certs.serial_bytes(c.serial_number) == s.serial
                 and _same_issuer(certs.dn_text(c.issuer), s.issuer)), None)
    if cert is None:
        return reject("D-unknown-signer", "image signer is not one the model trusts",
                      VerifyReason.UNKNOWN_SIGNER, who)
    fail = _verify(img.header, img.signed_message, certs.cert_public_key(cert), cert, profile=profile,
                   now=now, what="firmware")
    if fail is not None:
        return reject(_fail_rule("D", fail[0]), fail[1], fail[0], who)
    if img.load_name == store.firmware_load:  # only after authentication: a forgery is never "running"
        return Decision(rule="D-already-running", accepted=True, reason=f"{img.load_name} already running",
                        file=file, signer=who, kind="firmware")
    return Decision(rule="D-signed-by-image-key", accepted=True,
                    reason=f"load {img.load_name} authenticated", file=file, signer=who, kind="firmware",
                    artefact=AcceptedFirmware(load_name=img.load_name))


# --------------------------------------------------------------------------- §G.9, §G.10
def decide_secure_transport(store: TrustStore, cfg: DeviceConfig, *, profile: PhoneProfile,
                            attempts: int) -> Decision | None:
    """§G.9: secure mode needs a CUCM cert in the CTL; without one retry the trust file, then TCP.

    None for a non-secure device (``deviceSecurityMode`` 1): §G.9 ("Security mode without a trust
    list") asks nothing of it — it signals over TCP whatever its trust lists hold, so there is no
    decision to record (the catalogue's ``signaling: none`` for such a device).

    ``attempts`` is how many times the phone has already tried to obtain the trust file (the boot's
    own request is the first): below ``profile.secure_mode_attempts`` (4, "tries four times") →
    ``G.9-retry-trust-file``; at it → ``G.9-fallback-tcp``.
    """
    def d(rule: str, accepted: bool, reason: str, action: str) -> Decision:
        return Decision(rule=rule, accepted=accepted, reason=reason, file="", kind="transport", action=action)

    if cfg.device_security_mode <= 1:
        return None
    ccm = frozenset({Role.CCM, Role.CCM_TFTP})
    if store.ctl is not None and any(r.role in ccm and not r.is_empty for r in readable_records(store.ctl)):
        return d("G.9-tls-with-ctl", True, "CTL holds a CUCM certificate: TLS", "use-tls")
    if attempts < profile.secure_mode_attempts:
        return d("G.9-retry-trust-file", False, f"secure mode without a trust list: attempt {attempts + 1} "
                 f"of {profile.secure_mode_attempts}", "retry")
    return d("G.9-fallback-tcp", True, f"no CUCM certificate in a CTL after {attempts} attempts: TCP",
             "use-tcp")


def sip_transport(store: TrustStore, cfg: DeviceConfig, *,
                  profile: PhoneProfile) -> tuple[str, Decision | None]:
    """The transport a phone registers over once its trust file attempts are spent (§G.9): ``"tls"`` when
    :func:`decide_secure_transport` says TLS, else ``"tcp"``; with that decision (None: non-secure)."""
    secure = decide_secure_transport(store, cfg, profile=profile, attempts=profile.secure_mode_attempts)
    return ("tls" if secure is not None and secure.action == "use-tls" else "tcp"), secure


def sip_server_certificates(store: TrustStore) -> list[bytes]:
    """The certificates a SIP-TLS registrar may present (§G.5): the non-empty CCM and CCM+TFTP records
    of the installed CTL (DER), in CTL order."""
    if store.ctl is None:
        return []
    ccm = (Role.CCM, Role.CCM_TFTP)
    return [r.certificate for r in readable_records(store.ctl)
            if r.role in ccm and not r.is_empty and r.certificate is not None]


def decide_sip_server(store: TrustStore, cert_der: bytes | None, *, server: str) -> Decision:
    """§G.5 "SIP-TLS server: CCM / CCM+TFTP in CTL": the certificate the registrar presents over TLS
    must be a non-empty CCM or CCM+TFTP record of the installed CTL (byte for byte; a regenerated
    CallManager certificate the phone's CTL does not list yet is refused). Its validity dates are not
    checked: neither spec nor seed documents a date check on TLS peers (module docstring, "Validity")."""
    if cert_der is not None and cert_der in sip_server_certificates(store):
        return Decision(rule="G.5-sip-server-in-ctl", accepted=True, file=server, kind="transport",
                        reason="the registrar's certificate is a CCM+TFTP record of the CTL")
    return Decision(rule="G.5-sip-server-untrusted", accepted=False, file=server, kind="transport",
                    reason="the registrar's certificate is not a CCM record of the installed CTL")


def decide_auto_registration(store: TrustStore, *, profile: PhoneProfile, device_config_found: bool,
                             default_config_found: bool) -> Decision:
    """§G.10: fall back to the default config; signed when the phone holds a trust list."""
    def d(rule: str, accepted: bool, reason: str, file: str, *, st: str | None = None,
          action: str | None = None) -> Decision:
        return Decision(rule=rule, accepted=accepted, reason=reason, file=file, kind="config", status=st,
                        action=action)

    if device_config_found:
        return d("G.10-device-config", True, "device config found; no auto-registration", "")
    name = config_fmt.default_config_name("sgn" if _anchors(store, profile) == "full" else "plain")
    if default_config_found:
        return d("G.10-use-default-config", True, "no device config: use the default config", name,
                 action="fetch-default")
    return d("G.10-no-config", False, "no device config and no default config", name,
             st=status.cfg_file_not_found("Cfg File"))


# --------------------------------------------------------------------------- §E.7.1 HTTPS servers
#: Roles that authenticate an HTTPS application server (spec §G.5; see the module docstring).
HTTPS_ROLES = frozenset({Role.APP_SERVER, Role.CCM, Role.CCM_TFTP, Role.TFTP})
#: Status message when an HTTPS service cannot be authenticated (spec §E.7.6, CSC-118699).
HTTPS_FAILED_STATUS = "Host Not Found"
#: Most bytes of a TVS request's body: its length is a uint16 (spec §E.2)
_TVS_MAX_BODY = tvs_proto.MAX_FRAME - tvs_proto.HEADER_SIZE


def tvs_device_name(profile: PhoneProfile) -> str:
    """A DEVICE_NAME of the length this model's phones send TVS (``CP-<model>-SEP<12 hex>``, spec §E.4):
    what :func:`tvs_proto.verify_request_fits` / :func:`tvs_proto.query_request_fits` measure (every MAC
    gives the same length)."""
    return tvs_proto.phone_device_name(profile.model, "SEP" + "0" * 12)


def https_query_key(cert: x509.Certificate) -> QueryKey:
    """The TVS cache key of an HTTPS server certificate: (subject, issuer, serial)."""
    return QueryKey(subject=certs.dn_text(cert.subject), issuer=certs.dn_text(cert.issuer),
                    serial=certs.serial_bytes(cert.serial_number))


def _https_in_lists(store: TrustStore, profile: PhoneProfile, cert_der: bytes,
                    cert: x509.Certificate) -> TrustRecord | None:
    for tl in (store.ctl, store.itl if profile.sbd else None):
        if tl is None:
            continue
        for rec in readable_records(tl):
            if rec.role in HTTPS_ROLES and record_matches_peer(rec, cert_der, cert):
                return rec
    return None


def plain_http_directory(server: str) -> Decision:
    """The directory over plain HTTP (the config's secure URL is http://: the enterprise parameters'
    secure URLs set to plain HTTP, seed "Update ITL File for Cisco Unified IP Phones" step 4, spec §G.11):
    no TLS, so no certificate to authenticate — accepted whatever the trust lists hold
    (``E.7.1-plain-http``, ours)."""
    return Decision(rule="E.7.1-plain-http", accepted=True, file=server, kind="https",
                    reason="the config's secure directory URL is http://: plain HTTP, no server certificate "
                           "to authenticate (nothing protects the exchange)")


def decide_https_server(store: TrustStore, cert_der: bytes | None, *, profile: PhoneProfile, now: int,
                        tvs_answer: TvsResult | None = None, server: str = "") -> Decision:
    """§E.7.1: authenticate an HTTPS application server's certificate (trust lists, else TVS VERIFY).

    Two-phase like the other TVS rules: a pending ``E.7.1-https-needs-tvs`` decision names the
    :func:`https_query_key`; the caller sends VERIFY with the full certificate, caches a valid answer
    (:class:`TvsAnswer` with the certificate, roles and TTL) and calls again with ``tvs_answer``.
    """
    def reject(rule: str, reason: str, code: VerifyReason, who: str | None = None) -> Decision:
        return Decision(rule=rule, accepted=False, reason=reason, file=server, signer=who, reason_code=code,
                        status=HTTPS_FAILED_STATUS, kind="https")

    def accept(rule: str, reason: str, who: str) -> Decision:
        return Decision(rule=rule, accepted=True, reason=reason, file=server, signer=who, kind="https")

    if store.locked:  # §G.3.5: a locked phone's HTTPS services fail
        return reject("E.7.1-https-phone-locked", "trust list update failed: the phone is locked and "
                      "HTTPS services fail until a trust list is accepted (spec G.3.5)", VerifyReason.OTHER)
    if not cert_der:
        return reject("E.7.1-https-malformed", "the HTTPS server presented no certificate",
                      VerifyReason.OTHER)
    try:
        cert = certs.load_cert_der(cert_der)
    except DecodeError as exc:
        return reject("E.7.1-https-malformed", f"HTTPS server certificate unreadable: {exc}",
                      VerifyReason.OTHER)
    key = https_query_key(cert)
    who = f"{key.subject} (serial {key.serial.hex().upper()})"
    rec = _https_in_lists(store, profile, cert_der, cert)
    if rec is not None:
        return accept("E.7.1-https-cert-in-trust-list", f"HTTPS cert in trust list with role {rec.role}", who)
    if not tvs_usable(store, profile):
        return reject("E.7.1-https-not-trusted", f"HTTPS cert not in CTL/ITL and {TVS_NOT_USABLE}: "
                      f"{_tvs_unusable_why(store, profile)}", VerifyReason.UNKNOWN_SIGNER, who)
    answer = tvs_answer if tvs_answer is not None else store.tvs_lookup(key, now)
    if answer is None and not tvs_proto.verify_request_fits(tvs_device_name(profile), cert_der):
        return reject("E.7.1-https-cert-too-large", f"HTTPS server certificate of {len(cert_der)} bytes does "
                      f"not fit a TVS VERIFY request (body at most {_TVS_MAX_BODY} bytes, spec §E.2): "
                      "TVS not asked, HTTPS server not authenticated",
                      VerifyReason.TOO_LARGE, who)
    if answer is None:
        return Decision(rule="E.7.1-https-needs-tvs", accepted=False, file=server, signer=who, kind="https",
                        reason="HTTPS cert not in CTL; TVS service available, can attempt via TVS "
                        "(no matching entry found at cache)", needs_tvs=key, action="ask-tvs")
    if answer is TvsStatus.UNREACHABLE:
        return reject("E.7.1-https-tvs-unreachable", "TVS unreachable: HTTPS server not authenticated",
                      VerifyReason.TVS_UNREACHABLE, who)
    if answer is TvsStatus.SERVER_UNTRUSTED:
        return reject("E.7.1-https-tvs-server-untrusted", "TVS server certificate is not an ITL TVS record "
                      "(spec §E.1): HTTPS server not authenticated", VerifyReason.TVS_UNREACHABLE, who)
    if not isinstance(answer, TvsAnswer) or answer.cert_der != cert_der or not answer.roles:
        return reject("E.7.1-https-tvs-unknown", "TVS does not know the HTTPS server certificate",
                      VerifyReason.UNKNOWN_SIGNER, who)
    if not answer.roles & HTTPS_ROLES:
        return reject("E.7.1-https-tvs-wrong-role",
                      f"TVS roles {roles_text(answer.roles)} lack APP-SERVER (7) "
                      "/ CCM / TFTP", VerifyReason.WRONG_ROLE, who)
    if tvs_answer is None:
        return accept("E.7.1-https-cached", f"TVS cache: roles {roles_text(answer.roles)}", who)
    return accept("E.7.1-https-vouched-by-tvs", f"Authenticated the HTTPS conn via TVS (roles "
                  f"{roles_text(answer.roles)}, TTL {answer.ttl}s)", who)


# --------------------------------------------------------------------------- §H.1 HTTPS config (6971)
#: The ITL signer version (spec §A tag 28) that makes a phone download its config over HTTPS (§H.1)
HTTPS_CONFIG_SIGNER_VERSION = (1, 1)


def _has_ec_key(rec: TrustRecord) -> bool:
    """Whether ``rec``'s key (its certificate's, else tag 7: :func:`_record_key`) is an EC key."""
    got = _record_key(rec)
    return not isinstance(got, str) and keys.key_description(got[0]).upper().startswith("EC")


def https_config_records(store: TrustStore) -> tuple[TrustRecord, ...]:
    """The installed ITL's records a 6971 server may present (spec §G.5 "TFTP role, EC key"): role TFTP
    (3), a certificate or a key to match a TLS peer with, the key EC. Remembered per ITL (issue #6)."""
    itl = store.itl
    if itl is None:
        return ()
    value = _HTTPS_CONFIG_RECORDS[(id(itl),)]
    if value is not _MISS:
        return value  # type: ignore[return-value]
    found = tuple(r for r in readable_records(itl)
                  if r.role == Role.TFTP and _identifies_peer(r) and _has_ec_key(r))
    if len(itl.raw) <= _MEMO_LIST_MAX:
        _HTTPS_CONFIG_RECORDS.put((id(itl),), (itl,), found)
    return found


def https_config_applies(store: TrustStore, profile: PhoneProfile) -> bool:
    """§H.1: whether the phone asks TCP 6971 for its config first — an SBD model with EC support, not locked,
    whose installed ITL carries signer version 1.1 (tag 28) and a TFTP record with an EC key (module
    docstring, "HTTPS config download": the conditions are our reading of the spec)."""
    itl = store.itl
    return (profile.ec_support and profile.sbd and not store.locked and itl is not None
            and itl.header.signer_version == HTTPS_CONFIG_SIGNER_VERSION
            and bool(https_config_records(store)))


def _held_text(recs: Sequence[TrustRecord]) -> str:
    """The ITL's TFTP EC records, named for a refusal's reason."""
    named = []
    for r in recs:
        try:
            named.append(certs.dn_text(r.x509().subject) if r.certificate is not None else
                         f"a key-only record (serial {(r.serial or b'').hex().upper() or '?'})")
        except DecodeError:
            named.append("an unreadable certificate")
    return ", ".join(named) or "none"


def decide_https_config_server(store: TrustStore, cert_der: bytes | None, *, file: str,
                               server: str = "") -> Decision:
    """§H.1, §G.5: the certificate the 6971 server presents must match an ITL record of
    :func:`https_config_records` (:func:`record_matches_peer`): ``H.1-https-config`` (accepted; nothing
    is installed by it: :func:`decide_https_config` decides the file) or
    ``H.1-https-config-server-untrusted``, the reason naming the certificate and what the ITL holds."""
    recs = https_config_records(store)
    held = f"the ITL's TFTP records with an EC key: {_held_text(recs)}"
    where = f" at {server}" if server else ""

    def untrusted(reason: str, code: VerifyReason, who: str | None = None) -> Decision:
        return Decision(rule="H.1-https-config-server-untrusted", accepted=False, file=file, signer=who,
                        kind="config", reason_code=code,
                        reason=f"{reason}; {held} (spec §H.1, §G.5): the config is not asked for over HTTPS")

    if not cert_der:
        return untrusted(f"the HTTPS config server{where} presented no certificate",
                         VerifyReason.NO_CERTIFICATE)
    try:
        cert = certs.load_cert_der(cert_der)
    except DecodeError as exc:
        return untrusted(f"the HTTPS config server{where} presented an unreadable certificate: {exc}",
                         VerifyReason.OTHER)
    key = https_query_key(cert)
    who = f"{key.subject} (serial {key.serial.hex().upper()})"
    if any(record_matches_peer(r, cert_der, cert) for r in recs):
        return Decision(rule="H.1-https-config", accepted=True, file=file, signer=who, kind="config",
                        reason=f"the HTTPS config server{where} presented the ITL's TFTP record with an EC "
                        "key")
    other = [r for r in readable_records(store.itl) if record_matches_peer(r, cert_der, cert)] \
        if store.itl is not None else []
    if other:
        roles = roles_text(frozenset(r.role for r in other))
        return untrusted(f"the HTTPS config server{where} presented {who}, an ITL record with role {roles} "
                         "but not a TFTP record with an EC key", VerifyReason.WRONG_ROLE, who)
    if any(_named_like(r, key) for r in recs):  # an impostor, or a new certificate the ITL lacks
        return untrusted(f"the HTTPS config server{where} presented {who}: the subject and serial of the "
                         "ITL's TFTP record, not the certificate it holds (an impostor, or a certificate the "
                         "installed ITL does not list yet)", VerifyReason.UNKNOWN_SIGNER, who)
    return untrusted(f"the HTTPS config server{where} presented {who}, not in the ITL",
                     VerifyReason.UNKNOWN_SIGNER, who)


def _named_like(rec: TrustRecord, key: QueryKey) -> bool:
    """Whether ``rec`` carries the serial of the certificate ``key`` names and, when it holds a
    certificate, its subject: a peer named as the record that is not it (for a refusal's reason only)."""
    if rec.serial != key.serial:
        return False
    try:
        return rec.certificate is None or certs.dn_text(rec.x509().subject) == key.subject
    except DecodeError:
        return False


def _asked_device(file: str) -> str | None:
    """The device name (``SEP<MAC>``) of the config name ``file`` asked over 6971, None for another name."""
    try:
        return config_fmt.parse_config_file_name(file).device_name
    except DecodeError:
        return None


def decide_https_config(store: TrustStore, file: str, body: bytes, *, server: Decision) -> Decision:
    """§H.1: the file the trusted 6971 server (``server``: its accepted :func:`decide_https_config_server`
    decision) served for ``file`` is the unsigned config: accepted with its parse, ``H.1-https-config``
    (signer: the server's certificate), ``H.1-https-config-malformed`` when it is no config, or
    ``H.1-https-config-wrong-device`` when its ``<deviceName>`` names another device than the one ``file``
    names (ours: an unsigned body has no header FILENAME binding it to the phone that asked, as a ``.sgn``
    has, §G.4; a config naming no device, such as the §C.4 stub, is taken; names compared in any case)."""
    try:
        acc = store.parse_config(body, file=file)
    except DecodeError as exc:
        return Decision(rule="H.1-https-config-malformed", accepted=False, file=file, signer=server.signer,
                        kind="config", reason_code=VerifyReason.OTHER,
                        reason=f"the file served over HTTPS is no config: {exc}")
    named, asked = acc.config.device_name, _asked_device(file)
    if named is not None and asked is not None and named.upper() != asked:
        return Decision(rule="H.1-https-config-wrong-device", accepted=False, file=file, signer=server.signer,
                        kind="config", reason_code=VerifyReason.OTHER,
                        reason=f"the config served over HTTPS is that of device {_shown(named)}, not "
                        f"{asked} (ours: nothing else binds an unsigned config to the phone that asked, as a "
                        ".sgn's FILENAME does, spec §G.4)")
    return Decision(rule=server.rule, accepted=True, file=file, signer=server.signer, kind="config",
                    reason=f"{server.reason}; the config it served unsigned (spec §H.1)", artefact=acc)


# --------------------------------------------------------------------------- §F.1 CAPF server
#: Roles that authenticate a CAPF server (spec §B.3, §G.5 "CAPF server: CAPF role (or TVS)").
CAPF_ROLES = frozenset({Role.CAPF})


def decide_capf_server(store: TrustStore, cert_der: bytes | None, *, profile: PhoneProfile, now: int,
                       tvs_answer: TvsResult | None = None, server: str = "",
                       vouched_for: str | None = None) -> Decision:
    """§F.1, §G.5: the CAPF server certificate must be a CAPF (4) record of the CTL/ITL, or be vouched for
    by TVS with the CAPF role; otherwise the phone does not talk to it (``F.1-capf-server-untrusted``).
    ``vouched_for``: this is the reconnect after TVS vouched for that certificate; one that would need
    TVS in its turn is refused, naming both (one TVS question per attempt: our convention).

    Two-phase like the other TVS rules: a pending ``F.1-capf-needs-tvs`` decision names the certificate's
    :func:`https_query_key`; the caller asks TVS (QUERY), caches a valid answer and calls again with
    ``tvs_answer``. Our conventions: records match by :func:`record_matches_peer`; a TVS answer vouches
    only when it returns exactly the presented certificate (DER) with role CAPF. With no CAPF record
    and TVS not usable (no trust list, no ITL TVS record, no TVS servers) the server is untrusted —
    the seed chapter: the phone needs the ITL "to communicate securely to CAPF".

    Which TVS message is our convention: QUERY (§E.3 code 3: subject, issuer, serial), then the DER
    compare above. The spec does not say which message a phone sends for the CAPF certificate (§F.1
    "verifiable through TVS"; seed "TVS can authenticate it"). §E.3 describes VERIFY as the message
    that "carries the whole peer certificate (e.g. an HTTPS server certificate not found in CTL/ITL)",
    which would fit this TLS peer too (:func:`decide_https_server` uses it, §E.7.1); QUERY is kept
    because it decides the same thing (TVS knows exactly this certificate, with these roles), shares the
    cache key and the boot's TVS asker with the trust-list and file rules, and the scenario replays
    answer QUERY. Consequence: a TVS that answers only VERIFY (tvsd, §E.6) cannot vouch for CAPF here.
    """
    def reject(reason: str, code: VerifyReason, who: str | None = None) -> Decision:
        return Decision(rule="F.1-capf-server-untrusted", accepted=False, reason=reason, file=server,
                        signer=who, reason_code=code, kind="capf")

    def accept(rule: str, reason: str, who: str) -> Decision:
        return Decision(rule=rule, accepted=True, reason=reason, file=server, signer=who, kind="capf")

    if not cert_der:
        return reject("the CAPF server presented no certificate", VerifyReason.NO_CERTIFICATE)
    try:
        cert = certs.load_cert_der(cert_der)
    except DecodeError as exc:
        return reject(f"CAPF server certificate unreadable: {exc}", VerifyReason.OTHER)
    key = https_query_key(cert)
    who = f"{key.subject} (serial {key.serial.hex().upper()})"
    for tl in (store.ctl, store.itl if profile.sbd else None):
        if tl is None:
            continue
        if any(r.role in CAPF_ROLES and record_matches_peer(r, cert_der, cert) for r in readable_records(tl)):
            return accept("F.1-capf-cert-in-trust-list", f"CAPF certificate is a CAPF record of the "
                          f"{'CTL' if tl is store.ctl else 'ITL'}", who)
    if not tvs_usable(store, profile):
        return reject(f"CAPF certificate is not a CAPF record of the CTL/ITL and {TVS_NOT_USABLE}: "
                      f"{_tvs_unusable_why(store, profile)}", VerifyReason.UNKNOWN_SIGNER, who)
    answer = tvs_answer if tvs_answer is not None else store.tvs_lookup(key, now)
    if answer is None and vouched_for is not None:
        return reject(f"on the reconnect after TVS vouched for {vouched_for} the CAPF server presented "
                      f"another certificate, {who}, not in CTL/ITL and not vouched for",
                      VerifyReason.UNKNOWN_SIGNER, who)
    if answer is None and not tvs_proto.query_request_fits(tvs_device_name(profile), key.subject, key.issuer,
                                                           key.serial):
        return Decision(rule="F.1-capf-cert-too-large", accepted=False, file=server, signer=who, kind="capf",
                        reason=f"CAPF certificate not in CTL/ITL and its subject + issuer "
                        f"({len(key.subject)} + {len(key.issuer)} characters) do not fit a TVS QUERY request "
                        f"(body at most {_TVS_MAX_BODY} bytes, spec §E.2): TVS not asked",
                        reason_code=VerifyReason.TOO_LARGE)
    if answer is None:
        return Decision(rule="F.1-capf-needs-tvs", accepted=False, file=server, signer=who, kind="capf",
                        reason="CAPF certificate not in CTL/ITL: ask TVS", needs_tvs=key, action="ask-tvs")
    if isinstance(answer, TvsStatus) and answer.unanswered:
        return reject(f"CAPF certificate not in CTL/ITL and TVS could not vouch ({answer.value})",
                      VerifyReason.TVS_UNREACHABLE, who)
    if not isinstance(answer, TvsAnswer) or answer.cert_der != cert_der:
        return reject("CAPF certificate not in CTL/ITL and unknown to TVS", VerifyReason.UNKNOWN_SIGNER, who)
    if not answer.roles & CAPF_ROLES:
        return reject(f"TVS roles {roles_text(answer.roles)} lack CAPF (4)", VerifyReason.WRONG_ROLE, who)
    return accept("F.1-capf-vouched-by-tvs", f"TVS vouched for the CAPF certificate (roles "
                  f"{roles_text(answer.roles)})", who)
