"""A lab's files told from a cluster's that is not one by their signers (phone.lab_signers)."""

from __future__ import annotations

import pytest

from phoneemu.crypto.keys import KeySpec
from phoneemu.formats import firmware, signed
from phoneemu.lab.pki import LabPki
from phoneemu.phone.lab_signers import LabSigners, joined, names_a_lab, not_a_lab_fill, signed_by_lab
from phoneemu.phone.ways_out import NOT_A_LAB

NOW = 1_780_000_000


@pytest.mark.parametrize(("dn", "lab"), [
    ("CN=ITLRECOVERY_c-pub;OU=phoneemu;O=phoneemu lab c;L=Lab;ST=Lab;C=US", True),  # the lab's (§A.7 ;)
    ("CN=c-pub,OU=phoneemu,O=phoneemu lab c,C=US", True),  # certutils' RFC 4514 text
    ('cn="SAST-ADN0054f509 ";ou=IPCBU;o="phoneemu lab c"', True),  # eToken style, quoted
    ("CN=cucm-1051-a-pub;OU=TAC;O=Cisco;L=Krakow;ST=Malopolska;C=PL", False),
    ("CN=phoneemu lab c;O=Example Corp", False),  # the words elsewhere than the organisation
    ("OU=phoneemu lab c;O=Example", False),
    ("", False),
])
def test_names_a_lab_reads_the_organisation(dn: str, lab: bool) -> None:
    assert names_a_lab(dn) is lab


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LabPki:
    return LabPki(tmp_path_factory.mktemp("pki"), seed=5, key_spec=KeySpec.parse("rsa1024"), cluster_name="c",
                  durable=False)


def test_cluster_files_count_firmware_and_other_bytes_do_not(pki: LabPki) -> None:
    lab = pki.create("callmanager", now=NOW).signer
    other = pki.create("other", now=NOW, subject="CN=cucm-pub;OU=IT;O=Example Corp;C=US").signer
    config = signed.build(body=b"<device/>", filename="SEP0A0000000001.cnf.xml", signer=lab, timestamp=NOW)
    assert signed_by_lab(config, "SEP0A0000000001.cnf.xml.sgn") is True
    real = signed.build(body=b"<device/>", filename="SEP0A0000000001.cnf.xml", signer=other, timestamp=NOW)
    assert signed_by_lab(real, "SEP0A0000000001.cnf.xml.sgn") is False
    # a firmware image is the manufacturer's, not the cluster's: it does not count either way
    load = firmware.build(load_name="sip88xx.14-1-1", payload=b"image", signer=other, timestamp=NOW)
    assert signed_by_lab(load, "sip88xx.14-1-1.loads") is None
    for data in (b"<device/>", b"", b"\x01\x00\x02\x00", real[:20]):  # XML, nothing, a header cut short
        assert signed_by_lab(data, "SEP0A0000000001.cnf.xml.sgn") is None

    signers = LabSigners()
    signers.saw(b"<device/>", "SEP0A0000000001.cnf.xml")
    assert signers.verdict is None
    signers.saw(config, "SEP0A0000000001.cnf.xml.sgn")
    assert signers.verdict is True
    signers.saw(real, "SEP0A0000000001.cnf.xml.sgn")
    signers.saw(config, "SEP0A0000000001.cnf.xml.sgn")  # one signer that is not a lab's decides
    assert signers.verdict is False


def test_verdicts_join_and_fill() -> None:
    pairs = [(None, None), (True, None), (None, True), (True, False), (None, False)]
    assert [joined(a, b) for a, b in pairs] == [None, True, True, False, False]
    assert not_a_lab_fill(False, "site.pcap") == {NOT_A_LAB: "site.pcap"}
    assert not_a_lab_fill(True, "site.pcap") == {} == not_a_lab_fill(None, "site.pcap")
