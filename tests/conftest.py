"""Shared fixtures for every test tier.

* ``pki`` (session): a seeded key/certificate factory, the same one that makes tests/vectors/ —
  ``pki.identity(subject, spec="rsa2048", seed=None, serial=None, issuer=None)`` returns an
  ``Identity(key, cert)`` (with ``.signer`` a ``formats.header.FileSigner``); ``pki.lab()`` the
  named lab identities (``itlrecovery``, ``callmanager``, ``tvs``, ``capf``, ``tftp-ec``, ``ca``).
  Keys are memoised per (spec, seed): ask for ``rsa1024`` where the key size does not matter, it
  is several times faster to generate.
* ``vectors`` (session): ``{file name: bytes}`` of tests/vectors/ (the binary vectors only).
* ``make_vectors`` (session): the tests/vectors/make_vectors.py module itself.
* ``cluster``: a private copy of the module's ``template`` lab (``template = helpers.lab_template(...)``),
  so a test may change it freely.
* ``loop``: a fresh event loop, closed after the test.
* ``unasked_tftp_port``: a loopback UDP port bound and never read (a TFTP server that must not be asked).

A run started with SIGINT ignored (a shell's ``cmd &`` without job control) has Python's Ctrl-C handler
put back (:func:`pytest_configure`): the interrupt tests raise a real SIGINT and their subprocesses inherit
the disposition, so they failed (12 of them) where the suite was started so.

After each module's last test the collector runs once and what survives it is frozen (``gc.freeze``,
:func:`pytest_runtest_teardown`): Python's full collections then walk only what the module under way made,
not everything earlier modules keep (module caches, hypothesis's data, session fixtures). They were ~12 % of
a worker's CPU late in a run (a full collection every ~140 tests, each walking the whole heap); cyclic
garbage of a module is still collected, at its end, and a leak it holds (an unclosed transport's
ResourceWarning) is said by that module's last test.

Collection keeps pytest's assertion-rewritten test modules in ``__pycache__`` even where
PYTHONDONTWRITEBYTECODE is set (:func:`pytest_collection`).
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.helpers import copy_cluster

VECTORS_DIR = Path(__file__).resolve().parent / "vectors"


def _load_make_vectors() -> ModuleType:
    name = "phoneemu_test_make_vectors"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, VECTORS_DIR / "make_vectors.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def pytest_configure(config: pytest.Config) -> None:
    """Python's own SIGINT handler where the run was started with SIGINT ignored (module rules)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.hookimpl(wrapper=True)
def pytest_collection() -> Iterator[object]:
    """Rewritten test modules are written to ``__pycache__`` during collection, whatever
    PYTHONDONTWRITEBYTECODE says (put back after): pytest reads a cached one even where that is set,
    but never writes one, so every worker of every run rewrote all ~400 test modules again (~7 s of
    CPU each, half of collection; scripts/test.sh byte-compiles the sources for the same reason)."""
    said = sys.dont_write_bytecode
    sys.dont_write_bytecode = False
    try:
        return (yield)
    finally:
        sys.dont_write_bytecode = said


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """At a module's last test (module docstring), once its module fixtures are finalised (trylast: after
    pytest's own teardown): collect, then freeze what survives."""
    if nextitem is None or getattr(nextitem, "module", None) is not getattr(item, "module", None):
        gc.collect()
        gc.freeze()


@pytest.fixture(scope="session")
def make_vectors() -> ModuleType:
    return _load_make_vectors()


@pytest.fixture(scope="session")
def pki() -> ModuleType:
    """The seeded identity factory (``identity``, ``lab``, ``seeded_key``, ``Identity``)."""
    return _load_make_vectors()


@pytest.fixture(scope="session")
def vectors() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(VECTORS_DIR.iterdir())
            if p.is_file() and p.suffix in (".tlv", ".sgn")}


@pytest.fixture
def cluster(template: Path, tmp_path: Path) -> Any:
    """A private copy of the module's ``template`` lab cluster (:func:`tests.helpers.lab_template`)."""
    return copy_cluster(template, tmp_path)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh event loop, closed after the test."""
    lp = asyncio.new_event_loop()
    try:
        yield lp
    finally:
        lp.close()


@pytest.fixture
def unasked_tftp_port() -> Iterator[int]:
    """A loopback UDP port bound and never read: TFTP must not be asked (HTTP answers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
