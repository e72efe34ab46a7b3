"""``bench/lab_python.py`` (the lab's Python per boot, issue #6) keeps measuring what it says: every
transfer of its boots ends ``ok`` and every QUERY is vouched for, through the lab's own objects."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import bench.lab_python as lab_python


def test_the_boots_it_times_are_whole_boots(tmp_path: Path) -> None:
    cluster = lab_python.build_lab(tmp_path / "lab", key_spec="rsa1024")
    args = argparse.Namespace(boots=5, batch=2, repeat=1)
    tftp_s, tvs_s = asyncio.run(lab_python.measure(cluster, args))  # raises unless all went through
    assert tftp_s > 0 and tvs_s > 0
