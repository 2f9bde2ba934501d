"""The demo vault: it opens with its password, holds the advertised entries, and only the
planted sync debris is undecryptable (as vaultsh and `gocryptfs -fsck` both see it)."""

from __future__ import annotations

import os
import re
import shutil
import stat
from pathlib import Path

import pytest
from gocryptfs_harness import gocryptfs_fsck, gocryptfs_mount

from vaultsh.service import demo
from vaultsh.service.demo import BIG_SIZE, LONG_NAME, make_demo_vault
from vaultsh.vault.config import load_config
from vaultsh.vault.errors import CipherDirError, PasswordIncorrectError
from vaultsh.vault.names import is_long_name
from vaultsh.vault.vault import Vault


@pytest.fixture(scope="module")
def demo_vault(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return make_demo_vault(tmp_path_factory.mktemp("demo") / "vault")


def _open(demo_vault: tuple[Path, str]) -> Vault:
    path, password = demo_vault
    return Vault.open(path, password=password.encode())


def test_password_is_a_readable_passphrase(demo_vault: tuple[Path, str]) -> None:
    _, password = demo_vault
    words = password.split("-")
    assert len(words) == 5
    assert all(w in demo._WORDS for w in words)
    assert len({demo.demo_password() for _ in range(20)}) > 1  # random, not fixed


def test_opens_with_the_returned_password_only(demo_vault: tuple[Path, str]) -> None:
    path, password = demo_vault
    vault = _open(demo_vault)
    assert vault.options.diriv and not vault.options.plaintext_names
    # A demo: the cheapest scrypt cost gocryptfs accepts, so it unlocks instantly.
    assert load_config(path / "gocryptfs.conf").scrypt.logn == demo.DEMO_SCRYPT_LOGN == 10
    with pytest.raises(PasswordIncorrectError):
        Vault.open(path, password=password.encode() + b"x")


def test_offline_listing_shows_the_sample_tree(demo_vault: tuple[Path, str]) -> None:
    vault = _open(demo_vault)
    kinds = {e.name: e.kind for e in vault.listdir("")}
    assert kinds == {
        "README.md": "file",
        "notes": "dir",
        "media": "dir",
        "empty": "dir",
        "latest-entry": "symlink",
    }
    assert {e.name: e.kind for e in vault.listdir("notes")} == {
        "todo.txt": "file",
        "journal": "dir",
        LONG_NAME: "file",
    }
    assert [e.name for e in vault.listdir("notes/journal")] == ["2026-01-02.md"]
    assert {e.name for e in vault.listdir("media")} == {"gradient.png", "big-random.bin"}
    assert vault.listdir("empty") == []


def test_contents_are_what_the_tui_shows_off(demo_vault: tuple[Path, str]) -> None:
    vault = _open(demo_vault)
    assert vault.read_file("README.md").startswith(b"# Welcome to the vaultsh demo vault")
    assert vault.readlink("latest-entry") == "notes/journal/2026-01-02.md"
    assert vault.read_file("notes/journal/2026-01-02.md").startswith(b"# 2 January 2026")
    png = vault.read_file("media/gradient.png")
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and b"IEND" in png
    assert b"\x00" in png  # binary, not text
    big = vault.stat("media/big-random.bin")
    assert big.size == BIG_SIZE >= 2 << 20
    head = vault.read_file("media/big-random.bin", 0, 1 << 16)
    assert len(set(head)) > 200  # incompressible-looking bytes


def test_long_name_is_stored_hashed_with_a_sidecar(demo_vault: tuple[Path, str]) -> None:
    vault = _open(demo_vault)
    assert len(LONG_NAME.encode()) > 175
    entry = next(e for e in vault.listdir("notes") if e.name == LONG_NAME)
    assert is_long_name(entry.cipher_name) and entry.long_name
    notes_cipher = vault.cipher_path("notes")
    assert (notes_cipher / (entry.cipher_name + ".name")).is_file()
    assert vault.read_file(f"notes/{LONG_NAME}").startswith(b"Stored under gocryptfs.longname")


def test_only_the_sync_debris_is_flagged(demo_vault: tuple[Path, str]) -> None:
    vault = _open(demo_vault)
    bad: dict[str, list[str]] = {}
    todo = [("", vault.cipherdir)]
    while todo:
        where, cdir = todo.pop()
        for e in vault.list_cipher_dir(cdir, include_bad=True):
            if e.error:
                assert e.name == e.cipher_name
                bad.setdefault(where, []).append(e.cipher_name)
            elif e.is_dir:
                todo.append((f"{where}/{e.name}".strip("/"), cdir / e.cipher_name))
    readme = vault.cipher_path("README.md").name
    todo_txt = vault.cipher_path("notes/todo.txt").name
    assert sorted(bad) == ["", "notes"]
    assert sorted(bad[""]) == sorted([f"{readme} (conflicted copy 2026-01-02)", "copied in by hand.txt"])
    assert bad["notes"] == [f"{todo_txt}.sync-conflict-20260102-123456-ABCDEFG"]
    # The conflict copies are byte-for-byte copies of the cipher files they shadow.
    notes = vault.cipher_path("notes")
    assert (notes / bad["notes"][0]).read_bytes() == (notes / todo_txt).read_bytes()
    # Without include_bad the listing is clean.
    assert all(e.error is None for e in vault.listdir("", include_bad=False))


def test_default_destination_is_a_fresh_temp_dir() -> None:
    path, password = make_demo_vault()
    try:
        assert path.name.startswith("vaultsh-demo-")
        assert Vault.open(path, password=password.encode()).exists("README.md")
    finally:
        shutil.rmtree(path)


def test_refuses_a_non_empty_destination(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(CipherDirError, match="new or empty directory"):
        make_demo_vault(tmp_path)
    assert os.listdir(tmp_path) == ["keep.txt"]


def test_gocryptfs_fsck_reports_exactly_the_debris(
    demo_vault: tuple[Path, str], need_gocryptfs: None
) -> None:
    path, password = demo_vault
    vault = _open(demo_vault)
    readme = vault.cipher_path("README.md").name
    todo_txt = vault.cipher_path("notes/todo.txt").name
    rc, out = gocryptfs_fsck(path, password)
    assert rc == 26, out  # "fsck found errors"
    corrupt = set(re.findall(r'^fsck: corrupt entry in dir "([^"]*)": "([^"]*)"$', out, re.M))
    assert corrupt == {
        ("", f"{readme} (conflicted copy 2026-01-02)"),
        ("", "copied in by hand.txt"),
        ("notes", f"{todo_txt}.sync-conflict-20260102-123456-ABCDEFG"),
    }
    assert "fsck summary: 3 corrupt files, 0 files skipped" in out
    # Nothing else: every "fsck:" line is one of the three entries or the summary.
    fsck_lines = [line for line in out.splitlines() if line.startswith("fsck")]
    assert len(fsck_lines) == 4, out


def test_gocryptfs_mount_shows_the_same_tree(
    demo_vault: tuple[Path, str], need_gocryptfs: None, tmp_path: Path
) -> None:
    path, password = demo_vault
    vault = _open(demo_vault)
    with gocryptfs_mount(path, tmp_path / "mnt", password) as mnt:
        assert sorted(os.listdir(mnt)) == sorted(e.name for e in vault.listdir(""))
        assert (mnt / "README.md").read_bytes() == vault.read_file("README.md")
        assert os.readlink(mnt / "latest-entry") == "notes/journal/2026-01-02.md"
        assert (mnt / "notes" / LONG_NAME).read_bytes() == vault.read_file(f"notes/{LONG_NAME}")
        big = mnt / "media" / "big-random.bin"
        assert stat.S_ISREG(os.lstat(big).st_mode)
        assert big.read_bytes() == vault.read_file("media/big-random.bin")
        assert os.listdir(mnt / "empty") == []
