"""A slow phone's CAPF key generation, sans I/O and in its profile (spec §F.6 REQUEST_IN_PROGRESS, §F.8).

Ours: a slow phone sends REQUEST_IN_PROGRESS at once; the server accepts at most ``max_in_progress`` of
them in a session (one more is a ProtocolError, a flood); a server whose bound ran out during the key
generation ends the session with END_SESSION REASON 7 (``end_on_timeout``); the profile's
``capf_keygen_seconds`` / ``capf_in_progress_seconds`` are bounded."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.crypto.keys import KeySpec, PrivateKey, generate_key
from phoneemu.errors import EncodeError, ProtocolError, ScenarioError
from phoneemu.phone.profile import get_profile, profile_from_dict
from phoneemu.protocols import capf
from phoneemu.protocols.capf import AuthType, CapfClientSession, CapfCommand, CapfServerSession, CapfTag

DEVICE = "SEP001122334455"
SID = 0x0A0B0C0D
C = CapfCommand


def _ec_key(_kind: str, _bits: int, _curve: str | None) -> PrivateKey:
    return generate_key(KeySpec(kind="ec", curve="p256"))


def _in_keygen(max_in_progress: int = capf.MAX_IN_PROGRESS) -> CapfServerSession:
    """A server session (install by null string) that has sent KEY_GENERATE_REQUEST."""
    server = CapfServerSession(session_id=SID, operation="install", auth_mode=AuthType.NULL_STRING,
                               key_type="ec", issue_lsc=lambda _d, _s: b"", max_in_progress=max_in_progress)
    phone = CapfClientSession(device_name=DEVICE)
    [request] = server.receive(phone.receive(server.start())[0])
    assert request[1] == C.KEY_GENERATE_REQUEST and server.state == "wait-keygen"
    return server


def _in_progress() -> bytes:
    return capf.encode(capf.message(C.REQUEST_IN_PROGRESS, SID))


@settings(max_examples=25, deadline=None)
@given(limit=st.integers(min_value=0, max_value=20), first_read=st.integers(min_value=0, max_value=20))
def test_the_server_takes_in_progress_up_to_its_bound_and_cuts_one_more(limit: int, first_read: int) -> None:
    """``limit`` REQUEST_IN_PROGRESS, in one read or two, are taken silently and counted; the next one is a
    ProtocolError naming the flood. Before: any number was taken (a client could flood a session)."""
    server = _in_keygen(limit)
    first = min(first_read, limit)
    assert server.receive(_in_progress() * first) == []
    assert server.receive(_in_progress() * (limit - first)) == []
    assert server.in_progress_received == limit and server.state == "wait-keygen"
    with pytest.raises(ProtocolError, match=f"more than {limit} REQUEST_IN_PROGRESS in one session"):
        server.receive(_in_progress())


def test_the_default_bound_is_256() -> None:
    server = _in_keygen()
    assert server.receive(_in_progress() * 256) == []
    with pytest.raises(ProtocolError, match="more than 256 REQUEST_IN_PROGRESS"):
        server.receive(_in_progress())


def test_a_negative_bound_is_refused() -> None:
    with pytest.raises(EncodeError, match="max_in_progress"):
        CapfServerSession(session_id=SID, max_in_progress=-1)


def test_end_on_timeout_ends_a_key_generation_with_reason_7_and_nothing_else() -> None:
    server = _in_keygen()
    frame = server.end_on_timeout("timeout: key generation longer than 120s")
    assert frame is not None
    end = capf.decode(frame)
    assert end.command == C.END_SESSION and end.u8(CapfTag.REASON) == capf.Reason.FAILURE
    assert server.result is not None and server.result.outcome == "keygen-timeout"
    assert "longer than 120s" in server.result.detail
    assert server.end_on_timeout("again") is None  # ended: nothing more to say
    idle = CapfServerSession(session_id=SID)
    assert idle.end_on_timeout("timeout") is None  # not generating a key: nothing sent


@pytest.mark.parametrize(("keygen", "every", "first"), [
    (0.0, 10.0, [C.KEY_GENERATE_RESPONSE]),  # a fast phone, as before
    (5.0, 10.0, [C.REQUEST_IN_PROGRESS, C.KEY_GENERATE_RESPONSE]),  # slow: says so at once
    (5.0, 0.0, [C.KEY_GENERATE_RESPONSE]),  # a silent slow phone
])
def test_a_slow_phone_answers_the_key_request_with_in_progress_first(keygen: float, every: float,
                                                                      first: list[int]) -> None:
    server = CapfServerSession(session_id=SID, operation="install", auth_mode=AuthType.NULL_STRING,
                               key_type="ec", issue_lsc=lambda _d, _s: b"")
    phone = CapfClientSession(device_name=DEVICE, generate_key=_ec_key, keygen_seconds=keygen,
                              in_progress_every=every)
    [request] = server.receive(phone.receive(server.start())[0])
    assert [f[1] for f in phone.receive(request)] == first
    assert phone.key_generated


def test_a_refused_key_request_is_no_generated_key() -> None:
    """A slow phone that cannot make the key asked for (RSA 4096 over its 2048) answers at once: no key
    was made, so the I/O shell does not wait (``key_generated`` false)."""
    server = CapfServerSession(session_id=SID, operation="install", auth_mode=AuthType.NULL_STRING,
                               key_type="rsa", key_size=4096, issue_lsc=lambda _d, _s: b"")
    phone = CapfClientSession(device_name=DEVICE, keygen_seconds=5.0, max_rsa_bits=2048)
    [request] = server.receive(phone.receive(server.start())[0])
    frames = phone.receive(request)
    assert frames[-1][1] == C.KEY_GENERATE_RESPONSE and not phone.key_generated


@pytest.mark.parametrize("bad", [{"keygen_seconds": -1.0}, {"keygen_seconds": float("inf")},
                                 {"in_progress_every": float("nan")}])
def test_the_client_refuses_impossible_times(bad: dict[str, float]) -> None:
    with pytest.raises(EncodeError, match=next(iter(bad))):
        CapfClientSession(device_name=DEVICE, **bad)  # type: ignore[arg-type]


def test_the_profile_fields_default_to_a_fast_phone_at_a_ten_second_cadence() -> None:
    prof = get_profile("cp-8861")
    assert prof.capf_keygen_seconds == 0 and prof.capf_in_progress_seconds == 10
    slow = profile_from_dict("cp-7962", {"capf_keygen_seconds": 1800, "capf_in_progress_seconds": 0})
    assert slow.capf_keygen_seconds == 1800.0 and isinstance(slow.capf_keygen_seconds, float)
    assert slow.capf_in_progress_seconds == 0


@pytest.mark.parametrize(("overrides", "says"), [
    ({"capf_keygen_seconds": -1}, "0..7200"),
    ({"capf_keygen_seconds": 7201}, "0..7200"),
    ({"capf_keygen_seconds": float("nan")}, "0..7200"),
    ({"capf_keygen_seconds": "30"}, "must be float"),
    ({"capf_keygen_seconds": True}, "must be float"),
    ({"capf_in_progress_seconds": 0.2}, "0 \\(none\\) or 0\\.25..3600"),
    ({"capf_in_progress_seconds": 3601}, "0 \\(none\\) or 0\\.25..3600"),
])
def test_the_profile_refuses_bad_times(overrides: dict[str, object], says: str) -> None:
    with pytest.raises(ScenarioError, match=says) as info:
        profile_from_dict("cp-8861", overrides)
    assert info.value.path == next(iter(overrides))
