"""fuzz --format firmware: signed loads (.loads / .cop.sgn, spec §D and our manifest layout)."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from phoneemu.errors import DecodeError, VerificationError
from phoneemu.formats import firmware
from phoneemu.fuzz.corpus import build_corpus, export_corpus
from phoneemu.fuzz.engine import FuzzConfig, fuzz
from phoneemu.fuzz.mutators import MUTATORS, Mutator, mutators_for
from phoneemu.fuzz.strategies import mutated
from phoneemu.fuzz.targets import PythonTarget, phoneemu_callable, served_name_matches
from phoneemu.fuzz.tlvtree import parse_tree, resign


def test_seeds_are_loads_that_verify_with_the_image_signer() -> None:
    c = build_corpus("firmware")
    assert len(c.seeds) == 4
    run = phoneemu_callable("firmware", c)
    for seed in c.seeds:
        run(seed)  # parses, round-trips and verifies
        assert firmware.verify(firmware.parse(seed), [c.verify_cert]) == c.signer.cert


def test_only_firmware_gets_the_manifest_mutator() -> None:
    assert "firmware-manifest" in mutators_for("firmware")
    assert "encryption" not in mutators_for("firmware")
    for fmt in ("itl", "ctl", "sgn", "enc"):
        assert "firmware-manifest" not in mutators_for(fmt)


def test_manifest_mutator_reaches_every_manifest_check() -> None:
    c = build_corpus("firmware")
    fn = MUTATORS["firmware-manifest"]
    ctx = Mutator(c).ctx
    fields: set[str] = set()
    for i in range(400):
        tree = parse_tree(c.seeds[i % len(c.seeds)], records=False)
        assert fn(tree, random.Random(i), ctx)
        try:
            firmware.parse(resign(tree, c.signer.key))  # re-signed: the manifest is what fails
        except DecodeError as exc:
            fields.add(str(exc.path))
    assert {"payload.magic", "payload.load_name", "payload.image_len", "payload.image"} <= fields, fields


def test_resigned_mutants_get_past_the_signature() -> None:
    c = build_corpus("firmware")
    report = fuzz(FuzzConfig(fmt="firmware", seed=3, runs=600, minimize=False),
                  PythonTarget(phoneemu_callable("firmware", c), hang_after=5.0, warnings_as_errors=True),
                  Mutator(c, resign_ratio=1.0))
    assert not report.findings, {s: f.detail for s, f in report.findings.items()}
    assert report.statuses["ok"] > 30  # accepted loads: the re-signing works for firmware


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated("firmware"))
def test_our_firmware_target_only_rejects(data: bytes) -> None:
    run = phoneemu_callable("firmware", build_corpus("firmware"))
    with contextlib.suppress(DecodeError, VerificationError):  # anything else fails the test
        run(data)


def _buggy_load_parser(data: bytes) -> None:
    """A user parser with a bug: an empty image (a valid load) raises IndexError."""
    img = firmware.parse(data)  # our DecodeError: a rejection
    if len(img.payload) == 0:
        raise IndexError("image is empty")  # the bug the fuzzer must report


def test_a_buggy_user_target_is_a_finding(tmp_path: Path) -> None:
    c = build_corpus("firmware")
    report = fuzz(FuzzConfig(fmt="firmware", seed=1, runs=300, minimize=False, out=tmp_path),
                  PythonTarget(_buggy_load_parser, name="buggy"), Mutator(c, resign_ratio=0.5))
    assert any(sig.startswith("IndexError") for sig in report.findings), report.findings
    assert list((tmp_path / "crashes").iterdir())


def test_export_and_served_names(tmp_path: Path) -> None:
    written = export_corpus(build_corpus("firmware"), tmp_path / "seeds")
    assert sum(p.name.endswith(".loads") for p in written) == 3
    assert any(p.name == "03-cop-package.cop.sgn" for p in written)
    assert served_name_matches("firmware", "sip88xx.14-2-1.loads")
    assert served_name_matches("firmware", "cmterm-devicepack.14-2.cop.sgn")
    assert not served_name_matches("firmware", "SEP001122334455.cnf.xml.sgn")


@pytest.mark.parametrize("seed", range(3))
def test_firmware_mutants_are_made_whatever_the_lengths(seed: int) -> None:
    """Regression: a load-name length of 0xFFFF + 1 made the mutator raise OverflowError."""
    mut = Mutator(build_corpus("firmware"), only=["firmware-manifest"], max_ops=3)
    for i in range(2000):
        mut.mutate(random.Random(seed * 10_000 + i))
