"""TVS client leftovers on the phone side (spec §E.1, §E.2, §E.7.2, §G.3.4).

* An answer about another certificate than the one asked is not cached (the store refuses it, whoever
  caches): a TVS fixed within the TTL is asked again at once (before, the wrong answer was cached and
  refused until its TTL ran out; the boot side is pinned in test_tvs_failover_phone.py,
  ``test_an_answer_for_another_certificate_is_refused``).
* The response is the first frame: one with another session id or type is refused (never replaced by a
  later frame); what follows the response is ignored, whether it arrives in the same read or later.
* The timeline note of a refused TVS server names it (``HOST:PORT``).
* A QUERY whose signer subject + issuer do not fit the frame is not sent, and the deciding reason says
  so ("TVS exchange failed: ..." under "TVS unreachable" before).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from phoneemu.crypto import certs
from phoneemu.errors import ProtocolError, VerifyReason
from phoneemu.formats import trustlist
from phoneemu.formats.config import Server
from phoneemu.formats.header import FileSigner
from phoneemu.lab.cluster import LabCluster
from phoneemu.net.fetch import MemoryFetcher
from phoneemu.phone import rules
from phoneemu.phone.boot import net_tvs_asker
from phoneemu.phone.events import QueryKey
from phoneemu.phone.flash import Flash
from phoneemu.phone.phone import Phone
from phoneemu.phone.profile import get_profile
from phoneemu.phone.store import TrustStore, TvsAnswer, TvsResult, TvsStatus
from phoneemu.protocols import tvs
from tests.helpers import pristine_lab
from tests.integration.test_tvs_failover import Lab, answer_of, ask, good, within
from tests.integration.test_tvs_failover_phone import (
    MAC,
    NOW,
    TARGET,
    Rig,
    _rogue_context,
    deciding,
    scenario,
)
from tests.integration.tvs_scripted import HOST
from tests.unit.test_leftovers_tvs_too_large import big_cert

base_lab, lab = pristine_lab("tvs-leftovers", now=NOW, phones={MAC: {"now": NOW, "lsc_key": "rsa1024"}})

# --- 1. an answer about another certificate is not cached ----------------------------------------------


def test_what_is_not_an_answer_about_the_certificate_asked_is_not_cached(lab: LabCluster) -> None:
    itlr = lab.identity("itlrecovery")
    cert = itlr.cert
    key = QueryKey(subject=certs.dn_text(cert.subject), issuer=certs.dn_text(cert.issuer),
                   serial=certs.serial_bytes(cert.serial_number))
    another = TvsAnswer.from_reply(lab.callmanager().der, (0,), 600)
    other = another.mismatch(key)
    assert other == "TVS returned another certificate (serial and issuer differ)", other
    garbled = TvsAnswer.from_reply(b"\x30\x03\x02\x01\x07", (0,), 600)
    unreadable = garbled.mismatch(key)
    assert unreadable is not None and unreadable.startswith("the certificate TVS returned is unreadable")
    assert TvsAnswer.from_reply(itlr.der, (0,), 600).mismatch(key) is None
    # a VERIFY answer holds the certificate the phone sent: always about it
    assert TvsAnswer.from_reply(lab.callmanager().der, (7,), 600, cert_from_tvs=False).mismatch(key) is None
    store = TrustStore(profile=get_profile("cp-8861"))
    for answer in (TvsAnswer.from_reply(itlr.der, (0,), 0), TvsStatus.UNREACHABLE, TvsStatus.SERVER_UNTRUSTED,
                   TvsStatus.NOT_FOUND,  # a TTL of 0, statuses: never cached
                   another, garbled):  # nor an answer about another certificate: the store is the guard
        assert store.cache_tvs(key, answer, NOW) is False and store.tvs_cache_size == 0, answer
    assert store.cache_tvs(key, TvsAnswer.from_reply(itlr.der, (0,), 600), NOW) is True


# --- 2. the response is the first frame -------------------------------------------------------------------


async def _first_valid_then_unknown(r: asyncio.StreamReader, w: asyncio.StreamWriter,
                                    req: tvs.TvsMessage) -> None:
    w.write(answer_of(req) + tvs.encode(tvs.response(req, status=1)))  # one read: both


async def _response_then_garbage(r: asyncio.StreamReader, w: asyncio.StreamWriter,
                                 req: tvs.TvsMessage) -> None:
    w.write(answer_of(req) + b"HTTP/1.0 200 OK\r\n\r\n")


async def _second_after_the_client_closed(r: asyncio.StreamReader, w: asyncio.StreamWriter,
                                          req: tvs.TvsMessage) -> None:
    w.write(answer_of(req))
    await w.drain()
    for _ in range(64):  # the phone closes once it has the response: it does not wait for the next one
        if not await r.read(65536):
            break
    w.write(tvs.encode(tvs.response(req, status=1)))


def test_what_follows_the_response_never_changes_the_answer() -> None:
    """§E.1: one request, one response. Before, a second response in the same read refused the server
    ("more than one response") while one in a later read was ignored: the outcome hung on segmentation."""
    async def body(lab: Lab) -> None:
        for script in (_first_valid_then_unknown, _response_then_garbage, _second_after_the_client_closed):
            port = await lab.tls(script.__name__, script)
            reply = await ask([(HOST, port)], timeout=2.0)
            assert reply.port == port and reply.valid and reply.failures == (), (script.__name__, reply)
    within(body)


async def _other_session_then_ours(r: asyncio.StreamReader, w: asyncio.StreamWriter,
                                  req: tvs.TvsMessage) -> None:
    stale = tvs.TvsMessage(msg_type=4, session_id=(req.session_id + 1) & 0xFFFFFFFF,
                           elements=tvs.response(req, status=0, roles=(0,)).elements)
    w.write(tvs.encode(stale))
    await w.drain()
    w.write(answer_of(req))


async def _verify_response_then_query_response(r: asyncio.StreamReader, w: asyncio.StreamWriter,
                                               req: tvs.TvsMessage) -> None:
    w.write(tvs.encode(tvs.TvsMessage(msg_type=2, session_id=req.session_id,
                                      elements=tvs.response(req, status=0, roles=(0,)).elements))
            + answer_of(req))


def test_a_first_frame_not_answering_our_request_is_refused_not_skipped_over() -> None:
    async def body(lab: Lab) -> None:
        for script, why in ((_other_session_then_ours, "session id"),
                            (_verify_response_then_query_response, "response type 2, expected 4")):
            bad = await lab.tls(script.__name__, script)
            second = await lab.tls(script.__name__ + "-next", good)
            reply = await ask([(HOST, bad), (HOST, second)], timeout=2.0)
            assert reply.port == second and reply.failures[0].startswith(f"{HOST}:{bad}: ")
            assert why in reply.failures[0], reply.failures[0]
    within(body)


def test_the_client_exchange_takes_the_first_frame_and_ends_there() -> None:
    req = tvs.query_request(7, "CP-8861-SEP001122334455", "CN=a", "CN=b", b"\x01")
    first = tvs.encode(tvs.response(req, status=0, roles=(0,), ttl=60, certificate=b"\x30\x00"))
    second = tvs.encode(tvs.response(req, status=1))
    for tail in (second, second[:4], b"\xff" * 3):
        ex = tvs.TvsClientExchange(req)
        got = ex.receive(first + tail)
        assert got is not None and got.valid
        ex.eof()  # what followed the response does not count, even cut short
        try:
            ex.receive(second)
        except ProtocolError as exc:
            assert "more than one response" in exc.message
        else:
            raise AssertionError("a call after the response must be refused")


def test_a_signer_name_with_undecodable_bytes_goes_to_tvs_as_those_bytes() -> None:
    """A header's signer name keeps a byte that is not UTF-8 as a surrogate (formats.header); building the
    QUERY raised UnicodeEncodeError, which no caller expected (it escaped the boot)."""
    subject = b"CN=caf\xe9".decode("utf-8", "surrogateescape")
    req = tvs.query_request(1, "CP-8861-SEP001122334455", subject, "CN=b", b"\x01")
    assert req.get(tvs.TvsTag.SUBJECT) == b"CN=caf\xe9\x00"
    assert tvs.query_request_fits("CP-8861-SEP001122334455", subject, "CN=b", b"\x01")


# --- 3. the refused server is named ----------------------------------------------------------------------


def test_the_timeline_names_the_tvs_server_whose_certificate_was_refused(lab: LabCluster) -> None:
    async def body(rig: Rig) -> None:
        await rig.tvs.serve(rig.tvs.lab_answer, ctx=_rogue_context())
        await rig.tvs.serve(rig.tvs.lab_answer)
        r = await rig.boot()
        rogue = rig.tvs.targets[0]
        line = next(t for t in r.timeline if "not an ITL TVS record" in t)
        assert f"TVS server {rogue[0]}:{rogue[1]} certificate is not an ITL TVS record" in line, line
        assert "G.3.4-vouched-by-tvs" in [d.rule for d in r.decisions]
    scenario(lab, body)


# --- 4. a QUERY too large for TVS ----------------------------------------------------------------------


def test_a_signer_whose_names_do_not_fit_a_query_is_too_large_not_a_failed_exchange(lab: LabCluster,
                                                                                     tmp_path: Path) -> None:
    # A signed file's header (uint16 length, §A.2) holds the signer's name, serial and issuer and the
    # signature: they fit a QUERY with a CP-<4 digits> device name. A model whose name is long (a profile
    # file's ``model``) with a signer of long names does not: here 1,600 + 64,000 characters.
    der, pem = big_cert(name_chars=32_000)
    cert = certs.load_cert_der(der)
    key = serialization.load_pem_private_key(pem, password=None)
    signer = FileSigner(key=key, cert=cert)  # type: ignore[arg-type]
    installed = trustlist.parse(lab.get("ITLFile.tlv") or b"", kind="ITL")
    big_itl = trustlist.build(kind="ITL", records=[installed.record(i) for i in range(len(installed))],
                              signer=signer, timestamp=NOW + 60)
    profile = dataclasses.replace(get_profile("cp-8861"), model="CP-" + "8" * 1_600,
                                  trust_list_limit=1 << 20)  # a larger-memory model
    qk = rules.https_query_key(cert)
    assert not tvs.query_request_fits(rules.tvs_device_name(profile), qk.subject, qk.issuer, qk.serial)
    asked: list[QueryKey] = []
    real = net_tvs_asker(timeout=0.3)

    async def asker(servers: Sequence[Server], key: QueryKey, *, device_name: str,
                    accept_server: Callable[[bytes | None], bool] | None) -> TvsResult:
        asked.append(key)
        return await real(servers, key, device_name=device_name, accept_server=accept_server)

    flash = Flash(tmp_path / "fleet" / f"SEP{MAC}", profile=profile)
    phone = Phone(mac=MAC, profile=profile, clock=lambda: NOW, flash=flash, mic=lab.phone_identity(MAC),
                  image_signers=[lab.identity("imagesigning").cert], tvs=asker)
    serving = {"big": False}

    def files(name: str) -> bytes | None:
        if serving["big"] and name.startswith("ITL"):
            return big_itl if name == "ITLFile.tlv" else None
        return lab.get(name)

    async def main() -> None:
        assert (await phone.boot(TARGET, fetcher=MemoryFetcher(files))).ok
        serving["big"] = True
        r = await phone.boot(TARGET, fetcher=MemoryFetcher(files))
        d = deciding(r)
        assert d.rule == "G.3.4-tvs-unreachable" and r.locked_out, d
        assert "do not fit a TVS QUERY request" in d.reason and "TVS not asked" in d.reason, d.reason
        assert "exchange failed" not in d.reason and not d.reason.startswith("TVS unreachable"), d.reason
        assert d.reason_code is VerifyReason.TOO_LARGE
        assert asked == []  # the asker was never called: nothing could be sent
        # the report's ways out are those of a QUERY too large (shorten the names), not "bring TVS back"
        ways = r.as_dict()["ways_out"]
        assert ways and "shorten" in ways[0]["action"].lower(), ways
        assert not any(w["action"].lower().startswith("bring") for w in ways), ways  # no "bring TVS back"
        # and so does `phone show` from what the flash keeps of the boot (last-boot.json)
        from phoneemu.phone.flashes import phone_flashes
        from phoneemu.phone.phone import _last_boot
        from phoneemu.phone.show import render_show, show_state
        from phoneemu.phone.show_fleet import fleet_show

        last = _last_boot(r, phone.store, NOW)
        assert last["deciding_reason_code"] == "too-large"
        info = show_state(phone.store, mac=MAC, last_boot=last)
        assert info["ways_out"] == ways
        assert "shorten" in render_show(info).lower()
        # and `phone show --fleet-flash` groups it by that code, with the same ways
        doc = fleet_show(phone_flashes(tmp_path / "fleet"), root=str(tmp_path / "fleet"))
        assert [(w["rule"], w["reason_code"], w["phones"]) for w in doc["ways_out"]] == \
            [("G.3.4-tvs-unreachable", "too-large", 1)], doc["ways_out"]
        assert [w["action"] for w in doc["ways_out"][0]["ways"]] == [w["action"] for w in ways]
    asyncio.run(asyncio.wait_for(main(), 20))
