"""A lockout with no documented way out says so, with why (``phoneemu.phone.ways_out.NO_WAY_OUT``).

Before: under a rule of ``NO_WAY_OUT`` (a trust list that does not parse, a file served under another
name, a signer key the model cannot use) ``boot``, ``boot --json`` and ``phone show`` said nothing after
the lockout — no way out, and not that there is none. Now the text says ``no documented way out: <why>``
and the JSON has ``no_way_out`` (the why; null where there are ways out or no lockout).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from phoneemu import cli
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.phone.ways_out import NO_WAY_OUT, WAYS_BY_KIND, no_way_out, no_way_out_lines, way_out_lines
from tests.helpers import run_within

NOW = 1_780_000_000
MAC = "0A0000005E11"
HOST = "127.0.0.1"
_SAID = "no documented way out: "

run = run_within(60)


@pytest.mark.parametrize(("kind", "rule"), sorted(NO_WAY_OUT))
def test_a_rule_without_ways_out_says_why_in_one_line(kind: str, rule: str) -> None:
    assert way_out_lines(rule, kind) == []
    assert no_way_out(rule, kind) == NO_WAY_OUT[(kind, rule)]
    assert no_way_out_lines(rule, kind, indent="    ") == [f"    {_SAID}{NO_WAY_OUT[(kind, rule)]}"]


def test_a_rule_with_ways_out_or_unknown_says_no_none() -> None:
    for kind, table in WAYS_BY_KIND.items():
        for rule in table:
            assert no_way_out(rule, kind) is None and no_way_out_lines(rule, kind) == [], (kind, rule)
    # a flash of an older phoneemu keeps no deciding rule or kind; an unknown rule is no lockout
    assert no_way_out(None, "ITL") is None and no_way_out("G.3.1-malformed", None) is None
    assert no_way_out("G.3.1-malformed", "sip") is None and no_way_out_lines(None, None) == []


async def _cli(*args: str) -> tuple[int, str]:
    """``phoneemu ARGS`` in a child process (it owns its event loop; the lab servers run in ours)."""
    pipe = asyncio.subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "phoneemu", *args,
                                                stdout=pipe, stderr=pipe)
    out, _err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def test_boot_and_phone_show_say_a_malformed_itl_has_no_way_out(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A phone holding an ITL is served one whose first byte is flipped (``lab tamper``): it does not
    parse, ``G.3.1-malformed`` locks the phone out, and every report of it says why no way out follows."""
    lab = LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=NOW)
    lab.add_phone(MAC, now=NOW)
    flash = tmp_path / "ph"
    why = NO_WAY_OUT[("ITL", "G.3.1-malformed")]

    async def body() -> tuple[dict[str, object], str, dict[str, object]]:
        async with LabServers(lab, host=HOST) as srv:
            common = ["--tftp", f"{HOST}:{srv.ports['tftp']}", "--http-port", str(srv.ports["http"]),
                      "--lab", str(lab.root), "--flash", str(flash), "--now", str(NOW), "--timeout", "1"]
            rc, out = await _cli("boot", "--json", "--mac", MAC, *common)
            first = json.loads(out)["report"]
            assert rc == 0 and first["ok"], out
            lab.tamper("ITLFile.tlv", offset=0, now=NOW)
            rc, text = await _cli("boot", *common)
            assert rc == 1, text
            rc, out = await _cli("boot", "--json", *common)
            return first, text, json.loads(out)["report"]

    first, text, locked = run(body())
    assert "deciding:  G.3.1-malformed (rejected) ITLSEP" in text
    assert f"\n  {_SAID}{why}\n" in text + "\n" and "way out (" not in text
    assert first["no_way_out"] is None and first["ways_out"] == []  # no lockout: nothing to say
    assert locked["locked_out"] is True and locked["ways_out"] == [] and locked["no_way_out"] == why
    assert cli.main(["phone", "show", "--flash", str(flash), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["locked"] is True and info["ways_out"] == [] and info["no_way_out"] == why
    assert cli.main(["phone", "show", "--flash", str(flash)]) == 0
    shown = capsys.readouterr().out
    assert f"(ITL refused): the phone ignores configuration changes (locked until it accepts a trust list " \
           f"at a reset, or its CTL and ITL are erased; a reset while the cause remains refuses the same " \
           f"list again)\n  {_SAID}{why}\n" in shown
