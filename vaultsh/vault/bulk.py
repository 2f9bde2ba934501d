"""Whole-file decryption into a file descriptor at disk or CPU speed (used by export)."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import struct
import threading
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vaultsh.vault.content import BLOCK_SIZE
from vaultsh.vault.errors import CorruptionError

if TYPE_CHECKING:
    from vaultsh.vault.vault import VaultFile

Step = Callable[[int], None]

PIPE_BLOCKS = 1024  # 4 MiB per hand-off between stages or workers
PIPE_DEPTH = 3  # chunks in flight per stage
MIN_PIPE_CHUNKS = 4  # below this many chunks, a plain loop is cheaper than threads
MIN_FORK_CHUNKS = 16  # below 64 MiB a second process does not pay for its start


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def decrypt_to(f: VaultFile, out_fd: int, step: Step | None, *, processes: int = 1) -> int:
    chunks = -(-f.cipher_size() // (PIPE_BLOCKS * f.codec.cipher_block))
    if processes >= 2 and chunks >= MIN_FORK_CHUNKS and hasattr(os, "fork"):
        return _TwoProcesses(f, out_fd, step).run()
    if chunks >= MIN_PIPE_CHUNKS:
        return _Pipeline(f, out_fd, step).run()
    total = 0
    for chunk in f.iter_chunks():
        write_all(out_fd, chunk)
        total += len(chunk)
        if step is not None:
            step(len(chunk))
    return total


class _Pipeline:
    """Read-ahead, decrypt and write-behind threads for one file.

    pread and write release the GIL, so disk time hides behind AES time instead of adding
    to it; memory stays at a few chunks.
    """

    def __init__(self, f: VaultFile, out_fd: int, step: Callable[[int], None] | None) -> None:
        self.f = f
        self.out_fd = out_fd
        self.step = step
        self.stop = threading.Event()
        self.read_q: queue.Queue[tuple[int, bytes] | None] = queue.Queue(PIPE_DEPTH)
        self.write_q: queue.Queue[tuple[bytearray, int] | None] = queue.Queue(PIPE_DEPTH)
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
        span = PIPE_BLOCKS * f.codec.cipher_block
        with contextlib.suppress(OSError, AttributeError):
            os.posix_fadvise(f.fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        try:
            block = 0
            while not self.stop.is_set():
                data = f._pread_blocks(block, PIPE_BLOCKS)
                if not data or not self._put(self.read_q, (block, data)):
                    break
                if len(data) < span:
                    break
                block += PIPE_BLOCKS
        except BaseException as e:  # handed to the decrypting thread, which re-raises
            self.errors.append(e)
        finally:
            # Always deliver the end marker, even after a stop: the decrypting thread may be
            # waiting for it, and it drains this queue until we are gone, so this cannot block.
            self.read_q.put(None)

    def _writer(self) -> None:
        try:
            while (item := self.write_q.get()) is not None:
                buf, n = item
                if not self.errors:
                    write_all(self.out_fd, memoryview(buf)[:n])
                self.free.put(buf)
        except BaseException as e:
            self.errors.append(e)
            self.stop.set()
            # Keep draining and recycling so the decrypting thread never blocks on us.
            while (rest := self.write_q.get()) is not None:
                self.free.put(rest[0])

    def run(self) -> int:
        f = self.f
        file_id = f._read_file_id()
        if file_id is None:
            return 0
        reader = threading.Thread(target=self._reader, name="vaultsh-read", daemon=True)
        writer = threading.Thread(target=self._writer, name="vaultsh-write", daemon=True)
        reader.start()
        writer.start()
        total = 0
        try:
            while (item := self.read_q.get()) is not None and not self.errors:
                block, data = item
                buf = self.free.get()
                n = f.codec.decrypt_into(data, block, file_id, buf, f.where)
                self.write_q.put((buf, n))
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

    def __init__(self, f: VaultFile, out_fd: int, step: Step | None) -> None:
        self.f = f
        self.out_fd = out_fd
        self.step = step
        self.file_id = f._read_file_id()
        span = PIPE_BLOCKS * f.codec.cipher_block
        self.chunks = -(-f.cipher_size() // span)

    def _work(self, chunks: range, in_fd: int, report: Callable[[int], None]) -> int:
        codec = self.f.codec
        assert self.file_id is not None
        with contextlib.suppress(OSError, AttributeError):
            os.posix_fadvise(in_fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        out = bytearray(PIPE_BLOCKS * BLOCK_SIZE)
        view = memoryview(out)
        span = PIPE_BLOCKS * codec.cipher_block
        total = 0
        for k in chunks:
            block = k * PIPE_BLOCKS
            data = os.pread(in_fd, span, codec.cipher_offset(block))
            if not data:
                break
            n = codec.decrypt_into(data, block, self.file_id, out, self.f.where)
            pos = block * BLOCK_SIZE
            done = 0
            while done < n:
                done += os.pwrite(self.out_fd, view[done:n], pos + done)
            total += n
            report(n)
        return total

    def _child(self, wfd: int) -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        code = 0
        try:
            # Our own open file description: separate read-ahead state from the parent's.
            in_fd = os.open(f"/proc/self/fd/{self.f.fd}", os.O_RDONLY)
            self._work(range(1, self.chunks, 2), in_fd, lambda n: write_all(wfd, _PROGRESS + _BE64.pack(n)))
        except BaseException as e:
            code = 1
            err = e.errno if isinstance(e, OSError) and e.errno else 0
            msg = str(e).encode("utf-8", "replace")[:4000]
            with contextlib.suppress(OSError):
                write_all(wfd, _FAILED + _BE32X2.pack(err, len(msg)) + msg)
        os._exit(code)

    def run(self) -> int:
        if self.file_id is None:
            return 0
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
            total = self._work(range(0, self.chunks, 2), self.f.fd, reader.own_progress)
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
