"""Reading commands: ls, cat, cd, pwd, and following vault symlinks."""

from __future__ import annotations

import codecs
import errno
import stat as stat_mod
from argparse import Namespace
from collections.abc import Iterable
from pathlib import Path

from vaultsh.service import transfer
from vaultsh.service.commands.session import ByteSink, Session, show
from vaultsh.service.commands.views import list_view, ls_long_line, view_entry, write_ls_heading
from vaultsh.vault.display import quote_name
from vaultsh.vault.errors import (
    ExitCode,
    FsError,
    UsageError,
    VaultError,
)
from vaultsh.vault.vault import PlainStat, Vault


def _ls_line(vault: Vault, cpath: Path, name: str, st: PlainStat | None, cipher: str | None) -> str:
    """One `ls` line; with a stat it is the long format.

    Names and link targets are shown as GNU ls shows them: one with characters a terminal
    acts on (escapes, CR, invalid UTF-8, ...) in $'...' form, others unchanged.
    """
    suffix = f"  [{quote_name(cipher)}]" if cipher else ""
    shown = quote_name(name)
    if st is None:
        return f"{shown}{suffix}"
    if stat_mod.S_ISLNK(st.mode):
        try:
            shown = f"{shown} -> {quote_name(vault.readlink_cipher(cpath, name))}"
        except VaultError as e:
            shown = f"{shown} -> ?({e})"
    return ls_long_line(st.mode, st.nlink, st.size, st.mtime_ns, shown) + suffix


def list_path(
    session: Session,
    path: str,
    *,
    long: bool = False,
    show_all: bool = False,
    recursive: bool = False,
    cipher: bool = False,
) -> int:
    """`ls`: plain names (and with `long` modes, sizes, times) of a vault directory or file."""
    vault, io = session.vault, session.io
    plain = session.resolve(path)
    cpath = vault.cipher_path(plain)
    st = vault.stat_cipher(cpath, show(plain))
    if not stat_mod.S_ISDIR(st.mode):
        io.write(_ls_line(vault, cpath, path, st if long else None, None))
        return 0
    status = 0
    todo = [(plain, cpath)]
    first = True
    while todo:
        d, cdir = todo.pop(0)
        try:
            listing = vault.list_cipher_dir(cdir, include_bad=show_all, where=show(d))
        except VaultError as err:
            io.error(f"{show(d)}: {err}")
            status = ExitCode.FSCK_ERRORS
            continue
        if recursive:
            write_ls_heading(io, d, first)
        first = False
        subdirs = []
        for e in sorted(listing, key=lambda e: e.name):
            if session.io.cancelled():
                raise transfer.Cancelled()
            child = f"{d}/{e.name}" if d else e.name
            ccpath = cdir / e.cipher_name
            if e.error:
                io.write(f"?{quote_name(e.cipher_name)}  (undecryptable: {e.error})")
                continue
            est = None
            if long:
                try:
                    est = vault.stat_cipher(ccpath, show(child))
                except VaultError as err:
                    io.error(f"{show(child)}: {err}")
                    continue
            io.write(_ls_line(vault, ccpath, e.name, est, e.cipher_name if cipher else None))
            if e.is_dir:
                subdirs.append((child, ccpath))
        if recursive:
            todo[0:0] = subdirs
    return status


def cat_file(session: Session, path: str, *, force_decode: bool = False) -> int:
    """`cat`: raw bytes to an IO that takes them, else text lines (binary files are refused).

    With `force_decode` a damaged block comes out as zeros, is reported, and the exit code
    is fsck's 26 (gocryptfs's -force_decode).
    """
    vault, io = session.vault, session.io
    plain = session.resolve(path)
    damaged: list[int] = []
    chunks: Iterable[bytes | memoryview]
    if session.reverse is not None:  # the plain files are the real ones
        if view_entry(session.reverse, plain).kind == "dir":
            raise FsError(errno.EISDIR, f"{show(plain)}: is a directory")
        chunks = _read_plain_file(session.reverse.plaindir / plain)
    else:
        plain = follow_links(vault, plain)
        if stat_mod.S_ISDIR(vault.stat(plain).mode):
            raise FsError(errno.EISDIR, f"{show(plain)}: is a directory")
        chunks = _salvaged_chunks(session, plain, damaged) if force_decode else vault.iter_file(plain)
    if isinstance(io, ByteSink):
        for chunk in chunks:
            io.write_bytes(chunk)
        return ExitCode.FSCK_ERRORS if damaged else 0
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    pending = ""
    first = True
    for chunk in chunks:
        if io.cancelled():
            raise transfer.Cancelled()
        if first and b"\0" in bytes(chunk[:8192]):
            raise UsageError(f"{show(plain)}: binary file; use export to copy it out")
        first = False
        lines = (pending + decoder.decode(chunk)).split("\n")
        pending = lines.pop()
        for line in lines:
            # CRLF ends a line too; a front-end shows any other control character escaped.
            io.write(line.removesuffix("\r"))
    pending += decoder.decode(b"", final=True)
    if pending:
        io.write(pending)
    return ExitCode.FSCK_ERRORS if damaged else 0


def _salvaged_chunks(session: Session, plain: str, damaged: list[int]) -> Iterable[memoryview]:
    def on_bad(block: int, why: str) -> None:
        damaged.append(block)
        session.io.error(f"warning: {show(plain)}: block {block} is damaged, given as zeros ({why})")

    with session.vault.open_file(plain) as f:
        yield from f.iter_salvaged(on_bad)


MAX_LINK_HOPS = 40  # as Linux's limit on symlinks followed in one path lookup


def follow_links(vault: Vault, plain: str) -> str:
    """Where a chain of vault symlinks starting at `plain` ends, as a plain vault path.

    A relative target is resolved in the vault, as it is on a mount; an absolute one, or one
    climbing above the vault root, names something outside the vault and is not followed.
    """
    for _ in range(MAX_LINK_HOPS):
        if not stat_mod.S_ISLNK(vault.stat(plain).mode):
            return plain
        target = vault.readlink(plain)
        if target.startswith("/"):
            raise FsError(errno.EXDEV, f"{show(plain)}: a symlink to {target}, outside the vault")
        parts = plain.split("/")[:-1]
        for part in target.split("/"):
            if part == "..":
                if not parts:
                    raise FsError(errno.EXDEV, f"{show(plain)}: a symlink to {target}, outside the vault")
                parts.pop()
            elif part not in ("", "."):
                parts.append(part)
        plain = "/".join(parts)
    raise FsError(errno.ELOOP, f"{show(plain)}: too many levels of symbolic links")


def _read_plain_file(path: Path) -> Iterable[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(transfer.CHUNK):
            yield chunk


# -- the shell's handlers (arguments as vaultsh.service.registry declares them) -------------


def run_ls(session: Session, a: Namespace) -> int:
    if session.reverse is not None:
        return list_view(session, a.path, long=a.long, recursive=a.recursive, cipher=a.cipher)
    return list_path(session, a.path, long=a.long, show_all=a.all, recursive=a.recursive, cipher=a.cipher)


def run_cd(session: Session, a: Namespace) -> int:
    target = session.resolve(a.path)
    if session.reverse is not None:
        is_dir = view_entry(session.reverse, target).kind == "dir"
    else:
        is_dir = stat_mod.S_ISDIR(session.vault.stat(target).mode)
    if not is_dir:
        raise FsError(errno.ENOTDIR, f"{show(target)}: not a directory")
    session.cwd = target
    return 0


def run_pwd(session: Session, a: Namespace) -> int:
    session.io.write(show(session.cwd))
    return 0


def run_cat(session: Session, a: Namespace) -> int:
    status = 0
    for p in a.paths:
        status = cat_file(session, p, force_decode=a.force_decode) or status
    return status
