"""The lab state file (phoneemu.lab.state): whatever text its phones and log hold, ``cluster.json`` in
our one-item-per-line layout reads back as the same state, and each phone's line holds all of it."""

from __future__ import annotations

import json
import types
import typing
from dataclasses import asdict
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.lab import state
from phoneemu.lab.state import ClusterState, LogEntry, PhoneState, TrustedCert
from phoneemu.values import MAX_TIME, MIN_TIME

_text = st.text(max_size=30)  # quotes, backslashes, newlines, "}," and non-ASCII included
_macs = st.text(alphabet="0123456789ABCDEF", min_size=12, max_size=12)
_phone_fields = st.fixed_dictionaries({"digest_user": st.none() | _text, "digest_password": st.none() | _text,
                                       "load": st.none() | _text})
_phones = st.dictionaries(_macs, _phone_fields, max_size=5).map(
    lambda d: {m: PhoneState(mac=m, **fields) for m, fields in d.items()})
_args = st.dictionaries(_text, st.none() | st.booleans() | st.integers(-2**40, 2**40) | _text
                        | st.lists(_text, max_size=3), max_size=4)
#: a cluster name as lab init takes it (state rules: one it refuses is refused on load too, in every subject)
_names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}", fullmatch=True)
_log = st.lists(st.builds(LogEntry, time=st.integers(MIN_TIME, MAX_TIME), generation=st.integers(0, 10**6),
                          op=_text, args=_args), max_size=5)


@settings(max_examples=150, deadline=None)
@given(_phones, _log, _names)
def test_state_json_reads_back_whatever_the_text(phones: dict[str, PhoneState], log: list[LogEntry],
                                                 name: str) -> None:
    st_ = ClusterState(name=name, phones=phones, log=log, clock=MIN_TIME)
    text = st_.to_json()
    assert json.loads(text) == asdict(st_)
    assert ClusterState.from_json(text) == st_
    lines = text.splitlines()
    for mac, ph in phones.items():
        (line,) = [ln for ln in lines if ln.startswith(f'    "{mac}": ')]
        assert json.loads(line.split(": ", 1)[1].rstrip(",")) == asdict(ph)


def _reference_conforms(value: object, hint: object) -> bool:
    """The type rule of ``state._conforms`` as written before it was compiled per hint (the oracle)."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if hint is None or hint is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_reference_conforms(value, h) for h in typing.get_args(hint))
    if origin is dict:
        key_t, val_t = typing.get_args(hint)
        return isinstance(value, dict) and all(_reference_conforms(k, key_t) and _reference_conforms(v, val_t)
                                               for k, v in value.items())
    if origin is list:
        (item_t,) = typing.get_args(hint)
        return isinstance(value, list) and all(_reference_conforms(v, item_t) for v in value)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    assert isinstance(hint, type)
    return isinstance(value, hint)


_HINTS = sorted({hint for cls in (ClusterState, PhoneState, LogEntry, TrustedCert)
                 for hint in typing.get_type_hints(cls).values()}, key=str)
_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
                     max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_HINTS), _json)
def test_compiled_type_check_is_the_rule(hint: object, value: object) -> None:
    assert state._conforms(value, hint) == _reference_conforms(value, hint)
