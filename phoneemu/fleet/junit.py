"""JUnit XML with a test case per phone (``fleet boot --junit``, ``replay --all --junit``, ``predict
--junit``): a CI page lists which phones failed and why.

Rules (our convention): one ``<testsuite>``; a case per phone named by its MAC, in the order given; a
name given twice gets `` #2``, `` #3`` (CI tools key a test's history by classname and name); the
cases' ``classname`` is the report's stable name (``phoneemu fleet``), not the suite's, which holds the
target and a count and would start a new history in Jenkins or GitLab at each change (and dots in an
address would split it into Jenkins packages); a phone that failed has a ``<failure>`` whose message is
one line (what CI pages show first) and whose body says more; a phone not booted or not replayed is
``<skipped>``; what is not a phone's (a shard that died) is an ``<error>`` case; a case may carry a
``<system-out>`` (a phone that booted although a download failed in transport says which).
``<testsuites>`` and ``<testsuite>`` carry the counts of the cases. Text XML 1.0 cannot carry — C0
controls but TAB, LF and CR (a reason quoting bytes of a hostile file), lone surrogates (a file name of
non-UTF-8 bytes), U+FFFE/U+FFFF — is written as U+FFFD, as :mod:`phoneemu.scenario.reports` does: the
file always parses (the ``--json`` report keeps the exact text). A time that is not a finite number of
seconds >= 0 is 0. The file is written whole or not at all (``files.write_output``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from phoneemu.files import write_output

__all__ = ["Case", "write_cases", "xml_text"]

#: what XML 1.0 forbids even escaped (module rule)
_NOT_XML = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """``text`` with each character XML 1.0 cannot carry replaced by U+FFFD (module rule)."""
    return _NOT_XML.sub("\ufffd", text)


def _attr(text: str) -> str:
    return quoteattr(xml_text(text))


def _seconds(time_s: float) -> str:
    """A ``time`` attribute: a number, ``0.000`` for NaN, an infinity or a negative time."""
    return f"{time_s:.3f}" if math.isfinite(time_s) and time_s >= 0 else "0.000"


@dataclass(frozen=True)
class Case:
    """One test case: passed unless ``failure`` (message, body), ``skipped`` or ``error`` is given."""

    name: str
    time_s: float = 0.0
    failure: tuple[str, str] | None = None
    skipped: str | None = None
    error: str | None = None
    output: str | None = None  # <system-out> text

    def xml(self, classname: str, name: str | None = None) -> str:
        named = self.name if name is None else name
        head = f"    <testcase classname={_attr(classname)} name={_attr(named)} " \
               f'time="{_seconds(self.time_s)}">'
        out = f"<system-out>{escape(xml_text(self.output))}</system-out>" if self.output is not None else ""
        if self.failure is not None:
            message, body = self.failure
            inner = f"<failure message={_attr(message)}>{escape(xml_text(body))}</failure>"
        elif self.skipped is not None:
            inner = f"<skipped message={_attr(self.skipped)}/>"
        elif self.error is not None:
            inner = f"<error message={_attr(self.error)}/>"
        elif out:
            return f"{head}\n      {out}\n    </testcase>"
        else:
            return f"{head}</testcase>"
        if out:
            inner += f"\n      {out}"
        return f"{head}\n      {inner}\n    </testcase>"


def write_cases(path: Path, *, suites: str, suite: str, cases: Iterable[Case], file: str | None = None,
                time_s: float = 0.0, output: str | None = None) -> None:
    """Write ``cases`` as one test suite named ``suite`` in a report named ``suites`` (module rules);
    ``output``: the suite's own ``<system-out>`` (what holds for every case, said once)."""
    body: list[str] = []
    failures = skipped = errors = 0
    seen: dict[str, int] = {}
    for case in cases:
        failures += case.failure is not None
        skipped += case.failure is None and case.skipped is not None
        errors += case.failure is None and case.skipped is None and case.error is not None
        seen[case.name] = seen.get(case.name, 0) + 1
        n = seen[case.name]
        body.append(case.xml(suites, case.name if n == 1 else f"{case.name} #{n}"))
    where = f" file={_attr(file)}" if file else ""
    counts = f'tests="{len(body)}" failures="{failures}" errors="{errors}" skipped="{skipped}" ' \
             f'time="{_seconds(time_s)}"'
    xml = ['<?xml version="1.0" encoding="UTF-8"?>', f"<testsuites name={_attr(suites)} {counts}>",
           f"  <testsuite name={_attr(suite)} {counts}{where}>", *body,
           *([f"    <system-out>{escape(xml_text(output))}</system-out>"] if output is not None else []),
           "  </testsuite>",
           "</testsuites>", ""]
    write_output(path, "\n".join(xml).encode("utf-8"))
