"""Issue #7: the faster mutate side answers exactly as the plain definitions.

* ``boundaries`` gives the node offsets of ``parse_tree`` (computed here from the parsed nodes);
* ``header_size`` is the length of the serialised header; ``find_slot`` holds ``find``'s node;
* ``header_nodes`` / ``header_lists`` (shared answers while the header is the seed's) equal a fresh
  walk of the mutant's header, before and after mutators change it.
"""

from __future__ import annotations

import random

import pytest

from phoneemu.fuzz import tlvtree
from phoneemu.fuzz.corpus import build_corpus
from phoneemu.fuzz.mutators import Mutator
from phoneemu.fuzz.tlvtree import CONTAINER, LEAF, TAG_ONLY, FileTree, Node, boundaries, parse_tree, serialise

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
