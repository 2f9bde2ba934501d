"""A mount worker started ahead of its mount: its command line, its settings line, and giving it up."""

from __future__ import annotations

import os
import select
from pathlib import Path

import pytest
from fuse_harness import require_fuse

from vaultsh.fs.worker import WorkerConfig, parse_command_line, read_master_key, read_password, read_settings
from vaultsh.service import mounts, worker_start
from vaultsh.service.mounts import MountRequest
from vaultsh.vault.conf_names import MAX_PASSWORD_LEN
from vaultsh.vault.errors import MasterKeyError, ReadPasswordError, UsageError
from vaultsh.vault.keys import FormatOptions


def _settings(req: MountRequest, **overrides: object) -> bytes:
    kwargs: dict[str, object] = {
        "source": req.source,
        "mountpoint": req.mountpoint,
        "excludes": list(req.excludes),
        "rundir": Path("/run/user/0/vaultsh"),
        "foreground": False,
        "log": Path("/run/user/0/vaultsh/x.log"),
    }
    kwargs.update(overrides)
    return mounts.worker_settings(req, **kwargs)  # type: ignore[arg-type]


def test_settings_reach_the_worker_whole_even_with_names_that_are_not_utf8(tmp_path: Path) -> None:
    odd = os.fsdecode(b"ca\xffche\nnew,line")
    req = MountRequest(
        source=tmp_path / odd,
        mountpoint=tmp_path / "mnt",
        reverse=True,
        idle=90.0,
        excludes=("-leading-dash", odd),
        allow_other=True,
        noprealloc=True,
        config=tmp_path / "gocryptfs.conf",
        options=FormatOptions(plaintext_names=True),
        key_proven=True,
    )
    line = _settings(req)
    assert line.endswith(b"\n") and line.count(b"\n") == 1 and line.isascii()
    cfg = WorkerConfig.from_json(line[:-1])
    assert cfg.source == tmp_path / odd and cfg.mountpoint == tmp_path / "mnt"
    assert cfg.reverse and cfg.idle == 90.0 and cfg.allow_other and cfg.key_proven and cfg.noprealloc
    assert cfg.excludes == ["-leading-dash", odd]
    assert cfg.options == FormatOptions(plaintext_names=True)
    assert cfg.log == Path("/run/user/0/vaultsh/x.log") and not cfg.foreground and not cfg.read_only


@pytest.mark.parametrize(
    "line",
    [
        b"[]",
        b"{}",
        b'{"source": "/a", "mountpoint": "/b"}',
        b'{"source": "/a", "mountpoint": "/b", "runtime_dir": "/r", "reverse": "yes"}',
        b'{"source": 1, "mountpoint": "/b", "runtime_dir": "/r"}',
        b'{"source": "/a", "mountpoint": "/b", "runtime_dir": "/r", "options": {"bogus": true}}',
        b'{"source": "/a", "mountpoint": "/b", "runtime_dir": "/r", "secret": "token"}',
        b"not json",
    ],
)
def test_bad_settings_are_a_usage_error(line: bytes) -> None:
    with pytest.raises(UsageError, match="bad settings"):
        WorkerConfig.from_json(line)


def test_the_command_line_names_two_pipes_and_a_preload() -> None:
    line = parse_command_line(["--start-fd", "7", "--status-fd", "8", "--preload", "reverse"])
    assert (line.start_fd, line.status_fd, line.preload) == (7, 8, "reverse")
    assert parse_command_line(["--status-fd", "8", "--start-fd", "7"]).preload == "forward"
    for bad in (
        ["--start-fd", "7"],
        ["--start-fd", "7", "--status-fd"],
        ["--start-fd", "x", "--status-fd", "8"],
        ["--start-fd", "7", "--status-fd", "8", "--preload", "sideways"],
        ["--start-fd", "7", "--status-fd", "8", "--start-fd", "9"],
        ["--start-fd", "7", "--status-fd", "8", "--source", "/a"],
    ):
        with pytest.raises(UsageError, match="mount worker"):
            parse_command_line(bad)


def test_settings_and_key_arrive_on_one_pipe_in_any_chunks(tmp_path: Path) -> None:
    line = _settings(MountRequest(tmp_path / "c", tmp_path / "m"))
    key = bytes(range(32))
    r, w = os.pipe()
    os.write(w, line + key[:5])  # the key's first bytes come with the settings
    os.write(w, key[5:])
    os.close(w)
    got = read_settings(r)
    assert got is not None
    cfg, head = got
    assert cfg.source == tmp_path / "c" and key.startswith(head)  # as far as the read got
    assert read_master_key(r, head) == key
    with pytest.raises(OSError):
        os.fstat(r)  # the pipe is closed once the key is read


def test_settings_say_whether_a_password_or_a_key_follows(tmp_path: Path) -> None:
    req = MountRequest(tmp_path / "c", tmp_path / "m")
    assert WorkerConfig.from_json(_settings(req)[:-1]).secret == "master_key"
    cfg = WorkerConfig.from_json(_settings(req, secret="password")[:-1])
    assert cfg.secret == "password" and not cfg.key_proven


def test_a_password_arrives_whole_and_an_overlong_one_is_refused() -> None:
    for password in (b"p", "pässwörd \u2603".encode(), bytes(range(1, 256)) * 8):
        r, w = os.pipe()
        os.write(w, password[1:])
        os.close(w)
        assert read_password(r, password[:1]) == password  # its first byte came with the settings
        with pytest.raises(OSError):
            os.fstat(r)
    r, w = os.pipe()
    os.write(w, b"x" * (MAX_PASSWORD_LEN + 1))
    os.close(w)
    with pytest.raises(ReadPasswordError, match=f"longer than {MAX_PASSWORD_LEN}"):
        read_password(r)


def test_a_short_key_after_the_settings_is_refused(tmp_path: Path) -> None:
    r, w = os.pipe()
    os.write(w, _settings(MountRequest(tmp_path / "c", tmp_path / "m")) + bytes(31))
    os.close(w)
    got = read_settings(r)
    assert got is not None
    with pytest.raises(MasterKeyError, match="31 bytes"):
        read_master_key(r, got[1])


def test_a_pipe_that_ends_before_the_settings_means_no_mount() -> None:
    r, w = os.pipe()
    os.write(w, b'{"source": "/a"')  # cut off: the caller died mid-line
    os.close(w)
    assert read_settings(r) is None
    os.close(r)


def test_a_worker_given_up_before_its_settings_exits_quietly() -> None:
    require_fuse()  # the worker imports pyfuse3 before it reads its settings
    err_r, err_w = os.pipe()
    try:
        worker = worker_start.start_worker(reverse=False, stderr_fd=err_w)
    finally:
        os.close(err_w)
    status_r, worker.status_r = worker.status_r, -1
    worker.close()
    assert worker.proc.wait(30) == 0
    # No report (nobody asked for a mount) and nothing on its stderr.
    assert select.select([status_r], [], [], 0)[0] and os.read(status_r, 100) == b""
    assert os.read(err_r, 100) == b""
    for fd in (status_r, err_r):
        os.close(fd)


def test_a_worker_reports_bad_settings_on_its_status_pipe() -> None:
    require_fuse()
    err_r, err_w = os.pipe()
    try:
        worker = worker_start.start_worker(reverse=True, stderr_fd=err_w)
    finally:
        os.close(err_w)
    try:
        os.write(worker.start_w, b'{"source": 5}\n')
        os.close(worker.start_w)
        worker.start_w = -1
        assert worker.proc.wait(30) == 1  # gocryptfs's usage code
        reply = os.read(worker.status_r, 4096)
        assert b'"ok":false' in reply and b"bad settings" in reply and b"UsageError" in reply
        assert b"bad settings" in os.read(err_r, 4096)  # and its log says so
    finally:
        worker.close()
        os.close(err_r)


def test_prestart_is_only_for_a_mount_that_is_not_a_help_request() -> None:
    for argv in ([], ["ls", "mount"], ["mount", "--help"], ["mount", "-h", "c", "m"], ["mounts"]):
        assert worker_start.prestart(argv) is None, argv


def test_worker_module_names_agree() -> None:
    from vaultsh import mount_protocol as proto

    # worker_start stays free of mount_protocol's imports, so it keeps its own copy.
    assert worker_start.WORKER_MODULE == proto.WORKER_MODULE
    assert (worker_start.PRELOAD_FORWARD, worker_start.PRELOAD_REVERSE) == (
        proto.MODE_FORWARD,
        proto.MODE_REVERSE,
    )


@pytest.mark.parametrize("noprealloc", [False, True])
def test_noprealloc_turns_space_reservation_off_in_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, noprealloc: bool
) -> None:
    from gocryptfs_harness import import_or_skip
    from vault_factory import new_vault

    import_or_skip("pyfuse3")

    from vaultsh.fs.stats import MountStats
    from vaultsh.fs.worker import build_operations
    from vaultsh.vault import fdio

    monkeypatch.setattr(fdio, "_reserve_skipped", False)
    cipher = tmp_path / "cipher"
    key = bytes(range(32))
    new_vault(cipher, master_key=key).close()
    cfg = WorkerConfig(
        source=cipher,
        mountpoint=tmp_path / "mnt",
        runtime_dir=tmp_path,
        noprealloc=noprealloc,
        key_proven=True,
    )
    ops, _options = build_operations(cfg, key, MountStats())
    try:
        assert fdio._reserve_skipped is noprealloc
    finally:
        ops.close()
