"""File content: header, block/offset arithmetic, block encryption and decryption (spec §5)."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

from vaultsh.crypto.aead import AesGcm, AuthenticationError, BlockAEAD
from vaultsh.vault.errors import CorruptionError

HEADER_LEN = 18  # BE16(version) || 16-byte file ID (§5.1)
HEADER_VERSION = 2
FILE_ID_LEN = 16
BLOCK_SIZE = 4096  # plaintext bytes per block
_VERSION_BYTES = struct.pack(">H", HEADER_VERSION)
_ZERO_FILE_ID = bytes(FILE_ID_LEN)
_BE64 = struct.Struct(">Q")


def block_ad(block_no: int, file_id: bytes) -> bytes:
    """Associated data of a content block: BE64(blockNo) || fileID (§5.1)."""
    return _BE64.pack(block_no) + file_id


def new_file_id() -> bytes:
    return os.urandom(FILE_ID_LEN)


def make_header(file_id: bytes) -> bytes:
    return _VERSION_BYTES + file_id


def parse_header(raw: bytes, where: str) -> bytes:
    """Return the file ID from an 18-byte header; refuses what gocryptfs refuses (§5.1)."""
    if len(raw) < HEADER_LEN:
        raise CorruptionError(f"{where}: incomplete file header ({len(raw)} bytes, want 18)")
    if raw[:2] != _VERSION_BYTES:
        if raw[:HEADER_LEN] == bytes(HEADER_LEN):
            raise CorruptionError(f"{where}: all-zero file header")
        version = struct.unpack(">H", raw[:2])[0]
        raise CorruptionError(f"{where}: unsupported file header version {version}")
    file_id = bytes(raw[2:HEADER_LEN])
    if file_id == _ZERO_FILE_ID:
        raise CorruptionError(f"{where}: all-zero file ID in header")
    return file_id


class ContentCodec:
    """Encrypts and decrypts block runs of one vault's content cipher, and maps sizes (§5.2)."""

    def __init__(self, aead: BlockAEAD) -> None:
        self.aead = aead
        self.overhead = aead.overhead
        self.cipher_block = BLOCK_SIZE + aead.overhead
        self._zero_nonce = bytes(aead.nonce_size)
        self._hole = bytes(self.cipher_block)

    # -- size arithmetic (§5.2) -----------------------------------------------------------

    def plain_to_cipher_size(self, plain: int) -> int:
        if plain <= 0:
            return 0
        full, rest = divmod(plain, BLOCK_SIZE)
        return HEADER_LEN + full * self.cipher_block + (rest + self.overhead if rest else 0)

    def cipher_to_plain_size(self, cipher: int) -> int:
        if cipher <= HEADER_LEN:
            return 0
        body = cipher - HEADER_LEN
        rest = body % self.cipher_block
        if 0 < rest <= self.overhead:
            # A last block too short to hold a byte: size it as one byte, reading it fails.
            body = body - rest + self.overhead + 1
        blocks = -(-body // self.cipher_block)
        return body - blocks * self.overhead

    def cipher_offset(self, block_no: int) -> int:
        return HEADER_LEN + block_no * self.cipher_block

    # -- blocks -------------------------------------------------------------------------

    def encrypt_block(
        self, plaintext: bytes, block_no: int, file_id: bytes, nonce: bytes | None = None
    ) -> bytes:
        return self.aead.seal(plaintext, block_ad(block_no, file_id), nonce)

    def cipher_run_size(self, plain_len: int) -> int:
        """Bytes of the cipher blocks holding `plain_len` plaintext bytes (no header)."""
        return plain_len + -(-plain_len // BLOCK_SIZE) * self.overhead

    def encrypt_blocks(
        self,
        plain: bytes | bytearray | memoryview,
        first_block: int,
        file_id: bytes,
        out: bytearray | None = None,
    ) -> memoryview:
        """Encrypt a run of plaintext (whole blocks, the last may be short) into its cipher blocks.

        The write path's counterpart of `decrypt_into`: one random read for all nonces, and
        AES-GCM seals each block straight into the output buffer (no per-block joins). A
        caller that writes often passes a reused `out` (at least `cipher_run_size` bytes):
        a fresh megabyte per write costs more in page faults than the copy it saves.
        """
        mv = memoryview(plain)
        size = len(mv)
        count = -(-size // BLOCK_SIZE)
        aead = self.aead
        ns = aead.nonce_size
        ov = self.overhead
        total = size + count * ov
        if out is None or len(out) < total:
            out = bytearray(total)
        nonces = os.urandom(ns * count)
        pack = _BE64.pack
        into = aead.raw_encrypt_into if isinstance(aead, AesGcm) else None
        outmv = memoryview(out)
        opos = 0
        for i, pos in enumerate(range(0, size, BLOCK_SIZE)):
            chunk = mv[pos : pos + BLOCK_SIZE]
            nonce = nonces[i * ns : i * ns + ns]
            ad = pack(first_block + i) + file_id
            end = opos + len(chunk) + ov
            if into is not None:
                outmv[opos : opos + ns] = nonce
                into(nonce, chunk, ad, outmv[opos + ns : end])
            else:
                outmv[opos:end] = aead.seal(bytes(chunk), ad, nonce)
            opos = end
        return outmv[:total]

    def decrypt_block(
        self, block: bytes | memoryview, block_no: int, file_id: bytes, where: str = "file"
    ) -> bytes:
        mv = memoryview(block)
        self._check_block(mv, block_no, where)
        if mv[: len(self._zero_nonce)] == self._zero_nonce and mv == self._hole:
            return bytes(BLOCK_SIZE)
        try:
            return self.aead.open(mv, block_ad(block_no, file_id))
        except AuthenticationError:
            raise CorruptionError(
                f"{where}: block {block_no} failed authentication (tampered or corrupt)"
            ) from None

    def _check_block(self, mv: memoryview, block_no: int, where: str) -> None:
        if len(mv) <= self.overhead:
            raise CorruptionError(f"{where}: block {block_no} is truncated ({len(mv)} bytes)")
        if mv[: len(self._zero_nonce)] == self._zero_nonce and not (
            len(mv) == self.cipher_block and mv == self._hole
        ):
            raise CorruptionError(f"{where}: block {block_no} has an all-zero nonce")

    def decrypt_blocks(
        self, data: bytes | memoryview, first_block: int, file_id: bytes, where: str = "file"
    ) -> bytes:
        """Decrypt a run of whole cipher blocks (the last may be short) into one buffer."""
        out = bytearray(-(-len(data) // self.cipher_block) * BLOCK_SIZE)
        n = self.decrypt_into(bytes(data), first_block, file_id, out, where)
        del out[n:]
        return bytes(out)

    def decrypt_into(
        self,
        data: bytes | bytearray,
        first_block: int,
        file_id: bytes,
        out: bytearray | memoryview,
        where: str = "file",
        size: int | None = None,
    ) -> int:
        """Decrypt blocks from `data` (its first `size` bytes, if given: a reused buffer) into
        `out`; returns the plaintext length written.

        This is the hot loop of export and reads, so it avoids per-block wrapper calls:
        AES-GCM decrypts straight into `out`, and the hole check only runs when a nonce is
        all zero (a C-level `startswith`, not a slice compare).
        """
        cb = self.cipher_block
        ov = self.overhead
        ns = len(self._zero_nonce)
        zero_nonce = self._zero_nonce
        aead = self.aead
        gcm = aead if isinstance(aead, AesGcm) else None
        into = gcm.raw_decrypt_into if gcm is not None else None
        tag_error = gcm.raw_error if gcm is not None else AuthenticationError
        pack = _BE64.pack
        mv = memoryview(data)
        outmv = memoryview(out)
        pos = 0
        block_no = first_block
        if size is None:
            size = len(data)
        try:
            for off in range(0, size, cb):
                end = off + cb if off + cb < size else size
                plen = end - off - ov
                if plen <= 0 or data.startswith(zero_nonce, off):
                    self._check_block(mv[off:end], block_no, where)
                    outmv[pos : pos + BLOCK_SIZE] = bytes(BLOCK_SIZE)  # a hole (§5.3)
                elif into is not None:
                    into(
                        mv[off : off + ns],
                        mv[off + ns : end],
                        pack(block_no) + file_id,
                        outmv[pos : pos + plen],
                    )
                else:
                    outmv[pos : pos + plen] = aead.open(mv[off:end], pack(block_no) + file_id)
                pos += plen if plen > 0 else BLOCK_SIZE
                block_no += 1
        except tag_error:
            raise CorruptionError(
                f"{where}: block {block_no} failed authentication (tampered or corrupt)"
            ) from None
        return pos

    def decrypt_into_salvaging(
        self,
        data: bytes,
        first_block: int,
        file_id: bytes,
        out: bytearray,
        on_bad: Callable[[int, str], None],
        where: str = "file",
    ) -> int:
        """Like `decrypt_into`, but a block that fails is reported to `on_bad` and given as zeros.

        The fast path runs first; only a run that fails is redone block by block, so a clean
        file costs what `decrypt_into` costs. A truncated last block (too short to hold a
        byte) counts as one plaintext byte, as `cipher_to_plain_size` says.
        """
        try:
            return self.decrypt_into(data, first_block, file_id, out, where)
        except CorruptionError:
            pass
        cb, ov = self.cipher_block, self.overhead
        mv = memoryview(data)
        pos = 0
        for i, off in enumerate(range(0, len(data), cb)):
            block = mv[off : off + cb]
            plen = max(len(block) - ov, 1)
            try:
                plain = self.decrypt_block(block, first_block + i, file_id, where)
            except CorruptionError as e:
                on_bad(first_block + i, str(e))
                plain = bytes(plen)
            out[pos : pos + len(plain)] = plain
            pos += len(plain)
        return pos
