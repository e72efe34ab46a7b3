"""Start-up time of the CLI: a command module imports, at module level, only what building its parser
needs; what a command runs (the phone, the lab cluster, the fleet, the scenario runner, cryptography's
X.509, asyncio) is imported by its handler. Every ``phoneemu`` process builds the whole parser, so a
heavy import at the top of one command module is paid by every command, ``--help`` included.

Checked through ``sys.modules`` in a fresh interpreter, never by timing (bench/ measures)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import phoneemu

PACKAGE = Path(phoneemu.__file__).resolve().parent
COMMANDS = PACKAGE / "commands"

#: imported by a command's handler, never by importing its module: the emulated phone and its package,
#: the protocols, sockets and servers, the fleet, the lab cluster and its state, scenarios, replay and
#: prediction, the crypto wrappers, cryptography itself, the event loop and TLS
HEAVY = ("phoneemu.phone", "phoneemu.protocols", "phoneemu.net", "phoneemu.fleet", "phoneemu.lab.",
         "phoneemu.scenario", "phoneemu.crypto.", "phoneemu.inspection", "phoneemu.fuzz.", "cryptography",
         "asyncio", "ssl")

#: modules of those packages that building the parser may import, light on purpose: the packages whose
#: names are imported when first used (:mod:`phoneemu.lazy_exports`; ``phoneemu.scenario`` names none) and
#: the constants an option shows, each in a module of its own that imports nothing heavy
LIGHT = ("phoneemu.phone", "phoneemu.protocols", "phoneemu.net", "phoneemu.fleet", "phoneemu.scenario",
         "phoneemu.phone.profile_names", "phoneemu.protocols.defaults", "phoneemu.net.tftp_defaults",
         "phoneemu.fleet.loop_names", "phoneemu.lab.defaults", "phoneemu.scenario.bounds")
#: the packages whose ``__init__`` imports its submodules when one of its names is first used
LAZY_PACKAGES = ("phoneemu.phone", "phoneemu.protocols", "phoneemu.net", "phoneemu.fleet")

_PROBE = """\
import importlib, json, sys
heavy = tuple(sys.argv[1].split(","))
brought = {}
for name in sys.argv[2:]:
    before = set(sys.modules)
    importlib.import_module(f"phoneemu.commands.{name}")
    brought[name] = sorted(m for m in set(sys.modules) - before if m == heavy or m.startswith(heavy))
print(json.dumps(brought))
"""


def _fresh(code: str, *args: str) -> str:
    """The stdout of ``code`` run in a fresh interpreter on the ``phoneemu`` this test imports."""
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                          env=env, cwd=PACKAGE.parent, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _heavy_imports(names: list[str]) -> dict[str, list[str]]:
    """For each command module, imported in turn in one fresh interpreter, the HEAVY modules its import
    brought in (the same ``phoneemu`` this test imports)."""
    brought: dict[str, list[str]] = json.loads(_fresh(_PROBE, ",".join(HEAVY), *names))
    return brought


def _command_modules() -> list[str]:
    return sorted(p.stem for p in COMMANDS.glob("*.py") if p.stem != "__init__")


def test_importing_a_command_module_imports_nothing_it_runs() -> None:
    """``import phoneemu.commands.boot`` (and every other) brings in none of :data:`HEAVY`: a constant an
    option's help or default shows is imported in ``register``, the rest where the command runs."""
    names = _command_modules()
    assert {"boot", "fleet", "lab", "run", "inspect"} <= set(names)  # the glob found the commands
    brought = _heavy_imports(names)
    assert {name: mods for name, mods in brought.items() if mods} == {}


_TOP_PARSER_PROBE = """\
import sys
from phoneemu import cli
for name in cli._COMMAND_MODULES:  # none found: build_parser skips a command module that is not there
    sys.modules[f"phoneemu.commands.{name}"] = None
parser = cli.build_parser()
assert parser.format_help().startswith("usage: phoneemu")
print(sorted(m for m in sys.modules if m.split(".")[0] in ("ssl", "cryptography")))
"""


def test_the_top_parser_imports_neither_ssl_nor_cryptography() -> None:
    """``--version`` names the ssl and cryptography it runs on: its text is made when it is asked for,
    not each time the parser is built (it imported both, about 15 ms, for every command)."""
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    proc = subprocess.run([sys.executable, "-c", _TOP_PARSER_PROBE], capture_output=True, text=True,
                          timeout=120, env=env, cwd=PACKAGE.parent, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


_WHOLE_PARSER_PROBE = """\
import json, sys
heavy, light = tuple(sys.argv[1].split(",")), set(sys.argv[2].split(","))
from phoneemu import cli
assert cli.build_parser().format_help().startswith("usage: phoneemu")
print(json.dumps(sorted(m for m in sys.modules if m.startswith(heavy) and m not in light)))
"""


def test_building_the_whole_parser_imports_nothing_it_runs() -> None:
    """What every ``phoneemu`` process does first, ``--help`` included: every command's parser built, with
    the defaults and choices its options show (the profiles' names, the lab's ports, the TFTP quarantine,
    the run's time limit ...), imports none of :data:`HEAVY` but the :data:`LIGHT` modules holding them
    (was: the phone, its profiles and cryptography, the lab cluster, the TFTP client and asyncio, the
    scenario runner and replay: three quarters of ``--help``'s time)."""
    brought = json.loads(_fresh(_WHOLE_PARSER_PROBE, ",".join(HEAVY), ",".join(LIGHT)))
    assert brought == []


_LIGHT_PROBE = """\
import importlib, json, sys
heavy, light = tuple(sys.argv[1].split(",")), set(sys.argv[2].split(","))
importlib.import_module(sys.argv[3])
print(json.dumps(sorted(m for m in sys.modules if m.startswith(heavy) and m not in light)))
"""


def test_the_light_modules_import_nothing_heavy() -> None:
    """Each module of :data:`LIGHT`, imported alone, brings in none of :data:`HEAVY` but other light ones:
    a heavy import added to one would be paid by every command again."""
    brought = {name: json.loads(_fresh(_LIGHT_PROBE, ",".join(HEAVY), ",".join(LIGHT), name))
               for name in LIGHT}
    assert {name: mods for name, mods in brought.items() if mods} == {}


_LAZY_PROBE = """\
import importlib, json, sys
prefix = sys.argv[1] + "."
package = importlib.import_module(sys.argv[1])
before = sorted(m for m in sys.modules if m.startswith(prefix))
for name in package.__all__:
    value = getattr(package, name)
    submodules = [m for k, m in sys.modules.items() if k.startswith(prefix)]
    assert any(m is value or getattr(m, name, None) is value for m in submodules), name
print(json.dumps({"before": before, "names": len(package.__all__)}))
"""


def test_a_lazy_package_imports_its_names_when_first_used() -> None:
    """``import phoneemu.phone`` (``.protocols``, ``.net``, ``.fleet``) imports none of its submodules;
    each name of its ``__all__`` is then the object of the submodule it comes from (``from phoneemu.phone
    import TrustStore`` as before). Was: each ``__init__`` imported them all, so that importing any
    submodule (``phoneemu.phone.profile_names``) imported the whole package."""
    for package in LAZY_PACKAGES:
        found = json.loads(_fresh(_LAZY_PROBE, package))
        assert found["before"] == [], package
        assert found["names"] >= 2, package


def test_the_names_an_option_lists_are_the_ones_that_run() -> None:
    """``--profile``'s and ``lab exchange --store``'s choices come from light modules: they are the keys,
    in order, of the profiles and stores the commands run with."""
    from phoneemu.lab.cluster import EXCHANGE_STORES
    from phoneemu.lab.defaults import EXCHANGE_STORE_NAMES
    from phoneemu.phone.profile import PROFILES
    from phoneemu.phone.profile_names import PROFILE_NAMES

    assert tuple(PROFILES) == PROFILE_NAMES
    assert tuple(EXCHANGE_STORES) == EXCHANGE_STORE_NAMES
