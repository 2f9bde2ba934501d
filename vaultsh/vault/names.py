"""File names: base64 variants, PKCS#7, EME names, long-name hashing, diriv files (spec §6)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import os
import re
import stat as stat_mod
from pathlib import Path

from vaultsh.crypto.eme import EME
from vaultsh.vault.errors import CorruptionError, FsError, short_path
from vaultsh.vault.fdio import write_all
from vaultsh.vault.keys import FormatOptions

DIRIV_NAME = "gocryptfs.diriv"
DIRIV_LEN = 16
LONGNAME_PREFIX = "gocryptfs.longname."
LONGNAME_SUFFIX = ".name"
NAME_MAX = 255
MAX_NAME_FILE = 344  # the longest encoded name: 255 bytes padded, base64 with padding (§6.7)
ZERO_IV = bytes(DIRIV_LEN)
XATTR_NAME_IV = b"xattr_name_iv_xx"  # tweak for xattr names (§7.2)
XATTR_PREFIX = "user.gocryptfs."  # every encrypted xattr name is stored under it (§7.2)
# POSIX ACLs are passed through unencrypted so that the backing filesystem enforces them.
XATTR_PASSTHROUGH = frozenset({"system.posix_acl_access", "system.posix_acl_default"})

_RAW64_RE = re.compile(r"[A-Za-z0-9_-]*")
_PAD64_RE = re.compile(r"[A-Za-z0-9_-]*={0,2}")


class NameError_(CorruptionError):
    """A cipher name that does not decrypt to a valid plain name (gocryptfs: EBADMSG, hidden)."""

    errno = errno.EBADMSG


def pad16(data: bytes) -> bytes:
    """PKCS#7 padding to 16 bytes; a full block of 0x10 when already aligned (§6.2)."""
    if not data:
        raise ValueError("cannot pad an empty name")
    k = 16 - len(data) % 16
    return data + bytes([k]) * k


def unpad16(data: bytes) -> bytes:
    """Undo PKCS#7 with every check gocryptfs makes; a valid result is never empty (§6.2)."""
    n = len(data)
    if n == 0 or n % 16:
        raise ValueError("padded length is not a positive multiple of 16")
    k = data[-1]
    if k == 0 or k > 16 or k >= n:
        raise ValueError("invalid padding length")
    if data[-k:] != bytes([k]) * k:
        raise ValueError("padding bytes differ")
    return data[:-k]


def b64_encode(data: bytes, raw: bool) -> str:
    text = base64.urlsafe_b64encode(data).decode("ascii")
    return text.rstrip("=") if raw else text


_B64_VALUE = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")}
_URL_TO_STD = bytes.maketrans(b"-_", b"+/")


def b64_decode(text: str, raw: bool) -> bytes:
    """Strict URL-safe base64 as gocryptfs v2.5+ reads names: canonical only, no CR/LF (§6.4)."""
    if not (_RAW64_RE if raw else _PAD64_RE).fullmatch(text):
        raise ValueError("characters outside the base64url alphabet")
    body = text.rstrip("=")
    pad = len(text) - len(body)
    rem = len(body) % 4
    if rem == 1 or (not raw and (len(text) % 4 or pad != (4 - rem) % 4)):
        raise ValueError("impossible base64 length or padding")
    # Non-zero bits below the last full byte make a second spelling of the same bytes
    # (malleable base64); Python's decoder ignores them, so check the last character.
    if rem and _B64_VALUE[body[-1]] & (0x0F if rem == 2 else 0x03):
        raise ValueError("non-canonical base64")
    try:
        return binascii.a2b_base64((body + "=" * (-rem % 4)).encode("ascii").translate(_URL_TO_STD))
    except binascii.Error:
        raise ValueError("invalid base64") from None


def check_plain_name(name: bytes) -> None:
    """Refuse names no filesystem entry can have (§6.8); ENAMETOOLONG above 255 bytes."""
    if not name or name in (b".", b".."):
        raise FsError(errno.EINVAL, f"invalid file name {os.fsdecode(name)!r}")
    if b"/" in name or b"\0" in name:
        raise FsError(errno.EINVAL, f"file name {os.fsdecode(name)!r} contains '/' or NUL")
    if len(name) > NAME_MAX:
        shown = short_path(os.fsdecode(name), 80)
        raise FsError(
            errno.ENAMETOOLONG, f"{shown!r}: file name too long ({len(name)} bytes, at most {NAME_MAX})"
        )


def is_long_name(cipher_name: str) -> bool:
    """A hashed long-name object (not its `.name` sidecar)."""
    return cipher_name.startswith(LONGNAME_PREFIX) and not cipher_name.endswith(LONGNAME_SUFFIX)


def is_name_file(cipher_name: str) -> bool:
    return cipher_name.startswith(LONGNAME_PREFIX) and cipher_name.endswith(LONGNAME_SUFFIX)


def looks_encrypted(cipher_name: str, raw64: bool | None = None) -> bool:
    """Whether a short cipher name is shaped like an encrypted one: base64 (unpadded, padded,
    or with None either) of a whole number of 16-byte blocks (§6.3, §6.4).

    Nothing else can be a vault object under any key, so a name such as `.DS_Store`,
    `desktop.ini` or a sync tool's temporary file says nothing about whether a key fits.
    """
    for raw in (True, False) if raw64 is None else (raw64,):
        try:
            decoded = b64_decode(cipher_name, raw)
        except ValueError:
            continue
        if decoded and len(decoded) % 16 == 0:
            return True
    return False


class NameCodec:
    """Encrypts and decrypts single path components under one vault's options (§6)."""

    def __init__(self, eme: EME | None, options: FormatOptions) -> None:
        self._eme = eme
        self.options = options
        self.raw64 = options.raw64
        # Names longer than this (encoded) are hashed; unlimited when long names are off.
        self.longname_max = options.longname_max if options.longnames else 1 << 30

    @property
    def eme(self) -> EME:
        if self._eme is None:
            raise RuntimeError("no EME key")
        return self._eme

    def encrypt(self, name: bytes, iv: bytes) -> str:
        """The full (unhashed) encrypted base64 name of a plain component."""
        check_plain_name(name)
        return b64_encode(self.eme.encrypt(iv, pad16(name)), self.raw64)

    def decrypt(self, cipher_name: str, iv: bytes) -> bytes:
        """Decrypt a full base64 name; raises NameError_ saying why it is not a valid name."""
        result = self.decrypt_many([cipher_name], iv)[0]
        if isinstance(result, NameError_):
            raise result
        return result

    def _decode(self, cipher_name: str) -> bytes:
        try:
            raw = b64_decode(cipher_name, self.raw64)
        except ValueError as e:
            raise NameError_(f"{cipher_name!r}: {e}") from None
        if not raw or len(raw) % 16 or len(raw) > 16 * 128:
            raise NameError_(f"{cipher_name!r}: decoded length {len(raw)} is not a block multiple")
        return raw

    def decrypt_many(self, cipher_names: list[str], iv: bytes) -> list[bytes | NameError_]:
        """Decrypt the names of one directory in a batch; each result is a name or the error."""
        results: list[bytes | NameError_] = []
        todo: list[int] = []
        raws: list[bytes] = []
        decode = self._decode
        for i, name in enumerate(cipher_names):
            try:
                raws.append(decode(name))
            except NameError_ as e:
                results.append(e)
                continue
            todo.append(i)
            results.append(b"")
        for i, padded in zip(todo, self.eme.decrypt_many(iv, raws), strict=True):
            # Inline PKCS#7 check (see unpad16): this loop runs once per directory entry.
            k = padded[-1]
            n = len(padded)
            if k == 0 or k > 16 or k >= n or padded.count(k, n - k) != k:
                results[i] = NameError_(
                    f"{cipher_names[i]!r}: does not decrypt (bad padding; wrong diriv or key?)"
                )
                continue
            plain = padded[: n - k]
            if len(plain) > NAME_MAX or b"/" in plain or b"\0" in plain or plain in (b".", b".."):
                results[i] = NameError_(f"{cipher_names[i]!r}: decrypts to an invalid name")
                continue
            results[i] = plain
        return results

    def hash_long(self, full_name: str) -> str:
        """`gocryptfs.longname.` + B64(SHA-256(encrypted name)) (§6.7)."""
        import hashlib  # here, not at the top: ~1 ms of every mount's start, for long names only

        digest = hashlib.sha256(full_name.encode("ascii")).digest()
        return LONGNAME_PREFIX + b64_encode(digest, self.raw64)

    def disk_name(self, full_name: str) -> str:
        """What goes on disk for an encrypted name: itself, or its hash when too long."""
        return self.hash_long(full_name) if len(full_name) > self.longname_max else full_name

    # -- xattr names (§7.2) -------------------------------------------------------------

    def encrypt_xattr_name(self, name: bytes) -> str:
        if not name or b"\0" in name:
            raise FsError(errno.EINVAL, "invalid xattr name")
        return XATTR_PREFIX + b64_encode(self.eme.encrypt(XATTR_NAME_IV, pad16(name)), self.raw64)

    def decrypt_xattr_name(self, stored: str) -> bytes:
        prefix = XATTR_PREFIX
        if not stored.startswith(prefix):
            raise NameError_(f"xattr {stored!r} lacks the user.gocryptfs. prefix")
        try:
            raw = b64_decode(stored[len(prefix) :], self.raw64)
            return unpad16(self.eme.decrypt(XATTR_NAME_IV, raw))
        except ValueError as e:
            raise NameError_(f"xattr {stored!r}: {e}") from None


def read_regular(path: str | Path, limit: int, *, dir_fd: int | None = None) -> bytes:
    """Up to `limit` bytes of a regular file; never follows a symlink or waits on a FIFO.

    A cipher dir is shared with sync tools and other people, so a planted link or pipe in
    the place of a diriv or sidecar must fail (ELOOP, EINVAL), not redirect or hang the reader.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        mode = os.fstat(fd).st_mode
        if not stat_mod.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"not a regular file but {_kind_of(mode)}")
        return os.pread(fd, limit, 0)
    finally:
        os.close(fd)


def _kind_of(mode: int) -> str:
    if stat_mod.S_ISDIR(mode):
        return "a directory"
    if stat_mod.S_ISFIFO(mode):
        return "a FIFO"
    if stat_mod.S_ISCHR(mode) or stat_mod.S_ISBLK(mode):
        return "a device"
    if stat_mod.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def why_unreadable(e: OSError) -> str:
    """Why vault metadata could not be read, for a message: a planted symlink is named as one
    (O_NOFOLLOW answers ELOOP), other errors keep the system's words."""
    if e.errno == errno.ELOOP:
        return "is a symbolic link (not followed: a vault never has one here)"
    return e.strerror or str(e)


def _read_small(cipher_dir: Path, name: str, limit: int, dir_fd: int | None) -> bytes:
    return read_regular(name if dir_fd is not None else cipher_dir / name, limit, dir_fd=dir_fd)


def _create_small(cipher_dir: Path, name: str, data: bytes, sync: bool, dir_fd: int | None) -> None:
    where: str | Path = name if dir_fd is not None else cipher_dir / name
    fd = os.open(
        where, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o444, dir_fd=dir_fd
    )
    try:
        write_all(fd, data)  # a short write (a full disk) is retried until it raises
        if sync:
            os.fsync(fd)
    except BaseException:
        # Made by this call (O_EXCL), so it is removed again: an empty or short diriv or
        # sidecar left behind would read as damage (and keep a failed mkdir's directory).
        with contextlib.suppress(OSError):
            os.unlink(where, dir_fd=dir_fd)
        raise
    finally:
        os.close(fd)


def read_diriv(cipher_dir: Path, *, dir_fd: int | None = None) -> bytes:
    """Read and check a directory's IV: exactly 16 bytes, not all zero (§6.5).

    With `dir_fd` (a descriptor of `cipher_dir`), the file is opened relative to it and
    `cipher_dir` only names it in messages.
    """
    where = short_path(cipher_dir / DIRIV_NAME)
    try:
        iv = _read_small(cipher_dir, DIRIV_NAME, DIRIV_LEN + 1, dir_fd)
    except FileNotFoundError:
        raise CorruptionError(
            f"{where}: gocryptfs.diriv is missing; names here cannot be decrypted"
        ) from None
    except OSError as e:
        raise CorruptionError(f"{where}: cannot read gocryptfs.diriv: {why_unreadable(e)}") from None
    if len(iv) != DIRIV_LEN:
        raise CorruptionError(
            f"{where}: gocryptfs.diriv has {len(iv)}{'+' if len(iv) > 16 else ''} bytes, want 16"
        )
    if iv == ZERO_IV:
        raise CorruptionError(f"{where}: gocryptfs.diriv is all zeros")
    return iv


def write_diriv(cipher_dir: Path, *, sync: bool = True, dir_fd: int | None = None) -> bytes:
    """Create a new random gocryptfs.diriv (O_EXCL, mode 0444), fsynced unless `sync` is off (§6.5)."""
    iv = os.urandom(DIRIV_LEN)
    _create_small(cipher_dir, DIRIV_NAME, iv, sync, dir_fd)
    return iv


def read_name_file(cipher_dir: Path, hashed: str, *, dir_fd: int | None = None) -> str:
    """The full encrypted name stored in `<hashed>.name` (no newline, 1..344 bytes)."""
    name = hashed + LONGNAME_SUFFIX
    where = short_path(cipher_dir / name)
    try:
        data = _read_small(cipher_dir, name, MAX_NAME_FILE + 1, dir_fd)
    except FileNotFoundError:
        raise NameError_(f"{where}: long-name sidecar is missing") from None
    except OSError as e:
        raise NameError_(f"{where}: cannot read long-name sidecar: {why_unreadable(e)}") from None
    if not data or len(data) > MAX_NAME_FILE:
        raise NameError_(f"{where}: long-name sidecar has a bad size ({len(data)} bytes)")
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise NameError_(f"{where}: long-name sidecar is not ASCII") from None


def write_name_file(
    cipher_dir: Path, hashed: str, full_name: str, *, sync: bool = True, dir_fd: int | None = None
) -> bool:
    """Create `<hashed>.name` (mode 0444); False if it already exists (EEXIST is fine, §6.7)."""
    try:
        _create_small(cipher_dir, hashed + LONGNAME_SUFFIX, full_name.encode("ascii"), sync, dir_fd)
    except FileExistsError:
        return False
    return True
