"""The CLI and the shell accept the same arguments for every command they share (one declaration)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from vault_factory import NewVault

from vaultsh import cli
from vaultsh.service import registry
from vaultsh.service.commands import COMMANDS, Session, run_line
from vaultsh.service.commands.dispatch import handler_of
from vaultsh.vault.errors import UsageError

SHARED = [c for c in registry.REGISTRY.values() if c.fronts == registry.BOTH]
PASSWORD = b"registry test"


class _Lines:
    """A SessionIO keeping what a command writes."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.errors: list[str] = []

    def write(self, text: str) -> None:
        self.out.append(text)

    def error(self, text: str) -> None:
        self.errors.append(text)

    def ask_secret(self, prompt: str) -> bytes:
        raise AssertionError(f"no secret is asked for: {prompt}")

    def confirm(self, question: str) -> bool:
        return False

    def progress(self, done: int, total: int) -> None:
        pass

    def cancelled(self) -> bool:
        return False


def _subparser(name: str) -> argparse.ArgumentParser:
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parser = sub.choices[name]
    assert isinstance(parser, argparse.ArgumentParser)
    return parser


def _front_end_dests(cmd: registry.Command) -> set[str]:
    """What the CLI adds to a command's own arguments: opening the vault, one-shot options."""
    around = [*registry.PASSWORD_ARGS, *registry.MASTERKEY_ARGS, *cmd.cli_args]
    if cmd.cli_vault == "open":
        around += registry.FORMAT_ARGS
    return {a.dest for a in around} | {"cipherdir", "help"}


def _shape(action: argparse.Action) -> tuple[tuple[str, ...], object, object]:
    return tuple(action.option_strings) or (action.dest,), action.nargs, action.metavar


def _arg_shape(arg: registry.Arg) -> tuple[tuple[str, ...], object, object]:
    if arg.positional:
        return (arg.dest,), arg.nargs, arg.metavar
    return arg.names, 0 if arg.value is None else None, arg.metavar


@pytest.mark.parametrize("cmd", SHARED, ids=lambda c: c.name)
def test_cli_and_shell_declare_the_same_arguments(cmd: registry.Command) -> None:
    cli_side = {_shape(a) for a in _subparser(cmd.cli_name)._actions if a.dest not in _front_end_dests(cmd)}
    shell_side = {_arg_shape(a) for a in COMMANDS[cmd.name].args}
    assert cli_side == shell_side


def _sample_words(cmd: registry.Command, option: registry.Arg | None) -> list[str]:
    """An option (with a value) and words for every positional argument."""
    words = [] if option is None else [option.names[-1], *(["7"] if option.value is not None else [])]
    for i, arg in enumerate(cmd.positionals):
        words += [f"p{i}a", f"p{i}b"] if arg.nargs in ("*", "+") else [f"p{i}"]
    return words


def _cli_words(cmd: registry.Command, words: list[str]) -> list[str]:
    """The same words for the CLI: CIPHERDIR goes in among the positionals."""
    count = sum(2 if a.nargs in ("*", "+") else 1 for a in cmd.positionals)
    options, places = words[: len(words) - count], words[len(words) - count :]
    before = sum(2 if a.nargs in ("*", "+") else 1 for a in cmd.positionals[: cmd.cipherdir_at])
    if cmd.cli_vault:
        places.insert(before, "CIPHER")
    return [cmd.cli_name, *options, *places]


@pytest.mark.parametrize("cmd", SHARED, ids=lambda c: c.name)
def test_the_same_words_parse_to_the_same_values(cmd: registry.Command) -> None:
    parser = cli.build_parser()
    for option in [None, *cmd.options]:
        words = _sample_words(cmd, option)
        shell = COMMANDS[cmd.name].parse(words)
        got = parser.parse_args(_cli_words(cmd, words))
        assert vars(shell) == {k: getattr(got, k) for k in vars(shell)}, words


@pytest.mark.parametrize("cmd", [c for c in SHARED if not c.dashed_paths], ids=lambda c: c.name)
def test_both_refuse_an_unknown_option(cmd: registry.Command, capsys: pytest.CaptureFixture[str]) -> None:
    words = ["--frobnicate", *_sample_words(cmd, None)]
    with pytest.raises(UsageError, match="unknown option --frobnicate"):
        COMMANDS[cmd.name].parse(words)
    with pytest.raises(SystemExit) as exited:
        cli.build_parser().parse_args(_cli_words(cmd, words))
    assert exited.value.code == 1
    assert "unrecognized arguments: --frobnicate" in capsys.readouterr().err


@pytest.mark.parametrize("cmd", [c for c in SHARED if c.dashed_paths], ids=lambda c: c.name)
def test_dashed_words_are_paths_once_the_vault_is_named(cmd: registry.Command) -> None:
    """Cipher names may start with '-': the shell (its vault open) and the CLI after CIPHERDIR
    take such a word as a path; before CIPHERDIR the CLI still refuses an unknown option."""
    words = ["-h1", "--frobnicate", "-0x", "p"]
    assert COMMANDS[cmd.name].parse(words).paths == words
    cli_args = cli._parse_path_command(cli.build_parser(), [cmd.cli_name, "CIPHER", *words])
    assert cli_args.paths == words and not cli_args.null
    with pytest.raises(SystemExit):
        cli._parse_path_command(cli.build_parser(), [cmd.cli_name, "--frobnicate", "CIPHER", "p"])


def _usage_words(line: str) -> list[str]:
    return re.findall(r"\[[^\]]*\]|\S+", line)


@pytest.fixture
def session(tmp_path: Path, new_vault: NewVault) -> Session:
    return Session(new_vault(tmp_path, PASSWORD), tmp_path, _Lines())


@pytest.mark.parametrize("cmd", SHARED, ids=lambda c: c.name)
def test_cli_help_and_shell_help_show_the_same_usage(
    cmd: registry.Command, session: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([cmd.cli_name, "--help"])
    assert exited.value.code == 0
    cli_line = capsys.readouterr().out.splitlines()[0]
    assert run_line(session, f"help {cmd.name}") == 0
    assert isinstance(session.io, _Lines)
    shell_line = session.io.out[0]
    # The CLI's usage is the shell's plus what only the CLI has: how it reaches the vault
    # (CIPHERDIR, password and format options) and its one-shot options.
    own = {a.usage() for a in cmd.cli_args} | set(registry.vault_usage(cmd.cli_vault)) | {"CIPHERDIR"}
    cli_words = [w for w in _usage_words(cli_line) if w not in own]
    shell_words = _usage_words(shell_line)
    assert cli_words[:3] == ["usage:", "vaultsh", cmd.cli_name] and shell_words[:2] == ["usage:", cmd.name]
    assert cli_words[3:] == shell_words[2:], (cli_line, shell_line)


def test_every_command_is_declared_for_the_front_ends_that_run_it() -> None:
    cli_names = {n for c in registry.for_front(registry.CLI).values() for n in (c.cli_names or (c.name,))}
    assert set(cli.COMMANDS) == cli_names
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == cli_names
    assert set(COMMANDS) == set(registry.for_front(registry.SHELL))
    for cmd in registry.REGISTRY.values():
        assert bool(cmd.handler) == (registry.SHELL in cmd.fronts), cmd.name
        if cmd.handler:  # "module:function", resolved only when the shell first runs it
            assert callable(handler_of(cmd)), cmd.handler
    assert {"init", "shell", "new", "demo"} == {
        c.name for c in registry.REGISTRY.values() if c.fronts == {"cli"}
    }
    assert {"cd", "pwd", "theme", "help", "exit"} == {
        c.name for c in registry.REGISTRY.values() if c.fronts == {"shell"}
    }
