"""Reverse mounts while the plain tree changes: renames, recreated names, hard links, rsync (§9.2)."""

from __future__ import annotations

import errno
import os
import random
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fuse_harness import mount_view, require_fuse
from gocryptfs_harness import gocryptfs_init, gocryptfs_mount, import_or_skip, skip_or_fail
from vault_factory import new_vault

from vaultsh.vault import reverse as reverse_mod
from vaultsh.vault.config import REVERSE_CONF_NAME, unlock
from vaultsh.vault.content import HEADER_LEN
from vaultsh.vault.names import DIRIV_NAME, LONGNAME_SUFFIX
from vaultsh.vault.reverse import ReverseView, derive

pyfuse3 = import_or_skip("pyfuse3")
trio = import_or_skip("trio")

from vaultsh.fs.reverse import ReverseOperations  # noqa: E402 - after the check above: it imports pyfuse3

PASSWORD = "test"
# Far longer than any test takes: every read below happens while the kernel may still trust
# the names and attributes it was given before the plain tree changed.
LONG_TIMEOUT = 3600.0


def open_view(plain: Path) -> ReverseView:
    return ReverseView.open(plain, password=PASSWORD.encode())


class FreshViews:
    """Unlocks the plain dir's config once, then builds a new ReverseView per call."""

    def __init__(self, plain: Path) -> None:
        conf = plain / REVERSE_CONF_NAME
        self.plain = plain
        self.key, self.options, _ = unlock(
            conf, password=PASSWORD.encode(), master_key=None, options=None, missing_ok=False
        )
        self.conf = conf

    def __call__(self) -> ReverseView:
        return ReverseView(self.plain, self.key, self.options, self.conf)


def cipher_path(view: ReverseView, plain: str) -> str:
    """The view's path of the plain relative path `plain`."""
    out = ""
    for part in plain.split("/"):
        disk, _full = view.encrypt_name(out, part)
        out = f"{out}/{disk}" if out else disk
    return out


def expected_bytes(view: ReverseView, plain: str) -> bytes:
    return b"".join(view.iter_file(view.resolve(cipher_path(view, plain))))


def vault_plain(root: Path) -> Path:
    new_vault.reverse_folder(root, PASSWORD)
    return root


def write(path: Path, data: bytes, mtime_ns: int) -> None:
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def rotate(plain: Path, old: bytes, new: bytes, *, same_mtime: bool) -> None:
    """logrotate's `create` mode: app.log becomes app.log.1, a new app.log takes its name."""
    os.rename(plain / "logs" / "app.log", plain / "logs" / "app.log.1")
    mtime = os.stat(plain / "logs" / "app.log.1").st_mtime_ns
    write(plain / "logs" / "app.log", new, mtime if same_mtime else mtime + 10**9)


# ---------------------------------------------------------------------------------------------
# Handlers called directly: what the kernel is told about its page cache
# ---------------------------------------------------------------------------------------------


def call(fn: Any, *args: Any) -> Any:
    async def run() -> Any:
        return await fn(*args)

    return trio.run(run)


def open_and_release(ops: ReverseOperations, inode: int) -> bool:
    """Open and close `inode`; whether the kernel may keep its cached pages."""
    info = call(ops.open, inode, os.O_RDONLY, pyfuse3.RequestContext())
    call(ops.release, info.fh)
    return bool(info.keep_cache)


class LogsView:
    """Handlers of a view of a plain dir holding logs/app.log, with logs/ looked up."""

    def __init__(self, tmp_path: Path, content: bytes) -> None:
        self.plain = vault_plain(tmp_path / "plain")
        (self.plain / "logs").mkdir()
        write(self.plain / "logs" / "app.log", content, 10**18)
        self.view = open_view(self.plain)
        self.ops = ReverseOperations(self.view)
        self.ctx = pyfuse3.RequestContext()
        logs = cipher_path(self.view, "logs").encode()
        self.logs = call(self.ops.lookup, pyfuse3.ROOT_INODE, logs, self.ctx)

    def lookup_log(self, name: str) -> Any:
        disk = cipher_path(self.view, f"logs/{name}").split("/")[-1]
        return call(self.ops.lookup, self.logs.st_ino, disk.encode(), self.ctx)


def test_cached_pages_are_kept_only_while_path_and_file_are_unchanged(tmp_path: Path) -> None:
    logs = LogsView(tmp_path, b"first\n" * 1000)
    plain, ops, ctx, lookup_log = logs.plain, logs.ops, logs.ctx, logs.lookup_log
    first = lookup_log("app.log")
    assert not open_and_release(ops, first.st_ino)  # nothing cached yet that could be kept
    assert open_and_release(ops, first.st_ino)  # unchanged: repeated reads stay cached
    # Same size, same mtime, new content: the ctime tells.
    before = os.stat(plain / "logs" / "app.log")
    write(plain / "logs" / "app.log", b"FIRST\n" * 1000, before.st_mtime_ns)
    assert os.stat(plain / "logs" / "app.log").st_ctime_ns != before.st_ctime_ns
    assert not open_and_release(ops, first.st_ino)
    assert open_and_release(ops, first.st_ino)

    rotate(plain, b"", b"second\n" * 857, same_mtime=True)
    # The old inode's name now leads to another file: the kernel must look it up again.
    with pytest.raises(pyfuse3.FUSEError) as stale:
        call(ops.open, first.st_ino, os.O_RDONLY, ctx)
    assert stale.value.errno == errno.ESTALE
    with pytest.raises(pyfuse3.FUSEError) as stale:
        call(ops.getattr, first.st_ino, ctx)
    assert stale.value.errno == errno.ESTALE
    renamed, new = lookup_log("app.log.1"), lookup_log("app.log")
    # Three inodes: the renamed file is another object of the view (another file ID).
    assert len({first.st_ino, renamed.st_ino, new.st_ino}) == 3
    assert new.st_ino == os.stat(plain / "logs" / "app.log").st_ino
    assert not open_and_release(ops, renamed.st_ino)
    assert not open_and_release(ops, new.st_ino)
    assert open_and_release(ops, renamed.st_ino)


def test_an_open_file_keeps_its_attributes_after_its_name_is_reused(tmp_path: Path) -> None:
    logs = LogsView(tmp_path, b"old\n" * 100)
    plain, ops, ctx = logs.plain, logs.ops, logs.ctx
    old = logs.lookup_log("app.log")
    before = expected_bytes(logs.view, "logs/app.log")
    info = call(ops.open, old.st_ino, os.O_RDONLY, ctx)
    rotate(plain, b"", b"new\n" * 7, same_mtime=False)
    assert call(ops.getattr, old.st_ino, ctx).st_size == old.st_size  # fstat of the open file
    # It goes on reading the file it opened, with the IVs of the path it was opened by.
    assert call(ops.read, info.fh, 0, 1 << 20) == before
    call(ops.release, info.fh)
    with pytest.raises(pyfuse3.FUSEError) as stale:  # closed: nothing left to answer for it
        call(ops.getattr, old.st_ino, ctx)
    assert stale.value.errno == errno.ESTALE


def test_a_plain_dir_given_through_a_symlink_is_the_root_inode(tmp_path: Path) -> None:
    plain = vault_plain(tmp_path / "plain")
    (plain / "sub").mkdir()
    os.symlink(plain, tmp_path / "link")
    view = open_view(tmp_path / "link")
    ops = ReverseOperations(view)
    ctx = pyfuse3.RequestContext()
    sub = call(ops.lookup, pyfuse3.ROOT_INODE, cipher_path(view, "sub").encode(), ctx)
    assert call(ops.lookup, sub.st_ino, b"..", ctx).st_ino == pyfuse3.ROOT_INODE
    assert call(ops.getattr, pyfuse3.ROOT_INODE, ctx).st_ino == pyfuse3.ROOT_INODE


@pytest.mark.parametrize("openat2", [True, False], ids=["openat2", "walk"])
def test_paths_are_resolved_afresh_and_never_through_a_symlink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, openat2: bool
) -> None:
    if not openat2:  # as on kernels before 5.6: the path is walked one directory at a time
        monkeypatch.setattr(reverse_mod, "_syscall", None)
    plain = vault_plain(tmp_path / "plain")
    (plain / "a" / "b").mkdir(parents=True)
    (plain / "a" / "b" / "f").write_bytes(b"inside\n")
    outside = tmp_path / "outside"
    (outside / "b").mkdir(parents=True)
    (outside / "b" / "f").write_bytes(b"outside\n")
    view = open_view(plain)
    assert view.lstat_plain("a/b/f").st_ino == os.stat(plain / "a" / "b" / "f").st_ino
    # Renamed behind the view's back: the old path now names another file, at once.
    os.rename(plain / "a", plain / "a.old")
    (plain / "a" / "b").mkdir(parents=True)
    (plain / "a" / "b" / "f").write_bytes(b"new\n")
    assert view.lstat_plain("a/b/f").st_ino == os.stat(plain / "a" / "b" / "f").st_ino
    shutil.rmtree(plain / "a")
    os.symlink(outside, plain / "a")
    for attempt in (lambda: view.lstat_plain("a/b/f"), lambda: view.open_plain("a/b/f")):
        with pytest.raises(OSError) as refused:
            attempt()
        assert refused.value.errno in (errno.ENOTDIR, errno.ELOOP)


# ---------------------------------------------------------------------------------------------
# Real mounts
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("same_mtime", [True, False], ids=["same-size-and-mtime", "new-mtime"])
@pytest.mark.parametrize("order", ["renamed-first", "new-first"])
def test_logrotate_rename_and_recreate_reads_both_correctly(
    tmp_path: Path, order: str, same_mtime: bool
) -> None:
    require_fuse()
    plain = vault_plain(tmp_path / "plain")
    (plain / "logs").mkdir()
    old = b"old line\n" * 2000
    new = b"NEW LINE\n" * (2000 if same_mtime else 700)
    write(plain / "logs" / "app.log", old, 10**18)
    with mount_view(plain, tmp_path / "mnt", PASSWORD, cache_timeout=LONG_TIMEOUT) as mnt:
        before = open_view(plain)
        first_name = mnt / cipher_path(before, "logs/app.log")
        assert first_name.read_bytes() == expected_bytes(before, "logs/app.log")  # now in the page cache
        first_size = first_name.stat().st_size
        rotate(plain, old, new, same_mtime=same_mtime)
        fresh = open_view(plain)
        names = ["logs/app.log.1", "logs/app.log"]
        if order == "new-first":
            names.reverse()
        for rel in names:
            through_mount = (mnt / cipher_path(fresh, rel)).read_bytes()
            assert through_mount == expected_bytes(fresh, rel), rel
        # The file IDs differ: the header carries the path's own (§9.2).
        headers = {rel: (mnt / cipher_path(fresh, rel)).read_bytes()[2:HEADER_LEN] for rel in names}
        assert headers == {rel: derive(cipher_path(fresh, rel), "FILEID") for rel in names}
        for rel in names:
            assert (mnt / cipher_path(fresh, rel)).stat().st_size == len(expected_bytes(fresh, rel))
        assert (mnt / cipher_path(fresh, "logs/app.log.1")).stat().st_size == first_size


def test_renamed_and_recreated_directory_reads_both_correctly(tmp_path: Path) -> None:
    require_fuse()
    plain = vault_plain(tmp_path / "plain")
    (plain / "logs").mkdir()
    write(plain / "logs" / "app.log", b"in the old directory\n" * 300, 10**18)
    with mount_view(plain, tmp_path / "mnt", PASSWORD, cache_timeout=LONG_TIMEOUT) as mnt:
        before = open_view(plain)
        assert (mnt / cipher_path(before, "logs/app.log")).read_bytes() == expected_bytes(
            before, "logs/app.log"
        )
        listed_before = sorted(os.listdir(mnt / cipher_path(before, "logs")))
        os.rename(plain / "logs", plain / "logs.1")
        (plain / "logs").mkdir()
        write(plain / "logs" / "app.log", b"in the new directory\n" * 300, 10**18)
        fresh = open_view(plain)
        for rel in ("logs.1/app.log", "logs/app.log"):
            assert (mnt / cipher_path(fresh, rel)).read_bytes() == expected_bytes(fresh, rel), rel
        # The renamed directory lists names encrypted with its new path's DirIV (§6.5).
        for rel in ("logs", "logs.1"):
            assert sorted(os.listdir(mnt / cipher_path(fresh, rel))) == sorted(
                e.cipher_name for e in fresh.listdir(cipher_path(fresh, rel))
            )
        assert listed_before == sorted(os.listdir(mnt / cipher_path(fresh, "logs")))
        diriv = (mnt / cipher_path(fresh, "logs.1") / DIRIV_NAME).read_bytes()
        assert diriv == derive(cipher_path(fresh, "logs.1"), "DIRIV")


def test_hard_link_pin_moves_off_a_path_that_names_another_file(tmp_path: Path) -> None:
    """§9.2 pins a linked file's IVs to the first path opened; a new file there must not share them."""
    require_fuse()
    plain = vault_plain(tmp_path / "plain")
    write(plain / "a", b"linked content\n" * 50, 10**18)
    os.link(plain / "a", plain / "b")
    with mount_view(plain, tmp_path / "mnt", PASSWORD, cache_timeout=LONG_TIMEOUT) as mnt:
        view = open_view(plain)
        assert (mnt / cipher_path(view, "a")).read_bytes() == expected_bytes(view, "a")  # pins "a"
        assert (mnt / cipher_path(view, "b")).read_bytes() == expected_bytes(view, "a")
        os.rename(plain / "a", plain / "c")
        write(plain / "a", b"a new file under the pinned name\n", 10**18)
        fresh = open_view(plain)
        new_a = (mnt / cipher_path(fresh, "a")).read_bytes()
        linked = (mnt / cipher_path(fresh, "b")).read_bytes()
        assert new_a == expected_bytes(fresh, "a")
        assert linked[2:HEADER_LEN] != new_a[2:HEADER_LEN]
        # The linked file now takes the IVs of a path that names it: one of b and c.
        assert linked in (expected_bytes(fresh, "b"), expected_bytes(fresh, "c"))
        assert (mnt / cipher_path(fresh, "c")).read_bytes() == linked


# -- many random changes ----------------------------------------------------------------------


class PlainTree:
    """Random renames, creates, rewrites, links and deletions in a plain folder."""

    DIRS = ("", "d1", "d2", "d1/d3")

    def __init__(self, root: Path, seed: int) -> None:
        self.root = root
        self.rng = random.Random(seed)
        self.counter = 0
        for d in self.DIRS[1:]:
            (root / d).mkdir()

    def files(self) -> list[str]:
        out = []
        for dirpath, _dirs, names in os.walk(self.root):
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            for name in names:
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                if rel != REVERSE_CONF_NAME:
                    out.append(rel)
        return sorted(out)

    def dirs(self) -> list[str]:
        return sorted(
            Path(p).relative_to(self.root).as_posix()
            for p, _d, _n in os.walk(self.root)
            if Path(p) != self.root
        )

    def new_name(self) -> str:
        self.counter += 1
        directory = self.rng.choice(["", *self.dirs()])
        name = self.rng.choice(["app.log", "app.log.1", "data.bin", f"f{self.counter}", "x" * 120])
        return f"{directory}/{name}" if directory else name

    def content(self) -> bytes:
        size = self.rng.choice([0, 1, 4095, 4096, 4097, 10_000, 40_000])
        return self.rng.randbytes(size)

    def step(self) -> str:
        files = self.files()
        op = self.rng.choice(
            ["create", "create", "rename", "rename", "rename", "rewrite", "link", "unlink", "mvdir"]
        )
        if not files:
            op = "create"
        if op == "create":
            target = self.new_name()
            if (self.root / target).is_dir():
                return "skip"
            tmp = self.root / f".tmp{self.counter}"  # written aside, then renamed over: a new inode
            tmp.write_bytes(self.content())
            os.rename(tmp, self.root / target)
        elif op == "rename":
            target = self.new_name()
            if (self.root / target).is_dir():
                return "skip"
            os.rename(self.root / self.rng.choice(files), self.root / target)
        elif op == "rewrite":
            path = self.root / self.rng.choice(files)
            st = path.stat()
            data = self.rng.randbytes(st.st_size)
            path.write_bytes(data)  # same inode, same size
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same mtime
        elif op == "link":
            target = self.new_name()
            if (self.root / target).exists():
                return "skip"
            os.link(self.root / self.rng.choice(files), self.root / target)
        elif op == "unlink":
            (self.root / self.rng.choice(files)).unlink()
        else:
            self.counter += 1
            old = self.rng.choice(self.dirs())
            parent = Path(old).parent.as_posix()
            new = f"dir{self.counter}" if parent == "." else f"{parent}/dir{self.counter}"
            os.rename(self.root / old, self.root / new)
        return op


def file_ids_through_mount(mnt: Path) -> dict[str, bytes]:
    """Cipher path -> file ID in the header, for every non-empty real file of the mount."""
    out: dict[str, bytes] = {}
    for dirpath, _dirs, names in os.walk(mnt):
        for name in names:
            if name in (DIRIV_NAME, "gocryptfs.conf") or name.endswith(LONGNAME_SUFFIX):
                continue
            p = Path(dirpath) / name
            if not stat.S_ISREG(os.lstat(p).st_mode):
                continue
            with open(p, "rb") as f:
                header = f.read(HEADER_LEN)
            if header:
                out[p.relative_to(mnt).as_posix()] = header[2:]
    return out


def test_file_ids_stay_unique_through_1000_random_changes(tmp_path: Path) -> None:
    require_fuse()
    plain = vault_plain(tmp_path / "plain")
    fresh = FreshViews(plain)
    tree = PlainTree(plain, seed=14)
    for _ in range(12):
        tree.step()
    done: dict[str, int] = {}
    with mount_view(plain, tmp_path / "mnt", PASSWORD, cache_timeout=LONG_TIMEOUT) as mnt:
        for _ in range(1000):
            op = tree.step()
            done[op] = done.get(op, 0) + 1
            # Read a few files through the mount, so its caches and pins follow the changes.
            view = fresh()
            for rel in tree.rng.sample(tree.files(), min(3, len(tree.files()))):
                got = (mnt / cipher_path(view, rel)).read_bytes()
                if os.stat(plain / rel).st_nlink == 1:
                    assert got == expected_bytes(view, rel), (op, rel)
        ids = file_ids_through_mount(mnt)
        view = fresh()
        owners: dict[bytes, tuple[int, int]] = {}
        for cpath, file_id in ids.items():
            entry = view.resolve(cpath)
            assert entry.plain is not None
            st = os.stat(plain / entry.plain)
            obj = (st.st_dev, st.st_ino)
            assert owners.setdefault(file_id, obj) == obj, f"{cpath} shares its file ID with another file"
            data = (mnt / cpath).read_bytes()
            if st.st_nlink == 1:
                assert file_id == derive(cpath, "FILEID"), cpath
                assert data == expected_bytes(view, entry.plain), cpath
            else:  # a linked file uses the IVs of one of its own paths
                links = [
                    cipher_path(view, rel) for rel in tree.files() if os.stat(plain / rel)[1:3] == st[1:3]
                ]
                iv_path = next(p for p in links if derive(p, "FILEID") == file_id)
                fd = os.open(plain / entry.plain, os.O_RDONLY)
                try:
                    assert data == view.read_fd(iv_path, fd, 0, len(data) + 1), cpath
                finally:
                    os.close(fd)
    assert len(ids) > 10
    assert all(done.get(op, 0) > 50 for op in ("create", "rename", "rewrite", "link", "unlink", "mvdir")), (
        done
    )


# -- rsync of the view ---------------------------------------------------------------------------


def require_rsync() -> None:
    if shutil.which("rsync") is None:
        skip_or_fail("rsync is missing (scripts/setup.sh installs it)")


def rsync(src: Path, dest: Path) -> list[str]:
    """rsync -a SRC/ DEST/; the itemized changes of regular files it transferred."""
    out = subprocess.run(
        ["rsync", "-a", "--itemize-changes", "--stats", f"{src}/", f"{dest}/"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "Number of files:" in out
    return sorted(line.split(" ", 1)[1] for line in out.splitlines() if line.startswith(">f"))


def tree_bytes(root: Path) -> dict[str, bytes]:
    out = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            p = Path(dirpath) / name
            out[p.relative_to(root).as_posix()] = p.read_bytes()
    return out


def test_rsync_after_logrotate_transfers_exactly_the_changed_files(tmp_path: Path) -> None:
    require_fuse()
    require_rsync()
    plain = vault_plain(tmp_path / "plain")
    (plain / "logs").mkdir()
    write(plain / "logs" / "app.log", b"yesterday\n" * 3000, 10**18)
    write(plain / "logs" / "other.log", b"untouched\n" * 100, 10**18)
    write(plain / "notes.txt", b"notes\n", 10**18)
    backup = tmp_path / "backup"
    with mount_view(plain, tmp_path / "mnt", PASSWORD, cache_timeout=LONG_TIMEOUT) as mnt:
        first = rsync(mnt, backup)
        view = open_view(plain)
        assert len(first) == len([p for p in tree_bytes(mnt)])  # every file, the first time
        assert rsync(mnt, backup) == []  # nothing changed, nothing sent
        rotate(plain, b"", b"today\n" * 10, same_mtime=False)
        sent = rsync(mnt, backup)
        fresh = open_view(plain)
        # The rotation also changed the times of logs/, which its virtual gocryptfs.diriv shows
        # (§9.3): once the kernel's cached attributes expire, rsync sends those 16 unchanged
        # bytes again, as it does from gocryptfs -reverse. Every other file is left alone.
        logs_diriv = f"{cipher_path(fresh, 'logs')}/gocryptfs.diriv"
        assert [p for p in sent if p != logs_diriv] == sorted(
            cipher_path(fresh, rel) for rel in ("logs/app.log", "logs/app.log.1")
        )
        assert tree_bytes(backup) == tree_bytes(mnt)
    materialized = tmp_path / "offline"
    fresh.materialize(materialized)
    assert tree_bytes(backup) == tree_bytes(materialized)
    assert view.listdir("")  # the earlier view still works on the changed tree


# -- against gocryptfs -reverse ----------------------------------------------------------------------


@pytest.mark.gocryptfs
@pytest.mark.parametrize("same_mtime", [True, False], ids=["same-size-and-mtime", "new-mtime"])
def test_logrotate_matches_gocryptfs_reverse(need_gocryptfs: None, tmp_path: Path, same_mtime: bool) -> None:
    """The live view after the rotation equals what gocryptfs -reverse shows of the new tree.

    gocryptfs is mounted after the change, so its answer cannot come from its own caches: a
    gocryptfs 2.3 mount that was up before shows the new app.log with the old file's bytes
    until its one-second entry timeout runs out.
    """
    plain = tmp_path / "plain"
    (plain / "logs").mkdir(parents=True)
    gocryptfs_init(plain, PASSWORD, "-reverse")
    old = b"old line\n" * 2000
    write(plain / "logs" / "app.log", old, 10**18)
    names = ("logs/app.log.1", "logs/app.log")
    with mount_view(plain, tmp_path / "ours", PASSWORD, cache_timeout=LONG_TIMEOUT) as ours:
        before = open_view(plain)
        first = (ours / cipher_path(before, "logs/app.log")).read_bytes()
        rotate(plain, old, b"NEW LINE\n" * (2000 if same_mtime else 30), same_mtime=same_mtime)
        fresh = open_view(plain)
        mine = {rel: (ours / cipher_path(fresh, rel)).read_bytes() for rel in names}
        mine_listing = sorted(os.listdir(ours / cipher_path(fresh, "logs")))
    with gocryptfs_mount(plain, tmp_path / "theirs", PASSWORD, "-reverse") as theirs:
        gocryptfs = {rel: (theirs / cipher_path(fresh, rel)).read_bytes() for rel in names}
        assert mine_listing == sorted(os.listdir(theirs / cipher_path(fresh, "logs")))
    assert mine == gocryptfs
    assert mine == {rel: expected_bytes(fresh, rel) for rel in names}
    assert first not in mine.values()
