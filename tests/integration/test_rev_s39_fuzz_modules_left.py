"""A fuzz test that imports a user's parser in this process leaves no module behind for the next test of the
same worker (review s39). Was: ``test_fuzz_user_parser.py``'s ``parser_dir`` left ``myparser`` imported (the
reject-exc test fuzzes in process since 7f44886), and ``test_fuzz_regenerate.py``'s walk-through, run next
by the same worker, fuzzed that module — ``ParseError`` findings beside its ``KeyError``: "too many values
to unpack" (order dependence: xdist may hand a worker these two in this order)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IN_ORDER = ["tests/integration/test_fuzz_user_parser.py::test_reject_exc_makes_only_other_exceptions_crashes",
            "tests/integration/test_fuzz_regenerate.py::test_regenerate_writes_into_the_regenerated_folder_itself"]


def test_a_user_parser_fuzzed_in_process_is_not_the_next_tests(tmp_path: Path) -> None:
    """The two tests in this order in one interpreter (no xdist, no reordering), each as it is."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:randomly",
                           "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "base"), *IN_ORDER],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout, done.stdout[-3000:]
