#!/usr/bin/env bash
# The README's test command: install with the [test] extra, then ruff, mypy --strict, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
python3 -m ruff check phoneemu tests bench
python3 -m mypy
python3 -m pytest -n 2 -q "$@"
