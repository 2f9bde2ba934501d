"""Wire format shared by the mount worker and its clients: runtime dir, registry files, socket messages."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vaultsh.vault.errors import ExitCode, VaultError

APP_DIR_NAME = "vaultsh"
# Unix socket paths are limited by sockaddr_un.sun_path (108 bytes with the trailing NUL).
MAX_SOCKET_PATH = 107
# How long a client waits for a worker's answer on the control socket.
DEFAULT_TIMEOUT = 5.0
# Upper bound of one JSON line; a status answer is a few hundred bytes.
MAX_LINE = 64 * 1024

# The module run as `python -m` for each mount; also how a live worker's pid is recognised.
WORKER_MODULE = "vaultsh.fs.worker"

OP_STATUS = "status"
OP_UNMOUNT = "unmount"
OPERATIONS = frozenset({OP_STATUS, OP_UNMOUNT})

MODE_FORWARD = "forward"
MODE_REVERSE = "reverse"

# What follows a worker's settings on its start pipe: the master key, or the password, which
# the worker asks for once it has read the vault's config and unwraps the key with itself.
SECRET_MASTER_KEY = "master_key"
SECRET_PASSWORD = "password"
SECRETS = frozenset({SECRET_MASTER_KEY, SECRET_PASSWORD})


class ProtocolError(VaultError):
    """The runtime dir is unsafe, or a worker's control socket misbehaves or cannot be reached.

    The exit code is gocryptfs's for control-socket failures (20).
    """

    exit_code = ExitCode.CTL_SOCK


# -- paths --------------------------------------------------------------------------------


def runtime_dir(*, create: bool = True) -> Path:
    """The per-user directory holding sockets, registry files and logs of running mounts.

    `$XDG_RUNTIME_DIR/vaultsh`, else `/run/user/<uid>/vaultsh` when that user dir exists, else
    `/tmp/vaultsh-<uid>`. It is created 0700 and refused when someone else owns it or it is
    not a plain directory (a symlink planted in /tmp, say).
    """
    uid = os.getuid()
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    user_run = Path(f"/run/user/{uid}")
    if xdg:
        path = Path(xdg) / APP_DIR_NAME
    elif user_run.is_dir():
        path = user_run / APP_DIR_NAME
    else:
        path = Path(f"/tmp/{APP_DIR_NAME}-{uid}")
    if create:
        try:
            path.mkdir(mode=0o700, parents=False, exist_ok=True)
        except FileNotFoundError:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            path.mkdir(mode=0o700, exist_ok=True)
        except OSError as e:
            raise ProtocolError(f"{path}: cannot create runtime dir: {e.strerror}") from None
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        if create:
            raise ProtocolError(f"{path}: runtime dir vanished") from None
        return path
    # Sockets, registry files and logs of mounts live here, and a stop request trusts the pid
    # in a registry file: a directory others made or may write is reported, with the fix.
    elsewhere = "or set XDG_RUNTIME_DIR to a directory of your own"
    if not stat.S_ISDIR(st.st_mode):
        what = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"
        raise ProtocolError(f"{path}: runtime dir is {what}; remove it (rm {path}) {elsewhere}")
    if st.st_uid != uid:
        raise ProtocolError(
            f"{path}: runtime dir is owned by uid {st.st_uid}, not {uid}; "
            f"have it removed (rm -r {path}) {elsewhere}"
        )
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o022:
        raise ProtocolError(
            f"{path}: runtime dir has mode {mode:04o}, so others may have put files in it; "
            f"check them and run chmod 700 {path} {elsewhere}"
        )
    if mode & 0o077:
        os.chmod(path, 0o700)  # only readable by others: nothing to distrust, just tighten
    return path


def _unescape_mountinfo(field_bytes: bytes) -> str:
    # The kernel escapes space, tab, newline and backslash as \ooo in /proc/*/mountinfo.
    raw = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), field_bytes)
    return os.fsdecode(raw)


def _mountinfo() -> list[list[bytes]]:
    """The fields of each line of /proc/self/mountinfo; none if it cannot be read."""
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            return [line.split(b" ") for line in f.read().splitlines()]
    except OSError:
        return []


def mount_table() -> set[str]:
    """Mount points the kernel knows, read without touching them (a dead FUSE mount hangs stat)."""
    points = set()
    for parts in _mountinfo():
        if len(parts) > 4:
            points.add(_unescape_mountinfo(parts[4]))
    return points


def mount_device(mountpoint: str | os.PathLike[str]) -> str | None:
    """The "major:minor" of the mount at `mountpoint` from mountinfo (no stat of the mount)."""
    want = os.fsencode(os.path.abspath(mountpoint))
    found = None
    for parts in _mountinfo():
        if len(parts) > 4 and os.fsencode(_unescape_mountinfo(parts[4])) == want:
            found = parts[2].decode()  # the last match is the one on top
    return found


def fuse_mounts_of(source: str | os.PathLike[str]) -> list[tuple[str, int]]:
    """(mountpoint, st_dev) of every FUSE mount whose source is the directory `source`.

    gocryptfs and vaultsh both name a mount after its cipher dir (fsname); the source is
    compared by device and inode, so a symlinked or relative spelling still matches. The
    mountpoints themselves are never touched (a dead one hangs).
    """
    try:
        want = os.stat(source)
    except OSError:
        return []
    found = []
    for fields in _mountinfo():
        try:
            sep = fields.index(b"-")
            fstype, src = fields[sep + 1], _unescape_mountinfo(fields[sep + 2])
            major, minor = (int(n) for n in fields[2].split(b":"))
        except (ValueError, IndexError):
            continue
        if not fstype.startswith(b"fuse") or not src.startswith("/"):
            continue
        try:
            st = os.stat(src)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (want.st_dev, want.st_ino):
            found.append((_unescape_mountinfo(fields[4]), os.makedev(major, minor)))
    return found


def canonical_path(path: str | os.PathLike[str]) -> Path:
    """Absolute path with symlinks resolved, without ever stat-ing a mount point itself.

    A FUSE mount's root is answered by its worker: stat-ing it would wait for a worker that is
    not serving yet (deadlock at start), count as use for --idle, or fail with ENOTCONN when
    the worker died. So a path the kernel lists as a mount point is kept as it is.
    """
    p = Path(os.path.abspath(path))
    candidate = Path(os.path.realpath(p.parent)) / p.name if p.name else p
    if str(candidate) in mount_table():
        return candidate
    try:
        return Path(os.path.realpath(candidate, strict=True))
    except OSError:
        return candidate


def mount_id(mountpoint: str | os.PathLike[str]) -> str:
    """Short stable name of a mountpoint for its files in the runtime dir."""
    raw = os.fsencode(str(canonical_path(mountpoint)))
    return _sha256_hex(raw)[:16]


def _sha256_hex(data: bytes) -> str:
    """SHA-256 of `data` from CPython's own module (named _sha2 since Python 3.12): hashlib
    would load OpenSSL's libcrypto first, milliseconds of `vaultsh mount`'s start-up for one
    short hash. Same digest either way."""
    for name in ("_sha2", "_sha256"):
        with contextlib.suppress(ImportError):
            return str(importlib.import_module(name).sha256(data).hexdigest())
    import hashlib

    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class MountFiles:
    """Where one mount's registry entry, control socket and log live."""

    registry: Path
    socket: Path
    log: Path

    @classmethod
    def for_mountpoint(cls, mountpoint: str | os.PathLike[str], rundir: Path | None = None) -> MountFiles:
        base = (rundir if rundir is not None else runtime_dir()) / mount_id(mountpoint)
        return cls.for_base(base)

    @classmethod
    def for_base(cls, base: Path) -> MountFiles:
        return cls(
            registry=base.with_name(base.name + ".json"),
            socket=base.with_name(base.name + ".sock"),
            log=base.with_name(base.name + ".log"),
        )

    def check_socket_path(self) -> None:
        if len(os.fsencode(str(self.socket))) > MAX_SOCKET_PATH:
            raise ProtocolError(
                f"{self.socket}: control socket path too long for a unix socket; "
                "set XDG_RUNTIME_DIR to a shorter directory"
            )

    def remove(self, *, keep_log: bool = True) -> None:
        """Remove the registry entry and socket (and the log unless kept); missing ones are fine."""
        paths = [self.registry, self.socket] + ([] if keep_log else [self.log])
        for p in paths:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


# -- registry -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryEntry:
    """What a worker records about its mount, so clients can list it even after it was killed."""

    source: str
    mountpoint: str
    mode: str  # MODE_FORWARD or MODE_REVERSE
    ro: bool
    pid: int
    started: float  # unix time

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RegistryEntry:
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise TypeError("not an object")
            entry = cls(
                source=str(data["source"]),
                mountpoint=str(data["mountpoint"]),
                mode=str(data["mode"]),
                ro=bool(data["ro"]),
                pid=int(data["pid"]),
                started=float(data["started"]),
            )
        except (ValueError, TypeError, KeyError) as e:
            raise ProtocolError(f"malformed registry entry: {e}") from None
        if entry.mode not in (MODE_FORWARD, MODE_REVERSE):
            raise ProtocolError(f"malformed registry entry: unknown mode {entry.mode!r}")
        return entry

    def write(self, path: Path) -> None:
        """Write atomically (temp file, rename) so a reader never sees half an entry."""
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self.to_json() + "\n")
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise

    @classmethod
    def read(cls, path: Path) -> RegistryEntry:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ProtocolError(f"{path}: cannot read registry entry: {e.strerror}") from None
        return cls.from_json(text)


def registry_paths(rundir: Path | None = None) -> list[Path]:
    """Every registry file in the runtime dir, sorted by name."""
    d = rundir if rundir is not None else runtime_dir()
    try:
        return sorted(p for p in d.iterdir() if p.suffix == ".json" and not p.name.startswith("."))
    except FileNotFoundError:
        return []


def process_alive(pid: int) -> bool:
    """True while `pid` runs as a mount worker (not gone, not a zombie, not a reused pid)."""
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat_line = f.read()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return False
    # The state letter follows the parenthesised command name, which may itself hold ')'.
    state = stat_line[stat_line.rfind(b")") + 2 : stat_line.rfind(b")") + 3]
    if state in (b"Z", b"X"):
        return False
    return WORKER_MODULE.encode() in cmdline


# -- messages -----------------------------------------------------------------------------


def encode_message(message: dict[str, Any]) -> bytes:
    """One JSON object on one line, UTF-8."""
    return json.dumps(message, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def decode_message(line: bytes) -> dict[str, Any]:
    """The JSON object of one line; anything else is a ProtocolError."""
    if len(line) > MAX_LINE:
        raise ProtocolError("control message too long")
    try:
        data = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ProtocolError(f"malformed control message: {e}") from None
    if not isinstance(data, dict):
        raise ProtocolError("malformed control message: not a JSON object")
    return data


def request_message(op: str) -> dict[str, Any]:
    if op not in OPERATIONS:
        raise ProtocolError(f"unknown control operation {op!r}")
    return {"op": op}


def ok_reply(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **fields}


def error_reply(message: str, exit_code: int, kind: str = "VaultError") -> dict[str, Any]:
    return {"ok": False, "error": message, "exit_code": int(exit_code), "kind": kind}


def error_from_exception(exc: BaseException) -> dict[str, Any]:
    """The error reply for an exception: its one-line text, class name and gocryptfs exit code."""
    code = exc.exit_code if isinstance(exc, VaultError) else ExitCode.OTHER
    text = " ".join(str(exc).split()) or type(exc).__name__
    return error_reply(text, code, type(exc).__name__)


def password_wanted_message() -> dict[str, Any]:
    """What a worker reports on its start pipe once the vault's config is read: send the password."""
    return ok_reply(want=SECRET_PASSWORD)


def ready_message(pid: int) -> dict[str, Any]:
    """What a worker reports on its start pipe once its filesystem answers requests."""
    return ok_reply(ready=True, pid=pid)


def send_request(sock_path: Path, op: str, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """Send one request over a worker's control socket and return its reply object."""
    import socket  # here: `vaultsh mount` needs it only once its worker is starting

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(sock_path))
            s.sendall(encode_message(request_message(op)))
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
                if len(buf) > MAX_LINE:
                    raise ProtocolError(f"{sock_path}: control reply too long")
    except TimeoutError:
        raise ProtocolError(f"{sock_path}: no answer from mount worker within {timeout:g}s") from None
    except OSError as e:
        raise ProtocolError(f"{sock_path}: cannot reach mount worker: {e.strerror or e}") from None
    if not buf:
        raise ProtocolError(f"{sock_path}: mount worker closed the connection without answering")
    return decode_message(buf)
