"""The lab's HTTPS configuration download (``https-config``, TCP 6971, spec §H.1): what a request gets.

Rules:

* CUCM serves device configs over HTTPS on TCP 6971 to phones whose ITL carries signer version 1.1 (spec
  §A tag 28); the server presents the EC certificate the ITL lists with the TFTP role (§B.3, §G.5). The
  lab runs it for a lab made with ``lab init --https-key`` (its ``tftp-https`` identity), beside the
  others (:class:`phoneemu.lab.servers.LabServers`, which presents the identity and reads the requests
  with :class:`phoneemu.lab.https_service.HttpsAppHandler`: one request per connection, the head read and
  checked as the directory's).
* The phone asks for ``SEP<MAC>.cnf.xml.sgn`` and expects the **unsigned** file on this port (§H.1):
  ``GET /SEP<MAC>.cnf.xml.sgn`` (also ``/SEP<MAC>.cnf.xml``; a query is ignored) answers 200,
  ``Content-Type: text/xml``, with exactly the bytes the lab serves as ``SEP<MAC>.cnf.xml`` for that
  device over TFTP and HTTP 6970 (the same in-memory files, :meth:`LabCluster.get`: reloads and new
  generations apply); ``HEAD`` the same head without the body. The MAC is 12 upper-case hex digits and
  the name is matched as written, case included, as the TFTP server matches names.
* **Our convention** (the spec is silent): a phone whose config is encrypted gets what TFTP serves as its
  ``SEP<MAC>.cnf.xml``, the short stub (spec §C.4), never its full config: no secret of an encrypted
  config leaves over a connection that did not authenticate the phone (no client certificate is asked
  for); the phone then fetches its ``.enc.sgn`` as usual. A symmetric-key phone has no ``.cnf.xml``
  (§C.5): 404.
* Any other name — trust lists, ``.enc.sgn``, ``XmlDefault.cnf.xml``, a device the lab does not know —
  404; so does a target that is not one of those two names as written: ``..``, a backslash, ``%2e`` or
  any other percent-encoding is never decoded (ours: phones ask for the plain name) and reaches nothing.
* A name the lab's ``fail`` patterns match (the one asked for, or ``SEP<MAC>.cnf.xml`` served for it)
  answers 500, as the HTTP port does (:meth:`LabServers.set_network`, ours).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from phoneemu.errors import TransportError

__all__ = ["CONTENT_TYPE", "HttpsConfigFiles", "served_config_name"]

_log = logging.getLogger("phoneemu.lab.https_config")

#: a 200's Content-Type: the config XML as served (its own declaration names its encoding)
CONTENT_TYPE = "text/xml"
_CONFIG_TARGET = re.compile(r"/(SEP[0-9A-F]{12}\.cnf\.xml)(?:\.sgn)?")


def served_config_name(target: str) -> str | None:
    """``SEP<MAC>.cnf.xml`` for a request-target ``/SEP<MAC>.cnf.xml.sgn`` or ``/SEP<MAC>.cnf.xml`` (any
    query), None for any other (module rules)."""
    found = _CONFIG_TARGET.fullmatch(target.split("?", 1)[0])
    return found[1] if found is not None else None


class HttpsConfigFiles:
    """The ``answer`` of the 6971 server (:class:`phoneemu.lab.https_service.HttpsAppHandler`): a
    request-target's status and body (module rules). ``served_file(name)`` is the lab's served file (None:
    none), raising :class:`TransportError` for a name made to fail; ``fails(name)`` says whether the lab's
    ``fail`` patterns match ``name``."""

    def __init__(self, served_file: Callable[[str], bytes | None], fails: Callable[[str], bool]) -> None:
        self.served_file = served_file
        self.fails = fails

    def __call__(self, target: str) -> tuple[int, bytes]:
        name = served_config_name(target)
        if name is None:
            return 404, b""
        asked = target.split("?", 1)[0][1:]
        if self.fails(asked):
            return 500, b""
        try:
            body = self.served_file(name)
        except TransportError as exc:  # the lab's network makes the served name fail
            _log.info("https-config: %s", exc.message)
            return 500, b""
        return (404, b"") if body is None else (200, body)
