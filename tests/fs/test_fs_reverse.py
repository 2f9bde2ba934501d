"""The reverse-mode filesystem: its handlers called directly, then real mounts beside gocryptfs -reverse."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from fuse_harness import assert_same_view, exact_manifest, mount_vault, mount_view, mounted_ops, require_fuse
from gocryptfs_harness import (
    BASE_MTIME_NS,
    assert_same_tree,
    gocryptfs_init,
    gocryptfs_mount,
    import_or_skip,
    make_interop_tree,
    run_cmd,
    tree_manifest,
)
from vault_factory import new_vault

from vaultsh.fs.stats import MountStats
from vaultsh.vault.config import REVERSE_CONF_NAME
from vaultsh.vault.keys import FormatOptions
from vaultsh.vault.reverse import ReverseEntry, ReverseView
from vaultsh.vault.vault import Vault

pyfuse3 = import_or_skip("pyfuse3")
trio = import_or_skip("trio")

from vaultsh.fs.reverse import (  # noqa: E402 - after the check above: it imports pyfuse3
    REVERSE_MOUNT_OPTIONS,
    SYNTHETIC_INODE_BASE,
    ReverseOperations,
    reverse_fsname,
)

PASSWORD = "test"
LONG_NAME = "long-" + "n" * 200  # encrypts to more than 255 characters: hashed (§6.7)
T = TypeVar("T")


def run(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run one async handler to completion, outside any FUSE session."""

    async def call() -> T:
        return await fn(*args)

    result: T = trio.run(call)
    return result


def ctx() -> Any:
    return pyfuse3.RequestContext()


def make_small_tree(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "hello.txt").write_bytes(b"hello world\n")
    (root / "blocks.bin").write_bytes(hashlib.sha256(b"x").digest() * 400)  # 12800 bytes
    (root / "empty").touch()
    (root / "sub" / "inner.txt").write_bytes(b"inner\n")
    (root / LONG_NAME).write_bytes(b"long\n")
    os.symlink("hello.txt", root / "link")
    for i, p in enumerate(sorted(root.rglob("*"))):
        os.utime(p, ns=(BASE_MTIME_NS + i, BASE_MTIME_NS + 7 * i), follow_symlinks=False)
    return root


@pytest.fixture
def small_view(tmp_path: Path) -> ReverseView:
    plain = make_small_tree(tmp_path / "plain")
    return new_vault.reverse_folder(plain, PASSWORD)


class Listing:
    """Stands in for pyfuse3.readdir_reply: records entries, refusing after `room` of them."""

    def __init__(self, room: int = 1 << 30) -> None:
        self.room = room
        self.entries: list[tuple[str, Any, int]] = []

    def __call__(self, token: object, name: bytes, attr: Any, next_id: int) -> bool:
        if len(self.entries) >= self.room:
            return False
        self.entries.append((os.fsdecode(name), attr, next_id))
        return True


def list_dir_with_dots(
    ops: ReverseOperations, inode: int, monkeypatch: pytest.MonkeyPatch
) -> list[tuple[str, Any, int]]:
    """Every entry readdir sends for the directory `inode`: (name, attributes, next offset)."""
    listing = Listing()
    monkeypatch.setattr(pyfuse3, "readdir_reply", listing)
    fh = run(ops.opendir, inode, ctx())
    run(ops.readdir, fh, 0, object())
    run(ops.releasedir, fh)
    return listing.entries


def list_dir(ops: ReverseOperations, inode: int, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The directory's entries by name, after `.` (checked to be the directory) and `..`."""
    entries = list_dir_with_dots(ops, inode, monkeypatch)
    assert [name for name, _, _ in entries[:2]] == [".", ".."]
    assert entries[0][1].st_ino == inode
    return {name: attr for name, attr, _ in entries[2:]}


def read_all(ops: ReverseOperations, inode: int) -> bytes:
    info = run(ops.open, inode, os.O_RDONLY, ctx())
    try:
        out = b""
        while chunk := run(ops.read, info.fh, len(out), 5000):
            out += chunk
        return out
    finally:
        run(ops.release, info.fh)


def entry_named(view: ReverseView, plain: str) -> ReverseEntry:
    return next(e for e in view.listdir("") if e.plain == plain)


def lookup_plain(ops: ReverseOperations, view: ReverseView, plain: str) -> Any:
    """Look up the root entry for the plain name `plain` through the handlers."""
    return run(ops.lookup, pyfuse3.ROOT_INODE, entry_named(view, plain).cipher_name.encode(), ctx())


# ---------------------------------------------------------------------------------------------
# Handlers called directly
# ---------------------------------------------------------------------------------------------


def test_listing_and_contents_equal_the_offline_view(
    small_view: ReverseView, monkeypatch: pytest.MonkeyPatch
) -> None:
    ops = ReverseOperations(small_view)
    listed = list_dir(ops, pyfuse3.ROOT_INODE, monkeypatch)
    expected = {e.cipher_name: e for e in small_view.listdir("")}
    assert set(listed) == set(expected)
    assert {"gocryptfs.conf", "gocryptfs.diriv"} <= set(listed)
    assert sum(name.endswith(".name") for name in listed) == 1
    for name, entry in expected.items():
        attr = run(ops.lookup, pyfuse3.ROOT_INODE, name.encode(), ctx())
        assert attr.st_ino == listed[name].st_ino, name
        assert attr.st_size == small_view.cipher_size(entry), name
        if entry.kind == "file":
            data = read_all(ops, attr.st_ino)
            assert data == small_view.read(entry, 0, 1 << 20), name
            assert len(data) == attr.st_size
        elif entry.kind == "symlink":
            assert run(ops.readlink, attr.st_ino, ctx()) == small_view.readlink(entry).encode()
    conf_attr = run(ops.lookup, pyfuse3.ROOT_INODE, b"gocryptfs.conf", ctx())
    assert read_all(ops, conf_attr.st_ino) == (small_view.plaindir / REVERSE_CONF_NAME).read_bytes()


def test_attributes_pass_plain_metadata_through(
    small_view: ReverseView, monkeypatch: pytest.MonkeyPatch
) -> None:
    ops = ReverseOperations(small_view)
    plain = small_view.plaindir
    hello = entry_named(small_view, "hello.txt")
    attr = run(ops.lookup, pyfuse3.ROOT_INODE, hello.cipher_name.encode(), ctx())
    st = os.lstat(plain / "hello.txt")
    assert attr.st_ino == st.st_ino  # real objects keep their plain inode numbers
    assert attr.st_mtime_ns == st.st_mtime_ns
    assert attr.st_mode == st.st_mode
    assert attr.st_size == 18 + 12 + 32  # header + data + AES-SIV overhead (§5.2)
    # The view has no holes: blocks cover the whole cipher size.
    assert attr.st_blocks * 512 >= attr.st_size
    root = run(ops.getattr, pyfuse3.ROOT_INODE, ctx())
    assert stat.S_ISDIR(root.st_mode)
    assert root.st_mtime_ns == os.lstat(plain).st_mtime_ns

    diriv = run(ops.lookup, pyfuse3.ROOT_INODE, b"gocryptfs.diriv", ctx())
    assert diriv.st_mode == stat.S_IFREG | 0o444
    assert diriv.st_size == 16
    assert diriv.st_mtime_ns == os.lstat(plain).st_mtime_ns  # times of the directory (§9.3)
    assert diriv.st_ino >= SYNTHETIC_INODE_BASE
    # Synthetic inode numbers are stable within the mount, also across forget.
    run(ops.forget, [(diriv.st_ino, 1)])
    assert run(ops.lookup, pyfuse3.ROOT_INODE, b"gocryptfs.diriv", ctx()).st_ino == diriv.st_ino

    name_file = next(n for n in list_dir(ops, pyfuse3.ROOT_INODE, monkeypatch) if n.endswith(".name"))
    name_attr = run(ops.lookup, pyfuse3.ROOT_INODE, name_file.encode(), ctx())
    assert name_attr.st_mode == stat.S_IFREG | 0o444
    assert name_attr.st_mtime_ns == os.lstat(plain / LONG_NAME).st_mtime_ns  # the named object's
    assert name_attr.st_ino not in (diriv.st_ino, os.lstat(plain / LONG_NAME).st_ino)

    link = entry_named(small_view, "link")
    link_attr = run(ops.lookup, pyfuse3.ROOT_INODE, link.cipher_name.encode(), ctx())
    assert stat.S_ISLNK(link_attr.st_mode)
    assert link_attr.st_size == len(small_view.readlink(link))  # encoded target length (§7.1)


def test_subdirectories_dot_and_dotdot(small_view: ReverseView, monkeypatch: pytest.MonkeyPatch) -> None:
    ops = ReverseOperations(small_view)
    sub = entry_named(small_view, "sub")
    sub_attr = run(ops.lookup, pyfuse3.ROOT_INODE, sub.cipher_name.encode(), ctx())
    listed = list_dir(ops, sub_attr.st_ino, monkeypatch)
    assert set(listed) == {e.cipher_name for e in small_view.listdir(sub.cipher_path)}
    inner = next(n for n in listed if n != "gocryptfs.diriv")
    inner_attr = run(ops.lookup, sub_attr.st_ino, inner.encode(), ctx())
    assert read_all(ops, inner_attr.st_ino) == small_view.read(
        small_view.resolve(f"{sub.cipher_path}/{inner}"), 0, 1000
    )
    # The subdirectory's diriv is derived from its own cipher path, not the root's.
    sub_diriv = run(ops.lookup, sub_attr.st_ino, b"gocryptfs.diriv", ctx())
    assert read_all(ops, sub_diriv.st_ino) == small_view.dir_iv(sub.cipher_path)
    assert run(ops.lookup, sub_attr.st_ino, b".", ctx()).st_ino == sub_attr.st_ino
    assert run(ops.lookup, sub_attr.st_ino, b"..", ctx()).st_ino == pyfuse3.ROOT_INODE
    # readdir lists them too, with the same numbers and attributes, and counts no lookup
    # for them (the kernel takes none).
    lookups = ops._nodes[sub_attr.st_ino].lookups
    dot, dotdot = list_dir_with_dots(ops, sub_attr.st_ino, monkeypatch)[:2]
    assert (dot[0], dot[1].st_ino, stat.S_ISDIR(dot[1].st_mode)) == (".", sub_attr.st_ino, True)
    assert (dotdot[0], dotdot[1].st_ino) == ("..", pyfuse3.ROOT_INODE)
    assert dotdot[1].st_mtime_ns == run(ops.getattr, pyfuse3.ROOT_INODE, ctx()).st_mtime_ns
    assert ops._nodes[sub_attr.st_ino].lookups == lookups
    root_dots = list_dir_with_dots(ops, pyfuse3.ROOT_INODE, monkeypatch)[:2]
    assert [(name, attr.st_ino) for name, attr, _ in root_dots] == [
        (".", pyfuse3.ROOT_INODE),
        ("..", pyfuse3.ROOT_INODE),
    ]


def test_readdir_resumes_where_the_kernel_buffer_filled(
    small_view: ReverseView, monkeypatch: pytest.MonkeyPatch
) -> None:
    ops = ReverseOperations(small_view)
    fh = run(ops.opendir, pyfuse3.ROOT_INODE, ctx())
    seen: list[str] = []
    start = 0
    while True:
        listing = Listing(room=2)
        monkeypatch.setattr(pyfuse3, "readdir_reply", listing)
        run(ops.readdir, fh, start, object())
        if not listing.entries:
            break
        seen += [name for name, _, _ in listing.entries]
        start = listing.entries[-1][2]
    run(ops.releasedir, fh)
    assert seen[:2] == [".", ".."]
    assert sorted(seen[2:]) == sorted(e.cipher_name for e in small_view.listdir(""))
    assert len(seen) == len(set(seen))


def test_errors_for_missing_names_and_wrong_kinds(small_view: ReverseView) -> None:
    ops = ReverseOperations(small_view)
    for name in (b"no-such-name", b"AAAAAAAAAAAAAAAAAAAAAA", b".gocryptfs.reverse.conf"):
        with pytest.raises(pyfuse3.FUSEError) as e:
            run(ops.lookup, pyfuse3.ROOT_INODE, name, ctx())
        assert e.value.errno == errno.ENOENT
    hello = lookup_plain(ops, small_view, "hello.txt")
    sub = lookup_plain(ops, small_view, "sub")
    cases: list[tuple[Callable[..., Awaitable[Any]], tuple[Any, ...], int]] = [
        (ops.readlink, (hello.st_ino, ctx()), errno.EINVAL),
        (ops.opendir, (hello.st_ino, ctx()), errno.ENOTDIR),
        (ops.open, (sub.st_ino, os.O_RDONLY, ctx()), errno.EISDIR),
        (ops.getattr, (123456789, ctx()), errno.ENOENT),
        (ops.lookup, (hello.st_ino, b"x", ctx()), errno.ENOTDIR),
        # No xattrs: ENOSYS tells the kernel once for the whole mount.
        (ops.getxattr, (hello.st_ino, b"user.x", ctx()), errno.ENOSYS),
        (ops.listxattr, (hello.st_ino, ctx()), errno.ENOSYS),
    ]
    for fn, args, code in cases:
        with pytest.raises(pyfuse3.FUSEError) as e:
            run(fn, *args)
        assert e.value.errno == code, fn.__name__


def test_long_names_answer_to_their_hash_only(tmp_path: Path) -> None:
    """With -longnamemax 62 a 64-byte name encrypts to 107 characters: only the hash is valid."""
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / ("m" * 64)).write_bytes(b"medium\n")
    options = FormatOptions(aessiv=True, longname_max=62)
    view = ReverseView.open(plain, master_key=bytes(32), options=options)
    ops = ReverseOperations(view)
    hashed = entry_named(view, "m" * 64)
    assert hashed.cipher_name.startswith("gocryptfs.longname.")
    full = view.encrypt_name("", "m" * 64)[1]
    assert len(full) == 107
    assert run(ops.lookup, pyfuse3.ROOT_INODE, hashed.cipher_name.encode(), ctx()).st_size > 0
    name_file = run(ops.lookup, pyfuse3.ROOT_INODE, hashed.cipher_name.encode() + b".name", ctx())
    assert read_all(ops, name_file.st_ino) == full.encode()
    with pytest.raises(pyfuse3.FUSEError) as e:
        run(ops.lookup, pyfuse3.ROOT_INODE, full.encode(), ctx())
    assert e.value.errno == errno.ENOENT


def test_every_write_is_erofs(small_view: ReverseView) -> None:
    stats = MountStats()
    ops = ReverseOperations(small_view, stats=stats)
    hello = lookup_plain(ops, small_view, "hello.txt")
    ino, root = hello.st_ino, pyfuse3.ROOT_INODE
    writes: list[tuple[Callable[..., Awaitable[Any]], tuple[Any, ...]]] = [
        (ops.setattr, (ino, pyfuse3.EntryAttributes(), None, None, ctx())),
        (ops.mknod, (root, b"n", stat.S_IFIFO | 0o644, 0, ctx())),
        (ops.mkdir, (root, b"d", 0o755, ctx())),
        (ops.unlink, (root, b"x", ctx())),
        (ops.rmdir, (root, b"x", ctx())),
        (ops.symlink, (root, b"s", b"t", ctx())),
        (ops.rename, (root, b"a", root, b"b", 0, ctx())),
        (ops.link, (ino, root, b"l", ctx())),
        (ops.create, (root, b"c", 0o644, os.O_WRONLY, ctx())),
        (ops.write, (1, 0, b"x")),
        (ops.setxattr, (ino, b"user.a", b"v", ctx())),
        (ops.removexattr, (ino, b"user.a", ctx())),
        (ops.open, (ino, os.O_WRONLY, ctx())),
        (ops.open, (ino, os.O_RDWR, ctx())),
        (ops.open, (ino, os.O_RDONLY | os.O_TRUNC, ctx())),
        (ops.access, (ino, os.W_OK, ctx())),
    ]
    used_before = stats.requests
    for fn, args in writes:
        with pytest.raises(pyfuse3.FUSEError) as e:
            run(fn, *args)
        assert e.value.errno == errno.EROFS, fn.__name__
    # A refused write is an answer, not damage: the errors counter stays at 0 (frontend.COUNTED_ERRNOS).
    assert stats.errors == 0
    assert stats.requests - used_before == len(writes)  # each still counts as use
    assert run(ops.access, ino, os.R_OK, ctx()) is True
    assert (small_view.plaindir / "hello.txt").read_bytes() == b"hello world\n"


def test_stats_count_requests_open_files_bytes_and_errors(small_view: ReverseView) -> None:
    stats = MountStats()
    ops = ReverseOperations(small_view, stats=stats)
    blocks = entry_named(small_view, "blocks.bin")
    attr = run(ops.lookup, pyfuse3.ROOT_INODE, blocks.cipher_name.encode(), ctx())
    first = run(ops.open, attr.st_ino, os.O_RDONLY, ctx())
    second = run(ops.open, attr.st_ino, os.O_RDONLY, ctx())
    assert stats.open_files == 2
    assert len(run(ops.read, first.fh, 0, 4096)) == 4096
    assert len(run(ops.read, second.fh, attr.st_size - 10, 4096)) == 10
    assert stats.bytes_read == 4106
    run(ops.release, first.fh)
    run(ops.release, second.fh)
    assert stats.open_files == 0
    assert stats.errors == 0
    with pytest.raises(pyfuse3.FUSEError):
        run(ops.lookup, pyfuse3.ROOT_INODE, b"missing", ctx())
    assert stats.errors == 0  # a negative lookup is an answer, not a fault
    with pytest.raises(pyfuse3.FUSEError) as e:
        run(ops.read, 999, 0, 10)
    assert e.value.errno == errno.EBADF
    assert stats.errors == 0  # a refusal, not damage
    assert stats.requests == 9  # lookup, 2 opens, 2 reads, 2 releases, lookup, read
    # Handles left open at unmount are closed by close.
    left_open = run(ops.open, attr.st_ino, os.O_RDONLY, ctx())
    fd = ops._files[left_open.fh].fd
    ops.close()
    assert stats.open_files == 0
    with pytest.raises(OSError):
        os.fstat(fd)


def test_excluded_entries_are_hidden_and_eperm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = make_small_tree(tmp_path / "plain")
    full = new_vault.reverse_folder(plain, PASSWORD)
    view = ReverseView.open(plain, password=PASSWORD.encode(), excludes=["sub", LONG_NAME, "*.txt"])
    stats = MountStats()
    ops = ReverseOperations(view, stats=stats)
    listed = list_dir(ops, pyfuse3.ROOT_INODE, monkeypatch)
    visible = {e.plain for e in view.listdir("") if e.plain is not None}
    assert visible == {"blocks.bin", "empty", "link"}
    assert not any(n.endswith(".name") for n in listed)
    for plain_name in ("sub", LONG_NAME, "hello.txt"):
        hidden = entry_named(full, plain_name)
        with pytest.raises(pyfuse3.FUSEError) as e:
            run(ops.lookup, pyfuse3.ROOT_INODE, hidden.cipher_name.encode(), ctx())
        assert e.value.errno == errno.EPERM, plain_name  # as gocryptfs (§9.3)
    name_file = next(e for e in full.listdir("") if e.cipher_name.endswith(".name"))
    with pytest.raises(pyfuse3.FUSEError) as e:
        run(ops.lookup, pyfuse3.ROOT_INODE, name_file.cipher_name.encode(), ctx())
    assert e.value.errno == errno.EPERM
    assert stats.errors == 0  # excluded names are refused as gocryptfs does; nothing is damaged


def test_hard_links_show_the_bytes_of_the_first_path_opened(tmp_path: Path) -> None:
    """§9.2: the IVs of a file with several links come from the first path it is opened by."""
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a").write_bytes(b"shared content\n")
    os.link(plain / "a", plain / "b")
    view = ReverseView.open(plain, master_key=bytes(32), options=FormatOptions(aessiv=True))
    ops = ReverseOperations(view)
    a = run(ops.lookup, pyfuse3.ROOT_INODE, entry_named(view, "a").cipher_name.encode(), ctx())
    b = run(ops.lookup, pyfuse3.ROOT_INODE, entry_named(view, "b").cipher_name.encode(), ctx())
    assert a.st_ino == b.st_ino == os.lstat(plain / "a").st_ino
    assert a.st_nlink == 2
    via_b = read_all(ops, b.st_ino)
    assert via_b == view.read(entry_named(view, "b"), 0, 1000)
    assert read_all(ops, a.st_ino) == via_b
    assert via_b != view.read(entry_named(view, "a"), 0, 1000)  # a path of its own would differ


def test_fsname_is_the_absolute_path_with_commas_escaped(tmp_path: Path) -> None:
    assert reverse_fsname(tmp_path / "x,y") == str(tmp_path / "x\\,y")
    assert "ro" in REVERSE_MOUNT_OPTIONS


# ---------------------------------------------------------------------------------------------
# Real mounts
# ---------------------------------------------------------------------------------------------

FLAGS = {
    "default": (),
    "plaintextnames": ("-plaintextnames",),
    "deterministic-names": ("-deterministic-names",),
    "longnamemax62": ("-longnamemax", "62"),
}


def vault_manifest(vault: Vault, path: str = "") -> dict[str, tuple[str, object]]:
    """path -> (kind, sha256 or link target) of a vault read offline through Vault."""
    out: dict[str, tuple[str, object]] = {}
    for e in vault.listdir(path):
        rel = f"{path}/{e.name}" if path else e.name
        if e.kind == "dir":
            out[rel] = ("dir", None)
            out.update(vault_manifest(vault, rel))
        elif e.kind == "symlink":
            out[rel] = ("symlink", vault.readlink(rel))
        else:
            out[rel] = ("file", hashlib.sha256(vault.read_file(rel)).hexdigest())
    return out


def plain_manifest(root: Path, skip: set[str]) -> dict[str, tuple[str, object]]:
    out: dict[str, tuple[str, object]] = {}
    for rel, entry in tree_manifest(root, exclude=skip).items():
        kind = str(entry["type"])
        out[rel] = (kind, entry.get("target") if kind == "symlink" else entry.get("sha256"))
    return out


@pytest.mark.gocryptfs
@pytest.mark.parametrize("variant", list(FLAGS))
def test_mount_is_identical_to_gocryptfs_reverse_and_round_trips(
    need_gocryptfs: None, tmp_path: Path, variant: str
) -> None:
    plain = make_interop_tree(tmp_path / "plain")
    gocryptfs_init(plain, PASSWORD, "-reverse", *FLAGS[variant])
    copy = tmp_path / "copy"
    with (
        gocryptfs_mount(plain, tmp_path / "theirs", PASSWORD, "-reverse") as theirs,
        mount_view(plain, tmp_path / "ours", PASSWORD) as ours,
    ):
        assert_same_view(ours, theirs)
        run_cmd(["cp", "-a", ours, copy]).check()
    # A copy of the view is a forward vault holding the plain tree (§9.4).
    expected = tree_manifest(plain, exclude=[REVERSE_CONF_NAME])
    with gocryptfs_mount(copy, tmp_path / "forward", PASSWORD) as forward:
        assert_same_tree(tree_manifest(forward), expected, "forward mount of the copied view")
    vault = Vault.open(copy, password=PASSWORD.encode())
    assert vault_manifest(vault) == plain_manifest(plain, {REVERSE_CONF_NAME})
    # ... and vaultsh's own forward mount shows the same tree.
    with mount_vault(copy, tmp_path / "ours-forward", PASSWORD) as ours_forward:
        assert_same_tree(tree_manifest(ours_forward), expected, "vaultsh forward mount of the copied view")


def test_mount_is_read_only_and_stable_across_remounts(tmp_path: Path) -> None:
    require_fuse()
    plain = make_small_tree(tmp_path / "plain")
    new_vault.reverse_folder(plain, PASSWORD)
    with mount_view(plain, tmp_path / "mnt", PASSWORD) as mnt:
        first = exact_manifest(mnt)
        inodes = real_inodes(mnt)
        assert len(inodes) == len(os.listdir(plain)) - 1  # all but the reverse config
        mounts = Path("/proc/self/mounts").read_text().splitlines()
        line = next(m for m in mounts if m.split()[1] == str(mnt))
        assert line.split()[2] == "fuse.vaultsh-reverse"
        assert "ro" in line.split()[3].split(",")
        attempts: list[Callable[[], object]] = [
            lambda: (mnt / "new").write_bytes(b"x"),
            lambda: (mnt / "gocryptfs.diriv").unlink(),
            lambda: (mnt / "dir").mkdir(),
        ]
        for attempt in attempts:
            with pytest.raises(OSError) as e:
                attempt()
            assert e.value.errno == errno.EROFS
    with mount_view(plain, tmp_path / "mnt", PASSWORD) as mnt:
        assert exact_manifest(mnt) == first
        assert real_inodes(mnt) == inodes  # plain inode numbers: the same in every mount
        # `ls -a` shows `.` and `..` first, numbered as stat numbers the directories.
        sub = mnt / entry_named(ReverseView.open(plain, password=PASSWORD.encode()), "sub").cipher_name
        out = run_cmd(["ls", "-ai1", "--", str(sub)]).stdout.decode()
        listed = [line.split(maxsplit=1) for line in out.splitlines()]
        assert [name for _, name in listed[:2]] == [".", ".."]
        assert sorted(name for _, name in listed[2:]) == sorted(os.listdir(sub))
        assert [int(num) for num, _ in listed[:2]] == [os.stat(sub).st_ino, os.stat(mnt).st_ino]
    view = ReverseView.open(plain, password=PASSWORD.encode())
    assert inodes[entry_named(view, "hello.txt").cipher_name] == os.lstat(plain / "hello.txt").st_ino


def real_inodes(mnt: Path) -> dict[str, int]:
    """Cipher name -> inode number of the root's real entries (virtual files left out)."""
    numbers = {p.name: p.stat(follow_symlinks=False).st_ino for p in mnt.iterdir()}
    return {name: ino for name, ino in numbers.items() if ino < SYNTHETIC_INODE_BASE}


def sparse_tree(root: Path) -> Iterator[tuple[str, bytes]]:
    """Sparse plain files: (name, full content). Holes lie within and at the end of files."""
    root.mkdir()
    layouts = {
        "hole-in-middle": [(0, b"start"), (3 * 1024 * 1024, b"after a 3 MiB hole")],
        "hole-at-end": [(0, b"x" * 5000)],
        "only-hole": [],
    }
    sizes = {"hole-in-middle": 4 * 1024 * 1024, "hole-at-end": 2 * 1024 * 1024, "only-hole": 1024 * 1024}
    for name, parts in layouts.items():
        with open(root / name, "wb") as f:
            f.truncate(sizes[name])
            for off, data in parts:
                f.seek(off)
                f.write(data)
        yield name, (root / name).read_bytes()


def test_cp_a_of_a_view_with_sparse_plain_files_decrypts(tmp_path: Path) -> None:
    """Plain holes are ciphertext in the view (§9.2): SEEK_HOLE must not report them, or `cp`
    writes zeros where encrypted blocks belong (what happens with gocryptfs 2.3's view)."""
    require_fuse()
    plain = tmp_path / "plain"
    contents = dict(sparse_tree(plain))
    assert os.lstat(plain / "hole-in-middle").st_blocks * 512 < 1024 * 1024  # really sparse here
    view = new_vault.reverse_folder(plain, PASSWORD)
    copy = tmp_path / "copy"
    with mount_view(plain, tmp_path / "mnt", PASSWORD) as mnt:
        entry = entry_named(view, "hole-in-middle")
        with open(mnt / entry.cipher_name, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            assert os.lseek(f.fileno(), 0, os.SEEK_HOLE) == size
            assert os.lseek(f.fileno(), 4096, os.SEEK_DATA) == 4096
        run_cmd(["cp", "-a", mnt, copy]).check()
    for name in contents:
        entry = entry_named(view, name)
        assert (copy / entry.cipher_name).read_bytes() == b"".join(view.iter_file(entry)), name
    vault = Vault.open(copy, password=PASSWORD.encode())
    for name, data in contents.items():
        assert vault.read_file(name) == data, name


@pytest.mark.gocryptfs
def test_config_outside_the_plain_dir_matches_gocryptfs(need_gocryptfs: None, tmp_path: Path) -> None:
    """With -config elsewhere the view has no gocryptfs.conf, and a plain
    .gocryptfs.reverse.conf is an ordinary file of the tree."""
    plain = make_small_tree(tmp_path / "plain")
    (plain / REVERSE_CONF_NAME).write_bytes(b"not a config, just a file\n")
    conf = tmp_path / "elsewhere.conf"
    gocryptfs_init(plain, PASSWORD, "-reverse", "-config", str(conf))
    view = ReverseView.open(plain, password=PASSWORD.encode(), config_path=conf)
    assert "gocryptfs.conf" not in {e.cipher_name for e in view.listdir("")}
    assert REVERSE_CONF_NAME in {e.plain for e in view.listdir("")}
    with (
        gocryptfs_mount(plain, tmp_path / "theirs", PASSWORD, "-reverse", "-config", str(conf)) as theirs,
        mounted_ops(lambda: ReverseOperations(view), tmp_path / "ours", set(REVERSE_MOUNT_OPTIONS)) as ours,
    ):
        assert_same_view(ours, theirs)


def test_a_bug_in_a_handler_is_eio_and_counted_not_the_end_of_the_mount(
    small_view: ReverseView, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ops = ReverseOperations(small_view)

    plain_name = "-".join(("secret", "plain", "name"))  # not spelled out in the logged source line

    def broken(*_args: object) -> None:
        raise RuntimeError(plain_name)

    monkeypatch.setattr(small_view, "stat", broken)
    with pytest.raises(pyfuse3.FUSEError) as e:
        run(ops.getattr, pyfuse3.ROOT_INODE, ctx())
    assert e.value.errno == errno.EIO
    assert ops.stats.errors == 1
    # Logged by handler and place, without the message, which may hold a plain name.
    assert "internal error in getattr: RuntimeError" in caplog.text
    assert plain_name not in caplog.text
