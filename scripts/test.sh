#!/usr/bin/env bash
# The README's test command: install with the [test] extra, then ruff, mypy --strict, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
# Byte-compile our sources once: the tests start hundreds of phoneemu processes (CLI runs, fleet shards,
# scenario workers), and where PYTHONDONTWRITEBYTECODE is set each of them compiled every module again
# (~0.35 s of CPU a process). Python still reads these files, and ignores one whose source is newer.
python3 -m compileall -q phoneemu tests bench >/dev/null
python3 -m ruff check phoneemu tests bench
python3 -m mypy
# worksteal: a worker that runs out of tests takes some of the other's (with load balancing alone one worker
# sat idle for the last 17 s of a run)
python3 -m pytest -n 2 --dist worksteal -q "$@"
