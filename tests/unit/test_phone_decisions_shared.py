"""Issue #6: the phone's per-boot work a fleet shares between phones (phone.rules memos, the static-file
parse shared by bytes, events built when read) gives exactly what the unshared work gave."""

from __future__ import annotations

import pytest

from phoneemu.errors import VerifyReason
from phoneemu.formats import signed
from phoneemu.formats.trustlist import Role, TrustList
from phoneemu.phone import rules
from phoneemu.phone.events import Decision, Event, EventLog
from phoneemu.phone.store import TrustStore
from tests.unit.test_rules import NOW, P8861, ident, itl_a, new_store, tl, with_itl_and_config


def _static(name: str) -> bytes:
    return signed.build(body=b"<dialRules/>", filename=name, signer=ident("cm-a").signer, timestamp=NOW,
                        hash_alg=1)


def test_static_file_parsed_once_for_every_phone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Phones fetching the same static file bytes share one parse (each a new bytes object, as off the
    wire); each phone's decision is the one an unshared parse gives, and bytes that do not parse are
    refused every time (nothing kept)."""
    name = "AppDialRules.xml.sgn"
    data = _static(name)
    parsed: list[bytes] = []
    real = signed.parse

    def counting(raw: bytes, **kw: object) -> signed.SignedFile:
        parsed.append(raw)
        return real(raw, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(signed, "parse", counting)
    decisions = [rules.decide_static_file(with_itl_and_config(), name, bytes(bytearray(data)), profile=P8861,
                                          now=NOW) for _ in range(3)]
    assert [d.rule for d in decisions] == ["G.4-signed-by-itl-tftp"] * 3
    assert decisions[0] == decisions[1] == decisions[2]
    assert parsed.count(data) == 1
    for _ in range(2):
        bad = rules.decide_static_file(with_itl_and_config(), name, b"\x01\x02garbage", profile=P8861,
                                       now=NOW)
        assert bad.rule == "G.4-malformed" and bad.reason_code == VerifyReason.OTHER
    assert parsed.count(b"\x01\x02garbage") == 2


def test_trust_list_records_scanned_once_per_installed_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """A second phone deciding the same update against the same (shared) installed ITL does not scan its
    records again for the signer (nor for its TVS record); the decision is the same."""
    rec = ident("recovery-a")
    update = tl("ITL", rec, [rec.record(Role.SAST), ident("cm-a").record(Role.CCM_TFTP),
                             ident("tvs-a").record(Role.TVS)], ts=NOW + 5)
    first = with_itl_and_config()
    second = TrustStore(profile=P8861, intern=first.intern)  # phones of a process share the intern cache
    second.restore(ctl=None, itl=first.itl, config=first.config, ctl_rule=None, itl_rule=first.itl_rule,
                   config_rule=first.config_rule)
    assert second.itl is first.itl
    read: list[int] = []
    real = TrustList.record

    def counting(self: TrustList, i: int) -> object:
        if self is first.itl:
            read.append(i)
        return real(self, i)

    monkeypatch.setattr(TrustList, "record", counting)
    d1 = rules.decide_trust_list(first, update, kind="ITL", profile=P8861, now=NOW)
    scanned = len(read)
    d2 = rules.decide_trust_list(second, update, kind="ITL", profile=P8861, now=NOW)
    assert d1.rule == d2.rule == "G.3.3-signed-by-itl-sast" and d1 == d2
    assert scanned > 0 and len(read) == scanned
    assert rules.tvs_usable(first, P8861)
    before = len(read)
    assert rules.tvs_usable(second, P8861)
    assert len(read) == before


def test_memo_answers_follow_the_inputs() -> None:
    """The memos never carry an answer over to other inputs: another list, another time (a signer valid at
    one second and expired the next), another requested name."""
    s = with_itl_and_config()
    assert s.itl is not None
    rec = ident("recovery-a")
    update = tl("ITL", rec, [rec.record(Role.SAST)], ts=NOW + 5)
    ok = rules.decide_trust_list(s, update, kind="ITL", profile=P8861, now=NOW)
    assert ok.accepted
    after = int(rec.cert.not_valid_after_utc.timestamp()) + 1
    late = rules.decide_trust_list(s, update, kind="ITL", profile=P8861, now=after)
    assert late.rule == "G.3-expired-signer" and late.reason_code == VerifyReason.EXPIRED
    other = new_store()
    rules.decide_trust_list(other, itl_a(), kind="ITL", profile=P8861, now=NOW)  # TOFU: no signer scan
    name_ok = rules.trust_list_name_problem("ITLFile.tlv", kind="ITL", requested="ITLSEP001122334455.tlv")
    assert name_ok is None
    assert rules.trust_list_name_problem("CTLFile.tlv", kind="ITL") is not None
    assert rules.trust_list_name_problem("itlsep001122334455.TLV", kind="ITL",
                                         requested="ITLSEP001122334455.tlv") is None
    assert rules.signed_file_name_problem("a.sgn", "a.sgn") is None
    assert rules.signed_file_name_problem("/A.SGN", "a.sgn") is None
    assert rules.signed_file_name_problem("b.sgn", "a.sgn") is not None


def _decision(rule: str, *, accepted: bool, status: str | None = None) -> Decision:
    return Decision(rule=rule, accepted=accepted, reason=f"why {rule}", file="f.tlv", signer="CN=x",
                    reason_code=None if accepted else VerifyReason.OTHER, status=status, kind="ITL")


def test_event_log_note_and_log_read_as_add_and_record() -> None:
    """``EventLog.note``/``log`` (the boot's: built when read) read exactly as ``add(Event(...))``/
    ``record``: the same events, in order, within the bound, the same status messages; the events read
    are the same objects at every read."""
    eager, lazy = EventLog(4, 3), EventLog(4, 3)
    steps: list[tuple[str, object]] = [
        ("note", dict(time=1, phone="A", kind="request", file="x")),
        ("note", dict(time=2, phone="A", kind="fetched", file="x", detail="10 bytes")),
        ("decision", _decision("G.3.2-signed-by-ctl", accepted=True, status="Trust List updated")),
        ("decision", _decision("G.3-bad-signature", accepted=False, status="Trust List update failed")),
        ("status", "TFTP timeout"),
        ("note", dict(time=5, phone="A", kind="boot", detail="boot")),
    ]
    for what, arg in steps:
        if what == "note":
            assert isinstance(arg, dict)
            eager.add(Event(**arg))
            lazy.note(**arg)
        elif what == "decision":
            assert isinstance(arg, Decision)
            eager.record(arg, time=3, phone="A")
            lazy.log(arg, time=3, phone="A")
        else:
            assert isinstance(arg, str)
            eager.status(arg)
            lazy.status(arg)
    assert lazy.events == eager.events
    assert len(lazy) == len(eager) == 4
    assert list(lazy) == list(eager)
    assert lazy.status_messages == eager.status_messages
    first = lazy.events
    assert all(a is b for a, b in zip(first, lazy.events, strict=True))
    lazy.note(time=9, phone="A", kind="tvs", detail="more")  # the bound still holds after a read
    eager.add(Event(time=9, phone="A", kind="tvs", detail="more"))
    assert lazy.events == eager.events and len(lazy) == 4


def test_a_large_trust_list_is_decided_but_never_held_by_the_memos(monkeypatch: pytest.MonkeyPatch) -> None:
    """A trust list above the memo size bound (a 16 MiB limit is allowed) is scanned each time and no
    memo keeps it alive; the decision is the same as for a small one."""
    rec = ident("recovery-a")
    update = tl("ITL", rec, [rec.record(Role.SAST), ident("cm-a").record(Role.CCM_TFTP),
                             ident("tvs-a").record(Role.TVS)], ts=NOW + 5)
    store = with_itl_and_config()
    small = rules.decide_trust_list(store, update, kind="ITL", profile=P8861, now=NOW)
    assert store.itl is not None
    monkeypatch.setattr(rules, "_MEMO_LIST_MAX", len(store.itl.raw) - 1)
    for memo in (rules._FOUND, rules._TVS_RECORD, rules._TVS_PEER):
        memo.clear()
        memo._held.clear()
    large = rules.decide_trust_list(store, update, kind="ITL", profile=P8861, now=NOW)
    assert large == small and rules.tvs_usable(store, P8861)
    held = [objs for memo in (rules._FOUND, rules._TVS_RECORD, rules._TVS_PEER)
            for objs in memo._held.values()]
    assert not any(o is store.itl for objs in held for o in objs)
