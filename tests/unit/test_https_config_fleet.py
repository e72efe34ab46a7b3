"""Fleets and the HTTPS config download (TCP 6971, spec §H.1): ``fleet boot`` phones ask it as ``boot``'s do.

Before: a shard that passed its own fetcher (``--blksize``, ``--tftp NAME``) gave its phones no way to 6971,
and ``fleet boot`` had no ``--https-config-port`` / ``--no-https-config`` nor took the lab's recorded
``https-config`` port (its phones asked 6971, where no lab listens); a config received over HTTPS was
counted "over TFTP" in the summary and the ``--json`` records.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.fleet.engine import FleetSpec, make_phones, run_shard
from phoneemu.fleet.metrics import BootRecord, FleetMetrics
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.phone.boot import BootTarget
from tests.helpers import pristine_lab, run_within, serve_in_thread

NOW = 1_780_000_000
HOST = "127.0.0.1"
EC_PHONES = ["0A00000071A1", "0A00000071A2", "0A00000071A3"]  # cp-8861: EC support, asks 6971
OLD_PHONE = "0A00000071B1"  # cp-7962: no EC support, never asks it

run = run_within(60)


#: a lab made with the HTTPS identity (``lab init --https-key ec-p256``): three cp-8861, one cp-7962
base_lab, lab = pristine_lab("https-config-fleet", now=NOW,
                             phones={**{mac: {"now": NOW} for mac in EC_PHONES},
                                     OLD_PHONE: {"model": "cp-7962", "now": NOW}},
                             host=HOST, https_key="ec-p256")


def _spec(target: BootTarget, **options: Any) -> FleetSpec:
    macs = tuple(int(m, 16) for m in [*EC_PHONES, OLD_PHONE])
    return FleetSpec(target=target, count=len(macs), macs=macs, profiles={OLD_PHONE: "cp-7962"},
                     keep_records=True, fetch_timeout=2.0, **options)


def test_a_shard_with_its_own_fetcher_still_asks_6971(lab: LabCluster) -> None:
    """``--blksize``: the shard builds the phones' fetchers, and gives them the HTTPS getter too (before:
    none, every config over HTTP); only the phones whose rules say so ask it, each once."""
    async def body() -> tuple[Any, list[Any]]:
        async with LabServers(lab, host=HOST) as srv:
            target = BootTarget(host=HOST, tftp_port=srv.ports["tftp"], http_port=srv.ports["http"],
                                https_config_port=srv.ports["https-config"])
            res = await run_shard(_spec(target, blksize=1024), _spec(target).macs)
            return res, [r for r in srv.requests if r.service == "https-config"]

    res, asked = run(body())
    by_mac = {r.mac: r for r in res.records}
    for mac in EC_PHONES:
        rec = by_mac[mac]
        assert (rec.outcome, rec.rule, rec.over_https, rec.over_tftp) == ("ok", "H.1-https-config", 1, 0), rec
        assert rec.over_http >= 1  # the ITL and the static files: over HTTP 6970
    old = by_mac[OLD_PHONE]
    assert (old.outcome, old.rule, old.over_https) == ("ok", "G.4-signed-by-itl-tftp", 0), old
    assert sorted(r.name for r in asked) == sorted(f"/SEP{m}.cnf.xml.sgn" for m in EC_PHONES), asked
    assert res.metrics.files_over["https"] == 3


def test_a_config_over_https_is_counted_as_such_in_records_and_summary(lab: LabCluster) -> None:
    """The record counts the file received over HTTPS apart (before: "over TFTP"), its JSON says so and
    reads back the same across a shard's pipe, and the summary line names the three transports."""
    async def body() -> Any:
        async with LabServers(lab, host=HOST) as srv:
            target = BootTarget(host=HOST, tftp_port=srv.ports["tftp"], http_port=srv.ports["http"],
                                https_config_port=srv.ports["https-config"])
            return await run_shard(_spec(target), _spec(target).macs)

    res = run(body())
    rec = next(r for r in res.records if r.mac == EC_PHONES[0])
    doc = rec.as_dict()
    assert doc["files_over"] == {"http": rec.over_http, "tftp": 0, "https": 1}, doc
    back = BootRecord.from_dict(doc)
    assert (back.over_http, back.over_tftp, back.over_https) == (rec.over_http, 0, 1), back
    old = next(r for r in res.records if r.mac == OLD_PHONE).as_dict()
    assert "https" not in old["files_over"], old  # a boot that asked none: its record as before
    merged = FleetMetrics.from_state(res.metrics.to_state())
    line = next(x for x in merged.render().splitlines() if x.startswith("files received: "))
    http = sum(r.over_http for r in res.records)
    assert line == f"files received: {http} over HTTP, 3 over HTTPS, 4 over TFTP", line


def test_one_getter_a_model_and_none_when_not_asked(lab: LabCluster) -> None:
    """The phones of a model share one getter (a phone to which 6971 never applies costs nothing more);
    ``use_https_config`` off: none."""
    from phoneemu.fleet.engine import _HttpsConfigWays

    target = BootTarget(host=HOST, https_config_port=16971)
    phones = make_phones(_spec(target), _spec(target).macs, pool=None)
    ways = _HttpsConfigWays(target)
    got = [ways.of(p) for p in phones]
    assert got[0] is not None and got[0] is got[1] is got[2] and got[3] is not got[0]
    assert got[0].where == f"{HOST}:16971"
    off = _HttpsConfigWays(BootTarget(host=HOST, use_https_config=False))
    assert [off.of(p) for p in phones] == [None] * 4


def _fleet(lab: LabCluster, tmp_path: Path, *extra: str) -> tuple[int, str, dict[str, Any]]:
    out = tmp_path / "fleet.json"
    rc = main(["fleet", "boot", "--lab", str(lab.root), "--count", "3", "--mac-start", EC_PHONES[0],
               "--shards", "0", "-q", "--json", str(out), *extra])
    return rc, out.read_text(), json.loads(out.read_text())


def test_fleet_boot_lab_asks_the_port_its_lab_serve_recorded(lab: LabCluster, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """``fleet boot --lab DIR``: the ``https-config`` port lab serve recorded (not 6971), as ``boot --lab``;
    ``--no-https-config``: never asked; ``--https-config-port N`` with ``--tftp``: that port."""
    ports, stop = serve_in_thread(lab)
    try:
        rc, _text, doc = _fleet(lab, tmp_path)
        summary = capsys.readouterr().out
        rc_off, _text, doc_off = _fleet(lab, tmp_path, "--no-https-config")
        capsys.readouterr()
        rc_port, _text, doc_port = _fleet(lab, tmp_path, "--tftp", f"{HOST}:{ports['tftp']}",
                                          "--http-port", str(ports["http"]),
                                          "--https-config-port", str(ports["https-config"]))
    finally:
        stop()
    assert ports["https-config"] != 6971
    assert rc == 0 and "3  H.1-https-config" in summary and " 3 over HTTPS" in summary, summary
    assert all(p["rule"] == "H.1-https-config" and p["files_over"]["https"] == 1 for p in doc["phones"]), doc
    assert doc["summary"]["files_over"]["https"] == 3
    assert rc_off == 0 and "https" not in doc_off["summary"]["files_over"], doc_off
    assert {p["rule"] for p in doc_off["phones"]} == {"G.4-signed-by-itl-tftp"}
    assert rc_port == 0 and {p["rule"] for p in doc_port["phones"]} == {"H.1-https-config"}, doc_port
