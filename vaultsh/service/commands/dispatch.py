"""The shell's side of the registry: its commands by name and alias, and running a typed line."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import cast

from vaultsh.service import transfer
from vaultsh.service.commands.session import Session
from vaultsh.service.commands.words import split_line
from vaultsh.service.registry import SHELL, Command, applicable, for_front, why_not_here
from vaultsh.vault.errors import ExitCode, VaultError

# The commands the shell and the TUI's command line have (the CLI has some more, see
# vaultsh.service.registry), in the order `help` lists them.
COMMANDS: dict[str, Command] = for_front(SHELL)

_ALIASES = {alias: c for c in COMMANDS.values() for alias in c.aliases}

# Commands whose lines are never written to a shell history (they deal in secrets).
SECRET_COMMANDS = frozenset(name for name, c in COMMANDS.items() if c.secret)

Handler = Callable[[Session, object], int]


def handler_of(cmd: Command) -> Handler:
    """The function that runs `cmd` in a session (its module is loaded on first use)."""
    module, _, name = cmd.handler.partition(":")
    return cast(Handler, getattr(importlib.import_module(f"vaultsh.service.commands.{module}"), name))


def run_words(session: Session, cmd: Command, words: list[str]) -> int:
    """Run a command on its argument words; UsageError when they do not fit its declaration."""
    return handler_of(cmd)(session, cmd.parse(words))


def lookup(name: str) -> Command | None:
    return COMMANDS.get(name) or _ALIASES.get(name)


def commands_here(session: Session) -> dict[str, Command]:
    """The commands that apply to the session's folder, in the order `help` lists them."""
    return applicable(COMMANDS, session.tree)


def command_names(session: Session | None = None) -> list[str]:
    """Every command name and alias; with a session, those of the commands that apply to its folder."""
    here = COMMANDS if session is None else commands_here(session)
    return sorted([*here, *(alias for alias, c in _ALIASES.items() if c.name in here)])


def run_line(session: Session, line: str) -> int:
    """Run one typed line; every failure is one line through io.error and its exit code."""
    io = session.io
    try:
        argv = split_line(line)
    except ValueError as e:
        io.error(f"cannot parse the line: {e}")
        return ExitCode.USAGE
    if not argv:
        return 0
    cmd = lookup(argv[0])
    if cmd is None:
        io.error(f"{argv[0]}: unknown command (help lists them)")
        return ExitCode.USAGE
    refused = why_not_here(cmd, session.tree)
    if refused is not None:  # needs what the open folder lacks (a reverse-mode folder's)
        io.error(f"{cmd.name}: {refused}")
        return ExitCode.USAGE
    try:
        return run_words(session, cmd, argv[1:])
    except VaultError as e:
        io.error(str(e))
        return int(e.exit_code)
    except transfer.Cancelled:
        io.error("cancelled")
        return ExitCode.SIGINT
    except KeyboardInterrupt:
        io.error("interrupted")
        return ExitCode.SIGINT
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        io.error(f"{where}{e.strerror or e}")
        return ExitCode.OTHER


def keeps_history(line: str) -> bool:
    """Whether a typed line may be stored in a shell history (no secret-handling commands)."""
    try:
        words = split_line(line)
    except ValueError:
        words = line.split()
    if not words:
        return False
    cmd = lookup(words[0])
    return cmd is None or cmd.name not in SECRET_COMMANDS
