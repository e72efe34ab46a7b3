"""``certs.dn_key`` (spec §A.7, §B.4) on random names whose values carry ``,;+=\\``, quotes and spaces:
CUCM's text (``certs.dn_text``: ``;``, most specific first) and certutils' (RFC 4514 RDNs in stored order,
``,``) of one name are the same DN, in any order of a multi-valued RDN's attributes; a name differing in one
value (beyond case and spacing, which the phone ignores) is another."""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.crypto import certs

_OIDS = [NameOID.COMMON_NAME, NameOID.ORGANIZATIONAL_UNIT_NAME, NameOID.ORGANIZATION_NAME,
         NameOID.LOCALITY_NAME, NameOID.STATE_OR_PROVINCE_NAME]
_VALUES = st.text(alphabet=st.sampled_from("aBz09 ,;+=\\\"#<>._-é"), min_size=1, max_size=12).filter(
    lambda v: v.strip() != "")

#: an RDN: one to three attributes of distinct types, each with a value
_RDN = st.lists(st.tuples(st.sampled_from(range(len(_OIDS))), _VALUES), min_size=1, max_size=3,
                unique_by=lambda t: t[0])
_NAMES = st.lists(_RDN, min_size=1, max_size=5)


def _name(rdns: list[list[tuple[int, str]]], *, flip: bool = False) -> x509.Name:
    """The x509 name of ``rdns`` (stored order); ``flip``: each RDN's attributes in reverse order."""
    return x509.Name([x509.RelativeDistinguishedName(
        [x509.NameAttribute(_OIDS[o], v) for o, v in (reversed(rdn) if flip else rdn)]) for rdn in rdns])


def _certutils(name: x509.Name) -> str:
    return ",".join(rdn.rfc4514_string() for rdn in name.rdns)


def _loose(value: str) -> str:
    """A value as the phone compares it: case and spaces aside."""
    return value.lower().replace(" ", "")


@settings(max_examples=300, deadline=None)
@given(_NAMES)
def test_cucm_and_certutils_texts_of_one_name_are_the_same_dn(rdns: list[list[tuple[int, str]]]) -> None:
    name = _name(rdns)
    cucm = certs.dn_text(name)
    key = certs.dn_key(cucm)
    assert len(key) == len(rdns)
    assert certs.dn_key(_certutils(name)) == key
    assert certs.dn_key(name.rfc4514_string()) == key  # RFC 4514's own order (last RDN first)
    assert certs.dn_key(certs.dn_text(_name(rdns, flip=True))) == key
    assert certs.dn_key(_certutils(_name(rdns, flip=True))) == key
    assert certs.same_issuer(_certutils(name), cucm)


@settings(max_examples=300, deadline=None)
@given(_NAMES, st.data())
def test_names_differing_in_one_value_are_different_dns(rdns: list[list[tuple[int, str]]],
                                                        data: st.DataObject) -> None:
    i = data.draw(st.sampled_from(range(len(rdns))), label="rdn")
    j = data.draw(st.sampled_from(range(len(rdns[i]))), label="attribute")
    oid, value = rdns[i][j]
    other = data.draw(_VALUES.filter(lambda v: _loose(v) != _loose(value)), label="other value")
    changed = [list(rdn) for rdn in rdns]
    changed[i][j] = (oid, other)
    a, b = _name(rdns), _name(changed)
    assert certs.dn_key(certs.dn_text(a)) != certs.dn_key(certs.dn_text(b))
    assert certs.dn_key(_certutils(a)) != certs.dn_key(certs.dn_text(b))
    assert not certs.same_issuer(_certutils(b), certs.dn_text(a))
