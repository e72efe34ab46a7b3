"""``phoneemu boot`` and ``phoneemu phone show`` against a lab cluster over loopback (spec §C.6, §H.3, §H.4).

The CLI runs in the test's thread (``main([...])``: it owns its event loop; none of these tests is about
the process, and a child interpreter each cost ~0.5 s of CPU) while the lab servers run on their own loop in
a thread (:func:`tests.helpers.lab_served_in_thread`); the one phone that waits for a call while another
places it runs in a child process. Each test checks exit codes, the printed steps and decisions, the JSON
document, and that a second run with the same ``--flash`` continues from the stored state (a reboot).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.phone.flash import Flash
from phoneemu.phone.phone import Phone
from phoneemu.phone.profile import get_profile
from tests.helpers import finish_process, lab_served_in_thread, reap, run_within

NOW = 1_780_000_000
MAC = "0A00000000C1"
HOST = "127.0.0.1"


run = run_within(90)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``phoneemu ARGS`` in this process: exit status, stdout, stderr."""
    capsys.readouterr()
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def _lab(tmp: Path) -> LabCluster:
    c = LabCluster.init(tmp / "lab", key_spec="rsa1024", now=NOW)
    c.add_phone(MAC, now=NOW)
    c.set_load("sip88xx.14-3-1", now=NOW)
    return c


def _encrypted_in_mixed_mode(c: LabCluster) -> None:
    """The phone MAC's security profile encrypted, the cluster in mixed mode (a CTL served)."""
    c.set_security_mode([MAC], "encrypted", now=NOW)
    c.set_mixed_mode(True, now=NOW)


def test_boot_cli_text_then_json_reboot_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = _lab(tmp_path)
    flash = tmp_path / "ph"

    with lab_served_in_thread(c, host=HOST) as (srv, on_loop):
        common = ["--tftp", f"{HOST}:{srv.ports['tftp']}", "--http-port", str(srv.ports["http"]),
                  "--lab", str(c.root), "--flash", str(flash), "--now", str(NOW), "--timeout", "1"]
        rc1, out1, err1 = cli(capsys, "boot", "--mac", MAC, *common)
        rc2, out2, _ = cli(capsys, "boot", "--json", *common)  # MAC from the flash's phone.json
        on_loop(lambda: c.tamper(f"SEP{MAC}.cnf.xml.sgn", now=NOW))
        rc3, out3, _ = cli(capsys, "boot", "--no-http", *common)
    assert rc1 == 0, err1
    assert "G.2-first-itl-tofu accepted" in out1 and "D-signed-by-image-key accepted" in out1
    assert f"File Not Found <CTLSEP{MAC}.tlv>" in out1 and f"Phone {MAC}: OK" in out1
    assert rc2 == 0
    doc = json.loads(out2)
    assert doc["report"]["trust"]["ITL"] == "unchanged" and doc["report"]["firmware"] == "unchanged"
    assert doc["report"]["load"] == "sip88xx.14-3-1" and doc["decisions"][0]["rule"] == "G.3-unchanged"
    assert any(e["kind"] == "request" for e in doc["events"]) and doc["statuses"]
    assert rc3 == 1 and "G.4-bad-signature rejected" in out3 and "FAILED" in out3

    rc, out, _ = cli(capsys, "phone", "show", "--flash", str(flash))
    assert rc == 0 and "The checksum value of the ITL file:" in out and "Running load: sip88xx.14-3-1" in out
    stored = Flash(flash, profile=get_profile("cp-8861")).load()
    assert stored.itl is not None and stored.itl.md5() in out


def test_a_server_that_answers_badly_is_not_told_nothing_answered(capsys: pytest.CaptureFixture[str]) -> None:
    """Every request answered by an OACK with an option never asked for: the decision said so, then the
    hint said "nothing answered at ... is the cluster's TFTP server running there?"."""
    import socket
    import threading

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(0.2)
        stop = threading.Event()

        def serve() -> None:
            while not stop.is_set():
                try:
                    _data, addr = sock.recvfrom(2048)
                except OSError:
                    continue
                sock.sendto(b"\x00\x06evil\x001\x00", addr)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            rc = main(["boot", "--tftp", f"{HOST}:{sock.getsockname()[1]}", "--mac", MAC, "--no-http",
                       "--timeout", "0.5", "--now", str(NOW)])
        finally:
            stop.set()
            thread.join(5)
    out, err = capsys.readouterr()
    assert rc == 1 and "options we did not ask for" in out, out
    assert "nothing answered" not in err, err


def test_boot_cli_errors_and_unreachable_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """In process (no lab needed): nothing answers → statuses, one hint line on stderr naming the address
    and port nobody answered on, and exit 1; bad arguments → exit 2."""
    rc1 = main(["boot", "--tftp", f"{HOST}:9", "--mac", MAC, "--no-http", "--timeout", "0.05",
                "--now", str(NOW)])
    out1, err1 = capsys.readouterr()
    assert rc1 == 1 and ("TFTP timeout" in out1 or "TFTP error" in out1) and "FAILED" in out1
    assert "timeout: timeout" not in out1  # the kind is said once: "timeout: no answer after 3 retries"
    assert err1.count("\n") == 1
    assert err1.startswith(f"phoneemu boot: nothing answered at {HOST} (TFTP port 9)")
    assert "lab serve DIR --tftp-port 9" in err1
    assert main(["boot", "--tftp", HOST, "--mac", "0011223344"]) == 2  # a MAC short of two digits
    err = capsys.readouterr().err
    assert err == ("phoneemu boot: --mac MAC: '0011223344' is not a MAC address: 12 hex digits, e.g. "
                   "001122334455, 00:11:22:33:44:55 or 0011.2233.4455\n")
    assert main(["boot", "--tftp", f"{HOST}:0", "--mac", MAC]) == 2
    assert "port" in capsys.readouterr().err
    assert main(["boot", "--tftp", HOST, "--mac", MAC, "--mic", str(tmp_path / "x.pem")]) == 2
    assert "--mic and --mic-key" in capsys.readouterr().err
    assert main(["boot", "--tftp", HOST, "--flash", str(tmp_path / "empty")]) == 2
    assert "--mac is required" in capsys.readouterr().err
    # a flash belongs to one phone of one model: booting it as another is refused, nothing rewritten
    flash = tmp_path / "ph"
    flash.mkdir()
    ident = json.dumps({"mac": MAC, "profile": "cp-8861"})
    (flash / "phone.json").write_text(ident)
    assert main(["boot", "--tftp", f"{HOST}:9", "--flash", str(flash), "--profile", "cp-7940"]) == 2
    assert capsys.readouterr().err == (f"phoneemu boot: --flash DIR: {flash} holds the flash of a cp-8861, "
                                       "not a cp-7940: a flash belongs to one model (--profile cp-8861, or "
                                       "another flash folder)\n")
    assert main(["boot", "--tftp", f"{HOST}:9", "--flash", str(flash), "--mac", "0A0000000001"]) == 2
    assert f"holds the flash of phone {MAC}, not 0A0000000001" in capsys.readouterr().err
    assert (flash / "phone.json").read_text() == ident


def test_phone_object_and_cli_share_flash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A Phone object reads what the CLI stored (same flash layout, phone.json)."""
    c = _lab(tmp_path)
    flash = tmp_path / "ph"

    with lab_served_in_thread(c, host=HOST) as (srv, _on_loop):
        rc, _, _ = cli(capsys, "boot", "--tftp", f"{HOST}:{srv.ports['tftp']}", "--http-port",
                       str(srv.ports["http"]), "--mac", MAC, "--lab", str(c.root),
                       "--flash", str(flash), "--now", str(NOW))
    assert rc == 0
    ph = Phone.from_flash(flash, profile=get_profile("cp-8861"), clock=lambda: NOW)
    assert ph.mac == MAC and ph.store.itl is not None and ph.store.firmware_load == "sip88xx.14-3-1"
    assert ph.store.config is not None and ph.store.config.file == f"SEP{MAC}.cnf.xml.sgn"


def test_boot_keylog_decrypts_the_tvs_exchange(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--keylog: the secrets of the phone's TVS connection are written; with them the exchange
    decrypts (the same decryption replay --keylog uses). The key log is 0600 whatever the umask (a
    given one is appended to, narrowed to 0600: every session's secrets are in it)."""
    import os
    import stat

    from phoneemu.net.tls_decrypt import read_keylog

    c = _lab(tmp_path)
    flash, keys = tmp_path / "ph", tmp_path / "tls.keys"
    keys.write_text("# the user's own lines\n")
    keys.chmod(0o644)
    old_umask = os.umask(0o022)

    try:
        with lab_served_in_thread(c, host=HOST) as (srv, on_loop):
            common = ["--tftp", f"{HOST}:{srv.ports['tftp']}", "--http-port", str(srv.ports["http"]),
                      "--lab", str(c.root), "--flash", str(flash), "--now", str(NOW), "--keylog", str(keys)]
            first = cli(capsys, "boot", "--mac", MAC, *common)
            assert first[0] == 0, first
            on_loop(lambda: c.regenerate("itlrecovery", now=NOW))  # the next ITL's signer is unknown: ask TVS
            rc, out, _ = cli(capsys, "boot", *common)
    finally:
        os.umask(old_umask)
    assert rc == 0 and "G.3.4-vouched-by-tvs" in out
    assert len(read_keylog(keys)) == 1  # one TLS session: the TVS query
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600 and keys.read_text().startswith("# the user's own")
    assert main(["boot", "--tftp", HOST, "--mac", MAC, "--keylog", str(tmp_path)]) == 2  # a folder


def test_boot_with_lab_takes_the_model_the_lab_has_for_the_phone(tmp_path: Path) -> None:
    """``boot --lab DIR`` without --profile (and a fresh flash): the phone is the model the lab added it
    as (was always a cp-8861); --profile still wins."""
    from phoneemu.lab.cluster import LabCluster
    from phoneemu.phone.phone import read_phone_file

    c = LabCluster.init(tmp_path / "lab", seed=12, key_spec="rsa1024")
    c.add_phone(MAC, model="7962")
    common = ["boot", "--tftp", f"{HOST}:9", "--lab", str(c.root), "--mac", MAC, "--no-http", "--timeout",
              "0.05"]
    assert main([*common, "--flash", str(tmp_path / "a")]) == 1  # nothing listens: the model is what counts
    assert read_phone_file(tmp_path / "a")["profile"] == "cp-7962"
    assert main([*common, "--flash", str(tmp_path / "b"), "--profile", "cp-8861"]) == 1
    assert read_phone_file(tmp_path / "b")["profile"] == "cp-8861"


def test_boot_lab_types_the_labs_manual_key_and_capf_string(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """``boot --lab`` as ``fleet boot --lab``: a manual-key phone holds the key the lab encrypts its
    config with (spec §C.5) unless its flash holds one (set with ``phone set-key``: kept), and a phone
    with a CAPF operation by string has the lab's string typed in (spec §F.7) unless --auth-string."""
    sym, capf = "0A00000000D1", "0A00000000D2"
    c = LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=NOW)
    c.add_phone(sym, model="7942", encrypt="symmetric", symmetric_key="00112233445566778899aabbccddeeff",
                now=NOW)
    c.add_phone(capf, now=NOW)
    c.set_capf([capf], "install", auth_string="246810", key="ec-p256", now=NOW)

    with lab_served_in_thread(c, host=HOST) as (srv, _on_loop):
        common = ["--tftp", f"{HOST}:{srv.ports['tftp']}", "--http-port", str(srv.ports["http"]),
                  "--lab", str(c.root), "--json", "--capf-retry-delay", "0"]
        rc, out, err = cli(capsys, "boot", "--mac", sym, "--flash", str(tmp_path / "sym"), *common)
        assert rc == 0 and "the manual config key" in err
        assert json.loads(out)["report"]["deciding"]["rule"] == "G.12.3-decrypted"
        assert main(["phone", "set-key", "--flash", str(tmp_path / "sym"), "ff" * 16]) == 0
        rc, out, err = cli(capsys, "boot", "--flash", str(tmp_path / "sym"), *common)
        assert "the manual config key" not in err  # the flash's own key is kept: it decrypts nothing
        assert json.loads(out)["report"]["deciding"]["rule"] != "G.12.3-decrypted"
        rc, out, err = cli(capsys, "boot", "--mac", capf, "--flash", str(tmp_path / "w"), "--auth-string",
                           "1111", *common)
        assert "authentication string" not in err and json.loads(out)["report"]["lsc"] != "installed"
        rc, out, err = cli(capsys, "boot", "--mac", capf, "--flash", str(tmp_path / "c"), *common)
        assert rc == 0
        assert f"the CAPF authentication string {c.root} set for the install is typed in" in err
        assert json.loads(out)["report"]["lsc"] == "installed"


def test_boot_register_answers_the_digest_challenge_over_tcp_then_tls(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``boot --register HOST:PORT``: after the boot the phone registers with the SIP registrar (spec
    §G.13), over TCP; in encrypted mode with a CTL (mixed mode) over TLS on ``--sips-port`` (§G.9); with
    no registrar there, exit 1 and why."""
    c = _lab(tmp_path)
    c.set_digest([MAC], "alice", "s3cret", now=NOW)

    with lab_served_in_thread(c, host=HOST, sip_ports={"sip": 0, "sips": 0}) as (srv, on_loop):
        p = srv.ports
        common = ["--tftp", f"{HOST}:{p['tftp']}", "--http-port", str(p["http"]), "--mac", MAC,
                  "--flash", str(tmp_path / "ph"), "--register", f"{HOST}:{p['sip']}",
                  "--sips-port", str(p["sips"])]
        rc, out, _err = cli(capsys, "boot", *common)
        assert rc == 0, out
        assert f"SIP:       registered over tcp at {HOST}:{p['sip']}, challenged: G.13-registered" in out
        on_loop(lambda: _encrypted_in_mixed_mode(c))
        rc, out, _err = cli(capsys, "boot", "--json", *common)  # no MIC given: nothing to present
        doc = json.loads(out)
        assert rc == 1 and doc["sip"]["rule"] == "G.13-registrar-refused" and doc["sip"]["status"] == 403
        assert doc["sip"]["client_cert"] == ""
        rc, out, _err = cli(capsys, "boot", "--json", "--lab", str(c.root), *common)  # its MIC: mutual TLS
        doc = json.loads(out)
        assert rc == 0 and doc["sip"]["transport"] == "tls" and doc["sip"]["rules"] == [
            "G.5-sip-server-in-ctl", "G.13-registered"]
        assert doc["sip"]["tls"] == "TLSv1.2 AES128-SHA"  # CUCM's SIP line with a phone
        assert doc["sip"]["client_cert"] == "MIC"
        on_loop(lambda: c.set_security_mode([MAC], "non-secure", now=NOW))
        rc, out, _err = cli(capsys, "boot", *common[:-4], "--register", f"{HOST}:1")  # nobody there
        assert rc == 1 and f"SIP:       NOT registered over tcp at {HOST}:1: G.13-unreachable" in out
    assert any(r.service == "sip" and r.outcome == "challenged" for r in srv.requests)


def test_boot_register_without_an_address_finds_the_callmanager_in_its_config(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``boot --register`` alone: the phone registers with the CallManager its config names (spec §H.5
    ``devicePool``): a lab served with SIP records its ports there — TCP, then TLS on the recorded
    securedSipPort in encrypted mode with a CTL; the lab's SIP stopped: unreachable, exit 1."""
    c = _lab(tmp_path)
    c.set_digest([MAC], "alice", "s3cret", now=NOW)

    with lab_served_in_thread(c, host=HOST, sip_ports={"sip": 0, "sips": 0}) as (srv, on_loop):
        p = srv.ports
        assert c.state.ports["sip"] == p["sip"] and c.state.ports["sips"] == p["sips"]
        common = ["--tftp", f"{HOST}:{p['tftp']}", "--http-port", str(p["http"]), "--mac", MAC,
                  "--flash", str(tmp_path / "ph"), "--lab", str(c.root), "--register"]  # its MIC (TLS)
        rc, out, _err = cli(capsys, "boot", *common)
        assert rc == 0, out
        assert f"SIP:       registered over tcp at {HOST}:{p['sip']}, challenged: G.13-registered" in out
        on_loop(lambda: _encrypted_in_mixed_mode(c))
        rc, out, _err = cli(capsys, "boot", "--json", *common)
        doc = json.loads(out)
        assert rc == 0 and doc["sip"]["transport"] == "tls"
        assert doc["sip"]["server"] == f"{HOST}:{p['sips']}"
        on_loop(lambda: srv.stop_service("sips"))
        rc, out, _err = cli(capsys, "boot", *common)
        assert rc == 1 and f"NOT registered over tls at {HOST}:{p['sips']}: G.13-unreachable" in out


def test_boot_call_exchanges_srtp_in_encrypted_mode_and_rtp_otherwise(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``boot --register --call moh``: over the registered connection the phone calls the lab's music on
    hold (spec §G.14): challenged INVITE answered from the cached digest, RTP in non-secure mode; SRTP
    AES_CM_128_HMAC_SHA1_80 in encrypted mode over TLS, every packet authenticated both ways; the media
    tampered on the way: nothing authenticates, exit 1; an unknown user: 404, exit 1; --call alone: an
    error naming --register."""
    c = _lab(tmp_path)
    c.set_digest([MAC], "alice", "s3cret", now=NOW)

    with lab_served_in_thread(c, host=HOST, sip_ports={"sip": 0, "sips": 0}) as (srv, on_loop):
        p = srv.ports
        common = ["--tftp", f"{HOST}:{p['tftp']}", "--http-port", str(p["http"]), "--mac", MAC,
                  "--flash", str(tmp_path / "ph"), "--lab", str(c.root), "--register"]
        rc, out, _err = cli(capsys, "boot", *common, "--call", "moh", "--packets", "4")
        assert rc == 0, out
        assert "Call:      moh: media rtp: G.14-rtp-not-encrypted-mode" in out
        assert "sent 4, received 4 (authenticated 0, refused 0); far end: received=4 " in out
        assert "  way out (the phone's security profile is Non Secure or Authenticated" in out
        assert f"    lab: phoneemu lab security-mode {c.root} --mac {MAC} encrypted   rehearse: " \
            "phoneemu run scenarios/media-encryption-needs-encrypted-signalling.yaml" in out
        on_loop(lambda: _encrypted_in_mixed_mode(c))
        rc, out, _err = cli(capsys, "boot", "--json", *common, "--call", "ivr")
        doc = json.loads(out)
        assert rc == 0 and doc["sip"]["transport"] == "tls", out
        call = doc["call"]
        assert (call["media"], call["suite"]) == ("srtp", "AES_CM_128_HMAC_SHA1_80")
        assert call["rule"] == "G.14-srtp"
        assert (call["sent"], call["authenticated"], call["refused"]) == (10, 10, 0)
        assert call["far_end"] == "received=10 authenticated=10 refused=0"
        assert call["offered"] == ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"]
        on_loop(lambda: srv.set_network(tamper_media=True))
        rc, out, _err = cli(capsys, "boot", *common, "--call", "moh")
        assert rc == 1 and "G.14-media-unauthenticated" in out and "refused 10" in out
        on_loop(srv.set_network)
        rc, out, _err = cli(capsys, "boot", *common, "--call", "nobody")
        assert rc == 1 and "Call:      nobody: media none: G.14-call-refused: INVITE nobody: 404" in out
        assert main(["boot", *common[:-1], "--call", "moh"]) == 2  # a usage error, before the phone starts
        assert "--call needs --register" in capsys.readouterr().err
    assert any(r.service == "media" and r.outcome == "answered" for r in srv.requests)


def test_boot_answer_takes_the_call_another_boot_places(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """``boot --register --answer S`` keeps the registered connection and answers the call another
    phone's ``boot --register --call SEP<MAC>`` places through the lab's CallManager (spec §G.14):
    both encrypted in mixed mode: SRTP both ways, each side's Call: line; --answer and --call together,
    or --answer without --register: an error."""
    other = "0A00000000C2"
    c = _lab(tmp_path)
    c.add_phone(other, now=NOW)
    c.set_mixed_mode(True, now=NOW)
    c.set_security_mode([MAC, other], "encrypted", now=NOW)

    with lab_served_in_thread(c, host=HOST, sip_ports={"sip": 0, "sips": 0}) as (srv, on_loop):
        p = srv.ports
        common = ["--tftp", f"{HOST}:{p['tftp']}", "--http-port", str(p["http"]), "--lab", str(c.root),
                  "--register"]
        # the answering phone in a child process: it waits while this one calls
        answering = subprocess.Popen([sys.executable, "-m", "phoneemu", "boot", *common, "--mac", MAC,
                                      "--flash", str(tmp_path / "a"), "--answer", "30", "--realtime"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            for _ in range(600):  # until the answering phone is registered (reachable), 30 s at most
                if on_loop(lambda: srv.relay.reaches(f"SEP{MAC}")) or answering.poll() is not None:
                    break
                time.sleep(0.05)
            rc, out, _err = cli(capsys, "boot", *common, "--mac", other, "--flash", str(tmp_path / "b"),
                                "--call", f"SEP{MAC}", "--packets", "5", "--realtime")
            assert rc == 0, out
            assert f"Call:      SEP{MAC}: media srtp AES_CM_128_HMAC_SHA1_80: G.14-srtp" in out
            assert "far end: received=5 authenticated=5 refused=0" in out
            rc, out, err = finish_process(answering, timeout=60)
        finally:
            reap(answering)
        assert rc == 0, (out, err)
        assert f"waiting up to 30s for a call to SEP{MAC}" in err
        assert f"Call:      from sip:SEP{other}@{HOST}: media srtp AES_CM_128_HMAC_SHA1_80: " \
            "G.14-srtp" in out
        assert "sent 5, received 5 (authenticated 5, refused 0)" in out
        # usage errors, said before the phone would start
        capsys.readouterr()
        assert main(["boot", *common, "--mac", MAC, "--call", "moh", "--answer", "1"]) == 2
        assert "--call or --answer, not both" in capsys.readouterr().err
        assert main(["boot", *common[:-1], "--mac", MAC, "--answer", "1"]) == 2
        assert "--answer needs --register" in capsys.readouterr().err
    assert any(r.service == "relay" and r.outcome == "relayed" for r in srv.requests)


def test_lab_show_has_the_itl_file_status_each_phone_reported(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Spec §G.1: a phone reports its installed ITL's hash when it registers; a served lab (``lab
    serve``'s watch) writes the reports, and ``lab show`` says Match — MisMatch once the ITL changed
    (a certificate regenerated) until the phone boots and registers again; Unknown for a phone that never
    registered."""
    from phoneemu.phone.boot import BootTarget

    other = "0A00000000C2"
    c = _lab(tmp_path)
    c.add_phone(other, now=NOW)

    async def body() -> None:
        async with LabServers(c, host=HOST, watch=0.05, sip_ports={"sip": 0, "sips": 0}) as srv:
            p = srv.ports
            prof = get_profile("cp-8861")
            phone = Phone(mac=MAC, profile=prof, flash=Flash(tmp_path / "ph", profile=prof),
                          clock=lambda: NOW)
            target = BootTarget(host=HOST, tftp_port=p["tftp"], http_port=p["http"])
            assert (await phone.boot(target)).ok
            assert (await phone.register_sip(HOST, p["sip"], p["sips"])).registered
        # (written at a watch interval, and the last ones when the servers stop)

    run(body())
    assert main(["lab", "show", str(c.root)]) == 0
    out = capsys.readouterr().out
    assert f"phone {MAC}: model 8861, encrypt off, capf -, LSC no, ITL File Status Match" in out
    assert f"phone {other}: model 8861, encrypt off, capf -, LSC no, ITL File Status Unknown" in out
    c.regenerate("tvs", now=NOW)
    assert main(["lab", "show", str(c.root), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    mine = doc["phones"][MAC]
    assert mine["itl_file_status"] == "MisMatch" and isinstance(mine["registered_at"], int)


def test_a_lab_serve_restart_keeps_the_earlier_reports(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """``lab serve`` stopped and started again: a phone that registered with the first keeps its ITL File
    Status after another phone registers with the second (the first registration wrote the file with
    itself alone: every earlier report was lost)."""
    from phoneemu.phone.boot import BootTarget

    other = "0A00000000C2"
    c = _lab(tmp_path)
    c.add_phone(other, now=NOW)

    async def serve_and_register(mac: str) -> None:
        async with LabServers(c, host=HOST, watch=0.05, sip_ports={"sip": 0, "sips": 0}) as srv:
            p = srv.ports
            prof = get_profile("cp-8861")
            phone = Phone(mac=mac, profile=prof, flash=Flash(tmp_path / mac, profile=prof), clock=lambda: NOW)
            assert (await phone.boot(BootTarget(host=HOST, tftp_port=p["tftp"], http_port=p["http"]))).ok
            assert (await phone.register_sip(HOST, p["sip"], p["sips"])).registered

    run(serve_and_register(MAC))
    run(serve_and_register(other))
    assert main(["lab", "show", str(c.root), "--json"]) == 0
    phones = json.loads(capsys.readouterr().out)["phones"]
    assert phones[MAC]["itl_file_status"] == "Match" and phones[other]["itl_file_status"] == "Match"


def test_a_phone_model_without_ec_refuses_an_ec_lsc_request(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """The CAPF key request is judged by the phone's model (``max_rsa_bits``, ``ec_support``): a cp-7962
    asked for an EC P-256 LSC answers REASON 7 and installs nothing, saying why; a cp-8861 makes it. It
    generated any key a server asked for."""
    capf = "0A00000000D2"
    c = LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=NOW)
    c.add_phone(capf, now=NOW)
    c.set_capf([capf], "install", auth_string="246810", key="ec-p256", now=NOW)

    with lab_served_in_thread(c, host=HOST) as (srv, _on_loop):
        common = ["--tftp", f"{HOST}:{srv.ports['tftp']}", "--http-port", str(srv.ports["http"]),
                  "--lab", str(c.root), "--json", "--capf-retry-delay", "0", "--mac", capf]
        _rc, out, _err = cli(capsys, "boot", "--flash", str(tmp_path / "old"), "--profile", "cp-7962",
                             *common)
        report = json.loads(out)["report"]
        assert report["lsc"] != "installed"
        assert "no EC keys" in json.dumps(report), report
        _rc, out, _err = cli(capsys, "boot", "--flash", str(tmp_path / "new"), "--profile", "cp-8861",
                             *common)
        assert json.loads(out)["report"]["lsc"] == "installed"
