"""SIP REGISTER and digest authentication (spec §G.13): the codec, the digest arithmetic, the lab
registrar's rules (challenge, nonce validity, replay, unknown device) and hostile input."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.errors import DecodeError
from phoneemu.lab.sip_service import NONCE_VALIDITY_S, SipRegistrar
from phoneemu.protocols import sip
from tests.sip_helpers import (
    LabClock,
    SipAnswer,
    lab_registrar,
    register_request,
    registrar_reply,
    sip_far_end,
)

MAC = "0011223344AA"


def test_rfc2617_worked_example() -> None:
    """RFC 2617 §3.5: Mufasa, "Circle Of Life", qop=auth, nc=00000001, cnonce 0a4f113b."""
    got = sip.digest_response(username="Mufasa", realm="testrealm@host.com", password="Circle Of Life",
                              method="GET", uri="/dir/index.html", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                              nc="00000001", cnonce="0a4f113b", qop="auth")
    assert got == "6629fae49393a05397450978507c4ef1"


def test_message_round_trip_and_header_rules() -> None:
    raw = sip.build_message("REGISTER sip:10.0.0.1 SIP/2.0", [("f", "<sip:SEP0011223344AA@10.0.0.1>"),
                                                              ("Via", "SIP/2.0/TCP a;branch=z9hG4bK1")],
                            b"body")
    msg = sip.parse_message(raw)
    assert (msg.method, msg.uri, msg.body) == ("REGISTER", "sip:10.0.0.1", b"body")
    assert msg.header("From") == msg.header("f") == "<sip:SEP0011223344AA@10.0.0.1>"  # compact form
    ok = sip.parse_message(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert (ok.status, ok.reason, ok.method) == (200, "OK", None)


@pytest.mark.parametrize(("raw", "path"), [
    (b"HELLO\r\nContent-Length: 0\r\n\r\n", "start-line"),
    (b"SIP/2.0 200 OK\r\nno colon here\r\nContent-Length: 0\r\n\r\n", "header[0]"),
    (b"SIP/2.0 200 OK\r\n\r\n", "Content-Length"),
    (b"SIP/2.0 200 OK\r\nContent-Length: 99999999\r\n\r\n", "Content-Length"),
    (b"SIP/2.0 200 OK\r\nContent-Length: x1\r\n\r\n", "Content-Length"),
    (b"SIP/2.0 200 OK\r\nContent-Length: 5\r\n\r\nab", "Content-Length"),
    (b"SIP/2.0 200 OK\r\n" + b"X: y\r\n" * 100 + b"Content-Length: 0\r\n\r\n", "headers"),
    (b"SIP/2.0 200 OK\r\nX: " + b"a" * 9000 + b"\r\n\r\n", "head"),
    # a bare LF or CR in a value: a header of its own in what echoes it (the registrar's 200 did)
    (b"REGISTER sip:x SIP/2.0\r\nExpires: 60\nX-Injected: yes\r\nContent-Length: 0\r\n\r\n", "header[0]"),
    (b"REGISTER sip:x SIP/2.0\r\nCall-ID: a\rb\r\nContent-Length: 0\r\n\r\n", "header[0]"),
    (b"REGISTER sip:x SIP/2.0\r\nTo: <sip:a>\r\nFrom: \x1b[2J\r\nContent-Length: 0\r\n\r\n", "header[1]"),
])
def test_malformed_messages_name_the_field(raw: bytes, path: str) -> None:
    with pytest.raises(DecodeError) as exc:
        sip.parse_message(raw)
    assert exc.value.path == path


def test_a_reason_phrase_with_a_control_character_is_malformed() -> None:
    """A registrar's reason phrase reached the terminal as it was: ``403 \x1b[2J...Registered OK``."""
    with pytest.raises(DecodeError) as exc:
        sip.parse_message(b"SIP/2.0 403 \x1b]0;x\x07\x1b[2JRegistered OK\r\nContent-Length: 0\r\n\r\n")
    assert exc.value.path == "start-line"
    tabbed = sip.parse_message(b"SIP/2.0 403 Forbidden\tnow\r\nContent-Length: 0\r\n\r\n")
    assert tabbed.reason == "Forbidden\tnow"


def test_a_tab_in_a_header_value_is_white_space_not_a_control_character() -> None:
    msg = sip.parse_message(b"REGISTER sip:x SIP/2.0\r\nSubject: a\tb\r\nContent-Length: 0\r\n\r\n")
    assert msg.header("subject") == "a\tb"


def test_stream_frames_messages_split_anywhere() -> None:
    one = sip.build_message("SIP/2.0 401 Unauthorized", [("WWW-Authenticate", 'Digest realm="r"')], b"")
    two = sip.build_message("SIP/2.0 200 OK", [], b"xy")
    data = one + two
    for cut in range(len(data) + 1):
        s = sip.SipStream()
        got = []
        for part in (data[:cut], data[cut:]):
            s.feed(part)
            while (m := s.next()) is not None:
                got.append(m.status)
        assert got == [401, 200]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_only_ever_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        sip.parse_message(data)
    s = sip.SipStream()
    with contextlib.suppress(DecodeError):
        s.feed(data)
        s.next()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_digest_parameters_parse_or_decode_error(text: str) -> None:
    try:
        params = sip.parse_digest("Digest " + text)
    except DecodeError:
        return
    assert all(k == k.lower() for k in params)


def test_digest_header_round_trip_with_quotes() -> None:
    value = sip.format_digest([("username", 'a"b\\c'), ("realm", "ccmsipline"), ("nc", "00000001")])
    assert sip.parse_digest(value) == {"username": 'a"b\\c', "realm": "ccmsipline", "nc": "00000001"}
    with pytest.raises(DecodeError):
        sip.parse_digest('Basic realm="x"')


@pytest.mark.parametrize(("value", "name"), [
    ('Digest realm="ccmsipline", realm="evil", nonce="n1"', "realm"),
    ('Digest realm="a", nonce="n1", NONCE="n2"', "NONCE"),  # names in any case (RFC 7235 §2.1)
    ('Digest realm="a", Nonce=n1, qop=auth, nonce="n1"', "nonce"),  # the same value twice too
    ('Digest qop="auth", realm="a", qop="auth-int", nonce="n"', "qop"),
])
def test_a_digest_parameter_given_twice_is_refused_naming_it(value: str, name: str) -> None:
    """RFC 7235 §2.1 (RFC 7616's auth-params): each parameter name only once per challenge. It was read
    last-wins (``realm="evil"``): which realm, which nonce the phone answered was the last writer's."""
    for field in ("WWW-Authenticate", "Proxy-Authenticate", "Authorization"):
        with pytest.raises(DecodeError, match=f"parameter '{name}' given twice") as exc:
            sip.parse_digest(value, field=field)
        assert (exc.value.fmt, exc.value.path) == ("sip", field)
    msg = sip.parse_message(sip.build_message("SIP/2.0 401 Unauthorized", [("WWW-Authenticate", value)]))
    with pytest.raises(DecodeError, match="given twice"):
        sip.digest_challenges(msg)  # the only challenge: malformed, as one that does not parse
    good = 'Digest realm="ccmsipline", nonce="n9", qop=auth'
    both = sip.parse_message(sip.build_message("SIP/2.0 401 Unauthorized", [("WWW-Authenticate", value),
                                                                            ("WWW-Authenticate", good)]))
    assert sip.digest_challenges(both) == [sip.parse_digest(good)]  # beside a good one: left out


def _answer(challenge: sip.SipMessage, password: str, nc: str = "00000001", user: str = "alice") -> str:
    params = sip.parse_digest(challenge.header("WWW-Authenticate") or "")
    response = sip.digest_response(username=user, realm=params["realm"], password=password, method="REGISTER",
                                   uri="sip:lab", nonce=params["nonce"], nc=nc, cnonce="c0ffee", qop="auth")
    return sip.format_digest([("username", user), ("realm", params["realm"]), ("nonce", params["nonce"]),
                              ("uri", "sip:lab"), ("response", response), ("qop", "auth"), ("nc", nc),
                              ("cnonce", "c0ffee")])


def test_registrar_challenges_checks_and_refuses_replays() -> None:
    clock = LabClock()
    log: list[tuple[str, str]] = []
    reg = lab_registrar({MAC: ("alice", "s3cret"), "0011223344BB": (None, None)}, log, clock=clock)
    challenge = sip.parse_message(reg.answer(register_request(MAC)))
    assert challenge.status == 401 and (challenge.header("To") or "").endswith(";tag=lab")
    params = sip.parse_digest(challenge.header("WWW-Authenticate") or "")
    assert (params["realm"], params["algorithm"], params["qop"]) == ("ccmsipline", "MD5", "auth")
    answer = _answer(challenge, "s3cret")
    assert registrar_reply(reg, MAC, answer) == (200, "")
    assert registrar_reply(reg, MAC, answer) == (401, "")  # the same nonce count: a replay, not stale
    assert registrar_reply(reg, MAC, _answer(challenge, "s3cret", nc="00000002")) == (200, "")
    assert registrar_reply(reg, MAC, _answer(challenge, "guess", nc="00000003"))[0] == 401
    clock.now += NONCE_VALIDITY_S + 1  # past the nonce validity: right answer, stale nonce
    assert registrar_reply(reg, MAC, _answer(challenge, "s3cret", nc="00000004")) == (401, "TRUE")
    assert registrar_reply(reg, "0011223344BB") == (200, "")  # no digest user
    assert registrar_reply(reg, "0011223344CC") == (404, "")  # unknown
    options = sip.parse_message(sip.build_message("OPTIONS sip:lab SIP/2.0", [("From", f"<sip:SEP{MAC}@l>"),
                                                                           *_dialog("OPTIONS")]))
    assert sip.parse_message(reg.answer(options)).status == 405
    assert log == [(f"SEP{MAC}", "challenged"), (f"SEP{MAC}", "registered"), (f"SEP{MAC}", "replayed"),
                   (f"SEP{MAC}", "registered"), (f"SEP{MAC}", "refused"), (f"SEP{MAC}", "stale"),
                   ("SEP0011223344BB", "registered"), ("SEP0011223344CC", "unknown-device"),
                   (f"SEP{MAC}", "not-allowed")]


def test_registrar_refuses_an_answer_repeating_a_parameter() -> None:
    """An Authorization naming ``realm`` twice (RFC 7235 §2.1: once) is challenged again, logged refused;
    it was read last-wins, and the right answer with its realm repeated was registered."""
    log: list[tuple[str, str]] = []
    reg = lab_registrar({MAC: ("alice", "s3cret")}, log)
    challenge = sip.parse_message(reg.answer(register_request(MAC)))
    answer = _answer(challenge, "s3cret")
    twice = sip.parse_message(reg.answer(register_request(MAC, f'{answer}, REALM="{sip.REALM}"')))
    assert twice.status == 401 and twice.header("WWW-Authenticate") is not None
    assert registrar_reply(reg, MAC, answer)[0] == 200  # the nonce is still good
    assert log == [(f"SEP{MAC}", "challenged"), (f"SEP{MAC}", "refused"), (f"SEP{MAC}", "registered")]


def test_registrar_takes_an_answer_without_qop_once() -> None:
    """RFC 2069 style (no qop, no nonce count): the nonce is good for one answer; the same again is a
    replay. qop=auth without a proper nc is refused."""
    log: list[tuple[str, str]] = []
    reg = lab_registrar({MAC: ("alice", "s3cret")}, log)
    challenge = sip.parse_message(reg.answer(register_request(MAC)))
    params = sip.parse_digest(challenge.header("WWW-Authenticate") or "")
    response = sip.digest_response(username="alice", realm=params["realm"], password="s3cret",
                                   method="REGISTER", uri="sip:lab", nonce=params["nonce"])
    plain = sip.format_digest([("username", "alice"), ("realm", params["realm"]), ("nonce", params["nonce"]),
                               ("uri", "sip:lab"), ("response", response)])
    assert registrar_reply(reg, MAC, plain)[0] == 200
    assert registrar_reply(reg, MAC, plain)[0] == 401
    assert registrar_reply(reg, MAC, _answer(challenge, "s3cret", nc="1"))[0] == 401
    assert log[1:] == [(f"SEP{MAC}", "registered"), (f"SEP{MAC}", "replayed"), (f"SEP{MAC}", "refused")]


def _dialog(method: str) -> list[tuple[str, str]]:
    """The dialog headers but From every request carries (RFC 3261 §8.1.1: else the registrar answers 400)."""
    return [("Via", "SIP/2.0/TCP 127.0.0.1:5;branch=z9hG4bK1"), ("To", f"<sip:SEP{MAC}@lab>"),
            ("Call-ID", "c@x"), ("CSeq", f"1 {method}")]


def test_registrar_answers_garbage_with_400_and_keeps_serving() -> None:
    from phoneemu.net.tls import TlsServer

    log: list[tuple[str, str]] = []
    reg = lab_registrar({MAC: (None, None)}, log)

    async def body() -> None:
        async with TlsServer(reg, None, "127.0.0.1", 0) as srv:
            r, w = await asyncio.open_connection("127.0.0.1", srv.port)
            w.write(b"\x00\xffGARBAGE\r\n\r\n")
            assert (await asyncio.wait_for(r.read(), 5)).startswith(b"SIP/2.0 400 Bad Request\r\n")
            w.close()
            r, w = await asyncio.open_connection("127.0.0.1", srv.port)
            w.write(b"A" * (sip.MAX_HEAD + sip.MAX_BODY + 10))  # no head end within the limit
            assert (await asyncio.wait_for(r.read(), 5)).startswith(b"SIP/2.0 400 Bad Request\r\n")
            w.close()
            r, w = await asyncio.open_connection("127.0.0.1", srv.port)
            w.write(sip.build_message("REGISTER sip:lab SIP/2.0", [("From", f"<sip:SEP{MAC}@lab>"),
                                                                    *_dialog("REGISTER")]))
            assert (await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)).startswith(b"SIP/2.0 200 OK")
            w.close()

    asyncio.run(body())
    assert log[:2] == [("?", "malformed"), ("?", "malformed")] and log[2] == (f"SEP{MAC}", "registered")


def _always(answer: bytes) -> SipAnswer:
    """A far end answering every request with ``answer`` (``b""``: nothing)."""
    return lambda _msg: answer


def test_the_phone_survives_a_hostile_registrar() -> None:
    """A registrar answering garbage, a 500, or nothing: one result naming why, nothing raised."""
    from phoneemu.formats import config as config_fmt
    from phoneemu.phone.events import EventLog
    from phoneemu.phone.profile import get_profile
    from phoneemu.phone.sip import register
    from phoneemu.phone.store import AcceptedConfig, TrustStore

    profile = get_profile("cp-8861")
    store = TrustStore(profile=profile)
    lines = ('<sipLines><line button="1"><authName>alice</authName><authPassword>pw</authPassword></line>'
             '</sipLines>')
    cfg = config_fmt.DeviceConfig(device_name=f"SEP{MAC}", extra={"sipLines": lines})
    store.config = AcceptedConfig(file="SEP.cnf.xml", xml=config_fmt.build(cfg), config=cfg)
    # (the 500 echoes the REGISTER's Via, Call-ID, CSeq: else it is not its answer, RFC 3261 §17.1.3)
    answers = [_always(b"\x00garbage\r\n\r\n"), lambda m: sip.response_to(m, 500, "Server Internal Error"),
               _always(b"")]

    async def body() -> list[tuple[str, str]]:
        got = []
        for answer in answers:
            async with sip_far_end(answer) as port:
                res = await register(store, profile, MAC, "127.0.0.1", sip_port=port, sips_port=1,
                                     events=EventLog(50), clock=lambda: 0, timeout=0.5)
            got.append((res.rule, res.reason))
            await asyncio.sleep(0.05)  # the far end sees the hang-up and closes
        return got

    got = asyncio.run(body())
    assert got[0][0] == "G.13-unreachable" and "start line" in got[0][1]
    assert got[1] == ("G.13-registrar-refused", "500 Server Internal Error")
    assert got[2][0] == "G.13-unreachable" and "no SIP response within 0.5s" in got[2][1]
    assert store.config is not None
    cfg2 = config_fmt.DeviceConfig(device_name=f"SEP{MAC}")
    assert config_fmt.digest_credentials(cfg2) is None


def test_itl_file_status_words_and_reports_on_disk(tmp_path: Path) -> None:
    """Spec §G.1: what the phone reported at registration against the served ITL, in CUCM's words; the
    reports ``lab serve`` writes read back, a damaged file is no reports and a problem said."""
    from phoneemu.lab.registrations import (
        REGISTRATIONS_FILE,
        itl_file_status,
        read_registrations,
        reported_itl,
        write_registrations,
    )

    current = {"md5": "a" * 32, "sha1": "b" * 40}
    assert [itl_file_status(r, current) for r in (None, "none", "a" * 32, "b" * 40, "c" * 32)] == [
        "Unknown", "Not Installed", "Match", "Match", "MisMatch"]
    assert itl_file_status("a" * 32, None) == "MisMatch"  # the cluster serves no ITL now
    assert [reported_itl(v) for v in (None, "none", "A" * 32, "x" * 32, "a" * 33, " " + "b" * 40)] == [
        None, "none", "a" * 32, None, None, "b" * 40]
    write_registrations(tmp_path, {MAC: ("a" * 32, 1_000)})
    assert read_registrations(tmp_path) == ({MAC: ("a" * 32, 1_000)}, None)
    (tmp_path / REGISTRATIONS_FILE).write_bytes(b"\xff{")
    reports, problem = read_registrations(tmp_path)
    assert reports == {} and problem is not None and "unreadable" in problem
    for hostile in (b"[" * 4000, b'{"x": ' * 3000):  # was a RecursionError out of lab show
        (tmp_path / REGISTRATIONS_FILE).write_bytes(hostile)
        reports, problem = read_registrations(tmp_path)
        assert reports == {} and problem is not None and "nested too deeply" in problem
    (tmp_path / REGISTRATIONS_FILE).unlink()
    assert read_registrations(tmp_path) == ({}, None)


def test_the_registrar_hears_the_itl_report_of_a_registered_phone() -> None:
    heard: list[tuple[str, str | None]] = []
    reg = SipRegistrar({MAC: (None, None)}.get, on_registered=lambda mac, itl: heard.append((mac, itl)))
    msg = sip.parse_message(sip.build_message("REGISTER sip:lab SIP/2.0", [
        ("From", f"<sip:SEP{MAC}@lab>"), *_dialog("REGISTER"), ("X-Phoneemu-ITL-Hash", "C" * 40)]))
    assert sip.parse_message(reg.answer(msg)).status == 200
    assert heard == [(MAC, "c" * 40)]


def test_without_a_registrar_the_phone_tries_its_configs_call_managers_in_priority_order() -> None:
    """Spec §H.5: ``register`` without a host takes the config's ``devicePool`` CallManagers by priority,
    the next one while one is unreachable (the earlier rules kept); none named: ``G.13-no-callmanager``;
    a malformed pool: ``G.13-no-config`` naming the element."""
    from phoneemu.formats import config as config_fmt
    from phoneemu.phone.events import EventLog
    from phoneemu.phone.profile import get_profile
    from phoneemu.phone.sip import register
    from phoneemu.phone.store import AcceptedConfig, TrustStore

    profile = get_profile("cp-8861")
    store = TrustStore(profile=profile)

    def install(extra: dict[str, str]) -> None:
        cfg = config_fmt.DeviceConfig(device_name=f"SEP{MAC}", extra=extra)
        store.config = AcceptedConfig(file="SEP.cnf.xml", xml=config_fmt.build(cfg), config=cfg)

    async def body() -> list[tuple[str, str, tuple[str, ...]]]:
        async with sip_far_end(lambda m: sip.response_to(m, 200, "OK")) as port:  # echoing its REGISTER
            return await register_in_turn(port)

    async def register_in_turn(port: int) -> list[tuple[str, str, tuple[str, ...]]]:
        got = []
        pools = [
            [config_fmt.CallManager(host="127.0.0.1", priority=1, sip_port=port),
             config_fmt.CallManager(host="127.0.0.1", priority=0, sip_port=1)],  # the first is down
            [config_fmt.CallManager(host="127.0.0.1", priority=0, sip_port=port)],
            [],
        ]
        for pool in pools:
            install({"devicePool": config_fmt.device_pool_xml(pool)})
            res = await register(store, profile, MAC, None, sip_port=9, sips_port=9, events=EventLog(50),
                                 clock=lambda: 0, timeout=1.0)
            got.append((res.rule, res.server, res.rules))
            assert len(res.passed_over) == (1 if len(pool) == 2 else 0)
            assert all(p.endswith(":1 G.13-unreachable") for p in res.passed_over)
        install({"devicePool": "<devicePool><callManagerGroup><members><member><callManager/></member>"
                               "</members></callManagerGroup></devicePool>"})
        res = await register(store, profile, MAC, None, sip_port=9, sips_port=9, events=EventLog(50),
                             clock=lambda: 0, timeout=1.0)
        got.append((res.rule, res.reason, res.rules))
        return got

    got = asyncio.run(body())
    assert got[0][0] == "G.13-registered" and got[0][2] == ("G.13-unreachable", "G.13-registered")
    assert got[0][1].endswith(f":{got[1][1].rsplit(':', 1)[1]}")  # the second CallManager's port
    assert got[1][0] == "G.13-registered" and got[1][2] == ("G.13-registered",)
    assert got[2] == ("G.13-no-callmanager", "", ("G.13-no-callmanager",))
    assert got[3][0] == "G.13-no-config" and "member[0].callManager" in got[3][1]


def test_a_cucm_style_line_registers_with_its_number_and_the_lab_knows_it_by_instance() -> None:
    """A config whose SIP lines are inside ``sipProfile`` (CUCM's layout, several lines; ours to read,
    spec §G.13 names no element): the first line's credentials answer the challenge and its directory
    number is the REGISTER's user; the lab registrar names the device by its ``+sip.instance`` then."""
    from phoneemu.formats import config as config_fmt
    from phoneemu.phone.events import EventLog
    from phoneemu.phone.profile import get_profile
    from phoneemu.phone.sip import register
    from phoneemu.phone.store import AcceptedConfig, TrustStore

    profile_xml = ('<sipProfile><sipProxies><registerWithProxy>true</registerWithProxy></sipProxies>'
                   '<sipLines><line button="1"><featureID>9</featureID><name>1001</name>'
                   '<authName>alice</authName><authPassword>s3cret</authPassword></line>'
                   '<line button="2"><name>1002</name></line>'
                   '</sipLines></sipProfile>')
    cfg = config_fmt.DeviceConfig(device_name=f"SEP{MAC}", extra={"sipProfile": profile_xml})
    assert config_fmt.digest_credentials(cfg) == ("alice", "s3cret")
    assert config_fmt.line_number(cfg) == "1001"
    assert config_fmt.line_number(config_fmt.DeviceConfig()) is None
    profile = get_profile("cp-8861")
    store = TrustStore(profile=profile)
    store.config = AcceptedConfig(file="SEP.cnf.xml", xml=config_fmt.build(cfg), config=cfg)
    registrar = SipRegistrar({MAC: ("alice", "s3cret")}.get)
    froms: list[str] = []

    def answer(msg: sip.SipMessage) -> bytes:
        froms.append(msg.header("from") or "")
        return registrar.answer(msg)

    async def body() -> str:
        async with sip_far_end(answer) as port:
            res = await register(store, profile, MAC, "127.0.0.1", sip_port=port, sips_port=1,
                                 events=EventLog(50), clock=lambda: 0, timeout=2.0)
        return res.rule

    assert asyncio.run(body()) == "G.13-registered"
    assert froms and all(f.startswith("<sip:1001@127.0.0.1>") for f in froms)


def test_over_tls_the_registrar_wants_a_certificate_naming_the_device() -> None:
    """Mutual authentication (seed "Device Authentication"): over TLS a REGISTER from a phone that
    presented no certificate, or one naming another device, is answered 403; over TCP none is asked."""
    import datetime as dt

    from phoneemu.crypto.certs import CertRequest, cert_der, issue_certificate
    from phoneemu.crypto.keys import KeySpec, generate_key

    key = generate_key(KeySpec.parse("ec-p256"))
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def cert(cn: str) -> bytes:
        req = CertRequest(subject=f"CN={cn};O=phoneemu", public_key=key.public_key(), serial=7,
                          not_before=now, not_after=now + dt.timedelta(days=1))
        return cert_der(issue_certificate(req, issuer_key=key))

    logged: list[tuple[str, str]] = []
    reg = SipRegistrar({MAC: (None, None)}.get, on_log=lambda _p, _d, outcome, detail: logged.append(
        (outcome, detail)))
    request = register_request(MAC)
    assert sip.parse_message(reg.answer(request, over_tls=True)).status == 403
    assert logged[-1][0] == "forbidden" and "no device certificate" in logged[-1][1]
    other = cert("CP-8861-SEP0011223344BB")
    assert sip.parse_message(reg.answer(request, over_tls=True, device_cert=other)).status == 403
    assert "names 'CP-8861-SEP0011223344BB', not SEP0011223344AA" in logged[-1][1]
    junk = b"\x30\x03junk"
    assert sip.parse_message(reg.answer(request, over_tls=True, device_cert=junk)).status == 403
    assert "unreadable" in logged[-1][1]
    for cn in (f"CP-8861-SEP{MAC}", f"SEP{MAC}"):  # a MIC's name, an LSC's
        assert sip.parse_message(reg.answer(request, over_tls=True, device_cert=cert(cn))).status == 200
    assert sip.parse_message(reg.answer(request)).status == 200  # over TCP no certificate is asked


def test_an_algorithm_is_compared_in_ascii_only() -> None:
    """RFC 2617 §3.2.1 tokens are ASCII: ``md5-se`` + two U+017F (long s, which ``str.upper`` makes ``S``)
    is no algorithm the phone knows, so the challenge is not answered (was taken for MD5-sess)."""
    long_s = "md5-se\u017f\u017f"
    assert sip.pick_challenge([{"realm": "r", "nonce": "n", "algorithm": long_s, "qop": "auth"}]) is None
    sess = {"realm": "r", "nonce": "n", "algorithm": "md5-sess", "qop": "auth"}
    assert sip.pick_challenge([sess]) is sess
    plain = sip.digest_response(username="u", realm="r", password="p", method="REGISTER", uri="sip:x",
                                nonce="n", algorithm="MD5")
    assert sip.digest_response(username="u", realm="r", password="p", method="REGISTER", uri="sip:x",
                               nonce="n", algorithm=long_s) == plain
