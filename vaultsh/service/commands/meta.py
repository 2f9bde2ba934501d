"""Commands about the session itself: help, theme, exit."""

from __future__ import annotations

from argparse import Namespace

from vaultsh.service.commands.session import Session
from vaultsh.vault.errors import UsageError


def run_theme(session: Session, a: Namespace) -> int:
    hook = session.hooks.get("theme")
    if hook is None:
        raise UsageError("themes exist only in the full-screen interface")
    hook(a.name)
    return 0


def run_help(session: Session, a: Namespace) -> int:
    from vaultsh.service.commands.dispatch import COMMANDS, lookup

    io = session.io
    if a.command:
        cmd = lookup(a.command)
        if cmd is None:
            raise UsageError(f"{a.command}: unknown command")
        io.write(f"usage: {cmd.usage}")
        io.write(f"  {cmd.summary}")
        if cmd.aliases:
            io.write(f"  also: {', '.join(cmd.aliases)}")
        return 0
    # A usage too long for the column (recover lists every format flag) gets a line of its own.
    width = min(max(len(c.usage) for c in COMMANDS.values()), 40)
    for cmd in COMMANDS.values():
        if len(cmd.usage) > width:
            io.write(f"  {cmd.usage}")
            io.write(f"  {'':<{width}}  {cmd.summary}")
        else:
            io.write(f"  {cmd.usage:<{width}}  {cmd.summary}")
    return 0


def run_exit(session: Session, a: Namespace) -> int:
    session.finished = True
    hook = session.hooks.get("exit")
    if hook is not None:
        hook()
    return 0
