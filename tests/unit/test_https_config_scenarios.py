"""The HTTPS config download (TCP 6971, spec §H.1) in scenarios and lab outages.

Before: a scenario's lab could not be made with the HTTPS identity (``https_key`` an unknown field), a
``service`` step could not stop 6971, ``fetched_over`` knew no ``https`` (a config over 6971 read
``mixed``), and ``lab service DIR https-config stop`` was refused: no rehearsal of 6971 down.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from phoneemu.cli import main
from phoneemu.errors import EncodeError, ScenarioError
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.phone.boot import BootTarget
from phoneemu.phone.phone import Phone
from phoneemu.phone.profile import get_profile
from phoneemu.scenario import checks
from phoneemu.scenario.loader import load_text
from phoneemu.scenario.runner import RunOptions, run_scenario
from tests.helpers import run_within

NOW = 1_780_000_000
HOST = "127.0.0.1"
MAC = "0A00000072C1"

run = run_within(60)

_DOC = """\
name: six-nine-seven-one
reproduces: spec H.1
clusters:
  lab: {options}
phones:
  p: {{mac: "0A00000072A1"}}
steps:
  - boot: p
  - service: {{https-config: stop}}
  - reset: p
  - expect: {{phones: p, label: 6971 down, fetched_over: http, deciding_rule: G.4-signed-by-itl-tftp}}
  - service: {{https-config: start}}
  - reset: p
  - expect: {{phones: p, label: 6971 back, fetched_over: https, deciding_rule: H.1-https-config}}
"""


def _refused(text: str) -> str:
    with pytest.raises(ScenarioError) as info:
        load_text(text, "t.yaml")
    return str(info.value)


def test_a_lab_with_the_https_identity_serves_6971_and_a_step_stops_it() -> None:
    """``https_key: ec-p256`` makes the lab as ``lab init --https-key`` does; a ``service`` step stops and
    starts its ``https-config``; the phone falls back to HTTP 6970 meanwhile, then asks 6971 again."""
    scenario = load_text(_DOC.format(options="{https_key: ec-p256}"), "t.yaml")
    result = run(run_scenario(scenario, RunOptions()))
    got = [(e.label, e.failures()) for e in result.expectations]
    assert result.error is None and all(e.bound_met() for e in result.expectations), (result.error, got)
    assert [e.label for e in result.expectations] == ["6971 down", "6971 back"]


@pytest.mark.parametrize(("value", "said"), [
    ("rsa512", "t.yaml:4 clusters.lab.https_key: expected a key of the HTTPS (6971) TFTP identity, one of "
               "ec-p256, ec-p384, ec-p521, rsa1024, rsa2048, rsa4096 (phones ask 6971 only with an EC one, "
               "spec H.1), got 'rsa512'"),
    ("ec-p265", "got 'ec-p265' — did you mean 'ec-p256'?"),
    ("maybe", "got 'maybe'"),
])
def test_an_https_key_the_lab_would_not_make_is_refused_at_its_line(value: str, said: str) -> None:
    assert said in _refused(_DOC.format(options=f"{{https_key: {value}}}"))


def test_https_key_is_read_as_the_lab_reads_it() -> None:
    spec = load_text(_DOC.format(options="{https_key: EC_P384}"), "t.yaml").clusters["lab"]
    assert spec.options["https_key"] == "EC_P384"  # LabCluster.init parses it: ec-p384


def test_a_lab_without_the_https_identity_has_no_https_config_service() -> None:
    err = _refused(_DOC.format(options="{nodes: 1}"))
    assert "t.yaml:9 steps[1].service.https-config: unknown field (expected one of: cluster, tvs, tftp" in err
    assert "https-config runs only on a lab with the HTTPS identity: clusters: {lab: {https_key: ec-p256}}" \
        in err, err


@pytest.mark.parametrize(("over", "expected", "actual", "held"), [
    ({"ITLFile.tlv": "http", "SEPX.cnf.xml.sgn": "https"}, "https",
     "https (SEPX.cnf.xml.sgn; the other files over http)", True),
    ({"ITLFile.tlv": "http", "SEPX.cnf.xml.sgn": "https"}, "http",
     "https (SEPX.cnf.xml.sgn; the other files over http)", False),  # not every file over HTTP
    ({"ITLFile.tlv": "http", "SEPX.cnf.xml.sgn": "https"}, "mixed",
     "https (SEPX.cnf.xml.sgn; the other files over http)", True),
    ({"ITLFile.tlv": "tftp", "a": "http", "SEPX.cnf.xml.sgn": "https"}, ["tftp", "https"],
     "https (SEPX.cnf.xml.sgn; the other files over http and tftp)", True),
    ({"SEPX.cnf.xml.sgn": "https"}, "https", "https", True),
    ({"ITLFile.tlv": "http", "SEPX.cnf.xml.sgn": "http"}, "https", "http", False),
    ({"ITLFile.tlv": "http", "SEPX.cnf.xml.sgn": "tftp"}, "mixed", "mixed", True),
])
def test_fetched_over_https_names_the_file_and_the_others(over: dict[str, str], expected: object, actual: str,
                                                         held: bool) -> None:
    view = SimpleNamespace(report=SimpleNamespace(fetched_over=over))
    assert checks.evaluate("fetched_over", view, expected) == (actual, held)


def test_lab_service_stops_and_starts_6971(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``lab service DIR https-config stop|start``: recorded, and the servers follow (a phone then asks
    HTTP 6970 for its config, signed); refused on a lab without the HTTPS identity, naming what it has."""
    lab = LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=NOW, host=HOST, https_key="ec-p256")
    lab.add_phone(MAC, now=NOW)
    plain = LabCluster.init(tmp_path / "plain", key_spec="rsa1024", now=NOW)
    assert main(["lab", "service", str(plain.root), "https-config", "stop"]) != 0
    assert "'https-config' is not a service of this cluster: one of tftp, http, tvs, capf, sip, sips" \
        in capsys.readouterr().err
    with pytest.raises(EncodeError, match="not a service of this cluster"):
        plain.set_service("https-config", False)

    async def body() -> list[str]:
        async with LabServers(lab, host=HOST) as srv:
            target = BootTarget(host=HOST, tftp_port=srv.ports["tftp"], http_port=srv.ports["http"],
                                https_config_port=srv.ports["https-config"])
            rules = []
            for action in ("stop", "start"):
                assert main(["lab", "service", str(lab.root), "https-config", action]) == 0
                srv.cluster.reload_if_changed()
                await srv.sync_stopped()
                phone = Phone(mac=MAC, profile=get_profile("cp-8861"), flash=None, clock=lambda: NOW + 60)
                report = await phone.boot(target)
                rules.append(f"{report.deciding.rule if report.deciding else None} "
                             f"{report.fetched_over.get(f'SEP{MAC}.cnf.xml.sgn')}")
            return rules

    assert run(body()) == ["G.4-signed-by-itl-tftp http", "H.1-https-config https"]
    assert "https-config: marked stopped in the cluster" in capsys.readouterr().out
