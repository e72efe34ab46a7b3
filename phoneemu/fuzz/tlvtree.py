"""A generic, lossless TLV tree of a signed file, for mutation and re-signing (spec §A, §B).

Rules implemented here:

* A signed file is a header of TLVs (tag u8, length u16 BE, value) followed by a body (spec §A.1).
  The header region is the first HEADER_LENGTH bytes (tag 2, the second TLV), clamped to the file.
* Header tags 3, 7, 9, 16, 17, 21 are containers: their value is parsed as nested TLVs
  (spec §A.2, §C.3). Tag 13 is tag-only padding (one byte, no length, no value).
* A CTL/ITL body is a sequence of records, each a flat TLV list whose first TLV is RECORD_LENGTH
  (tag 1, u16) counting the whole record (spec §B.2). Other bodies (``.sgn``, ``.enc.sgn``) stay raw.
* Lossless: :func:`parse_tree` never fails; whatever cannot be read as a TLV is kept as a raw node,
  and ``serialise(parse_tree(b)) == b`` for every input.
* Lengths are *derived* at serialisation unless a node carries an explicit ``length`` (a lie, or
  the value read from a malformed input). HEADER_LENGTH and RECORD_LENGTH values are derived
  (``auto``) unless the input disagreed with the actual size.
* Copy on write (speed): a mutant made by :meth:`FileTree.cow_clone` shares its seed's header
  (its bytes cached by :meth:`FileTree.freeze_header`) and frozen records (their bytes cached);
  :meth:`FileTree.own_list` copies just the record (or header list, with the lists and containers
  above it) about to change, and :meth:`FileTree.own_node` no more nodes than the one about to
  change (a list it copies keeps the seed's other nodes: *partial*, until they are owned). Whoever
  changes a node must get it through :meth:`FileTree.own_node` / :meth:`FileTree.own_list` (or
  :meth:`FileTree.own_header`) first; seed nodes are never changed.
  :func:`boundaries` gives the node offsets of :func:`parse_tree` without building the tree.
* Re-signing (spec §A.3): optionally recompute HEADER_LENGTH, container lengths and the 0x0D
  padding to a multiple of 4; put a signature of the key's size in tag 12; sign "the file minus the
  signature TLV" with ``phoneemu.crypto.signatures.sign`` and the hash named by tag 8 (SHA-1 when
  tag 8 names no hash we know: the file then fails with UNSUPPORTED_HASH anyway); splice it in.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from phoneemu.crypto import signatures
from phoneemu.crypto.hashes import HashAlg
from phoneemu.crypto.keys import PrivateKey, key_size_bits

__all__ = [
    "CONTAINERS",
    "PADDING",
    "FileTree",
    "Node",
    "Record",
    "boundaries",
    "header_size",
    "parse_tree",
    "resign",
    "serialise",
]

CONTAINERS = frozenset({3, 7, 9, 16, 17, 21})
PADDING = 13
SIGNATURE = 12
HASH_ALGORITHM = 8
HEADER_LENGTH = 2
RECORD_LENGTH = 1

LEAF, CONTAINER, TAG_ONLY, RAW = 0, 1, 2, 3


_new_node = _new_tree = _new_record = object.__new__


class Node:
    """One header or record element.

    ``kind`` is LEAF (tag, length, value), CONTAINER (tag, length, children), TAG_ONLY (one byte,
    the padding tag) or RAW (bytes that did not parse, written verbatim). ``length`` None means
    "the true length"; ``auto`` marks a HEADER_LENGTH / RECORD_LENGTH leaf whose value is derived.
    """

    __slots__ = ("auto", "children", "kind", "length", "tag", "value")

    def __init__(self, kind: int, tag: int = 0, value: bytes = b"", children: list[Node] | None = None,
                 *, length: int | None = None, auto: bool = False) -> None:
        self.kind = kind
        self.tag = tag
        self.value = value
        self.children = children if children is not None else []
        self.length = length
        self.auto = auto

    @classmethod
    def leaf(cls, tag: int, value: bytes) -> Node:
        return cls(LEAF, tag, value)

    @classmethod
    def container(cls, tag: int, children: list[Node]) -> Node:
        return cls(CONTAINER, tag, children=children)

    @classmethod
    def pad(cls) -> Node:
        return cls(TAG_ONLY, PADDING)

    @classmethod
    def pads(cls, count: int) -> list[Node]:
        """``count`` padding nodes (each its own)."""
        out = []
        for _ in range(count):
            n = _new_node(cls)  # Node(TAG_ONLY, PADDING) without __init__ (perf only)
            n.kind = TAG_ONLY
            n.tag = PADDING
            n.value = b""
            n.children = []
            n.length = None
            n.auto = False
            out.append(n)
        return out

    @classmethod
    def raw(cls, data: bytes) -> Node:
        return cls(RAW, -1, data)

    def clone(self) -> Node:
        n = self._flat_clone()
        ch = self.children
        if ch:
            n.children = [c.clone() if c.children else c._flat_clone() for c in ch]
        return n

    def _flat_clone(self) -> Node:
        """Clone of a node without children (most of them): no recursion."""
        return _copy_node(self, [])

    def __repr__(self) -> str:
        kind = ("leaf", "container", "tag-only", "raw")[self.kind]
        extra = f", children={self.children!r}" if self.kind == CONTAINER else f", value={self.value[:8]!r}"
        lie = f", length={self.length}" if self.length is not None else ""
        return f"Node({kind}, tag={self.tag}{extra}{lie})"


Slot = tuple[list[Node], int, Node]  # (list holding the node, index, node)


@dataclass(kw_only=True)
class Record:
    """A CTL/ITL record: a flat list of TLV nodes (RECORD_LENGTH first when well formed).

    ``frozen`` holds the serialised bytes of a record that is never changed again (the records of
    a seed tree, shared by copy-on-write clones); a clone is not frozen.
    """

    nodes: list[Node]
    frozen: bytes | None = None
    _slots: dict[object, list[Slot]] | None = field(default=None, repr=False, compare=False)

    def clone(self) -> Record:
        r = _new_record(Record)  # the dataclass __init__ skipped (perf only)
        r.nodes = _copy_nodes(self.nodes)
        r.frozen = None
        r._slots = None
        return r

    def freeze(self) -> Record:
        """Cache this record's bytes; the caller promises not to change its nodes any more."""
        self.frozen = serialise(FileTree(header=self.nodes))
        self._slots = {}
        return self

    def slots(self, kinds: tuple[int, ...], tags: tuple[int, ...] | None = None) -> list[Slot]:
        """``(nodes, index, node)`` of the nodes of ``kinds`` (and ``tags``, when given), in order.

        A frozen record never changes, so its answer is computed once and kept (the caller must
        not change the list it gets).
        """
        cache = self._slots
        if cache is not None:
            hit = cache.get((kinds, tags))
            if hit is not None:
                return hit
        lst = self.nodes
        out = [(lst, i, n) for i, n in enumerate(lst)
               if n.kind in kinds and (tags is None or n.tag in tags)]
        if cache is not None:
            cache[(kinds, tags)] = out
        return out


def _clone_nodes(lst: list[Node], mapping: dict[int, list[Node]]) -> list[Node]:
    """A deep copy of ``lst``; ``mapping`` gets ``id(old list) → new list`` for it and every nested list."""
    out: list[Node] = []
    append = out.append
    for n in lst:
        append(_copy_node(n, _clone_nodes(n.children, mapping) if n.kind == CONTAINER or n.children else []))
    mapping[id(lst)] = out
    return out


def _copy_nodes(lst: list[Node]) -> list[Node]:
    """A deep copy of ``lst``: ``[n.clone() for n in lst]`` without the method calls (perf only)."""
    out: list[Node] = []
    append = out.append
    for n in lst:
        ch = n.children
        append(_copy_node(n, _copy_nodes(ch) if ch else []))
    return out


def _copy_node(n: Node, children: list[Node]) -> Node:
    """``n`` with ``children`` in place of its own: ``Node(...)`` without ``__init__`` (perf only)."""
    c = _new_node(Node)
    c.kind = n.kind
    c.tag = n.tag
    c.value = n.value
    c.length = n.length
    c.auto = n.auto
    c.children = children
    return c


def _path_to(lst: list[Node], target: list[Node]) -> list[int] | None:
    """Indexes of the containers leading from ``lst`` down to the list ``target`` (None: not there)."""
    if lst is target:
        return []
    for i, n in enumerate(lst):
        if n.kind == CONTAINER or n.children:
            sub = _path_to(n.children, target)
            if sub is not None:
                return [i, *sub]
    return None


def _header_bytes(header: list[Node]) -> bytes:
    """What :func:`serialise` writes for ``header`` (derived lengths and HEADER_LENGTH filled in)."""
    out = bytearray()
    autos: list[int] = []
    _emit(header, out, autos, None, [])
    _patch(out, autos, len(out))
    return bytes(out)


@dataclass(kw_only=True)
class FileTree:
    """Header nodes, then either records (CTL/ITL) or a raw body.

    Copy on write of the header (:meth:`cow_clone`): ``shared_header`` says some header lists may
    still be the seed's (``seed_lists``: their ids; seed trees live as long as their clones, so an
    id is never reused meanwhile). ``header_bytes`` is the seed's serialised header while the top
    list is still the seed's, and ``list_bytes`` the serialised contents of the seed's container
    lists (those without HEADER_LENGTH), all cached by :meth:`freeze_header`; ``seed_nodes`` the ids
    of its header and record nodes, and ``partial`` those of the lists of ours still holding some of
    them (see :meth:`own_node`); ``seed_picks`` keeps
    the seed's answers of :meth:`header_nodes`, :meth:`header_lists` and the paths to its lists, used
    while a clone's header is still untouched.
    """

    header: list[Node]
    records: list[Record] | None = None
    body: bytes = b""
    trailer: bytes = b""  # bytes after the records that do not form one (kept verbatim)
    shared_records: bool = field(default=False, repr=False)
    shared_header: bool = field(default=False, repr=False)
    header_bytes: bytes | None = field(default=None, repr=False)
    seed_lists: frozenset[int] = field(default=frozenset(), repr=False)
    seed_nodes: frozenset[int] = field(default=frozenset(), repr=False)
    partial: set[int] | None = field(default=None, repr=False)
    list_bytes: dict[int, bytes] | None = field(default=None, repr=False)
    seed_slots: list[Slot] | None = field(default=None, repr=False)
    seed_picks: dict[object, Any] | None = field(default=None, repr=False)

    def clone(self) -> FileTree:
        """A deep copy."""
        return FileTree(header=[n.clone() for n in self.header],
                        records=None if self.records is None else [r.clone() for r in self.records],
                        body=self.body, trailer=self.trailer)

    def freeze_header(self) -> FileTree:
        """Cache the header's bytes for copy-on-write clones; the caller promises not to change it."""
        self.header_bytes = _header_bytes(self.header)
        self.seed_slots = self.header_slots()
        self.seed_picks = {}
        nested = [n.children for _, _, n in self.header_slots() if n.kind == CONTAINER or n.children]
        self.seed_lists = frozenset(id(lst) for lst in [self.header, *nested])
        self.seed_nodes = frozenset([*(id(n) for _, _, n in self.header_slots()),
                                     *(id(n) for r in self.records or () for n in r.nodes)])
        self.list_bytes = {}
        for _, _, n in self.header_slots():
            if n.kind == CONTAINER:
                out = bytearray()
                autos: list[int] = []
                _emit(n.children, out, autos, None, [])
                if not autos:
                    self.list_bytes[id(n.children)] = bytes(out)
        return self

    def cow_clone(self) -> FileTree:
        """A copy that shares this tree's header and (frozen) records until they are changed.

        Header: each list shared until :meth:`own_list` copies it and the lists above it, or
        :meth:`own_header` all of them; records: each shared until :meth:`own_list` /
        :meth:`own_node` copies it (the list of records itself is the copy's own).
        """
        c = _new_tree(FileTree)
        c.__dict__.update(self.__dict__)  # every field as ours, without the dataclass __init__ (perf only)
        c.records = None if self.records is None else list(self.records)
        c.shared_records = self.records is not None
        c.shared_header = True
        return c

    def own_header(self) -> dict[int, list[Node]]:
        """Copy the whole header if any of it is still shared (copy on write) → ``id(old list) →
        new list`` for the header list and every container's children (empty when nothing was copied)."""
        mapping: dict[int, list[Node]] = {}
        if self.shared_header:
            self.header = _clone_nodes(self.header, mapping)
            self.shared_header = False
            self.header_bytes = None
        return mapping

    def _own_header_list(self, lst: list[Node]) -> list[Node]:
        """``lst`` (a list of this header) made ours, with every list and container above it.

        A list copied here is *partial*: it still holds the seed's nodes (``partial``: its id), copied
        one by one as they are about to change (:meth:`own_node`) or all at once (:meth:`own_list`).
        """
        picks = self._seed_picks()
        path = picks.get(("path", id(lst))) if picks is not None else None  # the seed's (perf only)
        if path is None:
            path = _path_to(self.header, lst)
            if path is None:  # not a header list
                return lst
            if picks is not None:
                picks[("path", id(lst))] = path
        seed = self.seed_lists
        partial = self._partial()
        cur = self.header
        if id(cur) in seed:
            cur = self.header = list(cur)
            partial.add(id(cur))
            self.header_bytes = None
        for i in path:
            node = self._own_at(cur, i)
            if id(node.children) in seed:
                node.children = list(node.children)
                partial.add(id(node.children))
            cur = node.children
        return cur

    def _own_at(self, lst: list[Node], i: int) -> Node:
        """Node ``i`` of ``lst`` (a list of ours), copied first if it is still the seed's."""
        n = lst[i]
        if id(n) in self.seed_nodes:
            n = lst[i] = _copy_node(n, n.children)
        return n

    def _complete(self, lst: list[Node]) -> list[Node]:
        """Every node of ``lst`` (a list of ours) ours: the seed's still in it copied."""
        partial = self.partial
        if partial and id(lst) in partial:
            partial.discard(id(lst))
            seed = self.seed_nodes
            for i, n in enumerate(lst):
                if id(n) in seed:
                    lst[i] = _copy_node(n, n.children)
        return lst

    def own_list(self, lst: list[Node]) -> list[Node]:
        """``lst`` ready to be changed: a shared (frozen) record's node list, or a list of a shared
        header, is first replaced by a copy (copy on write).

        Only the record actually changed is copied; of a shared header, the list and the lists and
        containers above it (nested lists still shared). The nodes of the returned list are at the
        same indexes as in ``lst``, and are the tree's own.
        """
        if self.shared_header and id(lst) in self.seed_lists:  # a header list is never a record's
            return self._complete(self._own_header_list(lst))
        if self.partial and id(lst) in self.partial:
            return self._complete(lst)
        record = self._shared_record(lst)
        return self._complete(record.nodes) if record is not None else lst

    def own_node(self, lst: list[Node], i: int) -> Node:
        """``own_list(lst)[i]``, copying of a shared list no node but that one (and the lists and
        containers above it); the list may keep other shared nodes until they are owned (perf only)."""
        if self.shared_header and id(lst) in self.seed_lists:
            lst = self._own_header_list(lst)
        elif not (self.partial and id(lst) in self.partial):
            record = self._shared_record(lst)
            if record is None:
                return lst[i]  # ours already
            lst = record.nodes
        return self._own_at(lst, i)

    def _shared_record(self, lst: list[Node]) -> Record | None:
        """The record holding ``lst`` put in place of a frozen (shared) one: a partial copy (see
        :meth:`_own_header_list`); None when ``lst`` is no frozen record's."""
        if self.shared_records and self.records:
            for k, r in enumerate(self.records):
                if r.nodes is lst:
                    if r.frozen is None:
                        return None
                    c = self.records[k] = _new_record(Record)  # the dataclass __init__ skipped (perf only)
                    c.nodes = list(lst)
                    c.frozen = None
                    c._slots = None
                    self._partial().add(id(c.nodes))
                    return c
        return None

    def _partial(self) -> set[int]:
        if self.partial is None:
            self.partial = set()
        return self.partial

    def walk_header(self) -> Iterator[Slot]:
        """Every header node with the list that holds it and its index (each list, then nested ones)."""
        stack: list[list[Node]] = [self.header]
        while stack:
            lst = stack.pop()
            for i, n in enumerate(lst):
                yield lst, i, n
                if n.kind == CONTAINER:
                    stack.append(n.children)

    def header_slots(self) -> list[Slot]:
        """:meth:`walk_header` as a list, in the same order (no generator: faster)."""
        if self.seed_slots is not None and self.shared_header and self.header_bytes is not None:
            return list(self.seed_slots)  # the seed's header, untouched (owning a list drops header_bytes)
        out: list[Slot] = []
        stack: list[list[Node]] = [self.header]
        while stack:
            lst = stack.pop()
            for i, n in enumerate(lst):
                out.append((lst, i, n))
                if n.kind == CONTAINER:
                    stack.append(n.children)
        return out

    def _seed_picks(self) -> dict[object, Any] | None:
        """The seed's answers of :meth:`header_nodes`, :meth:`header_lists` and the paths to its lists
        while the header is untouched (owning a list drops header_bytes), else None (perf only)."""
        return self.seed_picks if self.shared_header and self.header_bytes is not None else None

    def header_nodes(self, kinds: tuple[int, ...], tags: tuple[int, ...] | frozenset[int] | None = None,
                     ) -> list[Slot]:
        """The :meth:`header_slots` of ``kinds`` (and ``tags``, when given), in order.

        While the header is still the seed's, the answer is the seed's, computed once and kept (the
        caller must not change the list it gets).
        """
        picks = self._seed_picks()
        hit: list[Slot] | None = picks.get((kinds, tags)) if picks is not None else None
        if hit is not None:
            return hit
        out: list[Slot] = []  # the walk of header_slots, keeping only what is asked
        stack: list[list[Node]] = [self.header]
        while stack:
            lst = stack.pop()
            for i, n in enumerate(lst):
                if n.kind in kinds and (tags is None or n.tag in tags):
                    out.append((lst, i, n))
                if n.kind == CONTAINER:
                    stack.append(n.children)
        if picks is not None:
            picks[(kinds, tags)] = out
        return out

    def record_nodes(self, kinds: tuple[int, ...], tags: tuple[int, ...] | None = None) -> list[Slot]:
        """Every record's :meth:`Record.slots` of ``kinds`` (and ``tags``), in record order (a new list)."""
        out: list[Slot] = []
        key = (kinds, tags)
        for r in self.records or ():
            cache = r._slots
            hit = cache.get(key) if cache is not None else None  # Record.slots inlined (perf only)
            out += hit if hit is not None else r.slots(kinds, tags)
        return out

    def header_lists(self) -> list[list[Node]]:
        """The non-empty header lists (the header's own, then nested ones, :meth:`walk_header` order);
        shared like :meth:`header_nodes`."""
        picks = self._seed_picks()
        hit: list[list[Node]] | None = picks.get("lists") if picks is not None else None
        if hit is None:
            hit = [lst for lst, i, _ in self.header_slots() if i == 0]
            if picks is not None:
                picks["lists"] = hit
        return hit

    def find_slot(self, tag: int) -> Slot | None:
        """:meth:`find`, with the list that holds the node and its index; shared like :meth:`header_nodes`."""
        picks = self._seed_picks()
        if picks is None:
            return self._find_slot(tag)
        key = ("slot", tag)
        if key not in picks:
            picks[key] = self._find_slot(tag)
        hit: Slot | None = picks[key]
        return hit

    def _find_slot(self, tag: int) -> Slot | None:
        stack: list[list[Node]] = [self.header]
        while stack:
            lst = stack.pop()
            for i, n in enumerate(lst):
                k = n.kind
                if k == CONTAINER:
                    if n.tag == tag:
                        return lst, i, n
                    stack.append(n.children)
                elif k == LEAF and n.tag == tag:
                    return lst, i, n
        return None

    def find(self, tag: int) -> Node | None:
        """First header node (any depth, :meth:`walk_header` order) with ``tag``: a leaf or container."""
        stack: list[list[Node]] = [self.header]
        while stack:
            for n in stack.pop():
                k = n.kind
                if k == CONTAINER:
                    if n.tag == tag:
                        return n
                    stack.append(n.children)
                elif k == LEAF and n.tag == tag:
                    return n
        return None


# --------------------------------------------------------------------------- parsing
def _parse_list(data: bytes, start: int, end: int, *, containers: bool, allow_pad: bool) -> list[Node]:
    out: list[Node] = []
    pos = start
    while pos < end:
        tag = data[pos]
        if allow_pad and tag == PADDING:
            out.append(Node(TAG_ONLY, PADDING))
            pos += 1
            continue
        if end - pos < 3:
            out.append(Node(RAW, -1, data[pos:end]))
            break
        ln = (data[pos + 1] << 8) | data[pos + 2]
        vstart = pos + 3
        if ln > end - vstart:
            out.append(Node(RAW, -1, data[pos:end]))
            break
        if containers and tag in CONTAINERS:
            out.append(Node(CONTAINER, tag, children=_parse_list(
                data, vstart, vstart + ln, containers=True, allow_pad=allow_pad)))
        else:
            out.append(Node(LEAF, tag, data[vstart:vstart + ln]))
        pos = vstart + ln
    return out


def parse_tree(data: bytes, *, records: bool) -> FileTree:
    """Split ``data`` into a header tree and a body; never fails, always lossless."""
    data = bytes(data)
    hl = (data[8] << 8) | data[9] if len(data) >= 10 and data[5] == HEADER_LENGTH else len(data)
    hend = min(max(hl, 0), len(data))
    header = _parse_list(data, 0, hend, containers=True, allow_pad=True)
    for n in header:
        if n.kind == LEAF and n.tag == HEADER_LENGTH and len(n.value) == 2:
            n.auto = int.from_bytes(n.value, "big") == hend
            break
    body = data[hend:]
    if not records:
        return FileTree(header=header, body=body)
    recs: list[Record] = []
    pos, end = hend, len(data)
    while pos < end:
        if end - pos < 5 or data[pos] != RECORD_LENGTH or data[pos + 1:pos + 3] != b"\x00\x02":
            break
        ln = (data[pos + 3] << 8) | data[pos + 4]
        if ln < 5 or ln > end - pos:
            break
        nodes = _parse_list(data, pos, pos + ln, containers=False, allow_pad=False)
        nodes[0].auto = True
        recs.append(Record(nodes=nodes))
        pos += ln
    return FileTree(header=header, records=recs, trailer=data[pos:])


def _scan(data: bytes, start: int, end: int, marks: list[int], *, containers: bool, allow_pad: bool) -> None:
    """:func:`_parse_list` without building nodes: append every node's start and (non-empty) value
    start, ascending, each once. ``end`` itself is not appended: a node ends where the next one
    starts, the last one where its list ends (the caller's mark)."""
    add = marks.append
    pos = start
    while pos < end:
        add(pos)
        tag = data[pos]
        if allow_pad and tag == PADDING:
            pos += 1
            continue
        if end - pos < 3:
            break
        ln = (data[pos + 1] << 8) | data[pos + 2]
        vstart = pos + 3
        if ln > end - vstart:
            break
        if ln:
            if containers and tag in CONTAINERS:  # its first child starts at vstart
                _scan(data, vstart, vstart + ln, marks, containers=True, allow_pad=allow_pad)
            else:
                add(vstart)
        pos = vstart + ln


#: Record bytes → their :func:`_scan` offsets, relative (perf only: mutants repeat their seed's
#: records); bounded in entries and key size.
_RECORD_MARKS: dict[bytes, tuple[int, ...]] = {}
_MARKS_MAX, _MARKS_KEY_MAX = 512, 8192


def _record_offsets(record: bytes) -> tuple[int, ...]:
    """:func:`_scan` of one record (a flat TLV list), relative to its start; remembered for records
    up to _MARKS_KEY_MAX bytes."""
    small = len(record) <= _MARKS_KEY_MAX
    rel = _RECORD_MARKS.get(record) if small else None
    if rel is None:
        found: list[int] = []
        _scan(record, 0, len(record), found, containers=False, allow_pad=False)
        rel = tuple(found)
        if small:
            if len(_RECORD_MARKS) >= _MARKS_MAX:
                _RECORD_MARKS.clear()
            _RECORD_MARKS[record] = rel
    return rel


def boundaries(data: bytes, *, records: bool) -> list[int]:
    """Sorted offsets where a node of :func:`parse_tree` starts or ends, or a TLV value starts.

    The same split as :func:`parse_tree` (header region, records, trailer), read without
    building the tree; 0 and ``len(data)`` are always included.
    """
    data = bytes(data)
    hl = (data[8] << 8) | data[9] if len(data) >= 10 and data[5] == HEADER_LENGTH else len(data)
    pos = end = min(max(hl, 0), len(data))
    marks: list[int] = []  # ascending: each region adds its marks but its end (the next region's start)
    _scan(data, 0, pos, marks, containers=True, allow_pad=True)
    if records:
        end = len(data)
        last = b""  # the record before (a valid one), and its offsets
        rel: tuple[int, ...] = ()
        while pos < end:
            if not (last and data.startswith(last, pos)):  # the same bytes again pass (perf only)
                if end - pos < 5 or data[pos] != RECORD_LENGTH or data[pos + 1:pos + 3] != b"\x00\x02":
                    break
                ln = (data[pos + 3] << 8) | data[pos + 4]
                if ln < 5 or ln > end - pos:
                    break
                last = data[pos:pos + ln]
                rel = _record_offsets(last)
            marks += [pos + r for r in rel]
            pos += len(last)
    marks.append(pos)  # where the last region ends (0 for an empty header)
    if pos != len(data):
        marks.append(len(data))
    return marks


# --------------------------------------------------------------------------- serialising
_TAG_LENGTH = struct.Struct(">BH").pack  # tag u8, length u16 BE
_U16_INTO = struct.Struct(">H").pack_into


def _emit(nodes: list[Node], out: bytearray, autos: list[int], mark: Node | None, at: list[int], *,
          cached: dict[int, bytes] | None = None) -> None:
    """Append ``nodes``; a container whose children list is in ``cached`` (a seed's, never changed)
    gets those bytes instead of emitting them again."""
    for n in nodes:
        k = n.kind
        if k == LEAF:
            v = n.value
            ln = n.length
            if n is mark:
                at.append(len(out))
            out += _TAG_LENGTH(n.tag & 0xFF, (len(v) if ln is None else ln) & 0xFFFF)
            if n.auto and len(v) == 2:
                autos.append(len(out))
            out += v
        elif k == CONTAINER:
            out += _TAG_LENGTH(n.tag & 0xFF, 0)
            p = len(out)
            known = cached.get(id(n.children)) if cached is not None else None
            if known is not None:
                out += known
            else:
                _emit(n.children, out, autos, mark, at, cached=cached)
            ln = n.length
            _U16_INTO(out, p - 2, (len(out) - p if ln is None else ln) & 0xFFFF)  # the length, now known
        elif k == TAG_ONLY:
            out.append(n.tag & 0xFF)
        else:
            out += n.value


def _patch(out: bytearray, autos: list[int], value: int) -> None:
    v = (value & 0xFFFF).to_bytes(2, "big")
    for p in autos:
        out[p:p + 2] = v


def _head(tree: FileTree, mark: Node | None, at: list[int]) -> bytes | bytearray:
    """The header bytes :func:`serialise` writes; ``mark``'s offset is appended to ``at``."""
    hb = tree.header_bytes
    if hb is not None and tree.shared_header and mark is None:
        return hb  # the seed's header, unchanged (owning any header list drops header_bytes)
    head = bytearray()
    autos: list[int] = []
    reuse = tree.list_bytes if tree.shared_header else None
    found = len(at)
    _emit(tree.header, head, autos, mark, at, cached=reuse)
    if mark is not None and reuse is not None and len(at) == found:
        head = bytearray()  # mark not seen: it may sit in a seed list written from cache; again, plainly
        autos.clear()
        _emit(tree.header, head, autos, mark, at)
    _patch(head, autos, len(head))
    return head


def _body_parts(tree: FileTree) -> list[bytes | bytearray]:
    """What :func:`serialise` writes after the header: the raw body, or the records and trailer."""
    if tree.records is None:
        return [tree.body]
    parts: list[bytes | bytearray] = []
    for rec in tree.records:
        if rec.frozen is not None:
            parts.append(rec.frozen)
            continue
        buf = bytearray()
        rec_autos: list[int] = []
        _emit(rec.nodes, buf, rec_autos, None, [])
        _patch(buf, rec_autos, len(buf))
        parts.append(buf)
    parts.append(tree.trailer)
    return parts


def serialise(tree: FileTree, *, mark: Node | None = None, at: list[int] | None = None) -> bytes:
    """The file bytes; derived lengths computed now. ``mark``'s offset is appended to ``at``."""
    parts = _body_parts(tree)
    parts.insert(0, _head(tree, mark, at if at is not None else []))
    return b"".join(parts)


def _size(nodes: list[Node], cached: dict[int, bytes] | None) -> int:
    """How many bytes :func:`_emit` writes for ``nodes`` (the same ``cached`` lists)."""
    total = 0
    for n in nodes:
        k = n.kind
        if k == LEAF:
            total += 3 + len(n.value)
        elif k == CONTAINER:
            known = cached.get(id(n.children)) if cached is not None else None
            total += 3 + (len(known) if known is not None else _size(n.children, cached))
        elif k == TAG_ONLY:
            total += 1
        else:
            total += len(n.value)
    return total


def header_size(tree: FileTree) -> int:
    """The serialised header's length (counted, not written: perf only)."""
    hb = tree.header_bytes
    if hb is not None and tree.shared_header:
        return len(hb)  # the seed's header, untouched (perf only)
    return _size(tree.header, tree.list_bytes if tree.shared_header else None)


# --------------------------------------------------------------------------- re-signing
_HASH_CODES = {int(a): a for a in HashAlg}  # code → HashAlg without the enum call (perf only)


def _hash_of(tree: FileTree) -> HashAlg:
    slot = tree.find_slot(HASH_ALGORITHM)
    n = slot[2] if slot is not None else None
    if n is not None and n.kind == LEAF and len(n.value) == 1:
        return _HASH_CODES.get(n.value[0], HashAlg.SHA1)
    return HashAlg.SHA1


def _fix_lengths(tree: FileTree) -> None:
    for _, _, n in tree.walk_header():
        n.length = None
        if n.tag == HEADER_LENGTH and n.kind == LEAF:
            n.value = b"\0\0" if len(n.value) != 2 else n.value
            n.auto = True


def _repad(tree: FileTree) -> None:
    """Trailing 0x0D pads removed, then as many added as make the header a multiple of 4 bytes."""
    if _padded(tree):
        return  # removing and adding them again gives the same header: left as it is (perf only)
    tree.own_list(tree.header)
    while tree.header and tree.header[-1].kind == TAG_ONLY:
        tree.header.pop()
    tree.header.extend(Node.pads(-header_size(tree) % 4))


def _padded(tree: FileTree) -> bool:
    """True when :func:`_repad` would put back exactly the pads there are: fewer than 4 trailing
    pads and a header size that is a multiple of 4."""
    header = tree.header
    pads = 0
    while pads < len(header) and header[-1 - pads].kind == TAG_ONLY:
        pads += 1
        if pads == 4:
            return False
    return header_size(tree) % 4 == 0


SignCache = dict[bytes, bytes]
#: Signing keys seen → their RSA signature size / first ECDSA guess (perf only; holds the key, so a
#: reused id() never matches another key).
_SIG_SIZE: dict[int, tuple[PrivateKey, int]] = {}


def _sig_size(key: PrivateKey) -> int:
    """The byte size of ``key``'s signatures (RSA; an ECDSA key's first guess)."""
    known = _SIG_SIZE.get(id(key))
    if known is not None and known[0] is key:
        return known[1]
    size = (key_size_bits(key) + 7) // 8
    if len(_SIG_SIZE) >= 64:
        _SIG_SIZE.clear()
    _SIG_SIZE[id(key)] = (key, size)
    return size


def _blank_signed_head(tree: FileTree, slot: Slot, size: int) -> tuple[bytes | bytearray, int]:
    """The header bytes with a signature value of ``size`` bytes, and the signature TLV's offset.

    Only the bytes around the value count (the message leaves the TLV out, the signature replaces
    the value): the value is zeros, or the seed's own when the header is the untouched seed's.
    """
    lst, i, sig = slot
    hb = tree.header_bytes
    picks = tree._seed_picks()
    if picks is not None and hb is not None and sig.length is None and len(sig.value) == size:
        off = picks.get(("offset", id(sig)))  # the seed's header as it is: no copy, no writing (perf only)
        if off is None:
            at: list[int] = []
            _emit(tree.header, bytearray(), [], sig, at)
            off = picks[("offset", id(sig))] = at[0]
        return hb, off
    sig = tree.own_node(lst, i)  # the signature node is about to change: make it ours
    sig.value = bytes(size)
    sig.length = None
    at = []
    head = _head(tree, sig, at)
    return head, at[0]


def resign(tree: FileTree, key: PrivateKey, *, fix_lengths: bool = False, repad: bool = False,
           cache: SignCache | None = None, sign: Callable[[PrivateKey, bytes, HashAlg], bytes] | None = None,
           ) -> bytes:
    """Serialise ``tree`` with a fresh signature by ``key`` (spec §A.3); the tree is modified.

    ``fix_lengths`` drops every header length lie and derives HEADER_LENGTH again; ``repad``
    replaces trailing 0x0D padding so that the header is a multiple of 4 bytes (spec §A.2).

    Without a signature TLV (tag 12) in the header there is nothing to re-sign: the plain
    serialisation is returned. ``cache`` maps signed message to signature (bounded by the caller).
    """
    if fix_lengths:
        tree.own_header()
        _fix_lengths(tree)
    if repad:
        _repad(tree)
    slot = tree.find_slot(SIGNATURE)
    if slot is None or slot[2].kind != LEAF:
        return serialise(tree)
    size = _sig_size(key)
    body = b"".join(_body_parts(tree))
    for _ in range(8):  # an ECDSA signature's length varies; converge in a few rounds
        head, off = _blank_signed_head(tree, slot, size)
        if id(slot[0]) in tree.seed_lists:  # the signature may be a copy now, in a list of ours
            slot = tree.find_slot(SIGNATURE) or slot
        tail = head[off + 3 + size:]
        msg = b"".join((head[:off], tail, body))
        signature = cache.get(msg) if cache is not None else None
        if signature is None:
            signature = (sign or signatures.sign)(key, msg, _hash_of(tree))
            if cache is not None:
                if len(cache) >= 4096:
                    cache.clear()
                cache[msg] = signature
        if len(signature) == size:
            sig = tree.own_node(slot[0], slot[1])
            sig.value = signature
            sig.length = None
            return b"".join((head[:off + 3], signature, tail, body))
        tried, size = size, len(signature)
    sig = tree.own_node(slot[0], slot[1])  # no size converged: the last blank signature stays
    sig.value = bytes(tried)
    sig.length = None
    return serialise(tree)
