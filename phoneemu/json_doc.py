"""JSON read from a file or the network: every way it can fail is one ``json.JSONDecodeError``.

Rule (ours): ``json.loads`` on hostile text raises more than JSONDecodeError — RecursionError for deep
nesting (``'[' * 4000``), ValueError past the integer-digit limit (``1`` * 5000) — and each reader of a
JSON file answers bad JSON one way (a DecodeError naming the file, a noted problem). :func:`loads` turns
each failure into a JSONDecodeError (message, line, column), so that one ``except`` says them all.
Used by the flash's files (``phone.json``, ``state.json``, ``last-boot.json``) and the lab's
(``cluster.json``, ``registrations.json``).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

__all__ = ["loads"]

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
