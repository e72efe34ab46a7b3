"""JSON read from a file or the network: every way it can fail is one ``json.JSONDecodeError``.

Rule (ours): ``json.loads`` on hostile text raises more than JSONDecodeError — RecursionError for deep
nesting (``'[' * 4000``), ValueError past the integer-digit limit (``1`` * 5000) — and each reader of a
JSON file answers bad JSON one way (a DecodeError naming the file, a noted problem). :func:`loads` turns
each failure into a JSONDecodeError (message, line, column), so that one ``except`` says them all.
Used by the flash's files (``phone.json``, ``state.json``, ``last-boot.json``) and the lab's
(``cluster.json``, ``registrations.json``).

Rule (ours), JSON written: a Python ``str`` may hold lone surrogates (U+D800..U+DFFF) — a file name decoded
with ``surrogateescape``, a hostile server's bytes kept that way (:mod:`phoneemu.formats._tlv`) — and
``json.dumps`` writes each as ``\\udcXX``: the JSON grammar of RFC 8259 §7 takes it, but it is no Unicode
text, and strict parsers (RFC 7493 I-JSON §2.1, Go's, Rust's serde_json) refuse the document.
:func:`dumps` writes U+FFFD REPLACEMENT CHARACTER for each surrogate code point a string (a value or a
key) holds — the Unicode replacement a lossy UTF-8 decoder writes for an undecodable byte (Unicode §3.9,
U+FFFD substitution) — so every document it writes is ASCII that decodes to surrogate-free text. The byte
a surrogate stood for is not kept (the text output of the same command shows it); two keys of one object
that differ only there become one (the last). Used by every ``--json`` document the commands print or
write (:mod:`phoneemu.commands`).

Rule (ours), a report of every phone: :func:`dumps_pieces` writes the text of :func:`dumps` of a
document whose one key holds a list, an item at a time (``fleet boot --json``, ``replay --all --json``:
100,000 phones' records are never one string); the same text to the byte.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

__all__ = ["REPLACEMENT", "dumps", "dumps_pieces", "loads", "without_surrogates"]

#: what :func:`dumps` writes for a lone surrogate (module rule)
REPLACEMENT = "\ufffd"
#: a surrogate code point: in a Python str never part of a valid character (UTF-8 cannot encode it)
_SURROGATE = re.compile("[\ud800-\udfff]")

#: a JSON string (skipped whole: brackets inside it do not nest) or a bracket
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)
#: the nesting reported for a RecursionError: it is at least this deep where the message points
_DEEP = 500


def loads(text: str) -> Any:
    """``json.loads(text)``; any failure of hostile text is a JSONDecodeError (module rule)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        depth, pos = _deepest(text)
        raise json.JSONDecodeError(f"nested too deeply (at least {depth} levels)", text, pos) from None
    except ValueError as exc:  # "Exceeds the limit (4300 digits) for integer string conversion ..."
        limit = sys.get_int_max_str_digits()
        long = re.search(rf"\d{{{limit + 1},}}", text) if limit else None
        if long is None:
            raise json.JSONDecodeError(str(exc).split(";")[0], text, 0) from None
        raise json.JSONDecodeError(f"a number of more than {limit} digits", text, long.start()) from None


def _deepest(text: str) -> tuple[int, int]:
    """The nesting of ``[``/``{`` outside strings and where it first reaches it: :data:`_DEEP` (the scan
    stops there), else the deepest it gets."""
    depth = best = at = 0
    for m in _TOKEN.finditer(text):
        c = m.group()
        if c in "[{":
            depth += 1
            if depth > best:
                best, at = depth, m.start()
                if best >= _DEEP:
                    break
        elif c in "]}":
            depth -= 1
    return best, at


def dumps(obj: Any, *, indent: int | None = None, sort_keys: bool = False,
          default: Callable[[Any], Any] | None = None) -> str:
    """``json.dumps(obj, ...)`` (ASCII, as its default) with each lone surrogate of a string — a value,
    a key, or what ``default`` returns — written as U+FFFD (module rule): the text encodes to UTF-8
    strictly and ``json.loads`` of it holds no surrogate."""
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, default=default)
    if "\\ud" not in text:  # json (ASCII) writes each code point U+D800..U+DFFF as \udXXX: none here
        return text
    clean = None if default is None else (lambda o: without_surrogates(default(o)))
    return json.dumps(without_surrogates(obj), indent=indent, sort_keys=sort_keys, default=clean)


def dumps_pieces(doc: Mapping[str, Any], key: str, items: Iterable[Any], *, indent: int) -> Iterator[str]:
    """``dumps({**doc, key: list(items)}, indent=indent) + "\\n"`` in pieces, an item at a time (module
    rule): the same text, ``key`` where ``doc`` has it (its value there ignored), else last; memory one
    item. The keys of ``doc`` other than ``key`` are written together, as ``dumps`` writes them."""
    keys = list(doc)
    at = keys.index(key) if key in doc else len(keys)
    before, after = ({k: doc[k] for k in part} for part in (keys[:at], keys[at + 1:]))
    pad = " " * indent
    yield "{" + (_members(before, indent) + "," if before else "")
    yield f"\n{pad}{dumps(key)}: ["
    n = 0
    for item in items:  # an item's lines two levels in (JSON strings hold no raw newline)
        yield ("\n" if n == 0 else ",\n") + pad * 2 + dumps(item, indent=indent).replace("\n", "\n" + pad * 2)
        n += 1
    yield f"\n{pad}]" if n else "]"
    yield ("," + _members(after, indent) if after else "") + "\n}\n"


def _members(part: dict[str, Any], indent: int) -> str:
    """The members of a non-empty object as ``dumps`` writes them inside its braces: from the line break
    after ``{`` to the last member's end."""
    return dumps(part, indent=indent)[1:-2]


def without_surrogates(obj: Any) -> Any:
    """A copy of ``obj`` whose strings (values, and keys of dicts, in lists and tuples too) hold U+FFFD
    for each surrogate code point (module rule); other values as they are."""
    if isinstance(obj, str):
        return _SURROGATE.sub(REPLACEMENT, obj) if not obj.isascii() else obj
    if isinstance(obj, dict):
        return {without_surrogates(k): without_surrogates(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [without_surrogates(v) for v in obj]
    return obj
