"""A package's names imported when first used (PEP 562), not when the package is.

Rule: ``phoneemu.phone``, ``.protocols``, ``.net`` and ``.fleet`` name their submodules' main classes and
functions (``from phoneemu.fleet import run_fleet``), yet importing one of their submodules imports the
package first: an ``__init__`` importing them all made ``from phoneemu.net.capture import read_pcap`` pay for
HTTP, TLS and TFTP, and every ``phoneemu`` command for what it never runs (start-up time, ours). Such a
package's ``__getattr__`` and ``__dir__`` are made by :func:`lazy_exports`; its ``TYPE_CHECKING`` imports
show the same names to mypy, whose view of the package stays exact (an unknown name is an error, not
``Any``). The package looks as it did when its ``__init__`` imported them all: ``dir()`` (``help()``, a
REPL's completion) lists its names before their first use, and a submodule that fails to import is an
ImportError saying why, whatever it raised.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(package: str, home: Mapping[str, str]) \
        -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package``.

    ``__getattr__``: a name of ``home`` is taken from the submodule ``home`` gives it (a name given itself
    is that submodule), imported on first use and kept in the package; any other name is an
    AttributeError, as without it (so ``from package import submodule`` still imports a submodule not
    listed). An AttributeError raised while that submodule is imported becomes an ImportError naming it:
    ``from package import name`` and ``hasattr`` take an AttributeError for "no such name", and showed
    ``cannot import name`` (or False) without the cause. ``__dir__``: the package's names, those of
    ``home`` among them before their first use."""
    namespace = sys.modules[package].__dict__

    def package_attribute(name: str) -> object:
        submodule = home.get(name)
        if submodule is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = _submodule(f"{package}.{submodule}", name)
        value = module if submodule == name else getattr(module, name)
        namespace[name] = value
        return value

    def package_names() -> list[str]:
        return sorted({*namespace, *home})

    return package_attribute, package_names


def _submodule(qualified: str, name: str) -> object:
    """``qualified`` imported for ``name``; an AttributeError its import raised, as an ImportError."""
    try:
        return importlib.import_module(qualified)
    except AttributeError as exc:
        raise ImportError(f"cannot import {name!r}: importing {qualified} failed: {exc}",
                          name=qualified) from exc
