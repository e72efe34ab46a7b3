"""Issue #7 point 4: the speed-ups of the fuzz path keep behaviour and strictness.

* decode memos (header, record) remember successes only: the same bad bytes fail again, with the
  offset of where they are now; a memo hit gives the same result as a fresh decode;
* build caches on immutable headers/records return exactly what a fresh build returns;
* the RSA unwrap memo of ``.enc.sgn`` never answers for another key;
* copy-on-write mutants never change their seeds;
* the ``.enc.sgn`` seeds are the same bytes in every process (``--seed`` replays need it).
"""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
from pathlib import Path

import pytest

from phoneemu.errors import DecodeError, DecryptionError
from phoneemu.formats import encrypted, header, trustlist
from phoneemu.formats._tlv import Memo, clear_memos
from phoneemu.fuzz.corpus import build_corpus
from phoneemu.fuzz.mutators import Mutator
from phoneemu.fuzz.tlvtree import FileTree, serialise


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
