"""Reading commands: ls, cat, cd, pwd, and following vault symlinks."""

from __future__ import annotations

import codecs
import errno
import stat as stat_mod
import time
from argparse import Namespace

from vaultsh.service import transfer
from vaultsh.service.commands.session import ByteSink, Session, show
from vaultsh.vault.display import quote_name
from vaultsh.vault.errors import (
    ExitCode,
    FsError,
    UsageError,
    VaultError,
)
from vaultsh.vault.tree import Tree, TreeNode
from vaultsh.vault.vault import PlainStat


def ls_long_line(mode: int, nlink: int, size: int, mtime_ns: int, shown: str) -> str:
    """One line of `ls -l`: mode, links, size, time, then the name as already shown."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(mtime_ns / 1e9))
    return f"{stat_mod.filemode(mode)} {nlink:>3} {size:>12} {when} {shown}"


def _ls_line(tree: Tree, node: TreeNode, name: str, st: PlainStat | None, cipher: bool) -> str:
    """One `ls` line; with a stat it is the long format.

    Names and link targets are shown as GNU ls shows them: one with characters a terminal
    acts on (escapes, CR, invalid UTF-8, ...) in $'...' form, others unchanged.
    """
    suffix = f"  [{quote_name(node.cipher_name)}]" if cipher else ""
    shown = quote_name(name)
    if st is None:
        return f"{shown}{suffix}"
    if stat_mod.S_ISLNK(st.mode):
        try:
            shown = f"{shown} -> {quote_name(tree.plain_link(node))}"
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
    """`ls`: plain names (and with `long` modes, sizes, times) of a directory or file.

    With `cipher` each name is followed by its name on the cipher side, with `show_all` a
    vault's undecryptable entries are listed too.
    """
    tree, io = session.tree, session.io
    plain = session.resolve(path)
    top = tree.node(plain)
    if top.kind != "dir":
        io.write(_ls_line(tree, top, path, tree.plain_stat(top) if long else None, cipher))
        return 0
    status = 0
    todo = [top]
    first = True
    while todo:
        d = todo.pop(0)
        try:
            listing = tree.children(d, include_bad=show_all)
        except VaultError as err:
            io.error(f"{show(d.plain)}: {err}")
            status = ExitCode.FSCK_ERRORS
            continue
        if recursive:
            if not first:
                io.write("")
            io.write(f"{quote_name(show(d.plain))}:")
        first = False
        subdirs = []
        for e in sorted(listing, key=lambda e: e.name):
            if session.io.cancelled():
                raise transfer.Cancelled()
            if e.error:
                io.write(f"?{quote_name(e.cipher_name)}  (undecryptable: {e.error})")
                continue
            est = None
            if long:
                try:
                    est = tree.plain_stat(e)
                except VaultError as err:
                    io.error(f"{show(e.plain)}: {err}")
                    continue
            io.write(_ls_line(tree, e, e.name, est, cipher))
            if e.kind == "dir":
                subdirs.append(e)
        if recursive:
            todo[0:0] = subdirs
    return status


def cat_file(session: Session, path: str, *, force_decode: bool = False) -> int:
    """`cat`: raw bytes to an IO that takes them, else text lines (binary files are refused).

    With `force_decode` a damaged block comes out as zeros, is reported, and the exit code
    is fsck's 26 (gocryptfs's -force_decode).
    """
    tree, io = session.tree, session.io
    damaged: list[int] = []
    node = follow_tree_links(tree, session.resolve(path))
    plain = node.plain
    if node.kind == "dir":
        raise FsError(errno.EISDIR, f"{show(plain)}: is a directory")

    def on_bad(block: int, why: str) -> None:
        damaged.append(block)
        io.error(f"warning: {show(plain)}: block {block} is damaged, given as zeros ({why})")

    chunks = tree.plain_chunks(node, on_bad if force_decode else None)
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


MAX_LINK_HOPS = 40  # as Linux's limit on symlinks followed in one path lookup


def follow_tree_links(tree: Tree, plain: str) -> TreeNode:
    """Where a chain of symlinks starting at `plain` ends, as an object of the tree.

    A relative target is resolved in the tree, as it is on a mount; an absolute one, or one
    climbing above the root, names something outside and is not followed.
    """
    for _ in range(MAX_LINK_HOPS):
        node = tree.node(plain)
        if node.kind != "symlink":
            return node
        target = tree.plain_link(node)
        outside = FsError(errno.EXDEV, f"{show(plain)}: a symlink to {target}, outside the vault")
        if target.startswith("/"):
            raise outside
        parts = plain.split("/")[:-1]
        for part in target.split("/"):
            if part == "..":
                if not parts:
                    raise outside
                parts.pop()
            elif part not in ("", "."):
                parts.append(part)
        plain = "/".join(parts)
    raise FsError(errno.ELOOP, f"{show(plain)}: too many levels of symbolic links")


# -- the shell's handlers (arguments as vaultsh.service.registry declares them) -------------


def run_ls(session: Session, a: Namespace) -> int:
    return list_path(session, a.path, long=a.long, show_all=a.all, recursive=a.recursive, cipher=a.cipher)


def run_cd(session: Session, a: Namespace) -> int:
    target = session.resolve(a.path)
    if session.tree.node(target).kind != "dir":
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
