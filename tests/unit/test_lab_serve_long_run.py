"""``lab serve`` over a long run (an audit: 2,000-phone storms again and again, admin changes between
them, abusive clients): what the served lab keeps must stay bounded.

* The change log (``cluster.json``'s ``log``): every CAPF enrolment a running ``lab serve`` records is
  an entry, and every save writes the log whole and every reload parses it — a lab served for days
  grew by one entry per phone per enrolment storm (2,000 a storm; at 40,000 entries each save and
  reload took ~200 ms, the loop blocked). Bounded now by :data:`phoneemu.lab.state.MAX_LOG_ENTRIES`,
  the oldest dropped first, the last ``ports`` entry kept (``boot --lab`` goes by it).

Counted in entries, not in bytes or seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from phoneemu.lab import state as lab_state
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.state import ClusterState, LogEntry
from tests.helpers import lab_template

MAC = "0A0000200000"
template = lab_template("labserve-long", seed=41, phones={MAC: {}})

#: the bound (read from the module when it has one: the test must also run, and fail, without it)
BOUND: int = getattr(lab_state, "MAX_LOG_ENTRIES", 10_000)


def _entry(i: int, op: str = "old") -> LogEntry:
    return LogEntry(time=1_700_000_000 + i, generation=i, op=op, args={"i": i})


def _long_served(cluster: Any) -> None:
    """The state a long-served lab reaches: a ``ports`` entry (lab serve started), then a log full of
    CAPF records (what storms of enrolments leave), saved."""
    cluster.state.log[:] = [_entry(0, "ports"), *(_entry(i, "capf-lsc") for i in range(1, BOUND + 1))]
    cluster._save()


def test_capf_outcomes_on_a_long_served_lab_keep_the_log_bounded(cluster: Any) -> None:
    _long_served(cluster)
    for _ in range(3):  # what a running lab serve records after each enrolment
        cluster.capf_done(MAC, operation="install")
    cluster.restart_tvs()  # an admin operation too
    log = cluster.state.log
    assert len(log) <= BOUND
    assert [e.op for e in log[-4:]] == ["capf-done", "capf-done", "capf-done", "restart-tvs"]
    assert any(e.op == "ports" for e in log), "the last ports entry is kept (boot --lab reads it)"
    reopened = LabCluster.open(Path(cluster.root))  # and so is what was saved
    assert len(reopened.state.log) <= BOUND
    assert reopened.state.log[-1].op == "restart-tvs"


def test_many_appends_stay_bounded_newest_kept() -> None:
    st = ClusterState()
    for i in range(3 * BOUND):
        (st.add_log if hasattr(st, "add_log") else st.log.append)(_entry(i, "ports" if i == 5 else "x"))
        assert len(st.log) <= BOUND
    assert st.log[-1].generation == 3 * BOUND - 1
    assert [e.generation for e in st.log if e.op == "ports"] == [5]
    gens = [e.generation for e in st.log if e.op == "x"]
    assert gens == sorted(gens) and gens[-1] - gens[0] == len(gens) - 1  # the newest, in order


def test_a_failed_phone_change_puts_a_trimmed_log_back(cluster: Any) -> None:
    _long_served(cluster)
    before = list(cluster.state.log)
    with pytest.raises(RuntimeError), cluster._phone_change_undone_on_error(MAC):
        for i in range(5):  # enough to trim the log's front
            cluster.state.add_log(_entry(BOUND + 1 + i, "capf-lsc"))
        raise RuntimeError("the record failed")
    assert cluster.state.log == before


# --- descriptors ------------------------------------------------------------------------------------
# Each service bounds its own connections, but at the usual soft limit (1,024) the bounds added up to
# more than the process may open: 300 idle TCP connections to TVS under ``ulimit -n 256`` left none for
# HTTP (whose failed accept asyncio logs with a traceback, again and again: 20 MB in seconds) nor for
# TFTP's transfer sockets. lab serve raises its soft limit to the hard one (at most 65,536) first.

class _Limits:
    def __init__(self, soft: int, hard: int) -> None:
        self.soft, self.hard = soft, hard
        self.set_to: list[tuple[int, int]] = []

    def getrlimit(self, _what: int) -> tuple[int, int]:
        return self.soft, self.hard

    def setrlimit(self, _what: int, limits: tuple[int, int]) -> None:
        self.set_to.append(limits)
        self.soft, self.hard = limits


def _serve_with(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, limits: _Limits) -> None:
    """Run ``lab serve``'s start on an unreadable folder (it fails once the limit is handled or not)."""
    import resource

    from phoneemu.commands import lab_serve
    from phoneemu.lab import cluster as lab_cluster

    monkeypatch.setattr(resource, "getrlimit", limits.getrlimit)
    monkeypatch.setattr(resource, "setrlimit", limits.setrlimit)

    class _StopError(Exception):
        pass

    def no_lab(_root: Path) -> Any:
        return object()

    def stop(*_a: Any, **_k: Any) -> Any:
        raise _StopError

    monkeypatch.setattr(lab_cluster.LabCluster, "open", staticmethod(no_lab))
    import phoneemu.lab.lock as lock
    monkeypatch.setattr(lock, "serving", stop)
    import asyncio
    with pytest.raises(_StopError):
        asyncio.run(lab_serve.serve(tmp_path, tftp_port=0, http_port=0, tvs_port=0, capf_port=0))


def test_lab_serve_raises_a_low_soft_open_file_limit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    limits = _Limits(1024, 1_048_576)
    _serve_with(monkeypatch, tmp_path, limits)
    assert limits.soft >= 65_536 and limits.hard == 1_048_576


def test_lab_serve_takes_no_more_than_the_hard_limit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    limits = _Limits(256, 4096)
    _serve_with(monkeypatch, tmp_path, limits)
    assert (limits.soft, limits.hard) == (4096, 4096)
    limits = _Limits(100_000, 200_000)  # already high: left alone
    _serve_with(monkeypatch, tmp_path, limits)
    assert limits.set_to == []
