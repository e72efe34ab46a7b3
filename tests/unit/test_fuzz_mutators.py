"""Structure-aware mutators (phoneemu.fuzz.mutators): each one does what it claims (spec §A, §B, §C)."""

from __future__ import annotations

import random

import pytest

from phoneemu.errors import DecodeError, EncodeError, SizeLimitError, VerificationError
from phoneemu.formats import encrypted, signed, trustlist
from phoneemu.fuzz import FILE_FORMATS as FORMATS
from phoneemu.fuzz import mutators as m
from phoneemu.fuzz.corpus import build_corpus
from phoneemu.fuzz.mutators import MUTATORS, MutationContext, Mutator, mutators_for, tlv_boundaries
from phoneemu.fuzz.tlvtree import CONTAINER, LEAF, FileTree, parse_tree, serialise

HANDLED = (DecodeError, VerificationError)


def _ctx(fmt: str) -> tuple[MutationContext, bytes]:
    c = build_corpus(fmt)
    records = fmt in ("itl", "ctl")
    ctx = MutationContext(corpus=c, records=records,
                          seed_trees=[parse_tree(s, records=records) for s in c.seeds])
    return ctx, c.seeds[0]


def _apply(fmt: str, fn: m.Mutation, seed: int) -> tuple[FileTree, bytes, bool]:
    ctx, data = _ctx(fmt)
    tree = parse_tree(data, records=ctx.records)
    changed = fn(tree, random.Random(seed), ctx)
    return tree, data, changed


def _leaves(tree: FileTree) -> list[tuple[int, bytes, int | None]]:
    out = [(n.tag, n.value, n.length) for _, _, n in tree.walk_header() if n.kind == LEAF]
    for r in tree.records or ():
        out += [(n.tag, n.value, n.length) for n in r.nodes if n.kind == LEAF]
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_applicable_mutator_changes_the_bytes(fmt: str) -> None:
    for name in mutators_for(fmt):
        fn = MUTATORS[name]
        changed_bytes = 0
        for seed in range(12):
            tree, data, changed = _apply(fmt, fn, seed)
            if changed and serialise(tree) != data:
                changed_bytes += 1
        assert changed_bytes >= 6, f"{fmt}: mutator {name} changed the file in only {changed_bytes}/12 runs"


def test_length_lie_makes_a_length_disagree_with_its_value() -> None:
    for seed in range(20):
        tree, _, _ = _apply("itl", m.length_lie, seed)
        assert any(ln is not None for _, _, ln in _leaves(tree))


def test_container_length_is_inconsistent_and_rejected() -> None:
    rejected = 0
    for seed in range(20):
        tree, _, _ = _apply("sgn", m.container_length, seed)
        lied = [n for _, _, n in tree.walk_header() if n.kind == CONTAINER and n.length is not None]
        assert lied
        try:
            signed.parse(serialise(tree))
        except DecodeError:
            rejected += 1
    assert rejected >= 15


def test_header_length_lie() -> None:
    lies = 0
    for seed in range(20):
        tree, data, _ = _apply("sgn", m.header_length_lie, seed)
        hl = tree.find(2)
        assert hl is not None and not hl.auto
        true = signed.parse(data).header.header_length
        assert serialise(tree)[8:10] == hl.value
        lies += int.from_bytes(hl.value, "big") != true
    assert lies >= 18


def test_duplicate_and_remove_change_tag_counts() -> None:
    for seed in range(20):
        before = len(_leaves(parse_tree(build_corpus("ctl").seeds[0], records=True)))
        tree, _, _ = _apply("ctl", m.duplicate_tag, seed)
        assert len(_leaves(tree)) >= before  # a leaf, or a container with its leaves, was copied
        tree, _, _ = _apply("ctl", m.remove_tag, seed)
        assert len(_leaves(tree)) <= before


def test_duplicate_known_header_tag_is_rejected() -> None:
    _, data = _ctx("sgn")
    tree = parse_tree(data, records=False)
    ts = next(i for i, n in enumerate(tree.header) if n.tag == 15)
    tree.header.insert(ts, tree.header[ts].clone())
    with pytest.raises(DecodeError, match="duplicate"):
        signed.parse(serialise(tree))


def test_unknown_tag_inserts_an_unknown_tag() -> None:
    for seed in range(20):
        tree, data, _ = _apply("itl", m.unknown_tag, seed)
        assert len(serialise(tree)) > len(data) or any(t not in range(1, 29) for t, _, _ in _leaves(tree))


def test_code_out_of_range_targets_codes() -> None:
    seen: set[int] = set()
    _, data = _ctx("itl")
    seed_leaves = _leaves(parse_tree(data, records=True))
    for seed in range(60):
        tree, _, _ = _apply("itl", m.code_out_of_range, seed)
        diff = [t for (t, v, _), (_, v0, _) in zip(_leaves(tree), seed_leaves, strict=True) if v != v0]
        seen.update(diff)
    assert {8, 11, 4} <= seen  # header hash, modulus code, record role


def test_many_records_adds_records_up_to_the_limit() -> None:
    counts = []
    for seed in range(30):
        tree, data, _ = _apply("itl", m.many_records, seed)
        out = serialise(tree)
        assert len(out) > len(data)
        try:
            counts.append(len(trustlist.parse(out)))
        except SizeLimitError:
            counts.append(-1)
    assert max(counts) > 20 and -1 in counts  # many records, and sometimes past the 64 KiB limit


def test_string_mutation_drops_nul_sometimes() -> None:
    no_nul = 0
    for seed in range(40):
        tree, _, _ = _apply("itl", m.string_mutation, seed)
        strings = [v for t, v, _ in _leaves(tree) if t in (4, 6, 14)]
        no_nul += any(not v.endswith(b"\0") for v in strings)
    assert no_nul >= 3


def test_cert_der_damages_a_certificate() -> None:
    _, data = _ctx("ctl")
    certs_before = [v for t, v, _ in _leaves(parse_tree(data, records=True)) if t == 9]
    damaged = 0
    for seed in range(20):
        tree, _, _ = _apply("ctl", m.cert_der, seed)
        certs_after = [v for t, v, _ in _leaves(tree) if t == 9]
        damaged += certs_after != certs_before  # a donor swap may pick the same certificate
    assert damaged >= 16


def test_signature_swap_replaces_a_signature() -> None:
    for seed in range(20):
        tree, data, _ = _apply("enc", m.signature_swap, seed)
        sig = tree.find(12)
        assert sig is not None
        assert sig.value != encrypted.parse(data).header.signature


def test_tlv_boundaries_are_tlv_starts() -> None:
    data = build_corpus("sgn").seeds[0]
    cuts = tlv_boundaries(data, records=False)
    assert cuts[0] == 0 and cuts[-1] == len(data)
    assert {0, 5, 10} <= set(cuts)


@pytest.mark.parametrize("fmt", FORMATS)
def test_mutator_is_deterministic(fmt: str) -> None:
    mut = Mutator(build_corpus(fmt))
    a = [mut.mutate(random.Random(i)).data for i in range(30)]
    b = [mut.mutate(random.Random(i)).data for i in range(30)]
    assert a == b
    assert len(set(a)) > 20


def test_resigned_mutants_verify_when_parseable() -> None:
    """sgn: a re-signed mutant that still parses with a known hash and the 1024-bit modulus code
    verifies with the corpus certificate (spec §A.3)."""
    c = build_corpus("sgn")
    mut = Mutator(c, resign_ratio=1.0)
    verified = 0
    for i in range(300):
        mutant = mut.mutate(random.Random(i))
        if set(mutant.ops) & {"truncate-boundary", "bit-flip", "signature-swap"}:
            continue
        try:
            sf = signed.parse(mutant.data)
        except DecodeError:
            continue
        if sf.header.hash_alg not in (1, 2, 3) or sf.header.modulus_code != 1:
            continue
        signed.verify(sf, c.verify_cert)
        verified += 1
    assert verified >= 30


def test_stale_signature_mutants_are_rejected() -> None:
    for fmt in ("sgn", "itl"):
        c = build_corpus(fmt)
        mut = Mutator(c, resign_ratio=0.0)
        parse = signed.parse if fmt == "sgn" else trustlist.parse
        seeds_signed = {parse(s).signed_message for s in c.seeds}
        rejected = 0
        for i in range(300):
            mutant = mut.mutate(random.Random(i))
            assert not mutant.resigned
            try:
                if fmt == "sgn":
                    sf = signed.parse(mutant.data)
                    if sf.signed_message in seeds_signed:
                        continue
                    with pytest.raises(VerificationError):
                        signed.verify(sf, c.verify_cert)
                else:
                    tl = trustlist.parse(mutant.data, lazy=False)
                    if tl.signed_message in seeds_signed:
                        continue
                    with pytest.raises(HANDLED):
                        tl.verify_self()
                rejected += 1
            except DecodeError:
                rejected += 1
        assert rejected >= 250


def test_mutator_subset_and_unknown_names() -> None:
    mut = Mutator(build_corpus("itl"), only=["length-lie"])
    for i in range(20):
        ops = mut.mutate(random.Random(i)).ops
        assert set(ops) <= {"length-lie", "truncate-boundary", "bit-flip"} and "length-lie" in ops
    with pytest.raises(EncodeError, match="nope"):
        Mutator(build_corpus("itl"), only=["nope"])
    with pytest.raises(EncodeError):
        Mutator(build_corpus("itl"), resign_ratio=1.5)
