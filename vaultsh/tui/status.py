"""The status bar: the vault, its format, whether it is unlocked and mounted, fitted to one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual.widgets import Static

from vaultsh.service import commands
from vaultsh.tui import palette
from vaultsh.tui.safety import cut_middle
from vaultsh.vault.display import safe_text

STATUS_PATH_CELLS = 40  # the vault path in the status bar leaves room for the rest


def shorten_path(path: str, width: int) -> str:
    """A local path (home as ~) cut in the middle to `width` cells, keeping its last part."""
    home = str(Path.home())
    if path.startswith(home + "/"):
        path = "~" + path[len(home) :]
    return cut_middle(path, width)


class StatusBar(Static):
    """One line under the command line; `show` fits what it says to the width it has."""

    def show(self, label: str, session: commands.Session | None, mount_info: Any, *, busy: bool) -> None:
        """`label`: the vault's path as shown; `mount_info`: mounts.MountInfo or None. The mount's
        counters go first, then path lengths, then the format flags (`info` shows them all)."""
        width = self.content_region.width or self.app.size.width
        short = STATUS_PATH_CELLS // 2
        fallbacks: list[tuple[int, int | None, bool, bool]] = [
            # (vault path cells, mountpoint cells, mount counters, format flags): the live
            # counters outlast the format flags, which `info` shows anyway.
            (STATUS_PATH_CELLS, None, True, True),
            (STATUS_PATH_CELLS, None, True, False),
            (short, short, True, False),
            (STATUS_PATH_CELLS, STATUS_PATH_CELLS, False, True),
            (short, short, False, True),
            (short, short, False, False),
        ]
        for vault_cells, mount_cells, counters, flags in fallbacks:
            line = status_line(
                label,
                session,
                mount_info,
                busy,
                vault_cells,
                mount_cells,
                counters=counters,
                flags=flags,
            )
            if line.cell_len <= width:
                break
        self.update(line)


def status_line(
    label: str,
    session: commands.Session | None,
    info: Any,
    busy: bool,
    vault_cells: int,
    mount_cells: int | None,
    *,
    counters: bool,
    flags: bool,
) -> Text:
    """The status line with the vault path in `vault_cells` and the mountpoint in `mount_cells`
    (None: whole), with or without the mount's counters and the format flags."""
    parts: list[Text | str] = [Text(shorten_path(label, vault_cells), style="bold")]
    if session is not None and session.tree.status_note:
        parts.append(Text(session.tree.status_note, style="bold"))
    if session is not None:
        o = session.options
        names = (
            "plaintext names"
            if o.plaintext_names
            else ("deterministic names" if o.deterministic_names else "EME names")
        )
        shown = [o.content_encryption, names]
        if not o.plaintext_names:
            shown.append("raw64" if o.raw64 else "base64")
        if session.conf is not None:
            shown.append(f"scrypt 2^{session.conf.scrypt.logn}")
        if flags:
            parts.append(" · ".join(shown))
        parts.append(Text("unlocked", style=palette.style("success", bold=True)))
    else:
        parts.append("locked")
    if info is None:
        parts.append("not mounted")
    elif not info.alive:
        parts.append(
            Text("mount stale: worker gone — press u to clear", style=palette.style("error", bold=True))
        )
    else:
        mountpoint = safe_text(info.mountpoint)
        where = mountpoint if mount_cells is None else shorten_path(mountpoint, mount_cells)
        mount = f"mounted {info.mode} {'ro' if info.read_only else 'rw'} at {where}"
        stats = info.stats
        if stats and counters:
            mount += (  # compact: they fit beside the paths on a 120-column terminal
                f" · {int(stats.get('open_files', 0))} open"
                f" · read {commands.human_bytes(float(stats.get('bytes_read', 0)))}"
                f" · wrote {commands.human_bytes(float(stats.get('bytes_written', 0)))}"
                f" · {int(stats.get('errors', 0))} err"
            )
        parts.append(Text(mount, style="bold"))
    if busy:
        parts.append(Text("working…", style="italic"))
    return Text(" │ ").join(Text(p) if isinstance(p, str) else p for p in parts)
