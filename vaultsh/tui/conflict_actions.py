"""Acting on a sync tool's conflict copy in the cipher pane: export, adopt, delete, compare."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat as stat_mod
from collections.abc import Callable
from pathlib import Path

from rich.table import Table
from rich.text import Text

from vaultsh.service import commands, integrity
from vaultsh.tui import palette
from vaultsh.tui.selection import Task
from vaultsh.vault.display import quote_name, safe_text


def export_task(plain_dir: str, copy_name: str, dest: str) -> Task:
    """Decrypt the copy into the local directory `dest` (below its plain directory there)."""

    def task(session: commands.Session) -> int:
        copy = integrity.conflict_copy(session.vault_for("conflicts"), plain_dir, copy_name)
        root = Path(os.path.expanduser(dest))
        target = integrity.export_copy(session.vault_for("conflicts"), copy, root)
        session.io.write(safe_text(f"exported the copy {quote_name(copy_name)} as {target}"))
        return 0

    return task


def adopt_task(plain_dir: str, copy_name: str, adopted: Callable[[str], None]) -> Task:
    """Give the copy a plain name next to its original; `adopted` gets that name."""

    def task(session: commands.Session) -> int:
        copy = integrity.conflict_copy(session.vault_for("conflicts"), plain_dir, copy_name)
        new = integrity.adopt(session.vault_for("conflicts"), copy)
        name = new.rpartition("/")[2]
        adopted(name)
        session.io.write(safe_text(f"adopted the copy {quote_name(copy_name)} as /{new}"))
        return 0

    return task


def delete_task(plain_dir: str, copy_name: str) -> Task:
    """Remove the copy from disk (a directory with everything in it; symlinks are not followed)."""

    def task(session: commands.Session) -> int:
        copy = integrity.conflict_copy(session.vault_for("conflicts"), plain_dir, copy_name)
        path = copy.cipher_path
        if stat_mod.S_ISDIR(os.lstat(path).st_mode):
            shutil.rmtree(path)  # removes symlinks inside, never what they point to
        else:
            os.unlink(path)
        session.io.write(safe_text(f"deleted the conflict copy {quote_name(copy_name)}"))
        return 0

    return task


def _when(mtime: float | None) -> str:
    if mtime is None:
        return "?"
    return dt.datetime.fromtimestamp(mtime).strftime("%Y-%m-%d %H:%M:%S")


def compare_view(copy: integrity.ConflictCopy, sides: tuple[integrity.Side, integrity.Side]) -> Table:
    """Both sides of a conflict next to each other; every name as plain text, never markup."""
    if copy.problem:
        verdict = Text(
            safe_text(f"the copy does not decrypt: {copy.problem}"), style=palette.style("error", bold=True)
        )
    elif copy.original_problem:
        verdict = Text(
            safe_text(f"the original does not decrypt: {copy.original_problem}"),
            style=palette.style("error", bold=True),
        )
    elif copy.differs is None:
        verdict = Text("a directory: not compared (adopt it, then look at both)")
    elif copy.differs:
        verdict = Text("the decrypted contents differ", style=palette.style("warning", bold=True))
    else:
        verdict = Text("same decrypted content as the original", style=palette.style("success"))
    table = Table(box=None, show_header=True, pad_edge=False, expand=True)
    table.add_column("", style="bold", no_wrap=True)
    for side in sides:
        table.add_column(Text(side.label), overflow="fold")
    table.add_row(Text("Name"), Text(quote_name(f"/{copy.original_plain}")), Text(quote_name(copy.copy_name)))
    table.add_row(Text("Tool"), Text(safe_text(copy.origin.tool)), Text(""))
    table.add_row(
        Text("Size"),
        *(Text("?" if s.size is None else f"{s.size:,} bytes") for s in sides),
    )
    table.add_row(Text("Modified"), *(Text(_when(s.mtime)) for s in sides))
    table.add_row(Text("Contents"), verdict, Text(""))
    heads = []
    for s in sides:
        if s.problem:
            heads.append(Text(safe_text(s.problem), style=palette.style("error")))
        elif s.head is None:
            heads.append(Text("(not text)" if s.kind == "file" else f"({s.kind})"))
        else:
            heads.append(Text("\n".join(safe_text(line) for line in s.head)))
    table.add_row(Text("Starts"), *heads)
    return table
