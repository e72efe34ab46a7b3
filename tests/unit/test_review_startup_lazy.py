"""The packages whose names are imported when first used (:mod:`phoneemu.lazy_exports`: ``phoneemu.phone``,
``.protocols``, ``.net``, ``.fleet``) look as they did when their ``__init__`` imported every submodule:
``dir()`` lists their names, a submodule that fails to import says why, and first uses from several
threads at once get the submodules' own objects.

Each check runs in a fresh interpreter: in this one, another test may have used the names already (a
name used once is kept in the package, and would hide what a first use does)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import phoneemu

PACKAGE_ROOT = Path(phoneemu.__file__).resolve().parent.parent
LAZY_PACKAGES = ("phoneemu.phone", "phoneemu.protocols", "phoneemu.net", "phoneemu.fleet")


def _fresh(code: str, *args: str) -> object:
    """The JSON ``code`` prints, run in a fresh interpreter on the ``phoneemu`` this test imports."""
    env = {**os.environ, "PYTHONPATH": str(PACKAGE_ROOT)}
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                          env=env, cwd=PACKAGE_ROOT, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


_DIR_PROBE = """\
import importlib, json, sys
found = {}
for name in sys.argv[1:]:
    package = importlib.import_module(name)
    listed = dir(package)
    imported = sorted(m for m in sys.modules if m.startswith(name + "."))
    found[name] = {"missing": sorted(set(package.__all__) - set(listed)), "imported": imported,
                   "sorted": listed == sorted(listed)}
print(json.dumps(found))
"""


def test_dir_of_a_lazy_package_lists_its_names_before_their_first_use() -> None:
    """``dir(phoneemu.fleet)`` lists ``FleetMetrics``, ``run_fleet`` ... at once, without importing them
    (``help(phoneemu.fleet)`` shows its classes, a REPL completes ``phoneemu.fleet.<TAB>``). Was: only
    the names already used, none in a fresh interpreter (help() showed no CLASSES section)."""
    found = _fresh(_DIR_PROBE, *LAZY_PACKAGES)
    assert found == {name: {"missing": [], "imported": [], "sorted": True} for name in LAZY_PACKAGES}


_BROKEN_SUBMODULE_PROBE = """\
import importlib.abc, importlib.machinery, json, sys

class Broken(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    '''phoneemu.net.http raising AttributeError at import, as a module does whose dependency is older
    than it needs (a module-level ``x509.SomeNewName``).'''

    def find_spec(self, name, path, target=None):
        return importlib.machinery.ModuleSpec(name, self) if name == "phoneemu.net.http" else None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        raise AttributeError("module 'cryptography.x509' has no attribute 'SomeNewName'")

sys.meta_path.insert(0, Broken())
import phoneemu.net
seen = {}
try:
    from phoneemu.net import HttpServer
except ImportError as exc:
    seen["from_import"] = [str(exc), type(exc.__cause__).__name__]
try:
    seen["hasattr"] = hasattr(phoneemu.net, "http_get")
except ImportError as exc:
    seen["hasattr"] = str(exc)
print(json.dumps(seen))
"""


def test_a_submodule_failing_to_import_is_an_import_error_saying_why() -> None:
    """``from phoneemu.net import HttpServer`` whose submodule raises AttributeError while it is imported:
    an ImportError naming the submodule and the cause, and so is ``hasattr``. Was: ``cannot import name
    'HttpServer' from 'phoneemu.net'`` with no cause (Python takes a ``__getattr__``'s AttributeError for
    "no such name"), and ``hasattr`` False; before the names were lazy, ``import phoneemu.net`` showed
    the AttributeError's traceback."""
    seen = _fresh(_BROKEN_SUBMODULE_PROBE)
    assert isinstance(seen, dict)
    message, cause = seen["from_import"]
    assert "phoneemu.net.http" in message and "SomeNewName" in message and "'HttpServer'" in message
    assert cause == "AttributeError"
    assert isinstance(seen["hasattr"], str) and "SomeNewName" in seen["hasattr"]


_THREADS_PROBE = """\
import importlib, json, sys, threading
names = sys.argv[1:]
packages = [importlib.import_module(name) for name in names]
start = threading.Barrier(8, timeout=60)
got, errors = [], []

def first_use():
    start.wait()
    try:
        got.append({f"{p.__name__}.{n}": id(getattr(p, n)) for p in packages for n in p.__all__})
    except Exception as exc:
        errors.append(repr(exc))

threads = [threading.Thread(target=first_use) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join(60)
home = {}
for p in packages:
    for n in p.__all__:
        module = sys.modules[f"{p.__name__}.{p._HOME[n]}"]
        home[f"{p.__name__}.{n}"] = id(module if p._HOME[n] == n else getattr(module, n))
star = {}
for name in names:
    scope = {}
    exec(f"from {name} import *", scope)
    star.update({f"{name}.{n}": id(v) for n, v in scope.items() if not n.startswith("__")})
print(json.dumps({"errors": errors, "threads": len(got), "alike": all(g == home for g in got),
                  "star": star == home}))
"""


def test_first_uses_from_threads_at_once_get_the_submodules_objects() -> None:
    """Eight threads using every name at once (the threaded TVS server, a fleet's shards): each gets the
    very object of the submodule it comes from (``isinstance`` holds across both paths), and so does
    ``from package import *``."""
    found = _fresh(_THREADS_PROBE, *LAZY_PACKAGES)
    assert found == {"errors": [], "threads": 8, "alike": True, "star": True}
