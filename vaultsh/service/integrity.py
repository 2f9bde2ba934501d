"""The `fsck` and `conflicts` commands: checking a vault, quarantining damage, adopting copies."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import json
import os
import secrets
import stat as stat_mod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from vaultsh.vault import fsck
from vaultsh.vault.conflicts import Origin, find_origin
from vaultsh.vault.display import safe_text
from vaultsh.vault.errors import CorruptionError, ExitCode, FsError, UsageError, VaultError
from vaultsh.vault.fdio import write_all
from vaultsh.vault.names import NAME_MAX, is_name_file
from vaultsh.vault.vault import DirEntry, Vault

Write = Callable[[str], None]


# -- fsck -----------------------------------------------------------------------------------


@dataclass
class FsckResult:
    findings: list[fsck.Finding]
    counts: fsck.Counts
    moved: list[fsck.Moved]
    salvaged: list[str] = field(default_factory=list)  # plain paths rewritten with zeros

    @property
    def exit_code(self) -> int:
        return ExitCode.FSCK_ERRORS if self.findings else ExitCode.OK


def finding_line(f: fsck.Finding) -> str:
    """One line for people: kind, where (plain path when known, else the cipher path), what."""
    if f.plain_path is not None:
        where = f"/{f.plain_path}"
        if f.cipher_path:
            where += f" (cipher {f.cipher_path})"
    else:
        where = f"cipher {f.cipher_path or '.'}"
    return safe_text(f"{f.kind}: {where}: {f.detail}")


def summary_line(result: FsckResult) -> str:
    c = result.counts
    checked = f"{c.files} files, {c.dirs} dirs, {c.symlinks} symlinks"
    if not result.findings:
        return f"fsck summary: no problems found ({checked})"
    kinds = sorted({str(f.kind) for f in result.findings})
    return f"fsck summary: {len(result.findings)} problems ({', '.join(kinds)}) in {checked}"


def run_fsck(
    vault: Vault,
    path: str = "",
    *,
    on_finding: Callable[[fsck.Finding], None] | None = None,
    progress: Callable[[fsck.Counts], None] | None = None,
    quarantine: Path | None = None,
    force_decode: bool = False,
) -> FsckResult:
    """Check the vault (or a subtree), then move damaged items to `quarantine` if given.

    With `force_decode` too, a file whose only damage is in some blocks is saved first: the
    original goes to the quarantine and a copy with those blocks as zeros takes its place.
    """
    if quarantine is not None:
        fsck.check_quarantine_dir(vault, quarantine)  # refuse a bad target before the work
    if force_decode and quarantine is None:
        raise UsageError("fsck --force-decode needs --quarantine DIR: without it fsck changes nothing")
    checker = fsck.Checker(vault, progress)
    findings: list[fsck.Finding] = []
    for f in checker.run(path):
        findings.append(f)
        if on_finding is not None:
            on_finding(f)
    if quarantine is None:
        return FsckResult(findings, checker.counts, [])
    # Salvage before the damaged originals leave, put the copies in place once they have.
    pending = (
        [_salvage(vault, rel, plain) for rel, plain in _salvageable(findings).items()] if force_decode else []
    )
    moved = fsck.quarantine(vault, findings, quarantine)
    salvaged: list[str] = []
    for cpath, tmp, plain in pending:
        if vault.lexists_cipher(cpath):  # the original could not be moved: keep it as it is
            _drop(vault, cpath.parent, tmp)
            continue
        _place(vault, cpath.parent, tmp, plain.rpartition("/")[2], plain)
        salvaged.append(plain)
    return FsckResult(findings, checker.counts, moved, salvaged)


def _salvageable(findings: list[fsck.Finding]) -> dict[str, str]:
    """Files (cipher path -> plain path) whose only damage is in blocks: header and name are fine."""
    block_damage = {fsck.Kind.BLOCK_BAD, fsck.Kind.SIZE_INVALID}
    by_path: dict[str, list[fsck.Finding]] = {}
    for f in findings:
        by_path.setdefault(f.cipher_path, []).append(f)
    return {
        rel: fs[0].plain_path
        for rel, fs in by_path.items()
        if fs[0].plain_path
        and all(f.kind in block_damage for f in fs)
        and not any(f.kind == fsck.Kind.SIZE_INVALID and f.block is None for f in fs)
    }


def _salvage(vault: Vault, rel: str, plain: str) -> tuple[Path, str, str]:
    cpath = vault.cipherdir / rel
    tmp = _reencrypt(vault, cpath, plain, cpath.parent, plain, vault.lstat_cipher(cpath), salvage=True)
    return cpath, tmp, plain


def report_fsck(
    vault: Vault,
    path: str,
    write: Write,
    note: Write,
    *,
    as_json: bool = False,
    quarantine: Path | None = None,
    force_decode: bool = False,
    progress: Callable[[fsck.Counts], None] | None = None,
) -> int:
    """Run fsck and print it: findings on `write` (one JSON record each with `as_json`), the
    summary on `note` (stderr in the CLI, so --json output stays pure); returns the exit code."""

    def show(f: fsck.Finding) -> None:
        write(json.dumps(f.as_record()) if as_json else finding_line(f))

    result = run_fsck(
        vault, path, on_finding=show, progress=progress, quarantine=quarantine, force_decode=force_decode
    )
    for m in result.moved:
        if as_json:
            write(json.dumps({"quarantined": m.cipher_path, "dest": str(m.dest), "error": m.error}))
        elif m.error:
            note(safe_text(f"could not quarantine {m.cipher_path}: {m.error}"))
        else:
            write(safe_text(f"quarantined: cipher {m.cipher_path} -> {m.dest}"))
    for plain in result.salvaged:
        if as_json:
            write(json.dumps({"salvaged": plain}))
        else:
            write(safe_text(f"salvaged: /{plain} (damaged blocks are zeros; the original is quarantined)"))
    note(summary_line(result))
    return result.exit_code


# -- conflict copies ------------------------------------------------------------------------


@dataclass
class ConflictCopy:
    """A sync tool's copy beside a vault entry, and how it compares with it."""

    cipher_dir: Path  # the directory holding both
    copy_name: str  # the copy's name on disk
    original_plain: str  # plain path of the entry it copies
    origin: Origin
    kind: str  # "file", "dir", "symlink", "other"
    differs: bool | None = None  # None: not compared (a directory) or unreadable
    problem: str | None = None  # why the copy could not be read
    original_problem: str | None = None  # why the original could not be read

    @property
    def cipher_path(self) -> Path:
        return self.cipher_dir / self.copy_name

    def date(self, st: os.stat_result) -> dt.date:
        """The day the copy's name gives, else the day it was last modified (local time)."""
        return self.origin.date or dt.datetime.fromtimestamp(st.st_mtime).date()

    def describe(self) -> str:
        if self.problem:
            state = f"copy unreadable: {self.problem}"
        elif self.original_problem:
            state = f"the original is unreadable: {self.original_problem}"
        elif self.differs is None:
            state = "a directory: compare by hand (adopt it, then look at both)"
        else:
            state = "contents differ" if self.differs else "same content as the original"
        return safe_text(
            f"/{self.original_plain}: {self.origin.tool} conflict copy {self.copy_name!r}: {state}"
        )


def _plain_dirs(vault: Vault, path: str, note: Write) -> Iterator[tuple[str, Path, list[DirEntry]]]:
    """(plain dir, cipher dir, entries with undecryptable ones) below `path`, depth first."""
    todo = [(path, vault.cipher_path(path))]
    while todo:
        plain, cdir = todo.pop()
        try:
            entries = vault.list_cipher_dir(cdir, include_bad=True, where=plain or "/")
        except VaultError as e:
            note(safe_text(f"skipped /{plain}: {e}"))
            continue
        yield plain, cdir, entries
        todo.extend(
            (f"{plain}/{e.name}" if plain else e.name, cdir / e.cipher_name)
            for e in sorted(entries, key=lambda e: e.name, reverse=True)
            if e.is_dir and e.error is None
        )


def find_conflicts(vault: Vault, path: str = "", note: Write = lambda _s: None) -> list[ConflictCopy]:
    """Every conflict copy below `path`, compared with its original."""
    out: list[ConflictCopy] = []
    for plain, cdir, entries in _plain_dirs(vault, path, note):
        out.extend(_copies_in(vault, plain, cdir, entries))
    return out


def conflict_copy(vault: Vault, path: str, copy_name: str) -> ConflictCopy:
    """The conflict copy named `copy_name` on disk in the plain directory `path` (only there)."""
    cdir = vault.cipher_path(path)
    entries = vault.list_cipher_dir(cdir, include_bad=True, where=path or "/")
    for copy in _copies_in(vault, path, cdir, entries, only=copy_name):
        return copy
    raise UsageError(safe_text(f"{copy_name}: not a conflict copy of an entry beside it"))


def _copies_in(
    vault: Vault, plain: str, cdir: Path, entries: list[DirEntry], only: str | None = None
) -> Iterator[ConflictCopy]:
    by_cipher = {e.cipher_name: e for e in entries}
    for e in entries:
        if only is not None and e.cipher_name != only:
            continue
        if e.error is None and not vault.options.plaintext_names:
            continue
        if is_name_file(e.cipher_name):
            continue
        origin = find_origin(e.cipher_name, by_cipher, loose=e.error is not None)
        if origin is None:
            continue
        original = by_cipher[origin.original]
        if original.error is not None:
            continue
        copy = ConflictCopy(
            cdir, e.cipher_name, f"{plain}/{original.name}" if plain else original.name, origin, e.kind
        )
        _compare(vault, copy, cdir / original.cipher_name)
        yield copy


@dataclass
class Side:
    """One side of a conflict for a person comparing them: what it is and how it starts."""

    label: str
    kind: str
    size: int | None  # plain bytes of a file; None when unknown or not a file
    mtime: float | None
    head: list[str] | None  # the first lines when the content is text
    problem: str | None = None


PEEK_BYTES = 4096


def sides(vault: Vault, copy: ConflictCopy, lines: int = 5) -> tuple[Side, Side]:
    """The original and the copy, each read as far as it decrypts."""
    original = copy.cipher_dir / copy.origin.original
    return (
        _side(vault, original, copy.kind, "original", f"/{copy.original_plain}", lines),
        _side(vault, copy.cipher_path, copy.kind, "copy", f"copy of /{copy.original_plain}", lines),
    )


def _side(vault: Vault, cpath: Path, kind: str, label: str, where: str, lines: int) -> Side:
    try:
        st = vault.lstat_cipher(cpath)
    except OSError as e:
        return Side(label, kind, None, None, None, e.strerror or str(e))
    side = Side(label, kind, None, st.st_mtime, None)
    try:
        if kind == "symlink":
            side.head = [safe_text(vault.readlink_cipher(cpath, where))]
        elif kind == "file":
            with vault.open_cipher_file(cpath, where) as f:
                side.size = f.size()
                head = b""
                for chunk in f.iter_chunks():
                    head += bytes(chunk)
                    if len(head) >= PEEK_BYTES:
                        break
            side.head = _text_lines(head[:PEEK_BYTES], lines)
    except VaultError as e:
        side.problem = str(e)
    return side


def _text_lines(data: bytes, lines: int) -> list[str] | None:
    if b"\0" in data:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(data) - 3:  # not merely a character cut at the end of the peek
            return None
        text = data[: e.start].decode("utf-8")
    return [safe_text(line) for line in text.splitlines()[:lines]]


def _compare(vault: Vault, copy: ConflictCopy, original: Path) -> None:
    """Decrypt both sides; a side that does not decrypt is named, the copy's side first."""
    if copy.kind == "dir":
        try:  # its names must decrypt with its own diriv; contents are compared by hand
            vault.list_cipher_dir(copy.cipher_path, where=f"copy of /{copy.original_plain}")
        except VaultError as e:
            copy.problem = str(e)
        return
    if copy.kind not in ("file", "symlink"):
        copy.problem = "not a file, symlink or directory"
        return
    try:
        mine = _digest(vault, copy.cipher_path, copy.kind, f"copy of /{copy.original_plain}")
    except VaultError as e:
        copy.problem = str(e)
        return
    try:
        copy.differs = mine != _digest(vault, original, copy.kind, f"/{copy.original_plain}")
    except VaultError as e:
        copy.original_problem = str(e)


def _digest(vault: Vault, cpath: Path, kind: str, where: str) -> bytes:
    """SHA-256 of a file's plaintext or a symlink's target (files are read 1 MiB at a time)."""
    h = hashlib.sha256()
    if kind == "symlink":
        h.update(os.fsencode(vault.readlink_cipher(cpath, where)))
        return h.digest()
    with vault.open_cipher_file(cpath, where) as f:
        for chunk in f.iter_chunks():
            h.update(chunk)
    return h.digest()


def adopted_name(original: str, date: dt.date, taken: Callable[[str], bool]) -> str:
    """`report (conflict 2026-01-02).txt` for `report.txt`, or with a number until the name is free."""
    stem, ext = os.path.splitext(original)
    for n in range(1, 10_000):
        tag = f" (conflict {date.isoformat()}{'' if n == 1 else f' {n}'})"
        cut = stem
        while len(os.fsencode(cut + tag + ext)) > NAME_MAX and cut:
            cut = cut[:-1]
        name = cut + tag + ext
        if not taken(name):
            return name
    raise FsError(errno.EEXIST, f"{original}: no free name for the adopted copy")


def _fsync_dir(vault: Vault, cdir: Path) -> None:
    fd = vault.dirs.open_dir(cdir)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def adopt(vault: Vault, copy: ConflictCopy) -> str:
    """Re-encrypt a conflict copy under a plain name next to its original; returns that path.

    The new object is complete and fsync'd under its final name (never replacing anything)
    before the copy is removed, so a crash leaves the copy, the new file, or both. Every call
    is relative to a descriptor of the copy's directory, reached without following a symlink.
    """
    if copy.problem:
        raise CorruptionError(f"{copy.copy_name}: not adopted, the copy is unreadable: {copy.problem}")
    cdir = copy.cipher_dir
    parent_plain, _, original_name = copy.original_plain.rpartition("/")
    st = vault.lstat_cipher(copy.cipher_path)
    date = copy.date(st)

    def taken(name: str) -> bool:
        return vault.lexists_cipher(cdir / vault.encrypt_component(cdir, name)[0])

    name = adopted_name(original_name, date, taken)
    new_plain = f"{parent_plain}/{name}" if parent_plain else name
    if copy.kind == "file":
        _adopt_file(vault, copy, name, new_plain, st)
    elif copy.kind == "symlink":
        target = vault.readlink_cipher(copy.cipher_path, copy.copy_name)
        clink = vault.symlink_at(cdir, name, target, new_plain)
        vault.dirs.path_at(clink, os.utime, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
    elif copy.kind == "dir":
        # A directory's names are encrypted under its own diriv, so it moves as it is (§6.5):
        # one rename to the new name (with a .name sidecar if long), nothing to re-encrypt.
        vault.rename_stored_at(
            cdir, copy.copy_name, cdir, name, noreplace=True, where=(copy.copy_name, new_plain)
        )
        _fsync_dir(vault, cdir)
        return new_plain
    else:
        raise UsageError(
            f"{copy.copy_name}: not a file, symlink or directory; move it out with fsck --quarantine"
        )
    _fsync_dir(vault, cdir)
    vault.dirs.at(cdir, copy.copy_name, os.unlink)
    _fsync_dir(vault, cdir)
    return new_plain


def _adopt_file(vault: Vault, copy: ConflictCopy, name: str, new_plain: str, st: os.stat_result) -> None:
    tmp = _reencrypt(vault, copy.cipher_path, copy.copy_name, copy.cipher_dir, new_plain, st)
    _place(vault, copy.cipher_dir, tmp, name, new_plain)


def _reencrypt(
    vault: Vault,
    src: Path,
    where: str,
    cdir: Path,
    new_plain: str,
    st: os.stat_result,
    *,
    salvage: bool = False,
) -> str:
    """Decrypt `src` into a new file of `cdir` under a temporary name, fsync'd; returns that name.

    With `salvage`, damaged blocks are written as zeros. Nothing is left behind on failure.
    """
    tmp = f".vaultsh-{secrets.token_hex(6)}"
    out, _tmp_cpath = vault.create_at(cdir, tmp, 0o600, new_plain)
    done = False
    try:
        with out, vault.open_cipher_file(src, where) as f:
            offset = 0
            for chunk in f.iter_salvaged(lambda _b, _w: None) if salvage else f.iter_chunks():
                out.write(offset, chunk)
                offset += len(chunk)
            os.fchmod(out.fd, stat_mod.S_IMODE(st.st_mode))
            os.utime(out.fd, ns=(st.st_atime_ns, st.st_mtime_ns))
            out.fsync()
        done = True
    finally:
        if not done:
            _drop(vault, cdir, tmp)
    return tmp


def _drop(vault: Vault, cdir: Path, tmp: str) -> None:
    with contextlib.suppress(OSError, VaultError):
        vault.unlink_at(cdir, tmp, tmp)


def _place(vault: Vault, cdir: Path, tmp: str, name: str, new_plain: str) -> None:
    """Give a finished temporary file its name, never replacing one; dropped if that fails."""
    try:
        vault.rename_at(cdir, tmp, cdir, name, noreplace=True, where=(tmp, new_plain))
    except BaseException:
        _drop(vault, cdir, tmp)
        raise


def export_copy(vault: Vault, copy: ConflictCopy, dest_root: Path) -> Path:
    """Decrypt a conflict copy to `dest_root`/<its plain dir>/<original (conflict DATE).ext>.

    The vault is not changed; an existing local file is never replaced. `dest_root` is the
    user's choice and may be reached through a symlink; below it, each directory is made or
    entered relative to its parent's descriptor and a symlink there is not followed.
    """
    if copy.problem:
        raise CorruptionError(f"{copy.copy_name}: not exported, the copy is unreadable: {copy.problem}")
    if copy.kind not in ("file", "symlink"):
        raise UsageError(f"{copy.copy_name}: only files and symlinks are exported; adopt a directory")
    parent_plain, _, original_name = copy.original_plain.rpartition("/")
    st = vault.lstat_cipher(copy.cipher_path)
    parts = parent_plain.split("/") if parent_plain else []
    dir_fd = _make_dest_dirs(dest_root, parts)
    try:
        name = adopted_name(original_name, copy.date(st), lambda n: _lexists_at(dir_fd, n))
        if copy.kind == "symlink":
            os.symlink(vault.readlink_cipher(copy.cipher_path, copy.copy_name), name, dir_fd=dir_fd)
        else:
            _export_file_at(vault, copy, st, dir_fd, name)
    finally:
        os.close(dir_fd)
    return dest_root.joinpath(*parts, name)


_DEST_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _make_dest_dirs(root: Path, parts: list[str]) -> int:
    """A descriptor of root/parts..., made where missing (0700); only `root` may be a link."""
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o700, dir_fd=fd)
            sub = os.open(part, _DEST_DIR, dir_fd=fd)
            os.close(fd)
            fd = sub
    except BaseException:
        os.close(fd)
        raise
    return fd


def _lexists_at(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _export_file_at(vault: Vault, copy: ConflictCopy, st: os.stat_result, dir_fd: int, name: str) -> None:
    """The copy's plaintext as a new file `name` in `dir_fd`; removed again if writing fails."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(name, flags, 0o600, dir_fd=dir_fd)
    done = False
    try:
        with vault.open_cipher_file(copy.cipher_path, copy.copy_name) as f:
            for chunk in f.iter_chunks():
                write_all(fd, chunk)
        os.fchmod(fd, stat_mod.S_IMODE(st.st_mode))
        os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
        done = True
    finally:
        os.close(fd)
        if not done:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=dir_fd)


def report_conflicts(
    vault: Vault,
    path: str,
    write: Write,
    note: Write,
    *,
    adopt_all: bool = False,
    export_to: Path | None = None,
) -> int:
    """List conflict copies; adopt them (`adopt_all`) or decrypt them to `export_to`.

    Exit 26 while copies remain in the vault, 0 when there are none or all were adopted.
    """
    if adopt_all and export_to is not None:
        raise UsageError("--adopt and --export exclude each other")
    if export_to is not None:
        fsck.check_quarantine_dir(vault, export_to)  # plain copies must not land in the vault
    copies = find_conflicts(vault, path, note)
    failed = 0
    for c in copies:
        write(c.describe())
        if not adopt_all and export_to is None:
            continue
        verb = "adopted" if adopt_all else "exported"
        try:
            new = f"/{adopt(vault, c)}" if adopt_all else str(export_copy(vault, c, export_to or Path()))
        except (VaultError, OSError) as e:
            failed += 1
            note(safe_text(f"not {verb}: {c.copy_name}: {e}"))
            continue
        write(safe_text(f"  {verb} as {new}"))
    if not copies:
        note("no conflict copies found")
        return ExitCode.OK
    if adopt_all and not failed:
        return ExitCode.OK
    return ExitCode.FSCK_ERRORS
