"""Forward-mode FUSE through the kernel: POSIX behaviour, random I/O, concurrency, gocryptfs interop."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
import random
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fuse_harness import mount_vault, mounted_ops, require_fuse, wait_for
from gocryptfs_harness import (
    Manifest,
    assert_same_tree,
    gocryptfs_fsck,
    gocryptfs_init,
    gocryptfs_mount,
    import_or_skip,
    make_interop_tree,
    tree_manifest,
)
from posix_table import POSIX_CASES, OsApi, PosixCase, run_posix_case
from vault_factory import new_vault

from vaultsh.vault import fsck
from vaultsh.vault.vault import Vault

import_or_skip("pyfuse3")
from vaultsh.fs import forward  # noqa: E402 - imports pyfuse3
from vaultsh.fs.forward import FORWARD_MOUNT_OPTIONS, ForwardOperations, raise_readahead  # noqa: E402

PASSWORD = "mount pässword"


@pytest.fixture(scope="module")
def shared_mount(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """One mounted default vault for the tests that each work in their own subdirectory."""
    require_fuse()
    base = tmp_path_factory.mktemp("shared-mount")
    cipher = base / "cipher"
    new_vault(cipher, PASSWORD).close()
    with mount_vault(cipher, base / "mnt", PASSWORD) as mnt:
        yield cipher, mnt


def fresh_dir(root: Path, name: str) -> Path:
    d = root / name
    d.mkdir()
    return d


# -- the POSIX table through the kernel --------------------------------------------------------


@pytest.mark.parametrize("case", POSIX_CASES, ids=[c.id for c in POSIX_CASES])
def test_posix_table_on_plain_dir(tmp_path: Path, case: PosixCase) -> None:
    """The table's expectations are what a local filesystem does."""
    run_posix_case(OsApi(tmp_path), case)


@pytest.mark.parametrize("case", POSIX_CASES, ids=[c.id for c in POSIX_CASES])
def test_posix_table_through_mount(shared_mount: tuple[Path, Path], case: PosixCase) -> None:
    _cipher, mnt = shared_mount
    run_posix_case(OsApi(fresh_dir(mnt, "case-" + case.id)), case)


def test_a_file_rewritten_behind_the_mount_shows_its_new_size_and_content(
    need_gocryptfs: None, tmp_path: Path
) -> None:
    """The kernel caches a file's size and pages (writeback cache); a change made in the
    cipher dir directly, here through a gocryptfs mount of it, still shows once the entry
    times out, as it did without that cache."""
    cipher = tmp_path / "cipher"
    new_vault(cipher, PASSWORD).close()

    def short_timeouts() -> ForwardOperations:
        forward.ENTRY_TIMEOUT = forward.ATTR_TIMEOUT = 0.2  # in the serving child only
        return ForwardOperations(Vault.open(cipher, password=PASSWORD.encode()))

    with mounted_ops(short_timeouts, tmp_path / "ours", set(FORWARD_MOUNT_OPTIONS)) as mnt:
        (mnt / "f").write_bytes(b"hello\n")
        assert (mnt / "f").read_bytes() == b"hello\n"
        with gocryptfs_mount(cipher, tmp_path / "theirs", PASSWORD) as theirs:
            (theirs / "f").write_bytes(b"hello world, and more\n")
        wait_for(lambda: (mnt / "f").stat().st_size == 22, "the new size through the mount")
        assert (mnt / "f").read_bytes() == b"hello world, and more\n"


def test_ls_a_shows_dot_and_dotdot(shared_mount: tuple[Path, Path]) -> None:
    _cipher, mnt = shared_mount
    work = fresh_dir(mnt, "dots")
    (work / "sub").mkdir()
    (work / "sub" / "file").write_bytes(b"x")
    out = subprocess.run(["ls", "-a1", str(work / "sub")], capture_output=True, text=True, check=True).stdout
    assert out.split() == [".", "..", "file"]
    listed = subprocess.run(["ls", "-ai1", str(work / "sub")], capture_output=True, text=True, check=True)
    inodes = {name: int(num) for num, name in (line.split() for line in listed.stdout.splitlines())}
    assert inodes["."] == os.stat(work / "sub").st_ino and inodes[".."] == os.stat(work).st_ino


def test_rm_rf_leaves_only_the_vault_files(shared_mount: tuple[Path, Path]) -> None:
    cipher, mnt = shared_mount
    work = fresh_dir(mnt, "rmrf")
    make_interop_tree(work)
    listing = subprocess.run(["ls", "-lR", str(work)], capture_output=True, text=True, check=True).stdout
    assert "big-3MiB.bin" in listing and "ファイル.txt" in listing
    cipher_work = Vault.open(cipher, password=PASSWORD.encode()).cipher_path("rmrf")
    assert len(os.listdir(cipher_work)) > 10
    shutil.rmtree(work)
    assert not work.exists()
    # no leftover long-name sidecars or parked dirivs (§6.7, §8.3)
    assert not any(
        n.startswith("gocryptfs.")
        for n in os.listdir(cipher)
        if n not in ("gocryptfs.conf", "gocryptfs.diriv")
    )


def test_large_sequential_file_with_readahead(shared_mount: tuple[Path, Path]) -> None:
    """Megabyte writes and reads (the kernel's largest requests), with read-ahead raised."""
    cipher, mnt = shared_mount
    work = fresh_dir(mnt, "large")
    data = random.Random(11).randbytes(9 * 1024 * 1024 + 123)
    with open(work / "big", "wb") as f:
        for off in range(0, len(data), 1 << 20):
            f.write(data[off : off + (1 << 20)])
    dev = os.stat(mnt).st_dev
    bdi = Path(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb")
    if os.geteuid() == 0:  # sysfs is root's to change
        assert raise_readahead(mnt, 2048)
        assert bdi.read_text().strip() == "2048"
    else:
        assert not raise_readahead(mnt, 2048)
    fd = os.open(work / "big", os.O_RDONLY)
    try:
        _drop_cache(fd)
        got = b"".join(iter(lambda: os.read(fd, 1 << 20), b""))
    finally:
        os.close(fd)
    assert got == data
    vault = Vault.open(cipher, password=PASSWORD.encode())
    assert vault.cipher_path("large/big").stat().st_size == vault.content.plain_to_cipher_size(len(data))
    sv = os.statvfs(mnt)
    assert sv.f_namemax == 255 and sv.f_blocks == os.statvfs(cipher).f_blocks


def test_a_byte_past_2_gib_through_the_kernel(shared_mount: tuple[Path, Path]) -> None:
    """pjdfstest open/25 (its pwrite/pread actions are missing from some builds): offsets past
    2^31, and the hole before them stays a hole in the cipher file."""
    cipher, mnt = shared_mount
    work = fresh_dir(mnt, "past-2gib")
    far = 2 * 1024**3 + 1
    fd = os.open(work / "f", os.O_CREAT | os.O_WRONLY, 0o755)
    try:
        assert os.pwrite(fd, b"a", far) == 1
    finally:
        os.close(fd)
    assert os.lstat(work / "f").st_size == far + 1
    fd = os.open(work / "f", os.O_RDONLY)
    try:
        _drop_cache(fd)
        assert os.pread(fd, 1, far) == b"a"
        assert os.pread(fd, 4, far - 3) == b"\0\0\0a"
        assert os.pread(fd, 8, 1024**3) == bytes(8)  # inside the hole
    finally:
        os.close(fd)
    vault = Vault.open(cipher, password=PASSWORD.encode())
    backing = os.stat(vault.cipher_path("past-2gib/f"))
    assert backing.st_size == vault.content.plain_to_cipher_size(far + 1)
    assert backing.st_blocks * 512 < 1024 * 1024  # nothing written for the hole
    os.unlink(work / "f")
    assert os.listdir(work) == []


def test_shared_mmap_reads_and_writes_reach_the_vault(shared_mount: tuple[Path, Path]) -> None:
    """What databases do (SQLite's -shm, LMDB): a shared writable mapping across block
    boundaries, msync, and growth by ftruncate then a store at the new end."""
    cipher, mnt = shared_mount
    work = fresh_dir(mnt, "mmap")
    data = random.Random(3).randbytes(3 * 4096 + 123)
    (work / "m.bin").write_bytes(data)
    want = bytearray(data)
    fd = os.open(work / "m.bin", os.O_RDWR)
    try:
        with mmap.mmap(fd, len(data)) as m:
            assert m[:] == data
            m[4090:4110] = b"Z" * 20  # across the first block boundary
            want[4090:4110] = b"Z" * 20
            m.flush()
        os.ftruncate(fd, 20_000)
        want += bytes(20_000 - len(want))
        with mmap.mmap(fd, 20_000) as m:
            m[19_990:] = b"E" * 10
            want[19_990:] = b"E" * 10
            m.flush()
        os.fsync(fd)
    finally:
        os.close(fd)
    assert (work / "m.bin").read_bytes() == want
    with Vault.open(cipher, password=PASSWORD.encode()) as vault:
        assert vault.read_file("mmap/m.bin") == want


def test_locks_exclude_another_process(shared_mount: tuple[Path, Path]) -> None:
    """POSIX record locks and flock(2) through the mount (SQLite's and git's locking): held
    by one process, refused to another until released."""
    _, mnt = shared_mount
    target = fresh_dir(mnt, "locks") / "db"
    target.write_bytes(b"x" * 100)
    probe = (
        "import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDWR)\n"
        "for take in (fcntl.lockf, fcntl.flock):\n"
        "    try:\n"
        "        take(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "        print('got')\n"
        "    except OSError as e:\n"
        "        print(e.errno)\n"
    )

    def others_get() -> list[str]:
        out = subprocess.run(
            [sys.executable, "-c", probe, str(target)], capture_output=True, text=True, check=True
        )
        return out.stdout.split()

    fd = os.open(target, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert others_get() == [str(errno.EAGAIN)] * 2
    finally:
        os.close(fd)  # releases both
    assert others_get() == ["got", "got"]


def test_a_full_disk_reports_enospc_and_leaves_every_block_readable(tiny_disk: Path, tmp_path: Path) -> None:
    """With the kernel's writeback cache the error comes at fsync, and it must be ENOSPC, not
    the EIO of a torn block: the space of each write is reserved before it is written."""
    cipher = tiny_disk / "cipher"
    new_vault(cipher, PASSWORD).close()
    data = random.Random(5).randbytes(3 * 1024 * 1024)  # three times the disk
    with mount_vault(cipher, tmp_path / "mnt", PASSWORD) as mnt:
        fd = os.open(mnt / "big", os.O_CREAT | os.O_WRONLY, 0o644)
        try:
            fits = 400 * 1024 + 100  # ends inside a block, which the next writes rewrite
            os.pwrite(fd, data[:fits], 0)
            os.fsync(fd)
            with pytest.raises(OSError) as e:
                for off in range(fits, len(data), 128 * 1024):
                    os.pwrite(fd, data[off : off + 128 * 1024], off)
                os.fsync(fd)
            assert e.value.errno == errno.ENOSPC
        finally:
            with contextlib.suppress(OSError):  # close reports the same error again
                os.close(fd)
    with Vault.open(cipher, password=PASSWORD.encode()) as vault:
        got = vault.read_file("big")  # raises on any torn or unauthentic block
        assert fits <= len(got) < len(data) and got[:fits] == data[:fits]
        # Later writes that did fit leave the failed range between as a hole: zeros.
        assert all(g == d or g == 0 for g, d in zip(got, data, strict=False))
        assert list(fsck.check(vault)) == []


def test_an_unlinked_open_file_keeps_its_data_through_the_kernel(shared_mount: tuple[Path, Path]) -> None:
    """pjdfstest unlink/14: an open file is not freed by unlink; its link count reads 0 and
    I/O through the open descriptor goes on."""
    _, mnt = shared_mount
    work = fresh_dir(mnt, "unlinked-open")
    target = work / "n0"
    target.write_bytes(b"Hello, World!")
    fd = os.open(target, os.O_RDONLY)
    try:
        os.unlink(target)
        assert os.fstat(fd).st_nlink == 0
        assert os.pread(fd, 100, 0) == b"Hello, World!"
    finally:
        os.close(fd)
    target.write_bytes(b"")
    fd = os.open(target, os.O_RDWR)
    try:
        os.write(fd, b"Hello,_World!")
        os.unlink(target)
        assert not target.exists()
        _drop_cache(fd)
        assert os.pread(fd, 100, 0) == b"Hello,_World!"
        os.pwrite(fd, b"again", 13)
        assert os.fstat(fd).st_size == 18
        assert os.pread(fd, 100, 0) == b"Hello,_World!again"
    finally:
        os.close(fd)
    assert os.listdir(work) == []
    os.rmdir(work)


# -- random I/O against a plain directory ------------------------------------------------------


def _drop_cache(fd: int) -> None:
    # Forget the kernel's cached pages so the next read reaches the filesystem.
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def test_random_io_matches_plain_files(need_gocryptfs: None, tmp_path: Path) -> None:
    require_fuse()
    cipher = tmp_path / "cipher"
    new_vault(cipher, PASSWORD).close()
    plain = fresh_dir(tmp_path, "plain")
    rng = random.Random(20240611)
    names = ["a", "b", "c"]
    with mount_vault(cipher, tmp_path / "mnt", PASSWORD) as mnt:
        fds = {}
        for n in names:
            fds[n] = (
                os.open(mnt / n, os.O_RDWR | os.O_CREAT, 0o644),
                os.open(plain / n, os.O_RDWR | os.O_CREAT, 0o644),
            )
        for step in range(3000):
            n = rng.choice(names)
            ours, ref = fds[n]
            roll = rng.random()
            size = os.fstat(ref).st_size
            if roll < 0.5:
                off = rng.randrange(0, 70_000)
                data = rng.randbytes(rng.choice([1, 17, 4095, 4096, 4097, rng.randrange(1, 20_000)]))
                assert os.pwrite(ours, data, off) == os.pwrite(ref, data, off)
            elif roll < 0.65:
                new = rng.choice(
                    [0, rng.randrange(0, 80_000), size + rng.randrange(1, 9000), 4096 * rng.randrange(0, 20)]
                )
                os.ftruncate(ours, new)
                os.ftruncate(ref, new)
            elif roll < 0.95:
                _drop_cache(ours)
                off = rng.randrange(0, size + 100)
                length = rng.randrange(1, 30_000)
                assert os.pread(ours, length, off) == os.pread(ref, length, off), (step, n, off, length)
            else:  # reopen through a new handle
                os.close(ours)
                ours = os.open(mnt / n, os.O_RDWR)
                fds[n] = (ours, ref)
            assert os.fstat(ours).st_size == os.fstat(ref).st_size, step
        for ours, ref in fds.values():
            os.close(ours)
            os.close(ref)
        for n in names:
            assert (mnt / n).read_bytes() == (plain / n).read_bytes()
    vault = Vault.open(cipher, password=PASSWORD.encode())
    for n in names:
        assert vault.read_file(n) == (plain / n).read_bytes()
    rc, out = gocryptfs_fsck(cipher, PASSWORD)
    assert rc == 0, out


# -- concurrency --------------------------------------------------------------------------------


def test_concurrent_writers(shared_mount: tuple[Path, Path]) -> None:
    """Threads writing disjoint, block-unaligned ranges of one file, and two other files."""
    _cipher, mnt = shared_mount
    work = fresh_dir(mnt, "concurrent")
    chunk, chunks, threads = 10_007, 48, 4  # chunks share 4 KiB blocks with their neighbours
    rng = random.Random(7)
    pieces = [rng.randbytes(chunk) for _ in range(chunks)]
    other = {name: rng.randbytes(700_000) for name in ("x", "y")}
    shared = work / "shared"
    shared.touch()
    errors: list[BaseException] = []

    def write_share(t: int) -> None:
        try:
            fd = os.open(shared, os.O_WRONLY)
            try:
                for i in range(t, chunks, threads):
                    os.pwrite(fd, pieces[i], i * chunk)
            finally:
                os.close(fd)
        except BaseException as e:  # reported below
            errors.append(e)

    def write_other(name: str) -> None:
        try:
            with open(work / name, "wb") as f:
                data = other[name]
                for off in range(0, len(data), 65_536):
                    f.write(data[off : off + 65_536])
        except BaseException as e:  # reported below
            errors.append(e)

    workers = [threading.Thread(target=write_share, args=(t,)) for t in range(threads)]
    workers += [threading.Thread(target=write_other, args=(n,)) for n in other]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors, errors
    for p in (shared, *(work / n for n in other)):
        fd = os.open(p, os.O_RDONLY)
        _drop_cache(fd)
        os.close(fd)
    assert shared.read_bytes() == b"".join(pieces)
    for name, data in other.items():
        assert (work / name).read_bytes() == data


def test_concurrent_readers_and_a_writer(shared_mount: tuple[Path, Path]) -> None:
    _cipher, mnt = shared_mount
    work = fresh_dir(mnt, "readers")
    data = random.Random(3).randbytes(1_000_000)
    (work / "r").write_bytes(data)
    results: list[bool] = []

    def reader() -> None:
        fd = os.open(work / "r", os.O_RDONLY)
        try:
            for _ in range(5):
                _drop_cache(fd)
                results.append(os.pread(fd, len(data), 0) == data)
        finally:
            os.close(fd)

    def writer() -> None:
        with open(work / "w", "wb") as f:
            for _ in range(20):
                f.write(data[:50_000])

    ts = [threading.Thread(target=reader) for _ in range(3)] + [threading.Thread(target=writer)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert results == [True] * 15
    assert (work / "w").stat().st_size == 20 * 50_000


def test_read_only_mount_refuses_writes(tmp_path: Path) -> None:
    require_fuse()
    cipher = tmp_path / "cipher"
    with new_vault(cipher, PASSWORD) as vault:
        vault.write_file("f", b"content")
    with mount_vault(cipher, tmp_path / "mnt", PASSWORD, read_only=True) as mnt:
        assert (mnt / "f").read_bytes() == b"content"
        for action in (
            lambda: (mnt / "d").mkdir(),
            lambda: (mnt / "f").write_bytes(b"x"),
            lambda: (mnt / "f").unlink(),
            lambda: os.chmod(mnt / "f", 0o600),
        ):
            with pytest.raises(OSError) as info:
                action()
            assert info.value.errno == errno.EROFS


# -- interop with the real gocryptfs ------------------------------------------------------------

INTEROP_FLAGS = {
    "default": (),
    "plaintextnames": ("-plaintextnames",),
    "aessiv": ("-aessiv",),
    "xchacha": ("-xchacha",),
    "deterministic-names": ("-deterministic-names",),
    "longnamemax62": ("-longnamemax", "62"),
}
interop = pytest.mark.parametrize("flags", list(INTEROP_FLAGS.values()), ids=list(INTEROP_FLAGS))


@pytest.fixture(scope="module")
def expected_tree(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    return tree_manifest(make_interop_tree(tmp_path_factory.mktemp("reference") / "tree"))


@interop
def test_tree_written_by_us_reads_in_gocryptfs(
    need_gocryptfs: None, tmp_path: Path, expected_tree: Manifest, flags: tuple[str, ...]
) -> None:
    cipher = tmp_path / "cipher"
    gocryptfs_init(cipher, PASSWORD, *flags)
    with mount_vault(cipher, tmp_path / "ours", PASSWORD) as mnt:
        make_interop_tree(mnt)
        assert_same_tree(tree_manifest(mnt), expected_tree, "our mount (written)")
    with gocryptfs_mount(cipher, tmp_path / "theirs", PASSWORD) as mnt:
        assert_same_tree(tree_manifest(mnt), expected_tree, "gocryptfs mount of our tree")
    rc, out = gocryptfs_fsck(cipher, PASSWORD)
    assert rc == 0, out


@interop
def test_tree_written_by_gocryptfs_reads_in_ours(
    need_gocryptfs: None, tmp_path: Path, expected_tree: Manifest, flags: tuple[str, ...]
) -> None:
    cipher = tmp_path / "cipher"
    gocryptfs_init(cipher, PASSWORD, *flags)
    with gocryptfs_mount(cipher, tmp_path / "theirs", PASSWORD) as mnt:
        make_interop_tree(mnt)
    with mount_vault(cipher, tmp_path / "ours", PASSWORD) as mnt:
        assert_same_tree(tree_manifest(mnt), expected_tree, "our mount of gocryptfs's tree")
        # Edit the gocryptfs tree in place: rename a long-named dir, replace a file, prune.
        (mnt / "sizes" / "size-4097").write_bytes(b"rewritten")
        os.rename(mnt / "a", mnt / "links" / "a-moved")
        shutil.rmtree(mnt / "modes")
    rc, out = gocryptfs_fsck(cipher, PASSWORD)
    assert rc == 0, out
    with gocryptfs_mount(cipher, tmp_path / "theirs", PASSWORD) as mnt:
        assert (mnt / "sizes" / "size-4097").read_bytes() == b"rewritten"
        assert (
            mnt / "links" / "a-moved" / "b" / "c" / "d" / "deep.txt"
        ).read_bytes() == b"four levels down\n"
        assert not (mnt / "modes").exists()


@pytest.mark.parametrize("flags", [(), ("-plaintextnames",)], ids=["default", "plaintextnames"])
def test_xattrs_interop_with_gocryptfs(need_gocryptfs: None, tmp_path: Path, flags: tuple[str, ...]) -> None:
    cipher = tmp_path / "cipher"
    gocryptfs_init(cipher, PASSWORD, *flags)
    with mount_vault(cipher, tmp_path / "ours", PASSWORD) as mnt:
        (mnt / "f").write_bytes(b"x")
        (mnt / "d").mkdir()
        os.setxattr(mnt / "f", "user.ours", b"written by us \x00\xff")
        os.setxattr(mnt / "d", "user.empty", b"")
    with gocryptfs_mount(cipher, tmp_path / "theirs", PASSWORD) as mnt:
        assert os.getxattr(mnt / "f", "user.ours") == b"written by us \x00\xff"
        assert os.getxattr(mnt / "d", "user.empty") == b""
        os.setxattr(mnt / "f", "user.theirs", b"written by gocryptfs")
    with mount_vault(cipher, tmp_path / "ours", PASSWORD) as mnt:
        assert sorted(os.listxattr(mnt / "f")) == ["user.ours", "user.theirs"]
        assert os.getxattr(mnt / "f", "user.theirs") == b"written by gocryptfs"
        os.removexattr(mnt / "f", "user.ours")
        assert os.listxattr(mnt / "f") == ["user.theirs"]


def _ls_l_answers(mnt: Path) -> dict[tuple[str, str], bytes | str]:
    """What `ls -l` learns about each test object's SELinux label and ACLs: a value or an errno."""
    out: dict[tuple[str, str], bytes | str] = {}
    for obj in ("f", "d"):
        for name in ("security.selinux", "system.posix_acl_access", "system.posix_acl_default"):
            try:
                out[(obj, name)] = os.getxattr(mnt / obj, name, follow_symlinks=False)
            except OSError as e:
                out[(obj, name)] = errno.errorcode.get(e.errno or 0, str(e.errno))
    return out


def test_ls_l_attribute_answers_match_gocryptfs(need_gocryptfs: None, tmp_path: Path) -> None:
    cipher = tmp_path / "cipher"
    gocryptfs_init(cipher, PASSWORD)
    with gocryptfs_mount(cipher, tmp_path / "theirs", PASSWORD) as mnt:
        (mnt / "f").write_bytes(b"x")
        (mnt / "d").mkdir()
        theirs = _ls_l_answers(mnt)
    with mount_vault(cipher, tmp_path / "ours", PASSWORD) as mnt:
        assert _ls_l_answers(mnt) == theirs
        assert set(theirs.values()) == {"ENODATA"}
        os.setxattr(mnt / "f", "security.selinux", b"label by us\0", follow_symlinks=False)
        assert os.getxattr(mnt / "f", "security.selinux", follow_symlinks=False) == b"label by us\0"
    with gocryptfs_mount(cipher, tmp_path / "theirs", PASSWORD) as mnt:
        assert os.getxattr(mnt / "f", "security.selinux", follow_symlinks=False) == b"label by us\0"
        os.setxattr(mnt / "d", "security.selinux", b"label by gocryptfs\0", follow_symlinks=False)
        theirs = _ls_l_answers(mnt)
    with mount_vault(cipher, tmp_path / "ours", PASSWORD) as mnt:
        assert _ls_l_answers(mnt) == theirs
        assert theirs[("d", "security.selinux")] == b"label by gocryptfs\0"


def test_rename_exchange_through_the_kernel(shared_mount: tuple[Path, Path]) -> None:
    """renameat2(RENAME_EXCHANGE), the atomic swap package managers use, as gocryptfs has it."""
    from vaultsh.vault.dirfds import RENAME_EXCHANGE, renameat2

    cipher, mnt = shared_mount
    d = fresh_dir(mnt, "exchange")
    long_name = "l" * 220  # a long name: its .name sidecar stays with the name
    (d / "new").mkdir()
    (d / "new" / "version").write_bytes(b"2")
    (d / long_name).mkdir()
    (d / long_name / "version").write_bytes(b"1")
    (d / "file").write_bytes(b"plain file")
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        renameat2(fd, "new", fd, long_name, RENAME_EXCHANGE)
        assert (d / long_name / "version").read_bytes() == b"2"
        assert (d / "new" / "version").read_bytes() == b"1"
        renameat2(fd, "file", fd, "new", RENAME_EXCHANGE)  # a file and a directory
        assert (d / "new").read_bytes() == b"plain file" and (d / "file" / "version").read_bytes() == b"1"
    finally:
        os.close(fd)
    assert sorted(os.listdir(d)) == sorted(["file", "new", long_name])
    v = Vault.open(cipher, password=PASSWORD.encode())
    assert v.read_file(f"exchange/{long_name}/version") == b"2"
    assert all(e.error is None for e in v.listdir("exchange", include_bad=True))
