"""Sync-conflict copies: the tools' name patterns, `vaultsh conflicts`, and adopting a copy."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest
from gocryptfs_harness import gocryptfs_fsck, passfile, require_gocryptfs, run_vaultsh
from vault_factory import NewVault
from vectors import PASSWORD

from vaultsh.service import integrity
from vaultsh.vault import fsck
from vaultsh.vault.conflicts import conflict_original, find_origin
from vaultsh.vault.errors import VaultError
from vaultsh.vault.vault import Vault

ORIG = "R83PhW-BBA_q4rPYD7dEMg"


@pytest.mark.parametrize(
    ("copy", "tool", "date"),
    [
        (f"{ORIG} (conflicted copy 2026-01-02)", "Dropbox", dt.date(2026, 1, 2)),
        (f"{ORIG} (Anna's conflicted copy 2026-01-02 (1))", "Dropbox", dt.date(2026, 1, 2)),
        (f"{ORIG}.sync-conflict-20260102-123456-ABCDEFG", "Syncthing", dt.date(2026, 1, 2)),
        (f"{ORIG} (Conflict)", "Google Drive or iCloud", None),
        (f"{ORIG} (2)", "Google Drive", None),
        (f"{ORIG}-DESKTOP-4H2K", "OneDrive", None),
    ],
)
def test_conflict_names_of_each_tool(copy: str, tool: str, date: dt.date | None) -> None:
    origin = find_origin(copy, {ORIG, copy})
    assert origin is not None
    assert (origin.original, origin.tool, origin.date) == (ORIG, tool, date)


def test_plain_names_keep_their_extension() -> None:
    assert conflict_original("report (conflicted copy 2026-01-02).txt") == "report.txt"
    assert conflict_original("report.sync-conflict-20260102-123456-ABCDEFG.txt") == "report.txt"
    origin = find_origin("report-LAPTOP.txt", {"report.txt"})
    assert origin is not None and origin.original == "report.txt"


def test_a_dash_alone_is_no_conflict() -> None:
    # Cipher names contain '-': only a name whose part before it exists is a OneDrive copy.
    assert find_origin("abc-DEF", {"xyz"}) is None
    assert conflict_original("abc-DEF") is None
    # Among plain names the loose readings are off: these are ordinary files.
    assert find_origin("my-notes.txt", {"my.txt"}, loose=False) is None
    assert find_origin("photo (1).jpg", {"photo.jpg"}, loose=False) is None
    assert find_origin("photo (conflicted copy 2026-01-02).jpg", {"photo.jpg"}, loose=False) is not None


@pytest.fixture
def vault(tmp_path: Path, new_vault: NewVault) -> Vault:
    v = new_vault(tmp_path / "cipher", PASSWORD)
    v.mkdir("docs")
    v.write_file("docs/report.txt", b"version A\n")
    v.write_file("docs/other.txt", b"version B, longer\n" * 1000)
    return v


def add_copies(v: Vault) -> tuple[Path, Path]:
    """A same-content Dropbox copy and a different-content Syncthing copy of docs/report.txt."""
    report = v.cipher_path("docs/report.txt")
    same = report.with_name(report.name + " (conflicted copy 2026-01-02)")
    shutil.copyfile(report, same)
    # Content is bound to the file ID in its header, not to the name (§5.1): another file's
    # cipher content under a copy's name decrypts, as a sync tool's copy of an edit does.
    differs = report.with_name(report.name + ".sync-conflict-20260103-101010-ABCDEFG")
    shutil.copyfile(v.cipher_path("docs/other.txt"), differs)
    os.utime(differs, (1_700_000_000, 1_700_000_000))
    return same, differs


def test_list_says_whether_contents_differ(vault: Vault) -> None:
    same, differs = add_copies(vault)
    copies = {c.copy_name: c for c in integrity.find_conflicts(vault)}
    assert set(copies) == {same.name, differs.name}
    assert copies[same.name].differs is False
    assert copies[differs.name].differs is True
    assert copies[same.name].original_plain == "docs/report.txt"
    with passfile(PASSWORD) as pf:
        res = run_vaultsh("conflicts", "--passfile", pf, vault.cipherdir)
    assert res.returncode == 26
    assert f"/docs/report.txt: Dropbox conflict copy {same.name!r}: same content as the original" in res.out
    assert f"/docs/report.txt: Syncthing conflict copy {differs.name!r}: contents differ" in res.out


def test_adopt_keeps_each_copy_under_a_free_plain_name(vault: Vault) -> None:
    same, differs = add_copies(vault)
    vault.write_file("docs/report (conflict 2026-01-02).txt", b"already here\n")
    with passfile(PASSWORD) as pf:
        res = run_vaultsh("conflicts", "--adopt", "--passfile", pf, vault.cipherdir)
        assert res.returncode == 0, res.describe()
        assert not same.exists() and not differs.exists()
        # never overwritten: the taken name stays, the copy gets the next free one
        assert vault.read_file("docs/report (conflict 2026-01-02).txt") == b"already here\n"
        assert vault.read_file("docs/report (conflict 2026-01-02 2).txt") == b"version A\n"
        assert vault.read_file("docs/report (conflict 2026-01-03).txt") == b"version B, longer\n" * 1000
        assert vault.read_file("docs/report.txt") == b"version A\n"
        assert "adopted as /docs/report (conflict 2026-01-03).txt" in res.out
        assert run_vaultsh("fsck", "--passfile", pf, vault.cipherdir).returncode == 0
        again = run_vaultsh("conflicts", "--passfile", pf, vault.cipherdir)
    assert again.returncode == 0 and "no conflict copies found" in again.err
    require_gocryptfs()
    assert gocryptfs_fsck(vault.cipherdir, PASSWORD)[0] == 0  # what gocryptfs itself accepts


def test_adopt_takes_the_date_from_the_copy_when_its_name_has_none(vault: Vault) -> None:
    report = vault.cipher_path("docs/report.txt")
    copy = report.with_name(report.name + " (1)")
    shutil.copyfile(report, copy)
    os.utime(copy, (1_767_312_000, 1_767_312_000))  # 2026-01-02 00:00 UTC
    (c,) = integrity.find_conflicts(vault)
    new = integrity.adopt(vault, c)
    day = dt.datetime.fromtimestamp(1_767_312_000).date().isoformat()
    assert new == f"docs/report (conflict {day}).txt"
    assert vault.stat(new).mtime_ns == 1_767_312_000 * 10**9


def test_a_damaged_copy_is_not_adopted_and_stays(vault: Vault) -> None:
    _same, differs = add_copies(vault)
    data = bytearray(differs.read_bytes())
    data[40] ^= 1
    differs.write_bytes(bytes(data))
    copies = {c.copy_name: c for c in integrity.find_conflicts(vault)}
    bad = copies[differs.name]
    assert bad.problem is not None and "block 0" in bad.problem
    with passfile(PASSWORD) as pf:
        res = run_vaultsh("conflicts", "--adopt", "--passfile", pf, vault.cipherdir)
    assert res.returncode == 26
    assert differs.exists()
    assert f"not adopted: {differs.name}" in res.err
    names = {e.name for e in vault.listdir("docs")}
    assert names == {"report.txt", "other.txt", "report (conflict 2026-01-02).txt"}


def test_symlink_copy_is_adopted(vault: Vault) -> None:
    vault.symlink("report.txt", "docs/latest")
    link = vault.cipher_path("docs/latest")
    copy = link.with_name(link.name + ".sync-conflict-20260105-000000-ABCDEFG")
    os.symlink(os.readlink(link), copy)
    (c,) = integrity.find_conflicts(vault)
    assert c.kind == "symlink" and c.differs is False
    assert integrity.adopt(vault, c) == "docs/latest (conflict 2026-01-05)"
    assert vault.readlink("docs/latest (conflict 2026-01-05)") == "report.txt"
    assert not os.path.lexists(copy)


def test_fsck_flags_conflicts_and_quarantine_keeps_them_out_of_the_way(vault: Vault, tmp_path: Path) -> None:
    same, _differs = add_copies(vault)
    kinds = {(f.kind, f.cipher_path) for f in fsck.check(vault)}
    assert (fsck.Kind.CONFLICT_COPY, os.path.relpath(same, vault.cipherdir)) in kinds
    result = integrity.run_fsck(vault, quarantine=tmp_path / "q")
    assert len(result.moved) == 2 and all(m.error is None for m in result.moved)
    assert integrity.find_conflicts(vault) == []


def test_plaintextnames_vault_copies(tmp_path: Path, new_vault: NewVault) -> None:
    root = tmp_path / "plain"
    v = new_vault(root, PASSWORD, plaintext_names=True)
    v.write_file("notes.md", b"one\n")
    v.write_file("notes-v2.md", b"an ordinary file, not a OneDrive copy\n")
    shutil.copyfile(root / "notes.md", root / "notes (conflicted copy 2026-02-03).md")
    (c,) = integrity.find_conflicts(v)
    assert c.original_plain == "notes.md" and c.differs is False
    assert {f.kind for f in fsck.check(v)} == {fsck.Kind.CONFLICT_COPY}
    assert integrity.adopt(v, c) == "notes (conflict 2026-02-03).md"
    assert sorted(e.name for e in v.listdir()) == [
        "notes (conflict 2026-02-03).md",
        "notes-v2.md",
        "notes.md",
    ]


def test_export_decrypts_copies_outside_and_leaves_the_vault_alone(vault: Vault, tmp_path: Path) -> None:
    same, differs = add_copies(vault)
    out = tmp_path / "rescued"
    (out / "docs").mkdir(parents=True)
    (out / "docs" / "report (conflict 2026-01-02).txt").write_bytes(b"mine, keep it\n")
    with passfile(PASSWORD) as pf:
        inside = run_vaultsh(
            "conflicts", "--export", vault.cipherdir / "x", "--passfile", pf, vault.cipherdir
        )
        assert inside.returncode == 1 and "outside the vault" in inside.err
        both = run_vaultsh("conflicts", "--adopt", "--export", out, "--passfile", pf, vault.cipherdir)
        assert both.returncode == 1
        res = run_vaultsh("conflicts", "--export", out, "--passfile", pf, vault.cipherdir)
    assert res.returncode == 26, res.describe()  # the copies are still in the vault
    assert same.exists() and differs.exists()
    assert (out / "docs" / "report (conflict 2026-01-02).txt").read_bytes() == b"mine, keep it\n"
    assert (out / "docs" / "report (conflict 2026-01-02 2).txt").read_bytes() == b"version A\n"
    assert (out / "docs" / "report (conflict 2026-01-03).txt").read_bytes() == b"version B, longer\n" * 1000
    assert os.stat(out / "docs" / "report (conflict 2026-01-03).txt").st_mtime == 1_700_000_000


def test_a_damaged_original_is_named_and_the_copy_still_adoptable(vault: Vault) -> None:
    same, _differs = add_copies(vault)
    report = vault.cipher_path("docs/report.txt")
    data = bytearray(report.read_bytes())
    data[40] ^= 1
    report.write_bytes(bytes(data))
    copies = {c.copy_name: c for c in integrity.find_conflicts(vault)}
    c = copies[same.name]
    assert c.problem is None and c.differs is None
    assert "the original is unreadable" in c.describe() and "block 0" in c.describe()
    assert vault.read_file(integrity.adopt(vault, c)) == b"version A\n"  # the good copy is saved


def test_a_directory_copy_is_adopted_by_one_rename(vault: Vault) -> None:
    docs = vault.cipher_path("docs")
    copy = docs.with_name(docs.name + ".sync-conflict-20260106-000000-ABCDEFG")
    shutil.copytree(docs, copy)
    (c,) = integrity.find_conflicts(vault)
    assert c.kind == "dir" and c.problem is None
    assert "compare by hand" in c.describe()
    assert integrity.adopt(vault, c) == "docs (conflict 2026-01-06)"
    assert not copy.exists()
    assert sorted(e.name for e in vault.listdir("docs (conflict 2026-01-06)")) == ["other.txt", "report.txt"]
    assert vault.read_file("docs (conflict 2026-01-06)/report.txt") == b"version A\n"
    assert list(fsck.check(vault)) == []
    require_gocryptfs()
    assert gocryptfs_fsck(vault.cipherdir, PASSWORD)[0] == 0


def test_export_does_not_follow_a_symlink_planted_below_the_destination(vault: Vault, tmp_path: Path) -> None:
    """The destination's plain subdirectory swapped for a symlink to elsewhere is not entered:
    the copy is not exported, and nothing is written where the link points."""
    add_copies(vault)
    out, elsewhere = tmp_path / "rescued", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    os.symlink(elsewhere, out / "docs")
    copies = integrity.find_conflicts(vault)
    for c in copies:
        with pytest.raises(OSError):
            integrity.export_copy(vault, c, out)
    assert os.listdir(elsewhere) == [] and os.path.islink(out / "docs")


def test_adopt_does_not_follow_a_symlink_swapped_for_the_copy_dir(vault: Vault, tmp_path: Path) -> None:
    """Between listing and adopting, the copy's cipher directory is replaced by a symlink to a
    directory outside holding the same names: adopting fails there and changes nothing outside."""
    same, _differs = add_copies(vault)
    copy = next(c for c in integrity.find_conflicts(vault) if c.copy_name == same.name)
    docs = same.parent
    outside = tmp_path / "outside"
    shutil.copytree(docs, outside)
    before = {p.name: p.read_bytes() for p in outside.iterdir()}
    os.rename(docs, tmp_path / "moved")
    os.symlink(outside, docs)
    fresh = Vault.open(vault.cipherdir, password=PASSWORD)  # no directory descriptor cached
    with pytest.raises((OSError, VaultError)):
        integrity.adopt(fresh, copy)
    assert {p.name: p.read_bytes() for p in outside.iterdir()} == before
