"""A decrypted vault file as a private temporary copy for $PAGER or $EDITOR, saved back atomically."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import secrets
import shlex
import shutil
import stat as stat_mod
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from vaultsh.vault.display import has_unsafe_chars
from vaultsh.vault.errors import FsError, VaultError
from vaultsh.vault.vault import Vault

CHUNK = 1 << 20
DEFAULT_PROGRAMS = {"PAGER": "less", "EDITOR": "vi"}


@dataclass
class PrivateCopy:
    """The decrypted copy of `path` in a directory only its owner can enter (0700)."""

    path: str  # the vault path it came from
    directory: Path
    file: Path
    digest: bytes  # of the contents as written, to tell whether an editor changed them

    def changed(self) -> bool:
        try:
            return _digest_of(self.file) != self.digest
        except OSError:
            return False  # removed or unreadable: nothing to save back

    def size(self) -> int:
        return os.lstat(self.file).st_size

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _digest_of(file: Path) -> bytes:
    h = hashlib.sha256()
    fd = os.open(file, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with open(fd, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.digest()


def _temp_base() -> str | None:
    """$XDG_RUNTIME_DIR when it is ours: a tmpfs on most systems, so the plaintext stays off disk."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        with contextlib.suppress(OSError):
            st = os.stat(runtime)
            if stat_mod.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077:
                return runtime
    return None  # tempfile's default: $TMPDIR or /tmp


def _local_name(name: str) -> str:
    """The copy's name: the plain name, unless a terminal or the program could trip over it
    (control characters, invalid UTF-8, a leading dash read as an option)."""
    if has_unsafe_chars(name) or name.startswith("-"):
        name = "".join("_" if has_unsafe_chars(ch) else ch for ch in name).lstrip("-") or "file"
    return name


def private_copy(path: str, chunks: Iterable[bytes | memoryview]) -> PrivateCopy:
    """The bytes `chunks` yields (the plain content of the file `path` of a vault or a
    reverse-mode folder) written into a new private directory (mode 0700, file 0600)."""
    directory = Path(tempfile.mkdtemp(prefix="vaultsh-open-", dir=_temp_base()))
    try:
        file = directory / _local_name(path.rpartition("/")[2])
        h = hashlib.sha256()
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with open(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
                h.update(chunk)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return PrivateCopy(path, directory, file, h.digest())


def program(variable: str) -> list[str]:
    """The command line of $PAGER or $EDITOR (split as a shell would), or the usual default."""
    return shlex.split(os.environ.get(variable) or DEFAULT_PROGRAMS[variable])


def save_back(vault: Vault, copy: PrivateCopy) -> None:
    """Encrypt the edited copy over its vault file atomically: it is written under a temporary
    name beside the file and renamed over it, so a failure leaves the old contents whole. The
    file keeps its mode."""
    path = copy.path
    parent, _, name = path.rpartition("/")
    cparent = vault.cipher_path(parent)
    mode = stat_mod.S_IMODE(vault.stat(path).mode)
    tmp = f".vaultsh-{secrets.token_hex(8)}.part"  # the name an interrupted import leaves too
    shown_tmp = f"{parent}/{tmp}" if parent else tmp
    fd = os.open(copy.file, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with open(fd, "rb") as src:
        if not stat_mod.S_ISREG(os.fstat(fd).st_mode):
            raise FsError(errno.EINVAL, f"{copy.file}: no longer a regular file; nothing saved")
        out, _ = vault.create_at(cparent, tmp, 0o600, path)
        try:
            with out:
                # Locked until renamed: an import starting in this directory removes the
                # temporary files it finds unlocked, as those of imports that were killed.
                fcntl.flock(out.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                offset = 0
                while chunk := src.read(CHUNK):
                    out.write(offset, chunk)
                    offset += len(chunk)
                os.fchmod(out.fd, mode)
                out.fsync()  # on disk before it replaces the old contents: a crash keeps one whole
                vault.rename_at(cparent, tmp, cparent, name, where=(shown_tmp, path))
        except BaseException:
            with contextlib.suppress(VaultError, OSError):
                vault.unlink_at(cparent, tmp, shown_tmp)
            raise
