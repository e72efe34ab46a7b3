"""``phoneemu --help`` and ``phoneemu lab --help`` say the phones and the lab do SIP (registration and
calls; ``lab serve --sip-port`` / ``--sips-port`` runs the lab's SIP registrar). Before: the description
named CTL/ITL, configs, TVS and CAPF only, and ``lab``'s that its servers were TFTP, HTTP, TVS and CAPF."""

from __future__ import annotations

import argparse

from phoneemu.cli import build_parser


def _sub(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found: argparse.ArgumentParser = action.choices[name]
            return found
    raise AssertionError(f"no sub-command {name}")


def _help_line(parser: argparse.ArgumentParser, name: str) -> str:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return next(str(a.help) for a in action._choices_actions if a.dest == name)
    raise AssertionError(f"no sub-command {name}")


def test_the_top_level_description_names_sip() -> None:
    description = build_parser().description or ""
    assert "SIP registration and calls" in description, description


def test_lab_says_its_servers_include_the_sip_registrar_and_how() -> None:
    parser = build_parser()
    lab = _sub(parser, "lab")
    assert "SIP registrar with --sip-port / --sips-port" in (lab.description or ""), lab.description
    assert "SIP with --sip-port" in _help_line(parser, "lab")
