"""The command registry shared by the CLI, the shell and the TUI: parsing, dispatch, completion."""

from __future__ import annotations

import codecs
import contextlib
import errno
import os
import re
import stat as stat_mod
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from vaultsh.service import transfer
from vaultsh.vault.config import CONF_NAME, REVERSE_CONF_NAME, ConfFile, load_config
from vaultsh.vault.display import quote_name
from vaultsh.vault.errors import (
    ExitCode,
    FsError,
    InitError,
    MasterKeyError,
    ReadPasswordError,
    UsageError,
    VaultError,
    WriteConfError,
    fs_error,
)
from vaultsh.vault.keys import format_master_key
from vaultsh.vault.reverse import ReverseEntry, ReverseView
from vaultsh.vault.vault import PlainStat, Vault, kind_of_mode

if TYPE_CHECKING:
    from vaultsh.service.mounts import MountInfo

# -- the contract with front-ends -----------------------------------------------------------


class SessionIO(Protocol):
    """What a front-end (shell, TUI, CLI, tests) offers the commands."""

    def write(self, text: str) -> None:
        """Show one line of normal output."""

    def error(self, text: str) -> None:
        """Show a one-line error."""

    def ask_secret(self, prompt: str) -> bytes:
        """Ask for a password without echo."""
        ...

    def confirm(self, question: str) -> bool:
        """Ask a yes/no question; no is the safe default."""
        ...

    def progress(self, done: int, total: int) -> None:
        """Bytes done out of total (total may be 0 when unknown)."""

    def cancelled(self) -> bool:
        """Whether the person asked to stop the running command."""
        ...


@runtime_checkable
class ByteSink(Protocol):
    """An IO that can take raw bytes (the CLI's stdout): `cat` then passes file content as is."""

    def write_bytes(self, data: bytes | memoryview) -> None: ...


@dataclass
class Session:
    """One unlocked vault as a front-end holds it: where the person is, how to talk to them."""

    vault: Vault
    cipherdir: Path
    io: SessionIO
    cwd: str = ""  # plain path below the vault root, "" is the root
    # An alternative config (--config); None: the one the vault was opened with, if any,
    # else CIPHERDIR/gocryptfs.conf.
    config_path: Path | None = None
    # Front-end callbacks for commands only some front-ends have: "exit" (leave the session),
    # "theme" (switch the TUI theme, called with a name or None to list), "masterkey" (show the
    # master key, called with its text, somewhere other than the output: a TUI dialog).
    hooks: dict[str, Callable[..., object]] = field(default_factory=dict)
    show_progress: bool = True  # measure the work first so that io.progress knows the total
    processes: int = 1  # 2 lets exports fork a second decrypting process (only safe in the CLI)
    quiet: bool = False  # no summary line after a transfer (the CLI stays silent on success)
    finished: bool = False  # set by `exit`
    # A reverse-mode folder (§9): `cipherdir` is then the plain dir, `cwd` a plain path in it,
    # and `reverse` its encrypted view. `vault` only carries the key, format flags and the
    # reverse config there (for mount, passwd, masterkey, info); commands that would use its
    # tree are refused by `run_line` (see REVERSE_COMMANDS).
    reverse: ReverseView | None = None
    by_master_key: bool = False  # unlocked with the master key: passwd needs no old password

    @classmethod
    def open_reverse(
        cls,
        plaindir: Path,
        io: SessionIO,
        *,
        password: bytes | None = None,
        master_key: bytes | None = None,
        hooks: dict[str, Callable[..., object]] | None = None,
    ) -> Session:
        """Unlock a reverse-mode folder by password or master key (§9.1); VaultError if not."""
        conf_path = plaindir / REVERSE_CONF_NAME
        if master_key is None:
            if password is None:
                raise UsageError("a password or a master key is needed")
            master_key = load_config(conf_path).decrypt_master_key(password)
        view = ReverseView.open(plaindir, master_key=master_key)
        conf = load_config(conf_path)
        holder = Vault(plaindir, master_key, view.options, conf)
        return cls(holder, plaindir, io, hooks=dict(hooks or {}), reverse=view)

    @property
    def conf_path(self) -> Path:
        if self.config_path is not None:
            return self.config_path
        if self.vault.conf is not None and self.vault.conf.path is not None:
            return self.vault.conf.path
        return self.cipherdir / CONF_NAME

    def resolve(self, path: str) -> str:
        """A plain vault path from an argument relative to `cwd` ('..' stops at the root)."""
        parts = [] if path.startswith("/") else [p for p in self.cwd.split("/") if p]
        for part in path.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if parts:
                    parts.pop()
                continue
            parts.append(part)
        return "/".join(parts)


def show(plain: str) -> str:
    """How a plain vault path is shown to people: absolute within the vault."""
    return "/" + plain


@dataclass(frozen=True)
class Command:
    """One command; `completes` names what its arguments complete to.

    `completes` is one of "plain-path", "plain-dir", "local-path", "command" or "none"; a
    command whose positional arguments differ lists one kind per position separated by
    spaces, the last kind applying to any further arguments ("plain-path local-path").
    """

    name: str
    summary: str
    usage: str
    aliases: tuple[str, ...]
    run: Callable[[Session, list[str]], int]
    completes: str = "none"

    def completion_kind(self, position: int) -> str:
        kinds = self.completes.split()
        return kinds[min(position, len(kinds) - 1)] if kinds else "none"


# -- argument parsing for commands typed in a shell ---------------------------------------


@dataclass
class _Args:
    flags: set[str]
    values: dict[str, str]
    positional: list[str]


def _parse(
    usage: str,
    args: list[str],
    *,
    flags: Iterable[str] = (),
    valued: Iterable[str] = (),
    least: int = 0,
    most: int | None = None,
) -> _Args:
    """getopt-like parsing: short flags may be combined (-la), '--' ends the options.

    Flags are given by name without dashes: one letter for short ones, words for long ones.
    """
    known, takes_value = set(flags), set(valued)
    out = _Args(set(), {}, [])
    it = iter(args)
    for arg in it:
        if arg == "--":
            out.positional.extend(it)
            break
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg[2:].partition("=")
            if name in takes_value:
                if not eq:
                    value = next(it, "")
                    if not value:
                        raise UsageError(f"--{name} needs a value; usage: {usage}")
                out.values[name] = value
            elif name in known and not eq:
                out.flags.add(name)
            else:
                raise UsageError(f"unknown option --{name}; usage: {usage}")
        elif arg.startswith("-") and len(arg) > 1:
            for letter in arg[1:]:
                if letter not in known:
                    raise UsageError(f"unknown option -{letter}; usage: {usage}")
                out.flags.add(letter)
        else:
            out.positional.append(arg)
    count = len(out.positional)
    if count < least or (most is not None and count > most):
        raise UsageError(f"usage: {usage}")
    return out


# -- shared service functions (the CLI calls these too) -------------------------------------


def _ls_line(vault: Vault, cpath: Path, name: str, st: PlainStat | None, cipher: str | None) -> str:
    """One `ls` line; with a stat it is the long format.

    Names and link targets are shown as GNU ls shows them: one with characters a terminal
    acts on (escapes, CR, invalid UTF-8, ...) in $'...' form, others unchanged.
    """
    suffix = f"  [{quote_name(cipher)}]" if cipher else ""
    shown = quote_name(name)
    if st is None:
        return f"{shown}{suffix}"
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(st.mtime_ns / 1e9))
    if stat_mod.S_ISLNK(st.mode):
        try:
            shown = f"{shown} -> {quote_name(vault.readlink_cipher(cpath, name))}"
        except VaultError as e:
            shown = f"{shown} -> ?({e})"
    return f"{stat_mod.filemode(st.mode)} {st.nlink:>3} {st.size:>12} {when} {shown}{suffix}"


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
            if not first:
                io.write("")
            io.write(f"{quote_name(show(d))}:")
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


def _finish_transfer(session: Session, report: transfer.TransferReport, verb: str) -> int:
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


class _ProgressCounter:
    """Turns transfer's per-step byte counts into io.progress(done, total) calls."""

    def __init__(self, io: SessionIO, total: int) -> None:
        self.io = io
        self.total = total
        self.done = 0

    def __call__(self, n: int) -> None:
        self.done += n
        self.io.progress(self.done, self.total)


def export_path(session: Session, path: str, dest: str, *, force_decode: bool = False) -> int:
    """`export`: decrypt a vault file or tree to a local path (see transfer.export)."""
    vault = session.vault
    plain = session.resolve(path)
    progress = None
    if session.show_progress:
        progress = _ProgressCounter(session.io, transfer.plain_tree_size(vault, plain))
    report = transfer.export(
        vault,
        plain,
        os.path.expanduser(dest),
        progress=progress,
        cancelled=session.io.cancelled,
        processes=session.processes,
        force_decode=force_decode,
    )
    return _finish_transfer(session, report, "export")


def import_path(session: Session, src: str, path: str | None = None) -> int:
    """`import`: encrypt a local file or tree into the vault (default: the current directory)."""
    source = os.path.expanduser(src)
    plain = session.resolve(path if path is not None else "")
    progress = None
    if session.show_progress:
        progress = _ProgressCounter(session.io, transfer.source_size(Path(source)))
    report = transfer.import_(session.vault, source, plain, progress=progress, cancelled=session.io.cancelled)
    return _finish_transfer(session, report, "import")


def remove_path(session: Session, path: str, *, recursive: bool = False) -> int:
    """`rm`: a file or symlink, or with `recursive` a whole directory tree."""
    vault = session.vault
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


@runtime_checkable
class Chooser(Protocol):
    """An IO that can offer a choice of answers (the shell, the TUI); others get a refusal."""

    def choose(self, question: str, choices: list[tuple[str, str]]) -> str | None:
        """One of the (value, label) choices' values; None if no one can be asked (a script)."""
        ...


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
    vault = session.vault
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


def decrypt_paths(session: Session, paths: Iterable[str], *, exact: bool = False) -> int:
    """Plain path of each cipher path (relative to the cipher dir, or absolute inside it).

    Paths are written as `quote_name` shows them, or with `exact` as they are (for an IO
    that writes them NUL-separated).
    """
    shown = _as_is if exact else quote_name
    status = 0
    root = session.cipherdir.resolve()
    for p in paths:
        rel = p
        if os.path.isabs(p):
            # A full path into the cipher dir (pasted from `find`, say) is taken as such.
            with contextlib.suppress(ValueError, OSError):
                rel = Path(p).resolve().relative_to(root).as_posix()
        try:
            if session.reverse is not None:
                found = session.reverse.resolve(rel)
                if found.plain is None:
                    raise UsageError(f"{rel}: a file the view makes up, with no plain path")
                session.io.write(shown(found.plain))
            else:
                session.io.write(shown(session.vault.decrypt_cipher_path(rel)))
        except VaultError as e:
            session.io.error(f"{p}: {e}")
            status = ExitCode.USAGE
    return status


def _as_is(path: str) -> str:
    return path


def encrypt_paths(session: Session, paths: Iterable[str], *, exact: bool = False) -> int:
    """Cipher path (relative to the cipher dir) of each plain path; `exact` as in decrypt_paths.

    Cipher names are base64, but a plaintextnames vault stores plain names as they are.
    """
    shown = _as_is if exact else quote_name
    status = 0
    for p in paths:
        try:
            if session.reverse is not None:
                session.io.write(shown(view_entry(session.reverse, session.resolve(p)).cipher_path))
                continue
            cpath = session.vault.cipher_path(session.resolve(p))
            session.io.write(shown(cpath.relative_to(session.vault.cipherdir).as_posix()))
        except VaultError as e:
            session.io.error(f"{p}: {e}")
            status = ExitCode.USAGE
    return status


def config_info(conf_path: Path) -> list[str]:
    """The lines of `gocryptfs -info` for a config file (no password needed, §3.8)."""
    return load_config(conf_path).info_lines()


def reveal_master_key(conf: ConfFile, password: bytes) -> str:
    """The master key in gocryptfs's grouped hex form, after checking the password (§3.7)."""
    return format_master_key(conf.decrypt_master_key(password))


def check_key_fits(conf: ConfFile, key: bytes, root: Path) -> None:
    """Refuse a master key that is shown not to be this vault's (see Vault.key_fits)."""
    if Vault(root, key, conf.options, conf).key_fits() is False:
        raise MasterKeyError("the master key does not decrypt this vault's names or files")


def change_password(
    conf_path: Path,
    cipherdir: Path,
    new_password: Callable[[], bytes],
    *,
    old_password: Callable[[], bytes] | None = None,
    master_key: Callable[[], bytes] | None = None,
    logn: int | None = None,
) -> tuple[Path, ConfFile]:
    """Re-wrap the master key under a new password; returns (backup path, new config) (§3.6).

    The secrets are asked for in order, each only once the previous step succeeded: the config
    is read, then the old password (or the master key) checked, then the new password asked.
    The previous config is kept as `<config>.bak`: replaced when unlocked by password; with a
    master key, gocryptfs's stricter rule applies and an existing .bak is never overwritten.
    """
    conf = load_config(conf_path)
    if conf.fido2 is not None:
        raise UsageError(f"{conf_path}: passwd is not supported on FIDO2 vaults")
    if master_key is not None:
        key = master_key()
        # Prove the key belongs to this vault before re-wrapping it: a wrong key would
        # otherwise replace a working config with one that opens nothing.
        if conf_path.name != REVERSE_CONF_NAME:  # a reverse dir holds no ciphertext to try
            check_key_fits(conf, key, cipherdir)
    elif old_password is not None:
        key = conf.decrypt_master_key(old_password())
    else:
        raise UsageError("passwd needs the old password or the master key")
    new_conf = conf.with_password(key, new_password(), logn)
    bak = conf_path.with_name(conf_path.name + ".bak")
    if master_key is not None:
        try:
            os.link(conf_path, bak)
        except FileExistsError:
            raise InitError(f"{bak}: already exists; move it away first") from None
        except OSError as e:
            raise WriteConfError(f"{bak}: cannot create backup: {e.strerror}") from None
    else:
        tmp_bak = bak.with_name(bak.name + ".tmp")
        try:
            tmp_bak.unlink(missing_ok=True)
            os.link(conf_path, tmp_bak)
            os.replace(tmp_bak, bak)
        except OSError as e:
            raise WriteConfError(f"{bak}: cannot create backup: {e.strerror}") from None
    new_conf.write(conf_path)
    return bak, load_config(conf_path)


# -- reverse-mode folders (§9) -----------------------------------------------------------------


def reverse_refusal(command: str, plaindir: Path) -> str:
    """Why a command that writes into a vault has no meaning on a reverse-mode folder."""
    return (
        f"{command}: the encrypted view of a reverse-mode folder is read-only; "
        f"change the plain files in {plaindir} instead"
    )


def _view(session: Session) -> ReverseView:
    if session.reverse is None:
        raise UsageError(f"{session.cipherdir}: not a reverse-mode folder")
    return session.reverse


def view_path(view: ReverseView, plain: str) -> str:
    """The path in the encrypted view of a plain path: its names encrypted one by one (§9.3)."""
    cipher = ""
    for part in [p for p in plain.split("/") if p]:
        disk, _full = view.encrypt_name(cipher, part)
        cipher = f"{cipher}/{disk}" if cipher else disk
    return cipher


def view_entry(view: ReverseView, plain: str) -> ReverseEntry:
    """The view's entry of an existing plain path ("" is the root); FsError if there is none."""
    if not plain:
        return ReverseEntry("", "", "dir", plain="")
    if plain == REVERSE_CONF_NAME and not view.config_custom:
        raise FsError(errno.ENOENT, f"{show(plain)}: the config is shown as {CONF_NAME} in the view")
    try:
        st = view.lstat_plain(plain)
    except OSError as e:
        raise FsError(e.errno or errno.EIO, f"{show(plain)}: {e.strerror or e}") from None
    cipher = view_path(view, plain)
    return ReverseEntry(cipher.rpartition("/")[2], cipher, kind_of_mode(st.st_mode), plain)


def _view_tree_size(view: ReverseView, entry: ReverseEntry) -> int:
    """Cipher bytes of the regular files below an entry of the view (for progress bars)."""
    if entry.kind != "dir":
        return view.cipher_size(entry) if entry.kind == "file" else 0
    total = 0
    todo = [entry]
    while todo:  # through the view itself: relative to directory fds, no link followed
        d = todo.pop()
        with contextlib.suppress(OSError, VaultError):
            for e in view.listdir(d.cipher_path, d.plain):
                if e.plain is None:
                    continue  # the view's own diriv, .name files and config
                if e.kind == "dir":
                    todo.append(e)
                elif e.kind == "file":
                    total += view.cipher_size(e)
    return total


def export_view(session: Session, path: str, dest: str) -> int:
    """`export` in a reverse-mode folder: write the encrypted view of PATH (a backup, §9.4).

    Like `export`, an existing directory DEST receives the entry under its (encrypted) name;
    the root goes into DEST itself, which must then be empty or new. Exporting the root gives
    a complete vault (with its gocryptfs.conf) that gocryptfs or vaultsh open in forward mode.
    Files are streamed through `ReverseView.iter_file` with progress and cancellation; a file
    cut short by a cancel or an error is removed.
    """
    view = _view(session)
    plain = session.resolve(path)
    entry = view_entry(view, plain)
    # Absolute, so that DEST always has a parent and a name ("." has neither).
    target = Path(os.path.abspath(os.path.expanduser(dest)))
    if target.is_dir():
        if plain:
            target = target / entry.cipher_name
        elif any(target.iterdir()):
            raise FsError(errno.ENOTEMPTY, f"{target}: destination directory is not empty")
    if plain and os.path.lexists(target):
        raise FsError(errno.EEXIST, f"{target}: already exists")
    if not target.parent.is_dir():
        raise FsError(errno.ENOENT, f"{target.parent}: destination directory does not exist")
    total = _view_tree_size(view, entry) if session.show_progress else 0
    counter = _ProgressCounter(session.io, total)
    report = transfer.TransferReport()
    # Everything is made relative to descriptors of directories this export opened, never
    # through a symlink: DEST's parent is the user's choice (it may be reached by a link),
    # below it nothing is followed and nothing existing is written through.
    try:
        parent_fd = os.open(target.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise fs_error(e, target.parent) from None
    try:
        _export_view_entry(session, view, entry, parent_fd, target.name, counter, report)
    finally:
        os.close(parent_fd)
    return _finish_transfer(session, report, "export")


_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _export_view_entry(
    session: Session,
    view: ReverseView,
    entry: ReverseEntry,
    dir_fd: int,
    name: str,
    counter: _ProgressCounter,
    report: transfer.TransferReport,
) -> None:
    """Write one entry of the view as `name` in the directory `dir_fd`: created new (O_EXCL,
    no symlink followed), modes and times set on the descriptor of what was created."""
    where = show(entry.plain or "") if entry.plain is not None else entry.cipher_path
    if session.io.cancelled():
        raise transfer.Cancelled()
    try:
        if entry.kind == "dir":
            try:
                os.mkdir(name, 0o700, dir_fd=dir_fd)
            except FileExistsError:
                if entry.cipher_path:
                    raise
                # The root goes into DEST itself, which export_view found empty.
            sub = os.open(name, _OPEN_DIR, dir_fd=dir_fd)
            try:
                for child in view.listdir(entry.cipher_path, entry.plain):
                    _export_view_entry(session, view, child, sub, child.cipher_name, counter, report)
                st = view.stat(entry)
                os.chmod(sub, stat_mod.S_IMODE(st.mode))
                os.utime(sub, ns=(st.atime_ns, st.mtime_ns))
            finally:
                os.close(sub)
            report.dirs += 1
        elif entry.kind == "symlink":
            os.symlink(view.readlink(entry), name, dir_fd=dir_fd)
            st = view.stat(entry)
            os.utime(name, ns=(st.atime_ns, st.mtime_ns), dir_fd=dir_fd, follow_symlinks=False)
            report.symlinks += 1
        elif entry.kind == "file":
            fd = os.open(name, _NEW_FILE, 0o600, dir_fd=dir_fd)
            try:
                with open(fd, "wb", closefd=False) as f:
                    for chunk in view.iter_file(entry):
                        f.write(chunk)
                        report.bytes += len(chunk)
                        counter(len(chunk))
                        if session.io.cancelled():
                            raise transfer.Cancelled()
                st = view.stat(entry)
                os.chmod(fd, stat_mod.S_IMODE(st.mode))
                os.utime(fd, ns=(st.atime_ns, st.mtime_ns))
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=dir_fd)
                raise
            finally:
                os.close(fd)
            report.files += 1
        else:
            report.skipped.append((where, "not a file, directory or symlink"))
    except (OSError, VaultError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        report.failed.append((where, why))


def _list_view(session: Session, path: str, *, long: bool, recursive: bool, cipher: bool) -> int:
    """`ls` in a reverse-mode folder: the plain files, with their names in the view on request."""
    view = _view(session)
    io = session.io
    todo = [view_entry(view, session.resolve(path))]
    first = True
    while todo:
        d = todo.pop(0)
        assert d.plain is not None
        if d.kind != "dir":
            todo_entries = [d]
        else:
            todo_entries = sorted(
                (e for e in view.listdir(d.cipher_path, d.plain) if e.plain is not None),
                key=lambda e: e.plain or "",
            )
            if recursive:
                if not first:
                    io.write("")
                io.write(f"{quote_name(show(d.plain))}:")
        first = False
        subdirs = []
        for e in todo_entries:
            if io.cancelled():
                raise transfer.Cancelled()
            assert e.plain is not None
            name = quote_name(e.plain.rpartition("/")[2] if d.kind == "dir" else path)
            suffix = f"  [{quote_name(e.cipher_name)}]" if cipher else ""
            if long:
                st = view.lstat_plain(e.plain)
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(st.st_mtime_ns / 1e9))
                if stat_mod.S_ISLNK(st.st_mode):
                    name = f"{name} -> {quote_name(view.readlink_plain(e.plain))}"
                name = f"{stat_mod.filemode(st.st_mode)} {st.st_nlink:>3} {st.st_size:>12} {when} {name}"
            io.write(name + suffix)
            if e.kind == "dir" and d.kind == "dir":
                subdirs.append(e)
        if recursive:
            todo[0:0] = subdirs
    return 0


def make_dirs(session: Session, paths: Iterable[str], *, parents: bool = False) -> int:
    """`mkdir`: new directories (with `parents`, missing parents too and no error if present)."""
    vault = session.vault
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


def mounts_lines() -> list[str]:
    """What `mounts` prints: the table, or a line saying there is none."""
    from vaultsh.service import mounts  # loaded only when mounts are asked about

    infos = mounts.list_mounts()
    return mount_table(infos) if infos else ["no mounts"]


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


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


# -- the commands ---------------------------------------------------------------------------


def _cmd_ls(session: Session, args: list[str]) -> int:
    a = _parse(COMMANDS["ls"].usage, args, flags=("l", "a", "R", "cipher"), most=1)
    if session.reverse is not None:
        return _list_view(
            session,
            a.positional[0] if a.positional else "",
            long="l" in a.flags,
            recursive="R" in a.flags,
            cipher="cipher" in a.flags,
        )
    return list_path(
        session,
        a.positional[0] if a.positional else "",
        long="l" in a.flags,
        show_all="a" in a.flags,
        recursive="R" in a.flags,
        cipher="cipher" in a.flags,
    )


def _cmd_cd(session: Session, args: list[str]) -> int:
    a = _parse(COMMANDS["cd"].usage, args, most=1)
    target = session.resolve(a.positional[0] if a.positional else "/")
    if session.reverse is not None:
        is_dir = view_entry(session.reverse, target).kind == "dir"
    else:
        is_dir = stat_mod.S_ISDIR(session.vault.stat(target).mode)
    if not is_dir:
        raise FsError(errno.ENOTDIR, f"{show(target)}: not a directory")
    session.cwd = target
    return 0


def _cmd_pwd(session: Session, args: list[str]) -> int:
    _parse(COMMANDS["pwd"].usage, args, most=0)
    session.io.write(show(session.cwd))
    return 0


def _cmd_cat(session: Session, args: list[str]) -> int:
    a = _parse(COMMANDS["cat"].usage, args, flags=("force-decode",), least=1)
    status = 0
    for p in a.positional:
        status = cat_file(session, p, force_decode="force-decode" in a.flags) or status
    return status


def _cmd_export(session: Session, args: list[str]) -> int:
    a = _parse(COMMANDS["export"].usage, args, flags=("force-decode",), least=2, most=2)
    if session.reverse is not None:
        return export_view(session, a.positional[0], a.positional[1])
    return export_path(session, a.positional[0], a.positional[1], force_decode="force-decode" in a.flags)


def _cmd_import(session: Session, args: list[str]) -> int:
    a = _parse(COMMANDS["import"].usage, args, least=1, most=2)
    return import_path(session, a.positional[0], a.positional[1] if len(a.positional) > 1 else None)


def _cmd_mkdir(session: Session, args: list[str]) -> int:
    a = _parse(COMMANDS["mkdir"].usage, args, flags="p", least=1)
    return make_dirs(session, a.positional, parents="p" in a.flags)


def _cmd_mv(session: Session, args: list[str]) -> int:
    a = _parse(COMMANDS["mv"].usage, args, flags=("f", "force"), least=2, most=2)
    forced = "overwrite" if a.flags & {"f", "force"} else None
    return move_path(session, a.positional[0], a.positional[1], on_exists=forced)


def _cmd_rm(session: Session, args: list[str]) -> int:
    a = _parse(COMMANDS["rm"].usage, args, flags="rf", least=1)
    for p in a.positional:
        if "f" in a.flags and not session.vault.exists(session.resolve(p)):
            continue  # -f: a missing path is not an error
        remove_path(session, p, recursive="r" in a.flags)
    return 0


def _cmd_decrypt_path(session: Session, args: list[str]) -> int:
    a = _parse(COMMANDS["decrypt-path"].usage, args, least=1)
    return decrypt_paths(session, a.positional)


def _cmd_encrypt_path(session: Session, args: list[str]) -> int:
    a = _parse(COMMANDS["encrypt-path"].usage, args, least=1)
    return encrypt_paths(session, a.positional)


def _cmd_info(session: Session, args: list[str]) -> int:
    _parse(COMMANDS["info"].usage, args, most=0)
    io = session.io
    io.write(f"{'Vault:':<19}{session.cipherdir}")
    if session.reverse is not None:
        io.write(f"{'Mode:':<19}reverse (read-only encrypted view of the plain files)")
    conf = session.vault.conf
    if conf is None:
        io.write(f"{'Config:':<19}none (unlocked with the master key)")
        io.write(f"{'contentEncryption:':<19}{session.vault.options.content_encryption}")
        return 0
    io.write(f"{'Config:':<19}{session.conf_path}")
    for line in conf.info_lines():
        io.write(line)
    return 0


def _cmd_passwd(session: Session, args: list[str]) -> int:
    _parse(COMMANDS["passwd"].usage, args, most=0)
    io = session.io
    if session.vault.conf is None:
        # Unlocked with the master key and no config: passwd means writing one.
        from vaultsh.service import recover

        return recover.in_session(session, recover.Choices())

    def ask_new() -> bytes:
        new = io.ask_secret("New password: ")
        if io.ask_secret("Repeat: ") != new:
            raise ReadPasswordError("Passwords do not match")
        return new

    key = session.vault.keys.master_key
    bak, conf = change_password(
        session.conf_path,
        session.cipherdir,
        ask_new,
        old_password=None if session.by_master_key else lambda: io.ask_secret("Old password: "),
        master_key=(lambda: key) if session.by_master_key else None,
    )
    session.vault.conf = conf
    io.write(f"Password changed. The previous config is kept as {bak}.")
    return 0


def _cmd_recover(session: Session, args: list[str]) -> int:
    from vaultsh.service import recover

    format_flags = ("aessiv", "xchacha", "plaintextnames", "deterministic-names", "defaults", "dry-run")
    a = _parse(COMMANDS["recover"].usage, args, flags=format_flags, valued=("longnamemax",), most=0)
    try:
        longname_max = int(a.values.get("longnamemax", "0"))
    except ValueError:
        raise UsageError(f"--longnamemax {a.values['longnamemax']!r} is not a number") from None
    choices = recover.Choices(
        plaintext_names="plaintextnames" in a.flags,
        deterministic_names="deterministic-names" in a.flags,
        aessiv="aessiv" in a.flags,
        xchacha="xchacha" in a.flags,
        longname_max=longname_max,
        defaults="defaults" in a.flags,
    )
    return recover.in_session(session, choices, dry_run="dry-run" in a.flags)


def _cmd_masterkey(session: Session, args: list[str]) -> int:
    _parse(COMMANDS["masterkey"].usage, args, most=0)
    conf = session.vault.conf
    if conf is None:
        raise UsageError("this vault was unlocked with its master key and has no config to check")
    # Asked again although the vault is open: the key is the one thing that must not leak
    # from a terminal left unattended.
    key = reveal_master_key(conf, session.io.ask_secret("Password: "))
    show_secret = session.hooks.get("masterkey")
    if show_secret is not None:
        show_secret(key)  # a front-end that keeps it out of its output (the TUI's dialog)
    else:
        session.io.write(key)
    return 0


def _cmd_mount(session: Session, args: list[str]) -> int:
    a = _parse(COMMANDS["mount"].usage, args, flags=("ro",), valued=("idle",), least=1, most=1)
    from vaultsh.service import mounts  # loaded only when mounts are asked about

    idle = mounts.parse_duration(a.values["idle"]) if "idle" in a.values else None
    reverse = session.reverse is not None
    request = mounts.MountRequest(
        source=session.cipherdir,
        mountpoint=Path(os.path.expanduser(a.positional[0])).absolute(),
        reverse=reverse,
        read_only="ro" in a.flags or reverse,  # the encrypted view is always read-only (§9.1)
        idle=idle,
        config=session.config_path,
        # A vault unlocked by master key without a config: the worker needs its format flags.
        options=session.vault.options if session.vault.conf is None else None,
        key_proven=not session.by_master_key,
    )
    info = mounts.mount(request, session.vault.keys.master_key)
    session.io.write(f"mounted {info.source} at {info.mountpoint} (pid {info.pid})")
    return 0


def _cmd_unmount(session: Session, args: list[str]) -> int:
    a = _parse(COMMANDS["unmount"].usage, args, most=1)
    from vaultsh.service import mounts  # loaded only when mounts are asked about

    if a.positional:
        target = Path(os.path.expanduser(a.positional[0])).absolute()
    else:
        mine = mounts.find_mount(session.cipherdir)
        if mine is None:
            raise UsageError(f"{session.cipherdir} is not mounted; name the mountpoint")
        target = Path(mine.mountpoint)
    mounts.unmount(target)
    session.io.write(f"unmounted {target}")
    return 0


def _cmd_mounts(session: Session, args: list[str]) -> int:
    _parse(COMMANDS["mounts"].usage, args, most=0)
    for line in mounts_lines():
        session.io.write(line)
    return 0


def _cmd_theme(session: Session, args: list[str]) -> int:
    a = _parse(COMMANDS["theme"].usage, args, most=1)
    hook = session.hooks.get("theme")
    if hook is None:
        raise UsageError("themes exist only in the full-screen interface")
    hook(a.positional[0] if a.positional else None)
    return 0


def _cmd_help(session: Session, args: list[str]) -> int:
    a = _parse(COMMANDS["help"].usage, args, most=1)
    io = session.io
    if a.positional:
        cmd = lookup(a.positional[0])
        if cmd is None:
            raise UsageError(f"{a.positional[0]}: unknown command")
        io.write(f"usage: {cmd.usage}")
        io.write(f"  {cmd.summary}")
        if cmd.aliases:
            io.write(f"  also: {', '.join(cmd.aliases)}")
        return 0
    width = max(len(c.usage) for c in COMMANDS.values())
    for cmd in COMMANDS.values():
        io.write(f"  {cmd.usage:<{width}}  {cmd.summary}")
    return 0


def _cmd_exit(session: Session, args: list[str]) -> int:
    _parse(COMMANDS["exit"].usage, args, most=0)
    session.finished = True
    hook = session.hooks.get("exit")
    if hook is not None:
        hook()
    return 0


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command("ls", "list a directory (-l long, -a undecryptable too, -R recursive)",
                "ls [-l] [-a] [-R] [--cipher] [PATH]", ("dir",), _cmd_ls, "plain-path"),
        Command("cd", "change the current vault directory", "cd [PATH]", (), _cmd_cd, "plain-dir"),
        Command("pwd", "show the current vault directory", "pwd", (), _cmd_pwd),
        Command("cat", "show a file's decrypted text", "cat [--force-decode] PATH...", (), _cmd_cat,
                "plain-path"),
        Command("export", "decrypt a file or tree to a local path", "export [--force-decode] PATH DEST",
                ("get",), _cmd_export, "plain-path local-path"),
        Command("import", "encrypt a local file or tree into the vault", "import SRC [PATH]", ("put",),
                _cmd_import, "local-path plain-path"),
        Command("mkdir", "make directories (-p: with parents)", "mkdir [-p] PATH...", (), _cmd_mkdir,
                "plain-dir"),
        Command("mv", "move or rename (asks before replacing; -f replaces)", "mv [-f] SRC DST",
                ("rename",), _cmd_mv, "plain-path"),
        Command("rm", "remove files (-r: directories with their contents)", "rm [-r] PATH...", (),
                _cmd_rm, "plain-path"),
        Command("decrypt-path", "plain path of a cipher path", "decrypt-path CIPHERPATH...",
                ("decrypt-paths",), _cmd_decrypt_path, "none"),
        Command("encrypt-path", "cipher path of a plain path", "encrypt-path PLAINPATH...",
                ("encrypt-paths",), _cmd_encrypt_path, "plain-path"),
        Command("info", "show the vault's config summary", "info", (), _cmd_info),
        Command("mount", "mount the vault with FUSE", "mount MOUNTPOINT [--ro] [--idle DURATION]", (),
                _cmd_mount, "local-path"),
        Command("unmount", "unmount a mount (default: this vault's)", "unmount [MOUNTPOINT]", ("umount",),
                _cmd_unmount, "local-path"),
        Command("mounts", "list running mounts", "mounts", (), _cmd_mounts),
        Command("passwd", "change the vault password", "passwd", (), _cmd_passwd),
        Command("recover", "write a new config from the master key (FLAGS: init's format flags)",
                "recover [--dry-run] [--defaults] [FLAGS]", (), _cmd_recover),
        Command("masterkey", "show the master key (asks the password again)", "masterkey", (),
                _cmd_masterkey),
        Command("theme", "switch the colour theme (no name: list them)", "theme [NAME]", (), _cmd_theme),
        Command("help", "list commands, or explain one", "help [COMMAND]", ("?",), _cmd_help, "command"),
        Command("exit", "leave the session", "exit", ("quit",), _cmd_exit),
    )
}  # fmt: skip

_ALIASES = {alias: c for c in COMMANDS.values() for alias in c.aliases}

# Commands whose lines are never written to a shell history (they deal in secrets).
SECRET_COMMANDS = frozenset({"passwd", "masterkey", "recover"})

# Commands that make sense on a reverse-mode folder; the others write into a vault, and the
# encrypted view is read-only (its plain files are changed directly).
REVERSE_COMMANDS = frozenset(COMMANDS) - {"import", "mkdir", "mv", "rm"}


# -- integrity: fsck and sync-conflict copies (service/integrity.py) -------------------------


def _cmd_fsck(session: Session, args: list[str]) -> int:
    from vaultsh.service import integrity

    a = _parse(COMMANDS["fsck"].usage, args, flags=("json", "force-decode"), valued=("quarantine",), most=1)
    from vaultsh.vault import fsck

    dest = a.values.get("quarantine")
    path = session.resolve(a.positional[0] if a.positional else "")
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
        as_json="json" in a.flags,
        quarantine=Path(os.path.expanduser(dest)) if dest else None,
        force_decode="force-decode" in a.flags,
        progress=progress,
    )


def _cmd_conflicts(session: Session, args: list[str]) -> int:
    from vaultsh.service import integrity

    a = _parse(COMMANDS["conflicts"].usage, args, flags=("adopt",), valued=("export",), most=1)
    dest = a.values.get("export")
    return integrity.report_conflicts(
        session.vault,
        session.resolve(a.positional[0] if a.positional else ""),
        session.io.write,
        session.io.error,
        adopt_all="adopt" in a.flags,
        export_to=Path(os.path.expanduser(dest)) if dest else None,
    )


COMMANDS.update(
    (c.name, c)
    for c in (
        Command("fsck", "check names, dirivs, headers, blocks, symlinks and xattrs (exit 26: damage)",
                "fsck [--json] [--quarantine DIR [--force-decode]] [PATH]", (), _cmd_fsck, "plain-dir"),
        Command("conflicts", "list sync-conflict copies, compare them; keep (--adopt) or --export them",
                "conflicts [--adopt | --export DIR] [PATH]", (), _cmd_conflicts, "plain-dir"),
    )
)  # fmt: skip


def lookup(name: str) -> Command | None:
    return COMMANDS.get(name) or _ALIASES.get(name)


def command_names() -> list[str]:
    return sorted([*COMMANDS, *_ALIASES])


def run_line(session: Session, line: str) -> int:
    """Run one typed line; every failure is one line through io.error and its exit code."""
    io = session.io
    try:
        argv = split_line(line)
    except ValueError as e:
        io.error(f"cannot parse the line: {e}")
        return ExitCode.USAGE
    if not argv:
        return 0
    cmd = lookup(argv[0])
    if cmd is None:
        io.error(f"{argv[0]}: unknown command (help lists them)")
        return ExitCode.USAGE
    if session.reverse is not None and cmd.name not in REVERSE_COMMANDS:
        io.error(reverse_refusal(cmd.name, session.cipherdir))
        return ExitCode.USAGE
    try:
        return cmd.run(session, argv[1:])
    except VaultError as e:
        io.error(str(e))
        return int(e.exit_code)
    except transfer.Cancelled:
        io.error("cancelled")
        return ExitCode.SIGINT
    except KeyboardInterrupt:
        io.error("interrupted")
        return ExitCode.SIGINT
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        io.error(f"{where}{e.strerror or e}")
        return ExitCode.OTHER


def keeps_history(line: str) -> bool:
    """Whether a typed line may be stored in a shell history (no secret-handling commands)."""
    try:
        words = split_line(line)
    except ValueError:
        words = line.split()
    if not words:
        return False
    cmd = lookup(words[0])
    return cmd is None or cmd.name not in SECRET_COMMANDS


# -- completion ------------------------------------------------------------------------------


def split_line(line: str) -> list[str]:
    """The words of a typed line, as a POSIX shell splits and unquotes them.

    Besides '...', "..." and backslashes this reads bash's $'...' (what `ls` shows for names
    with control characters or invalid UTF-8), so a name can be pasted back exactly.
    ValueError for an unclosed quote.
    """
    words, raw, value = _scan(line, strict=True)
    return [*words, value] if raw else words


_ANSI_C_ESCAPES = {"a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r"}
_ANSI_C_ESCAPES |= {"t": "\t", "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?"}
_ANSI_C_NUMBER = re.compile(r"([0-7]{1,3})|x([0-9a-fA-F]{1,2})|u([0-9a-fA-F]{1,4})|U([0-9a-fA-F]{1,8})")


def _ansi_c(text: str, i: int) -> tuple[str, int, bool]:
    """Decode bash's $'...' whose opening quote is at text[i]: (value, index after, closed).

    Octal and hex escapes are bytes, so `$'\\377'` is the byte 0xff; the caller turns the
    word's bytes back into a name with os.fsdecode.
    """
    out: list[str] = []
    i += 1
    while i < len(text):
        ch = text[i]
        if ch == "'":
            return "".join(out), i + 1, True
        if ch != "\\" or i + 1 == len(text):
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        m = _ANSI_C_NUMBER.match(text, i + 1)
        if nxt in _ANSI_C_ESCAPES:
            out.append(_ANSI_C_ESCAPES[nxt])
            i += 2
        elif m and (m.group(1) or m.group(2)):
            byte = int(m.group(1), 8) & 0xFF if m.group(1) else int(m.group(2), 16)
            out.append(os.fsdecode(bytes([byte])))
            i = m.end()
        elif m and not 0xD800 <= int(m.group(3) or m.group(4), 16) <= 0xDFFF:
            code = int(m.group(3) or m.group(4), 16)
            out.append(chr(code) if code <= 0x10FFFF else text[i : m.end()])
            i = m.end()
        else:
            out.append(text[i : i + 2])
            i += 2
    return "".join(out), i, False


def _word(value: list[str]) -> str:
    """A finished word: bytes given as escapes ($'\\302\\233') rejoined into characters."""
    text = "".join(value)
    try:
        return os.fsdecode(os.fsencode(text))
    except UnicodeEncodeError:
        return text


def _scan(text: str, *, strict: bool = False) -> tuple[list[str], str, str]:
    """(finished words, raw text of the word being typed, its unquoted value).

    Like shlex in POSIX mode (plus bash's $'...'), but an open quote at the end is allowed:
    that is the word someone is typing. With `strict` an open quote is a ValueError.
    """
    words: list[str] = []
    value: list[str] = []
    start = 0
    in_word = False
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "$" and not quote and text.startswith("'", i + 1):
            if not in_word:
                in_word, start = True, i
            decoded, i, closed = _ansi_c(text, i + 1)
            value.append(decoded)
            if not closed and strict:
                raise ValueError("No closing quotation")
            continue
        if quote:
            if ch == quote:
                quote = ""
            elif ch == "\\" and quote == '"' and i + 1 < len(text) and text[i + 1] in '"\\$`':
                i += 1
                value.append(text[i])
            else:
                value.append(ch)
        elif ch.isspace():
            if in_word:
                words.append(_word(value))
                value, in_word = [], False
        else:
            if not in_word:
                in_word, start = True, i
            if ch in "'\"":
                quote = ch
            elif ch == "\\":
                if i + 1 < len(text):
                    i += 1
                    value.append(text[i])
            else:
                value.append(ch)
        i += 1
    if quote and strict:
        raise ValueError("No closing quotation")
    if not in_word:
        return words, "", ""
    return words, text[start:], _word(value)


def current_word(text_before_cursor: str) -> str:
    """The raw (possibly quoted) word under the cursor that `complete` candidates replace."""
    return _scan(text_before_cursor)[1]


def _quote(path: str) -> str:
    # Shell-quoted as `ls` shows it: a name with control characters goes in as $'...', so
    # the typed line never holds them raw; split_line reads it back exactly.
    return quote_name(path, shell=True) if path else path


def _complete_plain(session: Session, prefix: str, dirs_only: bool) -> list[str]:
    head = prefix[: prefix.rfind("/") + 1]
    stem = prefix[len(head) :]
    try:
        if session.reverse is not None:
            d = view_entry(session.reverse, session.resolve(head))
            found = session.reverse.listdir(d.cipher_path, d.plain) if d.kind == "dir" else []
            entries = [(e.plain.rpartition("/")[2], e.kind == "dir") for e in found if e.plain is not None]
        else:
            entries = [(e.name, e.is_dir) for e in session.vault.listdir(session.resolve(head))]
    except (VaultError, OSError):
        return []
    out = []
    for name, is_dir in sorted(entries):
        if not name.startswith(stem) or (dirs_only and not is_dir):
            continue
        if name.startswith(".") and not stem.startswith("."):
            continue
        out.append(head + name + ("/" if is_dir else ""))
    return out


def _complete_local(prefix: str, dirs_only: bool = False) -> list[str]:
    head = prefix[: prefix.rfind("/") + 1]
    stem = prefix[len(head) :]
    where = os.path.expanduser(head) if head else "."
    try:
        with os.scandir(where) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return []
    out = []
    for e in entries:
        if not e.name.startswith(stem) or (e.name.startswith(".") and not stem.startswith(".")):
            continue
        try:
            is_dir = e.is_dir()
        except OSError:
            is_dir = False
        if dirs_only and not is_dir:
            continue
        out.append(head + e.name + ("/" if is_dir else ""))
    return out


def complete(session: Session, text_before_cursor: str) -> list[str]:
    """Candidates for the word under the cursor: command names, or decrypted / local paths.

    Each candidate is quoted as `run_line` would read it and replaces `current_word(text)`:
    the completed line is `text[: len(text) - len(current_word(text))] + candidate`.
    Directories end in '/', so completing again descends into them.
    """
    words, _raw, prefix = _scan(text_before_cursor)
    if not words:
        return [n for n in command_names() if n.startswith(prefix) and n != "?"]
    cmd = lookup(words[0])
    if cmd is None or prefix.startswith("-"):
        return []
    position = sum(1 for w in words[1:] if not w.startswith("-"))
    kind = cmd.completion_kind(position)
    if kind == "command":
        return [n for n in sorted(COMMANDS) if n.startswith(prefix)]
    if kind in ("plain-path", "plain-dir"):
        found = _complete_plain(session, prefix, dirs_only=kind == "plain-dir")
    elif kind == "local-path":
        found = _complete_local(prefix)
    else:
        return []
    return [_quote(p) for p in found]
