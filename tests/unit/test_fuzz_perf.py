"""Issue #7 point 4: the speed-ups of the fuzz path keep behaviour and strictness.

* decode memos (header, record) remember successes only: the same bad bytes fail again, with the
  offset of where they are now; a memo hit gives the same result as a fresh decode;
* build caches on immutable headers/records return exactly what a fresh build returns;
* the RSA unwrap memo of ``.enc.sgn`` never answers for another key;
* copy-on-write mutants (shared header and records) never change their seeds, and replay;
* the ``.enc.sgn`` seeds are the same bytes in every process (``--seed`` replays need it);
* the signature-agnostic header memo gives exactly a fresh parse and build, and a stale signature
  is still rejected (a re-signed one accepted) with every cache warm; the verifying-key memo and the
  target's passed-record memo never answer for another key or a bad record.
"""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
from pathlib import Path

import pytest

from phoneemu.crypto import certs
from phoneemu.crypto.keys import KeySpec, generate_key
from phoneemu.errors import DecodeError, DecryptionError, VerificationError, VerifyReason
from phoneemu.formats import encrypted, header, signed, trustlist
from phoneemu.formats._tlv import Memo, clear_memos
from phoneemu.fuzz import tlvtree
from phoneemu.fuzz.corpus import build_corpus
from phoneemu.fuzz.mutators import Mutator
from phoneemu.fuzz.targets import phoneemu_callable
from phoneemu.fuzz.tlvtree import FileTree, parse_tree, resign, serialise


def test_memo_is_bounded_by_bytes_and_skips_big_keys() -> None:
    m: Memo[int] = Memo(max_bytes=100, max_key=40)
    m.put(b"a" * 41, 1)
    assert m.get(b"a" * 41) is None
    for i in range(10):
        m.put(bytes([i]) * 30, i)
    assert len(m) <= 3
    assert m.get(bytes([9]) * 30) == 9
    clear_memos()
    assert len(m) == 0 and len(header._PARSED) == 0


def test_header_memo_hit_equals_fresh_parse_and_signed_message_follows_the_input() -> None:
    seed = build_corpus("sgn").seeds[0]
    header._PARSED.clear()
    fresh = header.parse_header(seed, fmt="sgn")
    again = header.parse_header(seed + b"tail", fmt="sgn")  # same header bytes, longer body
    assert again.header is fresh.header
    assert again.signed_message == fresh.signed_message + b"tail"
    header._PARSED.clear()
    assert header.parse_header(seed + b"tail", fmt="sgn") == again


def test_header_failures_are_not_remembered_and_keep_their_offset() -> None:
    seed = build_corpus("sgn").seeds[0]
    hl = int.from_bytes(seed[8:10], "big")
    bad = seed[:10] + b"\x04\xff\xff" + seed[13:hl] + seed[hl:]  # a TLV length that overruns
    errors = []
    for _ in range(2):
        with pytest.raises(DecodeError) as exc:
            header.parse_header(bad, fmt="sgn")
        errors.append((exc.value.message, exc.value.offset, exc.value.path, exc.value.tag))
    assert errors[0] == errors[1]
    assert errors[0][1] == 13 and errors[0][3] == 4


def test_build_header_cache_matches_a_fresh_build() -> None:
    for fmt in ("itl", "sgn", "enc"):
        for seed in build_corpus(fmt).seeds:
            h = header.parse_header(seed, fmt=fmt).header
            first = header.build_header(h)
            assert header.build_header(h) is first
            assert first == header._build(h)[0] == seed[:h.header_length]


def test_record_memo_keeps_error_offsets_per_position() -> None:
    seed = build_corpus("itl").seeds[0]
    tl = trustlist.parse(seed)
    start, end = tl.spans[1]
    rec = seed[start:end]
    broken = rec[:5] + b"\x04\x00\x05" + rec[8:]  # ROLE of length 5 inside the record
    data = rec + broken
    for _ in range(2):
        with pytest.raises(DecodeError) as exc:
            trustlist.parse_record(data, len(rec), len(data), index=7)
        assert exc.value.offset == len(rec) + 5
        assert exc.value.path is not None and exc.value.path.startswith("record[7]")
    assert trustlist.parse_record(data, 0, len(rec)) is trustlist.parse_record(seed, start, end)


def test_record_build_cache_is_a_fresh_build() -> None:
    tl = trustlist.parse(build_corpus("ctl").seeds[3], lazy=False)
    for r in tl.records:
        assert trustlist.build_record(r) == trustlist._build_record(r)
    assert trustlist.serialise(tl) == tl.raw


def test_unwrap_memo_never_answers_for_another_key() -> None:
    c = build_corpus("enc")
    ef = encrypted.parse(c.seeds[0])
    assert encrypted.decrypt_pki(ef, c.recipient.key)
    assert encrypted.decrypt_pki(ef, c.recipient.key)  # a memo hit
    with pytest.raises(DecryptionError):
        encrypted.decrypt_pki(ef, c.signer.key)  # same wrapped bytes, other key: still fails


@pytest.mark.parametrize("fmt", ["itl", "ctl", "sgn", "enc"])
def test_copy_on_write_mutants_leave_seed_trees_unchanged(fmt: str) -> None:
    c = build_corpus(fmt)
    mut = Mutator(c, resign_ratio=0.5)
    for i in range(300):
        mut.mutate(random.Random(i))
    for tree, seed in zip(mut.ctx.seed_trees, c.seeds, strict=True):
        assert serialise(tree) == seed
        for rec in tree.records or ():
            assert rec.frozen == serialise(FileTree(header=rec.nodes))


def test_own_list_copies_only_the_changed_record() -> None:
    mut = Mutator(build_corpus("itl"))
    tree = mut.ctx.seed_trees[0].cow_clone()
    assert tree.records is not None
    shared = list(tree.records)
    lst = tree.own_list(tree.records[2].nodes)
    assert lst is not shared[2].nodes and tree.records[2].frozen is None
    assert all(tree.records[i] is shared[i] for i in range(len(shared)) if i != 2)
    assert tree.own_list(lst) is lst
    assert tree.own_list(tree.header) is tree.header


def test_enc_seeds_are_the_same_in_every_process_and_valid() -> None:
    c = build_corpus("enc")
    for seed in c.seeds:
        ef = encrypted.parse(seed)
        encrypted.verify(ef, c.verify_cert)
        assert encrypted.decrypt_pki(ef, c.recipient.key)
    code = ("import hashlib; from phoneemu.fuzz.corpus import build_corpus; "
            "print(' '.join(hashlib.sha256(s).hexdigest() for s in build_corpus('enc').seeds))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.split() == [hashlib.sha256(s).hexdigest() for s in c.seeds]


# ------------------------------------------------------------------ second round (per-core speed)
def _timestamp_changed(seed: bytes, records: bool) -> FileTree:
    """``seed`` as a tree with its TIMESTAMP (header tag 15) changed: still parses, signature now stale."""
    tree = parse_tree(seed, records=records)
    ts = tree.find(15)
    assert ts is not None
    ts.value = (int.from_bytes(ts.value, "big") + 1).to_bytes(4, "big")
    return tree


@pytest.mark.parametrize("fmt", ["itl", "ctl", "sgn", "enc"])
def test_stale_signature_rejected_and_resigned_accepted_with_warm_caches(fmt: str) -> None:
    """The target still rejects a stale signature after the re-signed twin (same header but for the
    signature value: the signature-agnostic header memo) and the seed went through it, and the
    re-signed twin still gets past the signature check; twice each, so every cache is warm."""
    c = build_corpus(fmt)
    run = phoneemu_callable(fmt, c)
    records = fmt in ("itl", "ctl")
    seed = c.seeds[0]
    stale = serialise(_timestamp_changed(seed, records))
    fresh = resign(_timestamp_changed(seed, records), c.signer.key)
    assert stale != fresh and len(stale) == len(fresh)
    for _ in range(2):
        run(seed)
        run(fresh)
        with pytest.raises(VerificationError):
            run(stale)
    hl = int.from_bytes(fresh[8:10], "big")
    assert header._resigned(stale[:hl]) is not None  # the stale file did take the memo path


def test_resigned_header_memo_equals_a_fresh_parse_and_build() -> None:
    """A header known only by its signature-less bytes decodes and builds exactly as a fresh parse."""
    c = build_corpus("itl")
    seed = c.seeds[0]
    header.build_header(header.parse_header(seed, fmt="itl").header)  # remembered, with its bytes
    other = resign(_timestamp_changed(seed, True), c.signer.key)
    hl = int.from_bytes(seed[8:10], "big")
    flipped = bytearray(seed)
    s_off = header.parse_header(seed, fmt="itl").signature_span[0]
    flipped[s_off + 10] ^= 0xFF  # inside the signature value only
    for data in (bytes(flipped), other):
        header._PARSED.clear()
        got = header.parse_header(data, fmt="itl")
        hl = got.body_offset
        derived = header._resigned(data[:hl])
        clear_memos()
        want = header.parse_header(data, fmt="itl")
        assert got == want and got.header.layout == want.header.layout
        assert got.header.header_length == want.header.header_length
        assert header.build_header(got.header) == header._build(want.header)[0] == data[:hl]
        if data is not other:  # same header but for the signature value: the memo answered
            assert derived is not None and derived[0].signature == data[s_off + 3:s_off + 3 + 128]
    with pytest.raises(VerificationError):
        trustlist.parse(bytes(flipped)).verify_self()


def test_verify_key_code_memo_never_answers_for_another_key() -> None:
    c = build_corpus("sgn")
    sf = signed.parse(c.seeds[0])
    good = certs.cert_public_key(c.verify_cert)
    signed.verify(sf, good)
    signed.verify(sf, good)  # memo hit
    for bits in (1024, 2048):
        other = generate_key(KeySpec(kind="rsa", bits=bits), unsafe_seed=f"perf-test-{bits}").public_key()
        with pytest.raises(VerificationError) as exc:
            signed.verify(sf, other)
        assert exc.value.reason == VerifyReason.BAD_SIGNATURE


def test_trust_target_rechecks_a_bad_certificate_every_time() -> None:
    """Records that passed are skipped by identity; a record that failed is checked again."""
    c = build_corpus("ctl")
    tree = parse_tree(c.seeds[0], records=True)
    assert tree.records
    cert = next(n for n in tree.records[1].nodes if n.tag == 9)
    cert.value = cert.value[:40]
    data = resign(tree, c.signer.key)
    run = phoneemu_callable("ctl", c)
    for _ in range(3):
        with pytest.raises(DecodeError):
            run(data)
        run(c.seeds[0])


@pytest.mark.parametrize("fmt", ["itl", "ctl", "sgn", "enc"])
def test_shared_header_copy_on_write_keeps_seeds_and_replays(fmt: str) -> None:
    """Mutants share their seed's header until they change it: after many mutants (every mutator,
    half re-signed) the seeds and their cached header bytes are intact, and a fresh mutator makes
    the same inputs as the used one (``--seed`` replays)."""
    c = build_corpus(fmt)
    mut = Mutator(c, resign_ratio=0.5)
    made = [mut.mutate(random.Random(i)).data for i in range(1500)]
    for tree, seed in zip(mut.ctx.seed_trees, c.seeds, strict=True):
        assert not tree.shared_header
        assert serialise(tree) == seed
        hl = int.from_bytes(seed[8:10], "big")
        assert tree.header_bytes == tlvtree._header_bytes(tree.header) == seed[:hl]
        assert tree.list_bytes
        for _, _, n in tree.header_slots():
            if id(n.children) in tree.list_bytes:
                assert tree.list_bytes[id(n.children)] == tlvtree._header_bytes(n.children)
    again = Mutator(c, resign_ratio=0.5)
    for i in (0, 1, 7, 100, 499, 1000, 1499):
        assert again.mutate(random.Random(i)).data == made[i]


def test_header_slots_and_find_follow_walk_header() -> None:
    mut = Mutator(build_corpus("enc"))
    for i in range(200):
        tree = mut.ctx.seed_trees[i % len(mut.ctx.seed_trees)].cow_clone()
        mut.ops[i % len(mut.ops)][1](tree, random.Random(i), mut.ctx)
        walked = list(tree.walk_header())
        slots = tree.header_slots()
        assert [(id(a), b, id(n)) for a, b, n in walked] == [(id(a), b, id(n)) for a, b, n in slots]
        kinds = (tlvtree.LEAF, tlvtree.CONTAINER)
        for tag in range(32):
            first = next((n for _, _, n in walked if n.tag == tag and n.kind in kinds), None)
            assert tree.find(tag) is first


@pytest.mark.parametrize("fmt", ["itl", "sgn", "enc"])
def test_partly_shared_header_serialises_like_a_plain_tree(fmt: str) -> None:
    """A mutant whose header is partly the seed's (cached bytes of unchanged container lists) gives
    the bytes of the same nodes serialised from scratch, and changes nothing in the seed."""
    c = build_corpus(fmt)
    mut = Mutator(c)
    for i in range(400):
        rng = random.Random(i)
        tree = mut.ctx.seed_trees[i % len(mut.ctx.seed_trees)].cow_clone()
        for _ in range(1 + i % 3):
            mut.ops[rng.randrange(len(mut.ops))][1](tree, rng, mut.ctx)
        plain = FileTree(header=tree.header, records=tree.records, body=tree.body, trailer=tree.trailer)
        assert serialise(tree) == serialise(plain)
    assert [serialise(t) for t in mut.ctx.seed_trees] == list(c.seeds)


def test_serialise_finds_a_mark_inside_a_cached_seed_list() -> None:
    """``mark`` inside a container list still shared with the seed (written from cache) is found."""
    mut = Mutator(build_corpus("itl"))
    tree = mut.ctx.seed_trees[0].cow_clone()
    tree.own_list(tree.header)  # the top list is ours; the nested lists are still the seed's
    name = next(n for _, _, n in tree.header_slots() if n.tag == 4)  # SIGNER_NAME, inside tag 3
    at: list[int] = []
    plain_at: list[int] = []
    data = serialise(tree, mark=name, at=at)
    assert data == serialise(FileTree(header=tree.header, records=tree.records), mark=name, at=plain_at)
    assert at == plain_at and len(at) == 1 and data[at[0]] == 4
