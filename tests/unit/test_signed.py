"""Signed files (.sgn, spec §C.1) and format detection."""

from __future__ import annotations

from types import ModuleType

import pytest

from phoneemu.errors import DecodeError, SizeLimitError, VerificationError, VerifyReason
from phoneemu.formats import detect, signed


def test_build_parse_verify(pki: ModuleType) -> None:
    cm = pki.lab()["callmanager"]
    body = b"<device><fullConfig>true</fullConfig></device>"
    data = signed.build(body=body, filename="SEP0011.cnf.xml.sgn", signer=cm.signer, timestamp=5)
    sf = signed.parse(data)
    assert sf.body == body and sf.header.version == (1, 0) and sf.header.signer_version is None
    assert sf.header.filename == "SEP0011.cnf.xml.sgn"
    signed.verify(sf, cm.cert)
    signed.verify(sf, cm.cert.public_key())
    assert signed.strip(data) == body
    assert signed.serialise(sf) == data
    with pytest.raises(VerificationError) as ei:
        signed.verify(sf, pki.lab()["tvs"].cert)
    assert ei.value.reason is VerifyReason.BAD_SIGNATURE and ei.value.fmt == "sgn"


def test_vectors(vectors: dict[str, bytes], pki: ModuleType) -> None:
    cm = pki.lab()["callmanager"]
    for name in ("SEP001122334455.cnf.xml.sgn", "List.xml.sgn"):
        sf = signed.parse(vectors[name])
        signed.verify(sf, cm.cert)
        assert signed.serialise(sf) == vectors[name]
    assert signed.parse(vectors["List.xml.sgn"]).header.hash_alg == 2


def test_limits_and_errors() -> None:
    with pytest.raises(SizeLimitError):
        signed.parse(b"\x01\x00\x02" + bytes(100), limit=50)
    with pytest.raises(DecodeError) as ei:
        signed.parse(b"<xml/>")
    assert ei.value.fmt == "sgn"


def test_detect(vectors: dict[str, bytes]) -> None:
    assert detect.detect(vectors["itl_lab.tlv"]) == "itl"
    assert detect.detect(vectors["ctl_sha512.tlv"]) == "ctl"
    assert detect.detect(vectors["SEP001122334455.cnf.xml.sgn"]) == "sgn"
    assert detect.detect(b"\xef\xbb\xbf  <?xml version='1.0'?><device/>") == "xml"
    assert detect.detect(vectors["SEP001122334455.cnf.xml.sgn"], "SEP1.loads") == "sgn"
    with pytest.raises(DecodeError):
        detect.detect(b"\x00garbage", "x.bin")
    with pytest.raises(DecodeError):
        detect.detect(b"\x01\x00\x02\x01")
    with pytest.raises(DecodeError, match=r"^detect: at offset 0: empty \(0 bytes\).*\(name suggests itl\)"):
        detect.detect(b"", "ITLFile.tlv")
