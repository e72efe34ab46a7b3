"""A boot nothing answered, with ``--lab DIR`` whose lab serve runs (it holds ``DIR/.serve.lock``): the
hint says where that lab serve listens (the pid and addresses it noted there) instead of offering
``phoneemu lab serve DIR --tftp-port N``, which is refused while it runs (one lab serve per lab folder).
A lab no lab serve runs for (stopped, or killed: its note left, its lock freed) is still offered the
command.

Loopback only: a UDP port nobody listens on is refused at once."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.commands._cluster_address import lab_served_now
from phoneemu.commands.boot import nothing_answered_hint
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.lock import SERVE_LOCK_FILE, serving
from phoneemu.phone.boot import BootTarget

NOW = 1_780_000_000
MAC = "0A0000000F71"
NOTE = f"pid {os.getpid()}, tftp 127.0.0.1:16969, http 127.0.0.1:16970"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _lab(tmp_path: Path) -> LabCluster:
    lab = LabCluster.init(tmp_path / "lab", seed=11, key_spec="rsa1024", now=NOW, host="127.0.0.1")
    lab.add_phone(MAC, now=NOW)
    lab.set_ports(tftp=16969, http=16970, now=NOW)  # as its lab serve recorded them
    return lab


def test_a_wrong_tftp_while_the_lab_is_served_says_where_it_listens(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab = _lab(tmp_path)
    asked = _free_udp_port()
    argv = ["boot", "--mac", MAC, "--lab", str(lab.root), "--tftp", f"127.0.0.1:{asked}", "--no-http",
            "--timeout", "0.2"]
    with serving(lab.root) as note:
        note(NOTE)
        assert main(argv) == 1
        err = capsys.readouterr().err
    assert (f"phoneemu boot: nothing answered at 127.0.0.1 (TFTP port {asked}), and lab serve of {lab.root} "
            "last listened at 127.0.0.1:16969 (HTTP 16970): leave --tftp out to boot where it listens (a lab "
            f"serve of {lab.root} runs: {NOTE})") in err, err
    assert "phoneemu lab serve" not in err, err  # refused while it runs: not offered


def test_the_serve_command_is_offered_again_once_that_lab_serve_is_gone(tmp_path: Path) -> None:
    lab = _lab(tmp_path)
    target = BootTarget(host="127.0.0.1", tftp_port=6969, http_port=6970, use_http=False)
    (lab.root / SERVE_LOCK_FILE).write_text(NOTE)  # a killed lab serve's note: the lock is free
    assert lab_served_now(lab.root) is None
    hint = nothing_answered_hint(target, lab=lab.root)
    assert hint.endswith(f"(or: phoneemu lab serve {lab.root} --tftp-port 6969)"), hint
    assert lab_served_now(None) is None and lab_served_now(tmp_path / "none") is None


def test_nothing_answered_where_the_served_lab_listens_offers_no_second_serve(tmp_path: Path) -> None:
    lab = _lab(tmp_path)
    target = BootTarget(host="127.0.0.1", tftp_port=16969, http_port=16970, use_http=False)
    assert "For a lab: phoneemu lab serve" in nothing_answered_hint(target, lab=lab.root)
    with serving(lab.root) as note:
        note(NOTE)
        assert lab_served_now(lab.root) == NOTE
        hint = nothing_answered_hint(target, lab=lab.root)
    assert hint.endswith(f"For a lab: a lab serve of {lab.root} runs ({NOTE}; one lab serve per lab)"), hint
    assert lab_served_now(lab.root) is None  # stopped: its note cleared, its lock freed
