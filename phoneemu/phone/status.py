"""Phone status-message texts relevant to trust (spec §H.3, 8800-series list; §G.2).

The phone's Status Messages screen keeps the last 30 messages (spec §H.2); :mod:`events`
keeps that bound. Texts are Cisco's; the ``<name>`` placeholders are filled by helpers.
"""

from __future__ import annotations

__all__ = [
    "CERT_KEY_NOT_FIPS",
    "CTL_AND_ITL_INSTALLED",
    "CTL_INSTALLED",
    "CTL_UPDATE_FAILED",
    "ERASING_CTL_ITL",
    "ITL_INSTALLED",
    "NO_TRUST_LIST",
    "STATUS_MESSAGES_KEPT",
    "TFTP_ACCESS_ERROR",
    "TFTP_ERROR",
    "TFTP_TIMEOUT",
    "TRUST_LIST_UPDATED",
    "TRUST_LIST_UPDATE_FAILED",
    "cfg_file_not_found",
    "file_not_found",
    "installed_message",
]

#: The phone keeps the last 30 status messages (spec §H.2).
STATUS_MESSAGES_KEPT = 30

ITL_INSTALLED = "ITL installed"
CTL_INSTALLED = "CTL installed"
CTL_AND_ITL_INSTALLED = "CTL and ITL installed"
TRUST_LIST_UPDATED = "Trust List updated"
TRUST_LIST_UPDATE_FAILED = "Trust List update failed"
CTL_UPDATE_FAILED = "CTL update failed"
NO_TRUST_LIST = "No Trust List installed"
ERASING_CTL_ITL = "Erasing CTL and ITL files"
TFTP_TIMEOUT = "TFTP timeout"
TFTP_ERROR = "TFTP error"
TFTP_ACCESS_ERROR = "TFTP access error"
CERT_KEY_NOT_FIPS = "Phone failed to register. Cert key size is not FIPS compliant."


def file_not_found(name: str) -> str:
    """``File Not Found <CTLFile.tlv>`` — normal for every trust file on non-secure clusters."""
    return f"File Not Found <{name}>"


def cfg_file_not_found(name: str) -> str:
    """``File not found <Cfg File>`` — no device config and no default config."""
    return f"File not found <{name}>"


def installed_message(*, ctl: bool, itl: bool) -> str:
    """First-install message for the lists now installed (spec §G.2, §H.3)."""
    if ctl and itl:
        return CTL_AND_ITL_INSTALLED
    if ctl:
        return CTL_INSTALLED
    if itl:
        return ITL_INSTALLED
    return NO_TRUST_LIST
