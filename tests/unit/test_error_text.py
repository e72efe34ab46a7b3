"""How an error reads (``phoneemu.errors``): ``fmt: where: message``, the option not named twice."""

from __future__ import annotations

from phoneemu.errors import DecodeError, PhoneEmuError


def test_where_then_message() -> None:
    assert str(DecodeError("length 900 exceeds remaining 12", fmt="trustlist", path="record[3].public_key",
                           tag=7, offset=1042)) == ("trustlist: record[3].public_key (tag 7) at offset 1042: "
                                                    "length 900 exceeds remaining 12")
    assert str(PhoneEmuError("bad", path="lab")) == "lab: bad"


def test_a_message_that_opens_with_its_option_is_not_prefixed_again() -> None:
    assert str(PhoneEmuError("--lab /x: not a lab cluster folder", path="lab")) == \
        "--lab /x: not a lab cluster folder"
    assert str(PhoneEmuError("--flash=/x: not writable", path="flash")) == "--flash=/x: not writable"
    # only the option itself: another option that starts alike, or a location beyond the path, stays
    assert str(PhoneEmuError("--labx y", path="lab")) == "lab: --labx y"
    assert str(DecodeError("--lab x", path="lab", offset=3)) == "lab at offset 3: --lab x"
    err = PhoneEmuError("--lab /x: bad", path="lab")
    assert (err.path, err.where()) == ("lab", "lab")  # the attributes keep the path
