"""One streamed JSON document and one record spool for ``fleet boot`` and ``replay --all``
(``json_doc.dumps_pieces``, ``files.write_output_text``, ``spool.JsonLines``): for any document and
records, the text written a record at a time is ``json_doc.dumps`` of the whole document, at both indents
the commands use (``--json FILE`` 1, ``replay --all --json`` 2); the spool gives back every value as it
went, in order, whatever reads came between the appends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu import files, json_doc
from phoneemu.spool import JsonLines

#: any character, lone surrogates (a hostile server's bytes kept by surrogateescape) often: a string's
#: characters come from one alphabet, any, ASCII and lone surrogates, or mostly what JSON escapes (one draw
#: for the string: a one_of per character cost most of the module's time)
_ASCII_AND_SURROGATES = st.characters(codec=None, categories=["Cs"],
                                      include_characters=bytes(range(0x80)).decode())
_ESCAPED = '"\\\n\x00\x7f a\u00e9\u2028\ufffd\U0001f600\ud800\udbff\udc80\udfff'
_TEXT = st.one_of(st.text(max_size=12), st.text(_ASCII_AND_SURROGATES, max_size=12),
                  st.text(_ESCAPED, max_size=12))
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                     st.floats(allow_nan=False, allow_infinity=False), _TEXT)
#: a JSON value: scalars, lists and objects (keys with surrogates too: dumps writes each as U+FFFD)
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(_TEXT, inner, max_size=4)),
                       max_leaves=12)
#: a document's own keys: no lone surrogate (two keys differing only there are one key in the whole text)
_KEYS = st.text(st.characters(), max_size=8)


@settings(max_examples=150, deadline=None)
@given(doc=st.dictionaries(_KEYS, _VALUES, max_size=5), items=st.lists(_VALUES, max_size=5),
       new_key=_KEYS, pick=st.integers(0, 10))
def test_streamed_text_is_the_whole_documents(doc: dict[str, Any], items: list[Any], new_key: str,
                                              pick: int) -> None:
    keys = list(doc)
    key = keys[pick] if pick < len(keys) else new_key  # where the document has it, or a key of its own
    for indent in (1, 2):
        whole = json_doc.dumps({**doc, key: items}, indent=indent) + "\n"
        assert "".join(json_doc.dumps_pieces(doc, key, iter(items), indent=indent)) == whole


def test_the_list_goes_last_when_the_document_lacks_its_key() -> None:
    """``replay --all``: its records follow the summary's keys."""
    pieces = json_doc.dumps_pieces({"phones": 2, "why": "\udc80"}, "records", iter([{"mac": "A"}]), indent=2)
    assert list(json.loads("".join(pieces))) == ["phones", "why", "records"]


@settings(max_examples=25, deadline=None)
@given(items=st.lists(_VALUES, max_size=30))
def test_a_file_written_in_chunks_is_the_streamed_text(tmp_path_factory: pytest.TempPathFactory,
                                                       items: list[Any]) -> None:
    """``write_output_text`` joins the pieces into chunks (here of 64 characters): the text's bytes."""
    out: Path = tmp_path_factory.mktemp("out") / "doc.json"
    old = files.TEXT_CHUNK
    files.TEXT_CHUNK = 64
    try:
        files.write_output_text(out, json_doc.dumps_pieces({"a": 1}, "records", iter(items), indent=1))
    finally:
        files.TEXT_CHUNK = old
    assert out.read_bytes() == (json_doc.dumps({"a": 1, "records": items}, indent=1) + "\n").encode("utf-8")


#: values as the spool gives them back: JSON's own (lists, str keys), a lone surrogate as it went
_RECORDS = st.lists(st.dictionaries(_TEXT, _VALUES, max_size=3), max_size=4)


@settings(max_examples=40, deadline=None)
@given(batches=st.lists(_RECORDS, max_size=4), read_between=st.booleans())
def test_the_spool_gives_back_every_value_in_order(batches: list[list[dict[str, Any]]],
                                                   read_between: bool) -> None:
    """Read by where each line starts and all in order; a read between two appends does not make the next
    append overwrite a line (the file's position is put back at its end)."""
    lines = JsonLines("phoneemu-test-")
    try:
        starts: list[int] = []
        sent: list[Any] = []
        for batch in batches:
            starts += lines.append(batch)
            sent += [json.loads(json.dumps(v)) for v in batch]
            if read_between and starts:
                assert lines.read(starts[0]) == sent[0]
        assert list(lines) == sent
        assert [lines.read(at) for at in starts] == sent
        assert lines.is_open == bool(sent)  # no value, no file
    finally:
        lines.close()
    assert not lines.is_open and list(lines) == []
