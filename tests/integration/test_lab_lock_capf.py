"""``lab serve``'s CAPF (and HTTPS) writes to the lab hold the lab lock, as an operation's do.

A CAPF enrolment over loopback records its outcome under the lab lock held exclusively, on the state as
saved: a ``phoneemu lab`` operation saved between serve's read and serve's write keeps its change, an
operation holding the lock is waited for (bounded), and past the bound the phone is told the operation
failed (END_SESSION REASON 7) with nothing written. ``LabCluster.open`` on the same folder stands for the
operation's process; ``_hold`` holds the lock as that process would (another open file: flock conflicts).
"""
from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from phoneemu.crypto import certs
from phoneemu.lab import lock
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.net.capf_client import CapfOutcome, capf_session
from phoneemu.protocols import capf
from tests.helpers import lab_template, run

HOST = "127.0.0.1"
MAC = "001122334455"
GROUP_MACS = [f"0011223344{i:02X}" for i in range(0x60, 0x68)]
template = lab_template("lablockcapf", seed=13,
                        phones={m: {"lsc_key": "ec-p256"} for m in [MAC, *GROUP_MACS]})


@pytest.fixture(autouse=True)
def _prompt_lock_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that finds the lab lock held logs that it waits after LOCK_WAIT_S (1 s) of retrying; the
    tests wait for that line before they go on. 0.1 s here: logged or not, the write has met the held
    lock and been refused (the line is logged from the retry loop only), and the tests check it waits on."""
    monkeypatch.setattr(lock, "LOCK_WAIT_S", 0.1)


def _hold(root: Path) -> int:
    """Hold the lab lock as a ``phoneemu lab`` operation writing the lab would (exclusive)."""
    fd = os.open(root / ".lab.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _phone(mac: str = MAC) -> capf.CapfClientSession:
    return capf.CapfClientSession(device_name=f"SEP{mac}", auth_mode=capf.AuthType.NULL_STRING)


async def _enrol(servers: LabServers, mac: str = MAC) -> CapfOutcome:
    return await capf_session((HOST, servers.ports["capf"]), _phone(mac), timeout=20)


async def _queued(servers: LabServers, count: int) -> bool:
    """Wait (bounded: 20 s) until ``count`` CAPF records queue for the next group commit."""
    for _ in range(400):
        if len(servers.capf_handler._group) == count:
            return True
        await asyncio.sleep(0.05)
    return False


async def _logged(caplog: Any, text: str, limit: float = 5.0) -> bool:
    """Wait (bounded) until a log record contains ``text``."""
    for _ in range(round(limit / 0.05)):
        if any(text in r.getMessage() for r in caplog.records):
            return True
        await asyncio.sleep(0.05)
    return False


def _lsc_on_disk(cluster: LabCluster) -> bytes | None:
    path = cluster.phone_dir(MAC) / "lsc.pem"
    return path.read_bytes() if path.exists() else None


def test_a_capf_enrolment_keeps_a_change_an_operation_saved_after_serve_read_the_lab(
        cluster: LabCluster) -> None:
    """serve read the lab (no watch: it never re-reads on its own), an operation saved a change, then a
    phone enrols: both the operation's change and the LSC are in the saved state. Before, serve saved its
    stale copy with the LSC in it and the operation's change was lost."""
    cluster.set_capf([MAC], "install", auth_mode=capf.AuthType.NULL_STRING)

    async def main() -> CapfOutcome:
        async with LabServers(cluster, host=HOST) as servers:
            LabCluster.open(cluster.root).set_tvs_ttl(1234)  # the operation, after serve's read
            return await _enrol(servers)

    out = run(main())
    assert out.outcome == "installed" and out.result.certificate is not None
    saved = LabCluster.open(cluster.root)
    assert saved.state.tvs_ttl == 1234, "the operation's change was lost"
    assert saved.state.phones[MAC].has_lsc and saved.state.phones[MAC].capf_operation is None
    recorded = saved.phone_lsc(MAC)
    assert recorded is not None and certs.cert_der(recorded) == out.result.certificate
    assert [e.op for e in saved.state.log[-2:]] == ["tvs-ttl", "capf-lsc"]
    assert cluster.state.tvs_ttl == 1234  # serve's copy is the saved state now


def test_a_capf_enrolment_keeps_another_pending_operation_set_meanwhile(cluster: LabCluster) -> None:
    """An administrator schedules a delete for the phone while its install runs: the install is recorded
    (the phone has the LSC) and the delete stays pending. Before, the install cleared it (stale copy)."""
    cluster.set_capf([MAC], "install", auth_mode=capf.AuthType.NULL_STRING)

    async def main() -> CapfOutcome:
        async with LabServers(cluster, host=HOST) as servers:
            LabCluster.open(cluster.root).set_capf([MAC], "delete", auth_mode=capf.AuthType.NULL_STRING)
            return await _enrol(servers)

    out = run(main())
    assert out.outcome == "installed"
    saved = LabCluster.open(cluster.root)
    assert saved.state.phones[MAC].has_lsc and saved.phone_lsc(MAC) is not None
    assert saved.state.phones[MAC].capf_operation == "delete", "the administrator's delete was lost"
    pending = saved.capf_pending(MAC)
    assert pending is not None and pending.operation == "delete"


def test_a_capf_enrolment_waits_for_an_operation_holding_the_lab_lock(cluster: LabCluster,
                                                                      caplog: Any) -> None:
    """An operation read the lab and holds the lock; a phone's enrolment ends meanwhile: serve writes
    nothing and the phone is not answered until the lock is free, then the LSC goes into what the
    operation saved — neither change lost. Before, serve wrote under the operation's lock and the
    operation's save (from its earlier read) then dropped the LSC record."""
    caplog.set_level(logging.WARNING, logger="phoneemu.lab.lock")
    cluster.set_capf([MAC], "install", auth_mode=capf.AuthType.NULL_STRING)

    async def main() -> tuple[bool, bool, bytes, bytes | None, CapfOutcome]:
        async with LabServers(cluster, host=HOST) as servers:
            before = (cluster.root / "cluster.json").read_bytes()
            fd = _hold(cluster.root)
            try:
                operation = LabCluster.open(cluster.root)  # reads the lab under its lock
                enrol = asyncio.ensure_future(_enrol(servers))
                waits = await _logged(caplog, f"waiting for it to record the CAPF installed of SEP{MAC}")
                answered = enrol.done()
                on_disk = (cluster.root / "cluster.json").read_bytes()
                lsc = _lsc_on_disk(cluster)
                operation.set_tvs_ttl(4321)  # the operation's write, from its read
            finally:
                os.close(fd)
            out = await asyncio.wait_for(enrol, 20)
            return waits, answered, on_disk if on_disk != before else b"", lsc, out

    waits, answered, changed, lsc, out = run(main())
    assert not changed and lsc is None, "lab serve wrote the lab while an operation held the lock"
    assert waits and not answered
    assert out.outcome == "installed"
    saved = LabCluster.open(cluster.root)
    assert saved.state.tvs_ttl == 4321, "the operation's change was lost"
    assert saved.state.phones[MAC].has_lsc, "the CAPF enrolment's record was lost"
    assert saved.state.phones[MAC].capf_operation is None
    recorded = saved.phone_lsc(MAC)
    assert recorded is not None and certs.cert_der(recorded) == out.result.certificate


def test_a_capf_enrolment_held_up_too_long_is_refused_and_nothing_is_written(cluster: LabCluster) -> None:
    """The lock held longer than ``capf_lock_wait``: the phone gets END_SESSION REASON 7 (no LSC stored),
    the lab is untouched (state file, ``lsc.pem``), the operation stays pending, the request log says
    why; once the lock is free the phone's next session installs the LSC."""
    cluster.set_capf([MAC], "install", auth_mode=capf.AuthType.NULL_STRING)

    async def main() -> tuple[bytes, CapfOutcome, CapfOutcome, list[tuple[str, str]]]:
        async with LabServers(cluster, host=HOST, capf_lock_wait=0.3) as servers:
            before = (cluster.root / "cluster.json").read_bytes()
            fd = _hold(cluster.root)
            try:
                refused = await _enrol(servers)
                after = (cluster.root / "cluster.json").read_bytes()
            finally:
                os.close(fd)
            again = await _enrol(servers)
            log = [(r.outcome, r.detail) for r in servers.requests if r.service == "capf"]
            return (after if after != before else b""), refused, again, log

    changed, refused, again, log = run(main())
    assert refused.outcome == "rejected" and refused.result.reason == capf.Reason.FAILURE
    assert refused.result.certificate is None and refused.result.key is None  # the phone stored nothing
    assert not changed, "the state was written although the lock was never free"
    assert log[0][0] == "error" and "installed not recorded: lab busy" in log[0][1]
    assert ".lab.lock is held" in log[0][1] and "stays pending" in log[0][1]
    assert again.outcome == "installed" and log[1][0] == "installed"
    saved = LabCluster.open(cluster.root)
    recorded = saved.phone_lsc(MAC)
    assert recorded is not None and certs.cert_der(recorded) == again.result.certificate
    assert saved.state.phones[MAC].capf_operation is None


def test_a_refused_record_leaves_the_lab_as_it_was(cluster: LabCluster) -> None:
    """Same bound (set on the CAPF handler), the refused session alone: ``lsc.pem`` not written, the
    pending install kept. Before, the phone was told "installed" and serve wrote under the lock."""
    cluster.set_capf([MAC], "install", auth_mode=capf.AuthType.NULL_STRING)

    async def main() -> CapfOutcome:
        async with LabServers(cluster, host=HOST) as servers:
            servers.capf_handler.lock_wait = 0.2
            fd = _hold(cluster.root)
            try:
                return await _enrol(servers)
            finally:
                os.close(fd)

    out = run(main())
    assert out.outcome == "rejected"
    saved = LabCluster.open(cluster.root)
    assert _lsc_on_disk(saved) is None and not saved.state.phones[MAC].has_lsc
    pending = saved.capf_pending(MAC)
    assert pending is not None and pending.operation == "install"


def test_the_https_identity_made_on_first_use_waits_for_the_lab_lock(cluster: LabCluster,
                                                                     caplog: Any) -> None:
    """Starting ``https`` makes the ``tomcat`` identity and adds it to what TVS vouches for: a write of
    the lab. While an operation holds the lock it waits, then goes into what the operation saved."""
    caplog.set_level(logging.WARNING, logger="phoneemu.lab.lock")

    async def main() -> tuple[bool, bool, bytes]:
        async with LabServers(cluster, host=HOST) as servers:
            before = (cluster.root / "cluster.json").read_bytes()
            fd = _hold(cluster.root)
            try:
                start = asyncio.ensure_future(servers.start_service("https"))
                waits = await _logged(caplog, "waiting for it to record this server's change")
                started = start.done()
                on_disk = (cluster.root / "cluster.json").read_bytes()
                LabCluster.open(cluster.root).set_tvs_ttl(55)  # the operation's write
            finally:
                os.close(fd)
            await asyncio.wait_for(start, 20)
            assert servers.running("https")
            return waits, started, on_disk if on_disk != before else b""

    waits, started, changed = run(main())
    assert not changed, "lab serve wrote the lab while an operation held the lock"
    assert waits and not started
    saved = LabCluster.open(cluster.root).state
    assert saved.tvs_ttl == 55 and any(t.source == "tomcat" for t in saved.tvs_trust)


def test_a_capf_regenerated_during_an_enrolment_is_refused_and_the_retry_uses_the_new_capf(
        cluster: LabCluster, caplog: Any) -> None:
    """``lab regenerate DIR capf`` (another process) lands after serve issued the LSC from the old CAPF
    key and before it recorded it: the record finds the LSC no longer verifies with the current CAPF
    identity, writes nothing and the phone gets END_SESSION REASON 7 (it keeps no LSC); the install stays
    pending and the phone's next session gets an LSC issued by the new CAPF. Before, the lab recorded
    (and the phone kept) an LSC from a CAPF identity the lab no longer has."""
    caplog.set_level(logging.WARNING, logger="phoneemu.lab.lock")
    cluster.set_capf([MAC], "install", auth_mode=capf.AuthType.NULL_STRING)
    old_capf = cluster.identity("capf").cert

    async def main() -> tuple[CapfOutcome, CapfOutcome, list[tuple[str, str]]]:
        async with LabServers(cluster, host=HOST) as servers:
            fd = _hold(cluster.root)
            try:
                enrol = asyncio.ensure_future(_enrol(servers))
                assert await _logged(caplog, f"waiting for it to record the CAPF installed of SEP{MAC}")
                LabCluster.open(cluster.root).regenerate("capf")  # the operation, holding the lock
            finally:
                os.close(fd)
            refused = await asyncio.wait_for(enrol, 20)
            again = await _enrol(servers)
            log = [(r.outcome, r.detail) for r in servers.requests if r.service == "capf"]
            return refused, again, log

    refused, again, log = run(main())
    assert refused.outcome == "rejected" and refused.result.reason == capf.Reason.FAILURE
    assert refused.result.certificate is None  # the phone stored nothing
    assert log[0][0] == "error" and "CAPF identity was regenerated during the session" in log[0][1]
    assert again.outcome == "installed" and again.result.certificate is not None
    saved = LabCluster.open(cluster.root)
    new_capf = saved.identity("capf").cert
    assert new_capf != old_capf
    recorded = saved.phone_lsc(MAC)
    assert recorded is not None and certs.cert_der(recorded) == again.result.certificate
    saved.verify_device_cert(recorded, capf.CertType.LSC)  # issued by the CAPF the lab has now
    assert saved.state.phones[MAC].capf_operation is None


def test_a_record_whose_save_fails_is_undone_in_memory_and_the_retry_enrols(cluster: LabCluster,
                                                                             monkeypatch: Any,
                                                                             caplog: Any) -> None:
    """The state save fails (a full disk): the phone is told the operation failed (REASON 7), and the
    running lab serves the state as saved — no LSC recorded, the install still pending —, not a state
    ahead of its disk. Before, the OSError escaped the session (no END_SESSION) and serve's memory said
    the LSC was recorded while ``cluster.json`` did not."""
    import errno

    from phoneemu.lab import cluster as cluster_module

    cluster.set_capf([MAC], "install", auth_mode=capf.AuthType.NULL_STRING)
    real_save = cluster_module.save_state  # type: ignore[attr-defined]

    def full_disk(*_: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    async def main() -> tuple[CapfOutcome, CapfOutcome]:
        async with LabServers(cluster, host=HOST) as servers:
            monkeypatch.setattr(cluster_module, "save_state", full_disk)
            first = await _enrol(servers)
            assert not cluster.state.phones[MAC].has_lsc and cluster.phone_lsc(MAC) is None
            pending = cluster.capf_pending(MAC)
            assert pending is not None and pending.operation == "install"
            monkeypatch.setattr(cluster_module, "save_state", real_save)
            return first, await _enrol(servers)

    first, retry = run(main())
    assert first.outcome == "rejected"
    assert "cannot save the lab: [Errno 28] No space left on device" in caplog.text
    assert retry.outcome == "installed"
    saved = LabCluster.open(cluster.root)
    assert saved.state.phones[MAC].has_lsc and _lsc_on_disk(saved) is not None


def test_enrolments_that_finish_together_are_recorded_with_one_save(cluster: LabCluster, caplog: Any,
                                                                   monkeypatch: Any) -> None:
    """While an operation holds the lab lock, a pilot enrolment's record waits for it and seven more
    finish: their records queue as one group, made with one save of the state (was one save of the
    whole state per enrolment: O(N^2) in a storm). Every phone is told it succeeded only once its LSC
    is in the saved state, and each LSC is the one it was sent."""
    caplog.set_level(logging.WARNING, logger="phoneemu.lab.lock")
    pilot, *rest = GROUP_MACS
    cluster.set_capf(GROUP_MACS, "install", auth_mode=capf.AuthType.NULL_STRING)
    saves: list[int] = []
    import phoneemu.lab.cluster as cluster_mod
    real_save = cluster_mod.save_state

    def counting_save(root: Path, state: Any) -> None:
        saves.append(len(saves))
        real_save(root, state)

    async def main() -> tuple[list[CapfOutcome], bool, bool, int]:
        async with LabServers(cluster, host=HOST) as servers:
            handler = servers.capf_handler
            saves.clear()  # serve's own write of its ports at start
            fd = _hold(cluster.root)
            try:
                enrols = [asyncio.ensure_future(_enrol(servers, pilot))]
                waiting = await _logged(caplog, f"CAPF installed of SEP{pilot}")
                enrols += [asyncio.ensure_future(_enrol(servers, m)) for m in rest]
                queued = await _queued(servers, len(rest))  # all seven behind the pilot's group
                answered = any(e.done() for e in enrols)
            finally:
                os.close(fd)
            outs = await asyncio.wait_for(asyncio.gather(*enrols), 30)
            return list(outs), waiting and not answered, queued, handler.commits

    monkeypatch.setattr(cluster_mod, "save_state", counting_save)
    outs, waited, queued, commits = run(main())
    assert waited, "a phone was answered before its record was saved"
    assert [o.outcome for o in outs] == ["installed"] * len(GROUP_MACS)
    assert queued and commits == 2 and len(saves) == 2, (queued, commits, len(saves))
    saved = LabCluster.open(cluster.root)
    for mac, out in zip(GROUP_MACS, outs, strict=True):
        ph = saved.state.phones[mac]
        assert ph.has_lsc and ph.capf_operation is None
        lsc = saved.phone_lsc(mac)
        assert lsc is not None and certs.cert_der(lsc) == out.result.certificate
        assert not (saved.phone_dir(mac) / ".lsc-staged.pem").exists()
    assert [e.op for e in saved.state.log[-len(GROUP_MACS):]] == ["capf-lsc"] * len(GROUP_MACS)


def test_a_group_whose_save_fails_records_none_of_it(cluster: LabCluster) -> None:
    """The one save of a group fails (a full disk): every phone of the group is told REASON 7, none of
    the LSCs stands in the lab (memory put back as saved), and the operations stay pending."""
    macs = GROUP_MACS[:3]
    cluster.set_capf(macs, "install", auth_mode=capf.AuthType.NULL_STRING)
    import phoneemu.lab.cluster as cluster_mod

    def full_disk(root: Path, state: Any) -> None:
        raise OSError(28, "No space left on device")

    async def main() -> list[CapfOutcome]:
        async with LabServers(cluster, host=HOST) as servers:
            orig = cluster_mod.save_state
            cluster_mod.save_state = full_disk
            try:
                return list(await asyncio.wait_for(asyncio.gather(*[_enrol(servers, m) for m in macs]), 30))
            finally:
                cluster_mod.save_state = orig

    outs = run(main())
    assert [o.result.reason for o in outs] == [capf.Reason.FAILURE] * 3
    for c in (cluster, LabCluster.open(cluster.root)):
        for m in macs:
            assert not c.state.phones[m].has_lsc and c.state.phones[m].capf_operation == "install"


def test_a_record_that_cannot_be_built_is_undone_and_spares_its_group(cluster: LabCluster,
                                                                      caplog: Any) -> None:
    """Two enrolments are recorded in one group: one phone's config is encrypted to its certificate and
    its new LSC is EC (no key wrap for EC, spec §C.3), the other's is fine. The first is refused
    (REASON 7) with its install still pending — in the serving lab's memory too, so its retry is offered
    the install again (before: 'nothing pending', the memory said recorded though nothing was saved) —
    and the second is recorded by the same commit. A pilot enrolment's record waits for the lab lock
    first, so that the other two queue behind it as one group."""
    caplog.set_level(logging.WARNING, logger="phoneemu.lab.lock")
    bad, good, pilot = GROUP_MACS[:3]
    cluster.set_encryption([bad], True, mode="pki")
    cluster.set_capf([bad, good, pilot], "install", auth_mode=capf.AuthType.NULL_STRING, key="rsa1024")
    # the lab's operations refuse an EC LSC for a PKI-encrypted phone up front; a state made otherwise
    # (an older lab, an edited cluster.json) must still be survived by the CAPF group commit
    cluster.state.phones[bad] = dataclasses.replace(cluster.state.phones[bad], lsc_key="ec-p256")
    cluster._save()  # (the lsc_key is read when the LSC is issued: no file to rebuild)

    async def main() -> tuple[list[CapfOutcome], CapfOutcome, int, bool]:
        async with LabServers(cluster, host=HOST) as servers:
            handler = servers.capf_handler
            fd = _hold(cluster.root)
            try:
                first = asyncio.ensure_future(_enrol(servers, pilot))
                await _logged(caplog, f"CAPF installed of SEP{pilot}")  # its group waits for the lock
                pair = [asyncio.ensure_future(_enrol(servers, m)) for m in (bad, good)]
                queued = await _queued(servers, 2)  # both behind the pilot's group
            finally:
                os.close(fd)
            outs = list(await asyncio.wait_for(asyncio.gather(first, *pair), 30))
            commits = handler.commits
            again = await asyncio.wait_for(_enrol(servers, bad), 30)
            return outs, again, commits, queued

    (out_pilot, out_bad, out_good), again, commits, queued = run(main())
    assert queued and commits == 2, "the two records were not one group"
    assert out_pilot.outcome == "installed" and out_good.outcome == "installed"
    assert out_bad.result.reason == capf.Reason.FAILURE
    assert again.result.outcome != "nothing-pending" and again.result.reason == capf.Reason.FAILURE
    for c in (cluster, LabCluster.open(cluster.root)):
        assert c.state.phones[bad].capf_operation == "install" and not c.state.phones[bad].has_lsc
        assert c.state.phones[good].capf_operation is None and c.state.phones[good].has_lsc
        assert [e.args["mac"] for e in c.state.log if e.op == "capf-lsc"] == [pilot, good]
