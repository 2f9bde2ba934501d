"""Tampering with any stored byte is detected, never turned into wrong plaintext (§5, §6, §3.5)."""

from __future__ import annotations

import base64
import json
import os
import random
from pathlib import Path
from typing import Any

import pytest
from vault_factory import NewVault
from vectors import SUPPORTED_VAULTS, copy_vector

from vaultsh.vault.config import CONF_NAME
from vaultsh.vault.content import HEADER_LEN
from vaultsh.vault.errors import CorruptionError, PasswordIncorrectError, VaultError
from vaultsh.vault.names import DIRIV_NAME, b64_decode, b64_encode
from vaultsh.vault.vault import Vault

PW = b"pw"
CIPHERS: dict[str, dict[str, Any]] = {"gcm": {}, "siv": {"aessiv": True}, "xchacha": {"xchacha": True}}
SIZE = 10000


@pytest.fixture(params=list(CIPHERS))
def vault(request: pytest.FixtureRequest, tmp_path: Path, new_vault: NewVault) -> Vault:
    return new_vault(tmp_path / "c", **CIPHERS[request.param])


def _positions(v: Vault, cipher_len: int) -> list[int]:
    """Every header byte plus ~50 positions covering nonces, ciphertext and tags of each block."""
    ns = v.content.aead.nonce_size
    cb = v.content.cipher_block
    pos = set(range(HEADER_LEN))
    rng = random.Random(1234)
    for start in range(HEADER_LEN, cipher_len, cb):
        end = min(start + cb, cipher_len)
        pos |= {start, start + ns - 1, start + ns, start + ns + 15, end - 16, end - 1}
        pos |= {rng.randrange(start, end) for _ in range(10)}
    return sorted(pos)


def test_single_byte_flips_are_detected(vault: Vault) -> None:
    data = os.urandom(SIZE)
    vault.write_file("f", data)
    cpath = vault.cipher_path("f")
    orig = cpath.read_bytes()
    assert len(orig) == vault.content.plain_to_cipher_size(SIZE)
    positions = _positions(vault, len(orig))
    assert len(positions) >= 50
    for i in positions:
        for mask in (0x01, 0x80):
            bad = bytearray(orig)
            bad[i] ^= mask
            cpath.write_bytes(bytes(bad))
            with pytest.raises(CorruptionError):
                vault.read_file("f")
            # a read of just another block still never returns wrong bytes
            try:
                part = vault.read_file("f", 0, 100)
            except CorruptionError:
                pass
            else:
                assert part == data[:100]
    cpath.write_bytes(orig)
    assert vault.read_file("f") == data


def test_block_swap_and_splice_are_detected(vault: Vault) -> None:
    vault.write_file("a", os.urandom(SIZE))
    vault.write_file("b", os.urandom(SIZE))
    pa, pb = vault.cipher_path("a"), vault.cipher_path("b")
    ra, rb = pa.read_bytes(), pb.read_bytes()
    cb = vault.content.cipher_block
    b0 = slice(HEADER_LEN, HEADER_LEN + cb)
    b1 = slice(HEADER_LEN + cb, HEADER_LEN + 2 * cb)
    swapped = bytearray(ra)
    swapped[b0], swapped[b1] = ra[b1], ra[b0]
    pa.write_bytes(bytes(swapped))
    with pytest.raises(CorruptionError):
        vault.read_file("a")
    spliced = bytearray(ra)
    spliced[b0] = rb[b0]  # same position, other file ID
    pa.write_bytes(bytes(spliced))
    with pytest.raises(CorruptionError):
        vault.read_file("a")
    header_swap = rb[:HEADER_LEN] + ra[HEADER_LEN:]
    pa.write_bytes(header_swap)
    with pytest.raises(CorruptionError):
        vault.read_file("a")


def test_mid_block_truncation_is_detected(vault: Vault) -> None:
    vault.write_file("t", os.urandom(SIZE))
    cpath = vault.cipher_path("t")
    orig = cpath.read_bytes()
    for cut in (1, 16, 17, 500):
        cpath.write_bytes(orig[:-cut])
        with pytest.raises(CorruptionError):
            vault.read_file("t")


def test_zeroed_block_is_not_accepted_unless_full_hole(vault: Vault) -> None:
    vault.write_file("z", os.urandom(SIZE))
    cpath = vault.cipher_path("z")
    orig = cpath.read_bytes()
    cb = vault.content.cipher_block
    # zeroing only the nonce of a block
    bad = bytearray(orig)
    bad[HEADER_LEN : HEADER_LEN + vault.content.aead.nonce_size] = bytes(vault.content.aead.nonce_size)
    cpath.write_bytes(bytes(bad))
    with pytest.raises(CorruptionError):
        vault.read_file("z")
    # zeroing the short last block
    last = HEADER_LEN + 2 * cb
    bad = bytearray(orig)
    bad[last:] = bytes(len(orig) - last)
    cpath.write_bytes(bytes(bad))
    with pytest.raises(CorruptionError):
        vault.read_file("z")


# -- names ------------------------------------------------------------------------------------------


def _flip_char(c: str) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    flipped = chr(ord(c) ^ 0x01)
    return flipped if flipped not in "/\0" else alphabet[(alphabet.index(c) + 1) % 64]


@pytest.mark.parametrize("opts", [{}, {"deterministic_names": True}], ids=["diriv", "deterministic"])
def test_cipher_name_flips(tmp_path: Path, opts: dict[str, Any], new_vault: NewVault) -> None:
    v = new_vault(tmp_path / "c", **opts)
    v.write_file("victim.txt", b"secret")
    cname = v.cipher_path("victim.txt").name
    for i in range(len(cname)):
        bad_name = cname[:i] + _flip_char(cname[i]) + cname[i + 1 :]
        os.rename(v.cipherdir / cname, v.cipherdir / bad_name)
        visible = v.listdir()
        assert "victim.txt" not in {e.name for e in visible}, (i, bad_name)
        everything = v.listdir(include_bad=True)
        assert len(everything) == 1
        entry = everything[0]
        assert entry.cipher_name == bad_name
        if entry.error is None:
            assert entry.name != "victim.txt"
            assert [e.name for e in visible] == [entry.name]
        else:
            assert visible == []
        assert not v.exists("victim.txt")
        os.rename(v.cipherdir / bad_name, v.cipherdir / cname)
    assert v.read_file("victim.txt") == b"secret"


def test_name_sidecar_flips(tmp_path: Path, new_vault: NewVault) -> None:
    v = new_vault(tmp_path / "c")
    long = "x" * 200
    v.write_file(long, b"long")
    hashed = v.cipher_path(long).name
    sidecar = v.cipherdir / (hashed + ".name")
    orig = sidecar.read_bytes()
    os.chmod(sidecar, 0o644)
    for i in range(0, len(orig), 7):
        bad = bytearray(orig)
        bad[i] ^= 0x01
        sidecar.write_bytes(bytes(bad))
        assert v.listdir() == []
        flagged = v.listdir(include_bad=True)
        assert [(e.cipher_name, e.error is not None) for e in flagged] == [(hashed, True)]
    for bad_content in (b"", orig + b"\n", orig[:-1], b"A" * 345):
        sidecar.write_bytes(bad_content)
        assert v.listdir() == []
    sidecar.write_bytes(orig)
    assert [e.name for e in v.listdir()] == [long]
    # flipping the hashed object name itself loses the sidecar
    bad_hashed = hashed[:-1] + _flip_char(hashed[-1])
    os.rename(v.cipherdir / hashed, v.cipherdir / bad_hashed)
    assert v.listdir() == []
    assert [e.cipher_name for e in v.listdir(include_bad=True)] == [bad_hashed]


def test_diriv_flip_breaks_names_not_content(tmp_path: Path, new_vault: NewVault) -> None:
    v = new_vault(tmp_path / "c")
    v.mkdir("d")
    v.write_file("d/f", b"content")
    diriv = v.cipher_path("d") / DIRIV_NAME
    iv = diriv.read_bytes()
    os.chmod(diriv, 0o644)
    diriv.write_bytes(bytes([iv[0] ^ 1]) + iv[1:])
    fresh = Vault.open(v.cipherdir, password=PW)  # no cached IV
    # A wrong IV gives random plaintext; about 1 in 256 times its last byte is 0x01, valid
    # PKCS#7, and a garbage name shows (gocryptfs would show it too). It is never "f".
    entries = fresh.listdir("d", include_bad=True)
    assert len(entries) == 1
    assert entries[0].name != "f"
    if entries[0].error is None:
        assert fresh.names.encrypt(os.fsencode(entries[0].name), fresh.dir_iv(diriv.parent)) == (
            entries[0].cipher_name
        )
    else:
        assert fresh.listdir("d") == []
    # The content is untouched: through the right cipher path the file still decrypts.
    with fresh.open_cipher_file(diriv.parent / entries[0].cipher_name, "d/f") as f:
        assert f.read() == b"content"


# -- config -----------------------------------------------------------------------------------------


def _rewrite_conf(root: Path, fn: object) -> None:
    path = root / CONF_NAME
    d = json.loads(path.read_text())
    fn(d)  # type: ignore[operator]
    os.chmod(path, 0o600)
    path.write_text(json.dumps(d, indent="\t") + "\n")


def test_config_key_and_salt_flips(tmp_path: Path, new_vault: NewVault) -> None:
    v = new_vault(tmp_path / "c")
    root = v.cipherdir
    path = root / CONF_NAME
    orig = path.read_bytes()
    d0 = json.loads(orig)
    ek = base64.b64decode(d0["EncryptedKey"])
    salt = base64.b64decode(d0["ScryptObject"]["Salt"])
    assert len(ek) == 64 and len(salt) == 32
    for field, value in (("EncryptedKey", ek), ("Salt", salt)):
        for i in range(len(value)):
            bad = bytearray(value)
            bad[i] ^= 0x01
            enc = base64.b64encode(bytes(bad)).decode()

            def mutate(d: dict[str, object], enc: str = enc, field: str = field) -> None:
                if field == "Salt":
                    d["ScryptObject"]["Salt"] = enc  # type: ignore[index]
                else:
                    d[field] = enc

            _rewrite_conf(root, mutate)
            with pytest.raises(PasswordIncorrectError):
                Vault.open(root, password=PW)
    path.write_bytes(orig)
    assert Vault.open(root, password=PW).keys.master_key == v.keys.master_key


def test_config_text_flips(tmp_path: Path, new_vault: NewVault) -> None:
    v = new_vault(tmp_path / "c")
    path = v.cipherdir / CONF_NAME
    text = path.read_text()
    os.chmod(path, 0o600)
    d = json.loads(text)
    for field in (d["EncryptedKey"], d["ScryptObject"]["Salt"]):
        start = text.index(field)
        for i in range(start, start + len(field), 5):
            path.write_text(text[:i] + _flip_char(text[i]) + text[i + 1 :])
            with pytest.raises(VaultError):
                Vault.open(v.cipherdir, password=PW)
    path.write_text(text)
    Vault.open(v.cipherdir, password=PW)


# -- symlinks ---------------------------------------------------------------------------------------


def test_symlink_target_flips(vault: Vault) -> None:
    vault.symlink("/some/target/path", "ln")
    cpath = vault.cipher_path("ln")
    stored = os.readlink(cpath)
    raw = b64_decode(stored, True)
    for i in range(len(raw)):
        bad = bytearray(raw)
        bad[i] ^= 0x01
        os.unlink(cpath)
        os.symlink(b64_encode(bytes(bad), True), cpath)
        with pytest.raises(CorruptionError):
            vault.readlink("ln")
    for i in range(0, len(stored), 3):
        os.unlink(cpath)
        os.symlink(stored[:i] + _flip_char(stored[i]) + stored[i + 1 :], cpath)
        with pytest.raises(CorruptionError):
            vault.readlink("ln")
    os.unlink(cpath)
    os.symlink(stored, cpath)
    assert vault.readlink("ln") == "/some/target/path"


def test_cipher_name_flips_padded_legacy_vault(tmp_path: Path) -> None:
    """The same on a v0.9 vault written by gocryptfs (padded base64, no HKDF)."""
    root = copy_vector(SUPPORTED_VAULTS["v0.9"].relpath, tmp_path)
    v = Vault.open(root, password=b"test")
    cname = v.cipher_path("status.txt").name
    assert cname.endswith("==")
    for i in range(len(cname)):
        bad_name = cname[:i] + _flip_char(cname[i]) + cname[i + 1 :]
        os.rename(root / cname, root / bad_name)
        assert "status.txt" not in {e.name for e in v.listdir()}
        flagged = [e for e in v.listdir(include_bad=True) if e.cipher_name == bad_name]
        assert len(flagged) == 1
        assert flagged[0].error is not None or flagged[0].name != "status.txt"
        os.rename(root / bad_name, root / cname)
    assert v.read_file("status.txt") == b"It works!\n"
