"""Which processes hold a mount busy, read from /proc as `fuser -m` finds them."""

from __future__ import annotations

import os
from pathlib import Path

# Per-process links that pin a mount: working directory, root, program, open files.
_LINKS = ("cwd", "root", "exe")


def _inside(target: str, mountpoint: str) -> bool:
    return target == mountpoint or target.startswith(mountpoint.rstrip("/") + "/")


def _holds(proc: Path, mountpoint: str) -> bool:
    # Only readlink on /proc: nothing below the (maybe hanging) mount itself is touched.
    for name in _LINKS:
        try:
            if _inside(os.readlink(proc / name), mountpoint):
                return True
        except OSError:
            continue
    try:
        fds = os.listdir(proc / "fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if _inside(os.readlink(proc / "fd" / fd), mountpoint):
                return True
        except OSError:
            continue
    return False


def processes_using(mountpoint: Path, skip: set[int] | None = None) -> list[tuple[int, str]]:
    """(pid, command name) of each process with a file, directory or program under `mountpoint`
    (processes of other users are seen only as far as /proc lets this one look)."""
    where = str(mountpoint)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in (skip or set()):
            continue
        proc = Path("/proc") / entry
        if _holds(proc, where):
            try:
                name = (proc / "comm").read_text().strip()
            except OSError:
                name = "?"
            found.append((int(entry), name))
    return sorted(found)


def busy_detail(mountpoint: Path, skip: set[int] | None = None) -> str:
    """ "; in use by 123 (bash), 456 (less)" for an error message, or "" if no holder is seen."""
    holders = processes_using(mountpoint, skip)
    if not holders:
        return ""
    return "; in use by " + ", ".join(f"{pid} ({name})" for pid, name in holders)
