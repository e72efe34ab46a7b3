"""``boot --lab DIR``'s ways out fill ``FILE`` (``inspect FILE``) with DIR's served copy of the refused file
only when the phone booted against DIR: its address taken from the lab, or ``--tftp`` at the very address
and TFTP port where DIR's lab serve last listened. With ``--tftp`` another cluster's address (or a lab no
lab serve ever recorded) FILE is left, and the legend says why DIR's copy is not it. Was: DIR's copy, though
the phone was served another cluster's file under that name.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.commands._cluster_address import ClusterAddress
from phoneemu.commands.boot import _placeholder_legend, _refused_file_of
from phoneemu.errors import VerifyReason
from phoneemu.lab.cluster import LabCluster
from phoneemu.phone.boot import BootReport
from phoneemu.phone.events import Decision

NOW = 1_780_000_000
MAC = "0A00000000F4"
RULE = "G.3.4-tvs-unreachable"
NAME = f"ITLSEP{MAC}.tlv"
TFTP = 6979  # where the lab's lab serve last listened (recorded; nothing listens in this test)


def _report() -> BootReport:
    """A lockout whose TVS QUERY was too large to send: its way out is ``phoneemu inspect FILE``."""
    d = Decision(rule=RULE, accepted=False, reason="TVS QUERY too large", file=NAME, kind="ITL",
                 reason_code=VerifyReason.TOO_LARGE)
    return BootReport(mac=MAC, ok=False, trust={"ITL": "rejected"}, config="none", config_file=None,
                      encrypted=False, decisions=(d,), deciding=d, statuses=(), firmware="none", load=None,
                      lsc="none", locked_out=True, tvs_used=True, timeline=(), duration_s=0.0)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lab serving the refused file, its lab serve recorded at 127.0.0.1:TFTP; another never served."""
    where = tmp_path_factory.mktemp("labs")
    for name, seed in (("served", 41), ("never", 42)):
        cluster = LabCluster.init(where / name, seed=seed, key_spec="rsa1024", now=NOW, name=name)
        if name == "served":
            cluster.set_ports(tftp=TFTP, now=NOW)
        (where / name / "tftp" / NAME).write_bytes(b"the lab's copy")
    return where / "served"


def _tftp(port: int) -> ClusterAddress:
    return ClusterAddress("127.0.0.1", port, 6970, from_lab=False)


def test_the_lab_booted_against_fills_file(lab: Path) -> None:
    copy = {"FILE": str(lab / "tftp" / NAME)}
    from_lab = ClusterAddress("127.0.0.1", TFTP, 6970, from_lab=True)  # no --tftp: the lab's address
    assert _refused_file_of(lab, from_lab, _report()) == (copy, None)
    assert _refused_file_of(lab, _tftp(TFTP), _report()) == (copy, None)  # --tftp where it listened


def test_another_cluster_leaves_file_and_says_why(lab: Path) -> None:
    fill, why = _refused_file_of(lab, _tftp(TFTP + 1), _report())
    assert fill == {}
    assert why == (f"--tftp 127.0.0.1:{TFTP + 1} is not where lab serve of {lab} last listened, "
                   f"127.0.0.1:{TFTP} (HTTP 6970)")
    legend = _placeholder_legend(_report(), {"DIR": str(lab), "NEW": str(lab)}, None, None, other_cluster=why)
    assert legend[-1] == (f"  FILE: the refused file (not kept by boot: the file served under the name its "
                          f"deciding line gives; not the --lab folder's copy: {why})"), legend
    assert _placeholder_legend(_report(), {}, None, None)[-1] == (
        "  FILE: the refused file (not kept by boot: the file served under the name its deciding line gives)")


def test_a_lab_never_served_is_no_cluster_a_tftp_names(lab: Path) -> None:
    never = lab.parent / "never"
    fill, why = _refused_file_of(never, _tftp(TFTP), _report())
    assert fill == {}
    assert why == f"--tftp 127.0.0.1:{TFTP}, and no lab serve of {never} has recorded listening there"
    assert _refused_file_of(None, _tftp(TFTP), _report()) == ({}, None)  # no --lab: nothing to fill from
