"""Reverse-mode derivations and the encrypted view against gocryptfs -reverse output (spec §9, §12.5)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from vectors import PASSWORD, copy_vector

from vaultsh.vault.keys import FormatOptions
from vaultsh.vault.reverse import ReverseView, block_nonce, derive
from vaultsh.vault.vault import Vault

ZERO_KEY = bytes(32)

# INDEX.md "Reverse example vaults": cipher path -> (kind, md5 of content or symlink target),
# as produced by a real gocryptfs -reverse mount.
V13_REVERSE_VIEW = {
    "3-4cq_ip9yXRxYXRjtyMtg": ("symlink", "DiTWQjcUUhDzkQk24HZ1TD4j3VCJTPO9qqCkVp6AHQOCNC1RKdLeNg"),
    "Hc6uo8KX5qYbx93JPJ9kAw": ("symlink", "_qRokR2vJjQ7DkHMOWKPFq-WNEhGkYz7mE8jc3CCuQHdPn2fVd6J-KRd"),
    "gocryptfs.conf": ("file", "386e16b0a91acfaf110532476002d0e8"),
    "gocryptfs.diriv": ("file", "c61bd575cfbb88f33838ab94299f828e"),
    "gocryptfs.longname.SAJKzNIeTgujDDcy7NJMMbd3E30dIiddsX-tRjFX1zk": (
        "file",
        "3c64997992b97cf1fe62d5e891695cb8",
    ),
    "gocryptfs.longname.SAJKzNIeTgujDDcy7NJMMbd3E30dIiddsX-tRjFX1zk.name": (
        "file",
        "bf74654341e032f7b7ea1cca41216ca0",
    ),
    "xpHxBfJBgF48uxrkOOvOhQ": ("file", "139128aaf33e7263c9eb7d0b176a0304"),
    "zOsW1-BUX54hC2hmhu2EOw": ("dir", ""),
    "zOsW1-BUX54hC2hmhu2EOw/4ZqrpGQdw5r07KR1qw2ZeQ": ("dir", ""),
    "zOsW1-BUX54hC2hmhu2EOw/4ZqrpGQdw5r07KR1qw2ZeQ/gocryptfs.diriv": (
        "file",
        "cd233cc5f3fdb188b8aac953f59a4f73",
    ),
    "zOsW1-BUX54hC2hmhu2EOw/4ZqrpGQdw5r07KR1qw2ZeQ/tfCm9Sp9J_Dvc-jD7J6p8g": (
        "file",
        "9818501d214c5eb42ca2472caf6c82a1",
    ),
    "zOsW1-BUX54hC2hmhu2EOw/gocryptfs.diriv": ("file", "d1e3202e92221613b26bc1b74ff24af7"),
}

V11_REVERSE_VIEW = {
    "e_m9tKNx32KkylweWIOC4g==": ("symlink", "MUWZmtQ9Yp-rSa1hAMc6fJliI3T1GTS2Y-9et8FROZX8R2sErRUY_2cE"),
    "gjYU6PmqFqj2a6IEM5dE1Q==": ("symlink", "x1G4ElcA6-NdMpK8gdwdUC4iuOkCeXZVJXalhrzGcYdzG_nVbDQjpw=="),
    "gocryptfs.conf": ("file", "b9277d8cd34573d748ce2fead5f147e6"),
    "gocryptfs.diriv": ("file", "c61bd575cfbb88f33838ab94299f828e"),
    "gocryptfs.longname.3b-SW_DxXiLVpverS0DDoO8RIR2D0SwoEKdqyB4zX_E=": (
        "file",
        "98b0410664fd49fbdb0fe4b9f2f2b2ca",
    ),
    "gocryptfs.longname.3b-SW_DxXiLVpverS0DDoO8RIR2D0SwoEKdqyB4zX_E=.name": (
        "file",
        "6c1e35b3867bc45f55c3832bbc853707",
    ),
    "z3yRAUlHriQvd3V9QKSA1w==": ("file", "2a468708439c199e6e827f0b0c69d02c"),
}

V11_PLAINTEXTNAMES_VIEW = {
    "abs": ("symlink", "/a/b/c/d"),
    "gocryptfs.conf": ("file", "119240390fc3fd7676570353afdd4e93"),
    "longname_255_" + "x" * 242: ("file", "57756605d3125294741293167796ee88"),
    "rel": ("symlink", "status.txt"),
    "status.txt": ("file", "50fc9e6b7d6c9bc619ea39083c93f8c1"),
}


def view_table(view: ReverseView, cipher_dir: str = "") -> dict[str, tuple[str, str]]:
    """Walk the encrypted view like `find` over a reverse mount: path -> (kind, md5/target)."""
    out: dict[str, tuple[str, str]] = {}
    for e in view.listdir(cipher_dir):
        if e.kind == "dir":
            out[e.cipher_path] = ("dir", "")
            out.update(view_table(view, e.cipher_path))
        elif e.kind == "symlink":
            out[e.cipher_path] = ("symlink", view.readlink(e))
        else:
            data = view.read(e, 0, 1 << 30)
            assert len(data) == view.cipher_size(e)
            out[e.cipher_path] = ("file", hashlib.md5(data).hexdigest())
    return out


@pytest.mark.parametrize(
    ("relpath", "expected"),
    [
        ("tests/example_filesystems/v1.3-reverse", V13_REVERSE_VIEW),
        ("tests/example_filesystems/v1.1-reverse", V11_REVERSE_VIEW),
        ("tests/example_filesystems/v1.1-reverse-plaintextnames", V11_PLAINTEXTNAMES_VIEW),
    ],
)
def test_view_matches_real_gocryptfs_reverse(
    tmp_path: Path, relpath: str, expected: dict[str, tuple[str, str]]
) -> None:
    plain = copy_vector(relpath, tmp_path)
    view = ReverseView.open(plain, password=PASSWORD)
    assert view_table(view) == expected


def test_zero_key_vectors(tmp_path: Path) -> None:
    """§12.5: gocryptfs -reverse -zerokey -aessiv on {hello.txt, dir/link}."""
    (tmp_path / "dir").mkdir()
    (tmp_path / "hello.txt").write_bytes(b"hello world\n")
    os.symlink("hello.txt", tmp_path / "dir" / "link")
    view = ReverseView.open(tmp_path, master_key=ZERO_KEY, options=FormatOptions(aessiv=True))
    names = {e.cipher_name: e for e in view.listdir("")}
    assert names["gocryptfs.diriv"].data == bytes.fromhex("a8f7bac432ddc1cb3dc74e684d6ae48b")
    hello = names["k1YpWl0eh0vOUMeia5F1Xw"]
    assert view.read(hello, 0, 100) == bytes.fromhex(
        "000271ecc23c9f8d44610340dcada3e0968b37b94391dc4bf9b89530f6eec330e7f3"
        "1236f993459b918f46e43cb5ea061855ee5446142c399b02f57c0649"
    )
    assert derive("k1YpWl0eh0vOUMeia5F1Xw", "FILEID").hex() == "71ecc23c9f8d44610340dcada3e0968b"
    assert "jeOhcHZCa3ih9FpMobH2dw" in names
    sub = {e.cipher_name: e for e in view.listdir("jeOhcHZCa3ih9FpMobH2dw")}
    assert sub["gocryptfs.diriv"].data == bytes.fromhex("92bd5cf03c8ab5c94d6fa7e1625b8377")
    link = view.resolve("jeOhcHZCa3ih9FpMobH2dw/AZJE8-LccVm4xFAnHqn0ZA")
    assert view.readlink(link) == "LQ1K7K6tdUZC5gfhfnfLoIwI5NVigtD5S9mfAl_pughXsPWix3BK0DE"


def test_block_nonce_counts_in_the_last_eight_bytes() -> None:
    b0 = bytes(8) + (2**64 - 1).to_bytes(8, "big")
    assert block_nonce(b0, 0) == b0
    assert block_nonce(b0, 1) == bytes(16)  # wraps modulo 2^64, first half untouched
    assert block_nonce(bytes(16), 5)[8:] == (5).to_bytes(8, "big")


def test_partial_reads_equal_slices_of_the_whole(tmp_path: Path) -> None:
    data = os.urandom(3 * 4096 + 77)
    (tmp_path / "f").write_bytes(data)
    view = ReverseView.open(tmp_path, master_key=ZERO_KEY, options=FormatOptions(aessiv=True))
    entry = next(e for e in view.listdir("") if e.plain == "f")
    whole = view.read(entry, 0, 1 << 20)
    assert whole == b"".join(view.iter_file(entry))
    for off, size in [(0, 1), (17, 2), (18, 4128), (100, 9000), (len(whole) - 5, 100)]:
        assert view.read(entry, off, size) == whole[off : off + size]


def test_materialized_view_round_trips_in_forward_mode(tmp_path: Path) -> None:
    """§9.4: plain -> reverse view -> forward vault gives the plain tree back."""
    plain = copy_vector("tests/example_filesystems/v1.3-reverse", tmp_path)
    view = ReverseView.open(plain, password=PASSWORD)
    copy = tmp_path / "view"
    view.materialize(copy)
    vault = Vault.open(copy, password=PASSWORD)
    assert vault.read_file("dir1/dir2/file") == bytes(10000)
    assert vault.readlink("rel") == "status.txt"
    assert vault.read_file("longname_255_" + "x" * 242) == b"It works!\n"
    # Virtual files of the view are hidden again by the forward vault.
    assert sorted(e.name for e in vault.listdir("")) == sorted(
        ["abs", "dir1", "longname_255_" + "x" * 242, "rel", "status.txt"]
    )


def test_lookups_of_dot_and_dotdot_forms_fail(tmp_path: Path) -> None:
    """§13: the encrypted forms of '..' and '.' must give ENOENT in v1.3-reverse."""
    from vaultsh.vault.errors import FsError

    plain = copy_vector("tests/example_filesystems/v1.3-reverse", tmp_path)
    view = ReverseView.open(plain, password=PASSWORD)
    for name in ("D8VwRPqWW8x7M5OEoMs0Eg", "kkmARPseVj4XQFW-EL42-w"):
        with pytest.raises(FsError):
            view.resolve(name)
