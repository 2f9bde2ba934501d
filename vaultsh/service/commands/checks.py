"""Integrity commands in a session: fsck and sync-conflict copies (see service/integrity.py)."""

from __future__ import annotations

import os
from argparse import Namespace
from pathlib import Path

from vaultsh.service import transfer
from vaultsh.service.commands.session import Session


def run_fsck(session: Session, a: Namespace) -> int:
    from vaultsh.service import integrity
    from vaultsh.vault import fsck

    path = session.resolve(a.path)
    progress = None
    if session.show_progress:
        total = fsck.measure(session.vault, path).objects
        step = max(1, total // 200)  # front-ends redraw per call: about 200 calls in all

        def progress(counts: fsck.Counts) -> None:
            if counts.objects % step == 0:
                session.io.progress(counts.objects, total)
                if session.io.cancelled():
                    raise transfer.Cancelled()

    return integrity.report_fsck(
        session.vault,
        path,
        session.io.write,
        session.io.error,
        as_json=a.json,
        quarantine=Path(os.path.expanduser(a.quarantine)) if a.quarantine else None,
        force_decode=a.force_decode,
        progress=progress,
    )


def run_conflicts(session: Session, a: Namespace) -> int:
    from vaultsh.service import integrity

    return integrity.report_conflicts(
        session.vault,
        session.resolve(a.path),
        session.io.write,
        session.io.error,
        adopt_all=a.adopt,
        export_to=Path(os.path.expanduser(a.export)) if a.export else None,
    )
