"""The phone's HTTPS config download (TCP 6971, spec §H.1, §A tag 28, §G.5 "HTTPS provisioning server cert").

The rule (:func:`phoneemu.phone.rules.https_config_applies`, ``decide_https_config_server``,
``decide_https_config``) without I/O; the boot over real loopback TLS: a small HTTPS server of the test's
own presents the lab's ``tftp-https`` identity (an EC P-256 TFTP record of an ITL of signer version 1.1, the
lab made with ``https_key="ec-p256"``) or another certificate, the other files come from memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from phoneemu.crypto.certs import CertRequest, issue_certificate
from phoneemu.crypto.keys import KeySpec, generate_key
from phoneemu.errors import EncodeError, TransportError, VerifyReason
from phoneemu.formats import config as config_fmt
from phoneemu.formats import signed, trustlist
from phoneemu.formats.trustlist import Role, TrustRecord
from phoneemu.lab.cluster import LabCluster
from phoneemu.net.fetch import MemoryFetcher
from phoneemu.net.tls import server_context
from phoneemu.phone import rules
from phoneemu.phone.boot import BootReport, BootTarget
from phoneemu.phone.https_config import HttpsConfigClient
from phoneemu.phone.phone import Phone
from phoneemu.phone.profile import get_profile
from phoneemu.phone.store import TrustStore
from tests.helpers import capf_unreachable, pristine_lab, run, tvs_unreachable

NOW = 1_780_000_000
MAC = "0A00000000C1"
NAME = f"SEP{MAC}.cnf.xml.sgn"
HOST = "127.0.0.1"
P8861 = get_profile("cp-8861")


base_lab, lab = pristine_lab("https-config", now=NOW, phones={MAC: {"now": NOW}}, https_key="ec-p256")


# --------------------------------------------------------------------------- the rule
def _itl(lab: LabCluster, records: Sequence[TrustRecord],
         version: tuple[int, int] | None) -> trustlist.TrustList:
    """An ITL signed by the lab's ITLRecovery (its SAST record first), with ``records`` and signer version."""
    signer = lab.identity("itlrecovery")
    sast = TrustRecord.from_certificate(signer.cert, Role.SAST)
    raw = trustlist.build(kind="ITL", records=[sast, *records], signer=signer.signer, timestamp=NOW,
                          signer_version=version)
    return trustlist.parse(raw)


def _store(itl: trustlist.TrustList | None, profile: str = "cp-8861") -> TrustStore:
    store = TrustStore(profile=get_profile(profile))
    store.restore(ctl=None, itl=itl, config=None, ctl_rule=None,
                  itl_rule="G.2-first-itl-tofu" if itl else None, config_rule=None)
    return store


def _ec_tftp(lab: LabCluster) -> TrustRecord:
    return TrustRecord.from_certificate(lab.identity("tftp-https").cert, Role.TFTP)


def _stranger() -> tuple[Any, Any]:
    """A self-signed EC P-256 identity no ITL holds (key, certificate)."""
    key = generate_key(KeySpec.parse("ec-p256"))
    t = dt.datetime.fromtimestamp(NOW, dt.UTC)
    req = CertRequest(subject="CN=stranger;O=elsewhere", public_key=key.public_key(), serial=77,
                      not_before=t - dt.timedelta(days=1), not_after=t + dt.timedelta(days=30))
    return key, issue_certificate(req, issuer_key=key)


def test_applies_with_an_itl_of_version_1_1_and_an_ec_tftp_record(lab: LabCluster) -> None:
    served = trustlist.parse(lab.get("ITLFile.tlv") or b"")
    assert served.header.signer_version == (1, 1)
    assert rules.https_config_applies(_store(served), P8861)
    assert rules.https_config_applies(_store(_itl(lab, [_ec_tftp(lab)], (1, 1))), P8861)


@pytest.mark.parametrize("case", ["version-1.0", "no-version", "rsa-tftp", "ccm-tftp", "ec-not-tftp",
                                  "no-ec-model", "no-itl", "locked"])
def test_does_not_apply(lab: LabCluster, case: str) -> None:
    """Each condition of the rule on its own: signer version 1.1 (tag 28), a TFTP (3) record, an EC key, a
    model with EC support (our reading of §A tag 28: the cp-8861 profile), an ITL, a phone not locked."""
    https = lab.identity("tftp-https").cert
    cm = lab.callmanager(1).cert  # RSA
    records = {"rsa-tftp": [TrustRecord.from_certificate(cm, Role.TFTP)],
               "ccm-tftp": [TrustRecord.from_certificate(https, Role.CCM_TFTP)],
               "ec-not-tftp": [TrustRecord.from_certificate(https, Role.APP_SERVER)],
               }.get(case, [_ec_tftp(lab)])
    version = {"version-1.0": (1, 0), "no-version": None}.get(case, (1, 1))
    itl = None if case == "no-itl" else _itl(lab, records, version)
    store = _store(itl, "cp-7962" if case == "no-ec-model" else "cp-8861")
    store.locked = case == "locked"
    assert not rules.https_config_applies(store, store.profile)


def test_server_certificate_trusted_only_as_the_itl_ec_tftp_record(lab: LabCluster) -> None:
    store = _store(trustlist.parse(lab.get("ITLFile.tlv") or b""))
    https = lab.identity("tftp-https")
    ok = rules.decide_https_config_server(store, https.der, file=NAME, server="127.0.0.1:6971")
    assert ok.accepted and ok.rule == "H.1-https-config" and ok.kind == "config" and ok.file == NAME
    assert ok.signer is not None and ok.signer.startswith("CN=") and "serial" in ok.signer
    _key, stranger = _stranger()
    from phoneemu.crypto.certs import cert_der
    no = rules.decide_https_config_server(store, cert_der(stranger), file=NAME, server="127.0.0.1:6971")
    assert not no.accepted and no.rule == "H.1-https-config-server-untrusted"
    assert no.reason_code is VerifyReason.UNKNOWN_SIGNER and "CN=stranger" in no.reason
    assert "not in the ITL" in no.reason and "TFTP records with an EC key" in no.reason
    other = rules.decide_https_config_server(store, lab.identity("capf").der, file=NAME)  # in the ITL: CAPF
    assert not other.accepted and other.reason_code is VerifyReason.WRONG_ROLE and "CAPF" in other.reason
    none = rules.decide_https_config_server(store, None, file=NAME)
    assert none.reason_code is VerifyReason.NO_CERTIFICATE
    junk = rules.decide_https_config_server(store, b"\x30\x03junk", file=NAME)
    assert junk.reason_code is VerifyReason.OTHER


def test_the_served_file_is_the_config_or_malformed(lab: LabCluster) -> None:
    store = _store(trustlist.parse(lab.get("ITLFile.tlv") or b""))
    server = rules.decide_https_config_server(store, lab.identity("tftp-https").der, file=NAME)
    body = signed.parse(lab.get(NAME) or b"").body
    d = rules.decide_https_config(store, NAME, body, server=server)
    assert d.accepted and d.rule == "H.1-https-config" and d.artefact is not None and "unsigned" in d.reason
    bad = rules.decide_https_config(store, NAME, b"<html>not a config</html>", server=server)
    assert not bad.accepted and bad.rule == "H.1-https-config-malformed"
    assert bad.reason_code is VerifyReason.OTHER


# --------------------------------------------------------------------------- the boot over loopback TLS
def _response(status: str, body: bytes = b"", *, length: bool = True) -> bytes:
    head = f"HTTP/1.1 {status}\r\n" + (f"Content-Length: {len(body)}\r\n" if length else "")
    return (head + "Connection: close\r\n\r\n").encode() + body


@contextlib.asynccontextmanager
async def https_server(ctx: ssl.SSLContext, respond: Callable[[bytes], bytes], requests: list[bytes], *,
                       abort: bool = False, silent: bool = False) -> AsyncIterator[int]:
    """A loopback TLS server answering each request head with ``respond(head)`` (heads kept in
    ``requests``), then closing with a close_notify (``abort``: a bare TCP close; ``silent``: no answer).
    Its connections are ended with it (none left to the loop's shutdown)."""
    handlers: set[asyncio.Task[Any]] = set()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            handlers.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            requests.append(head)
            if silent:
                await reader.read()
                return
            writer.write(respond(head))
            await writer.drain()
            if abort:
                writer.transport.abort()
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # the phone went away (a refused certificate): its right
        finally:
            writer.close()
    server = await asyncio.start_server(handler, HOST, 0, ssl=ctx)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


def _lab_ctx(lab: LabCluster) -> ssl.SSLContext:
    ident = lab.identity("tftp-https")
    return server_context(ident.cert, ident.key)


def _stranger_ctx() -> ssl.SSLContext:
    key, cert = _stranger()
    return server_context(cert, key)




def _phone(lab: LabCluster, profile: str = "cp-8861") -> Phone:
    return Phone(mac=MAC, profile=get_profile(profile), flash=None, clock=lambda: NOW,
                 mic=lab.phone_identity(MAC), image_signers=[lab.identity("imagesigning").cert],
                 tvs=tvs_unreachable, capf=capf_unreachable, http_timeout=2.0)


async def _boot(lab: LabCluster, port: int, *, profile: str = "cp-8861",
                files: Callable[[str], bytes | None] | None = None) -> tuple[BootReport, MemoryFetcher]:
    """A boot whose files come from memory (``files``, default the lab's) and whose config may come from
    ``https://127.0.0.1:port`` (§H.1)."""
    fetcher = MemoryFetcher(files or lab.get)
    client = HttpsConfigClient(HOST, port, timeout=2.0, tls_versions=("1.2",))
    report = await _phone(lab, profile).boot(BootTarget(host=HOST), fetcher=fetcher, https_config=client)
    return report, fetcher


def _unsigned(lab: LabCluster, name: str = NAME) -> bytes:
    return signed.parse(lab.get(name) or b"").body


def _rules(r: BootReport) -> list[str]:
    return [d.rule for d in r.decisions]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def test_config_over_https_accepted_and_acted_on(lab: LabCluster) -> None:
    requests: list[bytes] = []

    config = _response("200 OK", _unsigned(lab))

    async def go() -> tuple[BootReport, MemoryFetcher]:
        async with https_server(_lab_ctx(lab), lambda _h: config, requests) as port:
            return await _boot(lab, port)

    r, f = run(go(), 30)
    assert requests and requests[0].startswith(f"GET /{NAME} HTTP/1.1\r\n".encode())
    assert b"\r\nHost: 127.0.0.1:" in requests[0] and b"\r\nConnection: close\r\n" in requests[0]
    assert NAME not in f.requests, f.requests  # not asked again over HTTP/TFTP
    assert r.ok and r.config == "accepted" and r.config_file == NAME and not r.locked_out
    assert r.fetched_over[NAME] == "https" and r.as_dict()["fetched_over"][NAME] == "https"
    assert r.deciding is not None and r.deciding.rule == "H.1-https-config" and r.deciding.accepted
    assert r.deciding.signer is not None and "serial" in r.deciding.signer
    assert "g3-tones.xml.sgn" in f.requests  # acted on: the static files it names were fetched
    assert any("over HTTPS" in t for t in r.timeline), r.timeline


def test_untrusted_server_certificate_falls_back_to_the_signed_config(lab: LabCluster) -> None:
    requests: list[bytes] = []

    config = _response("200 OK", _unsigned(lab))

    async def go() -> tuple[BootReport, MemoryFetcher]:
        async with https_server(_stranger_ctx(), lambda _h: config, requests) as port:
            return await _boot(lab, port)

    r, f = run(go(), 30)
    assert requests == []  # the connection ended before the request
    refused = [d for d in r.decisions if d.rule == "H.1-https-config-server-untrusted"]
    assert len(refused) == 1 and not refused[0].accepted and "CN=stranger" in refused[0].reason
    assert NAME in f.requests and r.fetched_over[NAME] == "memory"
    assert r.ok and not r.locked_out and r.config_file == NAME
    assert r.deciding is not None and r.deciding.rule.startswith("G.4-") and r.deciding.accepted


def test_untrusted_server_does_not_decide_a_failed_fallback(lab: LabCluster) -> None:
    """The normal way's outcome is the boot's: no config anywhere → auto-registration decides, not H.1."""
    async def go() -> tuple[BootReport, MemoryFetcher]:
        async with https_server(_stranger_ctx(), lambda _h: b"", []) as port:
            return await _boot(lab, port, files=lambda n: None if "cnf" in n else lab.get(n))

    r, _f = run(go(), 30)
    assert "H.1-https-config-server-untrusted" in _rules(r) and not r.ok and not r.locked_out
    assert r.deciding is not None and r.deciding.rule.startswith("G.10-"), r.deciding


@pytest.mark.parametrize("how", ["404", "503", "unreachable", "garbage"])
def test_transport_failures_go_the_normal_way_without_a_decision(lab: LabCluster, how: str) -> None:
    answer = {"404": _response("404 Not Found"), "503": _response("503 Service Unavailable"),
              "garbage": b"SSH-2.0-nothing-like-http\r\n\r\n"}.get(how, b"")

    async def go() -> tuple[BootReport, MemoryFetcher]:
        if how == "unreachable":
            return await _boot(lab, _free_port())
        async with https_server(_lab_ctx(lab), lambda _h: answer, []) as port:
            return await _boot(lab, port)

    r, f = run(go(), 30)
    assert not [d for d in r.decisions if d.rule.startswith("H.1-")], _rules(r)
    assert NAME in f.requests and r.ok and r.fetched_over[NAME] == "memory"
    kind = {"404": "not-found", "503": "error", "unreachable": "unreachable", "garbage": "protocol"}[how]
    assert any(f"{NAME}: HTTPS 127.0.0.1:" in t and f" {kind}: " in t for t in r.timeline), r.timeline
    assert r.failed_downloads == () and not any("TFTP" in s for s in r.statuses)


def test_short_config_over_https_fetches_the_encrypted_one(lab: LabCluster) -> None:
    lab.set_encryption([MAC], True, now=NOW)
    stub = _unsigned(lab)
    assert config_fmt.parse(stub).encr_config

    async def go() -> tuple[BootReport, MemoryFetcher]:
        async with https_server(_lab_ctx(lab), lambda _h: _response("200 OK", stub), []) as port:
            return await _boot(lab, port)

    r, f = run(go(), 30)
    enc = f"SEP{MAC}.cnf.xml.enc.sgn"
    assert NAME not in f.requests and enc in f.requests
    assert r.fetched_over[NAME] == "https" and r.fetched_over[enc] == "memory"
    said = _rules(r)
    assert said[said.index("H.1-https-config"):][:2] == ["H.1-https-config", "G.12.2-cert-hash-match"]
    assert r.ok and r.encrypted and r.config_file == enc
    assert r.deciding is not None and r.deciding.rule == "G.12.3-decrypted"


def test_malformed_config_over_https_falls_back(lab: LabCluster) -> None:
    async def go() -> tuple[BootReport, MemoryFetcher]:
        async with https_server(_lab_ctx(lab), lambda _h: _response("200 OK", b"<html>hi</html"), []) as port:
            return await _boot(lab, port)

    r, f = run(go(), 30)
    bad = [d for d in r.decisions if d.rule == "H.1-https-config-malformed"]
    assert len(bad) == 1 and not bad[0].accepted
    assert NAME in f.requests and r.ok and not r.locked_out
    assert r.deciding is not None and r.deciding.rule.startswith("G.4-")


def test_not_asked_when_the_rule_does_not_apply(lab: LabCluster) -> None:
    """A model without EC support (cp-7962) never connects to 6971, whatever the ITL says."""
    requests: list[bytes] = []

    config = _response("200 OK", _unsigned(lab))

    async def go() -> tuple[BootReport, MemoryFetcher]:
        async with https_server(_lab_ctx(lab), lambda _h: config, requests) as port:
            return await _boot(lab, port, profile="cp-7962")

    r, f = run(go(), 30)
    assert requests == [] and NAME in f.requests and r.fetched_over.get(NAME) == "memory" and r.ok


# --------------------------------------------------------------------------- the client
def _client_get(ctx: ssl.SSLContext, answer: bytes, **server: bool) -> bytes:
    async def go() -> bytes:
        async with https_server(ctx, lambda _h: answer, [], **server) as port:
            client = HttpsConfigClient(HOST, port, timeout=1.0, tls_versions=("1.2",))
            return await client(NAME, accept_server=lambda _der: True)
    return run(go(), 10)


def test_a_body_read_to_the_end_needs_the_close_notify(lab: LabCluster) -> None:
    """RFC 9112 §9.8: a body with neither Content-Length nor chunked framing is whole only when TLS ended
    it (a close_notify), not on a bare TCP close."""
    body = _unsigned(lab)
    assert _client_get(_lab_ctx(lab), _response("200 OK", body, length=False)) == body
    with pytest.raises(TransportError) as info:
        _client_get(_lab_ctx(lab), _response("200 OK", body, length=False), abort=True)
    assert info.value.kind == "protocol" and "close_notify" in info.value.message


def test_a_silent_server_is_a_timeout_within_the_bound(lab: LabCluster) -> None:
    with pytest.raises(TransportError) as info:
        _client_get(_lab_ctx(lab), b"", silent=True)
    assert info.value.kind == "timeout"


def test_body_above_the_cap_is_refused(lab: LabCluster) -> None:
    async def go() -> bytes:
        async with https_server(_lab_ctx(lab), lambda _h: _response("200 OK", b"x" * 5000), []) as port:
            client = HttpsConfigClient(HOST, port, timeout=1.0, tls_versions=("1.2",), max_size=1000)
            return await client(NAME, accept_server=lambda _der: True)
    with pytest.raises(TransportError) as info:
        run(go(), 10)
    assert info.value.kind == "too-large"


# --------------------------------------------------------------------------- plumbing
def test_target_and_phone_build_the_way_to_6971(lab: LabCluster) -> None:
    p = _phone(lab)
    got = p.https_config_for(BootTarget(host=HOST))
    assert got is not None and got.where == "127.0.0.1:6971"
    other = p.https_config_for(BootTarget(host="::1", https_config_port=16971))
    assert other is not None and other.where == "[::1]:16971"
    assert p.https_config_for(BootTarget(host=HOST, use_https_config=False)) is None
    with pytest.raises(EncodeError, match="https_config_port"):
        BootTarget(host=HOST, https_config_port=0)


def test_a_scenario_cluster_passes_its_https_config_port() -> None:
    from phoneemu.scenario.model import ClusterSpec
    from phoneemu.scenario.world import ClusterHandle

    spec = ClusterSpec(name="a", where="t.yaml")
    with_it = ClusterHandle(spec=spec, host=HOST, tftp_port=69, http_port=6970, https_config_port=16971,
                            use_https_config=True).target()
    assert (with_it.https_config_port, with_it.use_https_config) == (16971, True)
    external = ClusterHandle(spec=spec, host=HOST, tftp_port=69, http_port=None).target()
    assert (external.https_config_port, external.use_https_config) == (None, True)  # 6971, as CUCM


# --------------------------------------------------------------------------- against the lab's own servers
def test_end_to_end_against_the_lab_servers(lab: LabCluster) -> None:
    """A phone built from its target alone (no fetcher given: HTTP 6970 / TFTP and 6971 from the target)
    against :class:`LabServers` of a lab with the ``tftp-https`` identity."""
    from phoneemu.lab.servers import LabServers

    async def go() -> tuple[BootReport, list[str]]:
        async with LabServers(lab, host=HOST) as srv:
            target = BootTarget(host=HOST, tftp_port=srv.ports["tftp"], http_port=srv.ports["http"],
                                https_config_port=srv.ports["https-config"])
            phone = Phone(mac=MAC, profile=P8861, flash=None, clock=lambda: NOW, mic=lab.phone_identity(MAC),
                          image_signers=[lab.identity("imagesigning").cert], fetch_timeout=0.5,
                          http_timeout=2.0, tvs_timeout=2.0, capf_timeout=2.0)
            report = await phone.boot(target)
            return report, [r.service for r in srv.requests if r.name.lstrip("/") == NAME]

    r, services = run(go(), 60)
    assert r.ok and r.config_file == NAME and r.fetched_over[NAME] == "https", (r.fetched_over, r.timeline)
    assert r.deciding is not None and r.deciding.rule == "H.1-https-config"
    assert services == ["https-config"], services


def test_boot_command_asks_the_port_the_lab_serve_recorded(lab: LabCluster,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """``boot --lab DIR`` without ``--tftp``: the lab's recorded ``https-config`` port (not 6971), shown in
    the human summary and the JSON report; ``--no-https-config`` asks HTTP 6970 instead."""
    import json

    from phoneemu.cli import main
    from tests.helpers import serve_in_thread

    ports, stop = serve_in_thread(lab)
    common = ["boot", "--mac", MAC, "--lab", str(lab.root), "--now", str(NOW), "--timeout", "1"]
    try:
        assert main(common) == 0
        text = capsys.readouterr().out
        assert main([*common, "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert main([*common, "--json", "--no-https-config"]) == 0
        plain = json.loads(capsys.readouterr().out)
    finally:
        stop()
    assert ports["https-config"] != 6971
    assert f"  config:    accepted ({NAME}) over HTTPS\n" in text, text
    assert doc["report"]["fetched_over"][NAME] == "https"
    assert doc["report"]["deciding"]["rule"] == "H.1-https-config"
    assert any(f"over HTTPS (127.0.0.1:{ports['https-config']}" in t for t in doc["report"]["timeline"])
    assert plain["report"]["fetched_over"][NAME] == "http" and plain["report"]["ok"]


def test_the_client_takes_no_more_than_a_config_can_be() -> None:
    """The 6971 body is capped at the config parser's own limit (a larger one could be no config)."""
    from phoneemu.formats.config import CONFIG_LIMIT

    assert HttpsConfigClient("127.0.0.1").max_size == CONFIG_LIMIT
