"""Export and import as a library: cancellation, reports and leftovers (service/transfer.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from vault_factory import NewVault

from vaultsh.service.transfer import Cancelled, export, import_
from vaultsh.vault.vault import Vault


def _tree(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    for i in range(5):
        (root / f"f{i}").write_bytes(os.urandom(3 << 20))
    (root / "sub" / "small").write_text("x")
    return root


def test_cancelled_export_leaves_only_finished_files(vault: Vault, tmp_path: Path) -> None:
    import_(vault, _tree(tmp_path / "src"), "")
    calls = 0

    def cancel_after_four_steps() -> bool:
        nonlocal calls
        calls += 1
        return calls > 4  # in the middle of the second 3 MiB file

    out = tmp_path / "out"
    with pytest.raises(Cancelled):
        export(vault, "src", out, cancelled=cancel_after_four_steps)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["f0"]  # complete; nothing partial, no temporary names
    assert (out / "f0").read_bytes() == (tmp_path / "src" / "f0").read_bytes()


def test_cancelled_import_leaves_no_temporary_in_the_vault(vault: Vault, tmp_path: Path) -> None:
    src = _tree(tmp_path / "src")
    asked = 0

    def cancelled() -> bool:  # cancel from the second question on: one file may finish
        nonlocal asked
        asked += 1
        return asked > 1

    with pytest.raises(Cancelled):
        import_(vault, src, "", cancelled=cancelled)
    # A directory left with nothing finished in it is removed too.
    listing = {e.name for e in vault.listdir("src", include_bad=True)} if vault.exists("src") else set()
    assert all(not n.startswith(".vaultsh-") for n in listing)
    assert listing <= {"f0"} and (listing or not vault.exists("src"))


def test_report_counts_and_progress_sum(vault: Vault, tmp_path: Path) -> None:
    src = _tree(tmp_path / "src")
    os.symlink("f0", src / "link")
    steps: list[int] = []
    rep = import_(vault, src, "", progress=steps.append)
    assert (rep.files, rep.dirs) == (6, 2) and vault.readlink("src/link") == "f0"
    assert sum(steps) == rep.bytes == 5 * (3 << 20) + 1
    steps.clear()
    rep = export(vault, "", tmp_path / "out", progress=steps.append)
    assert (rep.files, rep.failed) == (6, []) and os.readlink(tmp_path / "out" / "src" / "link") == "f0"
    assert sum(steps) == rep.bytes


def test_progress_total_from_cipher_sizes_is_exact_for_a_clean_vault(vault: Vault, tmp_path: Path) -> None:
    from vaultsh.service.transfer import plain_tree_size, source_size

    src = _tree(tmp_path / "src")
    (src / ("long-" + "n" * 200)).write_bytes(os.urandom(5000))  # a long name and its sidecar
    import_(vault, src, "")
    assert plain_tree_size(vault, "src") == source_size(src) == 5 * (3 << 20) + 1 + 5000
    assert plain_tree_size(vault, "src/f0") == 3 << 20


def test_export_tells_the_progress_total_before_the_first_step(vault: Vault, tmp_path: Path) -> None:
    from vaultsh.service.transfer import plain_tree_size

    import_(vault, _tree(tmp_path / "src"), "")
    calls: list[tuple[str, int]] = []
    export(
        vault,
        "src",
        tmp_path / "out",
        progress=lambda n: calls.append(("step", n)),
        on_total=lambda n: calls.append(("total", n)),
    )
    assert calls[0] == ("total", plain_tree_size(vault, "src")) == ("total", 5 * (3 << 20) + 1)
    assert [kind for kind, _ in calls[1:]] == ["step"] * (len(calls) - 1)
    assert sum(n for _, n in calls[1:]) == calls[0][1]


# -- import: walking by cipher path -----------------------------------------------------------

LONG = "l" * 200  # above the 175-byte limit: a hashed name with a .name sidecar (§6.7)


def _meta_tree(root: Path) -> Path:
    """Nested dirs, long names, odd modes, a symlink and fixed mtimes."""
    (root / LONG / "inner").mkdir(parents=True)
    (root / LONG / "inner" / LONG).write_bytes(b"deep")
    (root / "ro").write_bytes(b"read only")
    os.chmod(root / "ro", 0o400)
    (root / "empty").write_bytes(b"")
    os.symlink("../ro", root / LONG / "link")
    os.chmod(root / LONG, 0o750)
    for i, p in enumerate([root / "ro", root / "empty", root / LONG / "inner" / LONG, root / LONG]):
        os.utime(p, ns=(1_000_000_000 * (i + 1), 1_500_000_000_000_000_000 + i))
    os.utime(root / LONG / "link", ns=(5, 1_400_000_000_000_000_000), follow_symlinks=False)
    return root


def test_import_keeps_modes_mtimes_symlinks_and_long_names(vault: Vault, tmp_path: Path) -> None:
    src = _meta_tree(tmp_path / "src")
    rep = import_(vault, src, "")
    assert (rep.files, rep.dirs, rep.failed) == (3, 3, [])
    for rel in ("ro", "empty", f"{LONG}/inner/{LONG}", LONG, f"{LONG}/link"):
        want = os.lstat(src / rel)
        got = vault.stat(f"src/{rel}")
        assert (got.mode, got.mtime_ns) == (want.st_mode, want.st_mtime_ns), rel
    assert vault.read_file(f"src/{LONG}/inner/{LONG}") == b"deep"
    assert vault.readlink(f"src/{LONG}/link") == "../ro"
    for dirpath, entries in vault.walk("src"):
        assert not any(e.error or e.name.startswith(".vaultsh-") for e in entries), dirpath


def test_import_encrypts_no_path_per_file(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whole plain paths are encrypted as often for 60 files in 9 dirs as for one file."""
    calls: list[str] = []
    real = vault.cipher_path

    def counting(path: str) -> Path:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(vault, "cipher_path", counting)
    small = tmp_path / "small"
    small.mkdir()
    (small / "f").write_bytes(b"x")
    assert import_(vault, small, "").files == 1
    one_file = len(calls)
    calls.clear()
    big = tmp_path / "big"
    for d in range(3):
        (big / f"d{d}" / "sub").mkdir(parents=True)
        for i in range(20):
            (big / f"d{d}" / "sub" / f"f{i}").write_bytes(b"x")
    rep = import_(vault, big, "")
    assert (rep.files, rep.dirs, rep.failed) == (60, 7, [])
    assert len(calls) == one_file, calls
    assert vault.read_file("big/d2/sub/f19") == b"x"


def test_import_into_existing_dir_never_replaces(vault: Vault, tmp_path: Path) -> None:
    vault.mkdir("dst")
    vault.write_file("dst/a", b"theirs")
    vault.mkdir(f"dst/{LONG}")
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(b"mine")
    (src / LONG).write_bytes(b"mine too")
    (src / "b").write_bytes(b"new")
    rep = import_(vault, f"{src}/", "dst")  # rsync's rule: the contents of src go into dst
    assert sorted(rep.failed) == sorted(
        [(str(src / "a"), "dst/a already exists in the vault"),
         (str(src / LONG), f"dst/{LONG} already exists in the vault")]
    )  # fmt: skip
    assert vault.read_file("dst/a") == b"theirs"
    assert vault.stat(f"dst/{LONG}").kind == "dir"
    assert vault.read_file("dst/b") == b"new"
    assert sorted(e.name for e in vault.listdir("dst", include_bad=True)) == sorted(["a", "b", LONG])


def test_import_does_not_replace_names_made_while_it_writes(vault: Vault, tmp_path: Path) -> None:
    """Names that appear in a directory the import just made are kept and reported."""
    src = tmp_path / "src"
    (src / "b-dir").mkdir(parents=True)
    (src / "b-dir" / "inner").write_bytes(b"mine")
    (src / "a-file").write_bytes(b"mine")
    os.symlink("mine", src / "c-link")
    (src / "d-file").write_bytes(b"mine too")

    def someone_else_writes(_n: int) -> None:
        if not vault.exists("src/a-file"):  # while a-file, the first entry, is written
            vault.write_file("src/a-file", b"theirs")
            vault.mkdir("src/b-dir")
            vault.symlink("theirs", "src/c-link")

    rep = import_(vault, src, "", progress=someone_else_writes)
    assert sorted(rep.failed) == [
        (str(src / name), f"src/{name} already exists in the vault") for name in ("a-file", "b-dir", "c-link")
    ]
    assert (rep.files, rep.dirs) == (1, 1)
    assert vault.read_file("src/a-file") == b"theirs"
    assert vault.listdir("src/b-dir") == []
    assert vault.readlink("src/c-link") == "theirs"
    assert vault.read_file("src/d-file") == b"mine too"
    names = sorted(e.name for e in vault.listdir("src", include_bad=True))
    assert names == ["a-file", "b-dir", "c-link", "d-file"]  # no temporary left


def test_import_into_a_missing_parent_or_onto_a_file_fails_cleanly(vault: Vault, tmp_path: Path) -> None:
    from vaultsh.vault.errors import FsError

    src = tmp_path / "f"
    src.write_bytes(b"x")
    vault.write_file("file", b"y")
    with pytest.raises(FsError, match=r"^nope/f: parent directory does not exist$"):
        import_(vault, src, "nope/f")
    with pytest.raises(FsError, match=r"^file/f: parent directory does not exist$"):
        import_(vault, src, "file/f")
    with pytest.raises(FsError, match=r"^file: already exists in the vault$"):
        import_(vault, src, "file")
    assert sorted(e.name for e in vault.listdir("", include_bad=True)) == ["file"]


@pytest.fixture
def tiny_vault(tiny_disk: Path, new_vault: NewVault) -> Iterator[Vault]:
    """A vault on a 1 MiB tmpfs: a full disk on demand (closed, so the tmpfs can unmount)."""
    with new_vault(tiny_disk) as vault:
        yield vault


def test_import_onto_a_full_disk_stops_with_one_error_and_no_temporary(
    tiny_vault: Vault, tmp_path: Path
) -> None:
    import errno

    from vaultsh.vault.errors import FsError

    src = tmp_path / "src"
    src.mkdir()
    (src / "a-small").write_bytes(b"fits")
    (src / "b-big").write_bytes(os.urandom(3 << 20))
    (src / "c-after").write_bytes(b"never reached")
    with pytest.raises(FsError) as info:
        import_(tiny_vault, src, "")
    # A write the full disk cuts short is retried, so the real cause is what the user sees.
    assert info.value.errno == errno.ENOSPC and "No space left" in str(info.value)
    assert "b-big: " in str(info.value) and ".vaultsh-" not in str(info.value), info.value
    assert [e.name for e in tiny_vault.listdir("src", include_bad=True)] == ["a-small"]
    assert tiny_vault.read_file("src/a-small") == b"fits"


def test_imported_merge_passes_gocryptfs_fsck(need_gocryptfs: None, vault: Vault, tmp_path: Path) -> None:
    """Long names, nested dirs and a merge into an existing dir: gocryptfs finds nothing wrong."""
    from gocryptfs_harness import gocryptfs_fsck

    vault.mkdir("dst")
    vault.write_file("dst/keep", b"k")
    src = _meta_tree(tmp_path / "src")
    assert import_(vault, f"{src}/", "dst").failed == []
    assert import_(vault, src, "dst").failed == []  # and once more as dst/src
    rc, out = gocryptfs_fsck(vault.cipherdir, "pw")
    assert rc == 0 and "no problems found" in out, out
