"""Commands that change a vault's tree: mkdir, mv, rm."""

from __future__ import annotations

import errno
import stat as stat_mod
from argparse import Namespace
from collections.abc import Iterable

from vaultsh.service import transfer
from vaultsh.service.commands.session import Chooser, Session, show
from vaultsh.vault.errors import (
    FsError,
)
from vaultsh.vault.vault import Vault


def remove_path(session: Session, path: str, *, recursive: bool = False) -> int:
    """`rm`: a file or symlink, or with `recursive` a whole directory tree."""
    vault = session.vault_for("rm")
    plain = session.resolve(path)
    if not plain:
        raise FsError(errno.EBUSY, "/: cannot remove the vault root")
    st = vault.stat(plain)
    if not stat_mod.S_ISDIR(st.mode):
        vault.unlink(plain)
        return 0
    if not recursive:
        raise FsError(errno.EISDIR, f"{show(plain)}: is a directory (rm -r removes it)")
    # Children first; the walk's listing is taken before anything below it goes.
    for d, entries in reversed(list(vault.walk(plain))):
        for e in entries:
            if session.io.cancelled():
                raise transfer.Cancelled()
            if not e.is_dir:
                vault.unlink(f"{d}/{e.name}")
        vault.rmdir(d)
    return 0


MV_CHOICES = [("overwrite", "Overwrite"), ("keep-both", "Keep both"), ("cancel", "Cancel")]


def free_name(vault: Vault, path: str) -> str:
    """`path`, or the first of "stem (2).ext", "stem (3).ext", ... that does not exist yet."""
    parent, slash, name = path.rpartition("/")
    stem, dot, ext = name.rpartition(".") if name.rfind(".") > 0 else (name, "", "")
    number = 2
    while vault.exists(path):
        path = f"{parent}{slash}{stem} ({number}){dot}{ext}"
        number += 1
    return path


def move_path(session: Session, src: str, dst: str, *, on_exists: str | None = None) -> int:
    """`mv`: rename; an existing directory as target receives the source under its own name.

    An existing file or symlink at the target is replaced only with `on_exists="overwrite"`;
    "keep-both" moves to a free "name (2)" beside it. Without either, an IO that can choose is
    asked, and any other refuses.
    """
    vault = session.vault_for("mv")
    psrc, pdst = session.resolve(src), session.resolve(dst)
    if not psrc:
        raise FsError(errno.EBUSY, "/: cannot move the vault root")
    if vault.exists(pdst) and stat_mod.S_ISDIR(vault.stat(pdst).mode) and pdst != psrc:
        pdst = f"{pdst}/{psrc.rsplit('/', 1)[-1]}" if pdst else psrc.rsplit("/", 1)[-1]
    if pdst != psrc and vault.exists(pdst) and not stat_mod.S_ISDIR(vault.stat(pdst).mode):
        io = session.io
        if on_exists is None and isinstance(io, Chooser):
            on_exists = io.choose(f"{show(pdst)} already exists.", MV_CHOICES)
        if on_exists == "cancel":
            raise transfer.Cancelled()
        if on_exists == "keep-both":
            pdst = free_name(vault, pdst)
            io.write(f"kept both: {show(psrc)} is now {show(pdst)}")
        elif on_exists != "overwrite":
            raise FsError(errno.EEXIST, f"{show(pdst)}: already exists (mv -f overwrites it)")
    vault.rename(psrc, pdst)
    return 0


def make_dirs(session: Session, paths: Iterable[str], *, parents: bool = False) -> int:
    """`mkdir`: new directories (with `parents`, missing parents too and no error if present)."""
    vault = session.vault_for("mkdir")
    for p in paths:
        plain = session.resolve(p)
        if not parents:
            vault.mkdir(plain)
            continue
        parts = plain.split("/") if plain else []
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if not vault.exists(sub):
                vault.mkdir(sub)
            elif not stat_mod.S_ISDIR(vault.stat(sub).mode):
                raise FsError(errno.ENOTDIR, f"{show(sub)}: not a directory")
    return 0


def remove_paths(
    session: Session, paths: Iterable[str], *, recursive: bool = False, force: bool = False
) -> int:
    """`rm`: each path as `remove_path` removes it; with `force` a missing path is no error."""
    for p in paths:
        if force and not session.vault_for("rm").exists(session.resolve(p)):
            continue
        remove_path(session, p, recursive=recursive)
    return 0


# -- the shell's handlers (arguments as vaultsh.service.registry declares them) -------------


def run_mkdir(session: Session, a: Namespace) -> int:
    return make_dirs(session, a.paths, parents=a.parents)


def run_mv(session: Session, a: Namespace) -> int:
    return move_path(session, a.src, a.dst, on_exists="overwrite" if a.force else None)


def run_rm(session: Session, a: Namespace) -> int:
    return remove_paths(session, a.paths, recursive=a.recursive, force=a.force)
