"""Vaults written by real gocryptfs (tests/vectors/gocryptfs-upstream, INDEX.md, spec §13)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from vectors import (
    ABS_TARGET,
    BROKEN_FS,
    HKDF_BROKEN_CONTENT,
    HKDF_BROKEN_NAMES,
    LONGNAME_255,
    OTHER_KEYS,
    PASSWORD,
    REL_TARGET,
    STATUS_CONTENT,
    SUPPORTED_VAULTS,
    XRAY_AESGCM,
    XRAY_AESSIV,
    XRAY_ZERO5000_CIPHER,
    ExampleVault,
    copy_vector,
    file_to_symlink,
    vector_path,
)

from vaultsh.vault.errors import CorruptionError, VaultError
from vaultsh.vault.keys import parse_master_key
from vaultsh.vault.vault import Vault

# -- the supported example filesystems ----------------------------------------------------------------


def _expected_names(v: ExampleVault) -> dict[str, str]:
    """plain name -> cipher name, from the INDEX.md table."""
    table = {**v.symlinks, **v.files}
    return {plain: cipher for cipher, plain in table.items()}


@pytest.fixture(params=list(SUPPORTED_VAULTS))
def example(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[ExampleVault, Vault]:
    ex = SUPPORTED_VAULTS[request.param]
    root = copy_vector(ex.relpath, tmp_path)
    return ex, Vault.open(root, password=PASSWORD)


def test_example_listing(example: tuple[ExampleVault, Vault]) -> None:
    ex, v = example
    entries = v.listdir(include_bad=True)
    assert all(e.error is None for e in entries), [e for e in entries if e.error]
    got = {e.name: e.cipher_name for e in entries}
    assert got == _expected_names(ex)
    kinds = {e.name: e.kind for e in entries}
    assert kinds["abs"] == kinds["rel"] == "symlink"
    assert kinds["status.txt"] == "file"
    expected_plain = {"status.txt", "rel", "abs"} | ({LONGNAME_255} if ex.has_longname else set())
    assert {e.name for e in v.listdir()} == expected_plain
    # v0.9 and later have the 255-byte long name; v0.7 does not
    assert ex.has_longname == (ex.name not in ("v0.7", "v0.7-plaintextnames"))


def test_example_content(example: tuple[ExampleVault, Vault]) -> None:
    ex, v = example
    assert v.read_file("status.txt") == STATUS_CONTENT
    assert v.readlink("rel") == REL_TARGET
    assert v.readlink("abs") == ABS_TARGET
    st_ = v.stat("status.txt")
    assert st_.size == 10
    assert st_.cipher_size == ex.cipher_file_size
    assert v.stat("abs").size == len(ABS_TARGET)
    assert v.stat("rel").size == len(REL_TARGET)
    if ex.has_longname:
        assert v.read_file(LONGNAME_255) == STATUS_CONTENT
        assert v.stat(LONGNAME_255).cipher_size == ex.cipher_file_size


def test_example_encryption_reproduces_cipher_names(example: tuple[ExampleVault, Vault]) -> None:
    """Forward encryption of the plain names gives exactly the names gocryptfs wrote."""
    ex, v = example
    for plain, cipher in _expected_names(ex).items():
        assert v.cipher_path(plain) == v.cipherdir / cipher
        assert v.decrypt_cipher_path(cipher) == plain
    if ex.has_longname:
        hashed = next(c for c, p in ex.files.items() if p == LONGNAME_255)
        sidecar = (v.cipherdir / (hashed + ".name")).read_text()
        assert len(sidecar) == (342 if v.options.raw64 else 344)
        assert v.names.hash_long(sidecar) == hashed


def test_example_open_with_index_master_key(example: tuple[ExampleVault, Vault]) -> None:
    ex, v = example
    key = parse_master_key(ex.master_key)
    assert v.keys.master_key == key
    v2 = Vault.open(v.cipherdir, master_key=key)
    assert v2.read_file("status.txt") == STATUS_CONTENT
    assert v2.readlink("abs") == ABS_TARGET


def test_example_vault_is_writable(example: tuple[ExampleVault, Vault]) -> None:
    """The tests also run mkdir/rmdir and rename on the old vaults (spec §13)."""
    ex, v = example
    v.mkdir("newdir")
    v.write_file("newdir/" + "n" * 200, b"new content")
    v.rename("status.txt", "newdir/status2.txt")
    v.symlink("target", "newdir/ln")
    v2 = Vault.open(v.cipherdir, password=PASSWORD)
    assert {e.name for e in v2.listdir("newdir")} == {"n" * 200, "status2.txt", "ln"}
    assert v2.read_file("newdir/status2.txt") == STATUS_CONTENT
    assert v2.read_file("newdir/" + "n" * 200) == b"new content"
    assert v2.readlink("newdir/ln") == "target"
    if not v.options.raw64 and not v.options.plaintext_names:
        assert v.cipher_path("newdir").name.endswith("==")  # padded base64 (§6.4)
    v2.rename("newdir/status2.txt", "status.txt")
    for name in ("n" * 200, "ln"):
        v2.unlink(f"newdir/{name}")
    v2.rmdir("newdir")
    assert {e.name for e in v2.listdir()} == set(_expected_names(ex))
    assert v2.read_file("status.txt") == STATUS_CONTENT


def test_example_content_reference_tree(tmp_path: Path) -> None:
    root = copy_vector("tests/example_filesystems/content", tmp_path)
    assert (root / "status.txt").read_bytes() == STATUS_CONTENT
    assert os.readlink(root / "rel") == REL_TARGET
    assert os.readlink(root / "abs") == ABS_TARGET
    assert (root / LONGNAME_255).read_bytes() == STATUS_CONTENT


# -- gocryptfs-xray vaults -------------------------------------------------------------------------

_HEADER_RE = re.compile(r"Header: Version: (\d+), Id: ([0-9a-f]{32}), assuming (\S+) mode")
_BLOCK_RE = re.compile(r"Block +(\d+): IV: ([0-9a-f]+), Tag: ([0-9a-f]{32}), Offset: +(\d+) Len: (\d+)")


@pytest.mark.parametrize("relpath", [XRAY_AESGCM, XRAY_AESSIV], ids=["aesgcm", "aessiv"])
def test_xray_vault(relpath: str, tmp_path: Path) -> None:
    root = copy_vector(relpath, tmp_path)
    v = Vault.open(root, password=PASSWORD)
    assert v.keys.master_key == parse_master_key(OTHER_KEYS[relpath])
    entries = v.listdir(include_bad=True)
    assert [(e.name, e.cipher_name, e.error) for e in entries] == [
        ("zero5000", XRAY_ZERO5000_CIPHER[relpath], None)
    ]
    assert v.read_file("zero5000") == bytes(5000)
    assert v.stat("zero5000").size == 5000

    # what gocryptfs-xray printed for this very file
    xray = vector_path(relpath + ".xray.txt").read_text()
    header = _HEADER_RE.search(xray)
    assert header is not None
    blocks = [m.groups() for m in _BLOCK_RE.finditer(xray)]
    assert len(blocks) == 2
    raw = (root / XRAY_ZERO5000_CIPHER[relpath]).read_bytes()
    assert len(raw) == 5082
    assert int(header.group(1)) == 2 and raw[:2] == b"\x00\x02"
    assert raw[2:18].hex() == header.group(2)
    assert header.group(3) == v.content.aead.name
    siv = relpath == XRAY_AESSIV
    assert v.options.aessiv == siv
    for num, iv, tag, offset, length in blocks:
        off, n = int(offset), int(length)
        assert off == v.content.cipher_offset(int(num))
        blk = raw[off : off + n]
        assert len(blk) == n
        assert blk[:16].hex() == iv
        assert (blk[16:32] if siv else blk[-16:]).hex() == tag
    assert sum(int(b[4]) for b in blocks) + 18 == len(raw)
    # the xray master-key printout matches INDEX.md too
    mk = vector_path(relpath + ".masterkey.txt").read_text()
    assert "".join(mk.split()[4:]).replace("-", "") == OTHER_KEYS[relpath].replace("-", "")


# -- hkdf_sanity -----------------------------------------------------------------------------------


def test_hkdf_sanity_broken_content(tmp_path: Path) -> None:
    root = copy_vector(HKDF_BROKEN_CONTENT, tmp_path)
    v = Vault.open(root, password=PASSWORD)
    assert v.keys.master_key == parse_master_key(OTHER_KEYS[HKDF_BROKEN_CONTENT])
    assert v.options.plaintext_names and v.options.hkdf
    assert {e.name for e in v.listdir()} == {"status.txt"}
    with pytest.raises(CorruptionError):
        v.read_file("status.txt")


def test_hkdf_sanity_broken_names(tmp_path: Path) -> None:
    root = copy_vector(HKDF_BROKEN_NAMES, tmp_path)
    v = Vault.open(root, password=PASSWORD)
    assert v.keys.master_key == parse_master_key(OTHER_KEYS[HKDF_BROKEN_NAMES])
    assert v.listdir() == []
    bad = v.listdir(include_bad=True)
    assert [(e.cipher_name, e.error is not None) for e in bad] == [("L3yg-cJYAInDGg4TcjXrnw", True)]
    assert not v.exists("status.txt")
    with pytest.raises(VaultError):
        v.read_file("status.txt")


# -- fsck/broken_fs_v1.4 ----------------------------------------------------------------------------


@pytest.fixture
def broken_fs(tmp_path: Path) -> Vault:
    root = copy_vector(BROKEN_FS, tmp_path)
    # unlock with the INDEX key: the config uses N = 65536
    v = Vault.open(root, master_key=parse_master_key(OTHER_KEYS[BROKEN_FS]))
    # §13 names three symlinks; the vector stores them as regular files
    for name in ("good_symlink", "corrupt_symlink", "corrupt_symlink_2"):
        file_to_symlink(v.cipher_path(name))
    return v


def test_broken_fs_password_unlock(tmp_path: Path) -> None:
    root = copy_vector(BROKEN_FS, tmp_path)
    v = Vault.open(root, password=PASSWORD)
    assert v.keys.master_key == parse_master_key(OTHER_KEYS[BROKEN_FS])


def test_broken_fs_listing(broken_fs: Vault) -> None:
    entries = broken_fs.listdir(include_bad=True)
    bad = {e.cipher_name for e in entries if e.error}
    assert bad == {"invalid_file_name.3", "invalid_file_name_2", "invalid_file_name____1"}
    good = {e.name for e in broken_fs.listdir()}
    assert good == {
        "good_file",
        "good_dir",
        "good_symlink",
        "corrupt_file",
        "corrupt_file_2",
        "corrupt_symlink",
        "corrupt_symlink_2",
        "missing_diriv",
        "diriv_too_short",
        "diriv_too_long",
        "incomplete_file_1",
        "incomplete_file_2",
        "incomplete_file_3",
        "xattr_good",
        "xattr_corrupt_name",
        "xattr_corrupt_value",
    }
    kinds = {e.name: e.kind for e in entries if not e.error}
    assert kinds["good_dir"] == kinds["missing_diriv"] == "dir"
    assert kinds["good_symlink"] == "symlink"


def test_broken_fs_good_entries(broken_fs: Vault) -> None:
    assert broken_fs.read_file("good_file") is not None
    broken_fs.read_file("good_file")  # authenticates
    assert [e.name for e in broken_fs.listdir("good_dir")] == ["foo"]
    assert broken_fs.read_file("good_dir/foo") == b""
    assert broken_fs.readlink("good_symlink") == "/tmp"


@pytest.mark.parametrize("name", ["corrupt_file", "corrupt_file_2"])
def test_broken_fs_corrupt_files(broken_fs: Vault, name: str) -> None:
    with pytest.raises(CorruptionError):
        broken_fs.read_file(name)


@pytest.mark.parametrize("name", ["corrupt_symlink", "corrupt_symlink_2"])
def test_broken_fs_corrupt_symlinks(broken_fs: Vault, name: str) -> None:
    with pytest.raises(CorruptionError):
        broken_fs.readlink(name)


@pytest.mark.parametrize("name", ["missing_diriv", "diriv_too_short", "diriv_too_long"])
def test_broken_fs_bad_diriv(broken_fs: Vault, name: str) -> None:
    with pytest.raises(CorruptionError):
        broken_fs.listdir(name)
    with pytest.raises(CorruptionError):
        broken_fs.listdir(name, include_bad=True)


@pytest.mark.parametrize(
    ("name", "cipher_size"),
    [("incomplete_file_1", 8), ("incomplete_file_2", 18), ("incomplete_file_3", 1)],
)
def test_broken_fs_incomplete_files_are_empty(broken_fs: Vault, name: str, cipher_size: int) -> None:
    st_ = broken_fs.stat(name)
    assert st_.cipher_size == cipher_size
    assert st_.size == 0
    assert broken_fs.read_file(name) == b""
