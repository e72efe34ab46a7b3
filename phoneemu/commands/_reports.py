"""A command's reports are this run's or none (ours; ``predict``, ``fleet boot``, ``replay``, as ``run``):
a report naming one of the run's inputs is refused before any work (the command's ``check``), and a run
that ends without writing one — bad input, a refused option, an interrupt, a full disk — removes the
earlier run's file at its path, said on stderr, so that a CI job archiving it does not read yesterday's
report as today's (:func:`phoneemu.files.remove_unwritten`). The command records in
``args.reports_written`` each report option it wrote."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from pathlib import Path

from phoneemu.commands._said import say

__all__ = ["never_stale"]


def never_stale(args: argparse.Namespace, check: Callable[[argparse.Namespace], None],
                run: Callable[[argparse.Namespace], int],
                reports: Iterable[tuple[str, Path | None]]) -> int:
    """``run(args)`` after ``check(args)`` (outside: a report refused is never removed), its reports this
    run's or none (module rules); ``reports``: (option, path) of each."""
    from phoneemu.files import remove_unwritten

    check(args)
    args.reports_written = written = set[str]()
    try:
        return run(args)
    except BaseException:
        for line in remove_unwritten(reports, written):
            say(args, line)
        raise
