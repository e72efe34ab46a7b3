"""``phoneemu tvs`` (red team R14) against a TVS over loopback TLS whose names carry escape sequences,
which repeats its roles and sends TTLs a phone does not keep as they are (spec §E.4, §H.2).

The text output escapes what the file and the server sent (the signer's names, the certificate the server
presents and the one it returns): a crafted ITL or a hostile TVS does not reach the user's terminal. Each
role is said once (a phone keeps the set), an unknown one ``Unknown (6)``; a TTL of 0 or above 30 days is
said with what a phone does with it."""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.crypto import certs
from phoneemu.net.tls import server_context
from phoneemu.protocols import tvs
from tests.signer_helpers import self_signed
from tests.tls_server_helpers import threaded_tls_servers

SIGNER = self_signed("CN=signer\x1b]2\x07\u202e;O=r14", seed="r14-tvs-signer", serial=41, spec="ec-p256")
SERVER = self_signed("CN=tvs\x1b[2J\u009b;O=r14", seed="r14-tvs-server", serial=42, spec="ec-p256")
CONTROLS = ("\x1b", "\x07", "\u202e", "\u009b")


@pytest.fixture
def answering() -> Iterator[Callable[[int], str]]:
    """``start(ttl) -> HOST:PORT``: a TVS presenting :data:`SERVER`'s certificate and answering each
    request valid, returning :data:`SIGNER`'s certificate, roles SAST, SAST, 6, 6 and ``ttl``."""
    ctx = server_context(SERVER[1], SERVER[0])

    def exchange(tls: ssl.SSLSocket, ttl: int) -> None:
        decoder = tvs.FrameDecoder()
        for _ in range(64):  # one request, at most 64 reads
            data = tls.recv(65536)
            requests = decoder.feed(data) if data else []
            if not data or requests:
                break
        if requests:
            tls.sendall(tvs.encode(tvs.response(requests[0], status=0, roles=[0, 0, 6, 6], ttl=ttl,
                                                certificate=certs.cert_der(SIGNER[1]))))

    with threaded_tls_servers(ctx, exchange, read_timeout=5) as start:
        yield start


def test_names_from_the_file_and_the_server_are_escaped(answering: Callable[[int], str], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Was each name as it was: ``ESC]2 BEL`` retitled the terminal, ``ESC[2J`` cleared it, U+202E turned
    the line around — one server or several (the summary repeats the server's verdict)."""
    pem = tmp_path / "signer.pem"
    pem.write_bytes(certs.cert_pem(SIGNER[1]))
    one, other = answering(86400), answering(86400)
    for servers in ([one], [one, other]):
        assert main(["tvs", *servers, str(pem), "--timeout", "10"]) == 0
        out = capsys.readouterr().out
        assert not [c for c in CONTROLS if c in out], out
        assert "  subject CN=signer\\x1b]2\\x07\\u202e;O=r14" in out, out
        assert "presents CN=tvs\\x1b[2J\\u009b;O=r14 (SHA-1 " in out, out
        assert "returns CN=signer\\x1b]2\\x07\\u202e;O=r14" in out, out
    assert main(["tvs", one, str(pem), "--timeout", "10", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)  # JSON holds the names as they are (escaped by JSON)
    assert doc["subject"] == "CN=signer\x1b]2\x07\u202e;O=r14"
    assert doc["server_certificate"]["subject"] == "CN=tvs\x1b[2J\u009b;O=r14"


def test_roles_once_and_ttls_a_phone_does_not_keep_as_sent(answering: Callable[[int], str], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Was ``roles System Administrator Security Token (0), System Administrator Security Token (0),
    Unknown (6) (6), Unknown (6) (6), TTL 0s`` (and ``TTL 4294967295s``): a phone keeps the roles as a set,
    does not keep an answer of TTL 0 and keeps one at most 30 days (``TvsAnswer.from_reply``,
    ``TrustStore.cache_tvs``)."""
    pem = tmp_path / "signer.pem"
    pem.write_bytes(certs.cert_pem(SIGNER[1]))
    for ttl, said in ((0, "TTL 0s (a phone does not keep the answer: it asks again for the next file)"),
                      (0xFFFFFFFF, "TTL 4294967295s (a phone keeps it 2592000s at most, spec §H.2)"),
                      (2_592_000, "TTL 2592000s, returns")):
        server = answering(ttl)
        assert main(["tvs", server, str(pem), "--timeout", "10"]) == 0
        out = capsys.readouterr().out
        roles = "roles System Administrator Security Token (0), Unknown (6)"
        assert f"answer  valid: {roles}, {said}" in out, out
        assert main(["tvs", server, str(pem), "--timeout", "10", "--json"]) == 0
        answer = json.loads(capsys.readouterr().out)["answer"]
        assert answer["roles"] == ["System Administrator Security Token (0)", "Unknown (6)"]
        assert answer["ttl"] == ttl  # as sent
