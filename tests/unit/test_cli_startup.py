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

#: command modules that still import what they run at module level, each with what it imports; once
#: one is light, :func:`test_the_modules_not_yet_light_are_listed_truly` says to take it off this list
NOT_YET_LIGHT = {
    "run": "the scenario loader, runner and reports",
    "inspect": "phoneemu.inspection and phoneemu.crypto.keys",
}

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


def _heavy_imports(names: list[str]) -> dict[str, list[str]]:
    """For each command module, imported in turn in one fresh interpreter, the HEAVY modules its import
    brought in (the same ``phoneemu`` this test imports)."""
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    proc = subprocess.run([sys.executable, "-c", _PROBE, ",".join(HEAVY), *names], capture_output=True,
                          text=True, timeout=120, env=env, cwd=PACKAGE.parent, check=False)
    assert proc.returncode == 0, proc.stderr
    brought: dict[str, list[str]] = json.loads(proc.stdout)
    return brought


def _command_modules() -> list[str]:
    return sorted(p.stem for p in COMMANDS.glob("*.py") if p.stem != "__init__")


def test_importing_a_command_module_imports_nothing_it_runs() -> None:
    """``import phoneemu.commands.boot`` (and every other) brings in none of :data:`HEAVY`: a constant an
    option's help or default shows is imported in ``register``, the rest where the command runs."""
    names = [n for n in _command_modules() if n not in NOT_YET_LIGHT]
    assert "boot" in names and "fleet" in names and "lab" in names  # the glob found the commands
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


def test_the_modules_not_yet_light_are_listed_truly() -> None:
    """Each module of :data:`NOT_YET_LIGHT` does still import something heavy: one made light must leave
    the list, so that the test above guards it from then on."""
    brought = _heavy_imports(list(NOT_YET_LIGHT))
    light = [name for name, mods in brought.items() if not mods]
    assert light == [], f"{light}: light now, take them off NOT_YET_LIGHT"
