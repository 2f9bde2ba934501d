"""The mount worker (`python -m vaultsh.fs.worker`): serves one vault over FUSE plus a control socket."""

# Longer than 600 lines on purpose: the worker's start-up order (hashlib blocked, imports while
# the caller parses, the config read, the password or key taken from a pipe, the mount, the
# status reply) and its request loop are one sequence whose steps depend on each other's
# state; it reads best top to bottom.

from __future__ import annotations

import sys

if __name__ == "__main__":
    # hashlib's OpenSSL (libcrypto, ~3.5 MiB resident) would only hash short names here:
    # without `_hashlib`, hashlib and hmac use CPython's own SHA-2 code. cryptography keeps its
    # own copy of OpenSSL for the ciphers. Only when run as the worker, never on import.
    sys.modules.setdefault("_hashlib", None)  # type: ignore[arg-type]
    # Modules imported on the way that a mount uses only when something goes wrong, if ever,
    # are loaded on first use: logging and the FUSE front end import traceback (with
    # linecache, tokenize, textwrap) to format exceptions, urllib.parse (for pathlib) imports
    # ipaddress for URL hosts (~2 ms of the start-up together); dataclasses imports inspect
    # (with ast and dis, ~2.5 ms) only to name a class that has no docstring.
    from vaultsh.fs.deferred import defer

    for _name in ("inspect", "traceback", "ipaddress"):
        defer(_name)

import contextlib
import ctypes
import gc
import json
import logging
import os
import resource
import select
import signal
import struct
import threading
import time

# The interpreter's own socket type, not the `socket` module: its Python layer (selectors,
# the enum conversions of every constant) costs each mount ~1.5 ms before "ready", for one
# listening unix socket and its clients.
from _socket import AF_UNIX, SO_PEERCRED, SOCK_STREAM, SOL_SOCKET
from _socket import socket as Socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, ModuleType
from typing import TYPE_CHECKING, Any

from vaultsh import mount_protocol as proto
from vaultsh.fs import blocking_loop
from vaultsh.fs.stats import MountStats
from vaultsh.mount_protocol import MountFiles, RegistryEntry
from vaultsh.vault.conf_names import CONF_NAME, MAX_PASSWORD_LEN, REVERSE_CONF_NAME
from vaultsh.vault.errors import (
    ExitCode,
    FuseError,
    MasterKeyError,
    MountPointError,
    ReadPasswordError,
    UsageError,
    VaultError,
)
from vaultsh.vault.fdio import write_all
from vaultsh.vault.keys import MASTER_KEY_LEN, FormatOptions

if TYPE_CHECKING:
    from vaultsh.vault.vault import Vault

log = logging.getLogger("vaultsh.worker")

FUSERMOUNT = "fusermount3"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# How long one control request (an unmount included) may take once it has arrived.
REPLY_DEADLINE = 30.0
# Seconds after start at which the kernel read-ahead is raised (see Worker._raise_readahead).
READAHEAD_DELAYS = (0.05, 0.5, 2.0)
# Longest a status answer waits for the FUSE loop to serve requests already queued.
SETTLE_TIME = 0.2
# Longest plausible key input; anything longer is refused before it is parsed.
MAX_KEY_INPUT = 4096
# Longest settings line (exclude patterns from files make the bulk of it).
MAX_SETTINGS = 16 << 20
PR_SET_DUMPABLE = 4  # from <linux/prctl.h>


@dataclass
class WorkerConfig:
    """The worker's settings, as the mounting process sends them (see `read_settings`)."""

    source: Path
    mountpoint: Path
    runtime_dir: Path
    reverse: bool = False
    read_only: bool = False
    idle: float | None = None
    excludes: list[str] = field(default_factory=list)
    allow_other: bool = False
    noprealloc: bool = False
    config: Path | None = None
    options: FormatOptions | None = None
    foreground: bool = False
    # The key was unwrapped from the config by its password: the config's GCM tag proved it,
    # so it is not second-guessed by a vote over the vault's names (Vault.key_fits).
    key_proven: bool = False
    # The log file to send stderr to once the settings are in (None: keep the stderr given).
    log: Path | None = None
    # What follows the settings on the start pipe: the master key, or the password (asked for
    # once the config is read; see unlock_with_password).
    secret: str = proto.SECRET_MASTER_KEY

    @property
    def mode(self) -> str:
        return proto.MODE_REVERSE if self.reverse else proto.MODE_FORWARD

    @classmethod
    def from_json(cls, text: bytes) -> WorkerConfig:
        """The settings from their JSON object; UsageError naming what is wrong."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise TypeError("not a JSON object")
            options = data.get("options")
            idle = data.get("idle")
            return cls(
                source=Path(_text(data["source"])),
                mountpoint=Path(_text(data["mountpoint"])),
                runtime_dir=Path(_text(data["runtime_dir"])),
                reverse=_flag(data, "reverse"),
                read_only=_flag(data, "read_only"),
                idle=float(idle) if idle else None,
                excludes=[_text(x) for x in data.get("excludes", [])],
                allow_other=_flag(data, "allow_other"),
                noprealloc=_flag(data, "noprealloc"),
                config=Path(_text(data["config"])) if data.get("config") is not None else None,
                options=FormatOptions(**options) if options is not None else None,
                foreground=_flag(data, "foreground"),
                key_proven=_flag(data, "key_proven"),
                log=Path(_text(data["log"])) if data.get("log") is not None else None,
                secret=_secret_kind(data),
            )
        except (ValueError, TypeError, KeyError) as e:
            raise UsageError(f"mount worker: bad settings: {e}") from None


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _secret_kind(data: dict[str, Any]) -> str:
    kind = data.get("secret", proto.SECRET_MASTER_KEY)
    if kind not in proto.SECRETS:
        raise TypeError(f"secret: expected one of {', '.join(sorted(proto.SECRETS))}")
    return str(kind)


def _flag(data: dict[str, Any], name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected true or false")
    return value


@dataclass
class CommandLine:
    """The worker's own arguments: its two pipes and what to import before its settings come."""

    start_fd: int
    status_fd: int
    preload: str = proto.MODE_FORWARD


def parse_command_line(argv: Sequence[str]) -> CommandLine:
    """`--start-fd N --status-fd N [--preload forward|reverse]`, as worker_start.worker_argv
    writes it; argparse would cost every mount its import (~5 ms) for three options."""
    values: dict[str, str] = {}
    it = iter(argv)
    for word in it:
        if word not in ("--start-fd", "--status-fd", "--preload") or word in values:
            raise UsageError(f"mount worker: unexpected argument {word!r}")
        value = next(it, None)
        if value is None:
            raise UsageError(f"mount worker: {word} needs a value")
        values[word] = value
    try:
        line = CommandLine(int(values["--start-fd"]), int(values["--status-fd"]))
    except KeyError as e:
        raise UsageError(f"mount worker: {e.args[0]} is missing") from None
    except ValueError as e:
        raise UsageError(f"mount worker: {e}") from None
    preload = values.get("--preload", proto.MODE_FORWARD)
    if preload not in (proto.MODE_FORWARD, proto.MODE_REVERSE):
        raise UsageError(f"mount worker: --preload {preload!r}: want forward or reverse")
    line.preload = preload
    return line


class StartReport:
    """The one-line report on the start pipe: "ready" or an error, sent exactly once."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @property
    def sent(self) -> bool:
        return self._fd is None

    def _send(self, message: dict[str, Any]) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.write(fd, proto.encode_message(message))
        except OSError:
            pass  # the client gave up waiting; it will find the log
        finally:
            os.close(fd)

    def ready(self) -> None:
        self._send(proto.ready_message(os.getpid()))

    def want_password(self) -> None:
        """Ask for the password: a line before the report, which is still to come."""
        if self._fd is not None:
            os.write(self._fd, proto.encode_message(proto.password_wanted_message()))

    def forward(self, line: bytes) -> int:
        """Send the error report another process made (one JSON line); its exit code."""
        message = proto.decode_message(line)
        self._send(message)
        try:
            return int(message.get("exit_code", ExitCode.OTHER))
        except (TypeError, ValueError):
            return int(ExitCode.OTHER)

    def close(self) -> None:
        """Close the pipe without a word: nobody reads it any more."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def error(self, exc: BaseException) -> None:
        self._send(proto.error_from_exception(exc))


def _read_line(fd: int) -> tuple[bytes, bytes] | None:
    """The first line on the pipe (without its newline) and what followed it in the same
    reads; None if the pipe ends first."""
    buf = b""
    while b"\n" not in buf:
        if len(buf) > MAX_SETTINGS:
            raise UsageError("mount worker: settings line too long")
        chunk = os.read(fd, 65536)
        if not chunk:
            return None
        buf += chunk
    line, rest = buf.split(b"\n", 1)
    return line, rest


def read_settings(fd: int) -> tuple[WorkerConfig, bytes] | None:
    """The settings line from the start pipe, and what followed it (the key's first bytes).

    None if the pipe ends first: the mounting process gave up before it asked for a mount.
    """
    got = _read_line(fd)
    return None if got is None else (WorkerConfig.from_json(got[0]), got[1])


def _read_secret(fd: int, head: bytes, limit: int) -> bytearray:
    """What is left on the pipe after `head` (read with the settings) until EOF, at most
    `limit` bytes and one more (to tell an overlong input); closes the pipe. Read straight
    into one buffer, so the caller can wipe every copy there is."""
    buf = bytearray(limit + 1)
    n = min(len(head), len(buf))
    buf[:n] = head[:n]
    try:
        while n < len(buf):
            got = os.readv(fd, [memoryview(buf)[n:]])
            if not got:
                break
            n += got
    finally:
        os.close(fd)
    del buf[n:]
    return buf


def _taken(buf: bytearray) -> bytes:
    """The buffer's bytes; the buffer itself is wiped."""
    data = bytes(buf)
    buf[:] = bytes(len(buf))
    return data


def read_master_key(fd: int, head: bytes = b"") -> bytes:
    """Read the raw key from its pipe until EOF (after `head`, read with the settings), then
    close the pipe."""
    buf = _read_secret(fd, head, MAX_KEY_INPUT)
    if len(buf) != MASTER_KEY_LEN:
        n = len(_taken(buf))
        raise MasterKeyError(f"master key handed to the mount worker has {n} bytes, not {MASTER_KEY_LEN}")
    return _taken(buf)


def read_password(fd: int, head: bytes = b"") -> bytes:
    """Read the password from its pipe until EOF (after `head`), then close the pipe."""
    buf = _read_secret(fd, head, MAX_PASSWORD_LEN)
    if len(buf) > MAX_PASSWORD_LEN:
        _taken(buf)
        raise ReadPasswordError(f"Password is longer than {MAX_PASSWORD_LEN} bytes")
    return _taken(buf)


def config_path(cfg: WorkerConfig) -> Path:
    """The config the mount opens with: the one given, else the source's own (§3, §9.1)."""
    if cfg.config is not None:
        return cfg.config
    return cfg.source / (REVERSE_CONF_NAME if cfg.reverse else CONF_NAME)


def unlock_with_password(cfg: WorkerConfig, fd: int, head: bytes, report: StartReport) -> bytes:
    """The master key, unwrapped from the config by the password read from the start pipe.

    The config is read first and the password asked for only then, so a missing or broken
    config is reported before any prompt (as gocryptfs does). scrypt runs here, not in the
    mounting process, which thus never loads cryptography.
    """
    from vaultsh.vault.config import load_config

    conf = load_config(config_path(cfg))
    report.want_password()
    password = read_password(fd, head)
    try:
        return conf.decrypt_master_key(password)
    finally:
        del password


# -- the unlocking process ----------------------------------------------------------------

# What the unlocking process sends instead of the settings line when it failed: this byte,
# then the error report for the mounting process (one JSON line).
UNLOCK_FAILED = b"!"
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class Unlocker:
    """A child of the worker that takes the settings and the secret from the start pipe while
    the worker still imports its FUSE modules: it reads the config, asks for the password and
    runs scrypt, so scrypt overlaps those imports, and its memory (64 MiB at gocryptfs's
    default cost) is never the long-lived worker's. It hands the worker what the mounting
    process would send with a master key: the settings line, then the raw key."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid = pid
        self.fd = fd  # the worker reads the settings and key from here

    @classmethod
    def start(cls, start_fd: int, status_fd: int) -> Unlocker:
        from vaultsh.vault import config  # noqa: F401 - loaded once, for the child

        r, w = os.pipe2(os.O_CLOEXEC)
        worker = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: never returns into the worker's code
            code = int(ExitCode.OTHER)
            try:
                os.close(r)
                code = _unlock(worker, start_fd, status_fd, w)
            except BaseException:
                log.exception("unlocking failed")
            finally:
                os._exit(code)
        os.close(w)
        os.close(start_fd)
        return cls(pid, r)

    def wait(self) -> int:
        """Wait for the child to exit (it has once its pipe ended); its exit status."""
        _pid, status = os.waitpid(self.pid, 0)
        self.pid = 0
        return os.waitstatus_to_exitcode(status)

    def stop(self) -> None:
        """Make sure the child is gone: the worker failed while it still waited or worked."""
        if self.pid:
            os.kill(self.pid, signal.SIGKILL)  # an exited child not yet waited for is still there
            self.wait()


def _unlock_failed(out_fd: int, e: VaultError) -> int:
    """Hand the worker the error report for the mounting process; the exit status."""
    write_all(out_fd, UNLOCK_FAILED + proto.encode_message(proto.error_from_exception(e)))
    return int(e.exit_code)


def _unlock(worker: int, start_fd: int, status_fd: int, out_fd: int) -> int:
    """The unlocking process's work (see Unlocker); returns its exit status."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # never outlive the worker
    if os.getppid() != worker:  # it ended before the line above took effect
        return ExitCode.OK
    report = StartReport(status_fd)  # only to ask for the password: the worker reports
    got = _read_line(start_fd)
    if got is None:  # the mounting process gave up: so does the worker, at the pipe's end
        return ExitCode.OK
    line, head = got
    try:
        cfg = WorkerConfig.from_json(line)
    except UsageError as e:
        log.error("%s", e)
        return _unlock_failed(out_fd, e)
    # A missing config, a wrong password or key is the mounting process's to say (logged
    # too, it would be said twice on a shared terminal).
    try:
        if cfg.secret == proto.SECRET_PASSWORD:
            key = unlock_with_password(cfg, start_fd, head, report)
            # The settings as if the key had been sent, and proven by the config's GCM tag.
            settings = json.loads(line)
            settings.update(secret=proto.SECRET_MASTER_KEY, key_proven=True)
            line = json.dumps(settings, sort_keys=True).encode()
        else:
            key = read_master_key(start_fd, head)
    except VaultError as e:
        return _unlock_failed(out_fd, e)
    report.close()
    write_all(out_fd, line + b"\n" + key)
    return ExitCode.OK


# -- building the filesystem --------------------------------------------------------------


def check_forward_key(vault: Vault) -> None:
    """Refuse a master key the vault's own content shows to be wrong (Vault.key_fits).

    A vault that cannot tell (empty root, plaintext names without content) is accepted, as
    gocryptfs accepts any -masterkey.
    """
    if vault.key_fits() is False:
        raise MasterKeyError(f"{vault.cipherdir}: master key does not decrypt this vault (wrong key?)")


def import_serving_modules(reverse: bool) -> None:
    """Load the modules `build_operations` needs (the config's too) while the caller still
    parses its command line and checks the mount, so the mount follows the secret at once."""
    import importlib

    for name in (
        ("vaultsh.vault.opening", "vaultsh.vault.reverse", "vaultsh.fs.reverse")
        if reverse
        else ("vaultsh.vault.opening", "vaultsh.vault.vault", "vaultsh.fs.forward")
    ):
        importlib.import_module(name)


def build_operations(cfg: WorkerConfig, key: bytes, stats: MountStats) -> tuple[Any, set[str]]:
    """The pyfuse3 Operations object for the request and the mount options it needs."""
    from vaultsh.fs.frontend import LOG_NAMES_ENV
    from vaultsh.vault.opening import open_unlocked

    log_names = os.environ.get(LOG_NAMES_ENV) == "1"
    folder = open_unlocked(
        cfg.source,
        reverse=cfg.reverse,
        master_key=lambda: key,
        options=cfg.options,
        config=cfg.config,
        excludes=tuple(cfg.excludes),
    )
    from vaultsh.vault.vault import Vault  # loaded by either kind of folder

    if not isinstance(folder, Vault):
        from vaultsh.fs.reverse import REVERSE_MOUNT_OPTIONS, ReverseOperations, reverse_fsname

        ops: Any = ReverseOperations(folder, stats=stats, log_names=log_names)
        options = set(REVERSE_MOUNT_OPTIONS) | {f"fsname={reverse_fsname(cfg.source)}", "ro"}
    else:
        vault = folder
        if not cfg.key_proven:
            check_forward_key(vault)

        from vaultsh.fs.forward import FORWARD_MOUNT_OPTIONS, ForwardOperations, forward_fsname

        if cfg.noprealloc:
            from vaultsh.vault.fdio import skip_space_reservation

            skip_space_reservation()
        ops = ForwardOperations(vault, read_only=cfg.read_only, stats=stats, log_names=log_names)
        options = set(FORWARD_MOUNT_OPTIONS) | {f"fsname={forward_fsname(cfg.source)}"}
        if cfg.read_only:
            options.add("ro")
    if cfg.allow_other:
        # Others reach the mount: the kernel must check permissions on their behalf (as
        # gocryptfs -allow_other does). A private mount leaves that to the cipher files.
        options |= {"allow_other", "default_permissions"}
    return ops, options


# -- serving ------------------------------------------------------------------------------


class Worker:
    """One mounted filesystem: FUSE requests in the main thread, the control socket, idle
    watch and read-ahead raise in a second one.

    The main thread blocks in poll(2) between requests (see blocking_loop); the control
    thread wakes pyfuse3's loop through `pyfuse3.terminate()` once the mount is gone.
    """

    def __init__(
        self,
        cfg: WorkerConfig,
        stats: MountStats,
        report: StartReport,
        entry: RegistryEntry,
        files: MountFiles,
        framework: blocking_loop.BlockingFramework,
        fuse: ModuleType,
    ) -> None:
        self.cfg = cfg
        self.stats = stats
        self.report = report
        self.entry = entry
        self.files = files
        self.framework = framework
        self.fuse = fuse
        self._unmount_lock = threading.Lock()
        self.unmounted = False
        self._stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC)
        self._clients: set[threading.Thread] = set()

    def serve(self) -> None:
        listener = self._open_listener()
        # "ready" first: the kernel mount answers, and a control client that comes before
        # the control thread runs waits in the listener's backlog.
        self.report.ready()
        _collect_garbage_again()
        control = threading.Thread(target=self._control_loop, args=(listener,), name="control", daemon=True)
        control.start()
        try:
            blocking_loop.run(lambda: self.fuse.main(min_tasks=1, max_tasks=1))
        finally:
            os.write(self._stop_w, b"x")
            control.join(REPLY_DEADLINE)
            # An unmount request ends the filesystem; its client must still get the answer.
            deadline = time.monotonic() + REPLY_DEADLINE
            for client in list(self._clients):
                client.join(max(0.0, deadline - time.monotonic()))
            listener.close()
            for fd in (self._stop_r, self._stop_w):
                os.close(fd)

    def _control_loop(self, listener: Socket) -> None:
        """Accept control clients; raise the read-ahead; unmount when idle. Ends with the mount."""
        poller = select.poll()
        poller.register(listener, select.POLLIN)
        poller.register(self._stop_r, select.POLLIN)
        now = time.monotonic()
        # See _raise_readahead: the INIT reply undoes an early raise, so it is repeated.
        readahead_at = [now + delay for delay in READAHEAD_DELAYS]
        idle = self.cfg.idle
        interval = min(max(idle / 10, 0.05), 1.0) if idle else None
        idle_check_at = now + interval if interval else None
        while True:
            due = [t for t in (*readahead_at[:1], idle_check_at) if t is not None]
            timeout = max(0, int((min(due) - time.monotonic()) * 1000) + 1) if due else -1
            for fd, _events in poller.poll(timeout):
                if fd == self._stop_r:
                    return
                self._accept(listener)
            now = time.monotonic()
            if readahead_at and now >= readahead_at[0]:
                readahead_at.pop(0)
                self._raise_readahead()
            if idle_check_at is not None and interval is not None and now >= idle_check_at:
                wait = self._idle_check(idle or 0.0, interval)
                idle_check_at = None if wait is None else now + wait

    def _raise_readahead(self) -> None:
        """Raise the mount's kernel read-ahead once the FUSE INIT exchange is through.

        Larger read-ahead turns a sequential reader's 128 KiB requests, each a round trip
        through Python, into 1 MiB ones. The kernel applies the INIT reply's (smaller) limit
        when it receives it, undoing an earlier raise, and nothing tells us when that was; so
        it is applied a few times in the first seconds (idempotent; needs root, else a no-op).
        """
        from vaultsh.fs.forward import raise_readahead

        try:
            raise_readahead(self.cfg.mountpoint)
        except Exception:  # a tuning step: never worth stopping the control thread
            log.exception("raising the read-ahead failed")

    def _idle_check(self, idle: float, interval: float) -> float | None:
        """Unmount after `idle` seconds without a request and with no file open (gocryptfs -idle).

        Returns the seconds until the next check, None once unmounted.
        """
        quiet_for = time.monotonic() - self.stats.last_use
        if self.stats.open_files != 0 or quiet_for <= idle:
            return interval
        log.info("idle for %.1fs: unmounting %s", quiet_for, self.cfg.mountpoint)
        ok, _detail = self.unmount()
        return None if ok else max(interval, 1.0)  # busy: try again later

    def _open_listener(self) -> Socket:
        path = self.files.socket
        self.files.check_socket_path()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # left by a worker that was killed; the client checked it is dead
        sock = Socket(AF_UNIX, SOCK_STREAM)  # close-on-exec, as socket.socket makes it
        old_umask = os.umask(0o177)  # born 0600: no window in which others could connect
        try:
            sock.bind(str(path))
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        sock.listen(8)
        return sock

    def _accept(self, listener: Socket) -> None:
        try:
            # What socket.socket.accept does for a listener without a timeout: accept4 with
            # close-on-exec, the connection blocking.
            fd, _addr = listener._accept()  # type: ignore[attr-defined]  # not in the stubs
            conn = Socket(fileno=fd)
        except OSError as e:
            log.debug("control accept failed: %s", e)
            return
        # One thread per client: a slow client cannot hold up status or unmount requests.
        client = threading.Thread(
            target=self._handle_client, args=(conn,), name="control-client", daemon=True
        )
        self._clients.add(client)
        client.start()

    @staticmethod
    def _peer_allowed(conn: Socket) -> bool:
        try:
            raw = conn.getsockopt(SOL_SOCKET, SO_PEERCRED, struct.calcsize("3i"))
        except OSError:
            return False
        _pid, uid, _gid = struct.unpack("3i", raw)
        return uid in (os.getuid(), 0)

    def _handle_client(self, conn: Socket) -> None:
        """Answer one request (one JSON line) and close the connection."""
        try:
            if not self._peer_allowed(conn):
                return
            conn.settimeout(proto.DEFAULT_TIMEOUT)
            buf = b""
            with contextlib.suppress(TimeoutError):
                while b"\n" not in buf and len(buf) <= proto.MAX_LINE:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
            if b"\n" not in buf:
                return
            reply = self._dispatch(buf.split(b"\n", 1)[0])
            conn.settimeout(REPLY_DEADLINE)
            conn.sendall(proto.encode_message(reply))
        except OSError as e:
            log.debug("control client went away: %s", e)
        finally:
            conn.close()
            self._clients.discard(threading.current_thread())

    def _dispatch(self, line: bytes) -> dict[str, Any]:
        try:
            request = proto.decode_message(line)
        except VaultError as e:
            return proto.error_from_exception(e)
        op = request.get("op")
        if op == proto.OP_STATUS:
            self._settle()
            stats: dict[str, Any] = self.stats.as_dict()
            stats["idle_for"] = max(0.0, time.monotonic() - self.stats.last_use)
            return proto.ok_reply(**_entry_fields(self.entry), stats=stats)
        if op == proto.OP_UNMOUNT:
            ok, detail = self.unmount()
            if ok:
                return proto.ok_reply()
            return proto.error_reply(detail, ExitCode.MOUNT_POINT, MountPointError.__name__)
        return proto.error_reply(f"unknown control operation {op!r}", ExitCode.USAGE, UsageError.__name__)

    def _settle(self) -> None:
        """Give the FUSE loop a moment to serve what is queued (a file just closed sends its
        release after close(2) returns), so a status shows the state the caller left."""
        deadline = time.monotonic() + SETTLE_TIME
        while not self.framework.idle() and time.monotonic() < deadline:
            time.sleep(0.001)

    def unmount(self) -> tuple[bool, str]:
        """Unmount without forcing: a busy mount stays (as `fusermount3 -u` refuses it)."""
        import subprocess

        with self._unmount_lock:
            if self.unmounted:
                return True, ""
            try:
                result = subprocess.run(
                    [FUSERMOUNT, "-u", str(self.cfg.mountpoint)],
                    capture_output=True,
                    check=False,
                    timeout=REPLY_DEADLINE,
                )
            except (OSError, subprocess.TimeoutExpired) as e:
                return False, f"{self.cfg.mountpoint}: cannot unmount: {e}"
            if result.returncode != 0:
                text = result.stderr.decode(errors="replace").strip().splitlines()
                detail = text[-1] if text else f"{FUSERMOUNT} exited with {result.returncode}"
                log.warning("unmount refused: %s", detail)
                return False, f"{self.cfg.mountpoint}: cannot unmount: {detail}"
            self.unmounted = True
            # The kernel ends the session on unmount; terminate too in case it raced ahead.
            self.fuse.terminate()
            return True, ""


def _collect_garbage_again() -> None:
    """Turn cyclic garbage collection back on (the worker starts without it, see
    worker_start.WORKER_GC_OFF), leaving out what is loaded by now: module-level objects
    live as long as the process, and each full collection would walk them again."""
    gc.freeze()
    gc.enable()


def _entry_fields(entry: RegistryEntry) -> dict[str, Any]:
    return {
        "source": entry.source,
        "mountpoint": entry.mountpoint,
        "mode": entry.mode,
        "ro": entry.ro,
        "pid": entry.pid,
        "started": entry.started,
    }


# -- process set-up -----------------------------------------------------------------------


class _StopSignals:
    """SIGTERM/SIGINT/SIGHUP: end the FUSE loop (which unmounts), or remember it until there is one."""

    def __init__(self, mountpoint: Path) -> None:
        self.mountpoint = mountpoint
        self.requested = False
        self.fuse: ModuleType | None = None  # pyfuse3, once its session is mounted

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        if self.fuse is not None:
            log.info("signal %d: unmounting %s", signum, self.mountpoint)
            self.fuse.terminate()  # safe here: it sets a flag and writes to a pipe

    def serving(self, fuse: ModuleType) -> None:
        self.fuse = fuse
        if self.requested:
            fuse.terminate()


def _setup_logging() -> None:
    from vaultsh.vault.log_format import SafeLogFormatter

    handler = logging.StreamHandler(sys.stderr)
    # Log lines carry decrypted names and paths: shown escaped, never raw on a terminal.
    line = "%(asctime)s vaultsh-worker[%(process)d] %(levelname)s: %(message)s"
    handler.setFormatter(SafeLogFormatter(line))
    logging.basicConfig(handlers=[handler], level=logging.WARNING)


def _apply_settings(cfg: WorkerConfig) -> None:
    """Send stderr to the mount's log file (a worker started before its mount was known
    shares its caller's stderr until now), and log more in the foreground."""
    if cfg.log is not None:
        fd = os.open(cfg.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        sys.stderr.flush()
        os.dup2(fd, 2)
        os.close(fd)
    if cfg.foreground:
        logging.getLogger().setLevel(logging.INFO)


def harden_process() -> None:
    """No core dump and no debugger of the same user: this process holds the master key and
    plaintext. RLIMIT_CORE 0 stops a dump file; not being dumpable also closes /proc/<pid>/mem
    and ptrace to anyone without CAP_SYS_PTRACE (as for a set-uid program)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        log.warning("cannot turn off core dumps: %s", os.strerror(ctypes.get_errno()))


def run(line: CommandLine) -> int:
    """Import, take the settings, mount, serve until unmounted or signalled, clean up; returns
    the process exit code."""
    harden_process()  # before the key arrives (the unlocking child inherits it)
    report = StartReport(line.status_fd)
    where = "mount worker"
    # Each step's undoing is registered once the step is done; they run in reverse order,
    # every one of them even when an earlier one fails.
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(_report_unsent, report, lambda: where)
        try:
            unlocker = Unlocker.start(line.start_fd, line.status_fd)
            cleanup.callback(unlocker.stop)
            framework, fuse = blocking_loop.install()
            cleanup.callback(framework.close)
            # While the mounting process still parses its command line and checks the mount,
            # and the unlocking child takes the secret.
            import_serving_modules(line.preload == proto.MODE_REVERSE)
            got = _read_line(unlocker.fd)
            if got is None or got[0].startswith(UNLOCK_FAILED):
                os.close(unlocker.fd)
                status = unlocker.wait()
                if got is not None:  # its error (reported as it is) is the mounting process's to say
                    return report.forward(got[0][len(UNLOCK_FAILED) :])
                if status != 0:
                    raise VaultError(f"{where}: unlocking stopped with status {status}")
                report.close()  # the mounting process gave up before it asked for a mount
                return ExitCode.OK
            cfg = WorkerConfig.from_json(got[0])
            where = str(cfg.mountpoint)
            key = read_master_key(unlocker.fd, got[1])
            unlocker.wait()
            # The log is only opened now: a mount refused for its secret leaves none behind.
            _apply_settings(cfg)
            return serve_mount(cfg, key, report, framework, fuse, cleanup)
        except VaultError as e:
            log.error("%s", e)
            report.error(e)
            return int(e.exit_code)
        except BaseException as e:  # a worker must always report and clean up
            log.exception("mount worker failed")
            report.error(VaultError(f"{where}: mount worker failed: {_one_line(e)}"))
            return int(ExitCode.OTHER)
    raise AssertionError("unreachable")  # the block returns; mypy cannot tell


def serve_mount(
    cfg: WorkerConfig,
    key: bytes,
    report: StartReport,
    framework: blocking_loop.BlockingFramework,
    fuse: ModuleType,
    cleanup: contextlib.ExitStack,
) -> int:
    """Open the vault with `key`, mount it and serve until unmounted; undoing each step is
    registered on `cleanup`."""
    stop = _StopSignals(cfg.mountpoint)
    for sig in STOP_SIGNALS:
        signal.signal(sig, stop)
    os.chdir("/")  # do not keep the caller's directory busy
    stats = MountStats()
    # Named before mounting: once mounted, the mountpoint must not be touched until we serve.
    files = MountFiles.for_mountpoint(cfg.mountpoint, cfg.runtime_dir)
    ops, options = build_operations(cfg, key, stats)
    del key
    framework.on_idle.append(ops.release_buffers)
    cleanup.callback(_logged, ops.close, "closing the filesystem's open files failed")
    try:
        fuse.init(ops, str(cfg.mountpoint), options)
    except RuntimeError as e:
        raise FuseError(f"{cfg.mountpoint}: FUSE mount failed: {e}") from None
    cleanup.callback(_remove_files, files)
    cleanup.callback(_logged, lambda: fuse.close(unmount=True), "closing the FUSE session failed")
    cleanup.callback(setattr, stop, "fuse", None)  # a late signal must not touch a closed session
    entry = RegistryEntry(
        source=str(cfg.source),
        mountpoint=str(cfg.mountpoint),
        mode=cfg.mode,
        ro=cfg.read_only or cfg.reverse,
        pid=os.getpid(),
        started=time.time(),
    )
    entry.write(files.registry)
    stop.serving(fuse)
    Worker(cfg, stats, report, entry, files, framework, fuse).serve()
    return ExitCode.OK


def _logged(step: Callable[[], object], failure: str) -> None:
    """Run a teardown step; a failure is logged, and the steps after it still run."""
    try:
        step()
    except Exception:  # the mount is gone either way; the log says what failed
        log.exception("%s", failure)


def _remove_files(files: MountFiles) -> None:
    # A background worker logs warnings and errors only: an empty log says nothing, and one
    # per mountpoint ever used would pile up in the runtime dir.
    files.remove(keep_log=_has_content(files.log))


def _report_unsent(report: StartReport, where: Callable[[], str]) -> None:
    if not report.sent:
        report.error(VaultError(f"{where()}: mount worker stopped before it was ready"))


def _has_content(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _one_line(e: BaseException) -> str:
    if isinstance(e, BaseExceptionGroup) and e.exceptions:
        return _one_line(e.exceptions[0])
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def main(argv: Sequence[str] | None = None) -> int:
    _setup_logging()
    try:
        line = parse_command_line(sys.argv[1:] if argv is None else argv)
    except UsageError as e:
        log.error("%s", e)
        return int(e.exit_code)
    return run(line)


if __name__ == "__main__":
    sys.exit(main())
