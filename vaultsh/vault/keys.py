"""Format options, HKDF subkeys and the master-key text format (spec §3.7, §4)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from vaultsh.crypto.aead import AesGcm, AesSiv, BlockAEAD, XChaCha20Poly1305
from vaultsh.crypto.eme import EME
from vaultsh.crypto.kdf import hkdf_sha256
from vaultsh.vault.errors import MasterKeyError

MASTER_KEY_LEN = 32

# HKDF info strings, spec §4.
INFO_EME = b"EME filename encryption"
INFO_GCM = b"AES-GCM file content encryption"
INFO_SIV = b"AES-SIV file content encryption"
INFO_XCHACHA = b"XChaCha20-Poly1305 file content encryption"

LONGNAME_MAX_DEFAULT = 255


@dataclass(frozen=True)
class FormatOptions:
    """Every setting that changes bytes on disk; from gocryptfs.conf or, for -masterkey, flags."""

    plaintext_names: bool = False
    deterministic_names: bool = False  # EMENames without DirIV: all-zero IVs (§6.6)
    raw64: bool = True
    hkdf: bool = True
    aessiv: bool = False
    xchacha: bool = False
    longnames: bool = True
    longname_max: int = LONGNAME_MAX_DEFAULT

    @property
    def diriv(self) -> bool:
        """Whether directories carry gocryptfs.diriv files."""
        return not self.plaintext_names and not self.deterministic_names

    @property
    def content_encryption(self) -> str:
        if self.xchacha:
            return "XChaCha20-Poly1305"
        if self.aessiv:
            return "AES-SIV-512"
        return "AES-GCM-256"


def parse_master_key(text: str) -> bytes:
    """Parse a master key as gocryptfs does: drop every '-', hex-decode, require 32 bytes (§3.7)."""
    stripped = text.strip().replace("-", "")
    if not re.fullmatch(r"[0-9a-fA-F]*", stripped) or len(stripped) % 2:
        raise MasterKeyError("master key is not valid hex (expected 8 groups of 8 hex digits)")
    key = bytes.fromhex(stripped)
    if len(key) != MASTER_KEY_LEN:
        raise MasterKeyError(f"master key has {len(key)} bytes, want {MASTER_KEY_LEN}")
    return key


def format_master_key(key: bytes) -> str:
    """The grouped lowercase hex form gocryptfs prints: 8 groups of 8 digits joined by '-'."""
    h = key.hex()
    return "-".join(h[i : i + 8] for i in range(0, len(h), 8))


class Keys:
    """Subkeys derived from a master key under a set of format options (§4).

    The master key itself is kept only as long as this object lives; derived ciphers are
    built lazily so that a listing never pays for a content cipher it does not use.
    """

    def __init__(self, master_key: bytes, options: FormatOptions) -> None:
        if len(master_key) != MASTER_KEY_LEN:
            raise MasterKeyError(f"master key has {len(master_key)} bytes, want 32")
        self._master = master_key
        self.options = options

    def _derive(self, info: bytes, length: int) -> bytes:
        return hkdf_sha256(self._master, info, length)

    @cached_property
    def eme(self) -> EME:
        # Derived even in plaintextnames mode: xattr names are still encrypted (§4, §7.2).
        return EME(self._derive(INFO_EME, 32) if self.options.hkdf else self._master)

    @cached_property
    def content(self) -> BlockAEAD:
        """The cipher for file content, symlink targets and xattr values."""
        o = self.options
        if o.xchacha:
            if not o.hkdf:
                raise MasterKeyError("XChaCha20-Poly1305 needs HKDF")
            return XChaCha20Poly1305(self._derive(INFO_XCHACHA, 32))
        if o.aessiv:
            # Legacy vaults use SHA-512 of the master key (the upstream comment says SHA-256).
            if o.hkdf:
                key = self._derive(INFO_SIV, 64)
            else:
                import hashlib  # here: only these vaults need it, and it is ~1 ms of a mount's start

                key = hashlib.sha512(self._master).digest()
            return AesSiv(key)
        return AesGcm(self._derive(INFO_GCM, 32) if o.hkdf else self._master)

    @property
    def master_key(self) -> bytes:
        return self._master
