"""Review of session 38's product commits (REV1): what each test here found wrong.

1. Bringing TVS back (:func:`phoneemu.phone.ways_out.tvs_back_fill`) parsed each locked phone's reason and
   made an address key of each server it named, once per phone: a fleet's JUnit (``fleet boot --junit``,
   ``predict --fleet-flash --junit``) asks for every locked phone, and ``predict``'s summary passes them
   all, 40,000 phones sharing a few reasons. Each reason is now read once.
2. ``phoneemu run scenarios/<name>.yaml`` from another folder, ``<name>`` longer than a file name can be:
   the catalogue hint's own look-up raised OSError, so the run said "File name too long" of the catalogue's
   path, not "no such file or folder" of the path typed.
3. ``lab regenerate DIR tftp-2`` (or ``Tvs-2``, ``CAPF-2``) was told a command the lab refuses in turn
   (``callmanager-2`` on a lab of one node, ``callmanager-x``, ``capf-2``): a name is told only where the lab
   takes it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.commands import fleet as fleet_cmd
from phoneemu.commands.lab import _regeneratable, _regenerate_meant
from phoneemu.errors import ScenarioError
from phoneemu.lab.cluster import LabCluster
from phoneemu.phone import ways_out
from phoneemu.scenario.loader import discover
from tests.helpers import pristine_lab

NOW = 1_780_000_000
RULE = "G.3.4-tvs-unreachable"
PHONES = 300

base_lab, lab = pristine_lab("rev1-s38", now=NOW, phones={})


def _reason(server: str) -> str:
    return (f"TVS unreachable: signer cannot be vouched for (no TVS server answered: {server}: cannot "
            "connect: connection refused)")


# ---------------------------------------------------------------- 1. each reason read once


def test_tvs_back_fill_reads_a_fleets_shared_reason_once(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    """A summary of many phones and a JUnit asking phone by phone: the reason they share is parsed, and its
    server's address keyed, once, not once per phone; the answer is the same for each."""
    monkeypatch.setattr(ways_out, "_lab_tvs", lambda _lab: frozenset({("127.0.0.39", 2445)}))
    keyed: list[str] = []
    address_key = ways_out._address_key

    def counting(server: str) -> tuple[str, int]:
        keyed.append(server)
        return address_key(server)

    monkeypatch.setattr(ways_out, "_address_key", counting)
    reason = _reason("127.0.0.38:2481")  # a server no other test names: not remembered before this test
    elsewhere = {ways_out.TVS_ELSEWHERE: "127.0.0.38:2481"}
    assert ways_out.tvs_back_fill(tmp_path, [(RULE, reason)] * PHONES) == elsewhere  # a summary
    for n in range(PHONES):  # a JUnit: one phone at a time
        mac = f"0A000038{n:04X}"
        fill = fleet_cmd._phone_fill(mac, target="127.0.0.39", lab=tmp_path, flash=None,
                                     decided=(RULE, reason))
        assert fill[ways_out.TVS_ELSEWHERE] == "127.0.0.38:2481"
        assert fill["MAC"] == mac
    assert keyed == ["127.0.0.38:2481"], len(keyed)


def test_tvs_back_fill_tells_each_reason_apart(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Reasons read once each still decide each: the lab's own server (``[::1]`` written as ``::0001``
    there) keeps DIR; a phone naming another makes the summary OLD's, named."""
    monkeypatch.setattr(ways_out, "_lab_tvs", lambda _lab: frozenset({("::1", 2482)}))
    own, other = _reason("[::1]:2482"), _reason("[::1]:2483")
    assert ways_out.tvs_back_fill(tmp_path, [(RULE, own)] * 3) == {}
    assert ways_out.tvs_back_fill(tmp_path, [(RULE, own), (RULE, other), (RULE, own)]) == \
        {ways_out.TVS_ELSEWHERE: "[::1]:2483"}
    assert ways_out.tvs_back_fill(tmp_path, [("G.3.4-tvs-server-untrusted", other)]) == {}


# ---------------------------------------------------------------- 2. a catalogue name too long


def test_a_catalogue_name_too_long_is_no_such_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    name = "a" * 300 + ".yaml"
    with pytest.raises(ScenarioError) as info:
        discover([f"scenarios/{name}"])
    message = str(info.value)
    assert message.startswith(f"scenarios/{name}: no such file or folder; the catalogue at "), message
    assert message.endswith(f" has no {name} either"), message


# ---------------------------------------------------------------- 3. only a name the lab takes


@pytest.mark.parametrize("cert", ["tftp-2", "tftp-x", "tftp-", "Tvs-2", "CAPF-2"])
def test_regenerate_tells_no_name_the_lab_refuses(lab: LabCluster, cert: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A lab of one node: ``callmanager-2``, ``tvs-2`` and ``capf-2`` are refused, so not told; ``tftp-N``
    is still told the TFTP certificate is the CallManager one."""
    assert main(["lab", "regenerate", str(lab.root), cert]) == 2
    err = capsys.readouterr().err
    assert f"cannot regenerate '{cert}'" in err, err
    assert "phoneemu lab regenerate" not in err.split("cannot regenerate", 1)[1], err
    assert ("the TFTP certificate is the CallManager one" in err) == cert.startswith("tftp"), err


def test_regenerate_tells_node_ns_name_where_the_lab_has_it() -> None:
    two = _regeneratable(2)
    assert two == {"callmanager", "callmanager-2", "tvs", "tvs-2", "itlrecovery", "capf"}
    assert _regenerate_meant("tftp-2", "L", two) == (
        "the TFTP certificate is the CallManager one (CUCM's TFTP signs the configs with it, spec G.5): "
        "phoneemu lab regenerate L callmanager-2")
    assert _regenerate_meant("TVS-2", "L", two) == "names are lower case: phoneemu lab regenerate L tvs-2"
    assert _regenerate_meant("TVS-3", "L", two) is None
