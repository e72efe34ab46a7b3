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
A failure body's fields (a phone's record: :func:`field_lines`) read ``name: value``, a value as a CI reader
reads it, not as Python prints it: ``yes``/``no``, ``files_over: http 2, tftp 0``, ``held: ctl no,
empty_itl no``, a list's items ``; ``-separated, ``none`` for no value — None, an empty list or mapping (was
``True``, ``{'http': 2, 'tftp': 0}``, ``None``; ``notes: `` for no notes). A locked-out phone's body ends
with its ways out, one phone's commands, and the legend of the placeholders they leave
(:func:`ways_out_lines`: ``fleet boot``, ``replay --all``; README: every JUnit failure of a lockout).
``<testsuites>`` and ``<testsuite>`` carry the counts of the cases. Text XML 1.0 cannot carry — C0
controls but TAB, LF and CR (a reason quoting bytes of a hostile file), lone surrogates (a file name of
non-UTF-8 bytes), U+FFFE/U+FFFF — is written as U+FFFD, as :mod:`phoneemu.scenario.reports` does: the
file always parses (the ``--json`` report keeps the exact text). A time that is not a finite number of
seconds >= 0 is 0. The file is written whole or not at all, a case at a time
(:func:`write_cases`: memory holds one case, not 40,000).
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from itertools import chain
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from xml.sax.saxutils import escape, quoteattr

from phoneemu.files import write_output_pieces

if TYPE_CHECKING:
    from phoneemu.phone.ways_out import HeldLists

__all__ = ["Case", "field_lines", "ways_out_lines", "write_cases", "xml_text"]

#: what XML 1.0 forbids even escaped (module rule)
_NOT_XML = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """``text`` with each character XML 1.0 cannot carry replaced by U+FFFD (module rule)."""
    return _NOT_XML.sub("\ufffd", text)


def field_lines(fields: Mapping[str, Any]) -> list[str]:
    """A failure body's lines of ``fields`` (a phone's record as its JSON has it): ``name: value``, each value
    as :func:`_said` writes it (module rules)."""
    return [f"{name}: {_said(value)}" for name, value in fields.items()]


def ways_out_lines(rule: str, kind: str, fill: Mapping[str, str], *, why: Mapping[str, str], otherwise: str,
                   reason_code: str | None = None, held: HeldLists | None = None) -> list[str]:
    """The end of a failure body of a phone locked out by ``rule`` on a file of ``kind`` (or not registered,
    kind ``sip``): its ways out, one phone's commands filled with ``fill`` (``held``: the lists it holds), or
    why it has none, then what each placeholder they leave stands for and why it is left (``why`` by name,
    else ``otherwise``), as the command's terminal says it (:func:`phoneemu.phone.ways_out.way_out_lines`,
    :func:`~phoneemu.phone.ways_out.no_way_out_lines`, :func:`~phoneemu.phone.ways_out.legend_lines`)."""
    from phoneemu.phone.ways_out import legend_lines, no_way_out_lines, phone_placeholders_left, way_out_lines

    left = phone_placeholders_left(rule, kind, fill, reason_code=reason_code, held=held)
    return [*way_out_lines(rule, kind, indent="", fill=fill, reason_code=reason_code, held=held),
            *no_way_out_lines(rule, kind, indent=""), *legend_lines(left, why, otherwise)]


def _said(value: Any) -> str:
    """A field's value in a failure body (module rules): ``yes``/``no``; ``none`` for no value (None, an empty
    list or mapping: was nothing, ``notes: ``); a mapping's items ``name value`` ``, ``-separated; a list's
    items ``; ``-separated (an item a mapping: its items); else as text."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or (isinstance(value, Mapping | list | tuple) and not value):
        return "none"
    if isinstance(value, Mapping):
        return ", ".join(f"{name} {_said(item)}" for name, item in value.items())
    if isinstance(value, list | tuple):
        return "; ".join(_said(item) for item in value)
    return str(value)


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
    ``output``: the suite's own ``<system-out>`` (what holds for every case, said once).

    Streamed (``fleet boot`` of 40,000 phones, ``replay --all`` of 100,000, ``predict --fleet-flash``):
    ``cases`` is taken one at a time (a generator is best), each case's XML appended to a spool — an
    unnamed temporary file (0600) beside ``path``, in the default temporary folder for a FIFO or device —
    while the counts the head carries are taken; then the head, the spool copied a chunk at a time and the
    tail go to ``path``, replaced whole through :class:`~phoneemu.files.AtomicFile` (a FIFO or a device
    such as ``/dev/stdout`` written in place), as :func:`~phoneemu.files.write_output` does: whole or
    absent, ``path`` untouched until the cases are all written. Memory: one case, a chunk, and the names
    seen (the `` #2`` rule). An OSError names ``path``."""
    in_place = path.exists() and not path.is_file()
    where = f" file={_attr(file)}" if file else ""
    suite_out = [f"    <system-out>{escape(xml_text(output))}</system-out>\n"] if output is not None else []
    try:
        with tempfile.TemporaryFile(dir=None if in_place else path.parent, prefix=".phoneemu-junit") as spool:
            counts = f'{_spool_cases(spool, suites, cases)} time="{_seconds(time_s)}"'
            head = (f'<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name={_attr(suites)} {counts}>\n'
                    f"  <testsuite name={_attr(suite)} {counts}{where}>\n")
            tail = "".join([*suite_out, "  </testsuite>\n</testsuites>\n"])
            spool.seek(0)
            write_output_pieces(path, chain([head.encode("utf-8")], iter(partial(spool.read, _CHUNK), b""),
                                            [tail.encode("utf-8")]))
    except OSError as exc:  # the spool's, or a device's (no name): named as the report's
        if exc.filename == str(path):
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None


_CHUNK = 1 << 20  # bytes of the spool copied at a time


def _spool_cases(spool: IO[bytes], suites: str, cases: Iterable[Case]) -> str:
    """Each case's XML line(s) appended to ``spool``, named by the `` #2`` rule; the counts attributes
    (``tests`` ... ``skipped``) of what was written."""
    tests = failures = skipped = errors = 0
    seen: dict[str, int] = {}
    for case in cases:
        tests += 1
        failures += case.failure is not None
        skipped += case.failure is None and case.skipped is not None
        errors += case.failure is None and case.skipped is None and case.error is not None
        n = seen[case.name] = seen.get(case.name, 0) + 1
        spool.write((case.xml(suites, case.name if n == 1 else f"{case.name} #{n}") + "\n").encode("utf-8"))
    return f'tests="{tests}" failures="{failures}" errors="{errors}" skipped="{skipped}"'
