"""An expect value of the wrong case is named as its check's value (docs/scenarios.md: did-you-mean for
every enumerated expect value).

The rule: a value of an enumerated check that is one of its values but for case (``TLS``, ``OK``, an SRTP
suite in lower case) is refused naming that value (was refused with no suggestion: difflib compares case,
so ``'OK'`` is nothing like ``'ok'``)."""

from __future__ import annotations

import pytest

from phoneemu.errors import ScenarioError
from phoneemu.scenario.loader import load_text


@pytest.mark.parametrize(("check", "written", "meant"), [
    ("signaling", "TLS", "tls"), ("boot", "OK", "ok"), ("fetched_over", "HTTP", "http"),
    ("media_suite", "aes_cm_128_hmac_sha1_80", "AES_CM_128_HMAC_SHA1_80"), ("itl", "Installed", "installed"),
])
def test_a_value_of_the_wrong_case_is_named(check: str, written: str, meant: str) -> None:
    text = (f'name: t\nphones:\n  p: {{mac: "0A0000000001"}}\nsteps:\n  - boot: p\n'
            f"  - expect: {{{check}: {written}}}\n")
    with pytest.raises(ScenarioError) as info:
        load_text(text, "t.yaml")
    assert f"unknown value {written!r} — did you mean {meant!r}?" in str(info.value), str(info.value)
