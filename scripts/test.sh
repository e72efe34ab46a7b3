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
# 3 workers on the 2 cores: a third of a worker's time is spent waiting (timers, subprocesses, sockets), and
# a third worker fills it (measured on 2 cores: -n 2 4 min 27 s, 66 % CPU; -n 3 3 min 35 s, 85 % CPU)
python3 -m pytest -n 3 --dist worksteal -q "$@"
