"""Reverse mode: the deterministic encrypted view of a plain directory, as `gocryptfs -reverse` (§9)."""

from __future__ import annotations

import errno
import hashlib
import os
import stat as stat_mod
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from vaultsh.vault.config import CONF_NAME, REVERSE_CONF_NAME, unlock
from vaultsh.vault.content import BLOCK_SIZE, HEADER_LEN, ContentCodec, make_header
from vaultsh.vault.errors import ConfigError, FsError
from vaultsh.vault.keys import FormatOptions, Keys
from vaultsh.vault.names import (
    DIRIV_NAME,
    LONGNAME_SUFFIX,
    ZERO_IV,
    NameCodec,
    NameError_,
    b64_encode,
    is_long_name,
)
from vaultsh.vault.vault import dirent_kind, kind_of_mode

_SYMLINK_AD = struct.pack(">Q", 0)
_MASK64 = (1 << 64) - 1


def derive(cipher_path: str, purpose: str) -> bytes:
    """SHA-256(P || 0x00 || purpose)[0:16], P the cipher path without leading slash (§9.2)."""
    return hashlib.sha256(cipher_path.encode() + b"\0" + purpose.encode("ascii")).digest()[:16]


def block_nonce(block0_iv: bytes, block_no: int) -> bytes:
    """Nonce of block n: bytes 0..7 of BLOCK0IV, then BE64(its last 8 bytes + n) (§9.2)."""
    counter = (int.from_bytes(block0_iv[8:], "big") + block_no) & _MASK64
    return block0_iv[:8] + counter.to_bytes(8, "big")


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


@dataclass(frozen=True, slots=True)
class ReverseEntry:
    """One entry of the encrypted view.

    `plain` is the plain path (relative) of a real object; virtual entries (diriv, `.name`
    files, the config) carry their content in `data` instead.
    """

    cipher_name: str
    cipher_path: str
    kind: str  # "file", "dir", "symlink", "other"
    plain: str | None = None
    data: bytes | None = None


class ReverseView:
    """Produces gocryptfs -reverse's read-only encrypted view of a plain tree, byte for byte."""

    def __init__(
        self, plaindir: Path, master_key: bytes, options: FormatOptions, conf_path: Path | None
    ) -> None:
        if not options.aessiv:
            raise ConfigError(f"{plaindir}: reverse mode needs an AES-SIV vault (AESSIV flag)")
        self.plaindir = plaindir
        self.options = options
        self.conf_path = conf_path
        keys = Keys(master_key, options)
        self.names = NameCodec(None if options.plaintext_names else keys.eme, options)
        self.content = ContentCodec(keys.content)
        # Reverse mode hashes above 255 *or* longNameMax (§6.7); no -longnames=false here.
        self._long_max = min(255, options.longname_max)

    @classmethod
    def open(
        cls,
        plaindir: str | os.PathLike[str],
        *,
        password: bytes | None = None,
        master_key: bytes | None = None,
        options: FormatOptions | None = None,
    ) -> ReverseView:
        root = Path(plaindir)
        conf_path = root / REVERSE_CONF_NAME
        key, opts, _conf = unlock(
            conf_path, password=password, master_key=master_key, options=options, missing_ok=False
        )
        return cls(root, key, opts, conf_path if conf_path.exists() else None)

    # -- derivations --------------------------------------------------------------------

    def dir_iv(self, cipher_path: str) -> bytes:
        return ZERO_IV if self.options.deterministic_names else derive(cipher_path, "DIRIV")

    def encrypt_name(self, cipher_parent: str, name: str) -> tuple[str, str]:
        """(disk name, full encrypted name) of a plain name in the directory at cipher_parent."""
        if self.options.plaintext_names:
            return name, name
        full = self.names.encrypt(os.fsencode(name), self.dir_iv(cipher_parent))
        disk = self.names.hash_long(full) if len(full) > self._long_max else full
        return disk, full

    def encrypt_link(self, cipher_path: str, target: bytes) -> str:
        if self.options.plaintext_names:
            return os.fsdecode(target)
        if not target:
            return ""
        # The link's own name appears twice in the nonce path (the v2.3 quirk of §9.2).
        nonce = derive(_join(cipher_path, os.path.basename(cipher_path)), "SYMLINKIV")
        return b64_encode(self.content.aead.seal(target, _SYMLINK_AD, nonce), self.options.raw64)

    # -- listing and lookup -------------------------------------------------------------

    def listdir(self, cipher_dir: str = "", plain_dir: str | None = None) -> list[ReverseEntry]:
        """The entries of the encrypted view of one directory (virtual files included)."""
        if plain_dir is None:
            plain_dir = self.resolve(cipher_dir).plain or ""
        pdir = self.plaindir / plain_dir if plain_dir else self.plaindir
        out: list[ReverseEntry] = []
        is_root = not cipher_dir
        with os.scandir(pdir) as it:
            for entry in it:
                name = entry.name
                if is_root and name == REVERSE_CONF_NAME:
                    continue
                if is_root and self.options.plaintext_names and name == CONF_NAME:
                    continue  # would collide with the view's config (§9.3)
                disk, full = self.encrypt_name(cipher_dir, name)
                cpath = _join(cipher_dir, disk)
                out.append(ReverseEntry(disk, cpath, dirent_kind(entry), _join(plain_dir, name)))
                if disk != full:
                    out.append(
                        ReverseEntry(
                            disk + LONGNAME_SUFFIX, cpath + LONGNAME_SUFFIX, "file", data=full.encode()
                        )
                    )
        if self.options.diriv:
            out.append(
                ReverseEntry(DIRIV_NAME, _join(cipher_dir, DIRIV_NAME), "file", data=self.dir_iv(cipher_dir))
            )
        if is_root and self.conf_path is not None:
            out.append(ReverseEntry(CONF_NAME, CONF_NAME, "file", data=self.conf_path.read_bytes()))
        return out

    def resolve(self, cipher_path: str) -> ReverseEntry:
        """Look up a cipher path of the view (decrypting names, scanning for long names)."""
        parts = [p for p in cipher_path.split("/") if p]
        if not parts:
            return ReverseEntry("", "", "dir", plain="")
        cur_c, cur_p = "", ""
        entry: ReverseEntry | None = None
        for i, part in enumerate(parts):
            entry = self._lookup(cur_c, cur_p, part)
            if i < len(parts) - 1 and entry.kind != "dir":
                raise FsError(errno.ENOTDIR, f"{cipher_path}: not a directory")
            cur_c, cur_p = entry.cipher_path, entry.plain or ""
        assert entry is not None
        return entry

    def _lookup(self, cipher_dir: str, plain_dir: str, name: str) -> ReverseEntry:
        pdir = self.plaindir / plain_dir if plain_dir else self.plaindir
        cpath = _join(cipher_dir, name)
        if name == DIRIV_NAME and self.options.diriv:
            return ReverseEntry(name, cpath, "file", data=self.dir_iv(cipher_dir))
        if not cipher_dir and name == CONF_NAME and self.conf_path is not None:
            return ReverseEntry(name, cpath, "file", data=self.conf_path.read_bytes())
        if self.options.plaintext_names:
            plain_name = name
        elif is_long_name(name) or (name.endswith(LONGNAME_SUFFIX) and is_long_name(name[:-5])):
            # Long names cannot be decrypted, only found: encrypt candidates until one matches.
            base = name[: -len(LONGNAME_SUFFIX)] if name.endswith(LONGNAME_SUFFIX) else name
            for cand in os.listdir(pdir):
                disk, full = self.encrypt_name(cipher_dir, cand)
                if disk == base:
                    if base != name:
                        return ReverseEntry(name, cpath, "file", data=full.encode())
                    return self._real(cpath, _join(plain_dir, cand))
            raise FsError(errno.ENOENT, f"{cpath}: no such entry in the view")
        else:
            try:
                plain_name = os.fsdecode(self.names.decrypt(name, self.dir_iv(cipher_dir)))
            except NameError_:
                raise FsError(errno.ENOENT, f"{cpath}: no such entry in the view") from None
            if self.encrypt_name(cipher_dir, plain_name)[0] != name:
                raise FsError(errno.ENOENT, f"{cpath}: no such entry in the view")
        if not cipher_dir and plain_name == REVERSE_CONF_NAME:
            raise FsError(errno.ENOENT, f"{cpath}: no such entry in the view")
        return self._real(cpath, _join(plain_dir, plain_name))

    def _real(self, cipher_path: str, plain: str) -> ReverseEntry:
        try:
            st = os.lstat(self.plaindir / plain)
        except OSError as e:
            raise FsError(e.errno or errno.EIO, f"{plain}: {e.strerror}") from None
        return ReverseEntry(os.path.basename(cipher_path), cipher_path, kind_of_mode(st.st_mode), plain)

    # -- content ------------------------------------------------------------------------

    def cipher_size(self, entry: ReverseEntry) -> int:
        if entry.data is not None:
            return len(entry.data)
        assert entry.plain is not None
        p = self.plaindir / entry.plain
        if entry.kind == "symlink":
            return len(self.encrypt_link(entry.cipher_path, os.fsencode(os.readlink(p))))
        st = os.lstat(p)
        if entry.kind == "file":
            return self.content.plain_to_cipher_size(st.st_size)
        return st.st_size

    def readlink(self, entry: ReverseEntry) -> str:
        assert entry.plain is not None
        return self.encrypt_link(entry.cipher_path, os.fsencode(os.readlink(self.plaindir / entry.plain)))

    def read(self, entry: ReverseEntry, offset: int, size: int) -> bytes:
        """Bytes [offset, offset+size) of the encrypted file; computed from the plain file."""
        if entry.data is not None:
            return entry.data[offset : offset + size]
        assert entry.plain is not None
        with open(self.plaindir / entry.plain, "rb") as f:
            return self.read_fd(entry.cipher_path, f.fileno(), offset, size)

    def read_fd(self, cipher_path: str, fd: int, offset: int, size: int) -> bytes:
        plain_size = os.fstat(fd).st_size
        total = self.content.plain_to_cipher_size(plain_size)
        end = min(offset + size, total)
        if offset >= end:
            return b""
        file_id = derive(cipher_path, "FILEID")
        header = make_header(file_id)
        cb = self.content.cipher_block
        out = bytearray()
        pos = offset
        if pos < HEADER_LEN:
            out += header[pos:end]
            pos = HEADER_LEN
        if pos < end:
            first = (pos - HEADER_LEN) // cb
            last = (end - 1 - HEADER_LEN) // cb
            plain = os.pread(fd, (last - first + 1) * BLOCK_SIZE, first * BLOCK_SIZE)
            b0 = derive(cipher_path, "BLOCK0IV")
            blocks = bytearray()
            for i, off in enumerate(range(0, len(plain), BLOCK_SIZE)):
                n = first + i
                blocks += self.content.encrypt_block(
                    plain[off : off + BLOCK_SIZE], n, file_id, block_nonce(b0, n)
                )
            skip = pos - (HEADER_LEN + first * cb)
            out += blocks[skip : skip + end - pos]
        return bytes(out)

    def iter_file(self, entry: ReverseEntry) -> Iterator[bytes]:
        """Stream a whole encrypted file in 1 MiB steps."""
        if entry.data is not None:
            yield entry.data
            return
        assert entry.plain is not None
        step = 256 * self.content.cipher_block
        with open(self.plaindir / entry.plain, "rb") as f:
            total = self.content.plain_to_cipher_size(os.fstat(f.fileno()).st_size)
            pos = 0
            while pos < total:
                chunk = self.read_fd(
                    entry.cipher_path, f.fileno(), pos, step + (HEADER_LEN if pos == 0 else 0)
                )
                yield chunk
                pos += len(chunk)

    def materialize(self, dest: str | os.PathLike[str]) -> None:
        """Write the whole encrypted view into `dest` (an offline `cp -a` of a reverse mount)."""
        root = Path(dest)
        root.mkdir(parents=True, exist_ok=True)
        self._materialize_dir("", "", root)

    def _materialize_dir(self, cdir: str, pdir: str, out: Path) -> None:
        dirs: list[tuple[ReverseEntry, Path]] = []
        for e in self.listdir(cdir, pdir):
            target = out / e.cipher_name
            if e.kind == "dir":
                target.mkdir()
                dirs.append((e, target))
            elif e.kind == "symlink":
                os.symlink(self.readlink(e), target)
                _copy_times(self.plaindir / (e.plain or ""), target)
            elif e.kind == "file":
                with open(target, "wb") as f:
                    for chunk in self.iter_file(e):
                        f.write(chunk)
                if e.plain is not None:
                    _copy_times(self.plaindir / e.plain, target)
                    os.chmod(target, stat_mod.S_IMODE(os.lstat(self.plaindir / e.plain).st_mode))
                else:
                    os.chmod(target, 0o444)
        for e, target in dirs:
            self._materialize_dir(e.cipher_path, e.plain or "", target)
            assert e.plain is not None
            os.chmod(target, stat_mod.S_IMODE(os.lstat(self.plaindir / e.plain).st_mode))
            _copy_times(self.plaindir / e.plain, target)


def _copy_times(src: Path, dst: Path) -> None:
    st = os.lstat(src)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
