"""``fleet boot --json`` written a record at a time from records spooled on disk (``fleet.metrics``
RecordSpool, ``json_doc.dumps_pieces``): the same bytes as ``json_doc.dumps`` of the whole document,
the parent holding a chunk of it, not the document (it held every record, then the document: tens of MiB
at 40,000 phones)."""

from __future__ import annotations

import errno
import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from phoneemu import files, json_doc, version_text
from phoneemu import spool as spool_mod
from phoneemu.commands import fleet as fleet_cmd
from phoneemu.fleet.metrics import BootRecord, FleetMetrics, RecordSpool
from phoneemu.fleet.shard import FleetResult
from phoneemu.phone.boot import BootTarget

#: strings a record's reason may carry (a hostile server's bytes): a lone surrogate, a line break, quotes,
#: a backslash before "ud", non-ASCII, a NUL, the key's name
ODD = ("\udc80 cut", "two\nlines", 'say "no"', "\\ud800 typed", "caf\u00e9 \u2603", "nul\x00", '"phones"')


def _records(n: int, *, start: int = 0) -> list[BootRecord]:
    """``n`` deterministic records, ok and failed, with every optional field somewhere."""
    out = []
    for i in range(start, start + n):
        failed = i % 3 == 1
        out.append(BootRecord(
            mac=f"0A{i:010X}", outcome="locked-out" if failed else "ok",
            rule="G.4-bad-signature" if failed else "G.4-signed-by-itl-tftp",
            latency_s=0.0123456 * (i + 1), end_s=1.23456789 * i, tvs_used=i % 2 == 0,
            reason=ODD[i % len(ODD)] if failed else None, itl="updated", ctl=None if i % 4 else "absent",
            signer="CN=x \udcff" if failed else None, over_http=i % 3, over_tftp=2,
            capf="F.6-capf-rejected" if i % 5 == 0 else None, capf_reason=ODD[i % 7] if i % 5 == 0 else None,
            answered=i % 6 != 0, profile="cp-7962" if i % 2 else None, kind="config" if failed else None,
            sip="G.13-registered", sip_server="127.0.0.1:5061 over tls",
            sip_passed_over=("10.0.0.1:5061 G.13-unreachable",) if i % 4 == 1 else None,
            retransmits=i % 3, failed_downloads=(("ITLSEP.tlv", "timeout"),) if i % 4 == 2 else ()))
    return out


@pytest.mark.parametrize("n", [0, 1, 2, 23])
@pytest.mark.parametrize("keys", [("target", "profile", "summary", "phones", "phoneemu"),
                                  ("phones", "target"), ("target", "phones"), ("phones",)])
def test_streamed_document_is_the_whole_documents_text(n: int, keys: tuple[str, ...]) -> None:
    values: dict[str, Any] = {"target": "127.0.0.1 (tftp 69)", "profile": "cp-8861",
                              "summary": {"phones": n, "reasons": list(ODD), "nested": {"a": [1, 2.5, None]},
                                          "empty": {}, "none": []},
                              "phoneemu": version_text()}
    phones = [r.as_dict() for r in _records(n)]
    doc = {k: values.get(k) for k in keys}
    whole = json_doc.dumps({**doc, "phones": phones}, indent=1) + "\n"
    assert "".join(json_doc.dumps_pieces(doc, "phones", iter(phones), indent=1)) == whole
    json.loads(whole)  # and it is JSON, surrogate-free


def test_spool_reads_back_each_finished_shards_records_in_shard_order() -> None:
    first, second, third = _records(3), _records(4, start=10), _records(2, start=20)
    lost = _records(5, start=30)
    spool = RecordSpool()
    try:
        spool.add(1, second)  # messages of several shards come interleaved
        spool.add(0, first)
        spool.add(2, lost)  # a shard that died before its result: dropped
        spool.add(1, third)
        spool.keep([0, 1])
        # as a record crosses a shard's pipe (as_dict: latency to the microsecond), every field
        crossed = [BootRecord.from_dict(r.as_dict()) for r in (*first, *second, *third)]
        assert list(spool) == crossed
        assert len(spool) == 9 and spool[0] == crossed[0] and spool[-1] == crossed[-1]
        assert spool[3:5] == crossed[3:5]
        assert spool[4].reason == second[1].reason  # a lone surrogate comes back as it went
    finally:
        spool.close()
    assert len(spool) == 0 and list(spool) == []


def test_spool_without_records_makes_no_file() -> None:
    spool = RecordSpool()
    spool.add(0, [])
    spool.keep([0])
    assert len(spool) == 0 and spool.unkept is None
    spool.close()


def test_a_spool_that_cannot_be_written_keeps_no_record_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool_mod.tempfile, "TemporaryFile", full)
    spool = RecordSpool()
    spool.add(0, _records(2))
    spool.add(0, _records(2))
    spool.keep([0])
    assert len(spool) == 0
    assert spool.unkept is not None and spool.unkept.endswith("No space left on device")
    result = FleetResult(metrics=FleetMetrics(), records=spool)
    assert result.records_unkept == spool.unkept


def _result(records: list[BootRecord]) -> FleetResult:
    m = FleetMetrics()
    for r in records:
        m.add(r)
    spool = RecordSpool()
    spool.add(0, records)
    spool.keep([0])
    return FleetResult(metrics=m, records=spool)


def test_json_report_is_the_old_documents_bytes_and_holds_a_chunk(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The file is what ``json_doc.dumps`` of the whole document wrote (as fleet boot did); writing it
    allocates at most a fraction of its size (a chunk and a record; was the whole document, twice)."""
    records = _records(6000)
    result = _result(records)
    target = BootTarget(host="127.0.0.1", tftp_port=69)
    out = tmp_path / "fleet.json"
    monkeypatch.setattr(files, "TEXT_CHUNK", 1 << 16)
    warm_up = _result(records[:5])
    fleet_cmd._write_json(out, warm_up, target, None, profile="cp-8861")  # one-time costs first
    warm_up.close()
    try:
        tracemalloc.start()
        try:
            fleet_cmd._write_json(out, result, target, None, profile="cp-8861")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        whole = {"target": str(target), "profile": "cp-8861", "summary": result.summary(),
                 "phones": [r.as_dict() for r in records], "phoneemu": version_text()}
        data = out.read_bytes()
        assert data == (json_doc.dumps(whole, indent=1) + "\n").encode("utf-8")
        assert peak < len(data) // 4, (peak, len(data))
    finally:
        result.close()
