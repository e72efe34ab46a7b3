"""``replay --all`` keeps the HTTPS config answers of a capture (spec §H.1) within ``--max-memory``
(:mod:`phoneemu.scenario.replay_fleet`, "TVS"; :mod:`phoneemu.scenario.replay_https_config`): an exchange the
allowance refuses holds none of its answer's bytes — was: the answer was kept first (up to the collector's
own 64 MiB) and only then refused, its bytes held to the end of the scan though counted nowhere.
"""

from __future__ import annotations

from phoneemu.net.tls_decrypt import DecryptedTls, KeyLog
from phoneemu.scenario.replay_fleet import EXCHANGE_COST, _Allowance, _FleetTvs

ANSWER = 200_000  # bytes of each (distinct) captured answer


def _exchange(fleet: _FleetTvs, i: int) -> None:
    """Phone ``i``'s HTTPS config connection, decrypted: its GET and a distinct 200 answer."""
    mac = f"0A00000{i:05X}"
    body = bytes([i % 251]) * ANSWER
    plain = DecryptedTls(client_data=f"GET /SEP{mac}.cnf.xml.sgn HTTP/1.1\r\nHost: tftp\r\n\r\n".encode(),
                         server_data=b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
                         description="TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256", server_close_notify=True)
    assert fleet.https.connection(client=("10.1.0.9", 40000 + i), server=("10.1.0.2", 6971),
                                  start=float(i), order=i, plain=plain, client_stream=b"", server_stream=b"",
                                  secrets=KeyLog())


def test_an_exchange_the_allowance_refuses_holds_none_of_its_answer() -> None:
    allowance = _Allowance(2 * (3 * (EXCHANGE_COST + ANSWER + 64)))  # half of it: three exchanges' worth
    warned: list[str] = []
    fleet = _FleetTvs(KeyLog(), allowance, warned.append)
    for i in range(20):
        _exchange(fleet, i)
    kept = fleet.https.result().exchanges
    assert len(kept) == 3 and fleet.https.unlisted == 17 and len(warned) == 1
    assert "--max-memory" in warned[0]
    held = {id(b): len(b) for b in fleet.https._bytes.values()}
    assert sum(held.values()) <= allowance.limit  # was: all 20 answers held, 4 MB against a 600 KB half
    assert set(held) == {id(ex.response) for ex in kept}
