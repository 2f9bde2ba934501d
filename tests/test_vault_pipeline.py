"""The pipelined whole-file decrypt (read-ahead, decrypt, write-behind) used by export."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from vaultsh.vault.content import BLOCK_SIZE
from vaultsh.vault.errors import CorruptionError
from vaultsh.vault.vault import PIPE_BLOCKS, Vault

SIZE = 5 * PIPE_BLOCKS * BLOCK_SIZE + 12345  # big enough to take the pipelined path


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    cdir = tmp_path / "c"
    cdir.mkdir()
    Vault.init(cdir, b"pw", logn=10)
    return Vault.open(cdir, password=b"pw")


def test_pipeline_output_equals_plaintext_with_holes(vault: Vault, tmp_path: Path) -> None:
    data = bytearray(os.urandom(SIZE))
    with vault.create("big") as f:
        f.write(0, bytes(data[: 3 * BLOCK_SIZE]))
        f.write(9 * PIPE_BLOCKS * BLOCK_SIZE // 2, b"tail")  # past EOF: leaves holes
        data = bytearray(data[: 3 * BLOCK_SIZE])
        data += bytes(9 * PIPE_BLOCKS * BLOCK_SIZE // 2 - len(data)) + b"tail"
    out = tmp_path / "out"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT, 0o600)
    steps: list[int] = []
    with vault.open_file("big") as f:
        n = f.decrypt_to(fd, steps.append)
    os.close(fd)
    assert n == len(data) == sum(steps)
    assert out.read_bytes() == bytes(data)


def test_pipeline_stops_cleanly_on_a_tampered_block(vault: Vault, tmp_path: Path) -> None:
    vault.write_file("big", os.urandom(SIZE))
    cfile = vault.cipher_path("big")
    raw = bytearray(cfile.read_bytes())
    raw[len(raw) * 3 // 4] ^= 0x80
    cfile.write_bytes(raw)
    before = threading.active_count()
    fd = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT, 0o600)
    with vault.open_file("big") as f, pytest.raises(CorruptionError, match="failed authentication"):
        f.decrypt_to(fd)
    os.close(fd)
    assert threading.active_count() == before  # reader and writer threads are gone


def test_pipeline_reports_a_write_error(vault: Vault) -> None:
    vault.write_file("big", os.urandom(SIZE))
    fd = os.open("/dev/full", os.O_WRONLY)  # every write fails with ENOSPC
    try:
        with vault.open_file("big") as f, pytest.raises(OSError) as err:
            f.decrypt_to(fd)
        assert err.value.errno == 28
    finally:
        os.close(fd)
