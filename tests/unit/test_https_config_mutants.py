"""The HTTPS config download (TCP 6971, spec §H.1): the rules mutation testing found untested.

Each test states the rule it checks (the module docstrings of :mod:`phoneemu.phone.https_config`,
:mod:`phoneemu.lab.https_config_service`, :mod:`phoneemu.scenario.replay_https_config` and the boot's step 2
"HTTPS first", :mod:`phoneemu.phone.boot`); each was seen to fail on a mutant of the code that the earlier
tests let through.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from phoneemu.crypto.certs import CertRequest, issue_certificate
from phoneemu.crypto.keys import KeySpec, generate_key
from phoneemu.errors import TransportError
from phoneemu.formats import signed
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.https_config_service import HttpsConfigFiles
from phoneemu.net.fetch import MemoryFetcher
from phoneemu.net.tls import server_context
from phoneemu.net.tls_decrypt import DecryptedTls, KeyLog
from phoneemu.phone.boot import BootTarget
from phoneemu.phone.https_config import SERVER_REFUSED, HttpsConfigClient
from phoneemu.phone.phone import Phone
from phoneemu.phone.profile import get_profile
from phoneemu.scenario import replay_https_config
from phoneemu.scenario.replay_https_config import (
    NO_EXCHANGE,
    NOT_READ,
    CapturedHttpsConfig,
    HttpsConfigCapture,
    HttpsConfigCollector,
)
from tests.helpers import capf_unreachable, pristine_lab, run, tvs_unreachable
from tests.tls_server_helpers import threaded_tls_servers

NOW = 1_780_000_000
MAC = "0A00000000E1"
OTHER = "0A00000000E2"
NAME = f"SEP{MAC}.cnf.xml.sgn"
HOST = "127.0.0.1"

base_lab, lab = pristine_lab("https-config-mutants", now=NOW, phones={MAC: {"now": NOW}, OTHER: {"now": NOW}},
                             https_key="ec-p256")


# --------------------------------------------------------------------------- the phone's client
def _judge_into(judged: list[bytes | None]) -> Callable[[bytes | None], bool]:
    """An ``accept_server`` that accepts every certificate, keeping each it was asked about."""
    def accept(der: bytes | None) -> bool:
        judged.append(der)
        return True
    return accept


def _stranger_ctx() -> ssl.SSLContext:
    """A loopback server's TLS context with a self-signed EC certificate (these tests' ``accept_server``
    takes any: the certificate rule, :func:`phoneemu.phone.rules.decide_https_config_server`, is tested on
    its own)."""
    key = generate_key(KeySpec.parse("ec-p256"))
    t = dt.datetime.fromtimestamp(NOW, dt.UTC)
    cert = issue_certificate(CertRequest(subject="CN=tftp;O=test", public_key=key.public_key(), serial=5,
                                         not_before=t - dt.timedelta(days=1),
                                         not_after=t + dt.timedelta(days=30)), issuer_key=key)
    return server_context(cert, key)


def _answer(tls: ssl.SSLSocket, reply: tuple[bytes, bool]) -> None:
    """Read the request head (at most 64 reads), send ``reply[0]``; end with a close_notify when
    ``reply[1]``, else a bare TCP close."""
    head = b""
    for _ in range(64):
        if b"\r\n\r\n" in head:
            break
        data = tls.recv(4096)
        if not data:
            return
        head += data
    tls.sendall(reply[0])
    if reply[1]:
        tls.unwrap()


def _get(reply: bytes, *, close_notify: bool = True, max_size: int = 1000, host: str = HOST,
         judged: list[bytes | None] | None = None) -> tuple[str, bytes]:
    """(``https://HOST:PORT/NAME``, the body) of the phone's client against a loopback server answering
    ``reply`` (``host``: the host the client is given instead)."""
    with threaded_tls_servers(_stranger_ctx(), _answer) as start:
        where = start((reply, close_notify))
        client = HttpsConfigClient(host, int(where.rsplit(":", 1)[1]), timeout=5.0, tls_versions=("1.2",),
                                   max_size=max_size)
        accept = _judge_into(judged if judged is not None else [])
        return f"https://{where}/{NAME}", run(client(NAME, accept_server=accept), 20)


def _chunked_of(total: int) -> tuple[bytes, bytes]:
    """A chunked 200 of exactly ``total`` bytes, mostly chunk extensions (framing, not body): (it, its
    body)."""
    head, end = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"0\r\n\r\n"
    left, chunks = total - len(head) - len(end), []
    while left > 2 * 4009:  # b"1;p=" + ext + b"\r\nX\r\n": 9 + ext bytes, each line under 8 KiB
        chunks.append(b"1;p=" + b"a" * 4000 + b"\r\nX\r\n")
        left -= 4009
    chunks.append(b"1;p=" + b"a" * (left - 9) + b"\r\nX\r\n")
    return head + b"".join(chunks) + end, b"X" * len(chunks)


def test_the_server_sends_at_most_the_cap_and_64_kib_of_framing() -> None:
    """Rule 3 (:mod:`phoneemu.phone.https_config`, ours): the server may send the body's cap and 64 KiB of
    head and framing in all, no more — a chunked body of tiny chunks with long extensions could otherwise
    keep the phone reading gigabytes for a config of a few bytes. That much is read; one byte more is
    ``too-large``, its message naming the URL once (house style: errors say where)."""
    limit = 1000 + 64 * 1024
    reply, body = _chunked_of(limit)
    assert len(reply) == limit
    assert _get(reply)[1] == body
    with pytest.raises(TransportError) as info:
        _get(_chunked_of(limit + 1)[0])
    url = info.value.message.split(": ", 1)[0]
    assert info.value.kind == "too-large" and url.startswith("https://127.0.0.1:") and url.endswith(NAME)
    assert "https://" not in info.value.message.split(": ", 1)[1] and str(limit) in info.value.message


def test_a_body_read_to_a_bare_close_is_refused_naming_the_url_once() -> None:
    """Rule 4 (RFC 9112 §9.8): a body without length read to a TCP close without close_notify is not kept
    (``protocol``); the message opens with the URL, once."""
    with pytest.raises(TransportError) as info:
        _get(b"HTTP/1.1 200 OK\r\n\r\n<device/>", close_notify=False)
    head, rest = info.value.message.split(": ", 1)
    assert info.value.kind == "protocol" and head.startswith("https://") and head.endswith(f"/{NAME}")
    assert "https://" not in rest and "close_notify" in rest


def test_a_host_name_idna_cannot_encode_is_unreachable_not_a_crash() -> None:
    """A host IDNA cannot encode (an empty label) is ``unreachable``: the boot goes the normal way (an
    exception of another kind would end the boot), and no certificate is judged."""
    judged: list[bytes | None] = []
    with pytest.raises(TransportError) as info:
        _get(b"", host="bad..name", judged=judged)
    assert info.value.kind == "unreachable" and "not a valid host name" in info.value.message
    assert judged == []


# --------------------------------------------------------------------------- replay: one captured exchange
def _exchange(*, certificate: bytes | None = b"cert", response: bytes | None = None, order: int = 3,
              too_long: bool = False) -> CapturedHttpsConfig:
    """This phone's captured request to 10.1.0.2:6971, its server's ``certificate`` and ``response``."""
    return CapturedHttpsConfig(start=float(order), client=("10.1.0.21", 40000 + order),
                               server=("10.1.0.2", 6971), order=order, name=NAME, mac=MAC, tls="TLSv1.2",
                               certificate=certificate, why="no handshake secret in the key log",
                               response=response, close_notify=True, too_long=too_long)


def _ask(capture: HttpsConfigCapture, accept: Callable[[bytes | None], bool] = lambda _der: True, *,
         clients: frozenset[str] = frozenset(), served: list[tuple[str, str]] | None = None,
         server: str = "10.1.0.2") -> bytes:
    getter = capture.replayer().getter(mac=MAC, server=server, window=(0, 100), span=lambda: (0, 100),
                                       clients=clients, served=served)
    return run(getter(NAME, accept_server=accept))


_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n<device/>"


def test_a_captured_server_the_replayed_phone_refuses_gives_no_body() -> None:
    """§G.5 on replay: the replayed phone's rule judges the captured certificate first; refused, the
    request is refused as live (kind ``tls``), the captured answer unused, and the replay's served list
    says so."""
    served: list[tuple[str, str]] = []
    with pytest.raises(TransportError) as info:
        _ask(HttpsConfigCapture(exchanges=(_exchange(response=_OK),)), lambda _der: False, served=served)
    assert info.value.kind == "tls" and info.value.message.endswith(SERVER_REFUSED)
    assert served == [(NAME, "tls via https 10.1.0.2:6971 (captured)")]


def test_a_certificate_the_capture_does_not_show_is_not_judged() -> None:
    """Not judged (TLS 1.3 without its handshake secret): ``unreachable`` saying why; the rule is not
    asked about a certificate it was not shown."""
    judged: list[bytes | None] = []
    with pytest.raises(TransportError) as info:
        _ask(HttpsConfigCapture(exchanges=(_exchange(certificate=None, response=_OK),)),
             _judge_into(judged))
    assert info.value.kind == "unreachable" and "no handshake secret" in info.value.message and judged == []


def test_an_answer_beyond_what_the_live_client_reads_is_too_large() -> None:
    """The server's bytes are kept up to what the live client reads; beyond, ``too-large`` as live — also
    when the part kept reads as a whole 200."""
    with pytest.raises(TransportError) as info:
        _ask(HttpsConfigCapture(exchanges=(_exchange(response=_OK, too_long=True),)))
    assert info.value.kind == "too-large"


def test_answers_beyond_the_replays_memory_are_not_kept_and_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """At most MAX_KEPT_BYTES of captured answers in all (identical ones once): the budget filled to the
    byte, an exchange beyond keeps no answer (even of one byte), and its replay is an ``error`` saying
    why, not "no answer"."""
    monkeypatch.setattr(replay_https_config, "MAX_KEPT_BYTES", 2 * len(_OK))
    collector = HttpsConfigCollector()
    for i, answer in enumerate((_OK, _OK, _OK.replace(b"device", b"Device"), b"x")):
        _collect(collector, i, MAC, answer)
    kept = collector.result().exchanges
    assert [ex.response is not None for ex in kept] == [True, True, True, False]
    assert kept[0].response is kept[1].response  # identical answers: one copy
    assert "not kept" in kept[3].not_kept and "not kept" in kept[3].describe()
    with pytest.raises(TransportError) as info:
        _ask(HttpsConfigCapture(exchanges=(dataclasses.replace(kept[3], certificate=b"cert"),)))
    assert info.value.kind == "error" and info.value.message.endswith(kept[3].not_kept)


# --------------------------------------------------------------------------- replay: the collector
def _collect(collector: HttpsConfigCollector, order: int, mac: str, answer: bytes = _OK,
             server: tuple[str, int] = ("10.1.0.2", 6971)) -> bool:
    plain = DecryptedTls(client_data=f"GET /SEP{mac}.cnf.xml.sgn HTTP/1.1\r\nHost: tftp\r\n\r\n".encode(),
                         server_data=answer, description="TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256",
                         server_close_notify=True)
    return collector.connection(client=("10.1.0.21", 40000 + order), server=server, start=float(order),
                                order=order, plain=plain, client_stream=b"", server_stream=b"",
                                secrets=KeyLog())


def test_the_collector_keeps_all_up_to_its_limit_then_only_its_phones() -> None:
    """All exchanges up to ``limit``, beyond only ``mac``'s (without ``mac``: none beyond); each kept names
    the file asked (``replay --list``)."""
    anyone = HttpsConfigCollector(limit=1)
    assert _collect(anyone, 1, OTHER) and _collect(anyone, 2, MAC)
    assert [ex.mac for ex in anyone.result().exchanges] == [OTHER]
    own = HttpsConfigCollector(limit=1, mac=MAC)
    assert _collect(own, 1, MAC) and _collect(own, 2, MAC) and _collect(own, 3, OTHER)
    kept = own.result().exchanges
    assert [ex.order for ex in kept] == [1, 2] and own.unlisted == 1
    assert kept[0].describe() == f"https-config 10.1.0.2:6971 {NAME}: {len(_OK)} bytes back " \
                                 "(TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256)"


# --------------------------------------------------------------------------- replay: a refused server
@dataclass(frozen=True)
class _Shown:
    """A captured connection whose client sent nothing after the handshake (``CapturedCert``'s shape)."""

    client: tuple[str, int]
    server: tuple[str, int]
    order: int
    mac: str | None = None
    certificate: bytes = b"mitm"


def _refused(capture: HttpsConfigCapture, **kw: Any) -> tuple[str, str]:
    """(kind, message) of the boot's request when the phone refuses every certificate."""
    with pytest.raises(TransportError) as info:
        _ask(capture, lambda _der: False, **kw)
    return info.value.kind, info.value.message


def test_a_connection_without_a_request_is_the_boots_only_when_it_can_be() -> None:
    """"A server the phone refused": a connection without a request is the boot's HTTPS config connection
    only on 6971 or a port where the capture holds an HTTPS config request, never one whose client
    certificate names another phone, from a client address of the boot when it has its own, each once."""
    on = ("10.1.0.2", 6971)
    assert _refused(HttpsConfigCapture(presented=(_Shown(("10.1.0.21", 1), on, 5),)))[0] == "tls"
    for shown, kw in [(_Shown(("10.1.0.21", 1), ("10.1.0.2", 2445), 5), {}),  # a TVS server refused
                      (_Shown(("10.1.0.21", 1), on, 5, mac=OTHER), {}),  # another phone's
                      (_Shown(("10.1.0.99", 1), on, 5), {"clients": frozenset({"10.1.0.21"})})]:
        kind, message = _refused(HttpsConfigCapture(presented=(shown,)), **kw)
        assert (kind, message) == ("unreachable", f"10.1.0.2:6971: {NO_EXCHANGE}"), shown
    mine = _Shown(("10.1.0.21", 1), on, 5, mac=MAC)
    replay = HttpsConfigCapture(presented=(mine,)).replayer()
    served: list[tuple[str, str]] = []
    for expected in ("tls", "unreachable"):  # used once: the next boot finds nothing
        getter = replay.getter(mac=MAC, server="10.1.0.2", window=(0, 100), span=lambda: (0, 100),
                               clients=frozenset({"10.1.0.21"}), served=served)
        with pytest.raises(TransportError) as info:
            run(getter(NAME, accept_server=lambda _der: False))
        assert info.value.kind == expected
    assert served == [(NAME, "server certificate refused via https 10.1.0.2:6971 (captured)")]


def test_a_lab_port_a_request_went_to_is_the_boots_too() -> None:
    """A lab's port is ephemeral: a connection without a request to a port where the capture holds an
    HTTPS config request (any phone's) is the boot's; the boot with nothing captured names that port."""
    collector = HttpsConfigCollector()
    _collect(collector, 1, OTHER, server=("10.1.0.2", 7000))
    shown = _Shown(("10.1.0.21", 1), ("10.1.0.2", 7000), 5)
    assert _refused(collector.result(presented=(shown,)))[0] == "tls"
    getter = collector.result().replayer().getter(mac=MAC, server="10.1.0.2", window=(0, 100),
                                                  span=lambda: (0, 100))
    assert getter.where == "10.1.0.2:7000"


def test_without_a_key_log_nothing_is_judged() -> None:
    """Without a key log no connection can be read: ``unreachable`` (NOT_READ), no certificate judged, a
    connection without a request included."""
    judged: list[bytes | None] = []
    capture = HttpsConfigCapture(presented=(_Shown(("10.1.0.21", 1), ("10.1.0.2", 6971), 5),), read=False)
    with pytest.raises(TransportError) as info:
        _ask(capture, _judge_into(judged))
    assert info.value.kind == "unreachable" and info.value.message.endswith(NOT_READ) and judged == []


@pytest.mark.parametrize("exchange_first", [True, False])
def test_the_first_connection_in_capture_order_is_the_boots(exchange_first: bool) -> None:
    """A connection without a request and a captured exchange: the one first in capture order answers."""
    shown = _Shown(("10.1.0.21", 1), ("10.1.0.2", 6971), 5)
    ex = _exchange(response=_OK, order=3 if exchange_first else 7)
    capture = HttpsConfigCapture(exchanges=(ex,), presented=(shown,))
    if exchange_first:
        assert _ask(capture) == b"<device/>"
    else:
        with pytest.raises(TransportError) as info:
            _ask(capture)
        assert info.value.kind == "unreachable" and "sent no request" in info.value.message


# --------------------------------------------------------------------------- the lab's 6971 answers
def _lab_answers(fails: Callable[[str], bool] = lambda _name: False) -> tuple[HttpsConfigFiles, list[str]]:
    """The 6971 answer over the lab's served ``SEP<MAC>.cnf.xml`` (another name: none; ``SEP<OTHER>``'s made
    to fail as the lab's network does) and the names it asked the lab for."""
    asked: list[str] = []

    def served(name: str) -> bytes | None:
        asked.append(name)
        if name == f"SEP{OTHER}.cnf.xml":
            raise TransportError(f"{name}: made to fail", kind="error", path=name)
        return b"<device/>" if name == f"SEP{MAC}.cnf.xml" else None
    return HttpsConfigFiles(served, fails), asked


def test_the_lab_ignores_a_query() -> None:
    """``GET /SEP<MAC>.cnf.xml.sgn`` with a query answers as without it (lab module rules)."""
    answer, _asked = _lab_answers()
    ok = (200, b"<device/>")
    assert answer(f"/{NAME}?x=1") == answer(f"/{NAME}") == answer(f"/SEP{MAC}.cnf.xml?") == ok
    assert answer(f"/SEP{MAC}.cnf.xml.sgn.x?/{NAME}")[0] == 404


def test_a_failing_name_answers_500_before_any_file_is_read() -> None:
    """A name the lab's ``fail`` patterns match — the one asked for (its query ignored), or
    ``SEP<MAC>.cnf.xml`` served for it (the lab raising for it) — answers 500, as the HTTP port does."""
    answer, asked = _lab_answers(lambda name: name == NAME)
    assert answer(f"/{NAME}") == answer(f"/{NAME}?x=1") == (500, b"") and asked == []
    assert answer(f"/SEP{MAC}.cnf.xml") == (200, b"<device/>")
    assert answer(f"/SEP{OTHER}.cnf.xml.sgn") == (500, b"")


# --------------------------------------------------------------------------- the boot's step 2 "HTTPS first"
class _Getter:
    """An in-memory way to 6971 (:class:`phoneemu.phone.boot.HttpsConfigGetter`): presents ``der`` to the
    boot's judge (``judge=False``: a getter that never has it judged) and answers ``body``."""

    where = "10.1.0.2:6971"

    def __init__(self, der: bytes, body: bytes, *, judge: bool = True) -> None:
        self.der, self.body, self.judge = der, body, judge

    async def __call__(self, name: str, *, accept_server: Callable[[bytes | None], bool]) -> bytes:
        if self.judge and not accept_server(self.der):
            raise TransportError(f"{self.where}: {SERVER_REFUSED}", kind="tls", path=name)
        return self.body


class _NothingAnswers(MemoryFetcher):
    """No answer to any request the normal way."""

    async def fetch(self, name: str) -> bytes:
        raise TransportError(f"{name}: no answer", kind="timeout", path=name)


def _phone(lab: LabCluster) -> Phone:
    return Phone(mac=MAC, profile=get_profile("cp-8861"), flash=None, clock=lambda: NOW,
                 mic=lab.phone_identity(MAC), image_signers=[lab.identity("imagesigning").cert],
                 tvs=tvs_unreachable, capf=capf_unreachable)


def _unsigned(lab: LabCluster, mac: str = MAC) -> bytes:
    return signed.parse(lab.get(f"SEP{mac}.cnf.xml.sgn") or b"").body


def test_a_full_config_over_https_is_the_config_not_a_short_one(lab: LabCluster) -> None:
    """§H.1: a full config over 6971 is decided by H.1 and acted on as the config; it is no short config
    (§G.12 decides nothing of it), and its request is in the phone's event log as any request."""
    phone = _phone(lab)
    getter = _Getter(lab.identity("tftp-https").der, _unsigned(lab))
    r = run(phone.boot(BootTarget(host=HOST), fetcher=MemoryFetcher(lab.get), https_config=getter))
    assert r.ok and r.config_file == NAME and r.fetched_over[NAME] == "https", r.timeline
    assert r.deciding is not None and r.deciding.rule == "H.1-https-config"
    config_rules = [d.rule for d in r.decisions if d.kind == "config"]
    assert config_rules == ["H.1-https-config"] and not any(d.rule.startswith("G.12") for d in r.decisions)
    asked = [e.file for e in phone.events if e.kind == "request"]
    assert asked.count(NAME) == 1, asked


def test_a_full_config_that_says_encrypted_over_https_sends_the_phone_for_the_encrypted_one(
        lab: LabCluster) -> None:
    """§G.12 as the normal way: a config over 6971 that says ``encrConfig=true`` is not the config to run,
    full or not; what it tells the phone decides (here: no certHash of the phone, a CAPF session, which
    fails), never H.1 alone."""
    body = _unsigned(lab)
    assert b"<encrConfig>false</encrConfig>" in body and b"<fullConfig>true</fullConfig>" in body
    getter = _Getter(lab.identity("tftp-https").der,
                     body.replace(b"<encrConfig>false</encrConfig>", b"<encrConfig>true</encrConfig>"))
    r = run(_phone(lab).boot(BootTarget(host=HOST), fetcher=MemoryFetcher(lab.get), https_config=getter))
    assert "G.12.2-cert-hash-mismatch" in [d.rule for d in r.decisions], r.timeline
    assert not r.ok and (r.deciding is None or r.deciding.rule != "H.1-https-config"), r.timeline


def test_a_body_from_a_server_never_judged_is_not_taken(lab: LabCluster) -> None:
    """§G.5: a config is taken over 6971 only from a server whose certificate the phone judged and
    accepted; a getter that answers without having it judged is an untrusted server: the phone asks
    the normal way."""
    getter = _Getter(lab.identity("tftp-https").der, _unsigned(lab), judge=False)
    r = run(_phone(lab).boot(BootTarget(host=HOST), fetcher=MemoryFetcher(lab.get), https_config=getter))
    assert "H.1-https-config-server-untrusted" in [d.rule for d in r.decisions], r.timeline
    assert any("HTTPS 10.1.0.2:6971: server not trusted" in t for t in r.timeline), r.timeline
    assert r.ok and r.fetched_over.get(NAME) != "https" and "H.1-https-config" not in [
        d.rule for d in r.decisions if d.accepted]


class _Fails(_Getter):
    """6971 fails with ``error`` (any other exception than a TransportError: an OSError, a PhoneEmuError)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(b"", b"")
        self.error = error

    async def __call__(self, name: str, *, accept_server: Callable[[bytes | None], bool]) -> bytes:
        raise self.error


def test_a_6971_failure_of_any_kind_sends_the_phone_the_normal_way(lab: LabCluster) -> None:
    """Step 2 "HTTPS first": any failure of 6971 (here a reset connection, an OSError) — the phone asks
    the normal way, says why in its timeline, and the boot goes on."""
    getter = _Fails(ConnectionResetError("reset by peer"))
    r = run(_phone(lab).boot(BootTarget(host=HOST), fetcher=MemoryFetcher(lab.get), https_config=getter))
    assert r.ok and r.fetched_over.get(NAME) == "memory", r.timeline
    assert any("HTTPS 10.1.0.2:6971 error: reset by peer: the config is asked for over HTTP/TFTP" in t
               for t in r.timeline), r.timeline


@pytest.mark.parametrize(("how", "answered"), [("another device's config", True), ("404", True),
                                                ("timeout", False)])
def test_an_answer_over_https_is_an_answer_from_the_cluster(lab: LabCluster, how: str,
                                                            answered: bool) -> None:
    """``BootReport.answered``: a body over 6971 is an answer, also one the phone refuses (another device's
    config), and so is a 404; no answer (a timeout) is none. With nothing else answering, a boot whose 6971
    answered does not say that nothing answers at the target."""
    phone = _phone(lab)
    first = run(phone.boot(BootTarget(host=HOST), fetcher=MemoryFetcher(lab.get),
                           https_config=_Getter(lab.identity("tftp-https").der, _unsigned(lab))))
    assert first.ok  # the ITL of signer version 1.1 is held: the next boot asks 6971 first
    getter: _Getter = _Getter(lab.identity("tftp-https").der, _unsigned(lab, OTHER))
    if how != "another device's config":
        getter = _Fails(TransportError("no", kind="not-found" if how == "404" else "timeout", path=NAME))
    r = run(phone.boot(BootTarget(host=HOST), fetcher=_NothingAnswers({}), https_config=getter))
    assert r.answered is answered, r.timeline
    if answered and how != "404":
        assert "H.1-https-config-wrong-device" in [d.rule for d in r.decisions], r.timeline
        assert any(t.endswith("the config is asked for over HTTP/TFTP") for t in r.timeline), r.timeline
