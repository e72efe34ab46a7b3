"""A fleet's failures of one kind are one kind whatever block, bytes or seconds each phone reached
(phoneemu.fleet.alike): those numbers are read as ``{n}``, the kind shows the range its phones took;
numbers that tell kinds apart (a TFTP error code, an HTTP status, a rule id, a file name, a server's port)
still split kinds; shards merge to the same grouping.
"""

from __future__ import annotations

from typing import Any

from phoneemu.fleet.alike import KINDS_KEPT, Alike
from phoneemu.fleet.metrics import BootRecord, FleetMetrics

FIELDS = ("rule", "reason")
RULE = "H.3-config-transport-failed"


def _mac(i: int) -> str:
    return f"0A{i:010X}"


def _alike(reasons: list[str], *, start: int = 0) -> Alike:
    a = Alike(FIELDS)
    for i, reason in enumerate(reasons):
        a.add(_mac(start + i), {"rule": RULE, "reason": reason})
    return a


def _reasons(a: Alike) -> list[Any]:
    return [(k["count"], k["reason"]) for k in a.kinds()]


def test_one_failure_at_different_blocks_is_one_kind_with_the_range() -> None:
    stalled = [f"timeout: stalled at block {b} after 5 retries" for b in (12, 7, 19, 7)]
    slow = [f"timeout: TFTP transfer of SEP{_mac(i)}.cnf.xml took longer than 3 s (at block {i + 3})"
            for i in range(4, 9)]
    a = _alike([*stalled, *slow])
    assert _reasons(a) == [
        (5, "timeout: TFTP transfer of SEP{mac}.cnf.xml took longer than 3 s (at block 7-11)"),
        (4, "timeout: stalled at block 7-19 after 5 retries")]
    assert a.other == 0


def test_a_storm_at_a_thousand_blocks_is_one_line_not_other() -> None:
    """1,000 phones cut at 1,000 blocks: one kind (was 50 kinds and 950 "other")."""
    m = FleetMetrics()
    for i in range(1000):
        m.add(BootRecord(mac=_mac(i), outcome="no-config", rule=RULE, latency_s=0.01, end_s=0.01,
                         reason=f"no config could be fetched: timeout: stalled at block {i + 1} after 1 "
                                "retries"))
    s = m.summary()
    assert s["failure_kinds_not_kept"] == 0 and len(s["failure_kinds"]) == 1
    assert s["failure_kinds"][0]["count"] == 1000
    assert s["failure_kinds"][0]["reason"] == \
        "no config could be fetched: timeout: stalled at block 1-1000 after 1 retries"
    lines = m.render().splitlines()
    assert lines[-2].startswith(f"  failed: 1000 phones no-config ({RULE}): no config could be fetched: "
                                "timeout: stalled at block 1-1000 after 1 retries")
    assert not any("more failed otherwise" in line for line in lines)


def test_bytes_seconds_counts_and_a_tftp_reply_port_are_per_phone() -> None:
    cases = {
        "HTTP body": [f"no data for 5 s with the {n}-byte body under way" for n in (4213, 4290, 4250)],
        "head": [f"connection closed before the end of the response head (after {n} bytes of it)"
                 for n in (12, 80, 40)],
        "truncated": [f"body truncated at {n} of {n + 100}" for n in (300, 10, 77)],
        "TLS": [f"127.0.0.1:2445: the server closed the connection during the TLS handshake ({n} bytes from "
                "it)" for n in (0, 517, 90)],
        "CAPF": [f"CAPF closed the connection {t}s into this phone's {k}s key generation"
                 for t, k in (("1.3", 4), ("0.2", 8), ("3.0", 4))],
        "SRTP": [f"{n} SRTP packet(s) came, none authenticated (auth tag): dropped" for n in (3, 50, 9)],
        "SIP": [f"no SIP response within 5s ({n} response(s) of another transaction skipped; {n + 1} more "
                "left unanswered (at most 8))" for n in (1, 4, 2)],
        "TFTP TID": [f"malformed reply at offset 2 from 127.0.0.1:{p}: need 2 bytes for block, got 0"
                     for p in (40000, 61000, 50123)],
    }
    want = {
        "HTTP body": "no data for 5 s with the 4213-4290-byte body under way",
        "head": "connection closed before the end of the response head (after 12-80 bytes of it)",
        "truncated": "body truncated at 10-300 of 110-400",
        "TLS": "127.0.0.1:2445: the server closed the connection during the TLS handshake (0-517 bytes from "
               "it)",
        "CAPF": "CAPF closed the connection 0.2-3.0s into this phone's 4-8s key generation",
        "SRTP": "3-50 SRTP packet(s) came, none authenticated (auth tag): dropped",
        "SIP": "no SIP response within 5s (1-4 response(s) of another transaction skipped; 2-5 more left "
               "unanswered (at most 8))",
        "TFTP TID": "malformed reply at offset 2 from 127.0.0.1:40000-61000: need 2 bytes for block, got 0",
    }
    for name, reasons in cases.items():
        assert _reasons(_alike(reasons)) == [(3, want[name])], name


def test_numbers_that_tell_kinds_apart_still_split_them() -> None:
    """A TFTP error code, an HTTP status, a rule id, a file name or a server's port differ: two kinds each,
    though the blocks the phones reached differ too (one kind each whatever the block)."""
    pairs = [
        ("timeout: stalled at block {b} over TFTP (HTTP 6970 refused: HTTP 404 for /x)",
         "timeout: stalled at block {b} over TFTP (HTTP 6970 error: HTTP 500 for /x)"),
        ("TFTP error 1: 'File not found' after block {b}",
         "TFTP error 2: 'Access violation' after block {b}"),
        ("G.3.5 stalled at block {b}", "G.3.4 stalled at block {b}"),
        ("SIP78xx.14-1-1SR1.loads stalled at block {b}", "SIP78xx.14-2-1SR1.loads stalled at block {b}"),
        ("127.0.0.1:2445: no TVS response within 2s (block {b})",
         "127.0.0.1:2446: no TVS response within 2s (block {b})"),
        ("stalled at block {b} after 1 retries", "no answer after 1 retries (block {b})"),
    ]
    for one, two in pairs:
        reasons = [text.format(b=b) for b in range(1, 7) for text in (one, two)]
        got = _alike(reasons).kinds()
        assert len(got) == 2 and [k["count"] for k in got] == [6, 6], (one, got)
        assert {k["reason"] for k in got} == {one.format(b="1-6"), two.format(b="1-6")}


def test_a_kind_of_one_phone_or_one_value_reads_as_the_phones_text() -> None:
    text = "timeout: TFTP transfer of SEP{mac}.cnf.xml took longer than 0.5 s (at block 3)"
    a = _alike([text.replace("{mac}", _mac(i)) for i in range(4)])
    assert _reasons(a) == [(4, text)]
    one = _alike(["no SIP response within 2.0s (12 bytes of an incomplete message)"])
    assert _reasons(one) == [(1, "no SIP response within 2.0s (12 bytes of an incomplete message)")]


def test_shards_merge_to_the_same_grouping() -> None:
    """Each shard's kinds cross a pipe as their text (ranges in it) and widen when merged: the same kinds
    and counts as one shard seeing every phone, in either order."""
    blocks = [5, 17, 2, 30, 9, 11]
    reasons = [f"timeout: stalled at block {b} after 1 retries" for b in blocks]
    reasons += [f"CAPF closed the connection {t}s into this phone's 4s key generation"
                for t in ("1.5", "0.25")]
    whole = _alike(reasons)
    first, second = _alike(reasons[:3]), _alike(reasons[3:], start=3)
    for parts in ((first, second), (second, first)):
        got = Alike(FIELDS)
        for part in parts:
            got.merge(Alike.from_state(FIELDS, part.to_state()))
        assert _reasons(got) == _reasons(whole) == [
            (6, "timeout: stalled at block 2-30 after 1 retries"),
            (2, "CAPF closed the connection 0.25-1.5s into this phone's 4s key generation")]
        assert got.other == 0
    # shards of metrics too: the summary's kinds after the parent's merge
    shards = []
    for part in range(2):
        m = FleetMetrics()
        for i, b in enumerate(blocks[part * 3:part * 3 + 3]):
            m.add(BootRecord(mac=_mac(10 * part + i), outcome="no-config", rule=RULE, latency_s=0.01,
                             end_s=0.01, reason=f"timeout: stalled at block {b} after 1 retries"))
        shards.append(FleetMetrics.from_state(m.to_state()))
    kinds = FleetMetrics.merged(shards).summary()["failure_kinds"]
    assert [(k["count"], k["reason"]) for k in kinds] == [
        (6, "timeout: stalled at block 2-30 after 1 retries")]


def test_kinds_stay_bounded_with_numbers_masked() -> None:
    """Kinds that differ otherwise are still kept to KINDS_KEPT, the rest counted in "other"."""
    a = _alike([f"TFTP error {i % (KINDS_KEPT + 5)} at block {i}" for i in range(3 * (KINDS_KEPT + 5))])
    assert len(a.kinds()) == KINDS_KEPT and a.other == 3 * 5
    assert all(len(k["reason"]) < 40 for k in a.kinds())
