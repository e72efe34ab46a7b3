"""The lossless TLV tree and re-signing of phoneemu.fuzz.tlvtree (spec §A.2, §A.3, §B.2)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.errors import VerificationError
from phoneemu.formats import encrypted, signed, trustlist
from phoneemu.fuzz.corpus import FORMATS, build_corpus
from phoneemu.fuzz.tlvtree import CONTAINER, LEAF, TAG_ONLY, Node, header_size, parse_tree, resign, serialise


def _records(fmt: str) -> bool:
    return fmt in ("itl", "ctl")


@pytest.mark.parametrize("fmt", FORMATS)
def test_seed_round_trip_and_resign_is_byte_exact(fmt: str) -> None:
    c = build_corpus(fmt)
    for seed in c.seeds:
        tree = parse_tree(seed, records=_records(fmt))
        assert serialise(tree) == seed
        # RSA PKCS#1 v1.5 is deterministic: re-signing an unchanged file gives the same bytes
        assert resign(tree.clone(), c.signer.key) == seed


def test_itl_tree_shape() -> None:
    seed = build_corpus("itl").seeds[0]
    tree = parse_tree(seed, records=True)
    top = [n.tag for n in tree.header if n.kind != TAG_ONLY]
    assert top[:2] == [1, 2]
    signer_info = tree.find(3)
    assert signer_info is not None and signer_info.kind == CONTAINER
    assert sorted(c.tag for c in signer_info.children) == [4, 5, 6]
    sig_info = tree.find(7)
    assert sig_info is not None and [c.tag for c in sig_info.children] == [8, 9]
    assert tree.records is not None and len(tree.records) == 5
    assert all(r.nodes[0].tag == 1 and r.nodes[0].auto for r in tree.records)
    assert header_size(tree) % 4 == 0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.booleans())
def test_parse_tree_is_lossless_on_any_bytes(data: bytes, records: bool) -> None:
    assert serialise(parse_tree(data, records=records)) == data


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(FORMATS), st.data())
def test_parse_tree_is_lossless_on_truncated_and_damaged_seeds(fmt: str, data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(build_corpus(fmt).seeds))
    cut = data.draw(st.integers(0, len(seed)))
    pos = data.draw(st.integers(0, len(seed) - 1))
    damaged = bytearray(seed[:cut])
    if pos < len(damaged):
        damaged[pos] ^= 0xFF
    assert serialise(parse_tree(bytes(damaged), records=_records(fmt))) == bytes(damaged)


def test_derived_lengths_follow_structure_changes() -> None:
    c = build_corpus("itl")
    tree = parse_tree(c.seeds[0], records=True)
    signer_info = tree.find(3)
    assert signer_info is not None
    signer_info.children.append(Node.leaf(200, b"xyz"))  # unknown tag inside the container
    assert tree.records
    tree.records[0].nodes.append(Node.leaf(99, b"abcd"))
    data = resign(tree, c.signer.key, repad=True)
    tl = trustlist.parse(data, lazy=False)
    assert tl.header.header_length % 4 == 0
    assert [u.tag for u in tl.header.unknown] == [200]
    assert [u.tag for u in tl.records[0].unknown] == [99]
    tl.verify_self()


def test_length_lie_is_kept_and_fix_lengths_removes_it() -> None:
    c = build_corpus("sgn")
    tree = parse_tree(c.seeds[0], records=False)
    fn = tree.find(14)
    assert fn is not None and fn.kind == LEAF
    fn.length = len(fn.value) + 3
    lying = serialise(tree)
    assert lying != c.seeds[0] and len(lying) == len(c.seeds[0])
    fixed = resign(tree.clone(), c.signer.key, fix_lengths=True)
    assert fixed == c.seeds[0]


def test_resign_makes_a_modified_file_verify_and_stale_one_fail() -> None:
    c = build_corpus("sgn")
    tree = parse_tree(c.seeds[0], records=False)
    tree.body = tree.body.replace(b"true", b"fals")
    stale = serialise(tree)
    with pytest.raises(VerificationError):
        signed.verify(signed.parse(stale), c.verify_cert)
    fresh = resign(tree, c.signer.key)
    signed.verify(signed.parse(fresh), c.verify_cert)


def test_resign_uses_hash_named_by_tag_8() -> None:
    c = build_corpus("enc")
    tree = parse_tree(c.seeds[0], records=False)
    h = tree.find(8)
    assert h is not None
    h.value = b"\x02"  # SHA-256 instead of the seed's SHA-1
    data = resign(tree, c.signer.key)
    ef = encrypted.parse(data)
    assert ef.header.hash_alg == 2
    encrypted.verify(ef, c.verify_cert)


def test_resign_without_signature_tlv_returns_plain_bytes() -> None:
    c = build_corpus("sgn")
    tree = parse_tree(c.seeds[0], records=False)
    tree.header = [n for n in tree.header if n.tag != 12]
    assert resign(tree.clone(), c.signer.key) == serialise(tree)


def test_sign_cache_reuses_signatures() -> None:
    c = build_corpus("sgn")
    cache: dict[bytes, bytes] = {}
    a = resign(parse_tree(c.seeds[0], records=False), c.signer.key, cache=cache)
    calls: list[bytes] = []

    def no_sign(*args: object) -> bytes:
        calls.append(b"")
        raise AssertionError("cache miss")

    b = resign(parse_tree(c.seeds[0], records=False), c.signer.key, cache=cache, sign=no_sign)
    assert a == b and not calls and len(cache) == 1
