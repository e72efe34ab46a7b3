"""Property (design §3.7, spec §C.3): random tampering of a valid ``.enc.sgn`` — bytes changed, cut or
inserted — only ever raises our own errors, and each names an offset in the file, whether it comes
from parsing, checking the signature or decrypting (a fuzzer decrypts what does not verify too).

An offset may equal the file's length: the place a missing body or tag would have to start."""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import cache

from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phoneemu.crypto.keys import PrivateKey
from phoneemu.errors import PhoneEmuError
from phoneemu.formats import encrypted as e
from tests.signer_helpers import file_signer, self_signed

KEY128 = bytes(range(16))


def identity(name: str) -> tuple[PrivateKey, x509.Certificate]:
    return self_signed(f"CN={name};O=phoneemu", seed=f"props-enc-offsets-{name}", serial=99)


@cache
def sample(method: str) -> bytes:
    common = {"plaintext": b"<device><fullConfig>true</fullConfig></device>\n", "timestamp": 1_700_000_000,
              "filename": "SEP0011223344AA.cnf.xml.enc.sgn", "signer": file_signer(identity("tftp")),
              "rand": random.Random(11).randbytes}
    if method == "pki":
        return e.build_pki(recipient_cert=identity("phone")[1], **common)  # type: ignore[arg-type]
    return e.build_symmetric(key=KEY128, **common)  # type: ignore[arg-type]


def tamper(data: st.DataObject, raw: bytearray) -> bytes:
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        if not raw:
            break
        i = data.draw(st.integers(0, len(raw) - 1), label="at")
        op = data.draw(st.sampled_from(["xor", "set", "cut", "insert"]), label="op")
        if op == "xor":
            raw[i] ^= data.draw(st.integers(1, 255), label="xor")
        elif op == "set":
            raw[i] = data.draw(st.integers(0, 255), label="byte")
        elif op == "cut":
            del raw[i:i + data.draw(st.integers(1, 8), label="cut")]
        else:
            raw[i:i] = data.draw(st.binary(min_size=1, max_size=8), label="insert")
    return bytes(raw)


def check(step: Callable[[], object], size: int, what: str) -> bool:
    """Run ``step``; True when it passed. Any error must be ours and name an offset in ``0..size``."""
    try:
        step()
    except PhoneEmuError as exc:
        assert exc.offset is not None, f"{what}: no offset in {exc!s}"
        assert 0 <= exc.offset <= size, f"{what}: offset {exc.offset} outside 0..{size}: {exc!s}"
        return False
    return True


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_tampered_enc_sgn_errors_name_an_offset_in_the_file(data: st.DataObject) -> None:
    method = data.draw(st.sampled_from(["pki", "symmetric"]), label="method")
    raw = tamper(data, bytearray(sample(method)))
    parsed: list[e.EncryptedFile] = []
    if not check(lambda: parsed.append(e.parse(raw)), len(raw), "parse"):
        return
    ef = parsed[0]
    check(lambda: e.verify(ef, identity("tftp")[1]), len(raw), "verify")
    if ef.method == "pki":
        check(lambda: e.decrypt_pki(ef, identity("phone")[0]), len(raw), "decrypt_pki")
    else:
        check(lambda: e.decrypt_symmetric(ef, KEY128), len(raw), "decrypt_symmetric")
