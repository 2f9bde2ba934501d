"""Key derivation: scrypt for passwords and HKDF-SHA256 for subkeys (spec §2, §3.4, §4)."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt


def scrypt(password: bytes, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    """Derive `length` bytes from a password with scrypt (pyca needs no raised memory limit)."""
    return Scrypt(salt=salt, length=length, n=n, r=r, p=p).derive(password)


def hkdf_sha256(ikm: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 with no salt (= 32 zero bytes), as gocryptfs derives its subkeys (§4)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(ikm)
