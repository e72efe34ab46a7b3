"""Small helpers shared by the test modules."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Awaitable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def run(coro: Awaitable[T], limit: float = 30.0) -> T:
    """Run ``coro`` in a fresh event loop, failing with TimeoutError after ``limit`` seconds."""
    async def wrapped() -> T:
        return await asyncio.wait_for(coro, limit)
    return asyncio.run(wrapped())


def run_within(limit: float) -> Any:
    """A ``run`` bound to ``limit`` seconds (module-level ``run = run_within(90)``)."""
    return partial(run, limit=limit)


def copy_cluster(template: Path, tmp_path: Path) -> Any:
    """A private copy of a module-scoped lab cluster, so a test may change it freely."""
    from phoneemu.lab.cluster import LabCluster

    root = tmp_path / "lab"
    shutil.copytree(template, root)
    return LabCluster.open(root)


@dataclass
class FakePhoneView:
    """A ``checks.PhoneView`` with only a boot report and an HTTPS result (unit tests of the checks)."""

    report: Any = None
    https: Any = None
    trust: bool = False  # what has_trust answers for every kind

    def has_trust(self, kind: str) -> bool:
        return self.trust

    def trust_is_empty(self, kind: str) -> bool:
        return False

    def has_lsc(self) -> bool:
        return False

    def lsc_key(self) -> str | None:
        return None

    def config_xml(self) -> bytes | None:
        return None

    @property
    def running_load(self) -> str | None:
        return None


def reap(proc: subprocess.Popen[str]) -> None:
    """Kill ``proc`` if it is still running, wait for it and close its pipes (a test's ``finally``)."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
