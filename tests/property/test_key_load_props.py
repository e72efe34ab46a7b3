"""Property: a PKCS#1 RSA private key with any of its integers changed either loads as a key that
computes correctly or is refused with a DecodeError — nothing else escapes (``keys._rsa_key_problem``,
our check in place of OpenSSL's)."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phoneemu.crypto import keys
from phoneemu.errors import DecodeError
from tests.helpers import pkcs1_private_key_pem

_KEY = keys.generate_key(keys.KeySpec(kind="rsa", bits=1024), unsafe_seed="key-load-props")
assert isinstance(_KEY, rsa.RSAPrivateKey)
_N = _KEY.private_numbers()
_FIELDS = ("n", "e", "d", "p", "q", "dmp1", "dmq1", "iqmp")
_VALUES = {"n": _N.public_numbers.n, "e": _N.public_numbers.e, "d": _N.d, "p": _N.p, "q": _N.q,
           "dmp1": _N.dmp1, "dmq1": _N.dmq1, "iqmp": _N.iqmp}


def _pem(values: dict[str, int]) -> bytes:
    return pkcs1_private_key_pem(*(values[f] for f in _FIELDS))


_CHANGE = st.one_of(
    st.integers(min_value=-3, max_value=3),
    st.integers(min_value=-(1 << 1100), max_value=1 << 1100),
    st.sampled_from([1, 2, 3, 65537]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(_FIELDS), how=st.sampled_from(["set", "add", "xor"]), value=_CHANGE)
def test_a_changed_rsa_key_loads_correct_or_not_at_all(field: str, how: str, value: int) -> None:
    values = dict(_VALUES)
    old = values[field]
    values[field] = {"set": value, "add": old + value, "xor": old ^ abs(value)}[how]
    try:
        key = keys.load_private_key_pem(_pem(values), source="k.pem")
    except DecodeError as exc:
        assert str(exc).startswith("k.pem: cannot load private key: ")
        return
    assert isinstance(key, rsa.RSAPrivateKey)
    signature = key.sign(b"probe", padding.PKCS1v15(), hashes.SHA256())
    key.public_key().verify(signature, b"probe", padding.PKCS1v15(), hashes.SHA256())
