"""Mutation audit of the scenario catalogue: does every check tell the behaviour apart?

Runs the catalogue (or the files/folders given) once, in process, and at every expectation evaluates,
beside each check's expected value, the wrong values of that check on every phone: every other value
of an enumerated check, the negation of a boolean, a text that matches nothing for rule, reason,
status, file and signer checks, one record fewer or more for ``itl_records``/``ctl_records``. A wrong
value that also holds is printed: that check cannot fail when the behaviour changes that way.

Expected overlaps are not printed: ``present`` holds beside ``installed``/``updated``/``unchanged``/
``empty`` and beside ``rejected`` (a refused update keeps the old list); ``absent`` beside a first
boot's ``rejected`` and an LSC's ``deleted``; ``unchanged`` beside ``empty`` (an empty ITL kept).
Exit 1 when anything else holds.
Usage: ``PYTHONPATH=$PWD python scripts/catalogue_mutants.py [PATH...]`` (default: scenarios/).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from phoneemu.scenario import checks, runner
from phoneemu.scenario.loader import discover, load_file
from phoneemu.scenario.model import Expectation

TRUST = ["installed", "updated", "unchanged", "rejected", "absent", "empty", "present"]
DOMAINS: dict[str, list[Any]] = {
    "itl": TRUST, "ctl": TRUST,
    "config": ["accepted", "rejected", "none"],
    "lsc": ["installed", "deleted", "unchanged", "present", "absent"],
    "capf_pending": ["install", "fetch", "delete", "none"],
    "firmware": ["accepted", "rejected", "unchanged", "none"],
    "boot": ["ok", "failed"],
    "itl_file_status": ["match", "mismatch", "not-installed", "unknown"],
    "ctl_file_status": ["match", "mismatch", "not-installed", "unknown"],
    "signaling": ["tls", "tcp", "none"],
    "fetched_over": ["http", "tftp", "mixed", "none"],
    "https": ["trusted", "untrusted"],
    "media": ["srtp", "rtp", "none"],
    "media_suite": ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "none"],
    "call_status": [200, 404, 408, 480, 488, "none"],
}
BOOLS = {"locked_out", "encrypted", "tvs_used", "retransmitted"}
OVERLAPS = {(v, "present") for v in ("installed", "updated", "unchanged", "empty", "rejected")} | {
    ("present", v) for v in ("installed", "updated", "unchanged", "empty")} | {
    ("rejected", "absent"), ("empty", "unchanged"), ("deleted", "absent")}
NOTHING = "zz-matches-nothing-zz"


def _mutants(name: str, expected: Any) -> list[Any]:
    values = expected if isinstance(expected, list) else [expected]
    if name in DOMAINS:
        return [v for v in DOMAINS[name] if v not in values]
    if name in BOOLS:
        return [not values[0]]
    if name in ("trust_file_retries", "media_refused"):
        return [values[0] + 1]
    if name in ("itl_records", "ctl_records"):
        return [expected[:-1], [*expected, "TVS zz-extra"]]
    if name == "config_lacks":  # a text the config lacks: any other text would be lacking too
        return []
    return [NOTHING]


def main(argv: list[str]) -> int:
    findings: list[str] = []
    evaluate = runner._evaluate

    def audited(world: Any, exp: Expectation) -> Any:
        result = evaluate(world, exp)
        for handle in world.select(exp.phones):
            for name, raw in exp.checks.items():
                expected = runner._with_mac(raw, handle.mac)
                first = expected[0] if isinstance(expected, list) and expected else expected
                for wrong in _mutants(name, expected):
                    _, held = checks.evaluate(name, handle, wrong)
                    if held and (str(first), str(wrong)) not in OVERLAPS:
                        findings.append(f"{exp.where} [{exp.label or ''}] {handle.mac} {name}: "
                                        f"expected {expected!r}, the wrong value {wrong!r} holds too")
        return result

    runner._evaluate = audited
    options = runner.RunOptions()
    errors = 0
    paths = discover([Path(p) for p in (argv or ["scenarios"])])
    for path in paths:
        outcome = asyncio.run(runner.run_scenario(load_file(path), options))
        if outcome.error:
            errors += 1
            print(f"ERROR {path}: {outcome.error}")
    for line in findings:
        print(line)
    print(f"{len(paths)} scenario(s), {len(findings)} check(s) that a wrong value also satisfies, "
          f"{errors} error(s)")
    return 1 if findings or errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
