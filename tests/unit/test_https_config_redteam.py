"""Red team of the HTTPS config download (TCP 6971, spec §H.1, §G.5 "HTTPS provisioning (6971) server cert").

The security property: a phone never takes a config §G would refuse, and never one from a server that is not
the ITL's TFTP record with an EC key. Real loopback TLS: small scripted servers (threads) play the 6971 side
— a MITM with another certificate, a hostile or broken server — and the phone boots against them, the other
files from memory; the lab's own 6971 server is met by a boot built from its target alone.
"""

from __future__ import annotations

import datetime as dt
import ssl
import time
from collections.abc import Callable
from typing import Any

import pytest

from phoneemu.commands.boot import _text
from phoneemu.crypto import certs
from phoneemu.crypto.certs import CertRequest, issue_certificate
from phoneemu.crypto.keys import KeySpec, generate_key
from phoneemu.errors import TransportError, VerifyReason
from phoneemu.formats import config as config_fmt
from phoneemu.formats import signed, trustlist
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.net.fetch import MemoryFetcher
from phoneemu.net.tls import server_context
from phoneemu.phone import rules
from phoneemu.phone.boot import BootReport, BootTarget
from phoneemu.phone.https_config import HttpsConfigClient
from phoneemu.phone.phone import Phone
from phoneemu.phone.profile import get_profile
from phoneemu.phone.store import AcceptedConfig, TrustStore
from tests.helpers import capf_unreachable, pristine_lab, run, tvs_unreachable
from tests.tls_server_helpers import threaded_tls_servers

NOW = 1_780_000_000
MAC = "0A00000000D1"
OTHER = "0A00000000D2"
NAME = f"SEP{MAC}.cnf.xml.sgn"
HOST = "127.0.0.1"
P8861 = get_profile("cp-8861")
Heads = list[bytes]


base_lab, lab = pristine_lab("https-config-redteam", now=NOW, phones={MAC: {"now": NOW}, OTHER: {"now": NOW}},
                             seed=73, https_key="ec-p256")


# --------------------------------------------------------------------------- scripted 6971 servers
def _response(status: str, body: bytes = b"", *, extra: str = "") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n"
    return head.encode() + body


def _read_head(tls: ssl.SSLSocket) -> bytes | None:
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = tls.recv(4096)
        if not chunk:
            return None
        head += chunk
    return head


def _answer(tls: ssl.SSLSocket, arg: tuple[bytes, Heads]) -> None:
    """Answer the request with ``arg[0]`` (its head kept in ``arg[1]``)."""
    answer, heads = arg
    head = _read_head(tls)
    if head is None:
        return  # the phone refused the certificate: no request
    heads.append(head)
    tls.sendall(answer)


def _drip(tls: ssl.SSLSocket, arg: tuple[bytes, Heads]) -> None:
    """A slow-loris: the answer one byte every 50 ms, until the phone leaves."""
    answer, heads = arg
    head = _read_head(tls)
    if head is None:
        return
    heads.append(head)
    for i in range(len(answer)):
        tls.sendall(answer[i:i + 1])
        time.sleep(0.05)


def _lab_ctx(lab: LabCluster, **options: Any) -> ssl.SSLContext:
    ident = lab.identity("tftp-https")
    return server_context(ident.cert, ident.key, **options)


def _self_signed(spec: str, subject: str, serial: int) -> tuple[Any, Any]:
    key = generate_key(KeySpec.parse(spec))
    t = dt.datetime.fromtimestamp(NOW, dt.UTC)
    req = CertRequest(subject=subject, public_key=key.public_key(), serial=serial,
                      not_before=t - dt.timedelta(days=1), not_after=t + dt.timedelta(days=30))
    return key, issue_certificate(req, issuer_key=key)


def _impostor(lab: LabCluster, spec: str) -> tuple[Any, Any]:
    """A self-signed certificate with the subject and serial of the lab's ``tftp-https`` one, another key."""
    real = lab.identity("tftp-https").cert
    return _self_signed(spec, certs.dn_text(real.subject), real.serial_number)




def _phone(lab: LabCluster) -> Phone:
    return Phone(mac=MAC, profile=P8861, flash=None, clock=lambda: NOW, mic=lab.phone_identity(MAC),
                 image_signers=[lab.identity("imagesigning").cert], tvs=tvs_unreachable,
                 capf=capf_unreachable, http_timeout=2.0)


class _ConfigTimesOut(MemoryFetcher):
    """The lab's files from memory, but no answer for a config: the normal way gets nothing."""

    async def fetch(self, name: str) -> bytes:
        if ".cnf.xml" in name:
            raise TransportError(f"{name}: no answer", kind="timeout", path=name)
        return await super().fetch(name)


def _boot(lab: LabCluster, where: str, *, phone: Phone | None = None, timeout: float = 2.0,
          files: Callable[[str], bytes | None] | None = None,
          fetcher: MemoryFetcher | None = None) -> tuple[BootReport, MemoryFetcher]:
    """A boot whose config may come from ``https://where`` (§H.1), its other files from memory."""
    fetcher = fetcher if fetcher is not None else MemoryFetcher(files or lab.get)
    client = HttpsConfigClient(HOST, int(where.rsplit(":", 1)[1]), timeout=timeout, tls_versions=("1.2",))
    report = run((phone or _phone(lab)).boot(BootTarget(host=HOST), fetcher=fetcher, https_config=client), 30)
    return report, fetcher


def _unsigned(lab: LabCluster, mac: str = MAC) -> bytes:
    return signed.parse(lab.get(f"SEP{mac}.cnf.xml.sgn") or b"").body


def _rules(r: BootReport) -> list[str]:
    return [d.rule for d in r.decisions]


def _took_the_signed_config(r: BootReport, f: MemoryFetcher) -> None:
    """The normal way's outcome: the signed config accepted (§G.4), the boot OK, not locked."""
    assert NAME in f.requests and r.fetched_over[NAME] == "memory", (f.requests, r.fetched_over)
    assert r.ok and r.config == "accepted" and r.config_file == NAME and not r.locked_out
    assert r.deciding is not None and r.deciding.rule.startswith("G.4-") and r.deciding.accepted


# --------------------------------------------------------------------------- the body: whose config
def test_another_devices_config_over_https_is_refused(lab: LabCluster) -> None:
    """Before: the trusted server's config of ANOTHER phone (``<deviceName>SEP…D2``) was taken and installed:
    nothing binds an unsigned body to the phone that asked (a ``.sgn`` has its header FILENAME, §G.4).
    Now (ours) ``H.1-https-config-wrong-device``, and the phone asks the normal, signed way."""
    heads: Heads = []
    with threaded_tls_servers(_lab_ctx(lab), _answer, read_timeout=5) as start:
        r, f = _boot(lab, start((_response("200 OK", _unsigned(lab, OTHER)), heads)))
    assert len(heads) == 1 and heads[0].startswith(f"GET /{NAME} ".encode())
    wrong = [d for d in r.decisions if d.rule == "H.1-https-config-wrong-device"]
    assert len(wrong) == 1 and not wrong[0].accepted and wrong[0].reason_code is VerifyReason.OTHER
    assert f"'SEP{OTHER}', not SEP{MAC}" in wrong[0].reason and "FILENAME" in wrong[0].reason
    assert "H.1-https-config" not in _rules(r)
    _took_the_signed_config(r, f)
    assert r.deciding is not None and isinstance(r.deciding.artefact, AcceptedConfig)
    assert r.deciding.artefact.config.device_name == f"SEP{MAC}"


def test_the_body_is_bound_to_the_device_asked(lab: LabCluster) -> None:
    """The rule alone: another device's config refused; the phone's own (in any case) and a config naming
    no device (the §C.4 stub of an encrypted phone) taken."""
    store = TrustStore(profile=P8861)
    store.restore(ctl=None, itl=trustlist.parse(lab.get("ITLFile.tlv") or b""), config=None, ctl_rule=None,
                  itl_rule="G.2-first-itl-tofu", config_rule=None)
    server = rules.decide_https_config_server(store, lab.identity("tftp-https").der, file=NAME)
    assert server.accepted
    other = rules.decide_https_config(store, NAME, _unsigned(lab, OTHER), server=server)
    assert (other.rule, other.accepted) == ("H.1-https-config-wrong-device", False)
    own = _unsigned(lab)
    lower = own.replace(f"SEP{MAC}".encode(), f"sep{MAC.lower()}".encode())
    assert lower != own
    lab.set_encryption([MAC], True, now=NOW)
    stub = lab.get(f"SEP{MAC}.cnf.xml") or b""
    assert config_fmt.parse(stub).device_name is None and config_fmt.parse(stub).encr_config
    for body in (own, lower, stub):
        d = rules.decide_https_config(store, NAME, body, server=server)
        assert (d.rule, d.accepted) == ("H.1-https-config", True), d.reason


# --------------------------------------------------------------------------- the server: whose certificate
@pytest.mark.parametrize("who", ["stranger", "impostor-ec", "impostor-rsa", "callmanager",
                                 "chain-leaf-second"])
def test_no_other_certificate_gets_the_request(lab: LabCluster, who: str) -> None:
    """A MITM on 6971: another EC certificate; one with the subject and serial of the ITL's TFTP record but
    another key (EC, or RSA); the CallManager's (the ITL's CCM+TFTP record); a chain whose SECOND certificate
    is the right one. None is sent the request; the signed config is taken the normal way. The impostor's
    refusal says it is named as the record (before: "not in the ITL", beside that very name)."""
    real = lab.identity("tftp-https")
    if who == "callmanager":
        cm = lab.callmanager(1)
        ctx = server_context(cm.cert, cm.key, ciphers="DEFAULT:@SECLEVEL=0")
    elif who.startswith("impostor"):
        key, cert = _impostor(lab, "ec-p256" if who == "impostor-ec" else "rsa2048")
        ctx = server_context(cert, key)
    else:
        key, cert = _self_signed("ec-p256", "CN=stranger;O=elsewhere", 77)
        ctx = server_context([cert, real.cert] if who == "chain-leaf-second" else cert, key)
    heads: Heads = []
    with threaded_tls_servers(ctx, _answer, read_timeout=5) as start:
        r, f = _boot(lab, start((_response("200 OK", _unsigned(lab)), heads)))
    assert heads == []  # refused after the handshake, before anything was sent
    refused = [d for d in r.decisions if d.rule == "H.1-https-config-server-untrusted"]
    assert len(refused) == 1 and not refused[0].accepted, _rules(r)
    reason = refused[0].reason
    if who == "callmanager":
        assert refused[0].reason_code is VerifyReason.WRONG_ROLE and "CCM+TFTP" in reason
    else:
        assert refused[0].reason_code is VerifyReason.UNKNOWN_SIGNER
    named = "the subject and serial of the ITL's TFTP record, not the certificate it holds"
    assert (named in reason) == who.startswith("impostor"), reason
    assert ("not in the ITL" in reason) == (who in ("stranger", "chain-leaf-second")), reason
    assert any("server not trusted: the config is asked for over HTTP/TFTP" in t for t in r.timeline)
    _took_the_signed_config(r, f)


# --------------------------------------------------------------------------- what the boot says
def test_a_refused_body_is_not_said_to_come_over_https(lab: LabCluster) -> None:
    """Before: a body refused (no config) recorded ``fetched_over`` ``https`` all the same, and when the
    normal way then got nothing the summary said ``config: none (SEP….cnf.xml.sgn) over HTTPS``."""
    heads: Heads = []
    with threaded_tls_servers(_lab_ctx(lab), _answer, read_timeout=5) as start:
        r, _f = _boot(lab, start((_response("200 OK", b"<html>no config</html>"), heads)),
                      fetcher=_ConfigTimesOut(lab.get))
    assert len(heads) == 1 and "H.1-https-config-malformed" in _rules(r)
    assert not r.ok and r.config == "none" and r.config_file == NAME and not r.locked_out
    assert r.deciding is not None and r.deciding.rule == "H.3-config-transport-failed"
    assert r.fetched_over.get(NAME) != "https" and r.as_dict()["fetched_over"].get(NAME) != "https"
    text = _text(r, {})
    assert f"  config:    none ({NAME})\n" in text and "over HTTPS\n" not in text, text
    assert any(f"{NAME}: " in t and "bytes over HTTPS" in t for t in r.timeline)  # it did come: a line


@pytest.mark.parametrize("how", ["redirect", "401", "tls-1.0-only", "slow-loris", "empty-200", "entity-bomb",
                                 "body-then-garbage"])
def test_hostile_servers_never_decide_the_boot(lab: LabCluster, how: str) -> None:
    """A server with the right certificate that misbehaves: a 3xx (not followed), a 401, TLS 1.0/1.1 only, an
    answer one byte every 50 ms (cut at the phone's bound), an empty 200, a DTD with entities (refused by the
    parser: no expansion), the config then garbage after its Content-Length (the config, as framed). Each is a
    timeline line or an ``H.1-…`` refusal; the boot is the normal way's, within the bound; never locked."""
    body = {"empty-200": b"", "entity-bomb":
            b'<?xml version="1.0"?><!DOCTYPE device [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">'
            b']><device><deviceName>&b;</deviceName></device>'}.get(how, _unsigned(lab))
    answer = {"redirect": _response("302 Found", extra="Location: https://127.0.0.2:6971/x\r\n"),
              "401": _response("401 Unauthorized", extra='WWW-Authenticate: Basic realm="x"\r\n'),
              "body-then-garbage": _response("200 OK", body) + b"\x00GARBAGE" * 512,
              }.get(how, _response("200 OK", body))
    ctx = _lab_ctx(lab, min_version="1.0", max_version="1.1", ciphers="DEFAULT:@SECLEVEL=0") \
        if how == "tls-1.0-only" else _lab_ctx(lab)
    heads: Heads = []
    started = time.monotonic()
    with threaded_tls_servers(ctx, _drip if how == "slow-loris" else _answer, read_timeout=5) as start:
        r, f = _boot(lab, start((answer, heads)), timeout=1.0)
    assert time.monotonic() - started < 10
    assert not r.locked_out and r.ok
    said = [d.rule for d in r.decisions if d.rule.startswith("H.1-")]
    if how == "body-then-garbage":
        assert said == ["H.1-https-config"] and r.fetched_over[NAME] == "https" and NAME not in f.requests
        assert r.deciding is not None and r.deciding.rule == "H.1-https-config"
        return
    assert said == (["H.1-https-config-malformed"] if how in ("empty-200", "entity-bomb") else []), said
    _took_the_signed_config(r, f)
    kind = {"redirect": " error: ", "401": " error: ", "tls-1.0-only": " tls: ", "slow-loris": " timeout: "}
    if how in kind:
        said_so = [t for t in r.timeline if f"{NAME}: HTTPS 127.0.0.1:" in t and kind[how] in t]
        assert said_so, "\n".join(r.timeline)
    assert r.failed_downloads == ()


# --------------------------------------------------------------------------- when the phone asks
def _itl_with(lab: LabCluster, *, version: tuple[int, int] | None, tamper: bool = False) -> bytes:
    """The lab's ITL again, signed by its ITLRecovery a second later with signer version ``version``
    (``tamper``: a byte of its last record changed after signing: no signature verifies)."""
    served = trustlist.parse(lab.get("ITLFile.tlv") or b"")
    raw = trustlist.build(kind="ITL", records=served.records, signer=lab.identity("itlrecovery").signer,
                          timestamp=NOW + 1, signer_version=version)
    return raw[:-1] + bytes([raw[-1] ^ 1]) if tamper else raw


@pytest.mark.parametrize("second", ["itl-1.0", "itl-refused"])
def test_a_phone_stops_asking_when_its_itl_no_longer_says_so(lab: LabCluster, second: str) -> None:
    """A phone that took its config over HTTPS (ITL signer version 1.1) boots again: an ITL update to signer
    version 1.0 installed, or one refused (the phone locked, §G.3.5), and it no longer connects to 6971."""
    phone = _phone(lab)
    itl = _itl_with(lab, version=None, tamper=second == "itl-refused")
    heads: Heads = []
    with threaded_tls_servers(_lab_ctx(lab), _answer, read_timeout=5) as start:
        where = start((_response("200 OK", _unsigned(lab)), heads))
        first, _f = _boot(lab, where, phone=phone)
        assert first.ok and first.fetched_over[NAME] == "https" and len(heads) == 1
        again, f = _boot(lab, where, phone=phone, files=lambda n: itl if n.startswith("ITL") else lab.get(n))
    assert len(heads) == 1  # not asked again
    assert not any(d.rule.startswith("H.1-") for d in again.decisions), _rules(again)
    if second == "itl-1.0":
        assert again.trust["ITL"] == "updated" and again.ok and again.fetched_over[NAME] == "memory"
        assert phone.store.itl is not None and phone.store.itl.header.signer_version is None
    else:
        assert again.trust["ITL"] == "rejected" and again.locked_out and NAME in f.requests
        assert again.deciding is not None and again.deciding.kind == "ITL"


# --------------------------------------------------------------------------- the lab's side
def test_lab_serves_a_phone_added_while_it_runs_and_keeps_its_port(lab: LabCluster) -> None:
    """``lab phone add`` while the lab serves: the new phone's config on 6971 at once (the served files are
    read at each request); served again with port 0, the lab takes the 6971 port it recorded."""
    from tests.helpers import tls_exchange

    late = "0A00000000D3"

    async def serve_once() -> tuple[int, bytes, bytes]:
        async with LabServers(lab, host=HOST, clock=lambda: NOW + 60, watch=60.0) as srv:  # as lab serve
            port = srv.ports["https-config"]
            ask = f"GET /SEP{late}.cnf.xml.sgn HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            before = await tls_exchange(HOST, port, ask)
            LabCluster.open(lab.root).add_phone(late, now=NOW)  # another process's operation
            return port, before, await tls_exchange(HOST, port, ask)

    port, before, after = run(serve_once(), 30)
    assert before.startswith(b"HTTP/1.1 404 ")
    assert after.startswith(b"HTTP/1.1 200 ") and f"<deviceName>SEP{late}</deviceName>".encode() in after

    async def ports_again() -> int:
        async with LabServers(lab, host=HOST, clock=lambda: NOW + 60) as srv:
            return srv.ports["https-config"]
    assert run(ports_again(), 30) == port
