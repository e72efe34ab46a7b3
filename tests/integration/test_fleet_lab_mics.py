"""``fleet boot --lab DIR``: fleet phones holding their lab MICs enrol with CAPF by MIC (capfAuthMode 4).

Over loopback against a lab whose phones have a pending CAPF install authenticated by MIC:
phones without a MIC are refused (spec §F.6), phones with theirs enrol and the lab records each LSC.
A phone whose ``mic.key`` is damaged is not booted: it fails with the file named, the others go on.
The CLI checks, before any boot, that the folder is a lab and holds every MAC of the run.

Each lab has fresh RSA-1024 keys (no test compares keys across runs; a seeded lab's took ~4x the CPU). The
CLI runs in this process; of a test's ``fleet boot`` runs one boots in a shard process (the spec — models,
keys, strings — reaches a shard), the others in this process (``--shards 0``): a shard cost ~0.5 s of CPU.
"""

from __future__ import annotations

import json
import shlex
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.fleet.engine import FleetSpec, mac_text, run_shard
from phoneemu.fleet.mics import lab_mic, missing_macs
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.phone.boot import BootTarget
from tests.helpers import run_within

NOW = 1_780_000_000
HOST = "127.0.0.1"
START = 0x0A0000000200
COUNT = 6
DAMAGED = mac_text(START + 4)

run = run_within(120)


def _lab(tmp: Path) -> LabCluster:
    c = LabCluster.init(tmp / "lab", key_spec="rsa1024", now=NOW)
    c.add_phones([mac_text(START + i) for i in range(COUNT)], capf_operation="install", capf_auth_mode="mic",
                 lsc_key="ec-p256", now=NOW)
    return c


def _storm(c: LabCluster, *, with_mics: bool) -> Any:
    async def body() -> Any:
        async with LabServers(c, host=HOST) as srv:
            target = BootTarget(host=HOST, tftp_port=srv.ports["tftp"], http_port=srv.ports["http"])
            spec = FleetSpec(target=target, count=COUNT, mac_start=START, keep_records=True,
                             mic_dir=str(c.root / "phones") if with_mics else None)
            return await run_shard(spec, range(START, START + COUNT))
    return run(body())


def test_phones_with_their_lab_mics_enrol_by_mic(tmp_path: Path) -> None:
    c = _lab(tmp_path)
    without = _storm(c, with_mics=False)
    assert {r.rule for r in without.records} == {"F.6-capf-rejected"}
    assert without.metrics.capf.by_rule == {"F.6-capf-rejected": COUNT}
    assert len(without.metrics.capf.failures) == 5  # the first few, with why
    hint = ("; the phone holds no certificate to authenticate with (capfAuthMode 4 needs a MIC or an LSC, "
            "spec §F.7)")
    assert all(f["reason"].endswith(hint) for f in without.metrics.capf.failures)
    assert all(c.phone_lsc(mac_text(START + i)) is None for i in range(COUNT))

    key = c.root / "phones" / DAMAGED / "mic.key"
    key.write_bytes(key.read_bytes()[:200])  # cut: no END line
    res = _storm(c, with_mics=True)
    by_mac = {r.mac: r for r in res.records}
    assert len(by_mac) == COUNT and res.not_started == 0
    bad = by_mac.pop(DAMAGED)
    assert (bad.outcome, bad.rule) == ("error", "not-booted")
    assert bad.reason.startswith(f"lab MIC: {key} at offset 0: truncated: a PEM private key block")
    assert res.metrics.failed == 1
    assert res.metrics.capf.by_rule == {"F.6-lsc-installed": COUNT - 1}
    c = LabCluster.open(c.root)
    for mac, rec in by_mac.items():
        assert rec.outcome == "ok", (mac, rec.rule, rec.reason)
        assert c.phone_lsc(mac) is not None, mac
    assert c.phone_lsc(DAMAGED) is None


def test_lab_mic_names_the_file_it_cannot_use(tmp_path: Path) -> None:
    c = LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=NOW)
    a, b = mac_text(START), mac_text(START + 1)
    c.add_phones([a, b], now=NOW)
    folder = c.root / "phones"
    cred = lab_mic(folder, a)
    assert cred.cert().subject == c.phone_identity(a)[0].subject
    assert cred.key().public_key().public_numbers() == c.phone_identity(a)[1].public_key().public_numbers()
    # b's key beside a's certificate: not its key
    (folder / a / "mic.key").write_bytes((folder / b / "mic.key").read_bytes())
    with pytest.raises(Exception, match=rf"{folder / a / 'mic.key'}: not the private key of the certificate"):
        lab_mic(folder, a)
    (folder / b / "mic.pem").unlink()
    with pytest.raises(Exception, match=rf"{folder / b / 'mic.pem'}: no such file \(the lab has no MIC"):
        lab_mic(folder, b)
    assert missing_macs(folder, [a, mac_text(START + 9), b]) == [mac_text(START + 9)]


def test_cli_checks_the_lab_before_any_boot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=NOW)
    c.add_phones([mac_text(START + i) for i in range(3)], now=NOW)
    common = ["fleet", "boot", "--tftp", "127.0.0.1:9", "--mac-start", mac_text(START), "-q"]
    assert main([*common, "--count", "5", "--lab", str(c.root)]) == 2
    err = capsys.readouterr().err
    assert f"--lab {c.root}: 2 of the 5 phones are not in the lab ({mac_text(START + 3)}, " in err
    assert f"add them with 'phoneemu lab phone add {c.root} --mac {mac_text(START + 3)} --count 2'" in err
    assert "Traceback" not in err
    assert main([*common, "--count", "3", "--lab", str(tmp_path)]) == 2
    assert "not a lab cluster folder (no cluster.json" in capsys.readouterr().err


def test_symmetric_key_phones_get_the_key_the_lab_encrypts_with(tmp_path: Path) -> None:
    """cp-7942-symmetric phones the lab encrypts for with a manual key (spec §C.5): with --lab each has
    it typed in and decrypts its config; without, none can."""
    import argparse

    from phoneemu.commands.fleet import _lab_phones

    c = LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=NOW)
    macs = [mac_text(START + i) for i in range(3)]
    c.add_phones(macs, model="7942", encrypt="symmetric", symmetric_key="00112233445566778899aabbccddeeff",
                 now=NOW)
    mic_dir, keys, strings, _profiles = _lab_phones(argparse.Namespace(lab=c.root), macs)
    assert mic_dir == str(c.root / "phones") and sorted(keys) == macs and strings == {}
    assert all(keys[m] == c.state.phones[m].symmetric_key for m in macs)

    def storm(**given: Any) -> Any:
        async def body() -> Any:
            async with LabServers(c, host=HOST) as srv:
                target = BootTarget(host=HOST, tftp_port=srv.ports["tftp"], http_port=srv.ports["http"])
                spec = FleetSpec(target=target, count=3, mac_start=START, keep_records=True,
                                 profile="cp-7942-symmetric", **given)
                return await run_shard(spec, range(START, START + 3))
        return run(body())

    # without the key a phone cannot ask for its .enc.sgn: it boots on the default config (§G.10)
    assert {r.rule for r in storm().records} == {"G.4-signed-by-itl-tftp"}
    assert {r.rule for r in storm(mic_dir=mic_dir, symmetric_keys=keys).records} == {"G.12.3-decrypted"}
    bad = storm(mic_dir=mic_dir, symmetric_keys={**keys, macs[1]: "not hex"})
    by_mac = {r.mac: r for r in bad.records}
    assert (by_mac[macs[1]].rule, by_mac[macs[1]].outcome) == ("not-booted", "error")
    assert by_mac[macs[1]].reason is not None and "lab symmetric key: " in by_mac[macs[1]].reason


def test_phones_type_the_capf_string_the_lab_set_for_them(tmp_path: Path) -> None:
    """CUCM's "By Authentication String" at scale (spec §F.7): with --lab each phone types the string
    the lab set for its pending operation; with --auth-string every phone types that one; without, each
    waits for someone to type it. A wrong string is refused by CAPF."""
    import argparse

    from phoneemu.commands.fleet import _lab_phones

    c = LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=NOW)
    macs = [mac_text(START + i) for i in range(3)]
    c.add_phones(macs, now=NOW)
    c.set_capf(macs[:2], "install", auth_string="246810", key="ec-p256", now=NOW)
    c.set_capf(macs[2:], "install", auth_mode="null-string", key="ec-p256", now=NOW)
    _mic_dir, _keys, strings, _profiles = _lab_phones(argparse.Namespace(lab=c.root), macs)
    assert strings == {macs[0]: "246810", macs[1]: "246810"}  # not the null-string phone

    def storm(**given: Any) -> dict[str, str | None]:
        async def body() -> Any:
            async with LabServers(c, host=HOST) as srv:
                target = BootTarget(host=HOST, tftp_port=srv.ports["tftp"], http_port=srv.ports["http"])
                spec = FleetSpec(target=target, count=2, mac_start=START, keep_records=True,
                                 capf_retry_delay=0.0, **given)
                return await run_shard(spec, range(START, START + 2))
        return {r.mac: r.capf for r in run(body()).records}

    assert set(storm().values()) == {"F.7-wait-auth-string"}
    assert set(storm(auth_string="1111").values()) == {"F.6-capf-rejected"}
    assert set(storm(auth_strings=strings, auth_string="1111").values()) == {"F.6-lsc-installed"}


def test_a_fleet_of_several_models_boots_each_as_its_model(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """``fleet boot --lab``: each phone boots as the model the lab has for it (a cp-7962 over TFTP only,
    spec §H.1); ``--models FILE`` (a CUCM export's columns) wins for the phones it names, ``--profile``
    for all the others; the summary counts outcomes by model."""
    import json

    from tests.helpers import serve_in_thread

    c = LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=NOW)
    macs = [mac_text(START + i) for i in range(4)]
    c.add_phones(macs[:3], now=NOW)  # 8861
    c.add_phones(macs[3:], model="7962", now=NOW)
    ports, stop = serve_in_thread(c)
    try:
        common = ["fleet", "boot", "--tftp", f"{HOST}:{ports['tftp']}", "--http-port", str(ports["http"]),
                  "--mac-start", macs[0], "--count", "4", "--lab", str(c.root), "-q", "--shards", "0"]
        out_json = tmp_path / "f.json"
        # in a shard process once (the lab's models reach it); in this process after (a shard each cost
        # ~0.5 s of CPU)
        assert main([*common, "--shards", "1", "--json", str(out_json)]) == 0
        out, err = capsys.readouterr()
        assert "(cp-8861 3, cp-7962 1)" in err
        assert "by model: cp-7962 ok 1; cp-8861 ok 3" in out
        doc = json.loads(out_json.read_text())
        by_mac = {p["mac"]: p for p in doc["phones"]}
        assert by_mac[macs[3]]["profile"] == "cp-7962" and by_mac[macs[3]]["files_over"]["http"] == 0
        assert by_mac[macs[0]]["profile"] == "cp-8861" and by_mac[macs[0]]["files_over"]["tftp"] == 0
        models = tmp_path / "export.csv"
        models.write_text(f"Device Name,Device Type\nSEP{macs[0]},Cisco 7962\nSEP{macs[1]},Cisco 9999\n")
        assert main([*common, "--models", str(models), "--json", str(out_json)]) == 0
        out, err = capsys.readouterr()
        assert f"phoneemu fleet boot: 2 of the 4 phones have a model in {models}" in err
        assert "1 phone's model has no profile here, e.g. model 'Cisco 9999'" in err
        assert {p["mac"]: p["profile"] for p in json.loads(out_json.read_text())["phones"]} == {
            macs[0]: "cp-7962", macs[1]: "cp-8861", macs[2]: "cp-8861", macs[3]: "cp-7962"}
        assert main([*common, "--profile", "cp-8861"]) == 0  # every phone: no model line
        out, err = capsys.readouterr()
        assert "(cp-8861) ->" in err and "by model" not in out
        only_7962 = [*common[:common.index("--mac-start")], "--mac-start", macs[3], "--count", "1",
                     "--lab", str(c.root), "-q", "--shards", "0"]
        assert main(only_7962) == 0  # the lab's cp-7962 alone: TFTP only, so no note about HTTP
        out, err = capsys.readouterr()
        assert "(cp-7962 1) ->" in err and "files received: 4 over TFTP" in out
        assert "over HTTP" not in out
        site = tmp_path / "site.csv"  # a site's own phones: not consecutive, in the export's order
        site.write_text(f"SEP{macs[3]},Cisco 7962\nSEP{macs[1]},Cisco 8861\n")
        no_count = [a for a in common if a not in ("--count", "4")]
        assert main([*no_count, "--models", str(site), "--json", str(out_json)]) == 0
        out, err = capsys.readouterr()
        assert f"phoneemu fleet boot: 2 phones of {site}, {macs[3]} ... {macs[1]} (cp-7962 1, cp-8861 1)" \
            in err
        assert sorted(p["mac"] for p in json.loads(out_json.read_text())["phones"]) == [macs[1], macs[3]]
        assert main([*no_count]) == 2
        assert "--count N is required (or --models FILE: the fleet is the phones it lists; or --flash DIR" \
            in capsys.readouterr().err
    finally:
        stop()


def test_a_fleet_booted_again_on_its_flashes_keeps_their_models(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """``fleet boot --flash DIR`` without --profile: each phone boots as the model its flash holds (as
    ``boot`` does), before the --lab model; --profile naming another model is refused per phone."""
    from tests.helpers import serve_in_thread

    c = LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=NOW)
    macs = [mac_text(START + i) for i in range(3)]
    c.add_phones(macs, model="7962", now=NOW)
    ports, stop = serve_in_thread(c, watch=0.05)
    flash = tmp_path / "flash"
    try:
        common = ["fleet", "boot", "--tftp", f"{HOST}:{ports['tftp']}", "--http-port", str(ports["http"]),
                  "--mac-start", macs[0], "--count", "3", "-q", "--shards", "0", "--flash", str(flash)]
        assert main([*common, "--lab", str(c.root)]) == 0
        capsys.readouterr()
        # no --lab: the flashes say cp-7962, in a shard process (each of the other runs in this one)
        assert main([*common, "--shards", "1"]) == 0
        out, err = capsys.readouterr()
        assert f"phoneemu fleet boot: 3 phones boot as the model their flash in {flash} holds" in err
        assert "(cp-7962 3) ->" in err and "ok 3" in out
        assert main([*common, "--lab", str(c.root)]) == 0  # the lab agrees: nothing to say
        out, err = capsys.readouterr()
        assert "their flash" not in err and "(cp-7962 3) ->" in err
        assert main([*common, "--profile", "cp-8861"]) == 1
        out, err = capsys.readouterr()
        assert "holds the flash of a cp-7962, not a cp-8861" in out
        # a TVS outage while ITLRecovery is regenerated: locked out. Made as an operator makes them beside
        # `lab serve`: lab operations (their own LabCluster, under the lab lock), not calls on `c`, the
        # object the serving thread reloads — its watch reload, run between c's changes, once swapped in
        # the lab as read before the regenerate, which c then saved as its own: the old ITL served for good
        assert main(["lab", "service", str(c.root), "tvs", "stop"]) == 0
        assert main(["lab", "regenerate", str(c.root), "itlrecovery"]) == 0
        capsys.readouterr()
        deadline = time.monotonic() + 20  # the served lab follows (watch 0.05 s): its TVS listener closes
        while time.monotonic() < deadline:
            try:
                socket.create_connection((HOST, ports["tvs"]), timeout=1).close()
            except OSError:
                break
            time.sleep(0.05)
        assert main([*common, "--lab", str(c.root), "--tvs-timeout", "2"]) == 1
        out, err = capsys.readouterr()
        assert "ways out of G.3.4-tvs-unreachable (ITL; 3 phones locked out)" in out
        assert f"lab: phoneemu phone erase --fleet-flash {flash}   rehearse:" in out  # the fleet's flashes
        # the bulk ITL reset, run as printed, brings the fleet back with TVS still down: the phones boot
        # between the reset and the TFTP restart (the printed line restarted TFTP at once: still locked)
        (reset,) = [line.split("lab: ", 1)[1].split("   rehearse:")[0] for line in out.splitlines()
                    if "lab: phoneemu lab itl-reset" in line]
        assert reset == (f"phoneemu lab itl-reset {c.root} localkey && phoneemu fleet boot --lab {c.root} "
                         f"--flash {flash} && phoneemu lab restart-tftp {c.root}")
        for command in reset.split("&&"):
            argv = shlex.split(command)[1:]
            assert main([*argv, "-q", "--tvs-timeout", "2", "--shards", "0"] if argv[0] == "fleet"
                        else argv) == 0, argv
            out, err = capsys.readouterr()
            if argv[0] == "fleet":  # --flash alone: the phones whose flashes it holds
                assert f"phoneemu fleet boot: 3 phones of {flash}, {macs[0]} ... {macs[2]}" in err
                assert "ok 3" in out
        assert main([*common, "--tvs-timeout", "2"]) == 0  # the ITL signed by the new ITLRecovery: taken
        out, err = capsys.readouterr()
        assert "ok 3" in out
    finally:
        stop()


def test_a_fleet_registers_over_sip_after_booting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``fleet boot --register``: each phone whose config was accepted registers with the registrar,
    answering the digest challenge from its config (spec §G.13); the summary counts the registrations
    by rule, and JUnit fails a phone up but not registered (its config excludes the credentials)."""
    import xml.etree.ElementTree as ET

    from tests.helpers import serve_in_thread

    c = LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=NOW)
    macs = [mac_text(START + i) for i in range(3)]
    c.add_phones(macs, now=NOW)
    c.set_digest(macs[:2], "alice", "s3cret", now=NOW)
    c.set_digest(macs[2:], "bob", "pw", exclude=True, now=NOW)  # the cluster challenges, the config lacks
    ports, stop = serve_in_thread(c, sip_ports={"sip": 0, "sips": 0})
    try:
        junit = tmp_path / "f.xml"
        argv = ["fleet", "boot", "--tftp", f"{HOST}:{ports['tftp']}", "--http-port", str(ports["http"]),
                "--mac-start", macs[0], "--count", "3", "-q", "--shards", "1", "--register",
                f"{HOST}:{ports['sip']}", "--sips-port", str(ports["sips"]), "--junit", str(junit)]
        assert main(argv) == 1  # every boot ok, one phone not registered
        out = capsys.readouterr().out
        assert "SIP: G.13-registered 2, G.13-no-credentials 1" in out
        assert f"SIP CallManager: {HOST}:{ports['sip']} over tcp 3" in out  # non-secure: TCP
        assert "passed over" not in out
        assert f"SIP failed: {macs[2]} (G.13-no-credentials): challenged (401, realm ccmsipline)" in out
        failed = [tc for tc in ET.parse(junit).getroot().iter("testcase") if tc.find("failure") is not None]
        assert [tc.get("name") for tc in failed] == [macs[2]]
        assert failed[0].find("failure").get("message", "").startswith(  # type: ignore[union-attr]
            "not registered (G.13-no-credentials)")
        at = argv.index("--register")  # alone: the CallManager each config names (spec §H.5)
        assert main([*argv[:at + 1], *argv[at + 4:], "--shards", "0"]) == 1  # in this process
        assert "SIP: G.13-registered 2, G.13-no-credentials 1" in capsys.readouterr().out
    finally:
        stop()


def test_a_fleet_calls_after_registering(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``fleet boot --register --call moh``: every registered phone calls the lab's music on hold (spec
    §G.14): the encrypted ones over TLS with SRTP AES_CM_128_HMAC_SHA1_80, the others RTP; the summary
    counts the calls by rule and suite, the records carry them; media tampered on the way: the SRTP
    phones' calls carry no media — JUnit fails them, exit 1; --call without --register: exit 2."""
    import json
    import xml.etree.ElementTree as ET

    from tests.helpers import serve_in_thread

    c = LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=NOW)
    macs = [mac_text(START + i) for i in range(4)]
    c.add_phones(macs, now=NOW)
    c.set_mixed_mode(True, now=NOW)
    c.set_security_mode(macs[:2], "encrypted", now=NOW)
    c.set_digest(macs[1:3], "alice", "s3cret", now=NOW)  # INVITEs challenged too
    _ports, stop = serve_in_thread(c, sip_ports={"sip": 0, "sips": 0})
    try:
        junit, records = tmp_path / "f.xml", tmp_path / "f.json"
        argv = ["fleet", "boot", "--lab", str(c.root), "--mac-start", macs[0], "--count", "4", "-q",
                "--shards", "1", "--register", "--call", "moh", "--packets", "3", "--junit", str(junit),
                "--json", str(records)]
        assert main(argv) == 0
        out = capsys.readouterr().out
        lines = {line.split(":", 1)[0]: set(line.split(": ", 1)[1].split(", ")) for line in out.splitlines()
                 if line.startswith("Media")}  # (equal counts: either order)
        assert lines["Media"] == {"G.14-srtp 2", "G.14-rtp-not-encrypted-mode 2"}, out
        assert lines["Media suite"] == {"AES_CM_128_HMAC_SHA1_80 2", "RTP 2"}
        assert "ways out of G.14-rtp-not-encrypted-mode (media; 2 phones calling without SRTP):" in out
        assert f"lab: phoneemu lab security-mode {c.root} --mac {macs[0]} --count 4 encrypted" in out, out
        doc = json.loads(records.read_text())
        by_mac = {r["mac"]: r for r in doc["phones"]}
        assert by_mac[macs[0]]["media"] == "G.14-srtp" and by_mac[macs[0]]["media_suite"] == \
            "AES_CM_128_HMAC_SHA1_80"
        assert by_mac[macs[3]]["media_suite"] == "RTP" and "media_reason" not in by_mac[macs[3]]
        assert doc["summary"]["media_suites"] == {"AES_CM_128_HMAC_SHA1_80": 2, "RTP": 2}
    finally:
        stop()
    _ports2, stop = serve_in_thread(c, sip_ports={"sip": 0, "sips": 0},
                                    prepare=lambda srv: srv.set_network(tamper_media=True))
    try:
        assert main([*argv, "--shards", "0"]) == 1  # in this process
        out = capsys.readouterr().out
        media = next(line for line in out.splitlines() if line.startswith("Media: "))
        assert set(media[7:].split(", ")) == {"G.14-rtp-not-encrypted-mode 2", "G.14-media-unauthenticated 2"}
        assert "Media failed: " in out and "(G.14-media-unauthenticated): 3 SRTP packet(s) came" in out, out
        failed = [tc for tc in ET.parse(junit).getroot().iter("testcase") if tc.find("failure") is not None]
        assert sorted(tc.get("name") or "" for tc in failed) == sorted(macs[:2])
        assert failed[0].find("failure").get("message", "").startswith(  # type: ignore[union-attr]
            "no media (G.14-media-unauthenticated)")
    finally:
        stop()
    assert main(["fleet", "boot", "--lab", str(c.root), "--mac-start", macs[0], "--count", "1", "--call",
                 "moh"]) == 2
    assert "--call needs --register" in capsys.readouterr().err


def test_a_phone_whose_lsc_the_registrar_refuses_is_told_the_way_out(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``boot --register`` of an encrypted phone holding an LSC of a CAPF regenerated since: the lab
    registrar refuses the LSC in the TLS handshake with its alert (not a reset), the phone says
    ``G.13-device-cert-refused`` naming its LSC, and the way out follows — a new LSC from the current
    CAPF, its lab command filled with the lab and the phone's MAC (spec §F.9; seed Device
    Authentication)."""
    import xml.etree.ElementTree as ET

    from tests.helpers import serve_in_thread

    c = LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=NOW)
    mac, other = mac_text(START), mac_text(START + 1)
    c.add_phones([mac, other], now=NOW)
    c.set_mixed_mode(True, now=NOW)
    c.set_security_mode([mac, other], "encrypted", now=NOW)
    c.set_capf([mac, other], "install", auth_mode="null-string", now=NOW)
    _ports, stop = serve_in_thread(c, sip_ports={"sip": 0, "sips": 0})
    try:
        flash = tmp_path / "flash"
        argv = ["boot", "--lab", str(c.root), "--mac", mac, "--flash", str(flash), "--register"]
        assert main(argv) == 0
        assert "registered over tls" in capsys.readouterr().out
        fleet = ["fleet", "boot", "--lab", str(c.root), "--count", "1", "--mac-start", other, "--flash",
                 str(tmp_path / "fleet"), "--register", "-q", "--shards", "1"]
        assert main(fleet) == 0  # its LSC enrolled too
        c.regenerate("capf", now=NOW)
        junit = tmp_path / "f.xml"
        assert main([*fleet, "--shards", "0", "--junit", str(junit)]) == 1  # in this process
        out = capsys.readouterr().out
        assert "ways out of G.13-device-cert-refused (sip; 1 phone not registered):" in out
        (failure,) = [tc.find("failure") for tc in ET.parse(junit).getroot().iter("testcase")]
        assert failure is not None and "phoneemu lab capf" in (failure.text or "")
        assert main(argv) == 1
        out = capsys.readouterr().out
        assert "G.13-device-cert-refused: the registrar refused the phone's certificate (its LSC)" in out
        assert "ALERT_UNKNOWN_CA" in out
        assert "  way out (the CAPF certificate regenerated (the phones' LSCs were issued by the old " in out
        assert f"lab: phoneemu lab capf {c.root} install --mac {mac} --auth-mode null-string" in out
        assert main([*argv, "--json"]) == 1
        sip = json.loads(capsys.readouterr().out)["sip"]
        assert sip["rule"] == "G.13-device-cert-refused" and sip["ways_out"][0]["scenario"] == \
            "sip-tls-mutual-authentication"
    finally:
        stop()


def test_fleet_lab_phones_trust_the_labs_image_signer(tmp_path: Path) -> None:
    """``fleet boot --lab DIR`` phones trust the lab's image-signing certificate as ``boot --lab`` does
    (spec §D): the load ``lab load`` names is accepted (the config then decides). Fleet phones trusted no
    image signer at all: every phone decided D-unknown-signer on the lab's own firmware."""
    import argparse

    from cryptography.hazmat.primitives.serialization import Encoding

    from phoneemu.commands.fleet import _image_signers

    c = LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=NOW)
    c.add_phones([mac_text(START + i) for i in range(COUNT)], now=NOW)
    c.set_load("sip88xx.14-3-1", now=NOW)
    signers = _image_signers(argparse.Namespace(image_signer=[], lab=c.root))
    assert signers == (c.identity("imagesigning").cert.public_bytes(Encoding.DER),)
    assert _image_signers(argparse.Namespace(image_signer=[], lab=None)) == ()

    async def body(trusted: tuple[bytes, ...]) -> Any:
        async with LabServers(c, host=HOST) as srv:
            target = BootTarget(host=HOST, tftp_port=srv.ports["tftp"], http_port=srv.ports["http"])
            spec = FleetSpec(target=target, count=COUNT, mac_start=START, keep_records=True,
                             image_signers=trusted)
            return await run_shard(spec, range(START, START + COUNT))

    # the firmware accepted, the config decides; its signer unknown, the firmware refusal decides
    assert {r.rule for r in run(body(signers)).records} == {"G.4-signed-by-itl-tftp"}
    assert {r.rule for r in run(body(())).records} == {"D-unknown-signer"}
