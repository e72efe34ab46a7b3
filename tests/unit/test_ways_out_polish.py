"""Review of 2003cc3 / be6763b (phones pointed at a cluster that is not a lab):

* ``--tftp NAME`` whose lookup fails for now (``EAI_AGAIN``: the resolver did not answer) is said as a
  temporary failure, one line, exit 2 — it was "the name does not resolve", as for a mistyped name;
* without a lab, each command a way out names is labelled by what it acts on: ``inspect FILE`` was "on the
  emulated phone", it reads the refused file;
* phones booted without ``--flash`` (a temporary folder, or memory only) were told ``phone erase --flash
  FLASH`` / ``--fleet-flash FLEET``, a flash that no longer exists: now that there is nothing to erase and
  how to keep their flash (``ways_out.FLASH_NOT_KEPT``).
"""

from __future__ import annotations

import shlex
import socket
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.commands._cluster_address import ClusterAddress, check_resolves
from phoneemu.errors import PhoneEmuError
from phoneemu.phone import ways_out as wo

MAC = "0A0000000E71"
NAME = "cucm-pub.invalid"  # RFC 6761: never resolves; the lookup is made to fail here anyway, at once
REAL = {wo.NOT_A_LAB: "10.0.0.5:69 (HTTP 6970)", "MAC": MAC}
TEMPORARY = "Temporary failure in name resolution"


@pytest.fixture
def resolver_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """``NAME``'s lookup fails as when the DNS server does not answer (EAI_AGAIN); other names as they do."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kw: Any) -> Any:
        if host == NAME:
            raise socket.gaierror(socket.EAI_AGAIN, TEMPORARY)
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.usefixtures("resolver_down")
def test_a_temporary_lookup_failure_is_not_said_as_a_name_that_does_not_resolve() -> None:
    with pytest.raises(PhoneEmuError) as caught:
        check_resolves(ClusterAddress(NAME, 69, 6970, from_lab=False))
    said = caught.value.message
    assert f"--tftp {NAME}: a temporary failure of name resolution ({TEMPORARY}): try again" in said, said
    assert "does not resolve" not in said and "\n" not in said, said


@pytest.mark.usefixtures("resolver_down")
@pytest.mark.parametrize("command", [["boot", "--mac", MAC], ["fleet", "boot", "--count", "1", "-q"]])
def test_a_temporary_lookup_failure_is_one_line_exit_2_before_any_boot(
        command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--tftp", f"{NAME}:6969", "--timeout", "0.2", "--tftp-max-time", "1"]) == 2
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) == 1 and "temporary failure of name resolution" in lines[0], err
    assert "does not resolve" not in err, err
    assert out == ""  # no phone booted, no summary


def _every_way_out_line(fill: dict[str, str], *, fleet: bool) -> list[str]:
    """The command lines of every way out of the catalogue (each rule of each kind, and a QUERY too large
    to send), written with ``fill``; printed, for a reader of ``pytest -s``."""
    lines: list[str] = []
    for kind, rules in wo.WAYS_BY_KIND.items():
        for rule in rules:
            codes = [None, "too-large"] if rule.endswith("-tvs-unreachable") else [None]
            for code in codes:
                said = wo.way_out_lines(rule, kind, fill=fill, fleet=fleet, reason_code=code, indent="")
                lines += [line.strip() for line in said if not line.startswith("way out (")]
    for line in lines:
        print(line)
    return lines


#: what each command that needs no lab acts on, by its words after ``phoneemu`` (a table of the test's own)
ACTS_ON = {("phone", "erase"): "on the emulated phone", ("inspect",): "the refused file"}


@pytest.mark.parametrize("fleet", [False, True])
def test_each_command_without_a_lab_is_labelled_by_what_it_acts_on(fleet: bool) -> None:
    seen = set()
    for line in _every_way_out_line(REAL, fleet=fleet):
        command_part = line.split("   rehearse in a lab: ", 1)[0]
        if command_part.startswith("rehearse in a lab: "):
            continue  # the rehearsal alone: no command on this cluster
        label, command = command_part.split(": ", 1)
        words = shlex.split(command)
        assert words[0] == "phoneemu", line
        head = next(h for h in ACTS_ON if tuple(words[1:1 + len(h)]) == h)  # no other command shown
        expected = ACTS_ON[head] + ("s" if fleet and head == ("phone", "erase") else "")
        assert label == expected, line
        seen.add(head)
    assert seen == set(ACTS_ON)  # both are shown somewhere, so both labels were checked


@pytest.mark.parametrize("fleet", [False, True])
@pytest.mark.parametrize("real", [True, False])
def test_erase_of_a_flash_not_kept_is_not_offered(fleet: bool, real: bool) -> None:
    """Booted without ``--flash`` (``boot``: a temporary folder; ``fleet boot``: memory only): no ``phone
    erase`` of a flash that is gone, but why and how to keep it; against a lab too. With ``--flash``
    (FLASH or FLEET known) the command stays, filled in."""
    keep = "phoneemu fleet boot" if fleet else "phoneemu boot"
    base = REAL if real else {"DIR": "/srv/lab", "MAC": MAC}
    lines = _every_way_out_line({**base, wo.FLASH_NOT_KEPT: keep}, fleet=fleet)
    assert not any("phone erase" in line for line in lines), lines
    whose = "their flashes were" if fleet else "its flash was"
    told = [line for line in lines if f"nothing to erase: {whose} not kept (no --flash" in line]
    assert told and all(f"{keep} --flash FOLDER keeps" in line for line in told), lines
    label = "on the emulated phone" + ("s" if fleet else "") if real else "lab"
    assert all(line.startswith(f"{label}: nothing to erase") for line in told), told
    flash = {"FLEET": "/srv/fleet"} if fleet else {"FLASH": "/srv/ph"}
    kept = _every_way_out_line({**base, **flash}, fleet=fleet)
    erase = f"phoneemu phone erase --{'fleet-' if fleet else ''}flash /srv/{'fleet' if fleet else 'ph'}"
    assert len([line for line in kept if erase in line]) == len(told), kept
