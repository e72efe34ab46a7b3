"""Issue #7: the faster mutate side answers exactly as the plain definitions.

* ``boundaries`` gives the node offsets of ``parse_tree`` (computed here from the parsed nodes);
* ``header_size`` is the length of the serialised header; ``find_slot`` holds ``find``'s node;
* ``header_nodes`` / ``header_lists`` (shared answers while the header is the seed's) equal a fresh
  walk of the mutant's header, before and after mutators change it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections.abc import Callable

import pytest

from phoneemu.formats._tlv import unchecked
from phoneemu.fuzz import tlvtree
from phoneemu.fuzz.corpus import build_corpus
from phoneemu.fuzz.mutators import Mutant, Mutator
from phoneemu.fuzz.tlvtree import (
    CONTAINER,
    LEAF,
    TAG_ONLY,
    FileTree,
    Node,
    boundaries,
    parse_tree,
    resign,
    serialise,
)

FORMATS = ["itl", "ctl", "sgn", "enc"]


def _node_marks(nodes: list[Node], pos: int, marks: set[int]) -> int:
    """Add the offsets of ``nodes`` laid out from ``pos``; return where they end."""
    for n in nodes:
        marks.add(pos)
        if n.kind == TAG_ONLY:
            pos += 1
        elif n.kind == LEAF:
            marks.add(pos + 3)
            pos += 3 + len(n.value)
        elif n.kind == CONTAINER:
            marks.add(pos + 3)
            pos = _node_marks(n.children, pos + 3, marks)
        else:
            pos += len(n.value)
        marks.add(pos)
    return pos


def _parsed_marks(data: bytes, *, records: bool) -> list[int]:
    tree = parse_tree(data, records=records)
    marks = {0, len(data)}
    pos = _node_marks(tree.header, 0, marks)
    for rec in tree.records or ():
        pos = _node_marks(rec.nodes, pos, marks)
    return sorted(marks)


def _inputs(fmt: str, count: int) -> list[bytes]:
    mut = Mutator(build_corpus(fmt), resign_ratio=0.3)
    rng = random.Random(fmt)
    out = list(mut.corpus.seeds)
    for i in range(count):
        data = mut.mutate(random.Random(i)).data
        out += [data, data[: rng.randrange(len(data) + 1)]]
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_boundaries_are_the_parsed_node_offsets(fmt: str) -> None:
    for data in _inputs(fmt, 150):
        for records in (True, False):
            assert boundaries(data, records=records) == _parsed_marks(data, records=records)


def _ids(slots: list[tlvtree.Slot]) -> list[tuple[int, int, int]]:
    return [(id(lst), i, id(n)) for lst, i, n in slots]


@pytest.mark.parametrize("fmt", FORMATS)
def test_header_size_find_slot_and_shared_header_answers(fmt: str) -> None:
    mut = Mutator(build_corpus(fmt))
    for i in range(300):
        rng = random.Random(i)
        tree = mut.ctx.seed_trees[i % len(mut.ctx.seed_trees)].cow_clone()
        for step in range(2):
            slots = tree.header_slots()
            kinds = (LEAF,) if step else (LEAF, CONTAINER)
            assert _ids(tree.header_nodes(kinds)) == _ids([s for s in slots if s[2].kind in kinds])
            want = [s for s in slots if s[2].kind == LEAF and s[2].tag in (8, 12)]
            assert _ids(tree.header_nodes((LEAF,), (8, 12))) == _ids(want)
            assert [id(lst) for lst in tree.header_lists()] == [id(lst) for lst, j, _ in slots if j == 0]
            mut.ops[rng.randrange(len(mut.ops))][1](tree, rng, mut.ctx)
        plain = FileTree(header=tree.header)
        assert tlvtree.header_size(tree) == len(serialise(plain))
        for tag in (2, 8, 12, 15, 16, 200):
            slot = tree.find_slot(tag)
            assert (slot[2] if slot else None) is tree.find(tag)
            if slot is not None:
                assert slot[0][slot[1]] is slot[2]


# --------------------------------------------------------------------------- round 2
def _fake_sign(seen: list[bytes]) -> Callable[[object, bytes, object], bytes]:
    """A deterministic stand-in for RSA signing (128 bytes from the message) that records messages."""
    def sign(key: object, msg: bytes, alg: object) -> bytes:
        seen.append(msg)
        return hashlib.sha512(msg).digest() * 2
    return sign


def _plain_repad(tree: FileTree) -> None:
    """The rule of ``_repad`` with no shortcut: drop trailing pads, add them to a multiple of 4."""
    tree.own_header()
    while tree.header and tree.header[-1].kind == TAG_ONLY:
        tree.header.pop()
    size = len(serialise(FileTree(header=tree.header)))
    tree.header.extend(Node.pad() for _ in range(-size % 4))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("repad", [False, True])
def test_resign_of_shared_and_private_trees_signs_the_same_message(fmt: str, repad: bool) -> None:
    """The shared-header shortcuts of resign (untouched seed header, already padded header) give
    the bytes, the signed message and the tree of a plain resign of a private deep copy."""
    mut = Mutator(build_corpus(fmt))
    key = mut.corpus.signer.key
    for i in range(200):
        rng = random.Random(i)
        tree = mut.ctx.seed_trees[i % len(mut.ctx.seed_trees)].cow_clone()
        for _ in range(i % 3):  # some trees untouched, some mutated
            mut.ops[rng.randrange(len(mut.ops))][1](tree, rng, mut.ctx)
        plain = tree.clone()  # no shared header, no cached bytes: the plain path
        if repad:
            _plain_repad(plain)
        fast_msgs: list[bytes] = []
        plain_msgs: list[bytes] = []
        fast = resign(tree, key, repad=repad, sign=_fake_sign(fast_msgs))
        want = resign(plain, key, sign=_fake_sign(plain_msgs))
        assert fast == want and fast_msgs == plain_msgs
        assert serialise(tree) == serialise(plain) == want


def test_repad_leaves_a_padded_header_alone_and_fixes_others() -> None:
    mut = Mutator(build_corpus("itl"))
    for pads in range(7):
        for extra in (b"", b"x", b"xy", b"xyz"):
            tree = mut.ctx.seed_trees[0].cow_clone()
            lst = tree.own_list(tree.header)
            while lst[-1].kind == TAG_ONLY:
                lst.pop()
            lst.append(Node.leaf(200, extra))
            lst += [Node.pad() for _ in range(pads)]
            plain = tree.clone()
            _plain_repad(plain)
            tlvtree._repad(tree)
            assert serialise(tree) == serialise(plain)
            assert len(serialise(FileTree(header=tree.header))) % 4 == 0


def test_boundaries_of_repeated_and_interleaved_records() -> None:
    seed = build_corpus("itl").seeds[0]
    tree = parse_tree(seed, records=True)
    recs = [r.freeze().frozen or b"" for r in tree.records or ()]
    head = seed[: len(seed) - sum(map(len, recs)) - len(tree.trailer)]
    tiny = b"\x01\x00\x02\x00\x0d\x04\x00\x02\x00\x01\x0a\x00\x00"
    bodies = [tiny * 50, recs[0] * 3 + recs[1] + recs[0] * 2, tiny * 3 + tiny[:7],
              tiny + tiny.replace(b"\x0d", b"\x0e") + tiny, recs[1] * 2 + b"\x01\x00\x02\xff\xff" + tiny]
    for body in bodies:
        data = head + body
        for cut in (len(data), len(data) - 1, len(data) - 6):
            assert boundaries(data[:cut], records=True) == _parsed_marks(data[:cut], records=True)


def test_fast_mutant_and_record_copies_equal_the_plain_ones() -> None:
    plain = Mutant(data=b"ab", seed_index=2, ops=("x", "y"), resigned=True)
    fast = unchecked(Mutant, data=b"ab", seed_index=2, ops=("x", "y"), resigned=True)  # as Mutator.mutate
    assert fast == plain and hash(fast) == hash(plain) and repr(fast) == repr(plain)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.data = b""  # type: ignore[misc]
    rec = parse_tree(build_corpus("itl").seeds[0], records=True).records
    assert rec
    frozen = rec[0].freeze()
    copy = frozen.clone()
    assert copy.frozen is None and copy.nodes is not frozen.nodes
    assert all(a is not b for a, b in zip(copy.nodes, frozen.nodes, strict=True))
    assert serialise(FileTree(header=copy.nodes)) == frozen.frozen
    pads = Node.pads(3)
    assert len({id(p) for p in pads}) == 3
    assert all(repr(p) == repr(Node.pad()) and p.value == b"" and not p.children and not p.auto for p in pads)


@pytest.mark.parametrize("fmt", FORMATS)
def test_mutating_never_changes_a_seed(fmt: str) -> None:
    """Copy on write (lists and single nodes owned lazily): the seeds' nodes and bytes stay as they were."""
    mut = Mutator(build_corpus(fmt), resign_ratio=0.5)
    before = [(serialise(t.clone()), [(n.tag, n.value, n.length, n.auto) for _, _, n in t.header_slots()])
              for t in mut.ctx.seed_trees]
    for i in range(1500):
        mut.mutate(random.Random(i))
    for t, (data, nodes) in zip(mut.ctx.seed_trees, before, strict=True):
        assert serialise(t.clone()) == data
        assert [(n.tag, n.value, n.length, n.auto) for _, _, n in t.header_slots()] == nodes
        assert tlvtree._header_bytes(t.header) == t.header_bytes
        for rec in t.records or ():
            assert serialise(FileTree(header=rec.nodes)) == rec.frozen
