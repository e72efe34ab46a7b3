"""One line on what a lab cluster serves now, as every ``phoneemu lab`` operation ends and as ``lab serve``
says when it picks up a change another process saved:
``generation 3; ITL md5 65084480...; ITL signed by ITLRECOVERY_lab-pub; CTL signed by ...``."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Literal

from phoneemu.errors import PhoneEmuError

if TYPE_CHECKING:
    from phoneemu.lab.cluster import LabCluster


def trust_line(cluster: LabCluster) -> str:
    """Generation, the served ITL's md5 and who signs the served ITL and CTL (spec §G.7: after
    ``itl-reset`` the CallManager); the rollback's empty ITL is said."""
    itl_md5 = hashlib.md5(cluster.get("ITLFile.tlv") or b"", usedforsecurity=False).hexdigest()
    return (f"generation {cluster.generation}; ITL md5 {itl_md5}"
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
