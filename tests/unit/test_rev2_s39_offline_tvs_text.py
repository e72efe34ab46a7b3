"""predict tells a lockout that rests on its offline TVS by the offline TVS's words in the deciding reason
(:func:`phoneemu.scenario.predict.rests_on_offline_tvs`); those words are written once, in
:mod:`phoneemu.scenario.replay` (``TVS_UNAVAILABLE_OFFLINE``), where the offline TVS says them. Was: a copy in
predict, which a reworded message in replay would have left matching nothing — every such phone then said
plainly "would lock out" again, and no test of predict's wording would have told why.
"""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest

import phoneemu
from phoneemu.errors import TransportError
from phoneemu.scenario.predict import rests_on_offline_tvs
from phoneemu.scenario.replay import TVS_UNAVAILABLE_OFFLINE, no_tvs_answer, offline_tvs

WORDS = "TVS unavailable offline"
PACKAGE = Path(phoneemu.__file__).parent


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstring nodes of ``tree`` (its module's, classes' and functions')."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _code_strings_with(words: str) -> list[str]:
    """Where a string of the package's code holds ``words``: a message or a text matched (f-string pieces
    too), not a docstring nor prose of several lines (a command's help epilog quoting the boot's words)."""
    where = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if words.lower() not in text.lower():  # only the modules that hold the words are parsed (CPU)
            continue
        tree = ast.parse(text)
        docs = _docstrings(tree)
        where += [f"{path.relative_to(PACKAGE)}:{node.lineno}" for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
                  and "\n" not in node.value and words.lower() in node.value.lower()]
    return where


def test_the_offline_tvs_words_are_written_once() -> None:
    where = _code_strings_with(WORDS)
    assert len(where) == 1 and where[0].startswith("scenario/replay.py:"), where
    assert TVS_UNAVAILABLE_OFFLINE == WORDS


def _offline_failure(servers: list[tuple[str, int]]) -> str:
    """What the offline TVS with no ``--tvs-cert`` raises, said of each server as the boot says it."""
    ask = offline_tvs([], frozenset({0}))
    with pytest.raises(TransportError) as caught:
        asyncio.run(ask(servers, None))
    return no_tvs_answer(servers, caught.value.message, kind=caught.value.kind).message


@pytest.mark.parametrize("rule", ["G.3.4-tvs-unreachable", "G.4-tvs-unreachable"])
def test_a_lockout_on_the_offline_tvs_is_told_by_what_it_raises(rule: str) -> None:
    reason = f"signer unknown: ask TVS ({_offline_failure([('10.0.0.5', 2445), ('10.0.0.6', 2445)])})"
    assert TVS_UNAVAILABLE_OFFLINE in reason
    assert rests_on_offline_tvs(rule, reason)
    assert not rests_on_offline_tvs("G.3.4-tvs-server-untrusted", reason)  # another rule: plainly
    assert not rests_on_offline_tvs(rule, reason.replace(TVS_UNAVAILABLE_OFFLINE, "cannot connect"))
