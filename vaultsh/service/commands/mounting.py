"""Mount commands: mount, unmount, mounts and the mounts table."""

from __future__ import annotations

import os
import time
from argparse import Namespace
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from vaultsh.service.commands.session import Session
from vaultsh.service.commands.transfers import human_bytes
from vaultsh.vault.errors import (
    UsageError,
)

if TYPE_CHECKING:
    from vaultsh.service.mounts import MountInfo


def mounts_lines() -> list[str]:
    """What `mounts` prints: the table, or a line saying there is none."""
    from vaultsh.service import mounts  # loaded only when mounts are asked about

    infos = mounts.list_mounts()
    return mount_table(infos) if infos else ["no mounts"]


def human_duration(seconds: float) -> str:
    s = max(0, int(seconds))
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{s:02d}s" if minutes else f"{s}s"


def mount_table(infos: Iterable[MountInfo], now: float | None = None) -> list[str]:
    """The `mounts` table: one line per mount, stale ones (worker gone) marked."""
    now = time.time() if now is None else now
    header = (
        "SOURCE", "MOUNTPOINT", "MODE", "RO/RW", "PID", "UPTIME", "OPEN", "READ", "WRITTEN", "ERR", "STATE"
    )  # fmt: skip
    rows: list[tuple[str, ...]] = [header]
    for info in infos:
        stats = info.stats
        alive = info.alive
        rows.append(
            (
                info.source,
                info.mountpoint,
                info.mode,
                "ro" if info.read_only else "rw",
                str(info.pid or "-"),
                human_duration(now - info.started) if alive else "-",
                str(stats.get("open_files", 0)),
                human_bytes(stats.get("bytes_read", 0)),
                human_bytes(stats.get("bytes_written", 0)),
                str(stats.get("errors", 0)),
                "live" if alive else "stale",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]


# -- the shell's handlers (arguments as vaultsh.service.registry declares them) -------------


def run_mount(session: Session, a: Namespace) -> int:
    from vaultsh.service import mounts  # loaded only when mounts are asked about

    idle = mounts.parse_duration(a.idle) if a.idle is not None else None
    request = mounts.MountRequest(
        source=session.cipherdir,
        mountpoint=Path(os.path.expanduser(a.mountpoint)).absolute(),
        reverse=session.reverse is not None,  # which view the worker serves
        read_only=a.ro or not session.tree.writable,  # a reverse view is always read-only (§9.1)
        idle=idle,
        config=session.config_path,
        # A vault unlocked by master key without a config: the worker needs its format flags.
        options=session.options if session.conf is None else None,
        key_proven=not session.by_master_key,
    )
    info = mounts.mount(request, session.master_key)
    session.io.write(f"mounted {info.source} at {info.mountpoint} (pid {info.pid})")
    return 0


def run_unmount(session: Session, a: Namespace) -> int:
    from vaultsh.service import mounts  # loaded only when mounts are asked about

    if a.mountpoint:
        target = Path(os.path.expanduser(a.mountpoint)).absolute()
    else:
        mine = mounts.find_mount(session.cipherdir)
        if mine is None:
            raise UsageError(f"{session.cipherdir} is not mounted; name the mountpoint")
        target = Path(mine.mountpoint)
    mounts.unmount(target)
    session.io.write(f"unmounted {target}")
    return 0


def run_mounts(session: Session, a: Namespace) -> int:
    for line in mounts_lines():
        session.io.write(line)
    return 0
