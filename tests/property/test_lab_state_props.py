"""The lab state file (phoneemu.lab.state): whatever text its phones and log hold, ``cluster.json`` in
our one-item-per-line layout reads back as the same state, and each phone's line holds all of it."""

from __future__ import annotations

import json
from dataclasses import asdict

from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.lab.state import ClusterState, LogEntry, PhoneState
from phoneemu.values import MAX_TIME, MIN_TIME

_text = st.text(max_size=30)  # quotes, backslashes, newlines, "}," and non-ASCII included
_macs = st.text(alphabet="0123456789ABCDEF", min_size=12, max_size=12)
_phone_fields = st.fixed_dictionaries({"digest_user": st.none() | _text, "digest_password": st.none() | _text,
                                       "load": st.none() | _text})
_phones = st.dictionaries(_macs, _phone_fields, max_size=5).map(
    lambda d: {m: PhoneState(mac=m, **fields) for m, fields in d.items()})
_args = st.dictionaries(_text, st.none() | st.booleans() | st.integers(-2**40, 2**40) | _text
                        | st.lists(_text, max_size=3), max_size=4)
_log = st.lists(st.builds(LogEntry, time=st.integers(MIN_TIME, MAX_TIME), generation=st.integers(0, 10**6),
                          op=_text, args=_args), max_size=5)


@settings(max_examples=150, deadline=None)
@given(_phones, _log, _text)
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
