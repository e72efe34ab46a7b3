"""Collection keeps pytest's assertion-rewritten test modules in ``__pycache__`` even where
PYTHONDONTWRITEBYTECODE is set, and puts the interpreter's setting back after (tests/conftest.py
``pytest_collection``). Was: pytest reads such a cache but never writes it under that setting, so each
worker of each run rewrote every test module again, half of the suite's collection time."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


def test_this_module_was_cached_rewritten(pytestconfig: pytest.Config) -> None:
    from _pytest.assertion.rewrite import PYC_TAIL

    if pytestconfig.getoption("assertmode") != "rewrite":
        pytest.skip("assertions are not rewritten (--assert=plain)")
    here = Path(__file__)
    if not os.access(here.parent, os.W_OK):
        pytest.skip(f"{here.parent} is read-only: nothing can be cached")
    cached = here.parent / "__pycache__" / f"{here.stem}{PYC_TAIL}"
    assert cached.is_file(), f"{cached} not written (PYTHONDONTWRITEBYTECODE={sys.flags.dont_write_bytecode})"


def test_the_interpreters_setting_is_put_back_after_collection() -> None:
    assert sys.dont_write_bytecode == bool(sys.flags.dont_write_bytecode)
