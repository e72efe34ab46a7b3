"""SANS-I/O file formats (design §2): one module per format, ``parse()`` and ``build()`` side by side.

``header`` (the common signed-file header, spec §A), ``trustlist`` (CTL/ITL, spec §B), ``signed``
(.sgn, spec §C.1), ``encrypted`` (.enc.sgn, spec §C.3-C.5), ``firmware`` (spec §D), ``config``
(device XML, spec §C.4/§H.5) and ``detect`` (which of them a byte string is). Submodules are
imported explicitly (``from phoneemu.formats import trustlist``); nothing is imported here.
"""

from __future__ import annotations

__all__ = ["config", "detect", "encrypted", "firmware", "header", "signed", "trustlist"]
