"""Review of what an in-process command leaves behind (the CLI tests run ``phoneemu`` in the test's process):
a phone's TLS context that writes a key log holds that file open, so it is shared while something uses it
and not kept for the process (:func:`phoneemu.net.tls.phone_client_context`)."""

from __future__ import annotations

import gc
import os
import ssl
import weakref
from pathlib import Path
from types import ModuleType

import pytest

from phoneemu.net.tls import phone_client_context, server_context
from tests.helpers import MemoryTlsPair

VERSIONS = ("1.2",)


def _handshake(client: ssl.SSLContext, server: ssl.SSLContext) -> None:
    """A TLS handshake of ``client`` with ``server`` in memory (no socket), to its end; nothing kept."""
    MemoryTlsPair(client, server).handshake()


def _open_in_this_process(path: Path) -> int:
    """How many descriptors of this process name ``path`` (removed or not)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # (the listing's own descriptor, closed)
            continue
        count += target.removesuffix(" (deleted)") == str(path)
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads the process's descriptors in /proc")
@pytest.mark.parametrize("with_identity", [False, True])
def test_a_key_log_context_is_shared_while_used_and_not_kept_after(pki: ModuleType, tmp_path: Path,
                                                                   with_identity: bool) -> None:
    """Was: every phone context that writes a key log kept in a module dict for the process's life, its key
    log open (OpenSSL's): an in-process ``boot --keylog`` (the CLI tests) left its file open after it
    returned, a ``run --capture`` of N scenarios in one process held N, and a key log removed and made again
    at a path used before got none of the later sessions' lines (they went to the removed file). Now the
    context is shared while held and let go after its last user: its file is closed, and the next session
    writes the key log at the path as it is then."""
    server_id = pki.identity("CN=rev2-s38-tvs", spec="rsa1024", seed="rev2-s38")
    phone_id = pki.identity("CN=SEP0A00000000C1", spec="rsa1024", seed="rev2-s38-mic")
    server = server_context(server_id.cert, server_id.key, min_version="1.2", max_version="1.2",
                            ciphers="DEFAULT:@SECLEVEL=0")  # (a 1024-bit key: as the lab's TVS takes one)
    log = tmp_path / "tls.keys"
    identity = (phone_id.cert, phone_id.key) if with_identity else None

    ctx = phone_client_context(VERSIONS, log, identity=identity)
    assert phone_client_context(VERSIONS, log, identity=identity) is ctx  # shared while held
    _handshake(ctx, server)
    assert "CLIENT_RANDOM " in log.read_text() and _open_in_this_process(log) == 1
    held = weakref.ref(ctx)
    del ctx
    gc.collect()
    assert held() is None and _open_in_this_process(log) == 0

    log.unlink()  # the user's key log removed; the next run of the same path makes it again
    _handshake(phone_client_context(VERSIONS, log, identity=identity), server)
    assert "CLIENT_RANDOM " in log.read_text()
    assert os.stat(log).st_mode & 0o777 == 0o600


def test_a_context_without_a_key_log_is_still_kept_for_the_process() -> None:
    """Contexts that write no key log hold no file: still one per versions for the whole process (a fleet's
    thousands of phones build one)."""
    ctx = phone_client_context(VERSIONS)
    held = weakref.ref(ctx)
    del ctx
    gc.collect()
    assert held() is not None and phone_client_context(VERSIONS) is held()
