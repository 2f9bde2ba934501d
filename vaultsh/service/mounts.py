"""Mount, watch and unmount vaults through a background FUSE worker process per mount."""

# Longer than 600 lines on purpose: starting, watching and stopping a worker share its process
# handle, the registry entry and the clean-up of a worker that died at any step (stale entry,
# FUSE mount left behind, killed child); split apart, each half would re-derive that state.

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import select
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaultsh import mount_protocol as proto
from vaultsh.mount_protocol import MountFiles, ProtocolError, RegistryEntry
from vaultsh.service.worker_start import StartingWorker, WorkerProcess, start_worker
from vaultsh.vault import errors as vault_errors
from vaultsh.vault.errors import (
    CipherDirError,
    ExcludeError,
    ExitCode,
    FuseError,
    MountPointError,
    UsageError,
    VaultError,
)
from vaultsh.vault.fdio import write_all

if TYPE_CHECKING:
    import subprocess

    from vaultsh.vault.keys import FormatOptions

FUSE_DEVICE = "/dev/fuse"
FUSERMOUNT = "fusermount3"
# A worker's start-up takes well under a second (scrypt included, when it unwraps the key
# from a password); the bound only keeps a wedged kernel or worker from hanging the caller.
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
STATUS_TIMEOUT = 2.0


@dataclass(frozen=True)
class MountRequest:
    """What to mount where, as `vaultsh mount` or the TUI asks for it."""

    source: Path  # cipher dir (forward) or plain dir (reverse)
    mountpoint: Path
    reverse: bool = False
    read_only: bool = False
    idle: float | None = None  # seconds; unmount after that long without use
    excludes: tuple[str, ...] = ()  # reverse only (gitignore-style, as gocryptfs -exclude)
    exclude_from: tuple[Path, ...] = ()
    allow_other: bool = False
    # Forward: write without reserving the disk space first (gocryptfs -noprealloc): a full
    # disk can then tear a block; for filesystems where fallocate is slow.
    noprealloc: bool = False
    config: Path | None = None  # alternative config file
    # Format settings for a master-key mount of a vault whose config is lost (gocryptfs
    # -masterkey with -plaintextnames, -aessiv, ...); None: take them from the config.
    options: FormatOptions | None = None
    # The key was unwrapped from the config by a password (its GCM tag proves it): the worker
    # then skips the check of a bare master key against the vault's names and files.
    key_proven: bool = False


@dataclass(frozen=True)
class Password:
    """The secret of a mount the worker unlocks itself: `read` gives the password. It is
    called once the worker has read the vault's config (so a missing or broken config is
    reported before any prompt, as gocryptfs does), or with `at_once` (a password file: no
    prompt, no program run) right away, its failure still reported after the config's.
    scrypt then runs in the worker, and the mounting process never loads the cipher modules."""

    read: Callable[[], bytes]
    at_once: bool = False


@dataclass
class MountInfo:
    """One mount as `vaultsh mounts` and the TUI show it."""

    source: str
    mountpoint: str
    mode: str  # "forward" | "reverse"
    read_only: bool
    pid: int
    started: float  # unix time
    stats: dict[str, float | int] = field(default_factory=dict)  # MountStats.as_dict(), {} if unknown
    alive: bool = True  # False: the worker is gone (stale), listed so it can be cleared

    @classmethod
    def from_entry(
        cls, entry: RegistryEntry, *, stats: dict[str, float | int] | None = None, alive: bool = True
    ) -> MountInfo:
        return cls(
            source=entry.source,
            mountpoint=entry.mountpoint,
            mode=entry.mode,
            read_only=entry.ro,
            pid=entry.pid,
            started=entry.started,
            stats=dict(stats or {}),
            alive=alive,
        )


# -- durations ----------------------------------------------------------------------------

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_PLAIN_SECONDS = re.compile(rf"{_NUMBER}")
_DURATION = re.compile(rf"(?:{_NUMBER}(?:ms|s|m|h|d))+")
_DURATION_PART = re.compile(rf"({_NUMBER})(ms|s|m|h|d)")


def parse_duration(text: str) -> float:
    """Seconds in "90s", "5m", "1h", "2h30m", "1.5h", "250ms" or plain seconds ("30")."""
    s = text.strip().lower()
    if _PLAIN_SECONDS.fullmatch(s):
        return float(s)
    if not _DURATION.fullmatch(s):
        raise UsageError(f"invalid duration {text!r}: use e.g. 90s, 5m, 1h, 2h30m or plain seconds")
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(s))


# -- checks -------------------------------------------------------------------------------


mount_table = proto.mount_table


def mounted_at(path: str | os.PathLike[str]) -> bool:
    """True if something is mounted at `path` (also when its FUSE worker died)."""
    return str(proto.canonical_path(path)) in mount_table()


def check_fuse() -> None:
    """Raise FuseError unless /dev/fuse and fusermount3 are there."""
    if not os.path.exists(FUSE_DEVICE):
        raise FuseError(f"{FUSE_DEVICE} is missing: FUSE is not available (load the fuse module)")
    if not _on_path(FUSERMOUNT):
        raise FuseError(f"{FUSERMOUNT} is missing: install the fuse3 package")


def _on_path(program: str) -> bool:
    """True if `program` is an executable file in a $PATH directory (what shutil.which finds;
    shutil would load bz2 and lzma into every `vaultsh mount` for this one look-up)."""
    for directory in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(directory or os.curdir, program)
        if os.access(candidate, os.X_OK) and os.path.isfile(candidate):
            return True
    return False


def _is_inside(path: Path, outer: Path) -> bool:
    return path == outer or outer in path.parents


def check_mountpoint(mountpoint: Path) -> Path:
    """The canonical mountpoint, or MountPointError (exit code 10) saying why it cannot be used."""
    mp = proto.canonical_path(mountpoint)
    if str(mp) in mount_table():
        raise MountPointError(f"{mountpoint}: already a mount point")
    try:
        os.stat(mp)
    except FileNotFoundError:
        raise MountPointError(f"{mountpoint}: mountpoint does not exist") from None
    except OSError as e:
        raise MountPointError(f"{mountpoint}: mountpoint unusable: {e.strerror}") from None
    if not os.path.isdir(mp):
        raise MountPointError(f"{mountpoint}: mountpoint is not a directory")
    try:
        with os.scandir(mp) as it:
            if any(True for _ in it):
                raise MountPointError(f"{mountpoint}: mountpoint is not empty")
    except OSError as e:
        raise MountPointError(f"{mountpoint}: cannot read mountpoint: {e.strerror}") from None
    return mp


def check_source(source: Path, mountpoint: Path, reverse: bool) -> Path:
    what = "plain dir" if reverse else "cipher dir"
    src = proto.canonical_path(source)
    if not src.exists():
        raise CipherDirError(f"{source}: {what} does not exist")
    if not src.is_dir():
        raise CipherDirError(f"{source}: {what} is not a directory")
    # The mount would show itself inside itself (gocryptfs refuses this too).
    if _is_inside(mountpoint, src):
        raise MountPointError(f"{mountpoint}: mountpoint would be inside the {what} {source}")
    return src


def read_exclude_files(paths: tuple[Path, ...]) -> list[str]:
    """The lines of -exclude-from files, as gocryptfs hands them on (blanks and # comments too:
    the reverse view's gitignore matcher decides what a line means, §9.3)."""
    lines: list[str] = []
    for p in paths:
        try:
            text = Path(p).read_text(encoding="utf-8", errors="surrogateescape")
        except OSError as e:
            raise ExcludeError(f"{p}: cannot read exclude file: {e.strerror}") from None
        lines.extend(text.split("\n"))
    return lines


# -- worker processes ---------------------------------------------------------------------


# Workers started by this process, kept so they are reaped (not left as zombies) after exit.
_children: dict[int, WorkerProcess] = {}


def _reap_children() -> None:
    for pid, proc in list(_children.items()):
        if proc.poll() is not None:
            del _children[pid]


def _worker_gone(pid: int, timeout: float) -> bool:
    """Wait up to `timeout` for a worker to exit; True once it is gone."""
    proc = _children.get(pid)
    if proc is not None:
        try:
            proc.wait(timeout)
        except TimeoutError:
            return False
        _children.pop(pid, None)
        return True
    deadline = time.monotonic() + timeout
    while proto.process_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def worker_settings(
    req: MountRequest,
    *,
    source: Path,
    mountpoint: Path,
    excludes: list[str],
    rundir: Path,
    foreground: bool,
    log: Path | None,
    secret: str = proto.SECRET_MASTER_KEY,
) -> bytes:
    """The worker's settings line (vaultsh.fs.worker.WorkerConfig): paths and options, never
    the key or password (`secret` says which of them follows)."""
    settings = {
        "source": str(source),
        "mountpoint": str(mountpoint),
        "runtime_dir": str(rundir),
        "reverse": req.reverse,
        "read_only": req.read_only,
        "idle": float(req.idle) if req.idle else None,
        "excludes": excludes,
        "allow_other": req.allow_other,
        "noprealloc": req.noprealloc,
        "config": str(proto.canonical_path(req.config)) if req.config is not None else None,
        "options": dataclasses.asdict(req.options) if req.options is not None else None,
        "foreground": foreground,
        "key_proven": req.key_proven,
        "log": str(log) if log is not None else None,
        "secret": secret,
    }
    # ASCII JSON: a name that is not UTF-8 travels as its surrogate escapes and comes back whole.
    return json.dumps(settings, sort_keys=True).encode() + b"\n"


def _error_from_reply(reply: dict[str, Any], where: str) -> VaultError:
    """The VaultError a worker reported, as its own class when that is one of ours."""
    message = str(reply.get("error") or f"{where}: mount worker failed")
    kind = str(reply.get("kind", ""))
    cls = getattr(vault_errors, kind, None) or getattr(proto, kind, None)
    if isinstance(cls, type) and issubclass(cls, VaultError) and cls is not vault_errors.FsError:
        err: VaultError = cls(message)
    else:
        err = VaultError(message)
    with contextlib.suppress(ValueError, TypeError):
        err.exit_code = ExitCode(int(reply.get("exit_code", err.exit_code)))
    return err


class _StartReplies:
    """The worker's one-line messages on its status pipe: a request for the password, then
    its start report."""

    def __init__(self, proc: WorkerProcess, status_fd: int) -> None:
        self.proc = proc
        self.fd = status_fd
        self.buf = b""

    def next(self, timeout: float) -> dict[str, Any] | None:
        """The next message, or None if the worker exited (or closed the pipe) without one."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise FuseError(f"mount worker gave no answer within {timeout:g}s")
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.5))
            if not ready:
                if self.proc.poll() is not None:
                    return None
                continue
            chunk = os.read(self.fd, 4096)
            if not chunk:
                break
            self.buf += chunk
            if len(self.buf) > proto.MAX_LINE:
                raise ProtocolError("mount worker sent an oversized start report")
        line, _, self.buf = self.buf.partition(b"\n")
        return proto.decode_message(line) if line.strip() else None


def _kill_worker(proc: WorkerProcess, mountpoint: Path) -> None:
    """Stop a worker that failed to start and leave no mount behind."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT)
        except TimeoutError:
            proc.kill()
            proc.wait()
    if mounted_at(mountpoint):
        _fusermount_unmount(mountpoint, lazy=True)
    _children.pop(proc.pid, None)


def _remove_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):
        if os.stat(path).st_size == 0:
            os.unlink(path)


def _fusermount_unmount(mountpoint: Path, *, lazy: bool) -> subprocess.CompletedProcess[str]:
    import subprocess

    args = [FUSERMOUNT, "-u"] + (["-z"] if lazy else []) + [str(mountpoint)]
    return subprocess.run(args, capture_output=True, text=True, check=False)


def _clear_stale_entry(files: MountFiles, mountpoint: Path) -> None:
    """Before mounting: drop a dead worker's leftovers, refuse while its mount still stands."""
    if not files.registry.exists():
        files.remove()
        return
    try:
        entry = RegistryEntry.read(files.registry)
    except ProtocolError:
        files.remove()
        return
    if proto.process_alive(entry.pid):
        raise MountPointError(f"{mountpoint}: already mounted by vaultsh (worker pid {entry.pid})")
    if mounted_at(mountpoint):
        # The worker died but its kernel mount stands: keep the record, which is what lets
        # `vaultsh unmount` recognise and clear it.
        raise MountPointError(
            f"{mountpoint}: stale vaultsh mount (worker gone); run `vaultsh unmount {mountpoint}`"
        )
    files.remove()


def _start_worker(reverse: bool, log: Path | None) -> StartingWorker:
    """A worker of our own, its stderr on the mount's log (a new one each mount, so it stays
    small and tells about this mount) or, in the foreground, on the terminal as with
    gocryptfs -fg."""
    log_fd = None
    if log is not None:
        log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        return start_worker(reverse=reverse, stderr_fd=log_fd)
    finally:
        if log_fd is not None:
            os.close(log_fd)


def abandon_worker(worker: StartingWorker) -> None:
    """Give up a worker started ahead: it exits once it sees its pipe closed, and is reaped later."""
    worker.close()
    _children[worker.proc.pid] = worker.proc


def _wants_password(reply: dict[str, Any] | None) -> bool:
    return reply is not None and reply.get("want") == proto.SECRET_PASSWORD


def _hand_over_secret(
    worker: StartingWorker, replies: _StartReplies, secret: bytes | Callable[[], bytes] | Password
) -> dict[str, Any] | None:
    """Send the key, or the password (at once, or when the worker asks for it), close the
    start pipe and return the worker's start report (None: it exited without one)."""
    password: bytes | None = None
    unread: VaultError | None = None  # a password file that failed: said after the config
    if isinstance(secret, Password) and secret.at_once:
        try:
            password = secret.read()
        except VaultError as e:
            unread = e
    reply: dict[str, Any] | None = None
    # A worker that failed before reading (its imports, say) has closed the pipe: its report
    # says why.
    with contextlib.suppress(BrokenPipeError):
        if not isinstance(secret, Password):
            write_all(worker.start_w, secret() if callable(secret) else secret)
        elif password is not None:
            write_all(worker.start_w, password)
        else:
            # Anything but the request for the password is the report: an error.
            reply = replies.next(START_TIMEOUT)
            if _wants_password(reply):
                if unread is not None:
                    raise unread
                write_all(worker.start_w, secret.read())
                reply = None
    os.close(worker.start_w)
    worker.start_w = -1
    if reply is None:
        reply = replies.next(START_TIMEOUT)
        if _wants_password(reply):  # for the password sent at once
            reply = replies.next(START_TIMEOUT)
    return reply


def mount(
    req: MountRequest,
    master_key: bytes | Callable[[], bytes] | Password,
    *,
    foreground: bool = False,
    on_ready: Callable[[MountInfo], None] | None = None,
    worker: StartingWorker | None = None,
) -> MountInfo:
    """Start a worker that mounts `req`; return once the filesystem answers.

    The master key goes to the worker over a pipe, never through argv or the environment.
    `master_key` may be a function that unlocks the vault: it is called once the mount is
    checked and the worker is starting, so the worker's start-up overlaps the password prompt
    and scrypt; if it raises, the worker is stopped. A `Password` goes over the same pipe, and
    the worker unwraps the key itself (its errors, a wrong password included, are raised here
    with gocryptfs's exit codes).
    `worker` is one started ahead (worker_start.prestart), which this call takes over: it is
    given the mount, or abandoned if the mount is refused.
    With `foreground`, block until the filesystem is unmounted (Ctrl-C unmounts cleanly, as
    `gocryptfs -fg` does on SIGINT) and return the mount as it was, with `alive=False`;
    `on_ready` is called once the filesystem answers (in the foreground case, before the
    wait: the place to say "mounted and ready").
    """
    try:
        if req.idle is not None and req.idle < 0:
            raise UsageError(f"idle time must not be negative (got {req.idle:g}s)")
        if (req.excludes or req.exclude_from) and not req.reverse:
            raise UsageError("exclude patterns only work in reverse mode")
        mountpoint = proto.canonical_path(req.mountpoint)
        source = check_source(req.source, mountpoint, req.reverse)
        check_fuse()
        rundir = proto.runtime_dir()
        files = MountFiles.for_mountpoint(mountpoint, rundir)
        files.check_socket_path()
        _clear_stale_entry(files, mountpoint)
        mountpoint = check_mountpoint(req.mountpoint)
        excludes = list(req.excludes) + read_exclude_files(req.exclude_from)
    except BaseException:
        if worker is not None:
            abandon_worker(worker)
        raise
    _reap_children()
    if worker is None:
        worker = _start_worker(req.reverse, None if foreground else files.log)
    proc = worker.proc
    _children[proc.pid] = proc
    try:
        # A worker that shares our stderr switches to the log itself once it knows the mount.
        log = files.log if worker.log_to_stderr and not foreground else None
        settings = worker_settings(
            req,
            source=source,
            mountpoint=mountpoint,
            excludes=excludes,
            rundir=rundir,
            foreground=foreground,
            log=log,
            secret=proto.SECRET_PASSWORD if isinstance(master_key, Password) else proto.SECRET_MASTER_KEY,
        )
        replies = _StartReplies(proc, worker.status_r)
        with contextlib.suppress(BrokenPipeError):  # as in _hand_over_secret
            write_all(worker.start_w, settings)
        reply = _hand_over_secret(worker, replies, master_key)
        if reply is None:
            code = proc.wait(STOP_TIMEOUT)
            where = "" if foreground else f"; see {files.log}"
            raise VaultError(
                f"{req.mountpoint}: mount worker exited with status {code} before mounting{where}"
            )
        if not reply.get("ok"):
            raise _error_from_reply(reply, str(req.mountpoint))
        _wait_mounted(proc, mountpoint)
    except BaseException:
        _kill_worker(proc, mountpoint)
        _remove_if_empty(files.log)  # a wrong password, say: the error is raised, not logged
        raise
    finally:
        worker.close()
    # No status round trip to the worker before saying "ready": its counters are all zero yet.
    try:
        entry = RegistryEntry.read(files.registry)
    except ProtocolError:
        entry = _entry_for(req, source, mountpoint, proc.pid)
    info = MountInfo.from_entry(entry, alive=proc.poll() is None)
    if on_ready is not None:
        on_ready(info)
    if not foreground:
        return info
    _run_foreground(proc, files, mountpoint)
    info.alive = False
    return info


def _entry_for(req: MountRequest, source: Path, mountpoint: Path, pid: int) -> RegistryEntry:
    return RegistryEntry(
        source=str(source),
        mountpoint=str(mountpoint),
        mode=proto.MODE_REVERSE if req.reverse else proto.MODE_FORWARD,
        ro=req.read_only or req.reverse,
        pid=pid,
        started=time.time(),
    )


def _wait_mounted(proc: WorkerProcess, mountpoint: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not os.path.ismount(mountpoint):
        if proc.poll() is not None:
            raise FuseError(f"{mountpoint}: mount worker exited right after mounting")
        if time.monotonic() > deadline:
            raise FuseError(f"{mountpoint}: reported ready but is not a mount point")
        time.sleep(0.01)


def _run_foreground(proc: WorkerProcess, files: MountFiles, mountpoint: Path) -> None:
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        try:
            _stop_worker(proc.pid, files, mountpoint)
        except KeyboardInterrupt:  # impatient second Ctrl-C: detach now
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
        code = proc.wait()
    _children.pop(proc.pid, None)
    if code > 0:
        err = VaultError(f"{mountpoint}: mount worker failed with status {code}")
        with contextlib.suppress(ValueError):
            err.exit_code = ExitCode(code)
        raise err
    if code < 0:
        if mounted_at(mountpoint):  # keep the registry entry: `unmount` clears the stale mount
            raise VaultError(
                f"{mountpoint}: mount worker killed by signal {-code}; "
                f"the mount is stale, run `vaultsh unmount {mountpoint}`"
            )
        files.remove()
        raise VaultError(f"{mountpoint}: mount worker killed by signal {-code}")


def _stop_worker(pid: int, files: MountFiles, mountpoint: Path) -> None:
    """Unmount through the worker; if it refuses (busy) or is unreachable, SIGTERM it.

    On SIGTERM the worker detaches the mount lazily, as gocryptfs falls back to
    `fusermount -u -z` when an unmount on SIGINT finds the mount busy.
    """
    try:
        reply = proto.send_request(files.socket, proto.OP_UNMOUNT, timeout=STOP_TIMEOUT)
        stopped = bool(reply.get("ok"))
    except ProtocolError:
        stopped = False
    if not stopped or not _worker_gone(pid, STOP_TIMEOUT):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


# -- watching and unmounting --------------------------------------------------------------


def _query_stats(files: MountFiles) -> dict[str, float | int]:
    try:
        reply = proto.send_request(files.socket, proto.OP_STATUS, timeout=STATUS_TIMEOUT)
    except ProtocolError:
        return {}
    stats = reply.get("stats") if reply.get("ok") else None
    if not isinstance(stats, dict):
        return {}
    return {str(k): v for k, v in stats.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _info_for(files: MountFiles, fallback: RegistryEntry | None = None) -> MountInfo:
    try:
        entry = RegistryEntry.read(files.registry)
    except ProtocolError:
        if fallback is None:
            raise
        entry = fallback
    alive = proto.process_alive(entry.pid)
    return MountInfo.from_entry(entry, stats=_query_stats(files) if alive else {}, alive=alive)


def list_mounts() -> list[MountInfo]:
    """Every mount this user's workers registered, stale ones (worker gone) included."""
    _reap_children()
    rundir = proto.runtime_dir()
    out: list[MountInfo] = []
    for path in proto.registry_paths(rundir):
        files = MountFiles.for_base(path.with_suffix(""))
        with contextlib.suppress(ProtocolError):
            out.append(_info_for(files))
    return sorted(out, key=lambda i: (i.started, i.mountpoint))


def _files_of(mountpoint: Path) -> MountFiles:
    return MountFiles.for_mountpoint(mountpoint, proto.runtime_dir())


def status(mountpoint: Path) -> MountInfo:
    """The mount at `mountpoint` with its worker's live counters; MountPointError if none."""
    _reap_children()
    files = _files_of(mountpoint)
    if not files.registry.exists():
        raise MountPointError(f"{mountpoint}: not a vaultsh mount")
    return _info_for(files)


def find_mount(source_or_mountpoint: Path) -> MountInfo | None:
    """The registered mount whose mountpoint or source is this path, if any."""
    wanted = str(proto.canonical_path(source_or_mountpoint))
    mounts = list_mounts()
    for info in mounts:
        if info.mountpoint == wanted:
            return info
    for info in mounts:
        if info.source == wanted:
            return info
    return None


def unmount(mountpoint: Path) -> None:
    """Unmount a vaultsh mount: through its worker if alive, else clear the stale mount.

    A busy mount stays mounted and raises MountPointError (exit code 10), as fusermount -u
    refuses; a stale one (worker killed) is unmounted with fusermount3, lazily if need be.
    """
    _reap_children()
    mp = proto.canonical_path(mountpoint)
    files = _files_of(mp)
    try:
        entry: RegistryEntry | None = RegistryEntry.read(files.registry)
    except ProtocolError:
        entry = None
    if entry is None:
        if mounted_at(mp):
            raise MountPointError(f"{mountpoint}: not a vaultsh mount")
        raise MountPointError(f"{mountpoint}: not mounted")
    if proto.process_alive(entry.pid):
        _unmount_live(entry, files, mountpoint)
    else:
        _unmount_stale(mp, mountpoint)
    files.remove()


def _unmount_live(entry: RegistryEntry, files: MountFiles, mountpoint: Path) -> None:
    try:
        reply = proto.send_request(files.socket, proto.OP_UNMOUNT, timeout=STOP_TIMEOUT)
    except ProtocolError:
        # The worker lives but does not answer: let its signal handler unmount.
        reply = None
        with contextlib.suppress(ProcessLookupError):
            os.kill(entry.pid, signal.SIGTERM)
    if reply is not None and not reply.get("ok"):
        error = _error_from_reply(reply, str(mountpoint))
        if isinstance(error, MountPointError):  # busy: say who holds it, as fuser -m would
            from vaultsh.service.holders import busy_detail

            detail = busy_detail(Path(entry.mountpoint), skip={entry.pid})
            if detail:
                error = MountPointError(f"{error}{detail}")
        raise error
    if not _worker_gone(entry.pid, STOP_TIMEOUT):
        raise VaultError(f"{mountpoint}: mount worker (pid {entry.pid}) did not exit after unmounting")


def _unmount_stale(mp: Path, mountpoint: Path) -> None:
    if not mounted_at(mp):
        return  # already gone: only the registry entry is left
    result = _fusermount_unmount(mp, lazy=False)
    if result.returncode == 0 or not mounted_at(mp):
        return
    # Busy but dead: nothing can be served any more, so detach it.
    result = _fusermount_unmount(mp, lazy=True)
    if result.returncode != 0 and mounted_at(mp):
        detail = (result.stderr.strip().splitlines() or ["fusermount3 failed"])[-1]
        raise MountPointError(f"{mountpoint}: cannot unmount stale mount: {detail}")


__all__ = [
    "MountInfo",
    "MountRequest",
    "Password",
    "check_fuse",
    "find_mount",
    "list_mounts",
    "mount",
    "mounted_at",
    "parse_duration",
    "status",
    "unmount",
]
