"""Small helpers shared by the test modules."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable
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
