"""Short and stalled writes: every small file the format core writes comes out whole or fails."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from vault_factory import new_vault

from vaultsh.vault.config import load_config
from vaultsh.vault.errors import ExitCode, WriteConfError
from vaultsh.vault.fdio import pwrite_all, write_all
from vaultsh.vault.names import DIRIV_NAME, read_diriv, write_diriv

REAL_WRITE = os.write
REAL_PWRITE = os.pwrite


def _short_write(fd: int, data: bytes | memoryview) -> int:
    """os.write as a nearly full disk or a pipe may answer: at most 3 bytes at a time."""
    return REAL_WRITE(fd, bytes(data)[:3])


def _short_pwrite(fd: int, data: bytes | memoryview, offset: int) -> int:
    return REAL_PWRITE(fd, bytes(data)[:3], offset)


def _stalled(*_args: object) -> int:
    """A write that takes nothing and reports no error: retried naively, it would spin forever."""
    return 0


def _fd(tmp_path: Path) -> int:
    return os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def test_write_all_retries_short_writes_until_everything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fd = _fd(tmp_path)
    monkeypatch.setattr(os, "write", _short_write)
    monkeypatch.setattr(os, "pwrite", _short_pwrite)
    try:
        write_all(fd, b"0123456789")
        pwrite_all(fd, memoryview(b"abcdefg"), 2)
    finally:
        os.close(fd)
    assert (tmp_path / "out").read_bytes() == b"01abcdefg9"


@pytest.mark.parametrize(
    "call",
    [lambda fd: write_all(fd, b"data"), lambda fd: pwrite_all(fd, b"data", 0)],
    ids=["write_all", "pwrite_all"],
)
def test_a_write_that_makes_no_progress_is_an_error(
    call: Callable[[int], None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fd = _fd(tmp_path)
    monkeypatch.setattr(os, "write", _stalled)
    monkeypatch.setattr(os, "pwrite", _stalled)
    try:
        with pytest.raises(OSError) as raised:
            call(fd)
    finally:
        os.close(fd)
    assert raised.value.errno == errno.EIO


def test_a_stalled_config_write_fails_and_leaves_the_config_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    new_vault(tmp_path / "v")
    conf_path = tmp_path / "v" / "gocryptfs.conf"
    before = conf_path.read_bytes()
    conf = load_config(conf_path)
    monkeypatch.setattr(os, "write", _stalled)
    with pytest.raises(WriteConfError) as raised:
        conf.write(conf_path)
    monkeypatch.undo()
    assert raised.value.exit_code == ExitCode.WRITE_CONF
    assert conf_path.read_bytes() == before
    assert sorted(p.name for p in conf_path.parent.iterdir() if p.name.endswith(".tmp")) == []


def test_a_diriv_written_in_short_pieces_is_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "write", _short_write)
    iv = write_diriv(tmp_path, sync=False)
    monkeypatch.undo()
    assert (tmp_path / DIRIV_NAME).stat().st_size == len(iv) == 16
    assert read_diriv(tmp_path) == iv
