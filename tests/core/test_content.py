"""Content layer: size mapping (§5.2), header parsing (§5.1), blocks and holes (§5.3)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vaultsh.vault.content import (
    BLOCK_SIZE,
    HEADER_LEN,
    ContentCodec,
    block_ad,
    make_header,
    new_file_id,
    parse_header,
)
from vaultsh.vault.errors import CorruptionError
from vaultsh.vault.keys import FormatOptions, Keys

ZERO_KEY = bytes(32)


def _codec(kind: str = "gcm", key: bytes = ZERO_KEY) -> ContentCodec:
    opts = FormatOptions(aessiv=kind == "siv", xchacha=kind == "xchacha")
    return ContentCodec(Keys(key, opts).content)


CIPHERS = ["gcm", "siv", "xchacha"]

# -- §5.2 size mapping ---------------------------------------------------------------------------

GCM_SIZES = [
    (0, 0),
    (1, 51),
    (5, 55),
    (4096, 4146),
    (4097, 4179),
    (5000, 5082),
    (10000, 10114),
    (12299, 12445),
    (20000, 20178),
]
XCHACHA_SIZES = [(0, 0), (1, 59), (2, 60), (10, 68), (1 << 20, 18 + 256 * 4136)]


@pytest.mark.parametrize("kind", ["gcm", "siv"])
@pytest.mark.parametrize(("plain", "cipher"), GCM_SIZES)
def test_size_examples_gcm_siv(kind: str, plain: int, cipher: int) -> None:
    c = _codec(kind)
    assert c.plain_to_cipher_size(plain) == cipher
    assert c.cipher_to_plain_size(cipher) == plain


@pytest.mark.parametrize(("plain", "cipher"), XCHACHA_SIZES)
def test_size_examples_xchacha(plain: int, cipher: int) -> None:
    c = _codec("xchacha")
    assert c.plain_to_cipher_size(plain) == cipher
    assert c.cipher_to_plain_size(cipher) == plain


def test_block_geometry() -> None:
    assert (HEADER_LEN, BLOCK_SIZE) == (18, 4096)
    for kind, overhead in [("gcm", 32), ("siv", 32), ("xchacha", 40)]:
        c = _codec(kind)
        assert c.overhead == overhead
        assert c.cipher_block == 4096 + overhead
        assert c.cipher_offset(0) == 18
        assert c.cipher_offset(3) == 18 + 3 * (4096 + overhead)


@pytest.mark.parametrize("kind", ["gcm", "xchacha"])
@given(p=st.integers(0, 10**9))
@settings(max_examples=300, deadline=None)
def test_size_mapping_inverse_property(kind: str, p: int) -> None:
    c = _codec(kind)
    cs = c.plain_to_cipher_size(p)
    assert c.cipher_to_plain_size(cs) == p
    if p:
        blocks = -(-p // BLOCK_SIZE)
        assert cs == HEADER_LEN + p + blocks * c.overhead


@pytest.mark.parametrize("kind", ["gcm", "xchacha"])
def test_cipher_to_plain_degenerate(kind: str) -> None:
    c = _codec(kind)
    o = c.overhead
    for small in range(0, 19):  # empty, corrupt (<18) or header-only (18)
        assert c.cipher_to_plain_size(small) == 0
    # a last block too short to hold a byte counts as one byte
    for r in range(1, o + 1):
        assert c.cipher_to_plain_size(HEADER_LEN + r) == 1
        assert c.cipher_to_plain_size(HEADER_LEN + c.cipher_block + r) == BLOCK_SIZE + 1
    assert c.cipher_to_plain_size(HEADER_LEN + o + 1) == 1


# -- §5.1 header -----------------------------------------------------------------------------------


def test_header_round_trip() -> None:
    fid = new_file_id()
    assert len(fid) == 16
    h = make_header(fid)
    assert h == b"\x00\x02" + fid and len(h) == 18
    assert parse_header(h, "f") == fid
    assert parse_header(h + b"extra", "f") == fid
    assert new_file_id() != fid


@pytest.mark.parametrize(
    "raw",
    [
        bytes(18),  # all zero
        b"\x00\x01" + b"\x07" * 16,  # version 1
        b"\x00\x03" + b"\x07" * 16,  # version 3
        b"\x02\x00" + b"\x07" * 16,  # little-endian 2
        b"\x00\x02" + bytes(16),  # zero file ID
        b"\x00\x02" + b"\x07" * 15,  # short
        b"",
        b"\x00",
    ],
    ids=["all-zero", "v1", "v3", "le", "zero-id", "short", "empty", "one-byte"],
)
def test_header_refusals(raw: bytes) -> None:
    with pytest.raises(CorruptionError):
        parse_header(raw, "f")


# -- blocks and holes (§5.3) --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", CIPHERS)
def test_block_round_trip_and_ad(kind: str) -> None:
    c = _codec(kind)
    fid = new_file_id()
    pt = os.urandom(BLOCK_SIZE)
    blk = c.encrypt_block(pt, 5, fid)
    assert len(blk) == c.cipher_block
    assert c.decrypt_block(blk, 5, fid) == pt
    with pytest.raises(CorruptionError):
        c.decrypt_block(blk, 4, fid)  # block number is authenticated
    with pytest.raises(CorruptionError):
        c.decrypt_block(blk, 5, new_file_id())  # file ID is authenticated
    assert block_ad(5, fid) == (5).to_bytes(8, "big") + fid


@pytest.mark.parametrize("kind", CIPHERS)
def test_encrypt_decrypt_blocks(kind: str) -> None:
    c = _codec(kind)
    fid = new_file_id()
    for n in [1, 4095, 4096, 4097, 3 * 4096, 3 * 4096 + 7]:
        pt = os.urandom(n)
        ct = b"".join(
            c.encrypt_block(pt[off : off + 4096], 2 + off // 4096, fid) for off in range(0, n, 4096)
        )
        assert len(ct) == c.plain_to_cipher_size(n) - HEADER_LEN
        assert c.decrypt_blocks(ct, 2, fid) == pt
        with pytest.raises(CorruptionError):
            c.decrypt_blocks(ct, 0, fid)


@pytest.mark.parametrize("kind", CIPHERS)
def test_full_zero_block_is_a_hole(kind: str) -> None:
    c = _codec(kind)
    fid = new_file_id()
    hole = bytes(c.cipher_block)
    assert c.decrypt_block(hole, 0, fid) == bytes(BLOCK_SIZE)
    assert c.decrypt_block(hole, 7, fid) == bytes(BLOCK_SIZE)
    tail = c.encrypt_block(b"end", 2, fid)
    data = hole + hole + tail
    assert c.decrypt_blocks(data, 0, fid) == bytes(2 * BLOCK_SIZE) + b"end"


@pytest.mark.parametrize("kind", CIPHERS)
@pytest.mark.parametrize("short", [1, 33, 41, 100, 4095 + 32])
def test_short_zero_block_is_not_a_hole(kind: str, short: int) -> None:
    c = _codec(kind)
    fid = new_file_id()
    blk = bytes(min(short, c.cipher_block - 1))
    with pytest.raises(CorruptionError):
        c.decrypt_block(blk, 0, fid)
    with pytest.raises(CorruptionError):
        c.decrypt_blocks(blk, 0, fid)
    full = c.encrypt_block(os.urandom(BLOCK_SIZE), 0, fid)
    with pytest.raises(CorruptionError):
        c.decrypt_blocks(full + blk, 0, fid)


@pytest.mark.parametrize("kind", CIPHERS)
def test_zero_nonce_with_data_is_refused(kind: str) -> None:
    """A full block with a zero nonce but other non-zero bytes is not a hole."""
    c = _codec(kind)
    fid = new_file_id()
    blk = bytearray(c.cipher_block)
    blk[-1] = 1
    with pytest.raises(CorruptionError):
        c.decrypt_block(bytes(blk), 0, fid)
    with pytest.raises(CorruptionError):
        c.decrypt_blocks(bytes(blk), 0, fid)
    # a sealed block whose nonce is all zero is refused too
    sealed = c.encrypt_block(b"data", 0, fid, nonce=bytes(c.aead.nonce_size))
    with pytest.raises(CorruptionError):
        c.decrypt_block(sealed, 0, fid)
    with pytest.raises(CorruptionError):
        c.decrypt_blocks(sealed, 0, fid)


@pytest.mark.parametrize("kind", CIPHERS)
def test_truncated_block(kind: str) -> None:
    c = _codec(kind)
    fid = new_file_id()
    blk = c.encrypt_block(b"x", 0, fid)
    for cut in range(1, len(blk)):
        with pytest.raises(CorruptionError):
            c.decrypt_block(blk[:cut], 0, fid)
        with pytest.raises(CorruptionError):
            c.decrypt_blocks(blk[:cut], 0, fid)
