"""A package's names imported when first used (PEP 562), not when the package is.

Rule: ``phoneemu.phone``, ``.protocols``, ``.net`` and ``.fleet`` name their submodules' main classes and
functions (``from phoneemu.fleet import run_fleet``), yet importing one of their submodules imports the
package first: an ``__init__`` importing them all made ``from phoneemu.net.capture import read_pcap`` pay for
HTTP, TLS and TFTP, and every ``phoneemu`` command for what it never runs (start-up time, ours). Such a
package's ``__getattr__`` is :func:`lazy_exports`; its ``TYPE_CHECKING`` imports show the same names to
mypy, whose view of the package stays exact (an unknown name is an error, not ``Any``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(package: str, home: Mapping[str, str]) -> Callable[[str], object]:
    """The module ``__getattr__`` of ``package``: a name of ``home`` is taken from the submodule ``home``
    gives it (a name given itself is that submodule), imported on first use and kept in the package; any
    other name is an AttributeError, as without it (so ``from package import submodule`` still imports
    a submodule not listed)."""
    namespace = sys.modules[package].__dict__

    def package_attribute(name: str) -> object:
        submodule = home.get(name)
        if submodule is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(f"{package}.{submodule}")
        value = module if submodule == name else getattr(module, name)
        namespace[name] = value
        return value

    return package_attribute
