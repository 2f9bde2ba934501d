"""Tab completion of command names, decrypted vault paths and local paths."""

from __future__ import annotations

import os

from vaultsh.service.commands.dispatch import command_names, commands_here, lookup
from vaultsh.service.commands.session import Session
from vaultsh.service.commands.words import _scan
from vaultsh.service.registry import Command
from vaultsh.vault.display import quote_name
from vaultsh.vault.errors import (
    VaultError,
)


def _quote(path: str) -> str:
    # Shell-quoted as `ls` shows it: a name with control characters goes in as $'...', so
    # the typed line never holds them raw; split_line reads it back exactly.
    return quote_name(path, shell=True) if path else path


def _complete_plain(session: Session, prefix: str, dirs_only: bool) -> list[str]:
    head = prefix[: prefix.rfind("/") + 1]
    stem = prefix[len(head) :]
    try:
        tree = session.tree
        d = tree.node(session.resolve(head))
        found = tree.children(d) if d.kind == "dir" else []
        entries = [(e.name, e.kind == "dir") for e in found]
    except (VaultError, OSError):
        return []
    out = []
    for name, is_dir in sorted(entries):
        if not name.startswith(stem) or (dirs_only and not is_dir):
            continue
        if name.startswith(".") and not stem.startswith("."):
            continue
        out.append(head + name + ("/" if is_dir else ""))
    return out


def _complete_local(prefix: str, dirs_only: bool = False) -> list[str]:
    head = prefix[: prefix.rfind("/") + 1]
    stem = prefix[len(head) :]
    where = os.path.expanduser(head) if head else "."
    try:
        with os.scandir(where) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return []
    out = []
    for e in entries:
        if not e.name.startswith(stem) or (e.name.startswith(".") and not stem.startswith(".")):
            continue
        try:
            is_dir = e.is_dir()
        except OSError:
            is_dir = False
        if dirs_only and not is_dir:
            continue
        out.append(head + e.name + ("/" if is_dir else ""))
    return out


def _position(cmd: Command, words: list[str]) -> int:
    """Which positional argument the next word is: options, and the values they take, do not count."""
    valued = {n for a in cmd.options if a.value is not None for n in a.names}
    position = 0
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word.startswith("-"):
            skip = word in valued
        else:
            position += 1
    return position


def complete(session: Session, text_before_cursor: str) -> list[str]:
    """Candidates for the word under the cursor: command names (of the commands that apply to
    the session's folder), or decrypted / local paths.

    Each candidate is quoted as `run_line` would read it and replaces `current_word(text)`:
    the completed line is `text[: len(text) - len(current_word(text))] + candidate`.
    Directories end in '/', so completing again descends into them.
    """
    words, _raw, prefix = _scan(text_before_cursor)
    if not words:
        return [n for n in command_names(session) if n.startswith(prefix) and n != "?"]
    cmd = lookup(words[0])
    if cmd is None or (prefix.startswith("-") and not cmd.dashed_paths):
        return []
    position = _position(cmd, words[1:])
    kind = cmd.completion_kind(position)
    if kind == "command":
        return [n for n in sorted(commands_here(session)) if n.startswith(prefix)]
    if kind in ("plain-path", "plain-dir"):
        found = _complete_plain(session, prefix, dirs_only=kind == "plain-dir")
    elif kind == "local-path":
        found = _complete_local(prefix)
    else:
        return []
    return [_quote(p) for p in found]
