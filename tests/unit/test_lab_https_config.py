"""The lab's HTTPS configuration download (TCP 6971, spec §H.1; lab/https_config_service.py, the
``https-config`` service of lab/servers.py), over loopback TLS.

Before: ``lab init --https-key`` put the ``tftp-https`` EC record (role TFTP) in the ITL, signer version
1.1, but no 6971 server ran: a phone told by its ITL to fetch its config over HTTPS found nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import PublicKeyAlgorithmOID

from phoneemu.commands.lab_serve import _print_listening, _refuse_shared_tcp_ports, register_serve, serve
from phoneemu.errors import DecodeError, EncodeError, PhoneEmuError
from phoneemu.formats import config, trustlist
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.lab.state import HTTPS_CONFIG_PORT, STATE_FILE, https_config_port, load_state
from tests.helpers import run

HOST = "127.0.0.1"
NOW = 1_700_000_000
MAC = "0011223344A1"  # a non-encrypted phone
ENC = "0011223344A2"  # its config encrypted to its MIC (PKI)
SYM = "0011223344A3"  # its config encrypted with a manual key (no .cnf.xml served)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded lab with the HTTPS identity (``lab init --https-key ec-p256``) and three phones."""
    root = tmp_path_factory.mktemp("https-config") / "lab"
    lab = LabCluster.init(root, seed=61, key_spec="rsa1024", now=NOW, https_key="ec-p256")
    lab.add_phone(MAC, now=NOW)
    lab.add_phone(ENC, encrypt="pki", now=NOW)
    lab.add_phone(SYM, encrypt="symmetric", symmetric_key="00112233445566778899aabbccddeeff", now=NOW)
    return root


async def _ask(port: int, request: bytes) -> tuple[bytes, bytes]:
    """(the server's certificate, DER; its whole answer to ``request``) over TLS, the certificate not
    checked (the phone's side checks it against its ITL)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port, ssl=ctx), 5.0)
    try:
        cert = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.write(request)
        await writer.drain()
        return cert, await asyncio.wait_for(reader.read(), 5.0)
    finally:
        writer.close()


def _get(target: str, method: str = "GET") -> bytes:
    return f"{method} {target} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()


def _status_fields_body(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("ascii").split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ")[1]), {k.lower(): v for k, v in fields.items()}, body


def _with_servers(cluster: LabCluster, *requests: bytes, **options: object
                  ) -> tuple[LabServers, list[tuple[bytes, bytes]]]:
    """Each request on a connection of its own to a running lab's ``https-config``; the servers (stopped)
    and each (certificate, answer)."""
    servers = LabServers(cluster, clock=lambda: cluster.clock + 60, **options)  # type: ignore[arg-type]

    async def main() -> list[tuple[bytes, bytes]]:
        async with servers:
            return [await _ask(servers.ports["https-config"], r) for r in requests]
    return servers, run(main(), limit=30.0)


def test_presents_the_itl_tftp_ec_record_and_serves_the_unsigned_config(cluster: LabCluster) -> None:
    servers, answers = _with_servers(cluster, _get(f"/SEP{MAC}.cnf.xml.sgn"), _get(f"/SEP{MAC}.cnf.xml"),
                                     _get(f"/SEP{MAC}.cnf.xml.sgn", "HEAD"))
    unsigned = cluster.get(f"SEP{MAC}.cnf.xml")
    assert unsigned is not None and config.parse(unsigned).full_config
    itl = trustlist.parse(cluster.get("ITLFile.tlv") or b"")
    assert itl.header.signer_version == (1, 1)
    tftp_records = [r.certificate for r in itl.records if r.role == trustlist.Role.TFTP]
    for cert_der, _answer in answers:
        assert tftp_records == [cert_der] == [cluster.identity("tftp-https").der]
        assert x509.load_der_x509_certificate(cert_der).public_key_algorithm_oid == \
            PublicKeyAlgorithmOID.EC_PUBLIC_KEY
    for _cert, answer in answers[:2]:
        status, fields, body = _status_fields_body(answer)
        assert (status, fields["content-type"], body) == (200, "text/xml", unsigned)
        assert fields["content-length"] == str(len(unsigned)) and fields["connection"] == "close"
    status, fields, body = _status_fields_body(answers[2][1])  # HEAD: the same head, no body
    assert (status, fields["content-length"], body) == (200, str(len(unsigned)), b"")
    assert [(r.service, r.name, r.outcome) for r in servers.requests] == [
        ("https-config", f"/SEP{MAC}.cnf.xml.sgn", "ok"), ("https-config", f"/SEP{MAC}.cnf.xml", "ok"),
        ("https-config", f"/SEP{MAC}.cnf.xml.sgn", "ok")]
    # its port recorded with the others' (boot --lab finds it), saved
    assert cluster.state.ports["https-config"] == servers.ports["https-config"]
    assert LabCluster.open(cluster.root).state.ports["https-config"] == servers.ports["https-config"]
    assert https_config_port(cluster.state) == servers.ports["https-config"]


def test_an_encrypted_config_is_never_served_whole(cluster: LabCluster) -> None:
    """Ours: the stub TFTP serves as ``SEP<MAC>.cnf.xml``; a manual-key phone, which has none, 404."""
    _servers, answers = _with_servers(cluster, _get(f"/SEP{ENC}.cnf.xml.sgn"), _get(f"/SEP{SYM}.cnf.xml.sgn"))
    stub = cluster.get(f"SEP{ENC}.cnf.xml")
    assert stub is not None and config.parse(stub).is_stub and config.parse(stub).encr_config
    status, _fields, body = _status_fields_body(answers[0][1])
    assert (status, body) == (200, stub)
    assert cluster.get(f"SEP{SYM}.cnf.xml") is None
    assert _status_fields_body(answers[1][1])[0] == 404


@pytest.mark.parametrize("target", [
    "/ITLFile.tlv", f"/ITLSEP{MAC}.tlv", f"/SEP{MAC}.cnf.xml.enc.sgn", f"/SEP{ENC}.cnf.xml.enc.sgn",
    "/SEP0011223344FF.cnf.xml.sgn", f"/sep{MAC.lower()}.cnf.xml.sgn", "/XmlDefault.cnf.xml", "/",
    "/../cluster.json", f"/SEP{MAC}.cnf.xml.sgn/../../cluster.json", "/%2e%2e/cluster.json",
    f"/%53EP{MAC}.cnf.xml.sgn", "/..\\cluster.json", f"/x/../SEP{MAC}.cnf.xml.sgn",
    f"/SEP{MAC}.cnf.xml.sgn%00", f"//SEP{MAC}.cnf.xml.sgn"])
def test_any_other_name_is_not_found(cluster: LabCluster, target: str) -> None:
    _servers, answers = _with_servers(cluster, _get(target))
    status, _fields, body = _status_fields_body(answers[0][1])
    assert (status, body) == (404, b"404 Not Found\n")


def test_malformed_head_method_and_failing_download(cluster: LabCluster) -> None:
    servers = LabServers(cluster, clock=lambda: cluster.clock + 60)
    servers.set_network(fail=[f"SEP{MAC}.cnf.xml"])  # the lab's download of this device fails: 500

    async def main() -> list[bytes]:
        async with servers:
            port = servers.ports["https-config"]
            return [(await _ask(port, r))[1] for r in (
                b"GET /SEP" + MAC.encode() + b".cnf.xml.sgn HTTP/1.1\r\nno colon here\r\n\r\n",
                b"GET SEP" + MAC.encode() + b".cnf.xml.sgn HTTP/1.1\r\n\r\n",
                _get(f"/SEP{MAC}.cnf.xml.sgn", "POST"), _get(f"/SEP{MAC}.cnf.xml.sgn"),
                _get(f"/SEP{ENC}.cnf.xml.sgn"))]
    answers = [_status_fields_body(a) for a in run(main(), limit=30.0)]
    assert [a[0] for a in answers] == [400, 400, 405, 500, 200]
    assert answers[2][1]["allow"] == "GET, HEAD"
    assert [(r.name, r.outcome) for r in servers.requests] == [
        ("", "malformed"), ("", "malformed"), (f"/SEP{MAC}.cnf.xml.sgn", "refused"),
        (f"/SEP{MAC}.cnf.xml.sgn", "error"), (f"/SEP{ENC}.cnf.xml.sgn", "ok")]


def test_a_lab_without_the_https_identity_has_no_such_service(tmp_path: Path) -> None:
    lab = LabCluster.init(tmp_path / "plain", seed=62, key_spec="rsa1024", now=NOW)
    servers = LabServers(lab, clock=lambda: lab.clock + 60)

    async def main() -> None:
        async with servers:
            assert "https-config" not in servers.ports
            with pytest.raises(PhoneEmuError, match="unknown service 'https-config'"):
                await servers.start_service("https-config")
    run(main(), limit=30.0)
    assert "https-config" not in LabCluster.open(lab.root).state.ports
    assert https_config_port(lab.state) is None
    with pytest.raises(EncodeError, match="unknown service 'https-config'"):
        lab.set_ports(**{"https-config": 7001})
    with pytest.raises(PhoneEmuError, match="has no HTTPS configuration server"):  # lab serve refuses it
        run(serve(lab.root, https_config_port=0), limit=30.0)


def test_a_state_saved_without_the_port_loads(cluster: LabCluster) -> None:
    """Labs saved before the port was recorded (or never served): no ``https-config`` key, 6971."""
    path = cluster.root / STATE_FILE
    saved = json.loads(path.read_text())
    assert "https-config" not in saved["ports"]  # as init made it
    assert https_config_port(load_state(cluster.root)) == HTTPS_CONFIG_PORT == 6971
    path.write_text(json.dumps({**saved, "ports": {**saved["ports"], "https-config": 70000}}))
    with pytest.raises(DecodeError, match=r"expected a port 0\.\.65535"):
        load_state(cluster.root)


def test_its_port_alone_rebuilds_no_file(cluster: LabCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """No config names the 6971 port: recording it rebuilds nothing (a 40,000-phone lab: a minute)."""
    def rebuild() -> None:
        raise AssertionError("every served file rebuilt")

    files = cluster.files()
    monkeypatch.setattr(cluster, "_rebuild", rebuild)
    cluster.set_ports(**{"https-config": 7001})
    assert cluster.state.log[-1].op == "ports" and cluster.files() == files
    assert LabCluster.open(cluster.root).state.ports["https-config"] == 7001


def test_lab_serve_option_and_listening_line(cluster: LabCluster, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    register_serve(parser.add_subparsers())
    args = parser.parse_args(["serve", "DIR", "--https-config-port", "7005", "--http-port", "7005"])
    with pytest.raises(PhoneEmuError, match="--http-port and --https-config-port are both 7005"):
        _refuse_shared_tcp_ports(args)
    assert parser.parse_args(["serve", "DIR"]).https_config_port is None  # 6971 for a lab with it
    servers = LabServers(cluster, clock=lambda: cluster.clock + 60)

    async def main() -> None:
        async with servers:
            _print_listening(servers, cluster.root, HOST)
    run(main(), limit=30.0)
    cert = cluster.identity("tftp-https").cert
    line = next(line for line in capsys.readouterr().out.splitlines() if "https-config" in line)
    assert line.startswith(f"listening https-config tls {HOST}:{servers.ports['https-config']}  cert ")
    assert cert.subject.rfc4514_string().split(",")[0].split("=")[1] in line
