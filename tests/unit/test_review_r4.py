"""Review R4 of three commits (e324b06 phone per-boot Python round 2, e3d4971 inspect's signer, 78fd7b5 the
TFTP server's clock): the edge cases a hostile reviewer tries, each checked against the product for real.

* the TFTP server's clock: a loop ``time`` that wears asyncio's names (``functools.wraps``: a spy, a fake
  clock) is read as it is, not taken for asyncio's own and replaced by ``time.monotonic``; uvloop's, an
  inherited asyncio ``time`` and a ``functools.partialmethod`` are told apart as before;
* ``hash_alg``: an unhashable code equal to a member's value maps as the enum maps it (same members);
* ``inspect`` of a CTL/ITL whose signer is named (issuer + serial) only by a record of another role, its
  SAST record with that serial having another issuer: ``wrong-role``, as the phone's rules say it, naming
  that record (was ``unknown-signer``, "no SAST record names it" alone); and whose serial is only in a
  record of another role naming another issuer: ``unknown-signer``, as a phone says it (was ``wrong-role``);
* the role-not-checked wording of ``--cert TRUST-LIST``: said for a record's certificate only, whichever
  of several ``--cert`` comes first (text and JSON);
* a shard's boot turns under a storm of cancellations and pauses: every turn free at the end, never more
  holders than turns, nobody served while one who asked earlier still waits.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import random
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.crypto import certs
from phoneemu.crypto.hashes import HashAlg, hash_alg
from phoneemu.fleet import engine
from phoneemu.formats.trustlist import Role
from phoneemu.inspection import inspect_bytes
from phoneemu.net.tftp_server import TftpServer, loop_clock
from phoneemu.phone import rules
from tests.unit.test_inspect_signer import OTHER_ISSUER, _itl, _serial_only, _signer
from tests.unit.test_rules import CFG, NOW, P8861, ident, install, itl_a, new_store, sgn, tl

_ASYNCIO_TIME = asyncio.BaseEventLoop.time
_OFFSET = 1_000_000.0  # the fake clocks' lead on time.monotonic: never mistaken for it


# --------------------------------------------------------------------------- the TFTP server's clock
class _WrappedClockLoop(asyncio.SelectorEventLoop):
    """A loop whose ``time`` is a fake clock wearing asyncio's names, as ``functools.wraps`` gives them (a
    spy counting reads, a clock run ahead)."""

    reads = 0

    @functools.wraps(_ASYNCIO_TIME)
    def time(self) -> float:
        type(self).reads += 1
        return time.monotonic() + _OFFSET


def test_review_r4_a_wrapped_fake_clock_is_read_by_the_tftp_server() -> None:
    """The server's deadlines are read on the clock its timers run by (was: the wrapper's ``__qualname__``
    and ``__module__`` taken for asyncio's own, the server reading time.monotonic)."""
    loop = _WrappedClockLoop()
    try:
        assert loop_clock(loop)() >= _OFFSET

        async def served_now() -> float:
            async with TftpServer({"f.bin": b"x"}, host="127.0.0.1", port=0) as srv:
                return srv.now()

        assert loop.run_until_complete(served_now()) >= _OFFSET
    finally:
        loop.close()


def test_review_r4_loop_clocks_told_apart() -> None:
    """asyncio's own ``time`` inherited by a subclass: time.monotonic straight; one defined otherwise (a
    ``functools.partialmethod``, uvloop's): the loop's."""
    class Inherits(asyncio.SelectorEventLoop):
        pass

    class Partial(asyncio.SelectorEventLoop):
        time = functools.partialmethod(lambda self, lead: time.monotonic() + lead, _OFFSET)  # type: ignore[assignment]

    for cls, own in ((Inherits, True), (Partial, False)):
        loop = cls()
        try:
            clock = loop_clock(loop)
            assert (clock is time.monotonic) is own, cls
            assert (clock() >= _OFFSET) is not own, cls
        finally:
            loop.close()
    uvloop = pytest.importorskip("uvloop")
    uv = uvloop.new_event_loop()
    try:
        assert loop_clock(uv) == uv.time
    finally:
        uv.close()


# --------------------------------------------------------------------------- hash codes
class _EqualToTwo:
    """Unhashable, equal to 2 (as a 0-d array is to its value)."""

    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        return other == 2


def test_review_r4_an_unhashable_code_equal_to_a_value_maps_as_the_enum_does() -> None:
    code: Any = _EqualToTwo()
    assert HashAlg(code) is HashAlg.SHA256
    assert hash_alg(code) is HashAlg.SHA256  # was: "unsupported hash algorithm code"


# --------------------------------------------------------------------------- inspect: another role
def test_review_r4_signer_named_only_in_another_role_is_wrong_role_as_a_phone_says(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The signer's certificate as a CCM+TFTP record (its issuer and serial), its SAST record with another
    issuer: a phone refuses the list as an update and, holding it, the next one, both wrong-role."""
    in_other_role = _signer().record(Role.CCM_TFTP)
    data = _itl(_serial_only(), extra=(in_other_role,))
    trusting = new_store()
    install(trusting, "ITL", itl_a())
    update = rules.decide_trust_list(trusting, data, kind="ITL", profile=P8861, now=NOW)
    holding = new_store()
    install(holding, "ITL", data)
    later = rules.decide_trust_list(holding, _itl(_serial_only(), ts=NOW + 60, extra=(in_other_role,)),
                                    kind="ITL", profile=P8861, now=NOW)
    assert (update.rule, update.reason_code, later.rule, later.reason_code) == (
        "G.3.1-no-signer-record", rules.VerifyReason.WRONG_ROLE,
        "G.3.5-reject-unknown-signer", rules.VerifyReason.WRONG_ROLE)
    check = inspect_bytes(data, name="ITLFile.tlv")["checks"][0]
    assert check["ok"] is False and check["reason"] == "wrong-role", check  # was: unknown-signer
    detail = str(check["detail"])
    assert "found by its serial only" in detail
    assert "only a record of another role (#1 CCM+TFTP)" in detail
    assert "(G.3.1-no-signer-record, wrong-role)" in detail
    assert "(G.3.5-reject-unknown-signer, wrong-role, unless TVS vouches" in detail
    p = tmp_path / "ITLFile.tlv"
    p.write_bytes(data)
    assert main(["inspect", str(p)]) == 1
    assert "signature check failed (wrong-role): " in capsys.readouterr().err


def test_review_r4_signer_serial_in_another_role_with_another_issuer_is_unknown_signer() -> None:
    """The signer's serial only in a CCM+TFTP record naming another issuer: that record does not name the
    signer, so a phone says unknown-signer, both ways (was: inspect said wrong-role, the serial's role)."""
    in_other_role = replace(_signer().record(Role.CCM_TFTP), issuer=OTHER_ISSUER)

    def itl(ts: int) -> bytes:
        return tl("ITL", _signer(), [in_other_role, ident("cm-a").record(Role.SAST)], ts=ts)

    trusting = new_store()
    install(trusting, "ITL", itl_a())
    update = rules.decide_trust_list(trusting, itl(NOW), kind="ITL", profile=P8861, now=NOW)
    holding = new_store()
    install(holding, "ITL", itl(NOW))
    later = rules.decide_trust_list(holding, itl(NOW + 60), kind="ITL", profile=P8861, now=NOW)
    assert (update.rule, update.reason_code, later.rule, later.reason_code) == (
        "G.3.1-no-signer-record", rules.VerifyReason.UNKNOWN_SIGNER,
        "G.3.5-reject-unknown-signer", rules.VerifyReason.UNKNOWN_SIGNER)
    check = inspect_bytes(itl(NOW), name="ITLFile.tlv")["checks"][0]
    assert check["ok"] is False and check["reason"] == "unknown-signer", check  # was: wrong-role
    detail = str(check["detail"])
    assert "is in CCM+TFTP record(s), not a SAST record, with another issuer than the header's" in detail
    assert update.rule in detail and later.rule in detail


def test_review_r4_signer_in_another_role_with_its_issuer_stays_wrong_role() -> None:
    """The signer (its issuer and serial) only in a CCM+TFTP record: wrong-role, as before and as a phone."""
    data = tl("ITL", _signer(), [_signer().record(Role.CCM_TFTP), ident("cm-a").record(Role.SAST)])
    check = inspect_bytes(data, name="ITLFile.tlv")["checks"][0]
    assert check["reason"] == "wrong-role" and "another issuer" not in str(check["detail"]), check


def test_review_r4_no_record_naming_the_signer_stays_unknown_signer() -> None:
    """Without a record of another role naming it, the serial-only case is unknown-signer as before."""
    check = inspect_bytes(_itl(_serial_only()), name="ITLFile.tlv")["checks"][0]
    assert check["reason"] == "unknown-signer" and "another role" not in str(check["detail"])


# --------------------------------------------------------------------------- --cert TRUST-LIST: its wording
def test_review_r4_role_wording_follows_the_certificate_that_verified(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The TVS certificate given twice, as a PEM and inside an ITL: whichever ``--cert`` comes first
    verifies, and only the ITL's record is said to be checked whatever its role (text and JSON)."""
    itl = tmp_path / "ITLFile.tlv"
    itl.write_bytes(itl_a())
    pem = tmp_path / "tvs.pem"
    pem.write_bytes(certs.cert_pem(ident("tvs-a").cert))
    f = tmp_path / f"{CFG}.sgn"
    f.write_bytes(sgn(ident("tvs-a")))
    said = {}
    for first, second in ((itl, pem), (pem, itl)):
        assert main(["inspect", "--json", str(f), "--cert", str(first), "--cert", str(second)]) == 0
        said[first.name] = json.loads(capsys.readouterr().out)["checks"][0]["detail"]
    assert said["ITLFile.tlv"].endswith(f"({itl} #3 TVS); the signature only, whatever that record's role: "
                                        "whether a phone accepts this signer for this file is predict's "
                                        "question"), said
    assert said["tvs.pem"].endswith(f"({pem})"), said


# --------------------------------------------------------------------------- a shard's boot turns
def _turn_storm(seed: int, *, n: int = 4, users: int = 600) -> tuple[engine._Turns, list[str]]:
    """``users`` boots take a turn each (as run_shard does), some pausing (giving it back and taking one
    again, as before a CAPF retry), while random ones are cancelled at random points and the shard is
    stopped at a random moment; the turns and the rule breaks seen."""
    rng = random.Random(seed)
    broken: list[str] = []
    tickets = itertools.count()
    made: dict[asyncio.Future[Any], tuple[int, asyncio.Task[Any] | None]] = {}
    holders = 0

    class Loop(asyncio.SelectorEventLoop):
        def create_future(self) -> asyncio.Future[Any]:
            fut = super().create_future()
            made[fut] = (next(tickets), asyncio.current_task(self))
            return fut

    async def take(turns: engine._Turns) -> None:
        """A turn, checking nobody who asked before still waits once it is ours."""
        nonlocal holders
        mark = next(tickets)
        me = asyncio.current_task()
        await turns.take()
        mine = max((t for t, task in made.values() if task is me and t > mark), default=mark)
        earlier = [made[f][0] for f in turns.waiting if not f.done() and made[f][0] < mine]
        if earlier:
            broken.append(f"served while {len(earlier)} who asked earlier still waited")
        holders += 1
        if holders > n:
            broken.append(f"{holders} holders of {n} turns")

    async def boot(turns: engine._Turns) -> None:
        nonlocal holders
        held = False
        try:
            await take(turns)
            held = True
            for _ in range(rng.randrange(4)):
                if rng.random() < 0.3:
                    holders -= 1
                    held = False
                    await turns.pause(rng.choice([0.0, 0.001]))
                    holders += 1  # (pause took a turn back: checked as take() does)
                    if holders > n:
                        broken.append(f"{holders} holders of {n} turns after a pause")
                    held = True
                else:
                    await asyncio.sleep(0)
        finally:
            if held:
                holders -= 1
                turns.give()

    async def run() -> engine._Turns:
        turns = engine._Turns(n)
        tasks: list[asyncio.Task[None]] = []
        stop_at = rng.randrange(users * 2)
        for i in range(users):
            tasks.append(asyncio.create_task(boot(turns)))
            if rng.random() < 0.3:
                await asyncio.sleep(0)
            if rng.random() < 0.4:
                rng.choice(tasks).cancel()
            if i == stop_at:
                turns.stop()
        for _ in range(200):
            if rng.random() < 0.5:
                rng.choice(tasks).cancel()
            await asyncio.sleep(0)
        turns.stop()  # the pauses left end now
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
        return turns

    loop = Loop()
    try:
        turns = loop.run_until_complete(run())
    finally:
        loop.close()
    return turns, broken


def test_review_r4_turns_hold_their_order_and_count_under_a_cancellation_storm() -> None:
    """600 boots of 4 turns, pausing and cancelled at random points, 10 storms: every turn free and nobody
    waiting at the end, nobody pausing, never more holders than turns, nobody served while one who asked
    earlier still waited (asyncio.Semaphore's rule, which the turns keep: issue #6)."""
    for seed in range(10):
        turns, broken = _turn_storm(seed)
        assert broken == [], (seed, broken[:3])
        left = [f for f in turns.waiting if not f.done()]
        assert (turns.free, left, turns.pausing) == (4, [], 0), seed
