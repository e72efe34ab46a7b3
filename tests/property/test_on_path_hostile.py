"""Hostile input to the lab's on-path attacker and dial plan, without sockets (phoneemu/lab/on_path.py,
phoneemu/lab/dial_plan.py): a stream of many TLS records has only its first application-data record
altered; the dial plan's checks answer any object — unicode digits, very long text, deep or huge nested
lists, objects whose ``repr`` or ``==`` raise — with None, a bounded message or an EncodeError."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.errors import EncodeError
from phoneemu.lab import dial_plan
from phoneemu.lab.on_path import alter_tls_record

# -- alter_tls_record over a stream of records ---------------------------------------------------------------

_KINDS = st.sampled_from([20, 21, 22, 23, 23, 23, 24, 0, 255])


def _record(kind: int, payload: bytes) -> bytes:
    return bytes([kind, 3, 3]) + len(payload).to_bytes(2, "big") + payload


_PAYLOADS = st.one_of(
    st.binary(max_size=64),
    st.builds(lambda pre, addr, post: pre + b"c=IN IP" + addr + post, st.binary(max_size=16),
              st.sampled_from([b"4 127.0.0.1", b"6 ::1", b"4 ", b"4 9.9.9.9", b"6 "]),
              st.binary(max_size=16)))


@settings(max_examples=200)
@given(st.lists(st.tuples(_KINDS, _PAYLOADS), max_size=12), st.binary(max_size=8))
def test_in_a_stream_only_the_first_application_data_record_is_altered(
        records: list[tuple[int, bytes]], tail: bytes) -> None:
    """Whole records then a cut one (``tail``, a header that may claim more than follows): every header
    is left alone, every record but the first non-empty application-data one is the same, and that one
    differs in one byte of its payload."""
    data = b"".join(_record(k, p) for k, p in records) + tail
    out, how = alter_tls_record(data)
    assert len(out) == len(data)
    target = next((i for i, (k, p) in enumerate(records) if k == 23 and p), None)
    offset = 0
    for i, (kind, payload) in enumerate(records):
        end = offset + 5 + len(payload)
        assert out[offset:offset + 5] == data[offset:offset + 5], f"header of record {i} changed"
        changed = sum(a != b for a, b in zip(out[offset + 5:end], payload, strict=True))
        assert changed == (1 if i == target else 0), (i, kind, how)
        offset = end
    if target is not None:
        assert how and f"at offset {sum(5 + len(p) for _, p in records[:target])}" in how
        assert out[offset:] == tail
    else:  # a cut application-data record in the tail may be altered: never its header
        assert out[offset:offset + 5] == tail[:5]
        assert sum(a != b for a, b in zip(out[offset:], tail, strict=True)) == (1 if how else 0)


def test_a_readable_record_among_many_gets_its_address_rewritten() -> None:
    sdp_record = _record(23, b"SIP/2.0 200 OK\r\n\r\nv=0\r\nc=IN IP6 ::1\r\n" + b"M" * 20)
    data = _record(22, b"\x04" * 30) + _record(23, b"") + sdp_record + _record(23, b"c=IN IP4 127.0.0.1")
    out, how = alter_tls_record(data)
    assert "SDP address" in how and f"offset {5 + 30 + 5}" in how
    assert b"c=IN IP6 9:1" in out and out.endswith(b"c=IN IP4 127.0.0.1")


# -- the dial plan's checks ---------------------------------------------------------------------------------

_NAMES = st.sampled_from(["Executives", "a", "a" * 50, "a" * 51, "<None>", "", "٣", "Ⅻ", "\uff11\uff12",
                          "a\n", "a b", "Exéc", "PT_Internal-2.b", "\x00", "a" * 10_000, "İ", "ß", "<none>"])
_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=80),
                    st.binary(max_size=20), _NAMES, st.just(object()), st.just(...))
_OBJECTS = st.recursive(_LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=70), st.lists(inner, max_size=4).map(tuple),
    st.dictionaries(st.text(max_size=4), inner, max_size=3), st.frozensets(_NAMES, max_size=4)),
    max_leaves=120)


class _BadRepr:
    def __repr__(self) -> str:
        raise ValueError("no repr for you")


class _BadEq:
    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        raise TypeError("no comparison for you")


class _HugeRepr:
    def __repr__(self) -> str:
        return "H" * 1_000_000


def _deep(depth: int) -> list[Any]:
    out: list[Any] = []
    for _ in range(depth):
        out = [out]
    return out


_looped: list[Any] = []
_looped.append(_looped)
_HOSTILE = [_BadRepr(), _BadEq(), _HugeRepr(), _deep(100_000), _looped, "x" * 1_000_000, b"x" * 1_000_000,
            ["a"] * 1_000_000, [b"x" * 1_000_000], [_BadRepr()], [_BadEq()], ["ok", _deep(50_000)],
            {"k": _deep(50_000)}, ("A", "A")]
_MAX_MESSAGE = 1000  # characters: a message quotes what it got, cut short


def _check_problem(found: object) -> None:
    assert found is None or (isinstance(found, str) and 0 < len(found) <= _MAX_MESSAGE), repr(found)[:200]


def _check_css_problem(values: object) -> None:
    found = dial_plan.css_problem(values)
    if found is not None:
        assert isinstance(found, tuple) and len(found) == 2, found
        index, why = found
        assert index is None or (isinstance(index, int) and 0 <= index < dial_plan.MAX_CSS)
        _check_problem(why)


def _check_all(value: object) -> None:
    """Only None / a bounded message / a tuple, and EncodeError from the ``*_arg`` forms."""
    _check_problem(dial_plan.name_problem(value))
    _check_problem(dial_plan.partition_problem(value))
    _check_css_problem(value)
    try:
        stored = dial_plan.partition_arg(value)  # type: ignore[arg-type]
    except EncodeError as exc:
        assert exc.path == "partition" and len(str(exc)) <= _MAX_MESSAGE + 100
    else:
        assert stored is None or (isinstance(stored, str) and dial_plan.name_problem(stored) is None)
    try:
        css = dial_plan.css_arg(value)  # type: ignore[arg-type]
    except EncodeError as exc:
        assert exc.path is not None and exc.path.startswith("css") and len(str(exc)) <= _MAX_MESSAGE + 100
    else:
        assert isinstance(css, list) and len(css) <= dial_plan.MAX_CSS
        assert all(isinstance(n, str) and dial_plan.name_problem(n) is None for n in css)


@settings(max_examples=300)
@given(_OBJECTS)
def test_any_object_gets_none_a_message_or_an_encode_error(value: object) -> None:
    _check_all(value)


@settings(max_examples=200)
@given(st.lists(st.one_of(_NAMES, st.text(max_size=60), _LEAVES), max_size=dial_plan.MAX_CSS + 2))
def test_any_list_of_names_gets_none_a_message_or_an_encode_error(values: list[object]) -> None:
    _check_all(values)
    _check_all(tuple(values))


@pytest.mark.parametrize("value", _HOSTILE, ids=lambda v: type(v).__name__)
def test_hostile_objects_get_a_bounded_message_never_another_exception(value: object) -> None:
    """Before the fix: a deep list or an object whose ``repr`` raises escaped as RecursionError /
    ValueError, ``==`` raising as TypeError, and the message quoted a million-character text whole."""
    _check_all(value)
    _check_all([value])


def test_unicode_digits_are_not_partition_name_digits() -> None:
    for name in ("٣", "\uff11\uff12", "Ⅻ", "a٣"):
        assert dial_plan.name_problem(name) is not None
        with pytest.raises(EncodeError):
            dial_plan.partition_arg(name)
