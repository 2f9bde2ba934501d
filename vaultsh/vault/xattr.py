"""Extended attributes of vault objects: encrypted names and values, POSIX ACLs passed through (§7.2)."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from vaultsh.crypto.aead import AuthenticationError
from vaultsh.vault.core import BLOCK0_AD, SameObject, VaultCore
from vaultsh.vault.dirfds import CipherPath
from vaultsh.vault.errors import CorruptionError, fs_error
from vaultsh.vault.names import XATTR_PASSTHROUGH, XATTR_PREFIX, NameCodec, NameError_, b64_decode


class XattrOps(VaultCore):
    """Reading and writing the xattrs of cipher objects with gocryptfs's encryption of both."""

    @property
    def xattr_names(self) -> NameCodec:
        """Name codec for xattr names: EME even in plaintextnames vaults (§4, §6.10)."""
        codec = self._xattr_codec
        if codec is None:
            codec = self._xattr_codec = NameCodec(self.keys.eme, self.options)
        return codec

    def xattr_disk_name(self, name: bytes) -> str:
        """The backing xattr name of a plain one: encrypted, except POSIX ACLs (§7.2)."""
        # Cached: `ls -l` through a mount asks every entry for the same few names (SELinux
        # label, ACLs), and the encryption is deterministic (a fixed IV).
        disk = self._xattr_disk_names.get(name)
        if disk is None:
            text = os.fsdecode(name)
            disk = text if text in XATTR_PASSTHROUGH else self.xattr_names.encrypt_xattr_name(name)
            if len(self._xattr_disk_names) < 256:
                self._xattr_disk_names[name] = disk
        return disk

    def encrypt_xattr_value(self, value: bytes) -> bytes:
        """A content block with block number 0 and no file ID, stored as raw bytes (§7.2)."""
        if not value:
            return b""
        return self.content.aead.seal(value, BLOCK0_AD)

    def decrypt_xattr_value(self, stored: bytes, where: str) -> bytes:
        if not stored:
            return b""
        try:
            return self.content.aead.open(stored, BLOCK0_AD)
        except (ValueError, AuthenticationError):
            pass
        # Old gocryptfs versions stored the encrypted value base64-encoded.
        try:
            blob = b64_decode(stored.decode("ascii"), self.options.raw64)
            return self.content.aead.open(blob, BLOCK0_AD)
        except (ValueError, AuthenticationError):
            raise CorruptionError(f"{where}: xattr value does not decrypt (corrupt)") from None

    # xattr calls have no *at form: they go through the object's /proc/self/fd name (see
    # DirFds.with_object), which reaches the object itself, a symlink included, never what a
    # symlink points to; `same` as for chmod_cipher.

    def find_xattr(
        self, cpath: CipherPath, name: bytes, where: str, same: SameObject | None = None
    ) -> bytes | None:
        """The plain value of an xattr of a cipher object; None if it is not set (ENODATA).

        `ls -l` asks every object for its SELinux label and ACL, which are nearly always
        absent; telling that without an exception of our own keeps the answer cheap.
        """
        disk = self.xattr_disk_name(name)
        try:
            # The everyday answer, "not set", tells nothing about anyone's data: it comes from
            # one call on the name. A value is read again from the object checked by `same`.
            if not self.dirs.entry_has_xattr(cpath, disk):
                return None
            stored = self.dirs.with_object(cpath, lambda p, _st: os.getxattr(p, disk), same)
        except OSError as e:
            if e.errno == errno.ENODATA:
                return None
            raise fs_error(e, where) from None
        return stored if disk in XATTR_PASSTHROUGH else self.decrypt_xattr_value(stored, where)

    def set_xattr(
        self,
        cpath: Path,
        name: bytes,
        value: bytes,
        where: str,
        flags: int = 0,
        same: SameObject | None = None,
    ) -> None:
        disk = self.xattr_disk_name(name)
        stored = value if disk in XATTR_PASSTHROUGH else self.encrypt_xattr_value(value)
        try:
            self.dirs.with_object(cpath, lambda p, _st: os.setxattr(p, disk, stored, flags), same)
        except OSError as e:
            raise fs_error(e, where) from None

    def remove_xattr(self, cpath: Path, name: bytes, where: str, same: SameObject | None = None) -> None:
        try:
            disk = self.xattr_disk_name(name)
            self.dirs.with_object(cpath, lambda p, _st: os.removexattr(p, disk), same)
        except OSError as e:
            raise fs_error(e, where) from None

    def list_xattrs(self, cpath: Path, where: str, same: SameObject | None = None) -> list[bytes]:
        """Plain names of an object's xattrs; backing names we did not write are left out."""
        try:
            stored = self.dirs.with_object(cpath, lambda p, _st: os.listxattr(p), same)
        except OSError as e:
            raise fs_error(e, where) from None
        out: list[bytes] = []
        for disk in stored:
            if disk in XATTR_PASSTHROUGH:
                out.append(disk.encode())
            elif disk.startswith(XATTR_PREFIX):
                with contextlib.suppress(NameError_):
                    out.append(self.xattr_names.decrypt_xattr_name(disk))
        return out
