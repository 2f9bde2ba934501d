"""Integrity commands in a session: fsck and sync-conflict copies (see service/integrity.py)."""

from __future__ import annotations

import os
from argparse import Namespace
from pathlib import Path

from vaultsh.service import transfer
from vaultsh.service.commands.session import Session
from vaultsh.service.registry import no_cipher_files_reason
from vaultsh.vault.errors import UsageError
from vaultsh.vault.vault import Vault


def cipher_files(session: Session, command: str) -> Vault:
    """The session's vault, for a command that examines its cipher files; UsageError on a
    reverse-mode folder, whose encrypted view is made from its plain files, not stored."""
    if not session.tree.cipher_files:
        raise UsageError(f"{command}: {no_cipher_files_reason(session.cipherdir)}")
    return session.vault_for(command)


def run_fsck(session: Session, a: Namespace) -> int:
    from vaultsh.service import integrity
    from vaultsh.vault import fsck

    vault = cipher_files(session, "fsck")
    path = session.resolve(a.path)
    progress = None
    if session.show_progress:
        total = fsck.measure(vault, path).objects
        step = max(1, total // 200)  # front-ends redraw per call: about 200 calls in all

        def progress(counts: fsck.Counts) -> None:
            if counts.objects % step == 0:
                session.io.progress(counts.objects, total)
                if session.io.cancelled():
                    raise transfer.Cancelled()

    return integrity.report_fsck(
        vault,
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
        cipher_files(session, "conflicts"),
        session.resolve(a.path),
        session.io.write,
        session.io.error,
        adopt_all=a.adopt,
        export_to=Path(os.path.expanduser(a.export)) if a.export else None,
    )
