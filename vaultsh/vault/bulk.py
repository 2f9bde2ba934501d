"""Whole-file decryption into a file descriptor at disk or CPU speed, keeping holes (used by export)."""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import signal
import struct
import threading
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vaultsh.vault.content import BLOCK_SIZE, HEADER_LEN, ContentCodec
from vaultsh.vault.errors import CorruptionError
from vaultsh.vault.fdio import pwrite_all, write_all

if TYPE_CHECKING:
    from vaultsh.vault.file import VaultFile

Step = Callable[[int], None]

PIPE_BLOCKS = 1024  # 4 MiB per hand-off between stages or workers
LOOP_BLOCKS = 256  # 1 MiB per step of the plain loop: a cancel is seen soon in a small file
PIPE_DEPTH = 3  # chunks in flight per stage
MIN_PIPE_CHUNKS = 4  # below this many chunks, a plain loop is cheaper than threads
MIN_FORK_CHUNKS = 16  # below 64 MiB a second process does not pay for its start


Run = tuple[int, int]
"""(first block, block count) of a stretch of content blocks."""


def data_runs(fd: int, codec: ContentCodec, cipher_size: int) -> list[Run]:
    """The stretches of content blocks that hold data in a cipher file, in order.

    A block that lies wholly in a hole of the cipher file reads as an all-zero cipher block,
    which is plaintext zeros (spec §5.3): it is left out, so a sparse file costs only its data
    (SEEK_DATA/SEEK_HOLE find the holes). The last block is always included, because an
    all-zero last block shorter than a whole one is corrupt, not a hole (§5.3).
    """
    cb = codec.cipher_block
    blocks = -(-(cipher_size - HEADER_LEN) // cb) if cipher_size > HEADER_LEN else 0
    if blocks == 0:
        return []
    runs: list[Run] = []

    def add(first: int, end: int) -> None:
        if end <= first:
            return
        if runs and first <= runs[-1][0] + runs[-1][1]:
            start = runs[-1][0]
            runs[-1] = (start, max(end, start + runs[-1][1]) - start)
        else:
            runs.append((first, end - first))

    pos = 0
    try:
        while pos < cipher_size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as e:
                if e.errno == errno.ENXIO:  # only a hole from here to the end
                    break
                raise
            end = min(os.lseek(fd, start, os.SEEK_HOLE), cipher_size)
            if end <= start:
                break
            add(max(0, (start - HEADER_LEN) // cb), min(blocks, -(-(end - HEADER_LEN) // cb)))
            pos = end
    except (OSError, AttributeError):  # no SEEK_DATA here: every block is data
        return [(0, blocks)]
    add(blocks - 1, blocks)
    return runs


def _chunked(runs: list[Run], size: int) -> list[Run]:
    """The runs cut into pieces of at most `size` blocks."""
    out: list[Run] = []
    for first, count in runs:
        for start in range(first, first + count, size):
            out.append((start, min(size, first + count - start)))
    return out


def _all_holes(data: bytes, count: int, codec: ContentCodec) -> bool:
    """Whether `data` is `count` whole all-zero cipher blocks, i.e. plaintext zeros (§5.3).

    A real block starts with a random nonce, so the first bytes settle it nearly always."""
    return len(data) == count * codec.cipher_block and not data[:64].strip(b"\0") and data == bytes(len(data))


def decrypt_to(
    f: VaultFile,
    out_fd: int,
    step: Step | None,
    *,
    processes: int = 1,
    on_bad: Callable[[int, str], None] | None = None,
) -> int:
    """Decrypt a whole file into the regular file `out_fd`, which must be empty, leaving holes.

    Each chunk is written at its own offset; chunks of holes are not written at all, and the
    size is set at the end, so a sparse file stays sparse. Returns the plaintext size; `step`
    gets byte counts that add up to it. `on_bad` (gocryptfs's -force_decode) gets each
    block that fails authentication, written as zeros, instead of an error.
    """
    file_id = f.read_file_id()
    if file_id is None:  # empty or header-only (§5.4)
        return 0
    cipher_size = f.cipher_size()
    plain_size = f.codec.cipher_to_plain_size(cipher_size)
    runs = data_runs(f.fd, f.codec, cipher_size)
    chunks = _chunked(runs, PIPE_BLOCKS)
    # Each way returns the bytes it passed to `step`: those of the chunks it read.
    if on_bad is None and processes >= 2 and len(chunks) >= MIN_FORK_CHUNKS and hasattr(os, "fork"):
        written = _TwoProcesses(f, file_id, chunks, out_fd, step).run()
    elif on_bad is None and len(chunks) >= MIN_PIPE_CHUNKS:
        written = _Pipeline(f, file_id, chunks, out_fd, step).run()
    else:  # small files, and salvaging (not the fast path): one plain loop, in smaller steps
        small = _chunked(runs, LOOP_BLOCKS)
        written = _copy_chunks(f, f.fd, file_id, small, out_fd, step, _decrypt_with(f, on_bad))
    if written < plain_size and step is not None:
        step(plain_size - written)  # the holes, which took no time
    if os.fstat(out_fd).st_size < plain_size:
        os.ftruncate(out_fd, plain_size)
    return plain_size


Decrypt = Callable[[bytes, int, bytes, bytearray], int]
"""Decrypts (cipher data, first block, file ID, out) into `out`; returns the plaintext length."""


def _copy_chunks(
    f: VaultFile,
    in_fd: int,
    file_id: bytes,
    chunks: list[Run],
    out_fd: int,
    report: Step | None,
    decrypt: Decrypt,
) -> int:
    """Decrypt chunks of `f` (read from `in_fd`) and pwrite each at its place; chunks of holes
    are counted, not written. Returns the plaintext bytes passed to `report`."""
    codec = f.codec
    with contextlib.suppress(OSError, AttributeError):
        os.posix_fadvise(in_fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    out = bytearray(max((count for _, count in chunks), default=0) * BLOCK_SIZE)
    view = memoryview(out)
    total = 0
    for block, count in chunks:
        data = os.pread(in_fd, count * codec.cipher_block, codec.cipher_offset(block))
        if not data:
            break
        if _all_holes(data, count, codec):
            n = count * BLOCK_SIZE
        else:
            n = decrypt(data, block, file_id, out)
            pwrite_all(out_fd, view[:n], block * BLOCK_SIZE)
        total += n
        if report is not None:
            report(n)
    return total


def _decrypt_with(f: VaultFile, on_bad: Callable[[int, str], None] | None) -> Decrypt:
    codec, where = f.codec, f.where
    if on_bad is None:
        return lambda data, block, file_id, out: codec.decrypt_into(data, block, file_id, out, where)
    return lambda data, block, file_id, out: codec.decrypt_into_salvaging(
        data, block, file_id, out, on_bad, where
    )


class _Pipeline:
    """Read-ahead, decrypt and write-behind threads for one file.

    pread and pwrite release the GIL, so disk time hides behind AES time instead of adding
    to it; memory stays at a few chunks.
    """

    def __init__(
        self, f: VaultFile, file_id: bytes, chunks: list[Run], out_fd: int, step: Step | None
    ) -> None:
        self.f = f
        self.file_id = file_id
        self.chunks = chunks
        self.out_fd = out_fd
        self.step = step
        self.stop = threading.Event()
        self.read_q: queue.Queue[tuple[int, int, bytes] | None] = queue.Queue(PIPE_DEPTH)
        self.write_q: queue.Queue[tuple[bytearray, int, int] | None] = queue.Queue(PIPE_DEPTH)
        self.free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(PIPE_DEPTH + 1):
            self.free.put(bytearray(PIPE_BLOCKS * BLOCK_SIZE))
        self.errors: list[BaseException] = []

    def _put(self, q: queue.Queue[Any], item: Any) -> bool:
        while not self.stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _reader(self) -> None:
        f = self.f
        with contextlib.suppress(OSError, AttributeError):
            os.posix_fadvise(f.fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        try:
            for block, count in self.chunks:
                if self.stop.is_set():
                    break
                data = f.pread_blocks(block, count)
                if not data or not self._put(self.read_q, (block, count, data)):
                    break
        except BaseException as e:  # handed to the decrypting thread, which re-raises
            self.errors.append(e)
        finally:
            # Always deliver the end marker, even after a stop: the decrypting thread may be
            # waiting for it, and it drains this queue until we are gone, so this cannot block.
            self.read_q.put(None)

    def _writer(self) -> None:
        try:
            while (item := self.write_q.get()) is not None:
                buf, n, pos = item
                if not self.errors:
                    pwrite_all(self.out_fd, memoryview(buf)[:n], pos)
                self.free.put(buf)
        except BaseException as e:
            self.errors.append(e)
            self.stop.set()
            # Keep draining and recycling so the decrypting thread never blocks on us.
            while (rest := self.write_q.get()) is not None:
                self.free.put(rest[0])

    def run(self) -> int:
        f, file_id, codec = self.f, self.file_id, self.f.codec
        reader = threading.Thread(target=self._reader, name="vaultsh-read", daemon=True)
        writer = threading.Thread(target=self._writer, name="vaultsh-write", daemon=True)
        reader.start()
        writer.start()
        total = 0
        try:
            while (item := self.read_q.get()) is not None and not self.errors:
                block, count, data = item
                if _all_holes(data, count, codec):
                    n = count * BLOCK_SIZE
                else:
                    buf = self.free.get()
                    n = codec.decrypt_into(data, block, file_id, buf, f.where)
                    self.write_q.put((buf, n, block * BLOCK_SIZE))
                total += n
                if self.step is not None:
                    self.step(n)
        finally:
            self.stop.set()
            self.write_q.put(None)
            writer.join()
            while reader.is_alive():
                with contextlib.suppress(queue.Empty):
                    self.read_q.get(timeout=0.1)
            reader.join()
        if self.errors:
            raise self.errors[0]
        return total


# Messages from the forked worker: a type byte, then a fixed or length-prefixed payload.
_PROGRESS = b"P"  # + BE64 byte count
_FAILED = b"E"  # + BE32 errno (0: corrupt data) + BE32 length + UTF-8 message
_BE64 = struct.Struct(">Q")
_BE32X2 = struct.Struct(">II")


class _TwoProcesses:
    """Decrypt even chunks here and odd chunks in a forked child, both pwrite-ing in place.

    The chunks are independent (block numbers give their positions), so the two processes
    share nothing but the output fd. Alternate chunks keep the output growing from the front
    (halves measured 2-3x slower: the filesystem then fills a hole behind a far write). The
    child reports progress and errors over a pipe and leaves with os._exit; it never touches
    Python-level state the parent's threads may lock.
    """

    def __init__(
        self, f: VaultFile, file_id: bytes, chunks: list[Run], out_fd: int, step: Step | None
    ) -> None:
        self.f = f
        self.out_fd = out_fd
        self.step = step
        self.file_id = file_id
        self.chunks = chunks
        self.decrypt = _decrypt_with(f, None)

    def _work(self, half: int, in_fd: int, report: Step) -> int:
        return _copy_chunks(
            self.f, in_fd, self.file_id, self.chunks[half::2], self.out_fd, report, self.decrypt
        )

    def _child(self, wfd: int) -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        code = 0
        try:
            # Our own open file description: separate read-ahead state from the parent's.
            in_fd = os.open(f"/proc/self/fd/{self.f.fd}", os.O_RDONLY)
            self._work(1, in_fd, lambda n: write_all(wfd, _PROGRESS + _BE64.pack(n)))
        except BaseException as e:
            code = 1
            err = e.errno if isinstance(e, OSError) and e.errno else 0
            msg = str(e).encode("utf-8", "replace")[:4000]
            with contextlib.suppress(OSError):
                write_all(wfd, _FAILED + _BE32X2.pack(err, len(msg)) + msg)
        os._exit(code)

    def run(self) -> int:
        rfd, wfd = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: see above
            pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child, reported through the pipe
            os.close(rfd)
            self._child(wfd)
        os.close(wfd)
        reader = _ChildReports(rfd, self.step)
        try:
            total = self._work(0, self.f.fd, reader.own_progress)
            _, status = os.waitpid(pid, 0)
            pid = 0
            reader.read_to_end()
            reader.raise_failure(self.f.where, os.waitstatus_to_exitcode(status))
            return total + reader.child_bytes
        finally:
            if pid:  # our half failed or was cancelled: stop the child at once
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            os.close(rfd)


class _ChildReports:
    """The parent's end of the worker pipe: progress counts and at most one failure."""

    def __init__(self, rfd: int, step: Step | None) -> None:
        self.rfd = rfd
        self.step = step
        self.buf = bytearray()
        self.child_bytes = 0
        self.failure: tuple[int, str] | None = None
        os.set_blocking(rfd, False)

    def own_progress(self, n: int) -> None:
        """Called after each of the parent's chunks: report it, then the child's news."""
        if self.step is not None:
            self.step(n)
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(self.rfd, 65536):
                self.buf.extend(chunk)
        self._parse()
        if self.failure is not None:
            self.raise_failure("", 0)  # the child failed: stop our half too

    def read_to_end(self) -> None:
        os.set_blocking(self.rfd, True)
        while chunk := os.read(self.rfd, 65536):
            self.buf.extend(chunk)
        self._parse()

    def _parse(self) -> None:
        buf = self.buf
        while len(buf) >= 9:
            kind = buf[:1]
            if kind == _PROGRESS:
                n = _BE64.unpack(buf[1:9])[0]
                del buf[:9]
                self.child_bytes += n
                if self.step is not None:
                    self.step(n)
            elif kind == _FAILED:
                err, size = _BE32X2.unpack(buf[1:9])
                if len(buf) < 9 + size:
                    return
                self.failure = (err, buf[9 : 9 + size].decode("utf-8", "replace"))
                del buf[: 9 + size]
            else:
                raise CorruptionError("decrypting worker sent garbage")

    def raise_failure(self, where: str, exit_code: int) -> None:
        if self.failure is not None:
            err, msg = self.failure
            if err:
                raise OSError(err, os.strerror(err))
            raise CorruptionError(msg)
        if exit_code != 0:
            raise CorruptionError(f"{where}: decrypting worker ended with status {exit_code}")
