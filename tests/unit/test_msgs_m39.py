"""``lab rollback DIR on`` says on stderr that phone services that use HTTPS do not work while it is on and
basic calls do (seed Roll Back Cluster to a Pre-8.0 Release, step 1's note; spec G.6), and what the lab's
own HTTPS services do: its directory fails (no TVS in the empty ITL, E.7.1) unless the secure URLs are
plain HTTP; a lab with ``--https-key`` has its 6971 config download not asked (the empty ITL holds no TFTP
record with an EC key, checked against the phone's rule). Was: nothing said. (``phoneemu tvs`` against a
server that answers, but not with TLS: tests/unit/test_tvs_hints_review_r2.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.formats import trustlist
from phoneemu.lab.cluster import LabCluster
from phoneemu.phone import rules
from phoneemu.phone.profile import get_profile
from phoneemu.phone.store import TrustStore
from tests.helpers import copy_cluster, lab_template, pristine_lab

NOW = 1_780_000_000
SAID = ("phoneemu lab rollback: note: while the rollback is on, phone services that use HTTPS (for example "
        "extension mobility) do not work; basic calls do (seed Roll Back Cluster to a Pre-8.0 Release, spec "
        "G.6): ")
DIRECTORY_FAILS = "the lab's HTTPS directory fails on phones holding the empty ITL (E.7.1-https-not-trusted"
CONFIG_6971 = "the HTTPS config download (6971) is not asked"

base_lab, lab = pristine_lab("msgs-m39-https", now=NOW, phones={}, https_key="ec-p256")
template = lab_template("msgs-m39-plain", seed=None, phones={})


def _rollback_on(root: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Its stderr."""
    capsys.readouterr()
    assert main(["lab", "rollback", str(root), "on"]) == 0
    return capsys.readouterr().err


def test_rollback_on_says_https_services_do_not_work(template: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    plain = copy_cluster(template, tmp_path)
    err = _rollback_on(plain.root, capsys)
    assert f"{SAID}{DIRECTORY_FAILS}" in err, err
    assert f"phoneemu lab secure-urls {plain.root} http names it over plain HTTP" in err
    assert CONFIG_6971 not in err  # no 6971 server without --https-key
    assert len([line for line in err.splitlines() if line.startswith(SAID)]) == 1


def test_rollback_on_with_plain_http_secure_urls_says_the_directory_is_reached(
        template: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = copy_cluster(template, tmp_path)
    assert main(["lab", "secure-urls", str(plain.root), "http"]) == 0
    err = _rollback_on(plain.root, capsys)
    assert f"{SAID}the lab's directory is named over plain HTTP (secure-urls http): phones reach it, " \
           "unauthenticated" in err, err
    assert DIRECTORY_FAILS not in err


def _asks_6971(cluster: LabCluster) -> tuple[bool, bool]:
    """Whether a cp-8861 holding ``cluster``'s served ITL asks TCP 6971 for its config (spec H.1), and
    whether that ITL is the empty one."""
    profile = get_profile("cp-8861")
    store = TrustStore(profile=profile)
    itl = trustlist.parse(cluster.get("ITLFile.tlv") or b"")
    store.restore(ctl=None, itl=itl, config=None, ctl_rule=None, itl_rule="G.2-first-itl-tofu",
                  config_rule=None)
    return rules.https_config_applies(store, profile), store.itl_is_empty


def test_rollback_on_with_the_https_config_download_says_it_is_not_asked(
        lab: LabCluster, capsys: pytest.CaptureFixture[str]) -> None:
    assert _asks_6971(lab) == (True, False)
    err = _rollback_on(lab.root, capsys)
    assert f"{CONFIG_6971}: the empty ITL holds no TFTP record with an EC key, so phones take their config " \
           "over HTTP 6970/TFTP" in err, err
    # what it says: a cp-8861 holding the served rollback ITL does not ask 6971
    assert _asks_6971(LabCluster.open(lab.root)) == (False, True)


def test_rollback_off_says_nothing_of_https(template: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    plain = copy_cluster(template, tmp_path)
    _rollback_on(plain.root, capsys)
    assert main(["lab", "rollback", str(plain.root), "off"]) == 0
    assert "HTTPS" not in capsys.readouterr().err
