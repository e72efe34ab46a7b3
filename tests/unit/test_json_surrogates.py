"""JSON written by the commands holds no lone surrogate (:mod:`phoneemu.json_doc` rule: U+FFFD for each).

``json.dumps`` writes a lone surrogate (a ``surrogateescape`` file name, a hostile server's bytes) as
``\\udcXX``: RFC 8259's grammar takes it, strict parsers (RFC 7493 I-JSON, Go, serde) refuse it.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phoneemu import json_doc
from tests.helpers import lab_template

REPO = Path(__file__).resolve().parents[2]
template = lab_template("jsonsurrogates", seed=13, phones={})

#: any code point, lone surrogates often (hypothesis's default text leaves them out)
_CHARS = st.one_of(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
                   st.characters(codec=None, exclude_categories=()))
_TEXT = st.text(alphabet=_CHARS, max_size=20)
_DOCS = st.recursive(st.none() | st.booleans() | st.integers() | _TEXT,
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
                     max_leaves=20)


def _strings(value: Any) -> list[str]:
    """Every string of a decoded JSON document, keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *_strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _strict(text: str) -> Any:
    """What a strict parser reads: the text is UTF-8 (it encodes strictly) and no string it decodes to
    holds a surrogate code point (each encodes to UTF-8 strictly)."""
    text.encode("utf-8", errors="strict")
    doc = json.loads(text)
    for s in _strings(doc):
        s.encode("utf-8", errors="strict")  # UnicodeEncodeError on a surrogate
    return doc


@given(_TEXT)
def test_any_string_is_written_as_json_a_strict_parser_takes(text: str) -> None:
    out = json_doc.dumps({"name": text, text: [text]}, indent=2)
    doc = _strict(out)
    want = "".join(json_doc.REPLACEMENT if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    assert doc == {"name": want, want: [want]}


@given(_DOCS, st.booleans())
def test_any_document_is_written_as_json_a_strict_parser_takes(doc: Any, sort_keys: bool) -> None:
    out = json_doc.dumps(doc, indent=1, sort_keys=sort_keys)
    assert _strict(out) == json.loads(json.dumps(json_doc.without_surrogates(doc)))
    if not any(0xD800 <= ord(c) <= 0xDFFF for s in _strings(doc) for c in s):
        assert out == json.dumps(doc, indent=1, sort_keys=sort_keys)  # text without one: as before


def test_what_default_returns_is_cleaned_too() -> None:
    out = json_doc.dumps({"path": Path(os.fsdecode(b"a\xff"))}, default=str)
    assert _strict(out) == {"path": "a\ufffd"}


def test_lab_show_json_of_a_lab_in_a_folder_whose_name_is_not_utf8(
        template: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``lab show --json`` names the lab folder (``dir``); a name that is not UTF-8 was ``\\udcff``."""
    from phoneemu.cli import main

    root = tmp_path / os.fsdecode(b"lab\xff")
    shutil.copytree(template, root)
    assert main(["lab", "show", str(root), "--json"]) == 0
    doc = _strict(capsys.readouterr().out)
    assert doc["dir"].endswith("lab\ufffd")


def test_boot_json_of_a_flash_folder_whose_name_is_not_utf8(tmp_path: Path) -> None:
    """``boot --json`` names its ``--flash`` folder; nothing listens at the TFTP port (a closed
    loopback port: the boot fails at once and still prints its document)."""
    flash = os.path.join(os.fsencode(tmp_path), b"flash\xff")
    proc = subprocess.run([sys.executable, "-m", "phoneemu", "boot", "--tftp", "127.0.0.1:9", "--no-http",
                           "--timeout", "0.2", "--mac", "001122334455", "--flash", flash, "--json",
                           "--now", "1780000000"], check=False, capture_output=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 1, proc.stderr
    doc = _strict(proc.stdout.decode("utf-8"))
    assert doc["flash"].endswith("flash\ufffd")


#: the files writing ``--json`` documents (and fuzz's ``summary.json``/``info.json``/``serve.jsonl``, a
#: flash's ``state.json``/``last-boot.json``, a lab's ``registrations.json``)
JSON_WRITERS = ("commands/boot.py", "commands/fleet.py", "commands/lab.py", "commands/predict.py",
                "commands/inspect.py", "commands/phone.py", "commands/tvs.py", "commands/fuzz.py",
                "commands/_fuzz_run.py", "commands/_fuzz_serve.py",
                "scenario/reports.py", "fuzz/engine.py", "fuzz/findings.py", "fuzz/targets.py",
                "commands/replay.py", "commands/_replay_all.py", "phone/flash.py", "lab/registrations.py")
#: ``json.dumps`` left where it writes text, not a document (ASCII inside a text line)
TEXT_USES = ("brief = json.dumps(", "lines = [f\"{k}: {json.dumps(v)",
             # the streamed writers split a document at a marker; the spool is read back by json.loads
             "head, tail = whole_text.rsplit(json.dumps(", "self.head, self.tail = json_doc.dumps(",
             "self._file.write(json.dumps(rec, separators=")


def test_the_json_documents_of_the_commands_go_through_json_doc() -> None:
    """Every ``--json`` document (boot, fleet boot, lab show, predict, inspect, phone, tvs, run's report,
    fuzz's summaries and findings) is written by :func:`phoneemu.json_doc.dumps`: ``json.dumps`` is
    left only where it writes text (the ``lab show --log`` line's arguments, a JUnit case's lines)."""
    left: list[str] = []
    for name in JSON_WRITERS:
        path = REPO / "phoneemu" / name
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines), filename=str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "dumps" and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "json"
                    and not lines[node.lineno - 1].strip().startswith(TEXT_USES)):
                left.append(f"{name}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert not left, left
