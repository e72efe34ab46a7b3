"""Three small leftovers (s41).

* A fleet shard's unexpected exception reached ``fleet boot`` with its traceback (``fleet shard 0 failed:
  OverflowError: ...\\nTraceback (most recent call last): ...``): it is one line now, the exception's type,
  its text and where it was raised (the innermost phoneemu frame).
* ``certs.name_from_text`` and ``certs.dn_common_name`` split on every ``,``/``;``: ``--subject "CN=a;O=X\\,
  Inc."`` kept a literal backslash in O, and the CN of ``CN=a\\, b,O=X`` was ``a\\``. They split as
  ``dn_key`` does now, the escapes decoded.
* ``run --json`` wrote ``ran`` only when nothing ran (false): ``d["ran"]`` raised KeyError on a run that
  ran. It is true there now.

The shard tests run real shard processes with the real ``_child``, only the boots faked (as
tests/integration/test_worker_loss.py does): a few seconds, no network.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from phoneemu.crypto import certs
from phoneemu.errors import DecodeError, PhoneEmuError
from phoneemu.fleet import engine as engine_mod
from phoneemu.fleet import shard as shard_mod
from phoneemu.fleet.engine import FleetSpec, ShardResult
from phoneemu.fleet.metrics import FleetMetrics
from phoneemu.phone.boot import BootTarget
from phoneemu.scenario.json_report import to_json, write_json
from phoneemu.scenario.results import ExpectationResult, RunSummary, ScenarioResult

# --------------------------------------------------------------------------- fleet shard's unexpected error
#: the shard whose boots raise an unexpected exception (OverflowError, from phoneemu's certs.serial_bytes)
FAILING_SHARD = 1


def _failing_run_shard(before_storm: bool) -> Any:
    async def run_shard(spec: FleetSpec, macs: range, *, shard: int = 0, on_progress: Any = None,
                        ready: Any = None, should_stop: Any = None, on_give_up: Any = None) -> ShardResult:
        if shard == FAILING_SHARD and before_storm:
            certs.serial_bytes(-1)  # OverflowError, raised in phoneemu/crypto/certs.py
        if ready is not None:
            await ready()
        if shard == FAILING_SHARD:
            certs.serial_bytes(-1)
        return ShardResult(shard=shard, metrics=FleetMetrics(), records=[])
    return run_shard


def _child_failing_in_storm(spec: FleetSpec, macs: range, shard: int, channels: Any, timeout: float) -> None:
    engine_mod.run_shard = _failing_run_shard(before_storm=False)  # _child imports it from there
    shard_mod._child(spec, macs, shard, channels, timeout)


def _child_failing_before_storm(spec: FleetSpec, macs: range, shard: int, channels: Any,
                                timeout: float) -> None:
    engine_mod.run_shard = _failing_run_shard(before_storm=True)
    shard_mod._child(spec, macs, shard, channels, timeout)


def _fleet(monkeypatch: pytest.MonkeyPatch, child: Any) -> tuple[Any, list[str]]:
    monkeypatch.setattr(shard_mod, "_child", child)
    spec = FleetSpec(target=BootTarget(host="127.0.0.1", tftp_port=9), count=4)
    lost: list[str] = []
    res = shard_mod.run_fleet(spec, shards=2, start_timeout=60, run_timeout=60, on_lost=lost.append)
    return res, lost


def _one_line_naming_where(text: str) -> None:
    assert "\n" not in text and "Traceback" not in text, text
    assert "OverflowError: " in text and "(at phoneemu/crypto/certs.py:" in text, text
    assert " in serial_bytes)" in text, text


def test_a_shard_failing_before_the_storm_says_it_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """``fleet shard 1 failed: OverflowError: ... (at phoneemu/crypto/certs.py:N in serial_bytes)``: was
    the traceback's lines after it, which ``fleet boot`` printed."""
    with pytest.raises(PhoneEmuError) as caught:
        _fleet(monkeypatch, _child_failing_before_storm)
    said = str(caught.value)
    assert said.startswith(f"fleet shard {FAILING_SHARD} failed: OverflowError: "), said
    _one_line_naming_where(said)


def test_a_shard_failing_in_the_storm_is_lost_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lost shard's ``why`` (printed by ``fleet boot``, in its JSON report's ``lost_shards``) and the
    ``on_lost`` message: one line each; the other shard's result kept."""
    res, lost = _fleet(monkeypatch, _child_failing_in_storm)
    assert [s.shard for s in res.shards] == [0]
    (gone,) = res.lost
    assert gone.shard == FAILING_SHARD and gone.why.startswith("failed: OverflowError: "), gone.why
    _one_line_naming_where(gone.why)
    (message,) = lost
    _one_line_naming_where(message)


def test_unexpected_text_names_the_innermost_phoneemu_frame() -> None:
    """Not a frame of the standard library's (json's here), nor this test's: phoneemu's own."""
    try:
        certs.serial_bytes(-1)
    except OverflowError as exc:
        text = shard_mod._unexpected_text(exc)
    assert text.startswith("OverflowError: ") and " (at phoneemu/crypto/certs.py:" in text, text

    class Odd:
        pass

    try:
        json.dumps(Odd())
    except TypeError as exc:
        text = shard_mod._unexpected_text(exc)
    assert text.startswith("TypeError: Object of type Odd") and "\n" not in text, text
    assert "(at test_small_fixes_s41.py:" not in text and "(at " in text, text  # no phoneemu frame: innermost

    try:
        raise RuntimeError("two\nlines")
    except RuntimeError as exc:
        text = shard_mod._unexpected_text(exc)
    assert text.startswith("RuntimeError: two lines (at test_small_fixes_s41.py:"), text


# --------------------------------------------------------------------------- DN texts with escapes
def _values(name: x509.Name) -> list[tuple[str, str]]:
    """(short name, value) of each attribute, most specific first, as written."""
    return [(a.rfc4514_attribute_name, str(a.value)) for rdn in reversed(name.rdns) for a in rdn]


@pytest.mark.parametrize(("text", "want"), [
    ("CN=a;O=X\\, Inc.", [("CN", "a"), ("O", "X, Inc.")]),
    ("CN=a\\, b,O=X\\2C Inc.", [("CN", "a, b"), ("O", "X, Inc.")]),
    ("CN=a;O=X\\; Y", [("CN", "a"), ("O", "X; Y")]),
    ("CN=a;O=Cisco Systems, Inc.", [("CN", "a"), ("O", "Cisco Systems, Inc.")]),  # as before
    ("CN=a, OU=b ,O=c", [("CN", "a"), ("OU", "b"), ("O", "c")]),  # as before
])
def test_name_from_text_reads_escaped_separators(text: str, want: list[tuple[str, str]]) -> None:
    """Was ``O=X\\`` and a bad DN component `` Inc.``, or a literal backslash kept in the value."""
    name = certs.name_from_text(text)
    assert _values(name) == want
    assert certs.dn_key(certs.dn_text(name)) == certs.dn_key(text)  # the certificate's DN is the text's


def test_name_from_text_multi_valued_rdn_and_bad_values() -> None:
    name = certs.name_from_text("CN=a+OU=b;O=c")  # as dn_key reads it: one RDN of two attributes
    assert len(name.rdns) == 2 and {a.oid for a in name.rdns[1]} == {NameOID.COMMON_NAME,
                                                                     NameOID.ORGANIZATIONAL_UNIT_NAME}
    assert certs.dn_key(certs.dn_text(name)) == certs.dn_key("CN=a+OU=b;O=c")
    assert _values(certs.name_from_text("CN=a+b;O=c")) == [("CN", "a+b"), ("O", "c")]  # no `type=`: a value's
    for bad in ("C=USA;CN=a", "CN=;O=c"):  # was cryptography's ValueError
        with pytest.raises(DecodeError, match="bad DN component"):
            certs.name_from_text(bad)
    with pytest.raises(DecodeError, match="bad DN component"):
        certs.name_from_text("CN=a;XX=b")


@pytest.mark.parametrize(("text", "want"), [
    ("CN=a\\, b,O=X", "a, b"),
    ("O=X\\, Inc.;CN=lab-pub", "lab-pub"),
    ("OU=x\\, CN=y,CN=real", "real"),  # an escaped separator does not start an RDN
    ("CN=ITLRECOVERY_lab-pub;OU=VTG", "ITLRECOVERY_lab-pub"),  # as before
    ("OU=x;O=y", "OU=x;O=y"),  # no CN: the whole text, as before
])
def test_dn_common_name_reads_escaped_separators(text: str, want: str) -> None:
    assert certs.dn_common_name(text) == want


def test_dn_common_name_of_a_certificates_dn_text() -> None:
    """``lab`` names a certificate by ``dn_common_name(dn_text(subject))``: dn_text escapes a CN's comma."""
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "X"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "pub, lab")])
    assert certs.dn_common_name(certs.dn_text(name)) == "pub, lab"


# --------------------------------------------------------------------------- run --json: ran
def _summary() -> RunSummary:
    exp = ExpectationResult(where="t.yaml:5", label="boots", xfail=None)
    return RunSummary(scenarios=[ScenarioResult(name="t", path="t.yaml", reproduces="", expectations=[exp],
                                                phones=1)], duration_s=0.5)


def test_run_json_says_ran_true_when_something_ran(tmp_path: Path) -> None:
    """Was absent (only a nothing-ran report had it, false): ``d["ran"]`` raised KeyError."""
    assert to_json(_summary())["ran"] is True
    path = tmp_path / "run.json"
    write_json(_summary(), path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["ran"] is True and list(doc)[:2] == ["ok", "ran"]
