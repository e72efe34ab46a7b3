"""``phoneemu tvs``: one TVS server asked about a certificate or a file's signer, over loopback (spec §E)."""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from phoneemu.protocols.tvs import Element, TvsMessage, TvsTag, decode, encode
from tests.helpers import boot_into_flash, copy_cluster, lab_template, serve_in_thread
from tests.tls_server_helpers import threaded_tls_servers

MAC = "0A00000000F1"
template = lab_template("tvscmd", seed=41, phones={MAC: {}})


@pytest.fixture
def served(template: Path, tmp_path: Path) -> Iterator[tuple[LabCluster, str, Path]]:
    """The lab served; its TVS address; its ITL as a phone holds it."""
    c = copy_cluster(template, tmp_path)
    ports, stop = serve_in_thread(c)
    itl = tmp_path / "held-ITLFile.tlv"
    itl.write_bytes(c.files()["ITLFile.tlv"])
    try:
        yield c, f"127.0.0.1:{ports['tvs']}", itl
    finally:
        stop()


def _pem(c: LabCluster, name: str, folder: Path) -> Path:
    p = folder / f"{name}.pem"
    p.write_bytes(c.identity(name).cert.public_bytes(Encoding.PEM))
    return p


def test_a_known_signer_and_an_unknown_one(served: tuple[LabCluster, str, Path], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    c, tvs, itl = served
    assert main(["tvs", tvs, str(itl), "--itl", str(itl)]) == 0  # the signer of the ITL: ITLRecovery
    out = capsys.readouterr().out
    assert out.startswith(f"QUERY {tvs} about the signer of {itl.name} (itl):")
    assert "talks to it: its certificate is a TVS record of the ITL" in out
    assert "answer  valid: roles System Administrator Security Token (0), TTL" in out
    other = LabCluster.init(tmp_path / "other", seed=42, key_spec="rsa1024", name="other")
    stranger = _pem(other, "itlrecovery", tmp_path)
    assert main(["tvs", tvs, str(stranger)]) == 1
    assert "answer  not known to this TVS (status 1)" in capsys.readouterr().out
    assert main(["tvs", tvs, str(_pem(c, "callmanager", tmp_path)), "--verify", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["request"] == "VERIFY" and doc["answer"]["valid"]
    assert doc["answer"]["roles"] == ["System Administrator Security Token (0)", "CCM+TFTP (2)"]
    assert main(["tvs", tvs, str(itl), "--tls", "1.0", "--json"]) == 0  # as a 7900-series phone
    assert json.loads(capsys.readouterr().out)["tls"].startswith("TLSv1 ")


def test_a_tvs_the_phones_itl_does_not_name_is_said(served: tuple[LabCluster, str, Path], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """TVS regenerated since the phone took its ITL: the answer is shown, and that the phone would not
    ask that server (spec §E.1); exit 1."""
    c, tvs, itl = served
    c.regenerate("tvs")
    assert main(["tvs", tvs, str(itl), "--itl", str(itl), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["phone_would_talk"] is False and doc["answer"]["valid"]


def test_no_answer_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    other = LabCluster.init(tmp_path / "c", seed=43, key_spec="rsa1024", name="c")
    pem = _pem(other, "callmanager", tmp_path)
    assert main(["tvs", f"127.0.0.1:{port}", str(pem), "--timeout", "2"]) == 1
    assert "no answer (unreachable)" in capsys.readouterr().out
    itl = tmp_path / "ITLFile.tlv"
    itl.write_bytes(other.files()["ITLFile.tlv"])
    assert main(["tvs", f"127.0.0.1:{port}", str(itl), "--verify"]) == 2
    assert "--verify sends a whole certificate" in capsys.readouterr().err
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x30\x03\x02\x01\x01")
    assert main(["tvs", f"127.0.0.1:{port}", str(junk)]) == 2
    assert str(junk) in capsys.readouterr().err
    assert main(["tvs", f"127.0.0.1:{port}", str(pem), "--tls", "1.5"]) == 2
    err = capsys.readouterr().err
    assert "--tls: '1.5' is not a TLS version (expected some of 1.0, 1.1, 1.2, 1.3)" in err
    xml = tmp_path / "plain.xml"
    xml.write_bytes(b"<device/>")
    assert main(["tvs", f"127.0.0.1:{port}", str(xml)]) == 2
    assert "no signer to ask about" in capsys.readouterr().err


def test_every_tvs_a_config_names_is_asked(served: tuple[LabCluster, str, Path], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """``--config``: each TVS server the phone's config names is asked (at once); the summary says
    which decides now for a phone asking them in priority order (the first that answers and, with
    --itl, that it talks to: spec §E.1) and what each later one would say on failover; exit 0 only
    when every one vouches."""
    import socket

    from phoneemu.formats import config

    _c, tvs, itl = served
    other = LabCluster.init(tmp_path / "other", seed=44, key_spec="rsa1024", name="o")
    other_ports, stop_other = serve_in_thread(other, tvs_port=0)
    with socket.socket() as s:  # a port nobody listens on: a node that is down
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    try:
        lab_port = int(tvs.rsplit(":", 1)[1])
        members = (config.Server(host="127.0.0.1", port=lab_port, priority=1),
                   config.Server(host="127.0.0.1", port=dead, priority=0),
                   config.Server(host="127.0.0.1", port=other_ports["tvs"], priority=2))
        cfg = tmp_path / f"SEP{MAC}.cnf.xml"
        cfg.write_bytes(config.build(config.DeviceConfig(device_name=f"SEP{MAC}", tvs_servers=members)))
        assert main(["tvs", str(itl), "--config", str(cfg), "--timeout", "2"]) == 1
        out = capsys.readouterr().out
        assert out.index(f"127.0.0.1:{dead} about") < out.index(f"{tvs} about") < \
            out.index(f"127.0.0.1:{other_ports['tvs']} about")  # the config's priority order
        assert "1 of 3 TVS servers vouch" in out
        assert f"a phone asking them in this order: {tvs} decides now (vouches)" in out
        assert f"were the servers before it down: 127.0.0.1:{other_ports['tvs']} does NOT vouch" in out
        # with the phone's ITL: the other cluster's TVS is not one it talks to; JSON says the same
        assert main(["tvs", str(itl), "--config", str(cfg), "--itl", str(itl), "--json",
                     "--timeout", "2"]) == 1
        doc = json.loads(capsys.readouterr().out)
        assert (doc["asked"], doc["vouching"], doc["decides_now"]) == (3, 1, tvs)
        assert doc["failover"] == []
        assert [d.get("phone_would_talk") for d in doc["servers"]] == [None, True, False]
        assert {d["device_name"] for d in doc["servers"]} == {f"CP-8861-SEP{MAC}"}  # as the phone asks (§E.4)
        # a server given and the same named by the config: asked once; all vouch: exit 0
        only = tmp_path / "only.cnf.xml"
        only.write_bytes(config.build(config.DeviceConfig(device_name=f"SEP{MAC}", tvs_servers=members[:1])))
        assert main(["tvs", tvs, str(itl), "--config", str(only)]) == 0
        assert "1 of 1 TVS servers vouch" in capsys.readouterr().out
    finally:
        stop_other()
    none = tmp_path / "none.cnf.xml"
    none.write_bytes(config.build(config.DeviceConfig(device_name=f"SEP{MAC}")))
    assert main(["tvs", str(itl), "--config", str(none)]) == 2
    assert "names no TVS server" in capsys.readouterr().err
    assert main(["tvs", str(itl)]) == 2
    assert "no TVS server to ask" in capsys.readouterr().err
    assert main(["tvs", str(itl), "--config", str(itl)]) == 2  # not a config: named as --config's
    err = capsys.readouterr().err
    assert f"--config FILE: {itl}: installed config: " in err and "installed-config" not in err


def test_an_emulated_phones_flash_asks_as_that_phone(served: tuple[LabCluster, str, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """``--flash DIR``: the TVS servers of the phone's accepted config, its ITL (would it talk to
    them?), its device name and its model's TLS versions (a cp-7962 speaks TLS 1.0)."""
    from tests.helpers import boot_into_flash

    c, tvs, itl = served
    flash = tmp_path / "ph"
    assert boot_into_flash(c, flash, MAC, profile="cp-7962").ok
    assert main(["tvs", "--flash", str(flash), str(itl), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [d["server"] for d in doc["servers"]] == [tvs]  # the config's TVS: no server given
    assert doc["servers"][0]["device_name"] == f"CP-7962-SEP{MAC}"  # its model's name (spec §E.4)
    assert doc["servers"][0]["phone_would_talk"] is True
    assert doc["servers"][0]["tls"].startswith("TLSv1 ")
    for argv, said in ((["--flash", str(flash), "--itl", str(itl)], "give --flash, or --config / --itl"),
                       (["--flash", str(tmp_path / "none")], "no such flash directory"),
                       (["--flash", str(tmp_path)], "holds no accepted config")):
        assert main(["tvs", *argv, str(itl)]) == 2
        assert said in capsys.readouterr().err


@pytest.fixture
def hostile(template: Path, tmp_path: Path) -> Iterator[tuple[LabCluster, Callable[[list[Element]], str]]]:
    """A TVS over TLS (the lab's TVS certificate) answering each request with the elements given:
    ``start(elements) -> HOST:PORT``."""
    from phoneemu.net.tls import server_context

    c = copy_cluster(template, tmp_path)
    tvs_id = c.identity("tvs")
    ctx = server_context(tvs_id.cert, tvs_id.key, min_version="1.0")  # @SECLEVEL=0: the lab's small keys

    def exchange(tls: ssl.SSLSocket, elements: list[Element]) -> None:
        got = b""
        while len(got) < 10 or len(got) < 10 + int.from_bytes(got[8:10], "big"):
            chunk = tls.recv(65536)
            if not chunk:
                break
            got += chunk
        req = decode(got)
        tls.sendall(encode(TvsMessage(msg_type=req.msg_type + 1, session_id=req.session_id,
                                      elements=tuple(elements))))

    with threaded_tls_servers(ctx, exchange) as start:
        yield c, start


def test_a_valid_answer_with_an_unreadable_certificate_is_a_failed_answer(
        hostile: tuple[LabCluster, Callable[[list[Element]], str]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Was "answer valid: ... TTL Nones, returns (unreadable certificate, 500 bytes)" and exit 0: a phone
    cannot verify a signer with a certificate it cannot read (spec §E.7.2)."""
    c, start = hostile
    pem = _pem(c, "itlrecovery", tmp_path)
    good = c.identity("itlrecovery").cert.public_bytes(Encoding.DER)
    status, roles = Element(tag=TvsTag.STATUS, value=b"\0"), Element(tag=TvsTag.ROLES, value=b"\0")
    for junk in (bytes(range(250)) * 2, good[:200]):  # 500 bytes of noise; truncated DER
        server = start([status, Element(tag=TvsTag.CERTIFICATE, value=junk), roles])
        assert main(["tvs", server, str(pem)]) == 1
        out = capsys.readouterr().out
        assert "answer  malformed: status 0 (valid) but the certificate returned" in out, out
        assert "is unreadable" in out and "answer  valid" not in out and "None" not in out, out
        assert main(["tvs", server, str(pem), "--json"]) == 1
        doc = json.loads(capsys.readouterr().out)
        assert doc["answer"]["valid"] is False and "unreadable" in doc["answer"]["problem"]
    # a good answer without a TTL reads sensibly
    server = start([status, Element(tag=TvsTag.CERTIFICATE, value=good), roles])
    assert main(["tvs", server, str(pem)]) == 0
    out = capsys.readouterr().out
    assert "no TTL (a phone keeps it 86400s), returns " in out and "TTL None" not in out, out


def test_a_valid_query_answer_without_the_certificate_does_not_vouch(
        hostile: tuple[LabCluster, Callable[[list[Element]], str]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Was "answer  valid: roles ..." and exit 0: a QUERY asks TVS to return the certificate (spec §E.3),
    and the phone verifies the signer with it (§E.7.2, §G.3.4): status 0 without it is "TVS does not know
    the signer" on a phone (rules ``_tvs_cert``), so it does not vouch, and the output says why. A VERIFY
    answer carries no certificate (the phone sent it): status 0 alone vouches."""
    c, start = hostile
    pem = _pem(c, "itlrecovery", tmp_path)
    status, roles = Element(tag=TvsTag.STATUS, value=b"\0"), Element(tag=TvsTag.ROLES, value=b"\0")
    ttl = Element(tag=TvsTag.TTL, value=(86400).to_bytes(4, "big"))
    server = start([status, roles, ttl])
    assert main(["tvs", server, str(pem)]) == 1
    out = capsys.readouterr().out
    assert "answer  does NOT vouch: status 0 (valid) but no certificate returned" in out, out
    assert "TVS does not know the signer" in out and "answer  valid" not in out, out
    assert main(["tvs", server, str(pem), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["answer"]["valid"] is False and doc["answer"]["certificate"] is None
    assert "no certificate returned" in doc["answer"]["problem"]
    second = start([status, roles, ttl])
    assert main(["tvs", server, second, str(pem)]) == 1  # several servers: the summary says it too
    out = capsys.readouterr().out
    assert "0 of 2 TVS servers vouch" in out, out
    assert f"{server} decides now (does NOT vouch (valid, no certificate returned))" in out, out
    assert main(["tvs", server, str(pem), "--verify"]) == 0  # VERIFY: no certificate is expected back
    out = capsys.readouterr().out
    assert "answer  valid: roles System Administrator Security Token (0), TTL 86400s" in out, out


def test_a_valid_query_answer_returning_another_certificate_does_not_vouch(
        hostile: tuple[LabCluster, Callable[[list[Element]], str]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Was "answer  valid: ..., returns <another subject>" and exit 0: the certificate a QUERY answer
    returns must be the signer asked about, its serial and issuer (spec §E.7.2); another one is, on a
    phone, "TVS does not know the signer" (§G.3.4, rules ``_tvs_cert``). The output says which differs,
    returned vs asked."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from phoneemu.crypto import certs

    c, start = hostile
    asked = c.identity("itlrecovery").cert
    pem = _pem(c, "itlrecovery", tmp_path)
    serial = certs.serial_bytes(asked.serial_number).hex()
    status, roles = Element(tag=TvsTag.STATUS, value=b"\0"), Element(tag=TvsTag.ROLES, value=b"\0")
    ttl = Element(tag=TvsTag.TTL, value=(86400).to_bytes(4, "big"))
    other = c.identity("callmanager").cert  # another serial (same lab issuer or not: said either way)
    server = start([status, Element(tag=TvsTag.CERTIFICATE, value=other.public_bytes(Encoding.DER)), roles,
                    ttl])
    assert main(["tvs", server, str(pem)]) == 1
    out = capsys.readouterr().out
    other_serial = certs.serial_bytes(other.serial_number).hex()
    assert "answer  does NOT vouch: status 0 (valid) but the certificate returned is not the one asked" \
        in out, out
    assert f"serial {other_serial} returned, {serial} asked" in out, out
    assert "TVS does not know the signer" in out and "answer  valid" not in out, out
    assert main(["tvs", server, str(pem), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["answer"]["valid"] is False and "not the one asked" in doc["answer"]["problem"]
    assert doc["answer"]["mismatch"]["serial"] == {"returned": other_serial, "asked": serial}
    # the same serial from another issuer
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "impostor CA")])
    now = datetime.datetime.now(datetime.UTC)
    impostor = (x509.CertificateBuilder().subject_name(asked.subject).issuer_name(name)
                .public_key(key.public_key()).serial_number(asked.serial_number)
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    server = start([status, Element(tag=TvsTag.CERTIFICATE, value=impostor.public_bytes(Encoding.DER)),
                    roles, ttl])
    assert main(["tvs", server, str(pem), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["answer"]["mismatch"]) == {"issuer"}, doc
    assert doc["answer"]["mismatch"]["issuer"] == {"returned": "CN=impostor CA", "asked": doc["issuer"]}
    second = start([status, Element(tag=TvsTag.CERTIFICATE, value=asked.public_bytes(Encoding.DER)), roles])
    assert main(["tvs", server, second, str(pem)]) == 1  # the summary says it too; the right one vouches
    out = capsys.readouterr().out
    assert "issuer CN=impostor CA returned, " in out, out
    assert "1 of 2 TVS servers vouch" in out, out
    assert f"{server} decides now (does NOT vouch (valid, another certificate returned))" in out, out
    assert main(["tvs", server, str(pem), "--verify"]) == 0  # VERIFY: the phone sent the certificate


def test_two_status_elements_that_disagree_are_no_answer(
        hostile: tuple[LabCluster, Callable[[list[Element]], str]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """STATUS 0 then STATUS 1: was read as the first, "valid" (exit 0)."""
    c, start = hostile
    server = start([Element(tag=TvsTag.STATUS, value=b"\0"), Element(tag=TvsTag.STATUS, value=b"\1"),
                    Element(tag=TvsTag.ROLES, value=b"\0")])
    assert main(["tvs", server, str(_pem(c, "callmanager", tmp_path)), "--verify"]) == 1
    out = capsys.readouterr().out
    assert "no answer (protocol)" in out and "STATUS" in out and "different values" in out, out


# --------------------------------------------------------------------------- one server's summary
# ``phoneemu tvs HOST FILE``, one server named, prints the summary ``tvs --flash`` prints (how many vouch,
# which one a phone asking them decides with): was none, the answer alone. Its ``--json`` stays the answer
# alone, as it always was.

def _summary(out: str) -> list[str]:
    """The lines after the last server's answer (the blank line under it)."""
    return out.rstrip("\n").split("\n\n")[-1].splitlines()


def test_one_server_named_gets_the_summary_a_flash_gets(served: tuple[LabCluster, str, Path], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    c, tvs, itl = served
    flash = tmp_path / "ph"
    assert boot_into_flash(c, flash, MAC).ok
    assert main(["tvs", "--flash", str(flash), str(itl)]) == 0
    from_flash = capsys.readouterr().out
    assert main(["tvs", tvs, str(itl), "--itl", str(itl)]) == 0
    named = capsys.readouterr().out
    expected = [f"1 of 1 TVS servers vouch: {tvs} vouches",
                f"a phone asking them in this order: {tvs} decides now (vouches)"]
    assert _summary(from_flash) == expected, from_flash
    assert _summary(named) == expected, named
    assert named.startswith(f"QUERY {tvs} about the signer of {itl.name} (itl):"), named
    assert main(["tvs", tvs, str(itl), "--json"]) == 0  # one server's JSON: its answer, as it was
    doc = json.loads(capsys.readouterr().out)
    assert doc["server"] == tvs and "decides_now" not in doc, doc


def test_one_server_not_answering_says_so_in_the_summary(tmp_path: Path, template: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    c = copy_cluster(template, tmp_path)
    itl = tmp_path / "ITLFile.tlv"
    itl.write_bytes(c.files()["ITLFile.tlv"])
    with socket.socket() as s:  # a loopback TCP port nothing listens on (bound, then released)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["tvs", f"127.0.0.1:{port}", str(itl), "--timeout", "1"]) == 1
    out = capsys.readouterr().out
    assert _summary(out) == [
        f"0 of 1 TVS servers vouch: 127.0.0.1:{port} no answer (unreachable)",
        "a phone asking them in this order gets no answer: unreachable (spec §G.3.4)"], out
