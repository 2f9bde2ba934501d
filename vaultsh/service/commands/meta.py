"""Commands about the session itself: help, theme, exit."""

from __future__ import annotations

from argparse import Namespace

from vaultsh.service.commands.session import Session
from vaultsh.service.registry import Arg, why_not_here
from vaultsh.vault.errors import UsageError


def run_theme(session: Session, a: Namespace) -> int:
    hook = session.hooks.get("theme")
    if hook is None:
        raise UsageError("themes exist only in the full-screen interface")
    hook(a.name)
    return 0


def run_help(session: Session, a: Namespace) -> int:
    """`help`: the commands that apply to the open folder; `help CMD`: one of them explained,
    or, for a command the folder cannot run, one line saying why."""
    from vaultsh.service.commands.dispatch import commands_here, lookup

    io = session.io
    if a.command:
        cmd = lookup(a.command)
        if cmd is None:
            raise UsageError(f"{a.command}: unknown command")
        refused = why_not_here(cmd, session.tree)
        if refused is not None:
            io.write(f"{cmd.name}: does not apply here: {refused}")
            return 0
        io.write(f"usage: {cmd.usage}")
        io.write(f"  {cmd.summary}")
        if cmd.aliases:
            io.write(f"  also: {', '.join(cmd.aliases)}")
        described = [(_arg_label(arg), arg.help) for arg in cmd.args if arg.help]
        width = max((len(label) for label, _ in described), default=0)
        for label, text in described:
            io.write(f"  {label:<{width}}  {text}")
        return 0
    # A usage too long for the column (recover lists every format flag) gets a line of its own.
    here = commands_here(session)
    width = min(max(len(c.usage) for c in here.values()), 40)
    for cmd in here.values():
        if len(cmd.usage) > width:
            io.write(f"  {cmd.usage}")
            io.write(f"  {'':<{width}}  {cmd.summary}")
        else:
            io.write(f"  {cmd.usage:<{width}}  {cmd.summary}")
    return 0


def _arg_label(arg: Arg) -> str:
    """How `help` names an argument: its option strings (with the value's name), or its name."""
    if arg.positional:
        return arg.metavar or arg.dest.upper()
    names = ", ".join(arg.names)
    return f"{names} {arg.metavar}" if arg.value is not None else names


def run_exit(session: Session, a: Namespace) -> int:
    session.finished = True
    hook = session.hooks.get("exit")
    if hook is not None:
        hook()
    return 0
