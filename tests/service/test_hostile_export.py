"""A hostile cipher dir against export and import: duplicate plain names, short files, and
destinations inside the vault itself (service/transfer.py)."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from service_harness import RecordingIO, long_alias, snapshot

from vaultsh.service import transfer
from vaultsh.service.commands import Session, run_line
from vaultsh.vault.errors import ExitCode, FsError
from vaultsh.vault.vault import Vault

PASSWORD = b"pw"  # of the `vault` fixture (conftest.py)


def plant_alias_dir(cparent: Path, disk_name: str, copy_of: Path) -> Path:
    """Copy a cipher directory under the alias of `disk_name`, as anyone with write access to
    the synced folder can: no key is needed, the copy keeps its diriv and encrypted names."""
    alias = cparent / long_alias(disk_name)
    shutil.copytree(copy_of, alias, symlinks=True)
    (alias.parent / (alias.name + ".name")).write_text(disk_name)
    return alias


def plant_link_with_alias(vault: Vault, tmp_path: Path, link: str) -> tuple[Path, str, Path]:
    """A vault symlink `link` to an empty directory outside, and an alias of its name that is a
    copy of a vault directory holding a file: (the outside dir, the link's disk name, the alias)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    vault.symlink(str(outside), link)
    vault.mkdir("payload")
    vault.write_file("payload/evil", b"e")
    disk = vault.cipher_path(link).name
    return outside, disk, plant_alias_dir(vault.cipher_path(link).parent, disk, vault.cipher_path("payload"))


@pytest.mark.parametrize("link_to", ["outside", ".."], ids=["outside-dir", "dest-parent"])
@pytest.mark.parametrize("where", ["", "sub"], ids=["root", "nested"])
def test_a_symlink_and_a_dir_alias_of_one_name_are_both_refused(
    vault: Vault, tmp_path: Path, link_to: str, where: str
) -> None:
    """The vault holds a symlink to a directory; its alias is a copied directory whose files
    (mode 0777) would otherwise be written, and chmod-ed, through the symlink."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "mine").write_text("untouched")
    work = tmp_path / "work"
    work.mkdir()
    prefix = f"{where}/" if where else ""
    if where:
        vault.mkdir(where)
    target = str(outside) if link_to == "outside" else ".." + "/.." * where.count("sub")
    vault.symlink(target, f"{prefix}x")
    vault.mkdir("payload")
    vault.write_file("payload/evil", b"written through the link")
    vault.chmod("payload", 0o777)
    vault.write_file(f"{prefix}ok", b"fine")
    cparent = vault.cipher_path(where)
    link_disk = vault.cipher_path(f"{prefix}x").name
    alias = plant_alias_dir(cparent, link_disk, vault.cipher_path("payload"))
    assert sorted(e.kind for e in vault.listdir(where) if e.name == "x") == ["dir", "symlink"]
    before_outside, before_work = snapshot(outside), snapshot(work)

    dest = work / "dest"
    report = transfer.export(vault, where, dest)

    assert snapshot(outside) == before_outside
    after_work = snapshot(work)
    assert after_work["."][0] == before_work["."][0]  # DEST's parent keeps its mode
    assert {k for k in after_work if k != "." and not k.startswith("dest")} == set(before_work) - {"."}
    failed = [(p, why) for p, why in report.failed]
    assert [p for p, _ in failed] == [f"{prefix}x", f"{prefix}x"], failed
    kinds = sorted(why.split(" ")[1] for _, why in failed)
    assert kinds == ["dir", "symlink"]
    for _, why in failed:  # one line each, naming both cipher entries
        assert "\n" not in why and link_disk in why and alias.name in why and "neither is exported" in why
    assert sorted(os.listdir(dest)) == (["ok"] if where else ["ok", "payload"])
    assert (dest / "ok").read_bytes() == b"fine"


def test_the_shell_reports_each_duplicate_on_one_line_and_exits_as_for_corruption(
    vault: Vault, tmp_path: Path
) -> None:
    outside, _, _ = plant_link_with_alias(vault, tmp_path, "x")
    io = RecordingIO()
    session = Session(vault, vault.cipherdir, io)
    code = run_line(session, f"export / {tmp_path / 'dest'}")
    assert code == ExitCode.FSCK_ERRORS
    dup = [e for e in io.errors if e.startswith("export failed for x: ")]
    assert len(dup) == 2 and all("neither is exported" in e for e in dup), io.errors
    assert os.listdir(outside) == []
    assert sorted(os.listdir(tmp_path / "dest")) == ["payload"]


def test_crafted_alias_with_the_key_is_refused_too(vault: Vault, tmp_path: Path) -> None:
    """With the key, the alias directory can hold anything: it is still never written."""
    outside = tmp_path / "outside"
    outside.mkdir()
    vault.symlink(str(outside), "x")
    vault.mkdir("made")
    vault.write_file("made/new", b"n")
    disk = vault.cipher_path("x").name
    made = vault.cipher_path("made")
    os.rename(made, made.parent / long_alias(disk))
    (made.parent / (long_alias(disk) + ".name")).write_text(disk)
    report = transfer.export(vault, "", tmp_path / "dest")
    assert len(report.failed) == 2 and os.listdir(outside) == []
    assert os.listdir(tmp_path / "dest") == []


def test_export_never_replaces_or_enters_an_existing_destination_name(vault: Vault, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(outside, dest / "d")  # the user's own link, where the export would go
    vault.mkdir("d")
    vault.write_file("d/f", b"x")
    with pytest.raises(FsError, match=r"dest/d: already exists$"):
        transfer.export(vault, "d", dest)
    assert os.listdir(outside) == []


def test_a_cipher_file_shorter_than_a_header_is_corrupt_not_empty(vault: Vault, tmp_path: Path) -> None:
    vault.write_file("short", b"some content")
    vault.write_file("empty", b"")
    cfile = vault.cipher_path("short")
    cfile.write_bytes(cfile.read_bytes()[:10])
    report = transfer.export(vault, "", tmp_path / "dest")
    assert report.failed == [("short", "corrupt: 10 bytes, shorter than a file header (18)")]
    assert sorted(os.listdir(tmp_path / "dest")) == ["empty"]


# -- destinations inside the vault ------------------------------------------------------------


def _cipher_listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("into", ["cipher", "cipher-subdir", "link-to-cipher", "new-name-in-link"])
def test_export_into_the_cipher_dir_is_refused_before_writing(
    vault: Vault, tmp_path: Path, into: str
) -> None:
    vault.mkdir("sub")
    vault.write_file("sub/f", b"plaintext that must not land in the synced folder")
    os.symlink(vault.cipherdir, tmp_path / "link")
    dest = {
        "cipher": vault.cipherdir,
        "cipher-subdir": vault.cipher_path("sub"),
        "link-to-cipher": tmp_path / "link",
        "new-name-in-link": tmp_path / "link" / "new",
    }[into]
    before = _cipher_listing(vault.cipherdir)
    with pytest.raises(FsError, match="is inside the cipher directory") as info:
        transfer.export(vault, "sub", dest)
    assert info.value.errno == errno.EINVAL and "\n" not in str(info.value)
    assert _cipher_listing(vault.cipherdir) == before


def test_importing_the_cipher_dir_or_a_folder_above_it_is_refused(vault: Vault, tmp_path: Path) -> None:
    vault.mkdir("in")
    before = _cipher_listing(vault.cipherdir)
    for source, path in (
        (vault.cipherdir, ""),
        (vault.cipherdir, "in"),
        (tmp_path, "in"),
        (f"{vault.cipherdir}/", "in"),
        (vault.cipher_path("in"), "in"),
    ):
        with pytest.raises(FsError, match="cannot be imported into itself") as info:
            transfer.import_(vault, source, path)
        assert info.value.errno == errno.EINVAL
        assert _cipher_listing(vault.cipherdir) == before


def test_export_into_a_live_mount_of_the_same_vault_is_refused(
    need_gocryptfs: None, vault: Vault, tmp_path: Path
) -> None:
    from gocryptfs_harness import gocryptfs_mount

    vault.write_file("f", b"data")
    vault.mkdir("d")
    with gocryptfs_mount(vault.cipherdir, tmp_path / "mnt", PASSWORD) as mnt:
        for dest in (mnt / "out", mnt / "d"):
            with pytest.raises(FsError, match="a mount of this same vault"):
                transfer.export(vault, "f", dest)
        assert sorted(os.listdir(mnt)) == ["d", "f"] and os.listdir(mnt / "d") == []
    # Elsewhere it works, and the same vault unmounted is an ordinary destination check.
    assert transfer.export(vault, "f", tmp_path / "out").files == 1


# -- temporaries of killed imports ------------------------------------------------------------

_KILLED_IMPORT = """
import os, signal, sys
from vaultsh.service import transfer
from vaultsh.vault.vault import Vault

vault = Vault.open(sys.argv[1], password=b"pw")

def stop_midway(n: int) -> None:
    os.kill(os.getpid(), signal.SIGKILL)

transfer.import_(vault, sys.argv[2], "", progress=stop_midway)
"""


def test_a_killed_import_leaves_a_temporary_that_the_next_import_removes(
    vault: Vault, tmp_path: Path
) -> None:
    big = tmp_path / "big"
    big.write_bytes(os.urandom(3 << 20))
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_IMPORT, str(vault.cipherdir), str(big)], capture_output=True
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    left = [e.name for e in vault.listdir("")]
    assert len(left) == 1 and left[0].startswith(".vaultsh-") and left[0].endswith(".part"), left
    small = tmp_path / "small"
    small.write_bytes(b"s")
    assert transfer.import_(vault, small, "").files == 1
    assert [e.name for e in vault.listdir("")] == ["small"]


def test_a_running_import_keeps_its_temporary(vault: Vault, tmp_path: Path) -> None:
    """Another import into the same directory must not take a live temporary for a stale one."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(os.urandom(2 << 20))
    seen: list[list[str]] = []
    other = tmp_path / "other"
    other.write_bytes(b"o")

    def import_another(_n: int) -> None:
        if not seen:
            seen.append(sorted(e.name for e in vault.listdir("src")))
            transfer.import_(vault, other, "src")
            seen.append(sorted(e.name for e in vault.listdir("src")))

    assert transfer.import_(vault, src, "", progress=import_another).failed == []
    assert len(seen[0]) == 1 and seen[0][0].startswith(".vaultsh-")
    assert seen[1] == sorted([seen[0][0], "other"])
    assert sorted(e.name for e in vault.listdir("src")) == ["a", "other"]


def test_fsck_names_both_entries_of_a_duplicate_and_a_killed_imports_temporary(
    vault: Vault, tmp_path: Path
) -> None:
    from vaultsh.vault import fsck

    _, disk, alias = plant_link_with_alias(vault, tmp_path, "x")
    vault.write_file(".vaultsh-0123456789abcdef.part", b"half")
    found = {(f.kind, f.cipher_path, f.plain_path) for f in fsck.check(vault)}
    assert (fsck.Kind.DUPLICATE_NAME, disk, "x") in found
    assert (fsck.Kind.DUPLICATE_NAME, alias.name, "x") in found
    leftover = vault.cipher_path(".vaultsh-0123456789abcdef.part").name
    assert (fsck.Kind.IMPORT_LEFTOVER, leftover, ".vaultsh-0123456789abcdef.part") in found


def test_importing_a_mount_of_the_vault_into_itself_is_refused(
    need_gocryptfs: None, vault: Vault, tmp_path: Path
) -> None:
    from gocryptfs_harness import gocryptfs_mount

    vault.mkdir("d")
    vault.write_file("d/f", b"data")
    with gocryptfs_mount(vault.cipherdir, tmp_path / "mnt", PASSWORD) as mnt:
        before = _cipher_listing(vault.cipherdir)
        for source, path in ((mnt, ""), (mnt / "d", "d"), (f"{mnt}/", "d"), (mnt, "d")):
            with pytest.raises(FsError, match="cannot be copied into itself"):
                transfer.import_(vault, source, path)
            assert _cipher_listing(vault.cipherdir) == before
        # A copy to a place outside the source is an ordinary import.
        vault.mkdir("e")
        assert transfer.import_(vault, mnt / "d", "e").files == 1
    assert vault.read_file("e/d/f") == b"data"


def test_the_full_screen_interface_exports_through_the_same_checks(vault: Vault, tmp_path: Path) -> None:
    """Its multi-select export (`e` on a selection) reports a duplicate as the shell does."""
    from vaultsh.tui.selection import export_selection, run_guarded

    vault.mkdir("sel")
    outside, _, _ = plant_link_with_alias(vault, tmp_path, "sel/x")
    vault.write_file("ok", b"fine")
    io = RecordingIO()
    dest = tmp_path / "dest"
    dest.mkdir()
    code = run_guarded(Session(vault, vault.cipherdir, io), export_selection(["sel", "ok"], str(dest)))
    assert code == ExitCode.FSCK_ERRORS
    assert len([e for e in io.errors if e.startswith("export failed for sel/x: ")]) == 2, io.errors
    assert os.listdir(outside) == [] and sorted(os.listdir(dest)) == ["ok", "sel"]
    assert os.listdir(dest / "sel") == []
    with pytest.raises(FsError, match="is inside the cipher directory"):
        export_selection(["ok"], str(vault.cipherdir))(Session(vault, vault.cipherdir, RecordingIO()))


@pytest.mark.parametrize("creation", ["O_TMPFILE", "named-temporary", "no-hard-links"])
def test_a_name_that_appears_in_dest_meanwhile_is_never_written_through(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, creation: str
) -> None:
    """A symlink someone puts in DEST while the export runs is left as it is, and so is its target."""
    if creation != "O_TMPFILE":  # as on filesystems without it: a hidden name, linked when complete
        monkeypatch.delattr(os, "O_TMPFILE")
    if creation == "no-hard-links":  # as on FAT: the hidden name is renamed, if the name is free

        def no_link(*_args: object, **_kwargs: object) -> None:
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))

        monkeypatch.setattr(os, "link", no_link)
    outside = tmp_path / "outside"
    outside.mkdir()
    vault.mkdir("d")
    vault.write_file("d/a", b"first")
    vault.write_file("d/b", b"second")
    vault.mkdir("d/c")
    dest = tmp_path / "dest"

    def plant(_n: int) -> None:
        if not (dest / "b").is_symlink():
            os.symlink(outside / "b", dest / "b")
            os.symlink(outside, dest / "c")

    report = transfer.export(vault, "d", dest, progress=plant)
    assert sorted(p for p, _ in report.failed) == ["d/b", "d/c"]
    assert all("already exists in the destination; not replaced" in why for _, why in report.failed)
    assert os.listdir(outside) == [] and (dest / "a").read_bytes() == b"first"
    assert sorted(os.listdir(dest)) == ["a", "b", "c"]  # no temporary left behind


def test_exporting_a_name_that_has_an_alias_exports_neither(vault: Vault, tmp_path: Path) -> None:
    vault.mkdir("sub")
    outside, disk, alias = plant_link_with_alias(vault, tmp_path, "sub/x")
    dest = tmp_path / "dest"
    dest.mkdir()
    report = transfer.export(vault, "sub/x", dest)
    assert [p for p, _ in report.failed] == ["sub/x", "sub/x"]
    assert all(disk in why and alias.name in why for _, why in report.failed)
    assert os.listdir(dest) == [] and os.listdir(outside) == []
