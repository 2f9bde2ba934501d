"""Copying commands: export out of and import into a vault, with progress and a summary."""

from __future__ import annotations

import os
from argparse import Namespace
from pathlib import Path

from vaultsh.service import transfer
from vaultsh.service.commands.session import Session, SessionIO, show
from vaultsh.vault.errors import (
    ExitCode,
)


def finish_transfer(session: Session, report: transfer.TransferReport, verb: str) -> int:
    io = session.io
    for path, why in report.skipped:
        io.error(f"warning: skipped {path}: {why}")
    for path, why in report.failed:
        io.error(f"{verb} failed for {path}: {why}")
    for path, block, why in report.damaged:
        io.error(f"warning: {show(path)}: block {block} is damaged, written as zeros ({why})")
    if report.failed or report.damaged:
        io.error(f"{len(report.failed)} entries failed, {report.files} files {verb}ed")
        return ExitCode.FSCK_ERRORS
    if not session.quiet:
        io.write(f"{verb}ed {report.files} files, {report.dirs} dirs, {human_bytes(report.bytes)}")
    return 0


class ProgressCounter:
    """Turns transfer's per-step byte counts into io.progress(done, total) calls."""

    def __init__(self, io: SessionIO, total: int) -> None:
        self.io = io
        self.total = total
        self.done = 0

    def set_total(self, total: int) -> None:
        self.total = total

    def __call__(self, n: int) -> None:
        self.done += n
        self.io.progress(self.done, self.total)


def export_path(session: Session, path: str, dest: str, *, force_decode: bool = False) -> int:
    """`export`: decrypt a vault file or tree to a local path (see transfer.export)."""
    vault = session.vault_for("export")
    plain = session.resolve(path)
    # The total comes from the walk export makes for its free-space check: no walk of our own.
    progress = ProgressCounter(session.io, 0) if session.show_progress else None
    report = transfer.export(
        vault,
        plain,
        os.path.expanduser(dest),
        progress=progress,
        cancelled=session.io.cancelled,
        processes=session.processes,
        force_decode=force_decode,
        on_total=progress.set_total if progress is not None else None,
    )
    return finish_transfer(session, report, "export")


def import_path(session: Session, src: str, path: str | None = None) -> int:
    """`import`: encrypt a local file or tree into the vault (default: the current directory)."""
    source = os.path.expanduser(src)
    plain = session.resolve(path if path is not None else "")
    progress = None
    if session.show_progress:
        progress = ProgressCounter(session.io, transfer.source_size(Path(source)))
    report = transfer.import_(
        session.vault_for("import"), source, plain, progress=progress, cancelled=session.io.cancelled
    )
    return finish_transfer(session, report, "import")


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


# -- the shell's handlers (arguments as vaultsh.service.registry declares them) -------------


def run_export(session: Session, a: Namespace) -> int:
    if session.tree.exports == "cipher":  # a reverse-mode folder: its encrypted view, a backup
        from vaultsh.service.commands.views import export_view

        return export_view(session, a.path, a.dest)
    return export_path(session, a.path, a.dest, force_decode=a.force_decode)


def run_import(session: Session, a: Namespace) -> int:
    return import_path(session, a.src, a.path)
