"""The directory-descriptor cache: bounded, never following links, safe against eviction and renames."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

import pytest

from vaultsh.vault import dirfds
from vaultsh.vault.dirfds import CipherPath, DirFds


def make_chain(root: Path, depth: int, name: str = "d" * 200) -> Path:
    """A chain of `depth` directories made relative to fds (deeper than PATH_MAX allows whole)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            nxt = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        os.close(os.open("leaf", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
    finally:
        os.close(fd)
    return root.joinpath(*[name] * depth)


def test_reaches_a_directory_deeper_than_path_max(tmp_path: Path) -> None:
    deep = make_chain(tmp_path, 30)
    assert len(str(deep)) > 4096
    dirs = DirFds(tmp_path)
    try:
        assert dirs.path_at(deep / "leaf", os.stat, follow_symlinks=False).st_size == 0
        with pytest.raises(OSError) as e:
            os.stat(deep / "leaf")  # what a path-based call gets
        assert e.value.errno == errno.ENAMETOOLONG
    finally:
        dirs.close()


def test_size_is_bounded_and_evicted_fds_stay_valid_during_a_call(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"d{i}").mkdir()
        (tmp_path / f"d{i}" / "f").write_bytes(b"x" * i)
    dirs = DirFds(tmp_path, size=1)
    try:

        def both(src: int, dst: int) -> tuple[int, int]:
            return os.stat("f", dir_fd=src).st_size, os.stat("f", dir_fd=dst).st_size

        # With room for one, opening d1 evicts d0 while the call still holds d0's descriptor.
        assert dirs.pair(tmp_path / "d0", tmp_path / "d1", both) == (0, 1)
        for i in range(5):
            assert dirs.at(tmp_path / f"d{i}", "f", os.stat).st_size == i
        assert len(dirs._fds) == 1
    finally:
        dirs.close()


def test_a_planted_symlink_is_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"s")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    dirs = DirFds(root)
    try:
        with pytest.raises(OSError) as e:
            dirs.at(root / "link", "secret", os.stat)
        assert e.value.errno == errno.ENOTDIR
        assert dirs.path_at(root / "link", os.readlink) == str(outside)
    finally:
        dirs.close()


def test_forget_and_expiry_see_a_renamed_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = tmp_path / "a"
    a.mkdir()
    (a / "f").write_bytes(b"1")
    monkeypatch.setattr(dirfds, "MAX_AGE", 1000.0)
    dirs = DirFds(tmp_path)
    try:
        assert dirs.at(a, "f", os.stat).st_size == 1
        os.rename(a, tmp_path / "b")
        a.mkdir()
        (a / "f").write_bytes(b"22")
        # Cached: the descriptor followed the moved directory ...
        assert dirs.at(a, "f", os.stat).st_size == 1
        # ... until it is older than MAX_AGE (a change behind our back) ...
        monkeypatch.setattr(dirfds, "MAX_AGE", -1.0)
        assert dirs.at(a, "f", os.stat).st_size == 2
        # ... or forgotten (our own rename or rmdir).
        monkeypatch.setattr(dirfds, "MAX_AGE", 1000.0)
        assert dirs.at(a, "f", os.stat).st_size == 2
        os.rename(a, tmp_path / "c")
        a.mkdir()
        assert dirs.at(a, "f", os.stat).st_size == 2
        dirs.forget(a)
        with pytest.raises(FileNotFoundError):
            dirs.at(a, "f", os.stat)
    finally:
        dirs.close()


def open_paths(under: Path) -> set[str]:
    """Paths below `under` that this process holds descriptors of."""
    held = set()
    for n in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            held.add(os.readlink(f"/proc/self/fd/{n}"))
    return {p for p in held if p.startswith(str(under))}


def test_close_releases_the_directory_and_the_cache_stays_usable(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_bytes(b"abc")
    dirs = DirFds(tmp_path)
    dirs.at(tmp_path / "a", "f", os.stat)
    assert str(tmp_path / "a") in open_paths(tmp_path)
    dirs.close()
    assert open_paths(tmp_path) == set()
    assert dirs.at(tmp_path / "a", "f", os.stat).st_size == 3
    dirs.close()


def test_with_object_acts_on_the_object_itself_and_only_the_one_meant(tmp_path: Path) -> None:
    """A symlink is the link itself, a FIFO is not opened, and `same` refuses a swapped name."""
    outside = tmp_path / "outside"
    outside.write_bytes(b"s")
    outside.chmod(0o600)
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    os.mkfifo(root / "fifo")  # nobody writes it: an open for reading would block
    (root / "file").write_bytes(b"f")
    dirs = DirFds(root)
    try:
        dirs.with_object(root / "link", lambda proc, st: os.utime(proc, ns=(1, 1)))
        assert os.lstat(root / "link").st_mtime_ns == 1 and outside.stat().st_mtime_ns != 1
        dirs.with_object(root / "link", lambda proc, st: os.chown(proc, 1234, 1234))
        assert os.lstat(root / "link").st_uid == 1234 and outside.stat().st_uid == os.getuid()
        assert dirs.with_object(root / "fifo", lambda proc, st: st.st_mode) == os.lstat(root / "fifo").st_mode
        ino = os.lstat(root / "file").st_ino
        os.link(outside, root / "swap")
        os.rename(root / "swap", root / "file")  # the name now holds another object
        with pytest.raises(OSError) as e:
            dirs.with_object(
                root / "file", lambda proc, st: os.chmod(proc, 0o777), lambda st: st.st_ino == ino
            )
        assert e.value.errno == errno.ESTALE
        assert outside.stat().st_mode & 0o777 == 0o600
    finally:
        dirs.close()


def test_renameat2_exchanges_two_names(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"A")
    (tmp_path / "b").mkdir()
    fd = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        dirfds.renameat2(fd, "a", fd, "b", dirfds.RENAME_EXCHANGE)
        assert (tmp_path / "b").read_bytes() == b"A" and (tmp_path / "a").is_dir()
        with pytest.raises(OSError) as e:
            dirfds.renameat2(fd, "a", fd, "missing", dirfds.RENAME_EXCHANGE)
        assert e.value.errno == errno.ENOENT
    finally:
        os.close(fd)


def test_pinned_directory_is_the_one_checked_for_the_whole_block(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "other").mkdir()
    ino = os.lstat(root / "d").st_ino
    dirs = DirFds(root)
    try:
        with dirs.pinned(root / "d", lambda st: st.st_ino == ino):
            os.rename(root / "d", root / "d.aside")
            os.rename(root / "other", root / "d")  # the name now holds another directory
            dirs.forget(root / "d")  # even dropped from the cache, the pinned one is used
            dirs.at(root / "d", "made", os.mkdir)
            dirs.at(root / "d" / "made", "deeper", os.mkdir)  # reached below the pinned one
        assert sorted(os.listdir(root / "d.aside")) == ["made"] and os.listdir(root / "d") == []
        assert os.listdir(root / "d.aside" / "made") == ["deeper"]
        with pytest.raises(OSError) as e, dirs.pinned(root / "d", lambda st: st.st_ino == ino):
            pass
        assert e.value.errno == errno.ESTALE
    finally:
        dirs.close()


def test_an_iv_is_read_once_per_descriptor_and_goes_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = tmp_path / "a"
    a.mkdir()
    (a / "iv").write_bytes(b"first")
    reads: list[bytes] = []

    def read(_path: CipherPath, fd: int) -> bytes:
        with open(os.open("iv", os.O_RDONLY, dir_fd=fd), "rb") as f:
            reads.append(f.read())
        return reads[-1]

    monkeypatch.setattr(dirfds, "MAX_AGE", 1000.0)
    dirs = DirFds(tmp_path)
    try:
        assert dirs.iv(a, read) == dirs.iv(a, read) == b"first"
        assert dirs.iv(tmp_path / "a", read) == b"first" and len(reads) == 1
        # Replaced behind our back: IV and descriptor still agree on the old directory ...
        os.rename(a, tmp_path / "old")
        a.mkdir()
        (a / "iv").write_bytes(b"second")
        assert dirs.iv(a, read) == b"first"
        assert dirs.at(a, "iv", os.stat).st_size == len(b"first")
        # ... and move on together, when the descriptor expires or is forgotten.
        monkeypatch.setattr(dirfds, "MAX_AGE", -1.0)
        assert dirs.iv(a, read) == b"second"
        monkeypatch.setattr(dirfds, "MAX_AGE", 1000.0)
        dirs.forget(a)
        assert dirs.iv(a, read) == b"second" and len(reads) == 3
        # A new directory's descriptor, handed over with its IV, costs no read; what was
        # cached at and below its path before is of an earlier directory.
        (tmp_path / "n" / "below").mkdir(parents=True)
        dirs.at(tmp_path / "n" / "below", ".", os.stat)
        os.rename(tmp_path / "n", tmp_path / "n.old")
        (tmp_path / "n").mkdir()
        made = os.open(tmp_path / "n", os.O_RDONLY | os.O_DIRECTORY)
        dirs.adopt(tmp_path / "n", made, b"written")
        assert dirs.iv(tmp_path / "n", read) == b"written" and len(reads) == 3
        assert dirs.call(tmp_path / "n", lambda fd: fd) == made
        with pytest.raises(FileNotFoundError):
            dirs.at(tmp_path / "n" / "below", ".", os.stat)
        # The root's IV is kept for as long as its descriptor.
        (tmp_path / "iv").write_bytes(b"root")
        assert dirs.iv(tmp_path, read) == dirs.iv(tmp_path, read) == b"root" and len(reads) == 4
    finally:
        dirs.close()


def test_a_cache_that_trusts_no_descriptor_reads_every_iv_anew(tmp_path: Path) -> None:
    # max_age below zero (trees others rename in) holds for IVs too: each call walks the
    # path again, so a directory replaced behind our back is seen at once.
    a = tmp_path / "a"
    a.mkdir()
    (a / "iv").write_bytes(b"first")

    def read(_path: CipherPath, fd: int) -> bytes:
        with open(os.open("iv", os.O_RDONLY, dir_fd=fd), "rb") as f:
            return f.read()

    dirs = DirFds(tmp_path, max_age=-1.0)
    try:
        assert dirs.iv(a, read) == b"first"
        os.rename(a, tmp_path / "old")
        a.mkdir()
        (a / "iv").write_bytes(b"second")
        assert dirs.iv(a, read) == b"second"
    finally:
        dirs.close()
