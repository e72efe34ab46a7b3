"""``crypto.pem.pem_problem``: a damaged PEM is named by its line, in our words (not cryptography's)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.crypto import certs, keys
from phoneemu.crypto.pem import pem_problem
from phoneemu.errors import DecodeError

KEY = keys.private_key_pem(keys.generate_key(keys.KeySpec.parse("ec-p256")))


def _pem(label: str, der: bytes) -> bytes:
    b64 = base64.b64encode(der)
    body = b"\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
    return b"-----BEGIN " + label.encode() + b"-----\n" + body + b"\n-----END " + label.encode() + b"-----\n"


DER = b"\x30\x82\x01\x00" + bytes(256)  # a SEQUENCE of 256 bytes


def test_well_framed_blocks_have_no_problem() -> None:
    assert pem_problem(_pem("CERTIFICATE", DER), "CERTIFICATE") is None
    assert pem_problem(KEY, "PRIVATE KEY") is None
    assert pem_problem(b"no pem here", "CERTIFICATE") is None


@pytest.mark.parametrize(("pem", "expected"), [
    (_pem("CERTIFICATE", DER).splitlines()[0] + b"\nMIIB\n",
     "truncated: the CERTIFICATE block of line 1 has no END line"),
    (b"\n".join(_pem("CERTIFICATE", DER).splitlines()[:2] + _pem("CERTIFICATE", DER).splitlines()[-1:]),
     "truncated: the DER SEQUENCE declares 260 bytes, the body holds 48 (lines missing)"),
    (_pem("CERTIFICATE", DER + b"\x00\x00\x00"), "3 bytes after the DER SEQUENCE (lines added)"),
    (_pem("CERTIFICATE", DER).replace(b"AAAA", b"A*AA", 1), "line 2: not base64"),
    (_pem("CERTIFICATE", DER).replace(b"-----END CERTIFICATE", b"-----END PRIVATE KEY"),
     "expected '-----END CERTIFICATE-----'"),
    (_pem("CERTIFICATE", DER).replace(b"MIIB", b"MIB", 1), "base64 does not decode"),
])
def test_each_damage_is_named(pem: bytes, expected: str) -> None:
    problem = pem_problem(pem, "CERTIFICATE")
    assert problem is not None and expected in problem


def test_loaders_say_where_a_truncated_pem_is_damaged() -> None:
    lines = KEY.splitlines()
    with pytest.raises(DecodeError, match=r"k\.pem: cannot load private key: truncated: the PRIVATE KEY "
                                          r"block of line 1 has no END line"):
        keys.load_private_key_pem(b"\n".join(lines[:2]), source="k.pem")
    with pytest.raises(DecodeError, match=r"the PRIVATE KEY block of line 1: truncated: the DER SEQUENCE"):
        keys.load_private_key_pem(b"\n".join(lines[:2] + lines[-1:]), source="k.pem")
    cut = _pem("CERTIFICATE", DER).splitlines()
    with pytest.raises(DecodeError, match=r"c\.pem: cannot load PEM certificates: the CERTIFICATE block of "
                                          r"line 1: truncated"):
        certs.load_certs_pem(b"\n".join(cut[:2] + cut[-1:]), source="c.pem")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.sampled_from(["CERTIFICATE", "PRIVATE KEY"]))
def test_random_bytes_inside_a_block_give_a_str_or_none(body: bytes, label: str) -> None:
    data = b"-----BEGIN " + label.encode() + b"-----\n" + body + b"\n-----END " + label.encode() + b"-----\n"
    result = pem_problem(data, label)
    assert result is None or isinstance(result, str)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=len(KEY.splitlines()) - 1), st.integers(min_value=0, max_value=3))
def test_a_key_with_lines_cut_is_a_decode_error_naming_a_line(keep: int, tail: int) -> None:
    lines = KEY.splitlines()
    damaged = b"\n".join(lines[:keep] + lines[len(lines) - tail:] if tail else lines[:keep])
    if damaged == KEY.strip():
        return
    with pytest.raises(DecodeError, match=r"line \d+|no PEM private key"):
        keys.load_private_key_pem(damaged, source="k.pem")
