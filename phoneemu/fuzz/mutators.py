"""Structure-aware mutators for signed files (spec §A header, §B records, §C.1 ``.sgn``, §C.3 ``.enc.sgn``).

Rules implemented here:

* A mutant starts from a valid seed (:mod:`phoneemu.fuzz.corpus`) parsed into a lossless
  :class:`~phoneemu.fuzz.tlvtree.FileTree`; one to three named mutators change its structure;
  the tree is serialised either with its stale signature or re-signed with the corpus key
  (``resign_ratio``), so mutants reach past the signature check as well as test its rejection.
* Mutators (each a function ``(tree, rng, ctx) -> bool``, True when it changed something):
  length fields lying up and down, HEADER_LENGTH / RECORD_LENGTH lies, container lengths
  inconsistent with their children, duplicated / removed / reordered / moved tags, unknown tags,
  role / hash / modulus / signature-algorithm / encryption codes out of range, very many records,
  strings without their NUL, certificate DER mutations, signature swaps, padding in odd places,
  encryption fields (IV, padding count, wrapped key, plaintext hash) and body mutations; a
  ``.sgn`` body that is XML (a device config) also gets hostile XML (:mod:`phoneemu.fuzz.xmlmut`).
* After serialisation a fraction of mutants is truncated at a TLV boundary or bit-flipped.
* Everything is driven by the ``random.Random`` passed in: the same seed gives the same mutant.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from phoneemu.errors import EncodeError
from phoneemu.formats._tlv import unchecked
from phoneemu.fuzz import MESSAGE_FORMATS
from phoneemu.fuzz.corpus import Corpus
from phoneemu.fuzz.mediamsg import SdpMutator, SrtpMutator
from phoneemu.fuzz.messages import MessageMutator
from phoneemu.fuzz.sipmsg import SIP_FORMATS, SipMutator
from phoneemu.fuzz.tlvtree import (
    CONTAINER,
    CONTAINERS,
    LEAF,
    RAW,
    TAG_ONLY,
    FileTree,
    Node,
    SignCache,
    Slot,
    boundaries,
    header_size,
    parse_tree,
    resign,
    serialise,
)
from phoneemu.fuzz.xmlmut import mutate_xml

__all__ = ["MUTATORS", "Mutant", "MutationContext", "Mutator", "mutators_for", "tlv_boundaries"]

# Header tags (spec §A.2, §C.3) and record tags (spec §B.2).
H_VERSION, H_SIGNER_SERIAL, H_HASH, H_SIGALG, H_MODULUS, H_SIGNATURE = 1, 5, 8, 10, 11, 12
H_TIMESTAMP, H_SIGNER_VERSION = 15, 28
H_STRINGS = (4, 6, 14)
H_ENC_CODES = (18, 22, 24, 26)
H_ENC_U16 = (20, 23)
H_ENC_BYTES = (19, 25, 27)
R_STRINGS = (2, 3, 5)
R_ROLE, R_SERIAL, R_KEY, R_SIG, R_CERT, R_IP, R_HASH = 4, 6, 7, 8, 9, 10, 12
KNOWN_HEADER = frozenset(range(1, 29))
KNOWN_RECORD = frozenset(range(1, 13))
MAX_FILE = 72 * 1024  # mutants stay near the 64 KiB trust-list limit (spec §B.5), never far above


@dataclass(kw_only=True)
class MutationContext:
    """What mutators may draw from: the corpus and its donor certificates and signatures."""

    corpus: Corpus
    records: bool
    seed_trees: list[FileTree] = field(default_factory=list)


Mutation = Callable[[FileTree, random.Random, MutationContext], bool]


# --------------------------------------------------------------------------- helpers
# The header and records of a mutant are shared with its seed until changed (copy on write,
# FileTree.own_node / own_list): candidates are gathered read-only, and the one chosen is made the
# tree's own (_own / own_list) before anything in it changes.
_LEAF_ONLY = (LEAF,)


def _lists(tree: FileTree, *, records: bool = True) -> list[list[Node]]:
    out = list(tree.header_lists())
    if not tree.header:
        out.append(tree.header)
    if records and tree.records:
        out += [r.nodes for r in tree.records]
    return out


def _nodes(tree: FileTree, *, records: bool = True, kinds: tuple[int, ...] = (LEAF, CONTAINER),
           ) -> list[Slot]:
    out = list(tree.header_nodes(kinds))
    if records and tree.records:
        out += tree.record_nodes(kinds)
    return out


def _own(tree: FileTree, slot: Slot) -> Node:
    """The node of ``slot``, made the tree's own first (see the note above)."""
    lst, i, _ = slot
    return tree.own_node(lst, i)


def _header_leaves(tree: FileTree, tags: tuple[int, ...] | frozenset[int]) -> list[Slot]:
    """Header leaves with one of ``tags`` (a shared list: do not change it)."""
    return tree.header_nodes(_LEAF_ONLY, tags)


def _record_leaves(tree: FileTree, tags: tuple[int, ...]) -> list[Slot]:
    return tree.record_nodes(_LEAF_ONLY, tags) if tree.records else []


def _size(n: Node) -> int:
    if n.kind == LEAF:
        return len(n.value)
    if n.kind == CONTAINER:
        return sum(3 + _size(c) if c.kind in (LEAF, CONTAINER) else len(c.value) or 1 for c in n.children)
    return 0


def _lie(rng: random.Random, true: int) -> int:
    choice = rng.randrange(8)
    if choice == 0:
        return 0
    if choice == 1:
        return 0xFFFF
    if choice == 2:
        return (true + rng.randint(1, 4)) & 0xFFFF
    if choice == 3:
        return max(0, true - rng.randint(1, 4))
    if choice == 4:
        return (true + rng.choice((16, 128, 256, 4096))) & 0xFFFF
    if choice == 5:
        return true // 2
    if choice == 6:
        return (true * 2 + 1) & 0xFFFF
    return rng.randrange(0x10000)


def _rand_bytes(rng: random.Random, n: int) -> bytes:
    return rng.randbytes(n)


def _flip(rng: random.Random, data: bytes, count: int = 1) -> bytes:
    if not data:
        return bytes([rng.randrange(256)])
    b = bytearray(data)
    for _ in range(count):
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


# --------------------------------------------------------------------------- mutators
def length_lie(tree: FileTree, rng: random.Random, ctx: MutationContext) -> bool:
    """A TLV length field lies (up or down) about its value."""
    cands = _nodes(tree, kinds=(LEAF,))
    if not cands:
        return False
    n = _own(tree, rng.choice(cands))
    n.length = _lie(rng, len(n.value))
    return True


def container_length(tree: FileTree, rng: random.Random, ctx: MutationContext) -> bool:
    """A container (3, 7, 9, 16, 17, 21) length inconsistent with its children."""
    cands = tree.header_nodes((CONTAINER,))
    if not cands:
        return False
    n = _own(tree, rng.choice(cands))
    n.length = _lie(rng, _size(n))
    return True


def header_length_lie(tree: FileTree, rng: random.Random, ctx: MutationContext) -> bool:
    """HEADER_LENGTH (tag 2) claims the wrong header size."""
    slot = tree.find_slot(2)
    if slot is None or slot[2].kind != LEAF:
        return False
    n = _own(tree, slot)
    hl = header_size(tree)
    n.auto = False
    lie = rng.choice((0, 10, hl - 1, hl + 1, hl - 4, hl + 4, hl + 3, 0xFFFF, rng.randrange(0x10000),
                      hl + len(tree.body) + 1))
    n.value = (lie & 0xFFFF).to_bytes(2, "big")
    return True


def record_length_lie(tree: FileTree, rng: random.Random, ctx: MutationContext) -> bool:
    """RECORD_LENGTH (record tag 1) claims the wrong record size."""
    records = tree.records
    if not records:
        return False
    rec = rng.choice(records)
    heads = [i for i, n in enumerate(rec.nodes) if n.kind == LEAF and n.tag == 1 and len(n.value) == 2]
    if not heads:
        return False
    size = len(rec.frozen) if rec.frozen is not None else len(serialise(FileTree(header=rec.nodes)))
    head = tree.own_node(rec.nodes, heads[0])
    head.auto = False
    head.value = _lie(rng, size).to_bytes(2, "big")
    return True


def duplicate_tag(tree: FileTree, rng: random.Random, ctx: MutationContext) -> bool:
    """A TLV appears twice (next to itself or elsewhere in the same list)."""
    cands = _nodes(tree)
    if not cands:
        return False
    lst, i, n = rng.choice(cands)
    tree.own_list(lst).insert(rng.choice((i, i + 1, rng.randrange(len(lst) + 1))), n.clone())
    return True


def remove_tag(tree: FileTree, rng: random.Random, ctx: MutationContext) -> bool:
    """A required or optional TLV is missing."""
    cands = _nodes(tree, kinds=(LEAF, CONTAINER, TAG_ONLY))
    if not cands:
        return False
    lst, i, _ = rng.choice(cands)
    del tree.own_list(lst)[i]
    return True


def reorder_tags(tree: FileTree, rng: random.Random, ctx: MutationContext) -> bool:
    """Two TLVs swap places, a list is shuffled, or a TLV moves into another container / level."""
    lists = [lst for lst in _lists(tree) if len(lst) >= 2]
    if not lists:
        return False
    lst = tree.own_list(rng.choice(lists))
    mode = rng.randrange(3)
    if mode == 0:
        i, j = rng.randrange(len(lst)), rng.randrange(len(lst))
        lst[i], lst[j] = lst[j], lst[i]
    elif mode == 1:
        rng.shuffle(lst)
    else:
        node = lst.pop(rng.randrange(len(lst)))
        target = tree.own_list(rng.choice(_lists(tree, records=rng.random() < 0.3) or [lst]))
        target.insert(rng.randrange(len(target) + 1), node)
    return True


_ODD_TAGS = (0, 29, 30, 64, 127, 128, 200, 254, 255)
#: in a record?  → the odd tags unknown there (perf only: computed once)
_UNKNOWN_TAGS = {True: [t for t in _ODD_TAGS if t not in KNOWN_RECORD],
                 False: [t for t in _ODD_TAGS if t not in KNOWN_HEADER]}


def unknown_tag(tree: FileTree, rng: random.Random, ctx: MutationContext) -> bool:
    """An unknown tag (value of random size) appears in the header, a container or a record."""
    lists = _lists(tree)
    if not lists:
        return False
    lst = rng.choice(lists)
    in_record = any(lst is r.nodes for r in tree.records or ())
    tag = rng.choice([*_UNKNOWN_TAGS[in_record], rng.randrange(256)])
    if rng.random() < 0.2 and not in_record:
        node = Node.container(tag, [Node.leaf(rng.randrange(256), _rand_bytes(rng, rng.randrange(8)))])
    else:
        node = Node.leaf(tag, _rand_bytes(rng, rng.choice((0, 1, 2, 4, 16, rng.randrange(300)))))
    tree.own_list(lst).insert(rng.randrange(len(lst) + 1), node)
    return True


_CODE_GROUP = {H_HASH: 0, H_MODULUS: 1, H_SIGALG: 2, **{t: 3 for t in H_ENC_CODES}}
_CODE_TAGS = frozenset(_CODE_GROUP)
_CODE_VALUES: dict[int, Sequence[int]] = {0: (0, 4, 5, 0x7F, 0xFF), 1: (4, 5, 0x7F, 0x80, 0x83, 0xFF),
                                          2: (1, 2, 0x80, 0xFF), 3: (0, 2, 3, 0x80, 0xFF)}


def code_out_of_range(tree: FileTree, rng: random.Random, ctx: MutationContext) -> bool:
    """Role / hash / modulus / signature algorithm / encryption codes out of range (or wrong width)."""
    # One header walk, grouped as hash, modulus, signature algorithm, encryption codes (walk order
    # inside each group), then record ROLE and HASH_ALGORITHM leaves.
    groups: dict[int, list[tuple[Slot, Sequence[int], int]]] = {0: [], 1: [], 2: [], 3: []}
    for slot in _header_leaves(tree, _CODE_TAGS):
        g = _CODE_GROUP[slot[2].tag]
        groups[g].append((slot, _CODE_VALUES[g], 1))
    cands = groups[0] + groups[1] + groups[2] + groups[3]
    cands += [(n, (6, 8, 20, 22, 0x100, 0xFFFF), 2) for n in _record_leaves(tree, (R_ROLE,))]
    cands += [(n, (0, 4, 0xFF), 1) for n in _record_leaves(tree, (R_HASH,))]
    if not cands:
        return False
    slot, values, width = rng.choice(cands)
    n = _own(tree, slot)
    mode = rng.randrange(4)
    if mode == 0:  # wrong width
        n.value = _rand_bytes(rng, rng.choice((0, width + 1, width + 3)))
    elif mode == 1:
        n.value = rng.randrange(256 ** width).to_bytes(width, "big")
    else:
        n.value = rng.choice(values).to_bytes(width, "big")
    return True


def many_records(tree: FileTree, rng: random.Random, ctx: MutationContext) -> bool:
    """Very many records: copies of one record, or many tiny ones, up to and past the 64 KiB limit.

    The copies go into the trailer as bytes (cheap to make); the parser sees ordinary records.
    Large counts are drawn rarely: parsing cost is linear in the number of records.
    """
    if tree.records is None:
        return False
    big = rng.random() < 0.15
    if tree.records and rng.random() < 0.6:
        picked = rng.choice(tree.records)
        rec = picked.frozen if picked.frozen is not None else serialise(FileTree(header=picked.nodes))
        count = rng.choice((MAX_FILE // max(5, len(rec)), 60)) if big else rng.choice((2, 5, 20))
    else:
        role = rng.randrange(0x10000).to_bytes(2, "big")
        rec = b"\x01\x00\x02\x00\x0d\x04\x00\x02" + role + b"\x0a\x00\x00"  # length 13: ROLE + empty IP
        count = rng.choice((1000, MAX_FILE // len(rec))) if big else rng.choice((10, 100))
    tree.trailer += rec * count
    return True


def string_mutation(tree: FileTree, rng: random.Random, ctx: MutationContext) -> bool:
    """A string without its NUL, with a NUL inside, empty, invalid UTF-8, or very long."""
    cands = _header_leaves(tree, H_STRINGS) + _record_leaves(tree, R_STRINGS)
    if not cands:
        return False
    n = _own(tree, rng.choice(cands))
    v = n.value
    mode = rng.randrange(6)
    if mode == 0:
        n.value = v[:-1] if v.endswith(b"\0") else v
    elif mode == 1:
        n.value = b""
    elif mode == 2:
        n.value = v[: len(v) // 2] + b"\0" + v[len(v) // 2:]
    elif mode == 3:
        n.value = b"\xff\xfe\xc3(" + v
    elif mode == 4:
        n.value = b"A" * rng.choice((255, 1024, 4000)) + b"\0"
    else:
        n.value = b"\0"
    return True


def cert_der(tree: FileTree, rng: random.Random, ctx: MutationContext) -> bool:
    """Certificate DER (record tag 9) damaged: flips, truncation, length lies, junk, swaps."""
    cands = _record_leaves(tree, (R_CERT,))
    if not cands:
        return False
    n = _own(tree, rng.choice(cands))
    v = n.value
    mode = rng.randrange(9)
    if mode == 0:
        n.value = _flip(rng, v, rng.randint(1, 4))
    elif mode == 1:
        n.value = v[: rng.randrange(len(v) + 1)]
    elif mode == 2 and len(v) > 4:  # outer SEQUENCE length lies
        n.value = v[:2] + _flip(rng, v[2:4]) + v[4:]
    elif mode == 3:
        n.value = v + _rand_bytes(rng, rng.randint(1, 32))
    elif mode == 4:
        n.value = rng.choice(ctx.corpus.donor_certs)
    elif mode == 5:
        n.value = b""
    elif mode == 6:
        n.value = b"\x30\x82\xff\xff" + v[4:]
    elif mode == 7 and len(v) > 8:  # damage somewhere in the TBS (names, validity, key)
        i = rng.randrange(4, len(v))
        n.value = v[:i] + bytes([rng.randrange(256)]) + v[i + 1:]
    else:
        n.value = _rand_bytes(rng, rng.randrange(1, 64))
    return True


def signature_swap(tree: FileTree, rng: random.Random, ctx: MutationContext) -> bool:
    """Header or record signature replaced: another signature, random, zeros, truncated, empty."""
    cands = _header_leaves(tree, (H_SIGNATURE,)) + _record_leaves(tree, (R_SIG,))
    if not cands:
        return False
    slot = rng.choice(cands)
    n = _own(tree, slot)
    mode = rng.randrange(6)
    if mode == 0:  # others built only when used (perf only: building them draws nothing)
        others = [m.value for _, _, m in cands if m is not slot[2]] + list(ctx.corpus.donor_signatures)
        others += [h.value for t in ctx.seed_trees  # other files
                   for _, _, h in _header_leaves(t, (H_SIGNATURE,))]
        n.value = rng.choice(others)
    elif mode == 1:
        n.value = _rand_bytes(rng, len(n.value))
    elif mode == 2:
        n.value = bytes(len(n.value))
    elif mode == 3:
        n.value = n.value[: rng.randrange(len(n.value) + 1)]
    elif mode == 4:
        n.value = b""
    else:
        n.value = n.value + n.value
    return True


def value_mutation(tree: FileTree, rng: random.Random, ctx: MutationContext) -> bool:
    """A leaf value (serial, key, IP, IV, wrapped key, hashes, version, timestamp ...) is damaged."""
    cands = _nodes(tree, kinds=(LEAF,))
    if not cands:
        return False
    n = _own(tree, rng.choice(cands))
    v = n.value
    mode = rng.randrange(5)
    if mode == 0:
        n.value = _flip(rng, v, rng.randint(1, 3))
    elif mode == 1:
        n.value = v[: rng.randrange(len(v) + 1)]
    elif mode == 2:
        n.value = v + _rand_bytes(rng, rng.choice((1, 2, 16, 200)))
    elif mode == 3:
        n.value = b"\xff" * len(v)
    else:
        n.value = bytes(len(v))
    if n.auto and len(n.value) != 2:
        n.auto = False
    return True


def key_mutation(tree: FileTree, rng: random.Random, ctx: MutationContext) -> bool:
    """Record PUBLIC_KEY / SERIAL / header signer serial damaged or swapped (signer matching, §B.4)."""
    cands = _record_leaves(tree, (R_KEY, R_SERIAL)) + _header_leaves(tree, (H_SIGNER_SERIAL,))
    if not cands:
        return False
    slot = rng.choice(cands)
    n = _own(tree, slot)
    mode = rng.randrange(5)
    # the other values of its tag, built only when used (perf only: building them draws nothing)
    same = [m.value for _, _, m in cands if m.tag == slot[2].tag and m is not slot[2]] if mode == 0 else []
    if mode == 0 and same:
        n.value = rng.choice(same)
    elif mode == 1:
        n.value = b"\x04" + _rand_bytes(rng, 64)  # an EC point that is (almost surely) off the curve
    elif mode == 2:
        n.value = b"\x30\x82\x01\x0a\x02\x82\x01\x01\x00" + _rand_bytes(rng, 8)
    elif mode == 3:
        n.value = _flip(rng, n.value, 2)
    else:
        n.value = b"\x00" + n.value
    return True


def padding_mutation(tree: FileTree, rng: random.Random, ctx: MutationContext) -> bool:
    """0x0D padding added anywhere (header, containers, records) or removed."""
    pads = tree.header_nodes((TAG_ONLY,))
    if pads and rng.random() < 0.4:
        lst, i, _ = rng.choice(pads)
        del tree.own_list(lst)[i]
        return True
    lst = tree.own_list(rng.choice(_lists(tree)))
    pos = rng.randrange(len(lst) + 1)
    lst[pos:pos] = Node.pads(rng.choice((1, 1, 3, 4, 100)))
    return True


def record_ops(tree: FileTree, rng: random.Random, ctx: MutationContext) -> bool:
    """Records removed, duplicated, swapped, reversed, emptied, or taken from another seed."""
    if tree.records is None:
        return False
    recs = tree.records
    mode = rng.randrange(6)
    if mode == 0 and recs:
        del recs[rng.randrange(len(recs))]
    elif mode == 1 and recs:
        recs.insert(rng.randrange(len(recs) + 1), rng.choice(recs).clone())
    elif mode == 2 and len(recs) >= 2:
        i, j = rng.randrange(len(recs)), rng.randrange(len(recs))
        recs[i], recs[j] = recs[j], recs[i]
    elif mode == 3:
        recs.reverse()
    elif mode == 4:
        recs.clear()
    else:
        donors = [r for t in ctx.seed_trees for r in (t.records or ())]
        if not donors:
            return False
        recs.insert(rng.randrange(len(recs) + 1), rng.choice(donors).clone())
    return True


def trailer_junk(tree: FileTree, rng: random.Random, ctx: MutationContext) -> bool:
    """Bytes after the last record / the body that do not form a record, or a record cut short."""
    junk = rng.choice((b"\x01", b"\x01\x00\x02", b"\x01\x00\x02\x00\x05", b"\x01\x00\x02\xff\xff",
                       _rand_bytes(rng, rng.randrange(1, 40)), b"\r\r\r"))
    if tree.records is not None:
        tree.trailer += junk
    else:
        tree.body += junk
    return True


def body_mutation(tree: FileTree, rng: random.Random, ctx: MutationContext) -> bool:
    """``.sgn`` / ``.enc.sgn`` body: flips, truncation (not a multiple of 16), extension, empty."""
    if tree.records is not None:
        return False
    b = tree.body
    mode = rng.randrange(6)
    if mode == 0:
        tree.body = _flip(rng, b, rng.randint(1, 4))
    elif mode == 1:
        tree.body = b[: rng.randrange(len(b) + 1)]
    elif mode == 2:
        tree.body = b + _rand_bytes(rng, rng.choice((1, 15, 16, 17)))
    elif mode == 3:
        tree.body = b""
    elif mode == 4 and len(b) >= 32:  # swap two AES blocks
        tree.body = b[16:32] + b[:16] + b[32:]
    else:
        tree.body = b[-16:] if len(b) >= 16 else b * 2
    return True


def config_xml(tree: FileTree, rng: random.Random, ctx: MutationContext) -> bool:
    """``.sgn`` body that is XML (a device config, spec §C.1, §C.2): entities, deep nesting, hostile
    values, server lists, encodings ... (:func:`phoneemu.fuzz.xmlmut.mutate_xml`)."""
    if tree.records is not None or tree.body.lstrip()[:1] != b"<":
        return False
    tree.body = mutate_xml(tree.body, rng)
    return True


def encryption_fields(tree: FileTree, rng: random.Random, ctx: MutationContext) -> bool:
    """Encryption tags (spec §C.3): padding count 0/17/large, key size, IV/key/hash sizes, junk."""
    u16 = _header_leaves(tree, H_ENC_U16)
    raw = _header_leaves(tree, H_ENC_BYTES)
    if not u16 and not raw:
        return False
    if u16 and (not raw or rng.random() < 0.5):
        n = _own(tree, rng.choice(u16))
        n.value = rng.choice((0, 1, 15, 16, 17, 255, 256, 1024, 2048, 4096, 0xFFFF,
                              rng.randrange(0x10000))).to_bytes(2, "big")
    else:
        n = _own(tree, rng.choice(raw))
        n.value = rng.choice((b"", n.value[:-1], n.value + b"\0", _rand_bytes(rng, len(n.value)),
                              _rand_bytes(rng, rng.choice((8, 15, 17, 32, 64, 512)))))
    return True


def raw_garbage(tree: FileTree, rng: random.Random, ctx: MutationContext) -> bool:
    """Raw bytes that are not a whole TLV inserted in the header or a container (a TLV cut short)."""
    lst = tree.own_list(rng.choice(_lists(tree, records=False)))
    junk = rng.choice((bytes([rng.randrange(256)]), bytes([rng.randrange(256), 0]),
                       bytes([rng.choice(sorted(CONTAINERS)), 0xFF, 0xFF]), _rand_bytes(rng, 5)))
    lst.insert(rng.randrange(len(lst) + 1), Node(RAW, -1, junk))
    return True


def version_mutation(tree: FileTree, rng: random.Random, ctx: MutationContext) -> bool:
    """VERSION / SIGNER_VERSION / TIMESTAMP values and widths (spec §A.6)."""
    cands = _header_leaves(tree, (H_VERSION, H_SIGNER_VERSION, H_TIMESTAMP))
    if not cands:
        return False
    n = _own(tree, rng.choice(cands))
    width = len(n.value)
    n.value = rng.choice((b"", bytes(width), b"\xff" * width, _rand_bytes(rng, width),
                          _rand_bytes(rng, width + 1), b"\x63\x63"))
    return True


def firmware_manifest(tree: FileTree, rng: random.Random, ctx: MutationContext) -> bool:
    """Firmware payload manifest (our layout, :mod:`phoneemu.formats.firmware`): magic, a lying
    load-name or image length (0, short, huge), a load name without NUL / with bad characters / of
    129 characters, bytes after the image."""
    if tree.records is not None:
        return False
    b = tree.body
    magic_len = 8
    if len(b) < magic_len + 2:
        tree.body = b + _rand_bytes(rng, rng.choice((1, 2, 6)))
        return True
    name_len = int.from_bytes(b[magic_len:magic_len + 2], "big")
    name_end = magic_len + 2 + name_len
    mode = rng.randrange(6)
    if mode == 0:
        tree.body = rng.choice((b"PHEMUFW2", b"\0" * 8, _rand_bytes(rng, 8))) + b[magic_len:]
    elif mode == 1:
        n = rng.choice((0, 1, name_len - 1, name_len + 1, 129, 0xFFFF, rng.randrange(0x10000)))
        tree.body = b[:magic_len] + min(max(0, n), 0xFFFF).to_bytes(2, "big") + b[magic_len + 2:]
    elif mode == 2 and name_end + 4 <= len(b):
        size = int.from_bytes(b[name_end:name_end + 4], "big")
        n = rng.choice((0, max(0, size - 1), size + 1, 0xFFFFFFFF, 1 << 31, rng.randrange(1 << 32)))
        tree.body = b[:name_end] + min(n, 0xFFFFFFFF).to_bytes(4, "big") + b[name_end + 4:]
    elif mode == 3 and name_end <= len(b):
        name = rng.choice((b"x" * 129 + b"\0", b"../etc\0", b"..\0", b"a b\0", b"\xff\0", b"noNUL", b"\0"))
        tree.body = b[:magic_len] + len(name).to_bytes(2, "big") + name + b[name_end:]
    elif mode == 4:
        tree.body = b + _rand_bytes(rng, rng.choice((1, 4, 16)))
    else:
        tree.body = b[: rng.randrange(len(b) + 1)]
    return True


#: name → mutator; ``mutators_for(fmt)`` picks those that apply.
MUTATORS: dict[str, Mutation] = {
    "length-lie": length_lie,
    "container-length": container_length,
    "header-length-lie": header_length_lie,
    "record-length-lie": record_length_lie,
    "duplicate-tag": duplicate_tag,
    "remove-tag": remove_tag,
    "reorder-tags": reorder_tags,
    "unknown-tag": unknown_tag,
    "code-out-of-range": code_out_of_range,
    "many-records": many_records,
    "string": string_mutation,
    "cert-der": cert_der,
    "signature-swap": signature_swap,
    "value": value_mutation,
    "key": key_mutation,
    "padding": padding_mutation,
    "record-ops": record_ops,
    "trailer": trailer_junk,
    "body": body_mutation,
    "config-xml": config_xml,
    "encryption": encryption_fields,
    "raw-garbage": raw_garbage,
    "version": version_mutation,
    "firmware-manifest": firmware_manifest,
}
_TRUST_ONLY = {"record-length-lie", "many-records", "cert-der", "record-ops"}
_BODY_ONLY = {"body"}
_FIRMWARE_ONLY = {"firmware-manifest"}
_SGN_ONLY = {"config-xml"}  # an .enc.sgn body is ciphertext; a firmware body a load


def mutators_for(fmt: str) -> tuple[str, ...]:
    """Names of the mutators that apply to ``fmt``."""
    if fmt in ("itl", "ctl"):
        skip = _BODY_ONLY | {"encryption"} | _FIRMWARE_ONLY | _SGN_ONLY
    elif fmt == "sgn":
        skip = _TRUST_ONLY | {"encryption"} | _FIRMWARE_ONLY
    elif fmt == "firmware":
        # it mutates encryption tags, which no seed load carries
        skip = _TRUST_ONLY | {"encryption"} | _SGN_ONLY
    else:
        skip = _TRUST_ONLY | _FIRMWARE_ONLY | _SGN_ONLY
    return tuple(n for n in MUTATORS if n not in skip)


# --------------------------------------------------------------------------- byte-level finishing
def tlv_boundaries(data: bytes, *, records: bool) -> list[int]:
    """Offsets where a TLV (or tag-only pad, or record) starts or ends in ``data``."""
    return boundaries(data, records=records)


@dataclass(frozen=True, kw_only=True)
class Mutant:
    """One fuzz input: its bytes and how it was made."""

    data: bytes
    seed_index: int
    ops: tuple[str, ...]
    resigned: bool


class Mutator:
    """Makes mutants of one format's corpus; ``mutate(rng)`` is deterministic in ``rng``."""

    def __init__(self, corpus: Corpus, *, resign_ratio: float = 0.25, max_ops: int = 3,
                 only: Sequence[str] | None = None) -> None:
        if not 0.0 <= resign_ratio <= 1.0:
            raise EncodeError(f"resign ratio {resign_ratio} outside 0..1", path="resign_ratio")
        self.corpus = corpus
        self.message: MessageMutator | SipMutator | SrtpMutator | SdpMutator | None = None
        if corpus.fmt in MESSAGE_FORMATS:  # TVS / CAPF / SIP / media messages: nothing re-signed
            kind: type[MessageMutator | SipMutator | SrtpMutator | SdpMutator] = \
                SipMutator if corpus.fmt in SIP_FORMATS else SrtpMutator if corpus.fmt == "srtp" \
                else SdpMutator if corpus.fmt == "sdp" else MessageMutator
            self.message = kind(corpus.fmt, corpus.seeds, max_ops=max_ops)
            self.records = False
            self.names: tuple[str, ...] = kind.OPS
            self.ops: list[tuple[str, Mutation]] = []
            self.resign_ratio = 0.0
            return
        self.records = corpus.fmt in ("itl", "ctl")
        self.ctx = MutationContext(corpus=corpus, records=self.records)
        self.ctx.seed_trees = [parse_tree(s, records=self.records) for s in corpus.seeds]
        for t in self.ctx.seed_trees:  # shared by copy-on-write clones, never changed: cache their bytes
            t.freeze_header()
            for rec in t.records or ():
                rec.freeze()
        self.names = tuple(only) if only else mutators_for(corpus.fmt)
        unknown = [n for n in self.names if n not in MUTATORS]
        if unknown:
            raise EncodeError(f"unknown mutator(s) {', '.join(unknown)} (known: {', '.join(MUTATORS)})",
                              path="mutators")
        self.ops = [(n, MUTATORS[n]) for n in self.names]
        self.resign_ratio = resign_ratio
        self.max_ops = max(1, max_ops)
        self.cache: SignCache = {}

    def mutate(self, rng: random.Random) -> Mutant:
        if self.message is not None:
            si, data, mops = self.message.mutate(rng)
            return unchecked(Mutant, data=data, seed_index=si, ops=mops, resigned=False)
        ctx = self.ctx
        seeds = ctx.seed_trees
        randrange = rng.randrange  # bound once (perf only)
        rand = rng.random
        si = randrange(len(seeds))
        tree = seeds[si].cow_clone()
        applied: list[str] = []
        n_ops = 1
        for _ in range(self.max_ops - 1):
            if rand() < 0.3:
                n_ops += 1
        ops = self.ops
        for _ in range(n_ops):
            name, fn = ops[randrange(len(ops))]
            if fn(tree, rng, ctx):
                applied.append(name)
        resigned = rand() < self.resign_ratio
        if resigned:
            data = resign(tree, self.corpus.signer.key, repad=rand() < 0.5, cache=self.cache)
        else:
            data = serialise(tree)
        finish = rand()
        if finish < 0.08:
            cuts = tlv_boundaries(data, records=self.records)
            data = data[: rng.choice(cuts)]
            applied.append("truncate-boundary")
        elif finish < 0.12:
            data = _flip(rng, data, rng.randint(1, 8))
            applied.append("bit-flip")
        # perf only: the frozen dataclass's __init__ skipped (it has no checks)
        return unchecked(Mutant, data=data, seed_index=si, ops=tuple(applied), resigned=resigned)
