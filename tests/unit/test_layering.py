"""Imports point inward (design §2): the sans-I/O core never imports I/O or clocks."""

from __future__ import annotations

import ast
import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "phoneemu"
FORBIDDEN = {"socket", "ssl", "asyncio", "tftpy", "scapy", "time", "selectors", "http"}
CORE = ["formats", "crypto", "protocols", "phone/rules.py", "phone/media_rules.py", "wire.py", "errors.py"]
# the dotted name an import of phoneemu.commands writes: its parts may have spaces or a backslash continuation
# between them, and its identifiers are read NFKC-normalised (as the parser reads them)
_COMMANDS_NAMED = re.compile(r"phoneemu(?:[ \t\f]|\\\r?\n)*\.(?:[ \t\f]|\\\r?\n)*commands")


def _modules() -> list[Path]:
    out: list[Path] = []
    for entry in CORE:
        p = ROOT / entry
        out.extend(sorted(p.rglob("*.py")) if p.is_dir() else [p] if p.exists() else [])
    return out


def _imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_imports_no_io(path: Path) -> None:
    bad = _imported(path) & FORBIDDEN
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_nothing_imports_the_command_layer() -> None:
    """``phoneemu/commands`` sits on top: library modules never import from it."""
    offenders = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in ("commands", "cli.py", "__main__.py"):
            continue
        text = path.read_text()
        if not _COMMANDS_NAMED.search(unicodedata.normalize("NFKC", text)):
            continue  # cannot import it: the ~190 modules parsed were most of the module's CPU (~2.5 s)
        tree = ast.parse(text, filename=str(path))
        for node in ast.walk(tree):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(m.startswith("phoneemu.commands") for m in mods):
                offenders.append(str(rel))
    assert not offenders, f"library modules import phoneemu.commands: {offenders}"


def test_only_crypto_imports_hazmat() -> None:
    offenders = []
    for path in ROOT.rglob("*.py"):
        if "crypto" in path.relative_to(ROOT).parts[:1]:
            continue
        if "cryptography.hazmat" in path.read_text():
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, f"only phoneemu/crypto may import cryptography.hazmat: {offenders}"
