"""Review findings (session 41): DN values with escaped separators, predict's offline CAPF, the
fleet's "each run starts holding" wording.

1. ``certs.dn_key`` split a DN text on every ``,``/``;``, escaped or not: certutils' ``O=Cisco Systems\\,
   Inc.`` (RFC 4514) became two RDNs, so an issuer whose O carries a comma (as real CA names often do) was
   not the one CUCM's ``;`` text names (spec §A.7, §B.4): ``inspect`` said unknown-signer, the phone
   refused the list.
2. ``predict``'s offline CAPF decided an OK boot (``deciding: F.1-capf-unreachable ... CAPF unavailable
   offline (predict)``, and ``--fleet-flash`` filed accepted phones under it): now, as ``replay`` since
   b2eeb7c, it does not decide a boot that accepted a configuration (``capf_outcome.capf_not_deciding``).
3. ``fleet boot`` without ``--flash``, with several ``--installed-*`` options: "what --installed-itl A
   --installed-config-dir B gives; a run without it starts them erased" — now "give; a run without them";
   a path with spaces is quoted as a shell takes it back.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from cryptography import x509

from phoneemu.cli import main
from phoneemu.commands import fleet
from phoneemu.crypto import certs
from phoneemu.formats import header
from phoneemu.formats import trustlist as tlist
from phoneemu.formats.header import FileSigner, SignerInfo
from phoneemu.formats.trustlist import Role, TrustRecord
from phoneemu.phone import rules
from phoneemu.phone import ways_out as wo
from phoneemu.phone.profile import get_profile
from phoneemu.phone.store import TrustStore
from tests.unit.test_dn_order_everywhere import _issued as issued_by

NOW = 1_800_000_000
COMMA_CA = "CN=Lab_Issuing_CA;O=Cisco Systems, Inc.;C=US"


# --------------------------------------------------------------------------- 1. escaped separators in a DN
def _stored_order(name: x509.Name) -> str:
    """``name`` as certutils writes it (§A.7): RFC 4514 RDNs in stored order joined with ``,``."""
    return ",".join(rdn.rfc4514_string() for rdn in name.rdns)


def _issued(label: str, subject: str) -> FileSigner:
    """An RSA-1024 certificate of ``subject`` issued by a CA named :data:`COMMA_CA` (a comma in O)."""
    return issued_by(label, subject, COMMA_CA)


def _itl(*, certutils: bool, timestamp: int = NOW) -> bytes:
    """An ITL (TFTP + SAST records, issuer :data:`COMMA_CA`); ``certutils``: its header's tags 4/5/6 written
    as certutils writes them (stored order, ``,``, the comma in O escaped), else as the lab writes them."""
    tftp = _issued("tftp", "CN=lab-tftp;O=Cisco Systems, Inc.;C=US")
    recovery = _issued("recovery", "CN=ITLRECOVERY_lab;O=Cisco Systems, Inc.;C=US")
    records = [TrustRecord.from_certificate(tftp.cert, Role.TFTP),
               TrustRecord.from_certificate(recovery.cert, Role.SAST)]
    data = tlist.build(kind="ITL", records=records, signer=recovery, timestamp=timestamp)
    if not certutils:
        return data
    h = header.parse_header(data, fmt="test").header
    cert = recovery.cert
    info = SignerInfo(name=_stored_order(cert.subject), serial=certs.serial_bytes(cert.serial_number),
                      issuer=_stored_order(cert.issuer))
    assert "Systems\\, Inc." in info.issuer and info.issuer.startswith("C=US,")
    return header.sign_header(h, data[h.header_length:], recovery, signer_info=info)


def test_a_value_with_an_escaped_separator_is_one_rdn() -> None:
    cucm = "CN=cucm;O=Cisco Systems\\, Inc.;C=US"  # certs.dn_text's form of such a certificate
    assert certs.dn_key(cucm) == ("c=us", "cn=cucm", "o=ciscosystems,inc.")
    assert certs.dn_key("C=US,O=Cisco Systems\\, Inc.,CN=cucm") == certs.dn_key(cucm)  # certutils
    assert certs.dn_key("CN=cucm;O=Cisco Systems, Inc.;C=US") == certs.dn_key(cucm)  # not escaped in ;-text
    assert certs.dn_key("C=US,O=Cisco Systems\\2C Inc.,CN=cucm") == certs.dn_key(cucm)  # hex escape
    assert certs.dn_key("C=US,O=a\\;b,CN=x") == certs.dn_key("CN=x;O=a\\;b;C=US")  # an escaped ;: sep is ,
    assert certs.dn_key("CN=a\\;b") != certs.dn_key("CN=a;b")
    assert certs.dn_key("CN=a\\+O=b") != certs.dn_key("CN=a+O=b")
    # a multi-valued RDN is one RDN whatever its attributes' order, and not two RDNs
    assert certs.dn_key("CN=a+O=b;OU=c") == certs.dn_key("OU=c,O=b + CN=a") == ("cn=a+o=b", "ou=c")
    assert certs.dn_key("CN=a+O=b") != certs.dn_key("CN=a;O=b")
    # the common case reads as before (no RDN at all: ("",), the lab TVS's "any subject")
    assert certs.dn_key("") == certs.dn_key(" ; ") == ("",)
    assert certs.normalise_dn("CN=cucm-pub; OU=TAC;O=Cisco") == "cn=cucm-pub;ou=tac;o=cisco"
    assert certs.dn_key("C=PL, O=Cisco, CN=CUCM-PUB") == ("c=pl", "cn=cucm-pub", "o=cisco")


def test_dn_text_of_a_comma_value_escapes_it_and_names_the_same_issuer_as_certutils() -> None:
    """``dn_text`` (what the lab writes: ``;``, most specific first) keeps RFC 4514's ``\\,`` in a value; the
    certutils text of the same name is the same issuer (was: ``inc.`` and ``o=ciscosystems\\`` two RDNs)."""
    cert = _issued("recovery", "CN=ITLRECOVERY_lab;O=Cisco Systems, Inc.;C=US").cert
    cucm, certutils = certs.dn_text(cert.issuer), _stored_order(cert.issuer)
    assert cucm == "CN=Lab_Issuing_CA;O=Cisco Systems\\, Inc.;C=US"
    assert certs.same_issuer(certutils, cucm) and certs.same_issuer(cucm, certutils)
    assert not certs.same_issuer(certutils.replace("Inc.", "Ltd."), cucm)


def test_inspect_and_the_phone_take_an_itl_whose_issuer_has_a_comma_in_certutils_form(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Was: ``inspect`` unknown-signer, exit 1; the phone refused the list (no record named the signer)."""
    data = _itl(certutils=True, timestamp=NOW + 60)
    itl = tmp_path / "ITLFile.tlv"
    itl.write_bytes(data)
    assert [tlist.parse(data).names_signer(i) for i in range(2)] == [False, True]
    assert main(["inspect", str(itl), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    signature = next(c for c in report["checks"] if c["check"] == "signature")
    assert signature == {"check": "signature", "ok": True, "detail": "verified with its own SAST record #2"}
    # a phone holding the lab-written list takes the new one: its SAST record signed it (§G.3)
    p8861 = get_profile("cp-8861")
    phone = TrustStore(profile=p8861)
    phone.apply(rules.decide_trust_list(phone, _itl(certutils=False), kind="ITL", profile=p8861, now=NOW))
    d = rules.decide_trust_list(phone, data, kind="ITL", profile=p8861, now=NOW)
    assert d.accepted, d


# --------------------------------------------------------------------------- 2. predict's offline CAPF
CAPF_MAC = "0A00000000C1"


@pytest.fixture(scope="module")
def capf_lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lab whose phone :data:`CAPF_MAC` has a CAPF operation pending (install, null-string)."""
    root = tmp_path_factory.mktemp("s41-capf") / "capf"
    assert main(["lab", "init", str(root), "--seed", "5", "--key", "rsa1024", "--now", str(NOW)]) == 0
    assert main(["lab", "phone", "add", str(root), "--mac", CAPF_MAC, "--capf", "install",
                 "--auth-mode", "null-string"]) == 0
    return root


def test_predict_an_ok_boot_is_not_decided_by_the_offline_capf(capf_lab: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["predict", "--now", str(NOW), "--mac", CAPF_MAC, str(capf_lab / "tftp")]) == 0
    out = capsys.readouterr().out
    # the phone still tried its CAPF server, and says so
    assert "F.1-capf-unreachable         rejected after 1 attempts: CAPF unavailable offline (predict)" in out
    assert "  result:   OK;" in out
    deciding = next(line for line in out.splitlines() if line.startswith("  deciding: "))
    assert deciding == (f"  deciding: G.4-signed-by-itl-tftp (accepted) SEP{CAPF_MAC}.cnf.xml.sgn: signature "
                        "verified"), out


def test_predict_fleet_files_the_accepted_capf_phone_under_its_config_rule(
        capf_lab: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    phone = tmp_path / "fleet" / CAPF_MAC  # a phone's flash holding nothing yet
    phone.mkdir(parents=True)
    (phone / "phone.json").write_text(json.dumps({"mac": CAPF_MAC, "profile": "cp-8861"}))
    out_json = tmp_path / "out.json"
    assert main(["predict", "--fleet-flash", str(tmp_path / "fleet"), "--now", str(NOW), "--json-file",
                 str(out_json), str(capf_lab / "tftp")]) == 0
    capsys.readouterr()
    doc = json.loads(out_json.read_text())
    assert doc["rules"] == [{"rule": "G.4-signed-by-itl-tftp", "outcome": "accepted", "count": 1,
                             "first_macs": [CAPF_MAC]}]
    assert doc["phones"][0]["deciding"]["rule"] == "G.4-signed-by-itl-tftp"


# --------------------------------------------------------------------------- 3. the options a run starts from
def _erase_line(given: str) -> str:
    fill = {wo.FLASH_NOT_KEPT: "phoneemu fleet boot", wo.FLASH_STARTS_HOLDING: given}
    lines = wo.way_out_lines("G.3.4-tvs-server-untrusted", "ITL", fill=fill, fleet=True)
    return next(line for line in lines if "nothing to erase" in line)


def test_several_installed_options_are_them() -> None:
    given = "--installed-itl B/tftp/ITLFile.tlv --installed-config-dir B/tftp/"
    assert (f"(no --flash: each run starts holding what {given} give; a run without them starts them erased; "
            "phoneemu fleet boot --flash FOLDER keeps them)") in _erase_line(given)
    one = "--installed-itl B/tftp/ITLFile.tlv"
    assert (f"(no --flash: each run starts holding what {one} gives; a run without it starts them erased; "
            ) in _erase_line(one)


def test_installed_options_quote_a_path_with_spaces() -> None:
    args = argparse.Namespace(installed_itl=Path("/tmp/my lab/ITLFile.tlv"), installed_ctl=None,
                              installed_config_dir=Path("/tmp/plain"))
    assert fleet._installed_options(args) == \
        "--installed-itl '/tmp/my lab/ITLFile.tlv' --installed-config-dir /tmp/plain"
    assert fleet._installed_options(argparse.Namespace()) == ""
