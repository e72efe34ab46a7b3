"""JUnit XML with a test case per phone (``fleet boot --junit``, ``replay --all --junit``): a CI page
lists which phones failed and why.

Rules (our convention): one ``<testsuite>``; a case per phone named by its MAC, in the order given;
a phone that failed has a ``<failure>`` whose message is one line (what CI pages show first) and whose
body says more; a phone not booted or not replayed is ``<skipped>``; what is not a phone's (a shard
that died) is an ``<error>`` case. The file is written whole or not at all (``files.write_output``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from phoneemu.files import write_output

__all__ = ["Case", "write_cases"]


@dataclass(frozen=True)
class Case:
    """One test case: passed unless ``failure`` (message, body), ``skipped`` or ``error`` is given."""

    name: str
    time_s: float = 0.0
    failure: tuple[str, str] | None = None
    skipped: str | None = None
    error: str | None = None

    def xml(self, classname: str) -> str:
        head = f"    <testcase classname={quoteattr(classname)} name={quoteattr(self.name)} " \
               f'time="{self.time_s:.3f}">'
        if self.failure is not None:
            message, body = self.failure
            inner = f"<failure message={quoteattr(message)}>{escape(body)}</failure>"
        elif self.skipped is not None:
            inner = f"<skipped message={quoteattr(self.skipped)}/>"
        elif self.error is not None:
            inner = f"<error message={quoteattr(self.error)}/>"
        else:
            return f"{head}</testcase>"
        return f"{head}\n      {inner}\n    </testcase>"


def write_cases(path: Path, *, suites: str, suite: str, cases: Iterable[Case], file: str | None = None,
                time_s: float = 0.0) -> None:
    """Write ``cases`` as one test suite named ``suite`` (module rules)."""
    body: list[str] = []
    failures = skipped = errors = 0
    for case in cases:
        failures += case.failure is not None
        skipped += case.failure is None and case.skipped is not None
        errors += case.failure is None and case.skipped is None and case.error is not None
        body.append(case.xml(suite))
    where = f" file={quoteattr(file)}" if file else ""
    xml = ['<?xml version="1.0" encoding="UTF-8"?>', f"<testsuites name={quoteattr(suites)}>",
           f'  <testsuite name={quoteattr(suite)} tests="{len(body)}" failures="{failures}" '
           f'errors="{errors}" skipped="{skipped}" time="{time_s:.3f}"{where}>', *body, "  </testsuite>",
           "</testsuites>", ""]
    write_output(path, "\n".join(xml).encode("utf-8"))
