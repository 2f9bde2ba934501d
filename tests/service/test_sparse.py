"""Sparse cipher files export as sparse files, and an export that cannot fit is refused first."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from vaultsh.service import transfer
from vaultsh.vault.bulk import MIN_FORK_CHUNKS, PIPE_BLOCKS, data_runs
from vaultsh.vault.content import BLOCK_SIZE
from vaultsh.vault.errors import FsError
from vaultsh.vault.vault import Vault

TIB = 1 << 40
CHUNK = PIPE_BLOCKS * BLOCK_SIZE  # plaintext bytes of one chunk of the bulk decrypter


def make_bomb(vault: Vault, path: str = "bomb") -> None:
    """A 1 TiB file with a few bytes of data: a vault write, then a truncate that grows it
    (the new blocks are holes of the cipher file, §5.3), then one write in the middle."""
    with vault.create(path) as f:
        f.write(0, b"head")
        f.truncate(TIB)
        f.write(TIB // 2, b"middle")


def allocated(p: Path) -> int:
    return p.stat().st_blocks * 512


def read_at(p: Path, offset: int, size: int) -> bytes:
    with open(p, "rb") as f:
        f.seek(offset)
        return f.read(size)


@pytest.mark.parametrize("force_decode", [False, True], ids=["plain", "force-decode"])
def test_a_sparse_bomb_exports_sparse(vault: Vault, tmp_path: Path, force_decode: bool) -> None:
    make_bomb(vault)
    assert allocated(vault.cipher_path("bomb")) < 1 << 20  # the bomb itself: a few KiB on disk
    steps: list[int] = []
    report = transfer.export(
        vault, "bomb", tmp_path / "out", progress=steps.append, force_decode=force_decode
    )
    out = tmp_path / "out"
    assert report.failed == [] and report.damaged == []
    assert out.stat().st_size == TIB and sum(steps) == report.bytes == TIB
    assert allocated(out) < 1 << 20
    assert read_at(out, 0, 8) == b"head" + bytes(4)
    assert read_at(out, TIB // 2 - 2, 10) == bytes(2) + b"middle" + bytes(2)
    assert read_at(out, 3 * TIB // 4, 4096) == bytes(4096)
    assert read_at(out, TIB - 4096, 8192) == bytes(4096)


@pytest.mark.parametrize("processes", [1, 2], ids=["pipeline", "two-processes"])
def test_many_data_islands_in_holes(vault: Vault, tmp_path: Path, processes: int) -> None:
    """Enough data chunks for the threaded and forked decrypters, each at its own place."""
    islands = {k * (64 << 20) + 12345: os.urandom(CHUNK + 777) for k in range(MIN_FORK_CHUNKS + 2)}
    with vault.create("islands") as f:
        for offset, data in islands.items():
            f.write(offset, data)
    size = vault.stat("islands").size
    report = transfer.export(vault, "islands", tmp_path / "out", processes=processes)
    out = tmp_path / "out"
    assert report.failed == [] and out.stat().st_size == size
    # Only the islands (each spread over three chunks at most) take room.
    assert allocated(out) <= len(islands) * 3 * CHUNK
    for offset, data in islands.items():
        assert read_at(out, offset, len(data)) == data
        assert read_at(out, offset - 4096, 4096) == bytes(4096)


def test_all_zero_cipher_blocks_that_take_room_become_holes(vault: Vault, tmp_path: Path) -> None:
    """All-zero cipher blocks are plaintext zeros (§5.3) even where the cipher file holds them
    as data (a sync tool that does not keep holes): they are not written either."""
    data = os.urandom(3 * CHUNK)
    vault.write_file("f", data)
    cfile = vault.cipher_path("f")
    codec = vault.content
    with open(cfile, "r+b") as f:
        f.seek(codec.cipher_offset(PIPE_BLOCKS))
        f.write(bytes(PIPE_BLOCKS * codec.cipher_block))  # the middle chunk, as real zeros
    fd = os.open(cfile, os.O_RDONLY)
    try:  # the filesystem calls it data: only the zeros tell
        assert data_runs(fd, codec, cfile.stat().st_size) == [(0, 3 * PIPE_BLOCKS)]
    finally:
        os.close(fd)
    transfer.export(vault, "f", tmp_path / "out")
    out = tmp_path / "out"
    assert out.read_bytes() == data[:CHUNK] + bytes(CHUNK) + data[2 * CHUNK :]
    assert allocated(out) <= 2 * CHUNK + (64 << 10)


def test_the_holes_of_a_cipher_file_are_left_out(vault: Vault) -> None:
    with vault.create("f") as f:
        f.write(0, b"a")
        f.write(100 * CHUNK, b"b")
    cfile = vault.cipher_path("f")
    fd = os.open(cfile, os.O_RDONLY)
    try:
        runs = data_runs(fd, vault.content, cfile.stat().st_size)
    finally:
        os.close(fd)
    last = 100 * PIPE_BLOCKS
    assert runs[0][0] == 0 and runs[0][1] <= 2
    assert runs[-1][0] <= last and runs[-1][0] + runs[-1][1] == last + 1
    assert sum(count for _, count in runs) <= 4


def test_an_export_that_cannot_fit_is_refused_before_writing(vault: Vault, tiny_disk: Path) -> None:
    vault.mkdir("d")
    vault.write_file("d/small", b"s")
    vault.write_file("d/big", os.urandom(2 << 20))
    with pytest.raises(FsError) as info:
        transfer.export(vault, "d", tiny_disk / "d")
    assert info.value.errno == errno.ENOSPC
    assert "No space left on device (2.0 MiB to write" in str(info.value) and "\n" not in str(info.value)
    assert os.listdir(tiny_disk) == []


def test_a_sparse_bomb_fits_a_tiny_disk(vault: Vault, tiny_disk: Path) -> None:
    make_bomb(vault)
    report = transfer.export(vault, "bomb", tiny_disk / "bomb")
    assert report.files == 1 and (tiny_disk / "bomb").stat().st_size == TIB
    assert read_at(tiny_disk / "bomb", TIB // 2, 6) == b"middle"
