"""replay --all --models: a phone export read line by line; any text is read or refused naming its line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phoneemu.errors import PhoneEmuError
from phoneemu.scenario.phone_models import read_phone_models


def test_notations_headers_comments_and_columns(tmp_path: Path) -> None:
    f = tmp_path / "m.csv"
    f.write_text("\ufeffDevice Name;Device Type\n# the lobby\n\nSEP00112233445A;Cisco 7962;x\n"
                 "0011.2233.445b\tCP-8861\n00-11-22-33-44-5C cp-7942-symmetric  # typed in\n"
                 "00:11:22:33:44:5d Cisco 7942\n")
    got = read_phone_models(f, default="cp-8861")
    assert got.profile_of == {"00112233445A": "cp-7962", "00112233445B": "cp-8861",
                              "00112233445C": "cp-7942-symmetric", "00112233445D": "cp-7942-symmetric"}
    assert got.notes_of == {}


def test_a_header_is_only_the_first_line(tmp_path: Path) -> None:
    f = tmp_path / "m.csv"
    f.write_text("SEP00112233445A,Cisco 7962\nDevice Name,Device Type\n")
    with pytest.raises(PhoneEmuError, match=r"m\.csv:2: 'Device Name' is not a MAC"):
        read_phone_models(f, default="cp-8861")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_any_text_is_read_or_refused_naming_its_line(tmp_path: Path, text: str) -> None:
    f = tmp_path / "m.txt"
    f.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        got = read_phone_models(f, default="cp-8861")
    except PhoneEmuError as exc:
        assert str(f) + ":" in str(exc)
        return
    assert all(len(mac) == 12 for mac in got.profile_of)


@pytest.mark.parametrize(("content", "shown"), [
    (b"SEP00112233445A,Cisco 7962\n0\x82\x01\x02\xff\xfe\x1b[31m\x07ab,cp-8861\n",
     r"'0\x82\x01\x02\xff\xfe\x1b[31m\x07ab'"),
    (b"SEP00112233445A,Cisco 7962\n\xc3\xa9\xe2\x80\xae00,cp-8861\n", "'\u00e9\\u202e00'"),  # letters stay
], ids=["der", "bidi"])
def test_binary_in_the_models_file_is_escaped_in_the_message(tmp_path: Path, content: bytes,
                                                              shown: str) -> None:
    """A DER file given as --models echoed its bytes into the terminal (as U+FFFD, and a bidi override
    as it is): each undecodable byte and control character is escaped."""
    f = tmp_path / "x.pem"
    f.write_bytes(content)
    with pytest.raises(PhoneEmuError) as info:
        read_phone_models(f, default="cp-8861")
    msg = str(info.value)
    assert f"x.pem:2: {shown} is not a MAC" in msg, msg
    assert msg.isprintable() and "\ufffd" not in msg, msg


def test_a_model_without_a_profile_is_noted_escaped(tmp_path: Path) -> None:
    f = tmp_path / "m.csv"
    f.write_bytes(b"SEP00112233445A,\xff\x1b[1mCisco 9999\n")
    note = read_phone_models(f, default="cp-8861").notes_of["00112233445A"]
    assert note.startswith(r"model '\xff\x1b[1mCisco 9999' (") and note.isprintable(), note
