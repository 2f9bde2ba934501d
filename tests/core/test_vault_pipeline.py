"""Whole-file decryption for export: the thread pipeline and the two-process variant."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from vaultsh.vault.bulk import MIN_FORK_CHUNKS, PIPE_BLOCKS, decrypt_to
from vaultsh.vault.content import BLOCK_SIZE
from vaultsh.vault.errors import CorruptionError
from vaultsh.vault.vault import Vault

SIZE = (MIN_FORK_CHUNKS + 1) * PIPE_BLOCKS * BLOCK_SIZE + 12345  # big enough for both paths
PROCESSES = pytest.mark.parametrize("processes", [1, 2], ids=["pipeline", "two-processes"])


@PROCESSES
def test_output_equals_plaintext_with_holes(vault: Vault, tmp_path: Path, processes: int) -> None:
    data = bytearray(os.urandom(SIZE))
    with vault.create("big") as f:
        f.write(0, bytes(data[: 3 * BLOCK_SIZE]))
        f.write(SIZE - 4, b"tail")  # past EOF: leaves holes
        data = bytearray(data[: 3 * BLOCK_SIZE])
        data += bytes(SIZE - 4 - len(data)) + b"tail"
    out = tmp_path / "out"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT, 0o600)
    steps: list[int] = []
    with vault.open_file("big") as f:
        n = decrypt_to(f, fd, steps.append, processes=processes)
    os.close(fd)
    assert n == len(data) == sum(steps)
    assert out.read_bytes() == bytes(data)


@PROCESSES
@pytest.mark.parametrize("chunk", [2, 3])  # even chunks are the parent's, odd the child's
def test_stops_cleanly_on_a_tampered_block(vault: Vault, tmp_path: Path, processes: int, chunk: int) -> None:
    vault.write_file("big", os.urandom(SIZE))
    cfile = vault.cipher_path("big")
    raw = bytearray(cfile.read_bytes())
    block = chunk * PIPE_BLOCKS + 5
    raw[vault.content.cipher_offset(block) + 100] ^= 0x80
    cfile.write_bytes(raw)
    before = threading.active_count()
    fd = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT, 0o600)
    with vault.open_file("big") as f, pytest.raises(CorruptionError, match=f"block {block} failed"):
        decrypt_to(f, fd, None, processes=processes)
    os.close(fd)
    assert threading.active_count() == before  # reader and writer threads are gone
    with pytest.raises(ChildProcessError):
        os.wait()  # and no forked worker is left behind


@PROCESSES
def test_reports_a_write_error(vault: Vault, processes: int) -> None:
    vault.write_file("big", os.urandom(SIZE))
    fd = os.open("/dev/full", os.O_WRONLY)  # every write fails with ENOSPC
    try:
        with vault.open_file("big") as f, pytest.raises(OSError) as err:
            decrypt_to(f, fd, None, processes=processes)
        assert err.value.errno == 28
    finally:
        os.close(fd)


def test_write_error_never_hangs(vault: Vault) -> None:
    """The writer failing first used to leave the decrypting thread waiting for the reader."""
    vault.write_file("big", os.urandom(SIZE))
    for _ in range(20):
        fd = os.open("/dev/full", os.O_WRONLY)
        try:
            with vault.open_file("big") as f, pytest.raises(OSError):
                decrypt_to(f, fd, None)
        finally:
            os.close(fd)
