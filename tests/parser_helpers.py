"""One command-line parser for a test module that calls :func:`phoneemu.cli.main` hundreds of times.

``main`` builds its whole parser on each call (every command's options: about 15 ms, most of a call that
inspects a small file). A module that asks for :func:`one_parser` has ``main`` parse with one parser, built
once for the module: argparse keeps nothing between two parses, and what the commands register reads no
environment, folder or clock (their handlers do, when they run)::

    one_parser = parser_helpers.one_parser()  # autouse: every test of the module
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def one_parser() -> Callable[..., Iterator[None]]:
    """A module-scoped autouse fixture: ``phoneemu.cli.build_parser`` gives one parser, built once."""
    @pytest.fixture(scope="module", autouse=True)
    def parser_built_once() -> Iterator[None]:
        from phoneemu import cli

        parser = cli.build_parser()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(cli, "build_parser", lambda only=None: parser)
            yield
    return parser_built_once


def usage_error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """The last line of the usage error ``argv`` makes (``phoneemu.cli.main``: exit 2, no traceback)."""
    from phoneemu.cli import main

    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return err.rstrip().splitlines()[-1]


def fake_lab_folder(tmp_path: Path) -> Path:
    """``tmp_path/lab``: a folder that is a lab cluster to a command-line hint (its state file, ``{}``; the
    hint opens nothing)."""
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "cluster.json").write_text("{}")
    return lab
