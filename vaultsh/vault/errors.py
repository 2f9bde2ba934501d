"""Typed vault errors, each carrying the exit code gocryptfs uses for the same situation (§11.7)."""

from __future__ import annotations

import errno as _errno
import os
from enum import IntEnum

# Characters of a path kept whole in a message (one name alone may be 255); longer paths
# lose their middle.
SHORT_PATH_MAX = 400


class ExitCode(IntEnum):
    """gocryptfs's exit codes (internal/exitcodes), spec §11.7."""

    OK = 0
    USAGE = 1
    CIPHER_DIR = 6
    INIT = 7
    LOAD_CONF = 8
    READ_PASSWORD = 9
    MOUNT_POINT = 10
    OTHER = 11
    PASSWORD_INCORRECT = 12
    SCRYPT_PARAMS = 13
    MASTER_KEY = 14
    SIGINT = 15
    FUSE_NEW_SERVER = 19
    CTL_SOCK = 20
    OPEN_CONF = 23
    WRITE_CONF = 24
    FSCK_ERRORS = 26
    DEPRECATED_FS = 27
    EXCLUDE_ERROR = 29
    FIDO2_ERROR = 31
    # Not a gocryptfs code (it has none for this case): the errno's own number, so a script
    # can tell "this path is too long" from corrupt data (26) or other failures (11).
    NAME_TOO_LONG = 36


def short_path(path: str | os.PathLike[str], limit: int = SHORT_PATH_MAX) -> str:
    """A path for a message: kept whole up to `limit` characters, else its start and end
    with "..." between, so a path near PATH_MAX still fits one readable line."""
    text = os.fspath(path)
    if len(text) <= limit:
        return text
    keep = limit - 3
    head = keep // 3
    return f"{text[:head]}...{text[len(text) - (keep - head) :]}"


class VaultError(Exception):
    """Base of every error the format core raises; `str()` is one line saying what and where.

    `errno` is what a filesystem would report for it (used by the FUSE layer and by shells).
    """

    exit_code: ExitCode = ExitCode.OTHER
    errno: int = _errno.EIO


class UsageError(VaultError):
    exit_code = ExitCode.USAGE
    errno = _errno.EINVAL


class ConfigError(VaultError):
    """gocryptfs.conf fails validation: unknown flag, wrong version, bad combination."""

    exit_code = ExitCode.DEPRECATED_FS


class ConfigMissingError(VaultError):
    """gocryptfs.conf cannot be read or parsed (gocryptfs v2.3 exits 11 here on mount)."""

    exit_code = ExitCode.OTHER
    errno = _errno.ENOENT


class FIDO2UnsupportedError(VaultError):
    exit_code = ExitCode.FIDO2_ERROR
    errno = _errno.EOPNOTSUPP


class PasswordIncorrectError(VaultError):
    exit_code = ExitCode.PASSWORD_INCORRECT
    errno = _errno.EACCES


class ReadPasswordError(VaultError):
    exit_code = ExitCode.READ_PASSWORD
    errno = _errno.EINVAL


class ScryptParamsError(VaultError):
    exit_code = ExitCode.SCRYPT_PARAMS


class MasterKeyError(VaultError):
    exit_code = ExitCode.MASTER_KEY
    errno = _errno.EINVAL


class CipherDirError(VaultError):
    exit_code = ExitCode.CIPHER_DIR
    errno = _errno.ENOTDIR


class InitError(VaultError):
    exit_code = ExitCode.INIT
    errno = _errno.EEXIST


class WriteConfError(VaultError):
    exit_code = ExitCode.WRITE_CONF


class CorruptionError(VaultError):
    """Authentication or structure failure in data read from the vault (EIO on a mount).

    The exit code is fsck's "corruption found", the closest gocryptfs has for a CLI read.
    """

    exit_code = ExitCode.FSCK_ERRORS
    errno = _errno.EIO


class FsError(VaultError):
    """A POSIX error on a vault path (ENOENT, EEXIST, ENOTEMPTY, ...)."""

    def __init__(self, err: int, message: str) -> None:
        super().__init__(message)
        self.errno = err
        if err == _errno.ENAMETOOLONG:
            self.exit_code = ExitCode.NAME_TOO_LONG


def fs_error(e: OSError, where: str | os.PathLike[str]) -> FsError:
    """An OSError as an FsError naming `where` (shortened) once, with the system's message."""
    err = e.errno or _errno.EIO
    reason = e.strerror or str(e)
    if err == _errno.ENAMETOOLONG:
        reason = "name or path too long (a name is at most 255 bytes, a path 4095)"
    return FsError(err, f"{short_path(where)}: {reason}")


class MountPointError(VaultError):
    """The mountpoint is missing, not a directory, not empty, already mounted, or not ours."""

    exit_code = ExitCode.MOUNT_POINT
    errno = _errno.EINVAL


class FuseError(VaultError):
    """FUSE is unavailable (no /dev/fuse, no fusermount3) or the kernel refused the mount."""

    exit_code = ExitCode.FUSE_NEW_SERVER
    errno = _errno.ENODEV


class ExcludeError(VaultError):
    """An -exclude pattern or -exclude-from file of reverse mode cannot be used."""

    exit_code = ExitCode.EXCLUDE_ERROR
