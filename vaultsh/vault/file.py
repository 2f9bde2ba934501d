"""VaultFile: random-access read, write and truncate of one open vault file (spec §5)."""

from __future__ import annotations

import errno
import os
import stat as stat_mod
from collections.abc import Callable, Iterator

from vaultsh.vault.content import (
    BLOCK_SIZE,
    HEADER_LEN,
    ContentCodec,
    make_header,
    new_file_id,
    parse_header,
)
from vaultsh.vault.errors import FsError, fs_error, short_path
from vaultsh.vault.fdio import reserve_space

CHUNK_BLOCKS = 256  # 1 MiB of plaintext per I/O call in streaming reads and writes
_KEEP_IO_BUF = 2 * CHUNK_BLOCKS * (BLOCK_SIZE + 64)  # a larger one-off read gets a buffer of its own
# read_view and write go through the ciphertext this many blocks at a time, in one reused
# buffer: a 1 MiB read or write through a mount then holds 132 KiB of ciphertext at once
# instead of a second megabyte (the mount's peak memory), for eight preads or pwrites.
_IO_PIECE_BLOCKS = 32

InodeKey = tuple[int, int]  # (st_dev, st_ino) of a cipher file


class ReadBuffers:
    """The reused buffers of `VaultFile.read_view`: the plaintext it returns a view of, and a
    piece of ciphertext. A file makes its own; a server that answers one request at a time
    (the FUSE worker) shares one set among all its files, so reading many large files does not
    allocate and free a megabyte each, which fragments the C heap and grows the process."""

    __slots__ = ("piece", "plain", "zeros")

    def __init__(self) -> None:
        self.plain = bytearray()
        self.zeros = 0  # how much of `plain` is known to be zeros
        self.piece = bytearray()


class InodeState:
    """What all open handles of one cipher inode share."""

    __slots__ = ("file_id", "refs")

    def __init__(self) -> None:
        self.file_id: bytes | None = None
        self.refs = 0


OpenInodes = dict[InodeKey, InodeState]
"""The shared state of a vault's open files, by inode (one table per vault)."""


class VaultFile:
    """An open vault file: random-access read, write and truncate with gocryptfs's rules (§5.3).

    Not thread-safe; the FUSE layer serialises access per inode.
    """

    def __init__(
        self,
        codec: ContentCodec,
        inodes: OpenInodes,
        fd: int,
        where: str,
        st: os.stat_result | None = None,
    ) -> None:
        """Take over `fd`; `st` is its fstat if the caller has one already. `inodes` is the
        vault's table of open inodes, whose file IDs every handle of one inode shares."""
        self.codec = codec
        self._inodes = inodes
        self.fd = fd
        self.where = where
        if st is None:
            st = os.fstat(fd)
        if not stat_mod.S_ISREG(st.st_mode):
            os.close(fd)
            self.fd = -1
            err = errno.EISDIR if stat_mod.S_ISDIR(st.st_mode) else errno.EINVAL
            raise FsError(err, f"{short_path(where)}: not a regular file")
        self._key = (st.st_dev, st.st_ino)
        state = inodes.get(self._key)
        if state is None:
            state = inodes[self._key] = InodeState()
        state.refs += 1
        self._state = state
        self._write_buf = bytearray()  # cipher output of writes, a piece at a time, reused
        self._read_buffers: ReadBuffers | None = None  # of read_view, made on first use

    def __enter__(self) -> VaultFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            self._state.refs -= 1
            if self._state.refs == 0:
                self._inodes.pop(self._key, None)

    def fileno(self) -> int:
        return self.fd

    def cipher_size(self) -> int:
        return os.fstat(self.fd).st_size

    def size(self) -> int:
        return self.codec.cipher_to_plain_size(self.cipher_size())

    def read_file_id(self) -> bytes | None:
        """The file ID from the header (read once per inode); None for an empty file (§5.2)."""
        state = self._state
        if state.file_id is None:
            raw = os.pread(self.fd, HEADER_LEN + 1, 0)
            if len(raw) <= HEADER_LEN:
                return None  # empty or header-only: treated as empty (§5.4)
            state.file_id = parse_header(raw, self.where)
        return state.file_id

    # -- read ---------------------------------------------------------------------------

    def read(self, offset: int = 0, size: int = -1) -> bytes:
        plain_size = self.size()
        if size < 0:
            size = plain_size - offset
        end = min(offset + size, plain_size)
        if offset >= end:
            return b""
        file_id = self.read_file_id()
        if file_id is None:
            return b""
        first, last = offset // BLOCK_SIZE, (end - 1) // BLOCK_SIZE
        data = self.pread_blocks(first, last - first + 1)
        plain = self.codec.decrypt_blocks(data, first, file_id, self.where)
        skip = offset - first * BLOCK_SIZE
        return plain[skip : skip + end - offset]

    def read_view(self, offset: int, size: int, buffers: ReadBuffers | None = None) -> memoryview:
        """Like `read`, but the result is a view of a reused buffer: this file's, or
        `buffers` when given.

        For servers that hand the bytes on at once (the FUSE read path): it saves allocating,
        zeroing and copying a buffer per request. The view is valid until the next call that
        uses the same buffers.
        """
        if buffers is None:
            buffers = self._read_buffers
            if buffers is None:
                buffers = self._read_buffers = ReadBuffers()
        cipher_size = self.cipher_size()
        end = min(offset + size, self.codec.cipher_to_plain_size(cipher_size))
        if offset >= end:
            return memoryview(b"")
        file_id = self.read_file_id()
        if file_id is None:
            return memoryview(b"")
        first, last = offset // BLOCK_SIZE, (end - 1) // BLOCK_SIZE
        need = (last - first + 1) * BLOCK_SIZE
        buf = buffers.plain
        if len(buf) < need:
            buf = bytearray(need)
            if need <= _KEEP_IO_BUF:
                buffers.plain, buffers.zeros = buf, need
        if self._in_hole(first, last - first + 1, cipher_size):
            # Holes are zeros (§5.3): nothing to read or decrypt, and a buffer that still
            # holds the zeros of the last hole read needs not even be cleared.
            if buf is not buffers.plain or buffers.zeros < need:
                buf[:need] = bytes(need)
                if buf is buffers.plain:
                    buffers.zeros = need
            n = need
        else:
            n = self._decrypt_blocks_into(first, last - first + 1, file_id, buf, buffers)
            if buf is buffers.plain:
                buffers.zeros = 0
        skip = offset - first * BLOCK_SIZE
        return memoryview(buf)[skip : min(n, skip + end - offset)]

    def _decrypt_blocks_into(
        self, first: int, count: int, file_id: bytes, out: bytearray, buffers: ReadBuffers
    ) -> int:
        """Decrypt `count` blocks from block `first` into `out`, reading their ciphertext a
        piece at a time into `buffers.piece`; returns the plaintext length (less at the end
        of the file)."""
        codec = self.codec
        cb = codec.cipher_block
        piece = buffers.piece
        if len(piece) < min(count, _IO_PIECE_BLOCKS) * cb:  # a small file needs a small one
            piece = buffers.piece = bytearray(min(count, _IO_PIECE_BLOCKS) * cb)
        piece_view = memoryview(piece)
        out_view = memoryview(out)
        pos = 0
        end = first + count
        for start in range(first, end, _IO_PIECE_BLOCKS):
            want = min(_IO_PIECE_BLOCKS, end - start) * cb
            got = os.preadv(self.fd, [piece_view[:want]], codec.cipher_offset(start))
            if got <= 0:
                break
            pos += codec.decrypt_into(piece, start, file_id, out_view[pos:], self.where, size=got)
            if got < want:
                break  # the end of the file
        return pos

    def _in_hole(self, first: int, count: int, cipher_size: int) -> bool:
        """Whether whole cipher blocks `first`.. lie in a hole of the cipher file (SEEK_DATA).

        A sparse file then reads at the speed of zero-filling memory: the kernel is not asked
        for megabytes of zeros, nor each all-zero block compared before it is skipped (§5.3).
        A short last block is never a hole (an all-zero one is damage): it takes the normal path.
        """
        start = self.codec.cipher_offset(first)
        stop = start + count * self.codec.cipher_block
        if stop > cipher_size:
            return False
        try:
            return os.lseek(self.fd, start, os.SEEK_DATA) >= stop
        except OSError as e:  # ENXIO: no data after `start`; EINVAL: no SEEK_DATA here
            return e.errno == errno.ENXIO

    def pread_blocks(self, first: int, count: int) -> bytes:
        """The cipher bytes of `count` content blocks from block `first` (fewer at the end)."""
        start = self.codec.cipher_offset(first)
        return os.pread(self.fd, count * self.codec.cipher_block, start)

    def iter_chunks(self) -> Iterator[memoryview]:
        """Stream the whole plaintext, 1 MiB at a time.

        Each chunk is a view of one reused buffer, valid until the next iteration: export
        writes it out directly instead of copying a megabyte per step.
        """
        codec = self.codec
        return self._iter_decrypted(
            lambda data, block, file_id, out: codec.decrypt_into(data, block, file_id, out, self.where)
        )

    def iter_salvaged(self, on_bad: Callable[[int, str], None]) -> Iterator[memoryview]:
        """Like `iter_chunks`, but a damaged block comes out as zeros and is reported to
        `on_bad(block number, why)`, so the rest of the file is saved (gocryptfs's
        -force_decode). A damaged header still fails: without the file ID nothing decrypts.
        """
        codec = self.codec
        return self._iter_decrypted(
            lambda data, block, file_id, out: codec.decrypt_into_salvaging(
                data, block, file_id, out, on_bad, self.where
            )
        )

    def _iter_decrypted(
        self, decrypt_into: Callable[[bytes, int, bytes, bytearray], int]
    ) -> Iterator[memoryview]:
        """The file in chunks of CHUNK_BLOCKS blocks, each decrypted by `decrypt_into(cipher
        data, first block, file ID, out)` into one reused buffer."""
        file_id = self.read_file_id()
        if file_id is None:
            return
        out = bytearray(CHUNK_BLOCKS * BLOCK_SIZE)
        view = memoryview(out)
        block = 0
        while True:
            data = self.pread_blocks(block, CHUNK_BLOCKS)
            if not data:
                return
            n = decrypt_into(data, block, file_id, out)
            yield view[:n]
            if len(data) < CHUNK_BLOCKS * self.codec.cipher_block:
                return
            block += CHUNK_BLOCKS

    # -- write --------------------------------------------------------------------------

    def _ensure_header(self) -> bytes:
        file_id = self.read_file_id()
        if file_id is None:
            file_id = self._write_header()
        return file_id

    def _write_header(self) -> bytes:
        file_id = new_file_id()
        # A header-only leftover (c <= 18) is overwritten: it had no content (§5.2). No
        # ftruncate(0) first: ext4 takes a truncate-then-write file for a rewrite and
        # flushes it on close, which made every new file cost a disk write at release.
        os.pwrite(self.fd, make_header(file_id), 0)
        self._state.file_id = file_id
        return file_id

    def write(self, offset: int, data: bytes | memoryview) -> int:
        """Write plaintext at `offset`, padding the old last block when writing past EOF."""
        if not data:
            return 0
        plain_size = self.size()
        first_target = offset // BLOCK_SIZE
        next_block = plain_size // BLOCK_SIZE  # where an append would go
        if first_target > next_block and plain_size % BLOCK_SIZE:
            # Block positions are fixed, so a short last block must become full first (§5.3).
            self._write_range(plain_size, bytes(BLOCK_SIZE - plain_size % BLOCK_SIZE), plain_size)
            plain_size += BLOCK_SIZE - plain_size % BLOCK_SIZE
        self._write_range(offset, memoryview(data), plain_size)
        return len(data)

    def _write_range(self, offset: int, data: bytes | memoryview, plain_size: int) -> None:
        known_id = self.read_file_id()  # None: an empty file, whose header comes first
        # Old blocks are read only where the file holds data, so only when it has an ID.
        file_id = known_id if known_id is not None else b""
        codec = self.codec
        mv = memoryview(data)
        end = offset + len(mv)
        first, last = offset // BLOCK_SIZE, (end - 1) // BLOCK_SIZE
        head = offset - first * BLOCK_SIZE
        # Old plaintext is only needed for partially covered blocks that hold data: the first
        # when the write starts inside it or ends short of the file's end within it, the
        # last when the write ends inside it before the end of the file.
        need_head = head > 0 or (first == last and len(mv) < BLOCK_SIZE and end < plain_size)
        need_tail = last != first and end % BLOCK_SIZE != 0 and end < plain_size
        plain: bytes | bytearray | memoryview = mv
        if need_head or need_tail:
            buf = bytearray()
            if need_head:
                old = self._old_block(first, plain_size, file_id)
                buf += old[:head]
                if len(buf) < head:
                    buf += bytes(head - len(buf))
                buf += mv
                if first == last:
                    buf += old[head + len(mv) :]
            else:
                buf += mv
            if need_tail:
                buf += self._old_block(last, plain_size, file_id)[end - last * BLOCK_SIZE :]
            plain = buf
        # The disk space is taken before anything is written, as gocryptfs does (§5.4): on a
        # full disk the write fails whole with ENOSPC. Written piece by piece into no room,
        # it would end in a torn block that every later read or write of it fails on (EIO).
        cipher_start = codec.cipher_offset(first)
        cipher_len = codec.cipher_run_size(len(plain))
        if known_id is None:
            if cipher_start > HEADER_LEN:  # past a hole, which stays unallocated
                self._reserve(0, HEADER_LEN)
                self._reserve(cipher_start, cipher_len)
            else:
                self._reserve(0, cipher_start + cipher_len)
            file_id = self._write_header()
        else:
            self._reserve(cipher_start, cipher_len)
        plain_view = memoryview(plain)
        step = _IO_PIECE_BLOCKS * BLOCK_SIZE
        for start in range(0, len(plain_view), step):
            part = plain_view[start : start + step]
            need = codec.cipher_run_size(len(part))
            out = self._write_buf
            if len(out) < need:
                out = self._write_buf = bytearray(need)
            block = first + start // BLOCK_SIZE
            blob = codec.encrypt_blocks(part, block, file_id, out)
            try:
                self._pwrite_all(blob, codec.cipher_offset(block))
            finally:
                blob.release()  # the reused buffer may be replaced by a larger one next time

    def _reserve(self, offset: int, length: int) -> None:
        try:
            reserve_space(self.fd, self._key[0], offset, length)
        except OSError as e:
            raise fs_error(e, self.where) from None

    def _pwrite_all(self, data: memoryview, offset: int) -> None:
        """Write all of `data`: a short write is retried, so a full disk reports ENOSPC."""
        done = 0
        while done < len(data):
            try:
                n = os.pwrite(self.fd, data[done:], offset + done)
            except OSError as e:
                raise fs_error(e, self.where) from None
            if n == 0:
                raise FsError(errno.EIO, f"{self.where}: write stalled at {done} of {len(data)} bytes")
            done += n

    def _old_block(self, block: int, plain_size: int, file_id: bytes) -> bytes:
        """Current plaintext of one block, or b"" beyond the end of the file."""
        if block * BLOCK_SIZE >= plain_size:
            return b""
        raw = self.pread_blocks(block, 1)
        return self.codec.decrypt_block(raw, block, file_id, self.where)

    def truncate(self, new_size: int) -> None:
        """Grow or shrink to `new_size` plain bytes with gocryptfs's hole rules (§5.3)."""
        old = self.size()
        if new_size == old:
            return
        codec = self.codec
        if new_size == 0:
            os.ftruncate(self.fd, 0)
            self._state.file_id = None  # the next write creates a new file ID
            return
        if new_size < old:
            file_id = self.read_file_id()
            assert file_id is not None
            block, keep = divmod(new_size, BLOCK_SIZE)
            if keep == 0:
                os.ftruncate(self.fd, codec.cipher_offset(block))
                return
            raw = self.pread_blocks(block, 1)
            plain = codec.decrypt_block(raw, block, file_id, self.where)[:keep]
            os.ftruncate(self.fd, codec.cipher_offset(block))
            os.pwrite(self.fd, codec.encrypt_block(plain, block, file_id), codec.cipher_offset(block))
            return
        if old > 0 and (old - 1) // BLOCK_SIZE == (new_size - 1) // BLOCK_SIZE:
            self._write_range(old, bytes(new_size - old), old)
            return
        if old % BLOCK_SIZE:
            self._write_range(old, bytes(BLOCK_SIZE - old % BLOCK_SIZE), old)
        if new_size % BLOCK_SIZE == 0:
            self._ensure_header()
            os.ftruncate(self.fd, codec.plain_to_cipher_size(new_size))
        else:
            self.write(new_size - 1, b"\0")

    def fsync(self) -> None:
        os.fsync(self.fd)
