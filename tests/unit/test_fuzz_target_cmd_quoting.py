"""``--target-cmd`` without a shell: a quoted or escaped shell character is an argument, as in a shell;
only what a shell would read as an operator or redirection is refused (phoneemu.fuzz.targets,
:func:`command_argv`). And ``RLIMIT_CORE`` is given back however the fuzz loop's block ends."""

from __future__ import annotations

import resource
import shlex
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.errors import EncodeError
from phoneemu.fuzz import targets
from phoneemu.fuzz.targets import CommandTarget, command_argv, no_core_dumps


@pytest.mark.parametrize(("command", "argv"), [
    ("grep '|' {}", ["grep", "|", "{}"]),
    ("grep -e '>' {}", ["grep", "-e", ">", "{}"]),
    ("awk -F';' 1 {}", ["awk", "-F;", "1", "{}"]),
    ("grep -e 'a;' {}", ["grep", "-e", "a;", "{}"]),
    ("grep \\| {}", ["grep", "|", "{}"]),
    ('test ">=" {}', ["test", ">=", "{}"]),
    ("sh -c 'cat {}|head'", ["sh", "-c", "cat {}|head"]),
    ("sh -c '>/dev/null cat \"$0\"' {}", ["sh", "-c", '>/dev/null cat "$0"', "{}"]),
])
def test_a_quoted_shell_character_is_an_argument(command: str, argv: list[str]) -> None:
    """Was refused as shell syntax: the quotes were dropped (``shlex.split``) before the words were looked
    at, so ``grep '|' {}`` or the ``sh -c '...'`` the refusal itself advises could not be given."""
    assert command_argv(command) == (argv, False)


def test_a_quoted_less_than_is_an_argument_not_standard_input(tmp_path: Path) -> None:
    """``cat '<' {}``: ``<`` is cat's first argument (was taken as ``cat < {}``: the word dropped, the
    input fed on standard input)."""
    assert command_argv("cat '<' {}") == (["cat", "<", "{}"], False)
    target = CommandTarget("sh -c 'test \"$0\" = \"<\" && test -f \"$1\"' '<' {}", workdir=tmp_path / "w")
    try:
        assert not target.input_on_stdin and target.run(b"x").status == "ok"
    finally:
        target.close()


@pytest.mark.parametrize("command", ["grep | {}", "cat {} > x", "cat {}>x", "cat '{}'>x", "cat {} '|' ;",
                                     "cat < {} < {}", "cat {} 2>&1"])
def test_unquoted_shell_syntax_is_still_refused(command: str) -> None:
    with pytest.raises(EncodeError, match="is shell syntax, but the command runs without a shell"):
        command_argv(command)


def test_the_refusal_says_how_to_pass_such_a_word() -> None:
    with pytest.raises(EncodeError, match="quote it to mean it as one"):
        command_argv("grep | {}")


def test_a_folder_is_not_called_missing(tmp_path: Path) -> None:
    """Was ``no such file`` for a folder that is there."""
    with pytest.raises(EncodeError, match=f"{tmp_path}: a folder, not a program"):
        command_argv(f"{tmp_path} {{}}")


_WORDISH = st.text(alphabet=" \t'\"\\ab|<>;&{}2-=", max_size=24)


@settings(max_examples=400, deadline=None)
@given(_WORDISH)
def test_the_words_are_those_shlex_split_gives(command: str) -> None:
    """The quote-aware split (:func:`targets._shell_words`) gives the very words of ``shlex.split``."""
    try:
        expected = shlex.split(command)
    except ValueError:
        return
    assert [w for w, _ in targets._shell_words(command)] == expected


def test_the_core_limit_is_given_back_when_interrupted_as_it_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ctrl-C arriving as the limit is lowered (``setrlimit`` done, the block not yet entered) gives it
    back too (was: set before the ``try``: the process went on with no core dumps)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    if hard == 0:
        pytest.skip("core dumps are not allowed here at all")
    allowed = hard if hard != resource.RLIM_INFINITY else 1 << 30
    real = resource.setrlimit
    resource.setrlimit(resource.RLIMIT_CORE, (allowed, hard))
    calls = []

    def set_then_interrupt(which: int, limits: tuple[int, int]) -> None:
        real(which, limits)
        calls.append(limits)
        if len(calls) == 1:
            raise KeyboardInterrupt

    try:
        monkeypatch.setattr(resource, "setrlimit", set_then_interrupt)
        with pytest.raises(KeyboardInterrupt), no_core_dumps():
            pytest.fail("the block is not entered")  # pragma: no cover
        monkeypatch.undo()
        assert resource.getrlimit(resource.RLIMIT_CORE) == (allowed, hard)
    finally:
        monkeypatch.undo()
        real(resource.RLIMIT_CORE, (soft, hard))
