"""The lab cluster: a CUCM stand-in on loopback (spec §B.5, §B.7, §C, §G, §H.4-§H.6).

* :mod:`phoneemu.lab.pki` — identities (CallManager, ITLRecovery, TVS, CAPF, manufacturing CA,
  image signing), MIC and LSC issuance, seeded deterministic mode.
* :mod:`phoneemu.lab.state` — the persisted state ``DIR/cluster.json``.
* :mod:`phoneemu.lab.cluster` — :class:`~phoneemu.lab.cluster.LabCluster`: served files rebuilt on
  every state change, the admin operations that change trust, the TVS trust database.
* :mod:`phoneemu.lab.servers` — TFTP, HTTP, TVS and CAPF servers over a cluster.

Import the submodules directly (``from phoneemu.lab.cluster import LabCluster``).
"""
