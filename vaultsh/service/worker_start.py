"""Starting a mount worker process with nothing loaded but os and sys, before the caller parses anything."""

# `vaultsh mount` spends ~40 ms on its own imports, its argument parsing and the mount checks,
# and the worker another ~60 ms on its imports: started first, the worker imports its modules
# while the command line does its part. It waits for its settings (one JSON line) and then the
# password or master key on one pipe, and reports "ready" or an error on another (see
# vaultsh.fs.worker).
# This module must stay light: importing it is on the path to that early start.

from __future__ import annotations

import os
import sys
import time

# `typing` is not loaded yet when `python -m vaultsh` gets here: annotations only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal
    from typing import Any
else:
    # The signal numbers without `signal` and contextlib without `contextlib` (~6 ms before the
    # worker could start, which they would delay): `_signal` is the interpreter's own.
    import _signal

# The module whose code the worker runs; also how a live worker is recognised by its command
# line (mount_protocol.process_alive names it too).
WORKER_MODULE = "vaultsh.fs.worker"

# The worker's interpreter is isolated (-I: no PYTHON* variables, no user site, no current
# directory on the path) and starts without `site` (-S): that skips this installation's .pth
# files, up to 20 ms and 2 MiB a mount. Its import path is ours, handed over explicitly and
# appended after the standard library (see worker_import_path).
WORKER_INTERPRETER_FLAGS = ("-I", "-S")
# Appends the import path given as the arguments after the count in the first one (any byte
# but NUL may occur in a directory name, so no separator is safe) to the standard library's.
WORKER_PATH_SETUP = "import sys; n = int(sys.argv[1]) + 2; sys.path += sys.argv[2:n]; del sys.argv[1:n]"
# No cyclic garbage collection while the worker's ~170 modules load (their objects live as
# long as the process; collecting among them costs a few milliseconds): the worker freezes what
# it has loaded and collects again once its mount answers (see vaultsh.fs.worker).
WORKER_GC_OFF = "import gc; gc.disable()"
# Then runs the worker module as `python -m` would; the command line names the module, which
# is how a live worker is recognised.
WORKER_BOOT = (
    f"{WORKER_GC_OFF}; {WORKER_PATH_SETUP}; "
    f"import runpy; runpy.run_module({WORKER_MODULE!r}, run_name='__main__', alter_sys=True)"
)
# What the worker imports ahead of its settings: the modules of a forward or a reverse mount.
PRELOAD_FORWARD = "forward"
PRELOAD_REVERSE = "reverse"


def worker_import_path() -> list[str]:
    """Where the worker finds vaultsh, pyfuse3 and cryptography: this process's import path,
    after the directory holding the vaultsh package actually imported here, without the
    current directory (which `python -m` puts first)."""
    import vaultsh

    root = os.path.dirname(os.path.dirname(os.path.abspath(vaultsh.__file__)))
    cwd = os.getcwd()
    return list(dict.fromkeys([root, *(p for p in sys.path if os.path.isabs(p) and p != cwd)]))


def worker_argv(*, start_fd: int, status_fd: int, preload: str) -> list[str]:
    """The worker's command line: descriptor numbers and what to import ahead, never the key."""
    path = worker_import_path()
    return [
        sys.executable,
        *WORKER_INTERPRETER_FLAGS,
        "-c",
        WORKER_BOOT,
        str(len(path)),
        *path,
        "--start-fd",
        str(start_fd),
        "--status-fd",
        str(status_fd),
        "--preload",
        preload,
    ]


class WorkerProcess:
    """A started worker: what the mount code needs of subprocess.Popen, started by
    os.posix_spawn, so `vaultsh mount` starts its worker without loading subprocess first."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    @classmethod
    def spawn(cls, argv: list[str], *, fds: dict[int, int], stderr_fd: int | None) -> WorkerProcess:
        """Run `argv` in a new session with stdin and stdout on /dev/null, the descriptors
        `fds` (child number -> ours) and, unless None, stderr on `stderr_fd`. Nothing else is
        inherited: our descriptors are close-on-exec, and those handed over become the
        child's only by dup2 in it, so a process another thread starts meanwhile gets none."""
        actions: list[tuple[Any, ...]] = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
        ]
        if stderr_fd is not None:
            actions.append((os.POSIX_SPAWN_DUP2, stderr_fd, 2))
        actions += [(os.POSIX_SPAWN_DUP2, ours, theirs) for theirs, ours in fds.items()]
        # As subprocess does: the signals Python ignores are the default again in the child.
        reset = (_signal.SIGPIPE, _signal.SIGXFSZ)
        return cls(
            os.posix_spawn(argv[0], argv, os.environ, file_actions=actions, setsid=True, setsigdef=reset)
        )

    def poll(self) -> int | None:
        """The exit status once the process has ended (negative: the signal that ended it)."""
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: its status is lost
                self.returncode = 0
            else:
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """The exit status; TimeoutError if the process still runs after `timeout` seconds."""
        if timeout is None:
            while self.returncode is None:
                try:
                    _pid, status = os.waitpid(self.pid, 0)
                except ChildProcessError:
                    self.returncode = 0
                else:
                    self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode
        deadline = time.monotonic() + timeout
        while (code := self.poll()) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"process {self.pid} still runs after {timeout:g}s")
            time.sleep(0.01)
        return code

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            try:  # noqa: SIM105 - see the imports
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(_signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(_signal.SIGKILL)


class StartingWorker:
    """A worker process that has been started and waits for its settings and secret.

    `start_w` carries the settings line and then the key or password to the worker;
    `status_r` brings back its request for the password and its one-line report. Whoever
    takes the worker over must send both or `close` its pipes: a worker whose pipe closes
    before its settings arrived exits quietly.
    """

    def __init__(self, proc: WorkerProcess, start_w: int, status_r: int, *, log_to_stderr: bool) -> None:
        self.proc = proc
        self.start_w = start_w
        self.status_r = status_r
        # True: its stderr is the caller's (a prestarted worker), so the settings name the
        # log file it switches to when it runs in the background.
        self.log_to_stderr = log_to_stderr

    def close(self) -> None:
        """Close our ends of the pipes: a worker that has not had its settings yet exits
        without mounting anything."""
        for fd in (self.start_w, self.status_r):
            if fd >= 0:
                try:  # noqa: SIM105 - see the imports
                    os.close(fd)
                except OSError:
                    pass
        self.start_w = self.status_r = -1


def start_worker(*, reverse: bool, stderr_fd: int | None) -> StartingWorker:
    """Start a worker that imports the modules of a forward (or reverse) mount, then waits.

    `stderr_fd` None: the worker shares our stderr until its settings name a log file."""
    start_r, start_w = os.pipe2(os.O_CLOEXEC)
    status_r, status_w = os.pipe2(os.O_CLOEXEC)
    try:
        # The pipe ends' numbers in the worker: above both of ours, so neither is overwritten
        # before it is handed over.
        start_fd = max(start_r, status_w) + 1
        status_fd = start_fd + 1
        argv = worker_argv(
            start_fd=start_fd, status_fd=status_fd, preload=PRELOAD_REVERSE if reverse else PRELOAD_FORWARD
        )
        proc = WorkerProcess.spawn(argv, fds={start_fd: start_r, status_fd: status_w}, stderr_fd=stderr_fd)
    except BaseException:
        for fd in (start_w, status_r):
            os.close(fd)
        raise
    finally:
        for fd in (start_r, status_w):
            os.close(fd)
    return StartingWorker(proc, start_w, status_r, log_to_stderr=stderr_fd is None)


def prestart(argv: list[str]) -> StartingWorker | None:
    """For the command line `argv` (without the program name): a worker started right away
    when it asks for a mount, else None. A call that turns out not to
    mount closes its pipes (mounts.abandon_worker)."""
    if not argv or argv[0] != "mount":
        return None
    words = argv[1 : argv.index("--") if "--" in argv else len(argv)]
    if any(w in ("-h", "--help") for w in words):
        return None
    try:
        return start_worker(reverse="--reverse" in words, stderr_fd=None)
    except OSError:
        return None  # the mount starts its own worker and reports what fails then
