"""HTTPS application server authenticated through TVS VERIFY, over loopback (spec §E.7.1, §E.7.6, §G.5)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from phoneemu.crypto import certs
from phoneemu.formats.trustlist import Role
from phoneemu.lab.https_service import DIRECTORY_XML
from phoneemu.lab.servers import LabServers
from phoneemu.net.tls import open_tls_connection, peer_certificate_der, phone_client_context
from tests.integration.test_phone_rules_e2e import HOST, NOW, Clock, cluster, make_phone, run, target


def test_https_via_tvs_cache_outage_and_recovery(tmp_path: Path) -> None:
    c = cluster(tmp_path, tvs_ttl=3600)
    clock = Clock()

    async def go() -> None:
        async with LabServers(c, host=HOST, clock=clock, app_https=True) as srv:
            port = srv.ports["https"]
            assert set(c.state.ports) == {"tftp", "http", "tvs", "capf"}  # configs do not name it
            tomcat = c.app_server_identity()
            der = certs.cert_der(tomcat.cert)
            # NOT in the ITL; TVS vouches for it with APP-SERVER.
            assert all(r.certificate != der for r in c.itl_records())
            entry = c.tvs_lookup(der)
            assert entry is not None and tuple(entry.roles) == (Role.APP_SERVER,)
            assert entry.ttl == 3600
            # The server presents exactly that certificate.
            _r, w = await open_tls_connection(HOST, port, phone_client_context(("1.2", "1.3")))
            assert peer_certificate_der(w) == der
            w.close()

            phone = make_phone(c, tmp_path, clock)
            before = await phone.open_https(HOST, port)
            assert not before.trusted and before.rule == "E.7.1-https-not-trusted"  # no config/ITL yet
            assert (await phone.boot(target(srv))).ok

            first = await phone.open_https(HOST, port)
            assert first.trusted and first.how == "tvs" and first.rule == "E.7.1-https-vouched-by-tvs"
            assert first.http_status == 200 and first.body == DIRECTORY_XML
            verifies = [e for e in srv.requests if e.service == "tvs" and e.name.startswith("VERIFY")]
            assert len(verifies) == 1 and verifies[0].outcome == "valid"
            rules_seen = [e.rule for e in phone.events if e.kind == "decision" and e.rule
                          and e.rule.startswith("E.7.1")]
            assert rules_seen[-2:] == ["E.7.1-https-needs-tvs", "E.7.1-https-vouched-by-tvs"]

            await srv.stop_service("tvs")
            cached = await phone.open_https(HOST, port)
            assert cached.trusted and cached.how == "tvs-cache" and cached.rule == "E.7.1-https-cached"

            clock.now += 7200
            down = await phone.open_https(HOST, port)
            assert not down.trusted and down.rule == "E.7.1-https-tvs-unreachable"
            assert down.status == "Host Not Found" and down.body == b""
            assert "Host Not Found" in phone.events.status_messages

            await srv.start_service("tvs")
            again = await phone.open_https(HOST, port)
            assert again.trusted and again.rule == "E.7.1-https-vouched-by-tvs"

            # A server TVS does not know: VERIFY answers invalid -> rejected, "Host Not Found".
            c.state.tvs_trust.clear()
            c._index_tvs()
            clock.now += 7200
            unknown = await phone.open_https(HOST, port)
            assert not unknown.trusted and unknown.rule == "E.7.1-https-tvs-unknown"
            assert unknown.status == "Host Not Found"

            await srv.stop_service("https")
            gone = await phone.open_https(HOST, port)
            assert not gone.trusted and gone.how == "connect-failed"
            await srv.start_service("https")
            assert srv.ports["https"] == port

    run(go())


def test_https_service_http_answers(tmp_path: Path) -> None:
    c = cluster(tmp_path)

    async def go() -> None:
        async with LabServers(c, host=HOST, clock=Clock(NOW)) as srv:
            assert "https" not in srv.ports and not srv.running("https")
            await srv.start_service("https")
            port = srv.ports["https"]
            ctx = phone_client_context(("1.2", "1.3"))
            for req, want in ((b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b" 200 "),
                              (b"GET /nope HTTP/1.1\r\n\r\n", b" 404 "),
                              (b"POST / HTTP/1.1\r\n\r\n", b" 405 "),
                              (b"garbage\r\n\r\n", b" 400 "),
                              (b"G" * 10000, b" 400 ")):
                r, w = await open_tls_connection(HOST, port, ctx)
                w.write(req)
                await w.drain()
                try:
                    data = await asyncio.wait_for(r.read(65536), 5)
                except ConnectionResetError:  # oversize: the server may close with our bytes unread
                    assert len(req) > 8192
                    continue
                finally:
                    w.close()
                assert want in data.split(b"\r\n", 1)[0], (req[:20], data[:40])
            for _ in range(50):  # the server logs after its response went out
                if len([e for e in srv.requests if e.service == "https"]) >= 5:
                    break
                await asyncio.sleep(0.02)
            outcomes = [e.outcome for e in srv.requests if e.service == "https"]
            assert outcomes == ["ok", "not-found", "refused", "malformed", "malformed"]

    run(go())
