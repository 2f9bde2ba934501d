"""Mount service: durations, control protocol, runtime dir, pre-checks, and real worker lifecycles."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fuse_harness import require_fuse
from gocryptfs_harness import skip_or_fail
from vault_factory import NewVault

from vaultsh import mount_protocol as proto
from vaultsh.mount_protocol import MountFiles, ProtocolError, RegistryEntry
from vaultsh.service import mounts, worker_start
from vaultsh.service.mounts import MountRequest
from vaultsh.vault.errors import (
    CipherDirError,
    ExcludeError,
    ExitCode,
    FuseError,
    MasterKeyError,
    MountPointError,
    PasswordIncorrectError,
    ReadPasswordError,
    UsageError,
    VaultError,
)
from vaultsh.vault.keys import FormatOptions
from vaultsh.vault.vault import Vault

PASSWORD = b"pw"
WAIT = 30.0  # upper bound for polls; they normally end within a fraction of a second


def wait_for(cond: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


# -- durations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("2h30m", 9000.0),
        ("1h30m10s", 5410.0),
        ("30", 30.0),
        ("0", 0.0),
        ("2.5", 2.5),
        ("1.5h", 5400.0),
        ("250ms", 0.25),
        ("1d", 86400.0),
        (" 10S ", 10.0),
    ],
)
def test_parse_duration_accepts(text: str, seconds: float) -> None:
    assert mounts.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "  ", "5x", "-5m", "m", "5m5", "h1", "1h 30m", "abc", "1e3", "5 m"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(UsageError) as info:
        mounts.parse_duration(text)
    assert info.value.exit_code == ExitCode.USAGE
    assert "\n" not in str(info.value)


# -- protocol -----------------------------------------------------------------------------


def test_messages_round_trip_as_one_json_line() -> None:
    message = {"op": "status", "n": 3, "name": "ä b"}
    line = proto.encode_message(message)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert proto.decode_message(line) == message
    assert proto.decode_message(proto.encode_message(proto.request_message(proto.OP_UNMOUNT))) == {
        "op": "unmount"
    }


@pytest.mark.parametrize(
    "line", [b"not json\n", b"[1, 2]\n", b"\xff\xfe\n", b"{" + b" " * proto.MAX_LINE + b"}"]
)
def test_decode_rejects_malformed_lines(line: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        proto.decode_message(line)
    assert info.value.exit_code == ExitCode.CTL_SOCK


def test_request_message_knows_only_status_and_unmount() -> None:
    with pytest.raises(ProtocolError):
        proto.request_message("format-disk")


def test_error_reply_carries_class_and_exit_code() -> None:
    reply = proto.error_from_exception(PasswordIncorrectError("bad\npassword"))
    assert reply == {
        "ok": False,
        "error": "bad password",
        "exit_code": ExitCode.PASSWORD_INCORRECT,
        "kind": "PasswordIncorrectError",
    }
    err = mounts._error_from_reply(reply, "/mnt")
    assert type(err) is PasswordIncorrectError
    assert err.exit_code == ExitCode.PASSWORD_INCORRECT
    unknown = mounts._error_from_reply({"ok": False, "error": "x", "exit_code": 19, "kind": "Nope"}, "/m")
    assert type(unknown) is VaultError and unknown.exit_code == ExitCode.FUSE_NEW_SERVER


def test_registry_entry_round_trips_and_rejects_garbage(tmp_path: Path) -> None:
    entry = RegistryEntry("/c", "/m", proto.MODE_FORWARD, False, 1234, 1700000000.5)
    path = tmp_path / "x.json"
    entry.write(path)
    assert RegistryEntry.read(path) == entry
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    assert json.loads(path.read_text())["pid"] == 1234
    for bad in ["{}", "[]", "nope", json.dumps({**json.loads(entry.to_json()), "mode": "sideways"})]:
        with pytest.raises(ProtocolError):
            RegistryEntry.from_json(bad)


def test_mount_files_are_per_mountpoint_and_stable(tmp_path: Path) -> None:
    a = MountFiles.for_mountpoint(tmp_path / "a", tmp_path)
    assert a == MountFiles.for_mountpoint(tmp_path / "x" / ".." / "a", tmp_path)
    assert a != MountFiles.for_mountpoint(tmp_path / "b", tmp_path)
    assert {a.registry.suffix, a.socket.suffix, a.log.suffix} == {".json", ".sock", ".log"}


def test_mount_id_is_the_sha256_prefix_of_the_canonical_mountpoint(tmp_path: Path) -> None:
    # The files of mounts made by earlier versions (or by another interpreter) stay findable.
    import hashlib

    mnt = tmp_path / "m\u00e9"
    mnt.mkdir()
    expected = hashlib.sha256(os.fsencode(str(mnt.resolve()))).hexdigest()[:16]
    assert proto.mount_id(mnt) == proto.mount_id(tmp_path / "." / "m\u00e9") == expected


def test_overlong_socket_path_is_refused(tmp_path: Path) -> None:
    files = MountFiles.for_base(tmp_path / ("d" * 120) / "x")
    with pytest.raises(ProtocolError, match="too long"):
        files.check_socket_path()


def test_mountinfo_escapes_are_decoded() -> None:
    assert proto._unescape_mountinfo(rb"/mnt/a\040b\011c\134d") == "/mnt/a b\tc\\d"
    assert "/" in mounts.mount_table()


def test_process_alive_only_for_live_workers() -> None:
    assert not proto.process_alive(os.getpid())  # alive but not a worker
    assert not proto.process_alive(0)
    child = subprocess.Popen([sys.executable, "-c", "pass", proto.WORKER_MODULE])
    wait_for(lambda: Path(f"/proc/{child.pid}/stat").read_text().split(")")[-1].split()[0] == "Z", "zombie")
    assert not proto.process_alive(child.pid)  # a zombie is gone for our purposes
    child.wait()
    assert not proto.process_alive(child.pid)


# -- runtime dir --------------------------------------------------------------------------


def test_runtime_dir_is_created_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    d = proto.runtime_dir()
    assert d == tmp_path / "vaultsh"
    assert d.stat().st_mode & 0o777 == 0o700
    d.chmod(0o755)
    assert proto.runtime_dir() == d
    assert d.stat().st_mode & 0o777 == 0o700  # loosened permissions are tightened again


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o1733])
def test_runtime_dir_others_may_write_is_reported_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int
) -> None:
    """Others may have planted registry files or sockets: not silently adopted."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    d = tmp_path / "vaultsh"
    d.mkdir()
    d.chmod(mode)
    with pytest.raises(ProtocolError) as info:
        proto.runtime_dir()
    message = str(info.value)
    assert "\n" not in message and str(d) in message and f"chmod 700 {d}" in message
    assert f"{mode:04o}" in message and "XDG_RUNTIME_DIR" in message
    assert stat.S_IMODE(d.stat().st_mode) == mode  # reported, not changed


def test_runtime_dir_of_someone_else_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if os.getuid() != 0:
        skip_or_fail("needs root to give the directory away")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    (tmp_path / "vaultsh").mkdir(mode=0o700)
    os.chown(tmp_path / "vaultsh", 4242, 4242)
    with pytest.raises(ProtocolError, match="owned by uid 4242") as info:
        proto.runtime_dir()
    assert f"rm -r {tmp_path / 'vaultsh'}" in str(info.value) and "XDG_RUNTIME_DIR" in str(info.value)


def test_runtime_dir_symlink_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "vaultsh").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ProtocolError, match="is a symlink; remove it"):
        proto.runtime_dir()


def test_runtime_dir_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    uid = os.getuid()
    expected = (
        Path(f"/run/user/{uid}/vaultsh") if Path(f"/run/user/{uid}").is_dir() else Path(f"/tmp/vaultsh-{uid}")
    )
    assert proto.runtime_dir(create=False) == expected


# -- pre-checks (no worker is started) ----------------------------------------------------


@pytest.fixture
def rundir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private runtime dir with a short path (unix socket paths are limited to 107 bytes).

    On teardown every worker registered there is killed and its mount detached, so a failing
    test leaves nothing behind.
    """
    base = Path(tempfile.mkdtemp(prefix="vsh-"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(base))
    try:
        yield base / "vaultsh"
    finally:
        for reg in proto.registry_paths(base / "vaultsh") if (base / "vaultsh").is_dir() else []:
            with contextlib.suppress(ProtocolError):
                entry = RegistryEntry.read(reg)
                if proto.process_alive(entry.pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(entry.pid, signal.SIGKILL)
                if mounts.mounted_at(entry.mountpoint):
                    subprocess.run(
                        ["fusermount3", "-u", "-z", entry.mountpoint], check=False, capture_output=True
                    )
        for pid, proc in list(mounts._children.items()):
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            mounts._children.pop(pid, None)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def no_fuse_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let pre-checks run on machines without FUSE: they fail before FUSE is touched."""
    monkeypatch.setattr(mounts, "check_fuse", lambda: None)


def _dirs(tmp_path: Path) -> tuple[Path, Path]:
    src, mp = tmp_path / "cipher", tmp_path / "mnt"
    src.mkdir()
    mp.mkdir()
    return src, mp


KEY = bytes(range(32))


@pytest.mark.usefixtures("rundir", "no_fuse_check")
class TestPreChecks:
    def test_non_empty_mountpoint(self, tmp_path: Path) -> None:
        src, mp = _dirs(tmp_path)
        (mp / "file").write_text("x")
        with pytest.raises(MountPointError, match="not empty") as info:
            mounts.mount(MountRequest(src, mp), KEY)
        assert int(info.value.exit_code) == 10  # gocryptfs MOUNT_POINT

    def test_missing_mountpoint(self, tmp_path: Path) -> None:
        src, _mp = _dirs(tmp_path)
        with pytest.raises(MountPointError, match="does not exist") as info:
            mounts.mount(MountRequest(src, tmp_path / "nope"), KEY)
        assert info.value.exit_code == 10

    def test_mountpoint_not_a_directory(self, tmp_path: Path) -> None:
        src, _mp = _dirs(tmp_path)
        (tmp_path / "f").write_text("x")
        with pytest.raises(MountPointError, match="not a directory") as info:
            mounts.mount(MountRequest(src, tmp_path / "f"), KEY)
        assert info.value.exit_code == 10

    def test_mountpoint_already_a_mount(self, tmp_path: Path) -> None:
        src, _mp = _dirs(tmp_path)
        with pytest.raises(MountPointError, match="already a mount point") as info:
            mounts.mount(MountRequest(src, Path("/proc")), KEY)
        assert info.value.exit_code == 10

    def test_mountpoint_inside_source(self, tmp_path: Path) -> None:
        src, _mp = _dirs(tmp_path)
        (src / "inner").mkdir()
        with pytest.raises(MountPointError, match="inside") as info:
            mounts.mount(MountRequest(src, src / "inner"), KEY)
        assert info.value.exit_code == 10

    def test_missing_source(self, tmp_path: Path) -> None:
        _src, mp = _dirs(tmp_path)
        with pytest.raises(CipherDirError, match="does not exist") as info:
            mounts.mount(MountRequest(tmp_path / "gone", mp), KEY)
        assert int(info.value.exit_code) == 6  # gocryptfs CIPHER_DIR

    def test_source_not_a_directory(self, tmp_path: Path) -> None:
        _src, mp = _dirs(tmp_path)
        (tmp_path / "f").write_text("x")
        with pytest.raises(CipherDirError, match="not a directory") as info:
            mounts.mount(MountRequest(tmp_path / "f", mp), KEY)
        assert info.value.exit_code == 6

    def test_excludes_need_reverse_mode(self, tmp_path: Path) -> None:
        src, mp = _dirs(tmp_path)
        with pytest.raises(UsageError) as info:
            mounts.mount(MountRequest(src, mp, excludes=("*.tmp",)), KEY)
        assert info.value.exit_code == 1

    def test_missing_exclude_file(self, tmp_path: Path) -> None:
        src, mp = _dirs(tmp_path)
        req = MountRequest(src, mp, reverse=True, exclude_from=(tmp_path / "no-such-list",))
        with pytest.raises(ExcludeError) as info:
            mounts.mount(req, KEY)
        assert info.value.exit_code == ExitCode.EXCLUDE_ERROR

    def test_negative_idle(self, tmp_path: Path) -> None:
        src, mp = _dirs(tmp_path)
        with pytest.raises(UsageError):
            mounts.mount(MountRequest(src, mp, idle=-1.0), KEY)

    def test_nothing_is_left_in_the_runtime_dir(self, tmp_path: Path, rundir: Path) -> None:
        src, mp = _dirs(tmp_path)
        (mp / "file").write_text("x")
        with pytest.raises(MountPointError):
            mounts.mount(MountRequest(src, mp), KEY)
        assert mounts.list_mounts() == []
        assert not any(p.suffix in (".json", ".sock") for p in rundir.iterdir())


def test_exclude_files_are_read_line_by_line(tmp_path: Path) -> None:
    one, two = tmp_path / "ex1", tmp_path / "ex2"
    one.write_text("# build output\n*.o\n/secret\n")
    two.write_text("!keep.o")
    assert mounts.read_exclude_files((one, two)) == ["# build output", "*.o", "/secret", "", "!keep.o"]


@pytest.mark.usefixtures("rundir")
def test_missing_fuse_pieces_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src, mp = _dirs(tmp_path)
    monkeypatch.setattr(mounts, "FUSE_DEVICE", str(tmp_path / "no-fuse-device"))
    with pytest.raises(FuseError, match="no-fuse-device") as info:
        mounts.mount(MountRequest(src, mp), KEY)
    assert int(info.value.exit_code) == 19  # gocryptfs FUSE_NEW_SERVER
    monkeypatch.setattr(mounts, "FUSE_DEVICE", os.devnull)
    monkeypatch.setattr(mounts, "FUSERMOUNT", "fusermount3-not-installed")
    with pytest.raises(FuseError, match="fusermount3-not-installed"):
        mounts.mount(MountRequest(src, mp), KEY)


@pytest.mark.usefixtures("rundir")
def test_unknown_mountpoints_are_errors(tmp_path: Path) -> None:
    with pytest.raises(MountPointError, match="not mounted") as info:
        mounts.unmount(tmp_path)
    assert info.value.exit_code == 10
    with pytest.raises(MountPointError, match="not a vaultsh mount"):
        mounts.unmount(Path("/proc"))
    with pytest.raises(MountPointError, match="not a vaultsh mount"):
        mounts.status(tmp_path)
    assert mounts.find_mount(tmp_path) is None


def test_dead_worker_entry_is_listed_stale_and_cleared(tmp_path: Path, rundir: Path) -> None:
    """A registry entry whose worker is gone (and whose mount is gone too) lists as stale."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    mp = tmp_path / "mnt"
    mp.mkdir()
    files = MountFiles.for_mountpoint(mp, proto.runtime_dir())
    entry = RegistryEntry(str(tmp_path), str(mp), proto.MODE_FORWARD, False, dead.pid, time.time())
    entry.write(files.registry)
    [info] = mounts.list_mounts()
    assert (info.alive, info.pid, info.stats, info.mountpoint) == (False, dead.pid, {}, str(mp))
    assert mounts.find_mount(tmp_path) == info  # found by its source too
    assert mounts.status(mp).alive is False
    mounts.unmount(mp)
    assert mounts.list_mounts() == []
    assert not files.registry.exists()


# -- real mounts --------------------------------------------------------------------------


@pytest.fixture
def fuse(rundir: Path) -> Path:
    require_fuse()
    return rundir


@pytest.fixture
def vault(tmp_path: Path, new_vault: NewVault) -> tuple[Path, bytes]:
    """A fresh forward vault: (cipher dir, master key)."""
    with new_vault(tmp_path / "cipher", PASSWORD) as made:
        return made.cipherdir, made.keys.master_key


@pytest.fixture
def mnt(tmp_path: Path) -> Iterator[Path]:
    mp = tmp_path / "mnt"
    mp.mkdir()
    try:
        yield mp
    finally:
        if mounts.mounted_at(mp):
            subprocess.run(["fusermount3", "-u", "-z", str(mp)], check=False, capture_output=True)


def _mount_options(mountpoint: Path) -> set[str]:
    """Per-mount and superblock options of the mount at `mountpoint`, from /proc/self/mountinfo."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split(" ")
        if fields[4] == str(mountpoint):
            sep = fields.index("-")
            return set(fields[5].split(",")) | set(fields[sep + 3].split(","))
    raise AssertionError(f"{mountpoint} is not mounted")


def _worker_reaped(pid: int) -> bool:
    return pid not in mounts._children and not proto.process_alive(pid)


def assert_nothing_left(mnt: Path) -> None:
    """A refused mount leaves no mount, no registry entry and no worker process."""
    assert not mounts.mounted_at(mnt)
    assert mounts.list_mounts() == []
    assert mounts._children == {}


@pytest.mark.usefixtures("fuse")
def test_short_master_key_is_refused_by_the_worker(vault: tuple[Path, bytes], mnt: Path) -> None:
    cipher, key = vault
    with pytest.raises(MasterKeyError) as info:
        mounts.mount(MountRequest(cipher, mnt), key[:31])
    assert int(info.value.exit_code) == 14  # gocryptfs MASTER_KEY
    assert key[:31].hex() not in str(info.value)
    assert_nothing_left(mnt)


@pytest.mark.usefixtures("fuse")
def test_key_is_asked_for_while_the_worker_starts(vault: tuple[Path, bytes], mnt: Path) -> None:
    cipher, key = vault
    asked: list[set[int]] = []

    def unlock() -> bytes:
        asked.append(set(mounts._children))  # the worker is already running
        return key

    info = mounts.mount(MountRequest(cipher, mnt), unlock)
    try:
        assert asked == [{info.pid}]
        assert mounts.mounted_at(mnt)
    finally:
        mounts.unmount(mnt)


@pytest.mark.usefixtures("fuse")
def test_failed_unlock_stops_the_started_worker(vault: tuple[Path, bytes], mnt: Path) -> None:
    cipher, _key = vault

    def unlock() -> bytes:
        raise MasterKeyError("Password incorrect.")

    with pytest.raises(MasterKeyError, match="Password incorrect"):
        mounts.mount(MountRequest(cipher, mnt), unlock)
    assert_nothing_left(mnt)


class _AskedPassword:
    """A password source that records whether, and when, it was asked."""

    def __init__(self, password: bytes) -> None:
        self.password = password
        self.asked_with_children: list[set[int]] = []

    def __call__(self) -> bytes:
        self.asked_with_children.append(set(mounts._children))
        return self.password


def _nothing_left(mnt: Path, rundir: Path) -> None:
    assert not mounts.mounted_at(mnt)
    assert mounts.list_mounts() == []
    assert mounts._children == {}
    assert list(rundir.iterdir()) == []  # no registry entry, socket or log either


@pytest.mark.usefixtures("fuse")
@pytest.mark.parametrize("at_once", [False, True])
def test_password_is_handed_to_the_worker_which_unlocks_and_mounts(
    vault: tuple[Path, bytes], mnt: Path, rundir: Path, at_once: bool
) -> None:
    cipher, _key = vault
    Vault.open(cipher, password=PASSWORD).write_file("a.txt", b"through the worker's own unlock")
    asked = _AskedPassword(PASSWORD)
    info = mounts.mount(MountRequest(cipher, mnt), mounts.Password(asked, at_once=at_once))
    try:
        assert asked.asked_with_children == [{info.pid}]  # once, with the worker running
        assert (mnt / "a.txt").read_bytes() == b"through the worker's own unlock"
        log = MountFiles.for_mountpoint(mnt, rundir).log
        assert not log.exists() or PASSWORD not in log.read_bytes()
    finally:
        mounts.unmount(mnt)
    _nothing_left(mnt, rundir)


@pytest.mark.usefixtures("fuse")
@pytest.mark.parametrize("at_once", [False, True])
def test_wrong_password_is_reported_by_the_worker_with_gocryptfs_code(
    vault: tuple[Path, bytes], mnt: Path, rundir: Path, at_once: bool
) -> None:
    cipher, _key = vault
    wrong = mounts.Password(lambda: b"not the password", at_once=at_once)
    with pytest.raises(PasswordIncorrectError) as info:
        mounts.mount(MountRequest(cipher, mnt), wrong)
    assert str(info.value) == "Password incorrect."
    assert int(info.value.exit_code) == 12  # gocryptfs PASSWORD_INCORRECT
    _nothing_left(mnt, rundir)


@pytest.mark.usefixtures("fuse")
@pytest.mark.parametrize(
    ("damage", "error", "code"),
    [
        ("missing", "config file not found", ExitCode.OTHER),
        ("not json", "gocryptfs.conf", ExitCode.OTHER),
        ("a directory", "is a directory", ExitCode.OTHER),
    ],
)
def test_a_config_the_worker_cannot_read_is_reported_before_the_password_is_asked(
    vault: tuple[Path, bytes], mnt: Path, rundir: Path, damage: str, error: str, code: ExitCode
) -> None:
    cipher, _key = vault
    conf = cipher / "gocryptfs.conf"
    conf.unlink()
    if damage == "not json":
        conf.write_text("{ this is not a config")
    elif damage == "a directory":
        conf.mkdir()
    asked = _AskedPassword(PASSWORD)
    with pytest.raises(VaultError, match=error) as info:
        mounts.mount(MountRequest(cipher, mnt), mounts.Password(asked))
    assert str(cipher) in str(info.value) and "\n" not in str(info.value)
    assert info.value.exit_code == code
    assert asked.asked_with_children == []  # as gocryptfs: no prompt for a vault it cannot open
    _nothing_left(mnt, rundir)
    # A password file read at once that cannot be read: still the config's error first.
    with pytest.raises(VaultError, match=error):
        mounts.mount(MountRequest(cipher, mnt), mounts.Password(_unreadable, at_once=True))
    _nothing_left(mnt, rundir)


def _unreadable() -> bytes:
    raise ReadPasswordError("pw: cannot read password file: No such file or directory")


@pytest.mark.usefixtures("fuse")
@pytest.mark.parametrize("at_once", [False, True])
def test_a_password_that_cannot_be_read_stops_the_worker(
    vault: tuple[Path, bytes], mnt: Path, rundir: Path, at_once: bool
) -> None:
    cipher, _key = vault
    with pytest.raises(ReadPasswordError, match="cannot read password file"):
        mounts.mount(MountRequest(cipher, mnt), mounts.Password(_unreadable, at_once=at_once))
    _nothing_left(mnt, rundir)


@pytest.mark.usefixtures("fuse")
def test_reverse_mount_by_password(tmp_path: Path, mnt: Path, new_vault: NewVault, rundir: Path) -> None:
    plain = tmp_path / "plain"
    new_vault.reverse_folder(plain, PASSWORD)
    (plain / "report.txt").write_text("numbers")
    with pytest.raises(PasswordIncorrectError):
        mounts.mount(MountRequest(plain, mnt, reverse=True), mounts.Password(lambda: b"wrong"))
    _nothing_left(mnt, rundir)
    info = mounts.mount(MountRequest(plain, mnt, reverse=True), mounts.Password(lambda: PASSWORD))
    try:
        shown = os.listdir(mnt)
        assert info.mode == "reverse" and "gocryptfs.conf" in shown and "report.txt" not in shown
        assert len(shown) == 3  # the encrypted file name, the config and gocryptfs.diriv
    finally:
        mounts.unmount(mnt)


@pytest.mark.usefixtures("fuse")
def test_scrypt_memory_is_never_the_workers(tmp_path: Path, mnt: Path, new_vault: NewVault) -> None:
    # gocryptfs's default cost: scrypt takes 64 MiB, in a child of the worker that exits.
    new_vault(tmp_path / "cipher", PASSWORD, logn=16).close()
    info = mounts.mount(MountRequest(tmp_path / "cipher", mnt), mounts.Password(lambda: PASSWORD))
    try:
        status = Path(f"/proc/{info.pid}/status").read_text()
        peak_kib = int(next(x for x in status.splitlines() if x.startswith("VmHWM:")).split()[1])
        assert peak_kib < 64 * 1024, status
        children = Path(f"/proc/{info.pid}/task/{info.pid}/children").read_text().split()
        assert children == []  # the unlocking child is gone and reaped
    finally:
        mounts.unmount(mnt)


@pytest.mark.usefixtures("fuse")
def test_wrong_master_key_is_refused_when_names_exist(vault: tuple[Path, bytes], mnt: Path) -> None:
    cipher, key = vault
    v = Vault.open(cipher, password=PASSWORD)
    v.write_file("a.txt", b"a")
    v.mkdir("d")
    wrong = bytes(b ^ 0x5A for b in key)
    with pytest.raises(MasterKeyError, match="wrong key") as info:
        mounts.mount(MountRequest(cipher, mnt), wrong)
    assert info.value.exit_code == 14
    assert not mounts.mounted_at(mnt)


@pytest.mark.usefixtures("fuse")
def test_forward_lifecycle(vault: tuple[Path, bytes], mnt: Path, rundir: Path) -> None:
    cipher, key = vault
    info = mounts.mount(MountRequest(cipher, mnt), key)
    assert info.alive and info.pid > 0 and info.mode == "forward" and not info.read_only
    assert os.path.ismount(mnt)
    assert info.mountpoint == str(mnt) and info.source == str(cipher)
    files = MountFiles.for_mountpoint(mnt, rundir)
    assert files.socket.stat().st_mode & 0o777 == 0o600
    # Detached, and the key is in neither its command line nor its environment.
    assert os.getsid(info.pid) == info.pid
    for what in ("cmdline", "environ"):
        raw = Path(f"/proc/{info.pid}/{what}").read_bytes()
        assert key not in raw and key.hex().encode() not in raw
    assert os.readlink(f"/proc/{info.pid}/fd/0") == os.devnull
    assert os.readlink(f"/proc/{info.pid}/fd/2") == str(files.log)

    before = mounts.status(mnt).stats
    (mnt / "hello.txt").write_bytes(b"hello world" * 1000)
    # The kernel's writeback cache keeps the pages just written: drop them, so the read
    # reaches the worker and is counted.
    fd = os.open(mnt / "hello.txt", os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    assert (mnt / "hello.txt").read_bytes() == b"hello world" * 1000
    after = mounts.status(mnt)
    assert after.pid == info.pid and after.alive
    assert after.stats["requests"] > before["requests"]
    assert after.stats["bytes_written"] >= before["bytes_written"] + 11000
    assert after.stats["bytes_read"] >= before["bytes_read"] + 11000
    assert after.stats["open_files"] == 0

    [listed] = mounts.list_mounts()
    assert (listed.pid, listed.mountpoint, listed.alive) == (info.pid, str(mnt), True)
    assert mounts.find_mount(cipher) == listed or mounts.find_mount(cipher) is not None
    assert mounts.find_mount(mnt) is not None

    with pytest.raises(MountPointError, match="already mounted") as again:
        mounts.mount(MountRequest(cipher, mnt), key)
    assert again.value.exit_code == 10

    assert key.hex().encode() not in files.log.read_bytes()
    mounts.unmount(mnt)
    assert not os.path.ismount(mnt) and not mounts.mounted_at(mnt)
    assert _worker_reaped(info.pid)
    assert not files.socket.exists() and not files.registry.exists()
    # A clean run logs nothing, and an empty log is not left behind.
    assert not files.log.exists()
    assert mounts.list_mounts() == []
    # The data went through the vault format: the core reads it back with the password.
    assert Vault.open(cipher, password=PASSWORD).read_file("hello.txt") == b"hello world" * 1000


@pytest.mark.usefixtures("fuse")
def test_busy_mount_stays_until_released(vault: tuple[Path, bytes], mnt: Path) -> None:
    cipher, key = vault
    mounts.mount(MountRequest(cipher, mnt), key)
    f = open(mnt / "open.txt", "wb")  # noqa: SIM115 - held open across the unmount attempt
    try:
        f.write(b"x")
        with pytest.raises(MountPointError) as info:
            mounts.unmount(mnt)
        assert info.value.exit_code == 10
        assert os.path.ismount(mnt)
        assert mounts.status(mnt).stats["open_files"] >= 1
    finally:
        f.close()
    mounts.unmount(mnt)
    assert not mounts.mounted_at(mnt)


@pytest.mark.usefixtures("fuse")
def test_worker_raises_the_kernel_readahead(vault: tuple[Path, bytes], mnt: Path) -> None:
    """Sequential readers get 1 MiB requests: the worker raises read-ahead after FUSE INIT."""
    from vaultsh.fs.forward import READAHEAD_KIB
    from vaultsh.mount_protocol import mount_device

    if os.geteuid() != 0:
        skip_or_fail("the bdi read-ahead in sysfs is root's to change")
    cipher, key = vault
    mounts.mount(MountRequest(cipher, mnt), key)
    try:
        bdi = Path(f"/sys/class/bdi/{mount_device(mnt)}/read_ahead_kb")
        deadline = time.monotonic() + 10
        while bdi.read_text().strip() != str(READAHEAD_KIB) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert bdi.read_text().strip() == str(READAHEAD_KIB)
        time.sleep(2.5)  # the last re-application has run: it stays raised
        assert bdi.read_text().strip() == str(READAHEAD_KIB)
    finally:
        mounts.unmount(mnt)


@pytest.mark.usefixtures("fuse")
def test_read_only_mount_refuses_writes(vault: tuple[Path, bytes], mnt: Path) -> None:
    cipher, key = vault
    Vault.open(cipher, password=PASSWORD).write_file("r.txt", b"data")
    info = mounts.mount(MountRequest(cipher, mnt, read_only=True, allow_other=True), key)
    assert info.read_only
    options = _mount_options(mnt)
    assert "ro" in options and "allow_other" in options and "default_permissions" in options
    assert (mnt / "r.txt").read_bytes() == b"data"
    with pytest.raises(OSError) as err:
        (mnt / "w.txt").write_bytes(b"x")
    assert err.value.errno == errno.EROFS
    mounts.unmount(mnt)


@pytest.mark.usefixtures("fuse")
def test_idle_mount_unmounts_itself(vault: tuple[Path, bytes], mnt: Path, rundir: Path) -> None:
    cipher, key = vault
    info = mounts.mount(MountRequest(cipher, mnt, idle=1.0), key)
    wait_for(lambda: not mounts.mounted_at(mnt), "idle unmount")
    wait_for(lambda: not proto.process_alive(info.pid), "worker exit")
    files = MountFiles.for_mountpoint(mnt, rundir)
    wait_for(lambda: not files.registry.exists(), "registry removal")
    assert mounts.list_mounts() == []


@pytest.mark.usefixtures("fuse")
def test_killed_worker_leaves_stale_mount_that_unmount_clears(
    vault: tuple[Path, bytes], mnt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cipher, key = vault
    real_fusermount = mounts._fusermount_unmount
    lazy_flags: list[bool] = []

    def recording_fusermount(mountpoint: Path, *, lazy: bool) -> subprocess.CompletedProcess[str]:
        lazy_flags.append(lazy)
        return real_fusermount(mountpoint, lazy=lazy)

    monkeypatch.setattr(mounts, "_fusermount_unmount", recording_fusermount)
    info = mounts.mount(MountRequest(cipher, mnt), key)
    payload = os.urandom(70000)
    with open(mnt / "synced.bin", "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    held = os.open(mnt / "synced.bin", os.O_RDONLY)  # keeps the dead mount busy
    try:
        os.kill(info.pid, signal.SIGKILL)
        wait_for(lambda: not proto.process_alive(info.pid), "worker death")
        [stale] = mounts.list_mounts()
        assert stale.alive is False and stale.stats == {} and stale.pid == info.pid
        assert mounts.mounted_at(mnt)  # the kernel still holds the dead mount
        with pytest.raises(OSError) as err:
            os.listdir(mnt)  # (attributes may still come from the kernel cache)
        assert err.value.errno in (errno.ENOTCONN, errno.ECONNABORTED)  # dead connection
        # Mounting over the stale mount is refused and keeps its record, so it stays clearable.
        with pytest.raises(MountPointError, match="stale"):
            mounts.mount(MountRequest(cipher, mnt), key)
        assert [m.pid for m in mounts.list_mounts()] == [info.pid]
        # busy and dead: a plain unmount is refused, so the stale mount is detached lazily
        mounts.unmount(mnt)
        assert lazy_flags == [False, True]
    finally:
        with contextlib.suppress(OSError):
            os.close(held)
    assert not mounts.mounted_at(mnt)
    assert mounts.list_mounts() == []
    assert _worker_reaped(info.pid)

    again = mounts.mount(MountRequest(cipher, mnt), key)
    try:
        assert (mnt / "synced.bin").read_bytes() == payload
    finally:
        mounts.unmount(mnt)
    assert _worker_reaped(again.pid)


@pytest.mark.usefixtures("fuse")
def test_worker_exits_when_unmounted_from_outside(vault: tuple[Path, bytes], mnt: Path) -> None:
    cipher, key = vault
    info = mounts.mount(MountRequest(cipher, mnt), key)
    subprocess.run(["fusermount3", "-u", str(mnt)], check=True)
    assert_worker_finished(info.pid, mnt)


@pytest.mark.usefixtures("fuse")
def test_sigterm_unmounts_cleanly(vault: tuple[Path, bytes], mnt: Path) -> None:
    cipher, key = vault
    info = mounts.mount(MountRequest(cipher, mnt), key)
    (mnt / "t.txt").write_bytes(b"term")
    os.kill(info.pid, signal.SIGTERM)
    assert_worker_finished(info.pid, mnt)
    assert Vault.open(cipher, password=PASSWORD).read_file("t.txt") == b"term"


def assert_worker_finished(pid: int, mountpoint: Path) -> None:
    """The worker exited 0 on its own, unmounted, and removed its registry entry."""
    wait_for(lambda: not proto.process_alive(pid), "worker exit")
    assert mounts._children.pop(pid).wait(WAIT) == 0
    assert not mounts.mounted_at(mountpoint)
    assert mounts.list_mounts() == []


@pytest.mark.usefixtures("fuse")
def test_master_key_mount_of_a_vault_without_config(tmp_path: Path, mnt: Path, new_vault: NewVault) -> None:
    """Like gocryptfs -masterkey -plaintextnames: the format comes from the request."""
    cipher = tmp_path / "cipher"
    with new_vault(cipher, PASSWORD, plaintext_names=True) as made:
        key = made.keys.master_key
    (cipher / "gocryptfs.conf").unlink()
    options = FormatOptions(plaintext_names=True)
    mounts.mount(MountRequest(cipher, mnt, options=options), key)
    try:
        (mnt / "visible.txt").write_bytes(b"v")
    finally:
        mounts.unmount(mnt)
    assert (cipher / "visible.txt").exists()  # a plain name on disk: the options were used
    assert Vault.open(cipher, master_key=key, options=options).read_file("visible.txt") == b"v"


FOREGROUND_SCRIPT = """
import sys
from pathlib import Path
from vaultsh.service import mounts, worker_start
key = Path(sys.argv[3]).read_bytes()
req = mounts.MountRequest(Path(sys.argv[1]), Path(sys.argv[2]))
info = mounts.mount(req, key, foreground=True, on_ready=lambda i: print("ready", i.pid, flush=True))
print("done", info.alive, flush=True)
"""


@pytest.mark.usefixtures("fuse")
def test_foreground_mount_unmounts_cleanly_on_ctrl_c(
    vault: tuple[Path, bytes], mnt: Path, tmp_path: Path
) -> None:
    cipher, key = vault
    keyfile = tmp_path / "key.bin"  # test-only hand-over; real callers pass the key in memory
    keyfile.write_bytes(key)
    proc = subprocess.Popen(
        [sys.executable, "-c", FOREGROUND_SCRIPT, str(cipher), str(mnt), str(keyfile)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline().decode().split()  # bounded by the start timeout
        assert ready[:1] == ["ready"], proc.stderr.read().decode() if proc.stderr else ""
        worker_pid = mounts.status(mnt).pid
        assert int(ready[1]) == worker_pid and os.path.ismount(mnt)
        (mnt / "fg.txt").write_bytes(b"fg")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()
    assert out.decode().split() == ["done", "False"]
    assert not mounts.mounted_at(mnt)
    wait_for(lambda: not proto.process_alive(worker_pid), "worker exit")
    assert mounts.list_mounts() == []
    assert Vault.open(cipher, password=PASSWORD).read_file("fg.txt") == b"fg"


@pytest.mark.usefixtures("fuse")
def test_reverse_lifecycle_with_excludes(tmp_path: Path, mnt: Path, new_vault: NewVault) -> None:
    plain = tmp_path / "plain"
    key = os.urandom(32)
    new_vault.reverse_folder(plain, PASSWORD, master_key=key)
    (plain / "notes.txt").write_bytes(b"plain notes")
    (plain / "secret.txt").write_bytes(b"do not back up")
    (plain / "build").mkdir()
    (plain / "build" / "x.o").write_bytes(b"obj")
    excludes = tmp_path / "excludes"
    excludes.write_text("build/\n")
    req = MountRequest(plain, mnt, reverse=True, excludes=("secret.txt",), exclude_from=(excludes,))
    info = mounts.mount(req, key)
    try:
        assert (info.mode, info.read_only, info.alive) == ("reverse", True, True)
        shown = sorted(os.listdir(mnt))
        assert "notes.txt" not in shown and "gocryptfs.conf" in shown  # names are encrypted
        with pytest.raises(OSError) as err:
            (mnt / "new").write_bytes(b"x")
        assert err.value.errno in (errno.EROFS, errno.EACCES)
        # The view is a gocryptfs vault: the forward core decrypts it back to the plain files.
        # (Closed before the unmount: an open Vault holds descriptors of its cipher dir.)
        with Vault.open(mnt, password=PASSWORD) as view:
            assert sorted(e.name for e in view.listdir()) == ["build", "notes.txt"]
            assert view.listdir("build") == []
            assert view.read_file("notes.txt") == b"plain notes"
        assert mounts.status(mnt).stats["bytes_read"] > 0
    finally:
        mounts.unmount(mnt)
    assert not mounts.mounted_at(mnt)
    assert _worker_reaped(info.pid)
    assert mounts.list_mounts() == []


@pytest.mark.usefixtures("fuse")
def test_bad_exclude_pattern_is_refused_by_the_worker(tmp_path: Path, mnt: Path, new_vault: NewVault) -> None:
    plain = tmp_path / "plain"
    key = os.urandom(32)
    new_vault.reverse_folder(plain, PASSWORD, master_key=key)
    with pytest.raises(ExcludeError, match="a\\(b") as info:
        mounts.mount(MountRequest(plain, mnt, reverse=True, excludes=("a(b",)), key)
    assert int(info.value.exit_code) == 29  # gocryptfs EXCLUDE_ERROR
    assert not mounts.mounted_at(mnt)
    assert mounts.list_mounts() == []


def test_key_check_tolerates_a_stray_file_but_not_a_wrong_key(vault: tuple[Path, bytes]) -> None:
    require_fuse()  # the check lives in the worker module, which imports pyfuse3
    from vaultsh.fs.worker import check_forward_key

    cipher, key = vault
    v = Vault.open(cipher, password=PASSWORD)
    for name in ("a", "b", "c"):
        v.write_file(name, b"")
    (cipher / ("A" * 22)).write_text("not a vault object")
    check_forward_key(Vault.open(cipher, master_key=key))
    with pytest.raises(MasterKeyError):
        check_forward_key(Vault.open(cipher, master_key=bytes(b ^ 1 for b in key)))


def test_worker_gets_the_import_path_exactly_even_with_separators_in_names(tmp_path: Path) -> None:
    odd = [str(tmp_path / "a:b"), str(tmp_path / "new\nline"), str(tmp_path / "plain")]
    code = f"{worker_start.WORKER_PATH_SETUP}; import json; print(json.dumps([sys.path[-3:], sys.argv[1:]]))"
    argv = [sys.executable, *worker_start.WORKER_INTERPRETER_FLAGS, "-c", code, str(len(odd)), *odd, "--x"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [odd, ["--x"]]  # the path words are taken off the worker's arguments
    # The worker's own path: where this process found vaultsh, then our path, without the
    # current directory.
    path = worker_start.worker_import_path()
    assert (Path(path[0]) / "vaultsh" / "__init__.py").is_file()
    assert os.getcwd() not in path[1:] and all(os.path.isabs(p) for p in path)


@pytest.mark.usefixtures("fuse")
def test_a_full_disk_shows_in_the_errors_counter_and_log(
    tiny_disk: Path, mnt: Path, rundir: Path, new_vault: NewVault
) -> None:
    """With the writeback cache a program hears of a full disk only at fsync or close; the
    mount's counter and log show it too, so a program that ignores close loses nothing unseen."""
    with new_vault(tiny_disk / "cipher", PASSWORD) as made:
        cipher, key = made.cipherdir, made.keys.master_key
    mounts.mount(MountRequest(cipher, mnt), key)
    try:
        assert mounts.status(mnt).stats["errors"] == 0
        fd = os.open(mnt / "secret-name.bin", os.O_CREAT | os.O_WRONLY, 0o644)
        try:
            with pytest.raises(OSError) as e:
                os.write(fd, os.urandom(2 * 1024 * 1024))  # twice the disk
                os.fsync(fd)
            assert e.value.errno == errno.ENOSPC
        finally:
            with contextlib.suppress(OSError):  # close reports it again
                os.close(fd)
        assert mounts.status(mnt).stats["errors"] >= 1
    finally:
        mounts.unmount(mnt)
    log = MountFiles.for_mountpoint(mnt, rundir).log.read_text()
    assert "ENOSPC" in log and "secret-name" not in log
