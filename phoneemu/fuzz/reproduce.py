"""Where a finding's commands (info.json's ``reproduce`` and ``regenerate``) must run.

Rules implemented here (ours: the spec is silent on fuzzing):

* The commands name the finding's files by absolute paths (:mod:`phoneemu.fuzz.engine`), and so they
  work from any folder — unless the target itself is found through the fuzzer's working folder:

  - ``--target MODULE:FUNCTION`` (or a ``--reject-exc`` type) whose module is one of that folder's own:
    its top-level module file or package right in it, imported as ``python -m`` imports it
    (:func:`module_in_folder`). Run from elsewhere it is "No module named ...";
  - ``--target-cmd`` whose program is a relative path (``./itlparse {}``), a bare name found through a
    relative ``PATH`` entry, or which names an existing relative path as an argument (``--keys keys``,
    ``--keys=keys``) (:func:`command_in_folder`). A command run from a list is run from the working
    folder, so these are that folder's.

  Then the commands begin with ``cd <that folder> && `` (shell-quoted: :func:`in_folder`), and a
  POSIX shell runs them as printed from any folder. Otherwise they carry no ``cd``: ``--target
  phoneemu``, an installed module, an absolute program. What the program reads on its own (a path it
  builds itself) cannot be seen: a ``cd`` of your own then.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

from phoneemu.fuzz.targets import split_type_name

__all__ = ["command_in_folder", "in_folder", "module_in_folder", "modules_in_folder", "target_modules"]


def in_folder(folder: Path, command: str) -> str:
    """``cd FOLDER && COMMAND``, the folder shell-quoted: one POSIX shell line."""
    return f"cd {shlex.quote(str(folder))} && {command}"


def target_modules(target: str | None, reject_exc: str | None) -> list[str]:
    """The modules ``--target MODULE:FUNCTION`` and ``--reject-exc`` name (none for ``phoneemu``)."""
    names: list[str] = []
    if target is not None and target != "phoneemu":
        names.append(target.partition(":")[0])
    if reject_exc is not None:
        names += [split_type_name(n.strip())[0] for n in reject_exc.split(",") if n.strip()]
    return [n for n in names if n]


def _import_root(module_name: str) -> Path | None:
    """The folder the imported module ``module_name`` was found in as a top-level name (``a.b.c`` in
    ``ROOT/a/b/c.py`` or ``ROOT/a/b/c/__init__.py``: ROOT); None when it is not imported or has no file
    (built-in, frozen, a namespace package)."""
    file = getattr(sys.modules.get(module_name), "__file__", None)
    if not isinstance(file, str):
        return None
    path = Path(file)
    root = path.parent
    for _ in range(module_name.count(".") + (path.stem == "__init__")):
        root = root.parent
    return root


def module_in_folder(module_name: str, folder: Path) -> bool:
    """Whether the imported module ``module_name`` is one of ``folder``'s own (module docstring): its import
    root is ``folder`` or below it (``PYTHONPATH=src`` from ``folder``: found through it too; a ``cd`` it
    did not need does no harm, the rest of the command names absolute paths)."""
    root = _import_root(module_name)
    if root is None:
        return False
    root, here = root.resolve(), folder.resolve()
    return root == here or here in root.parents


def _names_relative_path(word: str, folder: Path) -> bool:
    """A command word that names an existing path relative to ``folder`` (``keys``, ``--keys=keys``);
    ``{}`` (the input's own path) does not count."""
    if "{}" in word:
        return False
    candidates = (word, word.partition("=")[2]) if "=" in word else (word,)
    return any(c and not os.path.isabs(c) and os.path.lexists(folder / c) for c in candidates)


def _relative_program(program: str) -> bool:
    """A program found through the working folder: a relative path, or a bare name that ``PATH`` finds
    through a relative entry."""
    if os.sep in program or (os.altsep is not None and os.altsep in program):
        return not os.path.isabs(program)
    found = shutil.which(program)
    return found is not None and not os.path.isabs(found)


def command_in_folder(command: str, folder: Path) -> bool:
    """Whether the ``--target-cmd`` ``command`` is found, or finds its files, through ``folder``, the
    working folder it runs from (module docstring)."""
    try:
        words = shlex.split(command)
    except ValueError:  # refused by CommandTarget before any command is printed
        return False
    return bool(words) and (_relative_program(words[0])
                            or any(_names_relative_path(w, folder) for w in words[1:]))


def modules_in_folder(module_names: Iterable[str], folder: Path) -> bool:
    """Whether any of the imported modules is one of ``folder``'s own."""
    return any(module_in_folder(name, folder) for name in module_names)
