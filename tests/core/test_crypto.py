"""Crypto primitives against the spec's known answers (§6.3, §12.2, §12.4, §12.6)."""

from __future__ import annotations

import hashlib
import os
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from hypothesis import given, settings
from hypothesis import strategies as st

from vaultsh.crypto.aead import AesGcm, AesSiv, AuthenticationError, XChaCha20Poly1305
from vaultsh.crypto.eme import EME
from vaultsh.crypto.kdf import hkdf_sha256
from vaultsh.vault.keys import INFO_EME, INFO_GCM, INFO_SIV, INFO_XCHACHA, FormatOptions, Keys

ZERO_KEY = bytes(32)

# -- §12.2 HKDF subkeys of the all-zero master key --------------------------------------------

HKDF_ZERO = {
    INFO_EME: "9ba3cddd48c6339c6e56ebe85f0281d6e9051be4104176e65cb0f8a6f77ae6b4",
    INFO_GCM: "ab893c7a9f8683d8c56296fdd109aa8d73c1937d112d1cf89923f9d175fbd782",
    INFO_SIV: "aab6744f44e669aad9501e0416d8415e050afdbee2f6b096a920cca429f0416277b01ac99fa0f1a4179f93d2"
    "b9baf48f252e0c451a8e9a649859016070750426",
    INFO_XCHACHA: "e8ba539fa490653147a44ceb778a005eeb05de1828e6c7f2c16d4239a99f85bf",
}
LEGACY_SIV_ZERO = (
    "5046adc1dba838867b2bbbfdd0c3423e58b57970b5267a90f57960924a87f196"
    "0a6a85eaa642dac835424b5d7c8d637c00408c7a73da672b7f498521420b6dd3"
)


def test_hkdf_info_strings_are_the_spec_ones() -> None:
    assert INFO_EME == b"EME filename encryption"
    assert INFO_GCM == b"AES-GCM file content encryption"
    assert INFO_SIV == b"AES-SIV file content encryption"
    assert INFO_XCHACHA == b"XChaCha20-Poly1305 file content encryption"


@pytest.mark.parametrize("info", list(HKDF_ZERO), ids=lambda i: i.decode())
def test_hkdf_subkeys_of_zero_master_key(info: bytes) -> None:
    expected = bytes.fromhex(HKDF_ZERO[info])
    assert hkdf_sha256(ZERO_KEY, info, len(expected)) == expected


def test_legacy_siv_key_is_sha512_of_master_key() -> None:
    assert hashlib.sha512(ZERO_KEY).hexdigest() == LEGACY_SIV_ZERO


# -- §6.3 EME ----------------------------------------------------------------------------------


def test_eme_known_answer() -> None:
    eme = EME(ZERO_KEY)
    assert eme.encrypt(bytes(16), bytes(16)).hex() == "f1b9ce8ca15a4ba9fb476905434b9fd3"
    assert eme.decrypt(bytes(16), bytes.fromhex("f1b9ce8ca15a4ba9fb476905434b9fd3")) == bytes(16)


def _ref_dbl(x: bytes) -> bytes:
    """Spec §6.3 doubling, written byte by byte as the spec states it."""
    out = bytearray(16)
    out[0] = (x[0] << 1) & 0xFF
    if x[15] & 0x80:
        out[0] ^= 0x87
    for j in range(1, 16):
        out[j] = ((x[j] << 1) & 0xFF) | (x[j - 1] >> 7)
    return bytes(out)


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _ref_eme(key: bytes, tweak: bytes, data: bytes, encrypt: bool) -> bytes:
    """A literal transcription of the nine steps of spec §6.3 (independent of vaultsh)."""
    cipher = Cipher(algorithms.AES(key), modes.ECB())

    def enc(b: bytes) -> bytes:
        return cipher.encryptor().update(b)

    def dec(b: bytes) -> bytes:
        return cipher.decryptor().update(b)

    f = enc if encrypt else dec
    blocks = [data[i : i + 16] for i in range(0, len(data), 16)]
    m = len(blocks)
    lv = [_ref_dbl(enc(bytes(16)))]
    for _ in range(1, m):
        lv.append(_ref_dbl(lv[-1]))
    ppp = [f(_xor(blocks[j], lv[j])) for j in range(m)]
    mp = tweak
    for p in ppp:
        mp = _xor(mp, p)
    mc = f(mp)
    mm = _xor(mp, mc)
    ccc = [b""] * m
    for j in range(1, m):
        mm = _ref_dbl(mm)
        ccc[j] = _xor(ppp[j], mm)
    c0 = _xor(mc, tweak)
    for j in range(1, m):
        c0 = _xor(c0, ccc[j])
    ccc[0] = c0
    return b"".join(_xor(f(ccc[j]), lv[j]) for j in range(m))


@pytest.mark.parametrize("m", range(1, 129))
def test_eme_round_trip_all_block_counts(m: int) -> None:
    key = hashlib.sha256(b"eme key %d" % m).digest()
    tweak = hashlib.sha256(b"tweak %d" % m).digest()[:16]
    data = (hashlib.sha512(b"data %d" % m).digest() * (m // 4 + 1))[: 16 * m]
    eme = EME(key)
    ct = eme.encrypt(tweak, data)
    assert len(ct) == len(data)
    assert ct != data
    assert eme.decrypt(tweak, ct) == data
    # and the same bytes as the step-by-step transcription of the spec
    assert ct == _ref_eme(key, tweak, data, encrypt=True)
    assert _ref_eme(key, tweak, ct, encrypt=False) == data


@settings(max_examples=60, deadline=None)
@given(
    key=st.binary(min_size=32, max_size=32),
    tweak=st.binary(min_size=16, max_size=16),
    m=st.integers(1, 20),
    seed=st.binary(min_size=16, max_size=16),
)
def test_eme_matches_reference_property(key: bytes, tweak: bytes, m: int, seed: bytes) -> None:
    data = (seed * m)[: 16 * m]
    data = hashlib.sha512(seed).digest()[:16] + data[16:]
    eme = EME(key)
    ct = eme.encrypt(tweak, data)
    assert ct == _ref_eme(key, tweak, data, encrypt=True)
    assert eme.decrypt(tweak, ct) == data


def test_eme_tweak_and_every_block_matter() -> None:
    eme = EME(ZERO_KEY)
    data = bytes(range(64))
    base = eme.encrypt(bytes(16), data)
    assert eme.encrypt(b"\x01" + bytes(15), data) != base
    # wide-block: changing the last input block changes every output block
    changed = eme.encrypt(bytes(16), data[:-1] + b"\xff")
    for i in range(0, 64, 16):
        assert changed[i : i + 16] != base[i : i + 16]


@settings(max_examples=40, deadline=None)
@given(
    key=st.binary(min_size=32, max_size=32),
    tweak=st.binary(min_size=16, max_size=16),
    sizes=st.lists(st.integers(1, 20), min_size=1, max_size=12),
    seed=st.binary(min_size=1, max_size=8),
)
def test_eme_batch_matches_single(key: bytes, tweak: bytes, sizes: list[int], seed: bytes) -> None:
    """encrypt_many/decrypt_many (used for listings) give the same bytes as one call per item."""
    eme = EME(key)
    items = [hashlib.shake_256(seed + bytes([i])).digest(16 * m) for i, m in enumerate(sizes)]
    enc = eme.encrypt_many(tweak, items)
    assert enc == [eme.encrypt(tweak, d) for d in items]
    assert eme.decrypt_many(tweak, enc) == items
    assert eme.decrypt_many(tweak, items) == [eme.decrypt(tweak, d) for d in items]
    assert eme.encrypt_many(tweak, []) == []


@pytest.mark.parametrize("size", [0, 15, 17, 16 * 129])
def test_eme_rejects_bad_lengths(size: int) -> None:
    with pytest.raises(ValueError):
        EME(ZERO_KEY).encrypt(bytes(16), bytes(size))


def test_eme_rejects_bad_key_and_tweak() -> None:
    with pytest.raises(ValueError):
        EME(bytes(16))
    with pytest.raises(ValueError):
        EME(ZERO_KEY).encrypt(bytes(15), bytes(16))


# -- §12.4 content blocks -----------------------------------------------------------------------

FILE_ID = b"\x02" * 16


def _ad(block_no: int) -> bytes:
    return struct.pack(">Q", block_no) + FILE_ID


BLOCK_VECTORS = {
    "gcm-block0": (
        "gcm",
        0,
        "01010101010101010101010101010101977235e4b6a92c8463ce8b97c2600f5675dadc4c78",
    ),
    "gcm-block1": (
        "gcm",
        1,
        "01010101010101010101010101010101977235e4b66ff994c89393501ca9e12b88dc9e29af",
    ),
    "siv-block0": (
        "siv",
        0,
        "01010101010101010101010101010101da7e4c7a6462963f4d79bcae910fd81826c6dfc57e",
    ),
    "xchacha-block0": (
        "xchacha",
        0,
        "0101010101010101010101010101010101010101010101014a3098b954d2d1d305f50ae480c9ebd68306fbd612",
    ),
}


def _aead(kind: str) -> AesGcm | AesSiv | XChaCha20Poly1305:
    if kind == "gcm":
        return AesGcm(bytes.fromhex(HKDF_ZERO[INFO_GCM]))
    if kind == "siv":
        return AesSiv(bytes.fromhex(HKDF_ZERO[INFO_SIV]))
    return XChaCha20Poly1305(bytes.fromhex(HKDF_ZERO[INFO_XCHACHA]))


@pytest.mark.parametrize("vector", list(BLOCK_VECTORS))
def test_block_known_answer(vector: str) -> None:
    kind, block_no, expected_hex = BLOCK_VECTORS[vector]
    aead = _aead(kind)
    expected = bytes.fromhex(expected_hex)
    nonce = b"\x01" * aead.nonce_size
    assert aead.seal(b"hello", _ad(block_no), nonce) == expected
    assert aead.open(expected, _ad(block_no)) == b"hello"
    assert len(expected) == aead.overhead + 5


@pytest.mark.parametrize("kind", ["gcm", "siv", "xchacha"])
def test_block_vectors_via_keys(kind: str) -> None:
    """Keys(zero master key) picks the same subkeys and cipher as the vectors."""
    opts = FormatOptions(aessiv=kind == "siv", xchacha=kind == "xchacha")
    aead = Keys(ZERO_KEY, opts).content
    name = f"{kind}-block0"
    expected = bytes.fromhex(BLOCK_VECTORS[name][2])
    assert aead.seal(b"hello", _ad(0), b"\x01" * aead.nonce_size) == expected


def test_layouts_and_overheads() -> None:
    assert (_aead("gcm").nonce_size, _aead("gcm").overhead) == (16, 32)
    assert (_aead("siv").nonce_size, _aead("siv").overhead) == (16, 32)
    assert (_aead("xchacha").nonce_size, _aead("xchacha").overhead) == (24, 40)
    assert _aead("gcm").name == "AES-GCM-256"
    assert _aead("siv").name == "AES-SIV-512"
    assert _aead("xchacha").name == "XChaCha20-Poly1305"


@pytest.mark.parametrize("kind", ["gcm", "siv", "xchacha"])
def test_random_nonces_differ(kind: str) -> None:
    aead = _aead(kind)
    a = aead.seal(b"same", _ad(0))
    b = aead.seal(b"same", _ad(0))
    assert a[: aead.nonce_size] != b[: aead.nonce_size]
    assert aead.open(a, _ad(0)) == aead.open(b, _ad(0)) == b"same"


@pytest.mark.parametrize("vector", list(BLOCK_VECTORS))
def test_tampered_block_fails(vector: str) -> None:
    kind, block_no, expected_hex = BLOCK_VECTORS[vector]
    aead = _aead(kind)
    block = bytes.fromhex(expected_hex)
    for i in range(len(block)):
        bad = bytearray(block)
        bad[i] ^= 0x01
        with pytest.raises(AuthenticationError):
            aead.open(bytes(bad), _ad(block_no))
    # wrong block number, wrong file ID, truncation, wrong key
    with pytest.raises(AuthenticationError):
        aead.open(block, _ad(block_no + 1))
    with pytest.raises(AuthenticationError):
        aead.open(block, struct.pack(">Q", block_no) + b"\x03" * 16)
    with pytest.raises(AuthenticationError):
        aead.open(block[:-1], _ad(block_no))
    other = {"gcm": AesGcm, "siv": AesSiv, "xchacha": XChaCha20Poly1305}[kind]
    with pytest.raises(AuthenticationError):
        other(os.urandom(64 if kind == "siv" else 32)).open(block, _ad(block_no))


def test_gcm_12_byte_nonce_for_legacy_key_wrap() -> None:
    aead = AesGcm(ZERO_KEY, nonce_size=12)
    sealed = aead.seal(bytes(32), bytes(8))
    assert len(sealed) == 60  # the legacy EncryptedKey size (§3.5)
    assert aead.open(sealed, bytes(8)) == bytes(32)


# -- §12.6 AES-SIV known answer ----------------------------------------------------------------

SIV_KAT = "ad7a4010649a84d8c1dd5f752e935eed57d45b8b10008f3834"


def test_aes_siv_known_answer_pyca() -> None:
    key = b"\x01" * 32
    nonce = b"\x02" * 16
    pt = bytes(range(1, 10))
    assert AESSIV(key).encrypt(pt, [bytes(24), nonce]).hex() == SIV_KAT


def test_aes_siv_known_answer_wrapper() -> None:
    key = b"\x01" * 32
    nonce = b"\x02" * 16
    pt = bytes(range(1, 10))
    sealed = AesSiv(key).seal(pt, bytes(24), nonce)
    assert sealed == nonce + bytes.fromhex(SIV_KAT)
    assert AesSiv(key).open(sealed, bytes(24)) == pt
    bad = bytearray(sealed)
    bad[0] ^= 1  # the nonce is authenticated (second AD element)
    with pytest.raises(AuthenticationError):
        AesSiv(key).open(bytes(bad), bytes(24))
