"""Review of the last commits (ways out against a cluster that is not a lab, ``ways_out.NOT_A_LAB``): the
placeholders of a way out's command are filled in one pass, so a value given for one is never read again as
another (``phoneemu.phone.ways_out._filled``).

Was: each placeholder in turn over the whole command, values included - ``fleet boot --count 2 --flash
/tmp/N-phones`` told ``phone erase --fleet-flash /tmp/2-phones`` (``N``, the run's count, inside the folder's
name), ``--lab /srv/FLASH-lab --flash /tmp/ph`` told ``lab itl-reset /srv//tmp/ph-lab``, ``boot --flash
/tmp/MAC-phone`` told to erase ``/tmp/0A00000000E1-phone``: a command naming a folder nobody has.
"""

from __future__ import annotations

import shlex

from phoneemu.phone.ways_out import NOT_A_LAB, way_out_lines, ways_out_doc, ways_out_text

RULE, KIND = "G.3.4-tvs-unknown-signer", "ITL"
MAC = "0A00000000E1"


def _commands(lines: list[str], label: str) -> list[list[str]]:
    """The words of each command after ``label`` (``lab:`` or ``on the emulated phone(s):``), as a shell
    reads them (up to the rehearsal that follows on the same line)."""
    out = []
    for line in lines:
        if label in line:
            command = line.split(label, 1)[1].split("   rehearse", 1)[0]
            out.append(shlex.split(command))
    return out


def test_a_fleet_folder_holding_a_placeholder_word_is_named_whole() -> None:
    """``fleet boot --flash /tmp/N-phones`` without ``--lab`` (the summary's fill: FLEET, FIRST, N)."""
    fill = {"FLEET": "/tmp/N-phones", NOT_A_LAB: "10.0.0.5:69 (HTTP 6970)", "FIRST": MAC, "N": "2"}
    lines = ways_out_text(ways_out_doc({(RULE, KIND): 2}), fill)
    assert _commands(lines, "on the emulated phones:") == [
        ["phoneemu", "phone", "erase", "--fleet-flash", "/tmp/N-phones"]], lines


def test_a_lab_folder_holding_a_placeholder_word_is_named_whole() -> None:
    """``boot --lab /srv/FLASH-lab --flash /tmp/ph``: the ``--lab`` output, each folder where it belongs."""
    lines = way_out_lines(RULE, KIND, fill={"DIR": "/srv/FLASH-lab", "FLASH": "/tmp/ph", "MAC": MAC})
    reset = _commands(lines, "lab:")[2]
    assert reset == ["phoneemu", "lab", "itl-reset", "/srv/FLASH-lab", "localkey", "&&", "phoneemu", "boot",
                     "--lab", "/srv/FLASH-lab", "--flash", "/tmp/ph", "&&", "phoneemu", "lab", "restart-tftp",
                     "/srv/FLASH-lab"], lines


def test_a_phone_flash_holding_a_placeholder_word_is_named_whole() -> None:
    """``boot --flash '/tmp/MAC phone'`` against a cluster that is not a lab (fill: FLASH, MAC, NOT_A_LAB)."""
    fill = {"FLASH": "/tmp/MAC phone", "MAC": MAC, NOT_A_LAB: "10.0.0.5:69 (HTTP 6970)"}
    lines = way_out_lines(RULE, KIND, fill=fill)
    assert _commands(lines, "on the emulated phone:") == [
        ["phoneemu", "phone", "erase", "--flash", "/tmp/MAC phone"]], lines


def test_placeholders_not_given_stay_and_those_given_are_all_filled() -> None:
    """The one pass fills every placeholder it is given, each time it occurs, and leaves the others."""
    lines = way_out_lines(RULE, KIND, fill={"DIR": "/lab", "FLASH": "/ph"})
    words = [w for command in _commands(lines, "lab:") for w in command]
    assert "DIR" not in words and "FLASH" not in words and words.count("/lab") == 3
    assert "OLD" in words and "NEW" in words  # the two clusters of a migration: the user's to fill in
