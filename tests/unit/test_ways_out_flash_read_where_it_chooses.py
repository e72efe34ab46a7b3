"""``ways_out.way_out_lines`` reads the lists a phone holds from its flash (``FLASH`` of ``fill``) only where
they can choose its ways out: a rule of a signer no list or TVS vouches for, with ways out. Was: for every
rule — a registration refused (``sip``), a call without SRTP (``media``), an oversized ITL — so ``fleet boot
--flash --junit`` read and parsed each such phone's CTL, ITL (twice) and config for nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.phone import ways_out
from phoneemu.phone.ways_out import HeldLists, way_out_lines

HOLDING_A_CTL = HeldLists.of(ctl=True, empty_itl=False)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The flashes ``held_lists`` is asked to read (each holding a CTL)."""
    asked: list[str] = []

    def held_lists(flash: str | Path) -> HeldLists:
        asked.append(str(flash))
        return HOLDING_A_CTL

    monkeypatch.setattr(ways_out, "held_lists", held_lists)
    return asked


@pytest.mark.parametrize(("rule", "kind"), [("G.13-device-cert-refused", "sip"),
                                            ("G.14-rtp-not-encrypted-mode", "media"),
                                            ("G.3.1-oversize", "ITL"), ("G.3-expired-signer", "CTL"),
                                            ("G.4-bad-signature", "config")])
def test_no_flash_read_where_the_lists_choose_nothing(reads: list[str], rule: str, kind: str) -> None:
    fill = {"FLASH": "/flash/0A0000000001"}
    lines = way_out_lines(rule, kind, fill=fill)
    assert reads == []
    assert lines == way_out_lines(rule, kind, fill=fill, held=HOLDING_A_CTL)  # what the lists would say


def test_the_flash_is_read_where_the_lists_choose_the_ways(reads: list[str]) -> None:
    rule = "G.3.5-reject-unknown-signer"
    lines = way_out_lines(rule, "ITL", fill={"FLASH": "/flash/0A0000000001"})
    assert reads == ["/flash/0A0000000001"]
    assert lines == way_out_lines(rule, "ITL", fill={"FLASH": "/flash/0A0000000001"}, held=HOLDING_A_CTL)
    assert "lab rollback" in "\n".join(way_out_lines(rule, "ITL")) and "lab rollback" not in "\n".join(lines)
