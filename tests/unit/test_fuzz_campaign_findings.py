"""Regression tests for what the fuzzing campaign of the format and protocol parsers found.

The campaign: ``phoneemu fuzz --target phoneemu --seed 7`` over every ``--format`` (75-95 s each, one
process at a time), then structure-aware hunts of our own (lying nested lengths, huge declared lengths
on tiny data, hostile XML, 1 MiB inputs timed). Each test below is the minimal input of one finding,
written failing on the code before its fix.
"""

from __future__ import annotations

import pytest

from phoneemu.formats import config
from phoneemu.fuzz.corpus import build_corpus
from phoneemu.fuzz.targets import phoneemu_callable

_X = b'<?xml version="1.0" encoding="UTF-8"?>\n'


@pytest.mark.parametrize("body", [
    b"<device><foo>a&#13;b</foo></device>",  # minimised: one CR reference in an extra's text
    b"<device><foo>a&#13;&#10;b</foo></device>",  # CR LF: read back as LF alone
    b"<device><foo><x/>&#13;</foo></device>",  # in the tail of a nested element
])
def test_config_extra_with_a_carriage_return_round_trips(body: bytes) -> None:
    """Found by the campaign's XML hunt (spec §C.2, round trip of ``formats/config.py``): a carriage
    return written ``&#13;`` in the text of an extra element was kept as a literal CR, which ``build``
    wrote as is and XML end-of-line handling (XML 1.0 §2.11) read back as LF: ``parse(build(c)) != c``
    (the fuzzer's ``sgn`` config oracle calls that a finding). Now the CR is written ``&#13;``."""
    cfg = config.parse(_X + body)
    again = config.parse(config.build(cfg))
    assert again == cfg
    assert config.build(again) == config.build(cfg)
    assert "\r" not in config.build(cfg).decode("utf-8")


def test_config_extra_carriage_return_keeps_its_value() -> None:
    """The CR is kept as a CR (not turned into LF or dropped): what the element said survives."""
    cfg = config.parse(_X + b"<device><foo>a&#13;b</foo></device>")
    assert cfg.extra["foo"] == "<foo>a&#13;b</foo>"
    assert config.DeviceConfig(extra={"foo": "<foo>a&#13;b</foo>"}).extra == cfg.extra


def test_sgn_seed_with_carriage_returns_is_not_a_finding() -> None:
    """The finding's input is a seed of ``--format sgn`` (``config-extra-cr``); the in-process target
    (parse, verify, round trip, then the config round trip) takes it without a finding."""
    corpus = build_corpus("sgn")
    seed = corpus.seeds[corpus.names.index("config-extra-cr")]
    phoneemu_callable("sgn", corpus)(seed)  # raises RoundTripError on the old config code


def test_digest_parameter_bound_counts_repeated_names() -> None:
    """Found by the campaign's 1 MiB timing hunt (``sip.parse_digest``, RFC 2617 §3.2.1): the bound of
    32 parameters counted distinct names, so ``a="x",`` repeated 174,762 times was read to its end (0.3 s
    for 1 MiB; within a SIP head of 8 KiB ~1,300 of them) and taken. Now every parameter read counts."""
    from phoneemu.errors import DecodeError
    from phoneemu.protocols import sip

    assert sip.parse_digest('Digest a="x",' * 1 + ' realm="r"') == {"a": "x", "realm": "r"}
    with pytest.raises(DecodeError, match="more than 32 parameters") as caught:
        sip.parse_digest("Digest " + 'a="x",' * 33 + ' realm="r"')
    assert caught.value.path == "WWW-Authenticate"
