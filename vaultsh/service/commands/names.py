"""Name translation commands: decrypt-path and encrypt-path."""

from __future__ import annotations

import contextlib
import os
from argparse import Namespace
from collections.abc import Iterable
from pathlib import Path

from vaultsh.service.commands.session import Session
from vaultsh.service.registry import REGISTRY
from vaultsh.vault.display import quote_name
from vaultsh.vault.errors import (
    ExitCode,
    UsageError,
    VaultError,
)


def decrypt_paths(session: Session, paths: Iterable[str], *, exact: bool = False) -> int:
    """Plain path of each cipher path (relative to the cipher dir, or absolute inside it).

    Paths are written as `quote_name` shows them, or with `exact` as they are (for an IO
    that writes them NUL-separated).
    """
    shown = _as_is if exact else quote_name
    status = 0
    root = session.tree.root.resolve()
    for p in paths:
        rel = p
        if os.path.isabs(p):
            # A full path into the cipher dir (pasted from `find`, say) is taken as such.
            with contextlib.suppress(ValueError, OSError):
                rel = Path(p).resolve().relative_to(root).as_posix()
        try:
            session.io.write(shown(session.tree.decrypt_path(rel)))
        except VaultError as e:
            session.io.error(_failed(p, e))
            status = ExitCode.USAGE
    return status


def _as_is(path: str) -> str:
    return path


def _failed(path: str, e: VaultError) -> str:
    """`path: why` it did not translate, the path said once (most reasons start with it)."""
    reason = str(e)
    for said in (path, f"'{path}'", "/" + path.lstrip("/")):
        if reason.startswith(said + ": "):
            return f"{path}: {reason[len(said) + 2 :]}"
    return f"{path}: {reason}"


def encrypt_paths(session: Session, paths: Iterable[str], *, exact: bool = False) -> int:
    """Cipher path (relative to the cipher dir) of each plain path; `exact` as in decrypt_paths.

    Cipher names are base64, but a plaintextnames vault stores plain names as they are.
    """
    shown = _as_is if exact else quote_name
    status = 0
    for p in paths:
        try:
            session.io.write(shown(session.tree.encrypt_path(session.resolve(p))))
        except VaultError as e:
            session.io.error(_failed(p, e))
            status = ExitCode.USAGE
    return status


# -- the shell's handlers (arguments as vaultsh.service.registry declares them) -------------


def _named_paths(command: str, a: Namespace) -> list[str]:
    """The paths typed; the shell has no standard input to read them from instead."""
    if not a.paths:
        raise UsageError(f"usage: {REGISTRY[command].usage}")
    return list(a.paths)


def run_decrypt_path(session: Session, a: Namespace) -> int:
    return decrypt_paths(session, _named_paths("decrypt-path", a))


def run_encrypt_path(session: Session, a: Namespace) -> int:
    return encrypt_paths(session, _named_paths("encrypt-path", a))
