"""One line on what a lab cluster serves now, as every ``phoneemu lab`` operation ends and as ``lab serve``
says when it picks up a change another process saved:
``generation 3; ITL md5 65084480...  sha1 3f2a...; ITL signed by ITLRECOVERY_lab-pub; CTL signed by ...``
(both checksums, as ``lab show`` and CUCM's ``show itl`` give them: a phone shows one by model, spec §G.1 —
a cp-8861 the SHA-1, a cp-7962 the MD5; ``phone show`` names which)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Literal

from phoneemu.errors import PhoneEmuError

if TYPE_CHECKING:
    from phoneemu.lab.cluster import LabCluster


def trust_line(cluster: LabCluster) -> str:
    """Generation, the served ITL's md5 and sha1 (module doc: was md5 only, which a cp-8861's SHA-1 could not
    be compared with) and who signs the served ITL and CTL (spec §G.7: after ``itl-reset`` the CallManager);
    the rollback's empty ITL is said."""
    itl = cluster.get("ITLFile.tlv") or b""
    md5 = hashlib.md5(itl, usedforsecurity=False).hexdigest()
    sha1 = hashlib.sha1(itl, usedforsecurity=False).hexdigest()
    return (f"generation {cluster.generation}; ITL md5 {md5}  sha1 {sha1}"
            + "".join(f"; {kind} signed by {signer_cn(cluster, kind)}" for kind in ("ITL", "CTL")
                      if cluster.get(f"{kind}File.tlv") is not None)
            + ("; rollback: the empty ITL is served" if cluster.state.rollback else ""))


def signer_cn(cluster: LabCluster, kind: Literal["CTL", "ITL"]) -> str:
    """The CN of the served CTL/ITL's signer; a file that does not parse is ``? (why)``."""
    from phoneemu.crypto.certs import dn_common_name
    from phoneemu.formats import trustlist

    data = cluster.get(f"{kind}File.tlv")
    try:
        name = trustlist.parse(data or b"", kind=kind, limit=1 << 24).header.signer.name
    except PhoneEmuError as exc:
        return f"? ({exc})"
    return dn_common_name(name)
