"""The three content AEADs of gocryptfs, each sealing one block as `nonce || ...` (spec §5.1, §10)."""

from __future__ import annotations

import os
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV

TAG_SIZE = 16


class AuthenticationError(Exception):
    """A sealed block failed its authentication check (tampered, truncated or wrong key)."""


class BlockAEAD(Protocol):
    """An AEAD that seals whole gocryptfs blocks; the nonce is stored in front of each block."""

    name: str
    nonce_size: int
    overhead: int

    def seal(self, plaintext: bytes, ad: bytes, nonce: bytes | None = None) -> bytes: ...

    def open(self, block: bytes | memoryview, ad: bytes) -> bytes: ...


class AesGcm:
    """AES-256-GCM with 128-bit nonces; block = nonce(16) || ciphertext || tag(16)."""

    name = "AES-GCM-256"

    # For hot loops that cannot afford a wrapper call per block: pyca's own decrypt_into
    # (nonce, ciphertext||tag, ad, out), encrypt_into (nonce, plaintext, ad, out) and the
    # exception it raises on a bad tag.
    raw_error = InvalidTag

    def __init__(self, key: bytes, nonce_size: int = 16) -> None:
        self._aead = AESGCM(key)
        self.raw_decrypt_into = self._aead.decrypt_into
        self.raw_encrypt_into = self._aead.encrypt_into
        self.nonce_size = nonce_size
        self.overhead = nonce_size + TAG_SIZE

    def seal(self, plaintext: bytes, ad: bytes, nonce: bytes | None = None) -> bytes:
        if nonce is None:
            nonce = os.urandom(self.nonce_size)
        return nonce + self._aead.encrypt(nonce, plaintext, ad)

    def open(self, block: bytes | memoryview, ad: bytes) -> bytes:
        mv = memoryview(block)
        try:
            return self._aead.decrypt(mv[: self.nonce_size], mv[self.nonce_size :], ad)
        except InvalidTag:
            raise AuthenticationError("AES-GCM authentication failed") from None


class AesSiv:
    """AES-SIV-512 (RFC 5297); block = nonce(16) || tag(16) || ciphertext, nonce as last AD."""

    name = "AES-SIV-512"
    nonce_size = 16
    overhead = 32

    def __init__(self, key: bytes) -> None:
        self._aead = AESSIV(key)

    def seal(self, plaintext: bytes, ad: bytes, nonce: bytes | None = None) -> bytes:
        if nonce is None:
            nonce = os.urandom(self.nonce_size)
        # pyca returns tag || ciphertext, which is exactly gocryptfs's order after the nonce.
        return nonce + self._aead.encrypt(plaintext, [ad, nonce])

    def open(self, block: bytes | memoryview, ad: bytes) -> bytes:
        raw = bytes(block)
        nonce = raw[: self.nonce_size]
        try:
            return self._aead.decrypt(raw[self.nonce_size :], [ad, nonce])
        except InvalidTag:
            raise AuthenticationError("AES-SIV authentication failed") from None


class XChaCha20Poly1305:
    """XChaCha20-Poly1305 (libsodium IETF); block = nonce(24) || ciphertext || tag(16)."""

    name = "XChaCha20-Poly1305"
    nonce_size = 24
    overhead = 40

    def __init__(self, key: bytes) -> None:
        # libsodium is loaded only for XChaCha vaults: it costs every other process ~2 MiB.
        from nacl import bindings, exceptions

        self._key = key
        self._encrypt = bindings.crypto_aead_xchacha20poly1305_ietf_encrypt
        self._decrypt = bindings.crypto_aead_xchacha20poly1305_ietf_decrypt
        self._crypto_error = exceptions.CryptoError

    def seal(self, plaintext: bytes, ad: bytes, nonce: bytes | None = None) -> bytes:
        if nonce is None:
            nonce = os.urandom(self.nonce_size)
        return nonce + self._encrypt(plaintext, ad, nonce, self._key)

    def open(self, block: bytes | memoryview, ad: bytes) -> bytes:
        raw = bytes(block)
        try:
            return self._decrypt(raw[self.nonce_size :], ad, raw[: self.nonce_size], self._key)
        except self._crypto_error:
            raise AuthenticationError("XChaCha20-Poly1305 authentication failed") from None
