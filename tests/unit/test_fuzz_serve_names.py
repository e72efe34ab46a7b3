"""fuzz --serve: .sgn / .enc.sgn / firmware seeds carry the name the phone requested (spec §G.4, §D)."""

from __future__ import annotations

import pytest

from phoneemu.errors import DecodeError
from phoneemu.formats import encrypted, firmware, signed
from phoneemu.fuzz.corpus import build_corpus, renamed
from phoneemu.fuzz.targets import phoneemu_callable
from phoneemu.phone.rules import signed_file_name_problem

_PARSE = {"sgn": lambda b: signed.parse(b).header, "enc": lambda b: encrypted.parse(b).header,
          "firmware": lambda b: firmware.parse(b).header}


@pytest.mark.parametrize(("fmt", "name"), [("sgn", "SEPAABBCCDDEEFF.cnf.xml.sgn"),
                                           ("enc", "SEPAABBCCDDEEFF.cnf.xml.enc.sgn"),
                                           ("firmware", "sip88xx.99-1.loads")])
def test_renamed_seeds_pass_the_name_rule_and_stay_valid(fmt: str, name: str) -> None:
    plain = build_corpus(fmt)
    assert all(signed_file_name_problem(_PARSE[fmt](s).filename, name) for s in plain.seeds)
    c = renamed(plain, "tftp/" + name)
    run = phoneemu_callable(fmt, c)
    for seed in c.seeds:
        assert signed_file_name_problem(_PARSE[fmt](seed).filename, name) is None
        try:
            run(seed)  # still parses, verifies (and decrypts) with the corpus keys
        except DecodeError as exc:  # a ring list or empty body now named a config: no device config
            assert fmt == "sgn" and exc.fmt == "config" and signed.parse(seed).body[:7] != b"<?xml v"
    if fmt == "firmware":
        assert {firmware.parse(s).load_name for s in c.seeds} == {"sip88xx.99-1"}


def test_trust_lists_and_unparsable_seeds_are_kept() -> None:
    itl = build_corpus("itl")
    assert renamed(itl, "ITLFile.tlv") is itl
    from dataclasses import replace
    odd = replace(build_corpus("sgn"), seeds=(b"not a signed file",))
    assert renamed(odd, "x.sgn").seeds == (b"not a signed file",)
