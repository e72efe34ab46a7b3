"""A fuzz finding and its folder: ``DIR/crashes/<id>/`` with ``input.bin``, ``minimized.bin``, ``info.json``.

Rules implemented here (ours: the spec is silent on fuzzing):

* A finding is saved as ``DIR/crashes/<sha1(signature)[:12]>/{input.bin, minimized.bin, info.json}``;
  ``info.json`` holds the seed, run index, signature, traceback or stderr, the mutation ops,
  ``minimize_note`` (why it was not minimised, with less time, or cut short:
  :mod:`phoneemu.fuzz.minimize_plan`) and a one-line command that replays the minimised input (its paths
  absolute; the command's prefix, ``FuzzConfig.reproduce``, begins ``cd <folder> &&`` when the target is
  found through the fuzzer's working folder: :mod:`phoneemu.fuzz.reproduce` — so it works from any working
  directory; ``Finding.directory``, summary.json's ``dir``, are absolute too).
* Each file is written atomically (temporary file beside it, then renamed,
  :func:`phoneemu.files.atomic_write`), info.json last: a fuzzer killed mid-write never leaves a truncated
  finding.
* A finding's input rebuilt from its seed and run index (``regenerate`` in info.json,
  :func:`phoneemu.fuzz.engine.regenerate`) is saved in a folder of its own, ``crashes/<id>/regenerated/``:
  the folder itself, no ``crashes/<id>/`` inside it.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from phoneemu import json_doc
from phoneemu.files import atomic_write

if TYPE_CHECKING:
    from phoneemu.fuzz.engine import FuzzConfig

__all__ = ["Finding", "save_finding"]


@dataclass(kw_only=True)
class Finding:
    """One deduplicated crash or hang."""

    signature: str
    kind: str
    first_run: int
    count: int
    detail: str
    ops: tuple[str, ...]
    resigned: bool
    data: bytes
    minimized: bytes | None = None
    minimize_note: str | None = None  #: why it was not minimised, with less time, or cut short (info.json)
    directory: Path | None = None

    @property
    def key(self) -> str:
        return hashlib.sha1(self.signature.encode(), usedforsecurity=False).hexdigest()[:12]


def save_finding(finding: Finding, config: FuzzConfig, into: Path | None = None) -> None:
    """Write ``crashes/<key>/`` (or ``into``, a regenerated finding's folder; input.bin, minimized.bin,
    info.json last): each file atomically (:func:`phoneemu.files.atomic_write`), so a fuzzer killed
    mid-write leaves the previous version or none, never a truncated finding; an ``info.json`` means the
    inputs beside it are complete. Its ``regenerate`` command rebuilds the input into
    ``crashes/<key>/regenerated/`` (``into`` itself for a regenerated one). The folder is made absolute
    (as ``--serve``'s): its commands, and :attr:`Finding.directory`, work from any working directory."""
    if into is not None:
        d = into.resolve()
    elif config.out is not None:
        d = config.out.resolve() / "crashes" / finding.key
    else:
        return
    d.mkdir(parents=True, exist_ok=True)
    atomic_write(d / "input.bin", finding.data)
    mini = finding.minimized if finding.minimized is not None else finding.data
    atomic_write(d / "minimized.bin", mini)
    mini_path = shlex.quote(str(d / "minimized.bin"))
    replay = f"{config.reproduce} --replay {mini_path}" if config.reproduce else ""
    regen_dir = d if into is not None else d / "regenerated"
    regen = (f"{config.reproduce} --seed {config.seed} --run-index {finding.first_run} "
             f"--regenerate {shlex.quote(str(regen_dir))}" if config.reproduce else "")
    info = {
        "format": config.fmt,
        "seed": config.seed,
        "run_index": finding.first_run,
        "kind": finding.kind,
        "signature": finding.signature,
        "count": finding.count,
        "ops": list(finding.ops),
        "resigned": finding.resigned,
        "input_size": len(finding.data),
        "minimized_size": len(mini),
        "minimize_note": finding.minimize_note,
        "detail": finding.detail,
        "reproduce": replay,
        "regenerate": regen,
    }
    atomic_write(d / "info.json", (json_doc.dumps(info, indent=2) + "\n").encode("utf-8"))
    finding.directory = d
