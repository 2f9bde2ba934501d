"""The worker's blocking FUSE loop: the trio stand-in pyfuse3 runs on, and a real worker using it."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from fuse_harness import require_fuse, wait_for
from gocryptfs_harness import import_or_skip
from vault_factory import new_vault

pyfuse3 = import_or_skip("pyfuse3")

from vaultsh import mount_protocol as proto  # noqa: E402
from vaultsh.fs import blocking_loop  # noqa: E402
from vaultsh.fs.blocking_loop import BlockingFramework  # noqa: E402
from vaultsh.service import mounts, worker_start  # noqa: E402
from vaultsh.service.mounts import MountRequest  # noqa: E402
from vaultsh.vault.errors import VaultError  # noqa: E402

WAIT = 30.0  # upper bound for polls; they normally end within a fraction of a second


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    """A pipe standing in for /dev/fuse: readable exactly when a byte is queued."""
    r, w = os.pipe()
    try:
        yield r, w
    finally:
        os.close(r)
        os.close(w)


@pytest.fixture
def framework() -> Iterator[BlockingFramework]:
    with contextlib.closing(BlockingFramework()) as fw:
        yield fw


def wait_once(fw: BlockingFramework, fd: int) -> str:
    """Run one `wait_readable` to its end: "readable" or "closing"."""

    async def wait() -> str:
        try:
            await fw.lowlevel.wait_readable(fd)
        except fw.ClosedResourceError:
            return "closing"
        return "readable"

    result: list[str] = []

    async def main() -> None:
        result.append(await wait())

    blocking_loop.run(main)
    return result[0]


def test_wait_returns_when_a_request_is_queued(framework: BlockingFramework, pipe: tuple[int, int]) -> None:
    r, w = pipe
    os.write(w, b"x")
    assert [wait_once(framework, r) for _ in range(3)] == ["readable"] * 3


def test_wait_blocks_until_a_request_arrives(framework: BlockingFramework, pipe: tuple[int, int]) -> None:
    r, w = pipe
    result: list[str] = []
    waiter = threading.Thread(target=lambda: result.append(wait_once(framework, r)))
    waiter.start()
    time.sleep(0.05)
    pending = not result
    os.write(w, b"x")
    waiter.join(WAIT)
    assert pending and result == ["readable"]


def test_notify_closing_from_another_thread_ends_the_wait(
    framework: BlockingFramework, pipe: tuple[int, int]
) -> None:
    r, _w = pipe
    result: list[str] = []
    waiter = threading.Thread(target=lambda: result.append(wait_once(framework, r)))
    waiter.start()
    time.sleep(0.05)
    framework.lowlevel.notify_closing(r)  # what pyfuse3.terminate() does
    waiter.join(WAIT)
    assert result == ["closing"]
    assert wait_once(framework, r) == "closing"  # and every later wait too


def test_idle_only_while_waiting_with_nothing_queued(
    framework: BlockingFramework, pipe: tuple[int, int]
) -> None:
    r, w = pipe
    assert not framework.idle()  # not waiting at all
    result: list[str] = []
    waiter = threading.Thread(target=lambda: result.append(wait_once(framework, r)))
    waiter.start()
    deadline = time.monotonic() + WAIT
    while not framework.idle() and time.monotonic() < deadline:
        time.sleep(0.001)
    assert framework.idle()
    os.write(w, b"x")
    waiter.join(WAIT)
    assert result == ["readable"] and not framework.idle()


def _wait_for_request(fw: BlockingFramework, pipe: tuple[int, int], after: float) -> str:
    """One wait of `fw` on the pipe, for a request (a byte) sent `after` seconds from now."""
    r, w = pipe
    sender = threading.Timer(after, lambda: os.write(w, b"x"))
    sender.start()
    try:
        return wait_once(fw, r)
    finally:
        sender.join(WAIT)


def test_a_wait_outlasting_the_spin_window_sleeps_at_once_next_time(pipe: tuple[int, int]) -> None:
    with contextlib.closing(BlockingFramework(spin_seconds=0.02)) as fw:
        assert not fw.spinning  # a new mount sleeps until its first request
        assert _wait_for_request(fw, pipe, 0.2) == "readable"
        assert not fw.spinning  # the request came long after the window: a quiet mount


def test_requests_back_to_back_keep_the_loop_spinning(pipe: tuple[int, int]) -> None:
    r, w = pipe
    with contextlib.closing(BlockingFramework(spin_seconds=WAIT)) as fw:
        os.write(w, b"x")
        assert wait_once(fw, r) == "readable"
        os.read(r, 1)
        # A request within the window: this wait spins.
        assert _wait_for_request(fw, pipe, 0.0) == "readable" and fw.spinning
        os.read(r, 1)
        # While spinning, a request is taken as soon as it comes, not at the window's end.
        cpu = time.thread_time()
        assert _wait_for_request(fw, pipe, 0.05) == "readable" and fw.spinning
        assert time.thread_time() - cpu < WAIT / 2


def test_notify_closing_ends_a_spinning_wait(pipe: tuple[int, int]) -> None:
    r, _ = pipe
    with contextlib.closing(BlockingFramework(spin_seconds=WAIT)) as fw:
        assert _wait_for_request(fw, pipe, 0.0) == "readable"
        os.read(r, 1)
        assert fw.spinning
        closer = threading.Timer(0.05, lambda: fw.notify_closing(r))
        closer.start()
        assert wait_once(fw, r) == "closing"
        closer.join(WAIT)


def test_one_cpu_never_spins(monkeypatch: pytest.MonkeyPatch, pipe: tuple[int, int]) -> None:
    """With one CPU to run on, a spinning loop would only hold off the program it serves."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    r, _ = pipe
    with contextlib.closing(BlockingFramework()) as fw:
        for _ in range(3):
            assert _wait_for_request(fw, pipe, 0.0) == "readable"
            os.read(r, 1)
            assert not fw.spinning


def test_a_quiet_spell_returns_free_heap_memory_once(pipe: tuple[int, int]) -> None:
    """After `quiet_ms` without a request the loop trims the C heap, once per quiet spell, and
    after `idle_ms` runs the on_idle hooks and trims again; a request that comes sooner is
    served without either."""
    r, w = pipe
    calls: list[str] = []

    def trim(pad: int) -> int:
        calls.append(f"trim({pad})")
        return 1

    fw = BlockingFramework(spin_seconds=0.0, trim=trim, quiet_ms=50, idle_ms=5000)
    fw.on_idle.append(lambda: calls.append("release"))
    try:
        os.write(w, b"x")
        assert wait_once(fw, r) == "readable" and calls == []  # a request at once: no trim
        os.read(r, 1)
        assert _wait_for_request(fw, pipe, 0.5) == "readable"
        assert calls == ["trim(0)"]  # once in the half-second wait, not once per 50 ms
        os.read(r, 1)
        # After idle_ms as well the buffers are dropped, and the heap trimmed again.
        fw.close()
        fw = BlockingFramework(spin_seconds=0.0, trim=trim, quiet_ms=50, idle_ms=200)
        fw.on_idle.append(lambda: calls.append("release"))
        calls.clear()
        assert _wait_for_request(fw, pipe, 0.5) == "readable"
        assert calls == ["trim(0)", "release", "trim(0)"]
    finally:
        fw.close()


def test_the_default_trim_is_the_c_librarys() -> None:
    """On glibc the loop finds malloc_trim, which answers 0 or 1 (whether it freed anything)."""
    code = "from vaultsh.fs import blocking_loop\nprint(blocking_loop._malloc_trim()(0))"
    assert _python(code).strip() in {"0", "1"}


def test_nursery_runs_started_tasks_in_order(framework: BlockingFramework) -> None:
    seen: list[str] = []

    async def task(name: str) -> None:
        async with framework.Lock():
            seen.append(name)

    async def main() -> None:
        async with framework.open_nursery() as nursery:
            nursery.start_soon(task, "a", name="first")
            nursery.start_soon(task, "b")
            seen.append("body")

    blocking_loop.run(main)
    assert seen == ["body", "a", "b"]


def test_run_refuses_a_coroutine_that_suspends() -> None:
    class Suspend:
        def __await__(self) -> Generator[None, None, None]:
            yield None

    async def main() -> None:
        await Suspend()

    with pytest.raises(RuntimeError, match="waited on an async framework"):
        blocking_loop.run(main)


def _python(code: str) -> str:
    """What `code` prints, run in a new interpreter (a fresh sys.modules)."""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=WAIT
    )
    return out.stdout


def test_install_imports_pyfuse3_without_trio() -> None:
    code = (
        "import sys\n"
        "from vaultsh.fs import blocking_loop\n"
        "fw, fuse = blocking_loop.install()\n"
        "assert fuse.trio is fw, 'pyfuse3 does not run on the framework'\n"
        "print(','.join(m for m in ('trio', 'asyncio') if m in sys.modules))\n"
    )
    assert _python(code).strip() == ""


def test_pyfuse3_queue_stand_in_makes_a_real_queue_when_used() -> None:
    """pyfuse3 imports `Queue` without needing it until invalidate_entry; the stand-in then
    hands it the real thing, and a later `import queue` or `import pickle` gets the real module."""
    code = (
        "import sys\n"
        "from vaultsh.fs import blocking_loop\n"
        "fw, fuse = blocking_loop.install()\n"
        "loaded = [m for m in ('pickle', 'queue') if m in sys.modules]\n"
        "q = fuse.Queue()\n"
        "q.put('x')\n"
        "import pickle, queue\n"
        "print(loaded, type(q) is queue.Queue, q.get_nowait(), pickle.loads(pickle.dumps(1)))\n"
    )
    assert _python(code).split() == ["[]", "True", "x", "1"]


# -- a real mount worker --------------------------------------------------------------------


@contextlib.contextmanager
def _mounted_vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, int]]:
    """A forward vault mounted by the real worker: (mountpoint, worker pid); torn down always."""
    require_fuse()
    base = Path(tempfile.mkdtemp(prefix="vsh-"))  # short: unix socket paths are limited
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(base))
    cipher = tmp_path / "cipher"
    with new_vault(cipher) as made:
        key = made.keys.master_key
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    info = mounts.mount(MountRequest(cipher, mnt), key)
    try:
        yield mnt, info.pid
    finally:
        if mounts.mounted_at(mnt):
            with contextlib.suppress(VaultError):
                mounts.unmount(mnt)
        if mounts.mounted_at(mnt):
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)], check=False, capture_output=True)
        if proto.process_alive(info.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(info.pid, signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def worker_mount(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, int]]:
    with _mounted_vault(tmp_path, monkeypatch) as mount:
        yield mount


class Burst:
    """A thread sending small requests back to back (what `ls -l` does) until stopped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sent = 0
        self.failure: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    os.getxattr(self.path, "security.selinux", follow_symlinks=False)
                except OSError as e:
                    if e.errno != errno.ENODATA:
                        raise
                self.sent += 1
        except BaseException as e:  # reported to the test thread
            self.failure = e

    def __enter__(self) -> Burst:
        self._thread.start()
        wait_for(lambda: self.sent > 100 or self.failure is not None, "the burst to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(WAIT)


def test_worker_answers_its_control_socket_during_a_burst(worker_mount: tuple[Path, int]) -> None:
    mnt, pid = worker_mount
    target = mnt / "f"
    target.write_bytes(b"x")
    with Burst(target) as burst:
        seen = []
        for _ in range(5):
            status = mounts.status(mnt)
            assert status.alive and status.pid == pid
            seen.append((burst.sent, status.stats["requests"]))
            time.sleep(0.02)
        assert burst.failure is None
    # Both kept going: the burst was served while the status requests were answered.
    assert seen[-1][0] > seen[0][0] and seen[-1][1] > seen[0][1]


def test_worker_stops_on_sigterm_during_a_burst(worker_mount: tuple[Path, int]) -> None:
    mnt, pid = worker_mount
    target = mnt / "f"
    target.write_bytes(b"x")
    with Burst(target) as burst:
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not mounts.mounted_at(mnt), "the mount to go away")
        wait_for(lambda: not proto.process_alive(pid), "the worker to exit")
    assert burst.failure is None or isinstance(burst.failure, OSError)


# Modules the worker must never load: the interfaces (slow to import, large), trio, which the
# blocking loop replaces, hashlib's OpenSSL and importlib.metadata (pyfuse3 asks it only for
# its version; it brings email and zipfile along), pickle and queue (pyfuse3 names an
# exception of one and makes a Queue of the other only for invalidate_entry).
FORBIDDEN_IN_WORKER = (
    "textual", "rich", "prompt_toolkit", "trio", "_hashlib", "email", "zipfile", "pickle", "queue",
)  # fmt: skip

# Boots the worker as vaultsh does, and writes the names of all modules it has loaded when it
# exits. The command line still names the worker module, so vaultsh recognises the process.
RECORDING_WORKER = (
    "import atexit, sys\n"
    "out = sys.argv.pop(1)\n"
    "atexit.register(lambda: open(out, 'w').write("
    "'\\n'.join(sorted(k for k, m in sys.modules.items() if m is not None and "
    "type(m).__name__ != '_Deferred'))))\n"
    f"{worker_start.WORKER_BOOT}\n"
)


def test_worker_never_loads_interface_modules_or_trio(
    worker_mount_recording: tuple[Path, Path],
) -> None:
    mnt, record = worker_mount_recording
    (mnt / "d").mkdir()
    (mnt / "d" / "f").write_bytes(b"data" * 1000)
    assert (mnt / "d" / "f").read_bytes() == b"data" * 1000
    assert mounts.status(mnt).alive
    mounts.unmount(mnt)
    wait_for(record.exists, "the worker to record its modules")
    wait_for(lambda: record.stat().st_size > 0, "the record to be written")
    loaded = set(record.read_text().split())
    assert "pyfuse3" in loaded and "vaultsh.fs.forward" in loaded  # it did serve the mount
    assert "importlib.metadata" not in loaded and "site" not in loaded
    top_level = {name.partition(".")[0] for name in loaded}
    assert sorted(top_level.intersection(FORBIDDEN_IN_WORKER)) == []
    assert "argparse" not in loaded  # its settings come as one JSON line
    assert "socket" not in loaded  # its control socket is the interpreter's own _socket type
    # Loaded on first use only (vaultsh.fs.deferred), which a mount without errors never has.
    assert "traceback" not in loaded and "ipaddress" not in loaded
    assert "inspect" not in loaded  # every dataclass the worker loads has a docstring


@pytest.fixture
def worker_mount_recording(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path]]:
    """A forward mount by a worker that records its loaded modules on exit: (mountpoint, record)."""
    require_fuse()
    record = tmp_path / "modules.txt"
    real_argv = worker_start.worker_argv

    def recording_argv(*, start_fd: int, status_fd: int, preload: str) -> list[str]:
        argv = real_argv(start_fd=start_fd, status_fd=status_fd, preload=preload)
        code = argv.index("-c") + 1
        assert argv[code] == worker_start.WORKER_BOOT
        return [*argv[:code], RECORDING_WORKER, str(record), *argv[code + 1 :]]

    monkeypatch.setattr(worker_start, "worker_argv", recording_argv)
    with _mounted_vault(tmp_path, monkeypatch) as (mnt, _pid):
        yield mnt, record
