"""Database-like write patterns on a vault file (WAL frames, journal appends, truncates, two handles)."""

from __future__ import annotations

import random

from vaultsh.vault.content import BLOCK_SIZE
from vaultsh.vault.file import VaultFile
from vaultsh.vault.vault import Vault

PASSWORD = b"pw"  # of the `vault` fixture (conftest.py)


def on_disk(vault: Vault, path: str) -> bytes:
    """The file as a vault opened afresh reads it (no state shared with the writer)."""
    return Vault.open(vault.cipherdir, password=PASSWORD).read_file(path)


def test_wal_like_appends_equal_a_plain_model(vault: Vault) -> None:
    vault.write_file("db-wal", b"")
    model = bytearray()
    rng = random.Random(7)
    with vault.open_file("db-wal", writable=True) as f:
        offset = 32
        f.write(0, b"H" * 32)
        model[0:32] = b"H" * 32
        for _ in range(60):  # frame header, then the page, as SQLite writes its WAL
            header, page = rng.randbytes(24), rng.randbytes(BLOCK_SIZE)
            for off, data in ((offset, header), (offset + 24, page)):
                f.write(off, data)
                model[off : off + len(data)] = data
            offset += 24 + BLOCK_SIZE
        # A rewrite inside the last block, and one in an older block.
        for off in (offset - 10, 5000):
            f.write(off, b"rewritten")
            model[off : off + 9] = b"rewritten"
        assert f.read() == bytes(model)
    assert on_disk(vault, "db-wal") == bytes(model)


def test_truncate_and_other_handles_keep_the_block_right(vault: Vault) -> None:
    vault.write_file("journal", b"")
    model = bytearray()

    with vault.open_file("journal", writable=True) as a, vault.open_file("journal", writable=True) as b:

        def write(f: VaultFile, off: int, data: bytes) -> None:
            f.write(off, data)
            if off > len(model):
                model.extend(bytes(off - len(model)))
            model[off : off + len(data)] = data
            assert a.read() == b.read() == on_disk(vault, "journal") == bytes(model)

        def truncate(f: VaultFile, size: int) -> None:
            f.truncate(size)
            del model[size:]
            model.extend(bytes(size - len(model)))

        write(a, 0, b"a" * 5000)  # ends inside block 1
        write(b, 5000, b"b" * 100)  # the other handle continues the same block
        write(a, 5100, b"c" * 10)
        truncate(a, 4500)  # shrinks into block 1: the block known from the last write is stale
        write(b, 4500, b"d" * 20)
        truncate(b, 9000)  # grows with zeros
        write(a, 8990, b"e" * 30)
        truncate(a, 8992)
        write(a, 8992, b"h" * 3)
        truncate(a, 0)  # a new file ID next time
        write(b, 3, b"f" * 7)
        write(a, 10, b"g" * 4)


def test_random_small_writes_equal_a_plain_model(vault: Vault) -> None:
    vault.write_file("random", b"")
    model = bytearray()
    rng = random.Random(14)
    with vault.open_file("random", writable=True) as f:
        for _ in range(400):
            if rng.random() < 0.05:
                size = rng.randrange(0, len(model) + 2 * BLOCK_SIZE)
                f.truncate(size)
                model = model[:size] + bytearray(max(0, size - len(model)))
                continue
            off = rng.randrange(0, len(model) + 300)
            data = rng.randbytes(rng.choice([1, 4, 24, 100, BLOCK_SIZE, BLOCK_SIZE + 24]))
            f.write(off, data)
            if off > len(model):
                model.extend(bytes(off - len(model)))
            model[off : off + len(data)] = data
            assert f.read() == bytes(model)
    assert on_disk(vault, "random") == bytes(model)


def test_read_view_equals_the_plaintext_across_pieces_holes_and_the_end(vault: Vault) -> None:
    """The mount's read path (ciphertext read a piece at a time into a reused buffer): any
    range, across piece boundaries, into a hole, past the end, equals the plain bytes."""
    rng = random.Random(11)
    size = 100 * BLOCK_SIZE + 1234  # 3 pieces and a part, the last block short
    model = bytearray(rng.randbytes(size))
    vault.write_file("big", bytes(model))
    with vault.open_file("big", writable=True) as f:
        f.truncate(size + 80 * BLOCK_SIZE)  # a hole after the data
        f.write(size + 80 * BLOCK_SIZE - 3, b"end")
        model += bytes(80 * BLOCK_SIZE - 3) + b"end"
        cases = [(0, len(model)), (0, 1 << 20), (31 * BLOCK_SIZE + 5, 2 * BLOCK_SIZE),
                 (32 * BLOCK_SIZE - 1, 2), (size - 10, 20), (size + 4096, 8192),
                 (len(model) - 5, 100), (len(model), 10)]  # fmt: skip
        cases += [(rng.randrange(len(model)), rng.randrange(1, 300_000)) for _ in range(40)]
        for offset, length in cases:
            expected = bytes(model[offset : offset + length])
            assert bytes(f.read_view(offset, length)) == expected, (offset, length)
