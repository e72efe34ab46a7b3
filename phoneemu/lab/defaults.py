"""The lab cluster's default ports and the names two of its operations take, as ``lab``'s options show them.

Light on purpose: it imports nothing, so that building the command line (every ``phoneemu`` process,
``--help`` included) does not import the cluster, its PKI and cryptography to show a default or a
choice (start-up time, ours). :data:`DEFAULT_PORTS` is re-exported by :mod:`phoneemu.lab.state`,
:data:`SECURE_URL_SCHEMES` by :mod:`phoneemu.lab.cluster`, whose ``EXCHANGE_STORES`` (the roles of each
store) is keyed by :data:`EXCHANGE_STORE_NAMES` (tests/unit/test_cli_startup.py checks they agree).
"""

from __future__ import annotations

__all__ = ["DEFAULT_PORTS", "EXCHANGE_STORE_NAMES", "HTTPS_CONFIG_PORT", "SECURE_URL_SCHEMES"]

#: Real CUCM ports (spec §H.1); the server launcher records the ports it actually listens on.
DEFAULT_PORTS = {"tftp": 69, "http": 6970, "tvs": 2445, "capf": 3804}
#: the HTTPS configuration download's port (spec §H.1), served only for a lab with the ``tftp-https``
#: identity (``lab init --https-key``): not in :data:`DEFAULT_PORTS`, a lab without it records none, and a
#: lab's ``ports`` without it (older labs) mean this one
HTTPS_CONFIG_PORT = 6971
#: ``secure-urls`` values: the scheme of the secure URLs configs name (:meth:`LabCluster.set_secure_urls`)
SECURE_URL_SCHEMES = ("https", "http")
#: ``exchange --store`` values, the keys of :data:`phoneemu.lab.cluster.EXCHANGE_STORES` in its order
EXCHANGE_STORE_NAMES = ("both", "callmanager-trust")
