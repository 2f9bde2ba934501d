"""The mount worker (`python -m vaultsh.fs.worker`): serves one vault over FUSE plus a control socket."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import pyfuse3
import trio

from vaultsh.fs.request_wait import install_direct_wait
from vaultsh.fs.stats import MountStats
from vaultsh.service import mount_protocol as proto
from vaultsh.service.mount_protocol import MountFiles, RegistryEntry
from vaultsh.vault.errors import (
    ExitCode,
    FuseError,
    MasterKeyError,
    MountPointError,
    UsageError,
    VaultError,
)
from vaultsh.vault.keys import MASTER_KEY_LEN, FormatOptions
from vaultsh.vault.vault import Vault

log = logging.getLogger("vaultsh.worker")

FUSERMOUNT = "fusermount3"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# How long one control request (an unmount included) may take once it has arrived.
REPLY_DEADLINE = 30.0
# Longest plausible key input; anything longer is refused before it is parsed.
MAX_KEY_INPUT = 4096


@dataclass
class WorkerConfig:
    """The worker's command line, parsed."""

    source: Path
    mountpoint: Path
    runtime_dir: Path
    key_fd: int
    status_fd: int
    reverse: bool = False
    read_only: bool = False
    idle: float | None = None
    excludes: list[str] = field(default_factory=list)
    allow_other: bool = False
    config: Path | None = None
    options: FormatOptions | None = None
    foreground: bool = False

    @property
    def mode(self) -> str:
        return proto.MODE_REVERSE if self.reverse else proto.MODE_FORWARD


def parse_args(argv: Sequence[str] | None = None) -> WorkerConfig:
    p = argparse.ArgumentParser(prog="python -m vaultsh.fs.worker", description=__doc__)
    p.add_argument("--source", required=True, type=Path)
    p.add_argument("--mountpoint", required=True, type=Path)
    p.add_argument("--runtime-dir", required=True, type=Path)
    p.add_argument("--key-fd", required=True, type=int, help="pipe carrying the raw master key")
    p.add_argument("--status-fd", required=True, type=int, help="pipe for the one-line start report")
    p.add_argument("--reverse", action="store_true")
    p.add_argument("--read-only", action="store_true")
    p.add_argument("--idle", type=float, metavar="SECONDS")
    p.add_argument("--exclude", action="append", default=[], metavar="PATTERN")
    p.add_argument("--allow-other", action="store_true")
    p.add_argument("--config", type=Path)
    p.add_argument("--format-options", type=_format_options, metavar="JSON")
    p.add_argument("--foreground", action="store_true")
    a = p.parse_args(argv)
    return WorkerConfig(
        source=a.source,
        mountpoint=a.mountpoint,
        runtime_dir=a.runtime_dir,
        key_fd=a.key_fd,
        status_fd=a.status_fd,
        reverse=a.reverse,
        read_only=a.read_only,
        idle=a.idle if a.idle and a.idle > 0 else None,
        excludes=list(a.exclude),
        allow_other=a.allow_other,
        config=a.config,
        options=a.format_options,
        foreground=a.foreground,
    )


def _format_options(text: str) -> FormatOptions:
    """FormatOptions from the JSON object of their fields (unknown fields are an error)."""
    try:
        data = json.loads(text)
        return FormatOptions(**data)
    except (ValueError, TypeError) as e:
        raise argparse.ArgumentTypeError(f"bad format options: {e}") from None


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

    def error(self, exc: BaseException) -> None:
        self._send(proto.error_from_exception(exc))


def read_master_key(fd: int) -> bytes:
    """Read the raw key from its pipe until EOF, then close the pipe."""
    buf = bytearray()
    try:
        while len(buf) <= MAX_KEY_INPUT:
            chunk = os.read(fd, 1024)
            if not chunk:
                break
            buf += chunk
    finally:
        os.close(fd)
    if len(buf) != MASTER_KEY_LEN:
        n = len(buf)
        buf[:] = bytes(len(buf))
        raise MasterKeyError(f"master key handed to the mount worker has {n} bytes, not {MASTER_KEY_LEN}")
    key = bytes(buf)
    buf[:] = bytes(len(buf))
    return key


# -- building the filesystem --------------------------------------------------------------


def check_forward_key(vault: Vault) -> None:
    """Refuse a master key the vault's own content shows to be wrong (Vault.key_fits).

    A vault that cannot tell (empty root, plaintext names without content) is accepted, as
    gocryptfs accepts any -masterkey.
    """
    if vault.key_fits() is False:
        raise MasterKeyError(f"{vault.cipherdir}: master key does not decrypt this vault (wrong key?)")


def build_operations(cfg: WorkerConfig, key: bytes, stats: MountStats) -> tuple[Any, set[str]]:
    """The pyfuse3 Operations object for the request and the mount options it needs."""
    if cfg.reverse:
        from vaultsh.fs.reverse import REVERSE_MOUNT_OPTIONS, ReverseOperations, reverse_fsname
        from vaultsh.vault.reverse import ReverseView

        view = ReverseView.open(
            cfg.source,
            master_key=key,
            options=cfg.options,
            excludes=tuple(cfg.excludes),
            config_path=cfg.config,
        )
        ops: Any = ReverseOperations(view, stats=stats)
        options = set(REVERSE_MOUNT_OPTIONS) | {f"fsname={reverse_fsname(cfg.source)}", "ro"}
    else:
        vault = Vault.open(cfg.source, master_key=key, options=cfg.options, config_path=cfg.config)
        check_forward_key(vault)

        from vaultsh.fs.forward import FORWARD_MOUNT_OPTIONS, ForwardOperations, forward_fsname

        ops = ForwardOperations(vault, read_only=cfg.read_only, stats=stats)
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
    """One mounted filesystem with its control socket, idle watcher and signal handling."""

    def __init__(
        self,
        cfg: WorkerConfig,
        stats: MountStats,
        report: StartReport,
        entry: RegistryEntry,
        files: MountFiles,
    ) -> None:
        self.cfg = cfg
        self.stats = stats
        self.report = report
        self.entry = entry
        self.files = files
        self._unmount_lock = trio.Lock()
        self.unmounted = False

    async def run(self) -> None:
        with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_signals, signals)
                listener = await self._open_listener()
                nursery.start_soon(self._serve_control, listener)
                if self.cfg.idle:
                    nursery.start_soon(self._watch_idle, self.cfg.idle)
                nursery.start_soon(self._run_fuse, nursery.cancel_scope)
                if _stop_requested:
                    pyfuse3.terminate()
                self.report.ready()
                nursery.start_soon(self._raise_readahead)

    async def _raise_readahead(self) -> None:
        """Raise the mount's kernel read-ahead once the FUSE INIT exchange is through.

        Larger read-ahead turns a sequential reader's 128 KiB requests, each a round trip
        through Python, into 1 MiB ones. The kernel applies the INIT reply's (smaller) limit
        when it receives it, undoing an earlier raise, and nothing tells us when that was; so
        it is applied a few times in the first seconds (idempotent; needs root, else a no-op).
        """
        from vaultsh.fs.forward import raise_readahead

        for delay in (0.05, 0.5, 2.0):
            await trio.sleep(delay)
            await trio.to_thread.run_sync(raise_readahead, self.cfg.mountpoint)

    async def _run_fuse(self, cancel_scope: trio.CancelScope) -> None:
        try:
            # One request task: the handlers never await (crypto and I/O run inline), so more
            # tasks would only add trio task churn and pyfuse3's lock around every request.
            # With one task, a request already queued is read without a pass through trio.
            install_direct_wait()
            await pyfuse3.main(min_tasks=1, max_tasks=1)
        finally:
            cancel_scope.cancel()  # the filesystem is gone: stop the socket and watchers

    async def _watch_signals(self, signals: Any) -> None:
        async for signum in signals:
            log.info("signal %d: unmounting %s", signum, self.cfg.mountpoint)
            pyfuse3.terminate()
            return

    async def _open_listener(self) -> trio.SocketListener:
        path = self.files.socket
        self.files.check_socket_path()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # left by a worker that was killed; the client checked it is dead
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # born 0600: no window in which others could connect
        try:
            await sock.bind(str(path))
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        sock.listen(8)
        return trio.SocketListener(sock)

    async def _serve_control(self, listener: trio.SocketListener) -> None:
        async with listener, trio.open_nursery() as clients:
            while True:
                stream = await listener.accept()
                clients.start_soon(self._handle_client, stream)

    def _peer_allowed(self, stream: trio.SocketStream) -> bool:
        try:
            raw = stream.socket.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        except OSError:
            return False
        _pid, uid, _gid = struct.unpack("3i", raw)
        return uid in (os.getuid(), 0)

    async def _handle_client(self, stream: trio.SocketStream) -> None:
        """Answer one request (one JSON line) and close the connection."""
        try:
            async with stream:
                if not self._peer_allowed(stream):
                    return
                buf = b""
                with trio.move_on_after(proto.DEFAULT_TIMEOUT):
                    while b"\n" not in buf and len(buf) <= proto.MAX_LINE:
                        chunk = await stream.receive_some(4096)
                        if not chunk:
                            break
                        buf += chunk
                if b"\n" not in buf:
                    return
                line = buf.split(b"\n", 1)[0]
                # Shielded: an unmount ends the filesystem, which cancels this nursery, and
                # the client must still get its answer.
                with trio.CancelScope(shield=True) as scope:
                    scope.deadline = trio.current_time() + REPLY_DEADLINE
                    reply = await self._dispatch(line)
                    await stream.send_all(proto.encode_message(reply))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as e:
            log.debug("control client went away: %s", e)

    async def _dispatch(self, line: bytes) -> dict[str, Any]:
        try:
            request = proto.decode_message(line)
        except VaultError as e:
            return proto.error_from_exception(e)
        op = request.get("op")
        if op == proto.OP_STATUS:
            stats: dict[str, Any] = self.stats.as_dict()
            stats["idle_for"] = max(0.0, time.monotonic() - self.stats.last_use)
            return proto.ok_reply(**_entry_fields(self.entry), stats=stats)
        if op == proto.OP_UNMOUNT:
            ok, detail = await self.unmount()
            if ok:
                return proto.ok_reply()
            return proto.error_reply(detail, ExitCode.MOUNT_POINT, MountPointError.__name__)
        return proto.error_reply(f"unknown control operation {op!r}", ExitCode.USAGE, UsageError.__name__)

    async def unmount(self) -> tuple[bool, str]:
        """Unmount without forcing: a busy mount stays (as `fusermount3 -u` refuses it)."""
        async with self._unmount_lock:
            if self.unmounted:
                return True, ""
            result = await trio.run_process(
                [FUSERMOUNT, "-u", str(self.cfg.mountpoint)],
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
            if result.returncode != 0:
                text = result.stderr.decode(errors="replace").strip().splitlines()
                detail = text[-1] if text else f"{FUSERMOUNT} exited with {result.returncode}"
                log.warning("unmount refused: %s", detail)
                return False, f"{self.cfg.mountpoint}: cannot unmount: {detail}"
            self.unmounted = True
            # The kernel ends the session on unmount; terminate too in case it raced ahead.
            pyfuse3.terminate()
            return True, ""

    async def _watch_idle(self, idle: float) -> None:
        """Unmount after `idle` seconds without a request and with no file open (gocryptfs -idle)."""
        interval = min(max(idle / 10, 0.05), 1.0)
        while True:
            await trio.sleep(interval)
            quiet_for = time.monotonic() - self.stats.last_use
            if self.stats.open_files == 0 and quiet_for > idle:
                log.info("idle for %.1fs: unmounting %s", quiet_for, self.cfg.mountpoint)
                ok, _detail = await self.unmount()
                if ok:
                    return
                await trio.sleep(max(interval, 1.0))  # busy: try again later


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

_stop_requested = False


def _early_stop(signum: int, frame: FrameType | None) -> None:
    """A stop signal before the trio loop runs: remember it, unmount as soon as serving starts."""
    global _stop_requested
    _stop_requested = True


def _setup_logging(foreground: bool) -> None:
    from vaultsh.vault.display import SafeLogFormatter

    handler = logging.StreamHandler(sys.stderr)
    # Log lines carry decrypted names and paths: shown escaped, never raw on a terminal.
    line = "%(asctime)s vaultsh-worker[%(process)d] %(levelname)s: %(message)s"
    handler.setFormatter(SafeLogFormatter(line))
    logging.basicConfig(handlers=[handler], level=logging.INFO if foreground else logging.WARNING)


def run(cfg: WorkerConfig) -> int:
    """Mount, serve until unmounted or signalled, clean up; returns the process exit code."""
    report = StartReport(cfg.status_fd)
    for sig in STOP_SIGNALS:
        signal.signal(sig, _early_stop)
    os.chdir("/")  # do not keep the caller's directory busy
    stats = MountStats()
    # Named before mounting: once mounted, the mountpoint must not be touched until we serve.
    files = MountFiles.for_mountpoint(cfg.mountpoint, cfg.runtime_dir)
    mounted = False
    ops: Any = None
    try:
        key = read_master_key(cfg.key_fd)
        ops, options = build_operations(cfg, key, stats)
        del key
        try:
            pyfuse3.init(ops, str(cfg.mountpoint), options)
        except RuntimeError as e:
            raise FuseError(f"{cfg.mountpoint}: FUSE mount failed: {e}") from None
        mounted = True
        entry = RegistryEntry(
            source=str(cfg.source),
            mountpoint=str(cfg.mountpoint),
            mode=cfg.mode,
            ro=cfg.read_only or cfg.reverse,
            pid=os.getpid(),
            started=time.time(),
        )
        entry.write(files.registry)
        worker = Worker(cfg, stats, report, entry, files)
        trio.run(worker.run)
        return ExitCode.OK
    except VaultError as e:
        log.error("%s", e)
        report.error(e)
        return int(e.exit_code)
    except BaseException as e:  # a worker must always report and clean up
        log.exception("mount worker failed")
        report.error(VaultError(f"{cfg.mountpoint}: mount worker failed: {_one_line(e)}"))
        return int(ExitCode.OTHER)
    finally:
        if mounted:
            try:
                pyfuse3.close(unmount=True)
            except Exception:  # still remove the files below
                log.exception("closing the FUSE session failed")
        close_handles(ops)
        if mounted:
            # A background worker logs warnings and errors only: an empty log says nothing,
            # and one per mountpoint ever used would pile up in the runtime dir.
            files.remove(keep_log=_has_content(files.log))
        if not report.sent:
            report.error(VaultError(f"{cfg.mountpoint}: mount worker stopped before it was ready"))


def _has_content(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def close_handles(ops: Any) -> None:
    """Close files the kernel never released (forward: `close`, reverse: `close_all`)."""
    for name in ("close", "close_all"):
        close = getattr(ops, name, None)
        if callable(close):
            try:
                close()
            except Exception:  # the mount is gone either way; the log says what failed
                log.exception("closing the filesystem's open files failed")
            return


def _one_line(e: BaseException) -> str:
    if isinstance(e, BaseExceptionGroup) and e.exceptions:
        return _one_line(e.exceptions[0])
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    _setup_logging(cfg.foreground)
    return run(cfg)


if __name__ == "__main__":
    sys.exit(main())
