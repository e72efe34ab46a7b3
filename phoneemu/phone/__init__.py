"""The phone's core: model profiles, the trust store and its flash, and the decision rules of spec §G.

Layering (what later layers build on):

* :mod:`.profile` — :class:`PhoneProfile` per model (limits, request order, habits).
* :mod:`.store` — :class:`TrustStore` (installed CTL/ITL/config, TVS cache, credentials);
  changes only through :meth:`TrustStore.apply` with an accepting :class:`Decision`.
* :mod:`.flash` — :class:`Flash`: crash-safe persistence of a store.
* :mod:`.rules` — sans-I/O decision functions, one per §G rule (``decide_trust_list``,
  ``decide_config``, ``decide_short_config``, ``decide_firmware``, ...).
* :mod:`.events` / :mod:`.status` — decisions, the bounded event log, status-message texts.

The boot sequence and orchestrator (``boot.py``, ``phone.py``) fetch files and talk to TVS/CAPF,
call the rules, ask TVS when a decision says ``needs_tvs``, then ``store.apply(decision)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from phoneemu.lazy_exports import lazy_exports

if TYPE_CHECKING:  # imported when first used (phoneemu.lazy_exports: start-up time)
    from phoneemu.phone.events import Decision, Event, EventLog, QueryKey
    from phoneemu.phone.flash import Flash
    from phoneemu.phone.profile import PROFILES, PhoneProfile, get_profile, profile_from_dict
    from phoneemu.phone.store import (
        SHARED_CACHE,
        AcceptedConfig,
        AcceptedFirmware,
        Credential,
        InternCache,
        TrustStore,
        TvsAnswer,
        TvsResult,
        TvsStatus,
    )

__all__ = [
    "PROFILES",
    "SHARED_CACHE",
    "AcceptedConfig",
    "AcceptedFirmware",
    "Credential",
    "Decision",
    "Event",
    "EventLog",
    "Flash",
    "InternCache",
    "PhoneProfile",
    "QueryKey",
    "TrustStore",
    "TvsAnswer",
    "TvsResult",
    "TvsStatus",
    "get_profile",
    "profile_from_dict",
]

_HOME = {
    **dict.fromkeys(("Decision", "Event", "EventLog", "QueryKey"), "events"),
    "Flash": "flash",
    **dict.fromkeys(("PROFILES", "PhoneProfile", "get_profile", "profile_from_dict"), "profile"),
    **dict.fromkeys(("SHARED_CACHE", "AcceptedConfig", "AcceptedFirmware", "Credential", "InternCache",
                     "TrustStore", "TvsAnswer", "TvsResult", "TvsStatus"), "store"),
}
if not TYPE_CHECKING:  # mypy sees the imports above, and no __getattr__ making every other name Any
    __getattr__, __dir__ = lazy_exports(__name__, _HOME)
