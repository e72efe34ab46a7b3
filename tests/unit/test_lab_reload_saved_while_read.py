"""A served lab's reload records the saved state it read, not one saved while it read (ours, §H.6).

A writer that does not hold the lab lock (the Python API; a lab whose lock file cannot be made) can save
while :meth:`LabCluster.reload_if_changed` reads. The reload then holds the state it read, and the next
call must read again: before, it recorded the identity of the file after reading — the newer save's —
and served the older lab for good.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import phoneemu.lab.cluster as cluster_module
from phoneemu.lab.cluster import LabCluster

NOW = 1_780_000_000


def test_a_save_made_while_the_lab_is_read_is_read_at_the_next_reload(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served = LabCluster.init(tmp_path / "lab", seed=3, key_spec="rsa1024", now=NOW)
    LabCluster.open(served.root).set_rollback(True, now=NOW)  # another process's change: generation 1
    read = cluster_module.load_state
    saved_meanwhile: list[int] = []

    def read_then_another_save(root: Path) -> Any:
        state = read(root)
        if not saved_meanwhile:  # once: the writer saves right after the reload read the state
            saved_meanwhile.append(-1)
            other = LabCluster.open(root)
            other.regenerate("itlrecovery", now=NOW)
            saved_meanwhile[0] = other.generation
        return state

    monkeypatch.setattr(cluster_module, "load_state", read_then_another_save)
    assert served.reload_if_changed()
    assert (served.generation, saved_meanwhile) == (1, [2])  # the state read, before that save
    assert served.reload_if_changed()  # the save made meanwhile
    assert served.generation == 2
    assert served.get("ITLFile.tlv") == (served.root / "tftp" / "ITLFile.tlv").read_bytes()
    assert not served.reload_if_changed()
