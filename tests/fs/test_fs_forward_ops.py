"""Forward-mode FUSE operations called directly, without the kernel (fast; spec §5–§8)."""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from gocryptfs_harness import import_or_skip, skip_or_fail
from posix_table import LONG, POSIX_CASES, ROOT, Ctx, DirectApi, PosixCase, fields, run_posix_case
from user_harness import as_user, nobody
from vault_factory import FORMAT_OPTIONS, new_vault

pyfuse3 = import_or_skip("pyfuse3")
trio = import_or_skip("trio")

from vaultsh.fs.forward import (  # noqa: E402
    FORWARD_MOUNT_OPTIONS,
    ForwardOperations,
    forward_fsname,
)
from vaultsh.fs.stats import MountStats  # noqa: E402
from vaultsh.vault import dirfds  # noqa: E402
from vaultsh.vault.content import BLOCK_SIZE, HEADER_LEN  # noqa: E402
from vaultsh.vault.file import VaultFile  # noqa: E402
from vaultsh.vault.names import DIRIV_NAME, XATTR_PREFIX, read_diriv  # noqa: E402
from vaultsh.vault.vault import Vault  # noqa: E402

PASSWORD = b"forward ops"
# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def empty_vaults(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One freshly initialised cipherdir per flag set, copied by each test that uses it."""
    base = tmp_path_factory.mktemp("empty-vaults")
    out = {}
    for name, flags in FORMAT_OPTIONS.items():
        new_vault(base / name, PASSWORD, **flags).close()
        out[name] = base / name
    return out


@dataclass
class Mounted:
    cipherdir: Path
    ops: ForwardOperations
    fs: DirectApi
    stats: MountStats

    def vault(self) -> Vault:
        return Vault.open(self.cipherdir, password=PASSWORD)


@pytest.fixture
def make_fs(empty_vaults: dict[str, Path], tmp_path: Path) -> Iterator[Callable[..., Mounted]]:
    made: list[ForwardOperations] = []

    def factory(flags: str = "default", *, read_only: bool = False, log_names: bool = False) -> Mounted:
        cipher = tmp_path / f"cipher-{flags}-{len(made)}"
        shutil.copytree(empty_vaults[flags], cipher)
        stats = MountStats()
        vault = Vault.open(cipher, password=PASSWORD)
        ops = ForwardOperations(vault, read_only=read_only, stats=stats, log_names=log_names)
        made.append(ops)
        return Mounted(cipher, ops, DirectApi(ops), stats)

    yield factory
    for ops in made:
        ops.close()


@pytest.fixture
def fs(make_fs: Callable[..., Mounted]) -> Mounted:
    return make_fs()


# -- the table, directly ----------------------------------------------------------------------


@pytest.mark.parametrize("flags", ["default", "plaintextnames", "deterministic"])
@pytest.mark.parametrize("case", POSIX_CASES, ids=[c.id for c in POSIX_CASES])
def test_posix_table(make_fs: Callable[..., Mounted], case: PosixCase, flags: str) -> None:
    m = make_fs(flags)
    run_posix_case(m.fs, case)
    assert m.ops.stats.errors == 0


# -- names and listing ------------------------------------------------------------------------


@pytest.mark.parametrize("flags", list(FORMAT_OPTIONS))
def test_tree_is_readable_by_the_vault_api(make_fs: Callable[..., Mounted], flags: str) -> None:
    """What the handlers write is what the format core reads (and vice versa)."""
    m = make_fs(flags)
    m.fs.mkdir("dir")
    m.fs.write("dir/" + LONG, b"long name content")
    m.fs.write("dir/short", b"short")
    m.fs.symlink("dir/short", "link")
    v = m.vault()
    assert sorted(e.name for e in v.listdir("dir")) == sorted([LONG, "short"])
    assert v.read_file("dir/" + LONG) == b"long name content"
    assert v.readlink("link") == "dir/short"
    v.write_file("from-api", b"api")
    assert m.fs.read("from-api") == b"api"
    assert m.fs.listdir("") == ["dir", "from-api", "link"]


def test_hidden_names_never_listed(fs: Mounted) -> None:
    fs.fs.mkdir("d")
    fs.fs.write("d/" + LONG, b"x")
    raw_root = set(os.listdir(fs.cipherdir))
    assert {"gocryptfs.conf", DIRIV_NAME} <= raw_root
    raw_d = os.listdir(next(p for p in fs.cipherdir.iterdir() if p.is_dir()))
    assert any(n.endswith(".name") for n in raw_d) and DIRIV_NAME in raw_d
    assert fs.fs.listdir("") == ["d"]
    assert fs.fs.listdir("d") == [LONG]
    for hidden in ("gocryptfs.conf", DIRIV_NAME):
        with pytest.raises(FileNotFoundError):
            fs.fs.lstat(hidden)  # plain names are encrypted: no way to reach the raw files


def test_plaintextnames_reserves_root_config(make_fs: Callable[..., Mounted]) -> None:
    m = make_fs("plaintextnames")
    assert m.fs.listdir("") == []
    for action in (lambda: m.fs.lstat("gocryptfs.conf"), lambda: m.fs.write("gocryptfs.conf", b"x")):
        with pytest.raises(PermissionError):
            action()
    m.fs.mkdir("sub")
    m.fs.write("sub/gocryptfs.conf", b"allowed below the root")
    assert m.fs.listdir("sub") == ["gocryptfs.conf"]


def test_undecryptable_entries_are_skipped_and_counted(fs: Mounted) -> None:
    fs.fs.write("good", b"g")
    (fs.cipherdir / "not-base64!").write_bytes(b"junk")
    (fs.cipherdir / "gocryptfs.longname.AAAA").write_bytes(b"no sidecar")
    before = fs.stats.errors
    assert fs.fs.listdir("") == ["good"]
    assert fs.stats.errors - before == 2


def test_readdir_pages_without_skipping_or_repeating(fs: Mounted) -> None:
    names = [f"file-{i:03}" for i in range(57)]
    for n in names:
        fs.fs.write(n, n.encode())
    entries = fs.fs.readdir("", page=5)
    assert sorted(n for n, _ in entries) == names
    for name, attr in entries:
        assert attr.st_size == len(name)
        assert stat.S_ISREG(attr.st_mode)


def test_a_new_directory_is_filled_without_reading_its_iv_back(
    fs: Mounted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mkdir writes the IV through the new directory's descriptor and keeps both: the first
    names made in it (untar, mkdir -p) need no diriv read and no extra open."""
    fs.fs.listdir("")  # the root's IV is read once, before
    reads: list[Path] = []

    def counted(cipher_dir: Path, **kw: Any) -> bytes:
        reads.append(cipher_dir)
        return read_diriv(cipher_dir, **kw)

    monkeypatch.setattr("vaultsh.vault.core.read_diriv", counted)
    fs.fs.mkdir("new")
    fs.fs.write("new/file", b"x")
    fs.fs.mkdir("new/sub")
    assert reads == []
    assert fs.fs.read("new/file") == b"x" and fs.vault().listdir("new")[0].error is None


def test_readdir_lists_dot_and_dotdot_first_and_pages_through_them(fs: Mounted) -> None:
    fs.fs.mkdir("d")
    fs.fs.mkdir("d/e")
    fs.fs.write("d/e/f", b"x")
    for page in (1, 2, 3, 1000):
        entries = fs.fs.readdir("d/e", page=page, keep_dots=True)
        assert [n for n, _ in entries] == [".", "..", "f"], page
        by_name = dict(entries)
        assert by_name["."].st_ino == fs.fs.ino("d/e")
        assert by_name[".."].st_ino == fs.fs.ino("d")
        assert stat.S_ISDIR(by_name[".."].st_mode)
    root = dict(fs.fs.readdir("", keep_dots=True))
    assert root["."].st_ino == root[".."].st_ino == ROOT


def test_inode_numbers_are_cipher_inodes(fs: Mounted) -> None:
    fs.fs.write("f", b"x")
    fs.fs.mkdir("d")
    v = fs.vault()
    for path in ("f", "d"):
        assert fs.fs.ino(path) == os.lstat(v.cipher_path(path)).st_ino
    assert fs.fs.ino("") == ROOT
    # readdir reports the same inode numbers lookup does
    assert {n: a.st_ino for n, a in fs.fs.readdir("")} == {"f": fs.fs.ino("f"), "d": fs.fs.ino("d")}


def test_forget_drops_inodes_after_their_lookups(fs: Mounted) -> None:
    fs.fs.write("f", b"x")
    ino = fs.fs.ino("f")
    n = fs.ops._nodes[ino].lookups
    assert n >= 1
    trio.run(fs.ops.forget, [(ino, n - 1)])
    assert ino in fs.ops._nodes
    trio.run(fs.ops.forget, [(ino, 1)])
    assert ino not in fs.ops._nodes
    with pytest.raises(pyfuse3.FUSEError):
        trio.run(fs.ops.getattr, ino, Ctx())
    trio.run(fs.ops.forget, [(ROOT, 100)])  # the root is never forgotten
    assert fs.fs.listdir("") == ["f"]


def test_known_inodes_follow_a_directory_rename(fs: Mounted) -> None:
    fs.fs.mkdir("a")
    fs.fs.mkdir("a/b")
    fs.fs.write("a/b/f", b"payload")
    f_ino, b_ino = fs.fs.ino("a/b/f"), fs.fs.ino("a/b")
    fs.fs.rename("a", "z")
    # the kernel keeps using the inode numbers it has: they must reach the moved objects
    assert trio.run(fs.ops.getattr, f_ino, Ctx()).st_size == 7
    fi = trio.run(fs.ops.open, f_ino, os.O_RDONLY, Ctx())
    assert bytes(trio.run(fs.ops.read, fi.fh, 0, 100)) == b"payload"
    trio.run(fs.ops.release, fi.fh)
    attr = trio.run(fs.ops.create, b_ino, b"new", stat.S_IFREG | 0o644, os.O_WRONLY, Ctx())[0]
    trio.run(fs.ops.release, attr.fh)
    assert fs.fs.listdir("z/b") == ["f", "new"]


def test_unlinked_open_file_stays_usable(fs: Mounted) -> None:
    fs.fs.write("tmp", b"before")
    ino = fs.fs.ino("tmp")
    fh = fs.fs.open("tmp", os.O_RDWR)
    fs.fs.unlink("tmp")
    assert fs.fs.listdir("") == []
    trio.run(fs.ops.write, fh, 6, b" and after")
    assert bytes(trio.run(fs.ops.read, fh, 0, 100)) == b"before and after"
    attr = trio.run(fs.ops.getattr, ino, Ctx())
    assert (attr.st_size, attr.st_nlink) == (16, 0)
    trio.run(fs.ops.release, fh)
    assert fs.stats.open_files == 0


def test_mknod_fifo(fs: Mounted) -> None:
    attr = trio.run(fs.ops.mknod, ROOT, b"fifo", stat.S_IFIFO | 0o640, 0, Ctx())
    assert stat.S_ISFIFO(attr.st_mode) and stat.S_IMODE(attr.st_mode) == 0o640
    assert stat.S_ISFIFO(os.lstat(fs.vault().cipher_path("fifo")).st_mode)


def test_create_applies_the_callers_umask(fs: Mounted) -> None:
    ctx: Any = Ctx(umask=0o027)
    fi, attr = trio.run(fs.ops.create, ROOT, b"f", stat.S_IFREG | 0o666, os.O_WRONLY, ctx)
    trio.run(fs.ops.release, fi.fh)
    assert stat.S_IMODE(attr.st_mode) == 0o640
    attr = trio.run(fs.ops.mkdir, ROOT, b"d", stat.S_IFDIR | 0o777, Ctx(umask=0))
    assert stat.S_IMODE(attr.st_mode) == 0o777
    assert stat.S_IMODE(os.stat(fs.vault().cipher_path("d") / DIRIV_NAME).st_mode) == 0o444


def test_utimens_and_partial_times(fs: Mounted) -> None:
    fs.fs.write("f", b"x")
    attr = pyfuse3.EntryAttributes()
    attr.st_atime_ns, attr.st_mtime_ns = 1_000_000_000_123, 2_000_000_000_456
    out = fs.fs.setattr("f", attr, atime=True, mtime=True)
    assert (out.st_atime_ns, out.st_mtime_ns) == (1_000_000_000_123, 2_000_000_000_456)
    attr.st_mtime_ns = 3_000_000_000_000
    out = fs.fs.setattr("f", attr, mtime=True)
    assert (out.st_atime_ns, out.st_mtime_ns) == (1_000_000_000_123, 3_000_000_000_000)


def test_setattr_of_an_open_file_changes_the_object_opened_not_its_swapped_name(fs: Mounted) -> None:
    """While the kernel holds a file open, mode, owner and times are set through that open
    descriptor: a file swapped in under its cipher name meanwhile is left alone."""
    fi, made = trio.run(fs.ops.create, ROOT, b"f", stat.S_IFREG | 0o644, os.O_WRONLY, Ctx())
    cpath = fs.vault().cipher_path("f")
    aside = cpath.with_name("aside")
    os.rename(cpath, aside)
    cpath.write_bytes(b"planted")
    os.chmod(cpath, 0o600)
    planted = os.stat(cpath)
    attr = pyfuse3.EntryAttributes()
    attr.st_mode, attr.st_uid, attr.st_gid = 0o640, os.getuid(), os.getgid()
    attr.st_atime_ns, attr.st_mtime_ns = 1_000_000_000_123, 2_000_000_000_456
    set_all = fields(mode=True, uid=True, gid=True, atime=True, mtime=True)
    out = trio.run(fs.ops.setattr, made.st_ino, attr, set_all, None, Ctx())
    trio.run(fs.ops.release, fi.fh)
    assert (stat.S_IMODE(out.st_mode), out.st_mtime_ns) == (0o640, 2_000_000_000_456)
    mine = os.stat(aside)
    assert (stat.S_IMODE(mine.st_mode), mine.st_mtime_ns) == (0o640, 2_000_000_000_456)
    assert os.stat(cpath) == planted


def test_a_file_changed_behind_the_mount_gets_a_new_node_unless_open(fs: Mounted) -> None:
    """The kernel keeps its own size and pages of a file it caches; a lookup that finds the
    file rewritten in the cipher dir (not through the mount) hands out a new node, which the
    kernel reads afresh. Lookups of an unchanged file, or of one held open, keep the node."""
    fs.fs.write("f", b"first")
    first = trio.run(fs.ops.lookup, ROOT, b"f", Ctx())
    assert trio.run(fs.ops.lookup, ROOT, b"f", Ctx()).st_ino == first.st_ino
    with fs.vault().open_file("f", writable=True) as f:
        f.write(0, b"second, longer")
    second = trio.run(fs.ops.lookup, ROOT, b"f", Ctx())
    assert second.st_ino != first.st_ino and second.st_size == len(b"second, longer")
    fh = fs.fs.open("f", os.O_RDONLY)
    with fs.vault().open_file("f", writable=True) as f:
        f.write(0, b"third, longest of all")
    assert trio.run(fs.ops.lookup, ROOT, b"f", Ctx()).st_ino == second.st_ino
    trio.run(fs.ops.release, fh)


def test_the_kernels_flush_of_unchanged_times_leaves_the_file_alone(fs: Mounted) -> None:
    """The kernel hands back the times it keeps (mtime with ctime) before it drops a closed
    file: when they are the file's own, the cipher file is not touched (its ctime stays);
    other times are set."""
    fs.fs.write("f", b"x")
    cpath = fs.vault().cipher_path("f")
    before = os.stat(cpath)
    attr = pyfuse3.EntryAttributes()
    attr.st_mtime_ns = before.st_mtime_ns
    out = fs.fs.setattr("f", attr, mtime=True, ctime=True)
    assert out.st_mtime_ns == before.st_mtime_ns and os.stat(cpath).st_ctime_ns == before.st_ctime_ns
    attr.st_mtime_ns = 5_000_000_000_000
    assert fs.fs.setattr("f", attr, mtime=True, ctime=True).st_mtime_ns == 5_000_000_000_000
    assert os.stat(cpath).st_mtime_ns == 5_000_000_000_000


def test_statfs_comes_from_the_cipher_dir(fs: Mounted) -> None:
    out = trio.run(fs.ops.statfs, Ctx())
    sv = os.statvfs(fs.cipherdir)
    assert (out.f_blocks, out.f_bsize, out.f_namemax) == (sv.f_blocks, sv.f_bsize, 255)


# -- content ----------------------------------------------------------------------------------


def test_holes_are_left_unwritten(fs: Mounted) -> None:
    """1 byte at 0 then 1 byte at 12298 gives [full block, hole, hole, short block] (§5.3)."""
    fs.fs.write("f", b"a")
    fs.fs.pwrite("f", 12298, b"b")
    raw = fs.vault().cipher_path("f").read_bytes()
    cb = BLOCK_SIZE + 32
    assert len(raw) == HEADER_LEN + 3 * cb + 11 + 32  # 12298 = 3 * 4096 + 10
    assert raw[HEADER_LEN + cb : HEADER_LEN + 3 * cb] == bytes(2 * cb)
    assert fs.fs.read("f") == b"a" + bytes(12297) + b"b"


def test_two_handles_share_the_file_id(fs: Mounted) -> None:
    """Truncating to 0 through one handle drops the file ID for the other as well (§5.3)."""
    fs.fs.write("f", b"old content")
    a = fs.fs.open("f", os.O_RDWR)
    b = fs.fs.open("f", os.O_RDWR)
    attr = pyfuse3.EntryAttributes()
    attr.st_size = 0
    trio.run(fs.ops.setattr, fs.fs.ino("f"), attr, fields(size=True), a, Ctx())
    trio.run(fs.ops.write, b, 0, b"new")
    trio.run(fs.ops.write, a, 3, b" content")
    for fh in (a, b):
        trio.run(fs.ops.release, fh)
    assert fs.vault().read_file("f") == b"new content"


def test_open_with_o_trunc(fs: Mounted) -> None:
    fs.fs.write("f", b"something long")
    fh = fs.fs.open("f", os.O_WRONLY | os.O_TRUNC)
    trio.run(fs.ops.write, fh, 0, b"short")
    trio.run(fs.ops.release, fh)
    assert fs.fs.read("f") == b"short"


def test_read_across_blocks_and_past_eof(fs: Mounted) -> None:
    data = bytes(range(256)) * 50  # 12800 bytes, four blocks
    fs.fs.write("f", data)
    fh = fs.fs.open("f", os.O_RDONLY)
    try:
        for off, size in ((0, 1), (4090, 20), (8191, 4098), (12000, 5000), (12800, 10), (99999, 1)):
            assert bytes(trio.run(fs.ops.read, fh, off, size)) == data[off : off + size]
    finally:
        trio.run(fs.ops.release, fh)
    assert fs.stats.bytes_read == 1 + 20 + 4098 + 800
    assert fs.stats.bytes_written == len(data)


def test_an_idle_mount_lets_go_of_its_read_buffer(fs: Mounted) -> None:
    """Reads share one reused buffer (a view of it is the reply); release_buffers, run when
    the mount goes quiet, drops the megabyte a large read left, and reads go on correctly."""
    data = os.urandom(1 << 20)
    fs.fs.write("big", data)
    fh = fs.fs.open("big", os.O_RDONLY)
    try:
        first = trio.run(fs.ops.read, fh, 0, 1 << 20)
        assert bytes(first) == data and len(first.obj) >= 1 << 20
        small = trio.run(fs.ops.read, fh, 5, 10)
        assert small.obj is first.obj  # reused between requests
        fs.ops.release_buffers()
        after = trio.run(fs.ops.read, fh, 5, 10)
        assert bytes(after) == data[5:15] and len(after.obj) < 1 << 20
        assert bytes(trio.run(fs.ops.read, fh, 4000, 9000)) == data[4000:13000]
    finally:
        trio.run(fs.ops.release, fh)


def test_tampered_block_gives_eio_and_counts(fs: Mounted) -> None:
    fs.fs.write("f", b"x" * 5000)
    cpath = fs.vault().cipher_path("f")
    raw = bytearray(cpath.read_bytes())
    raw[HEADER_LEN + 40] ^= 1
    cpath.write_bytes(raw)
    with pytest.raises(OSError) as info:
        fs.fs.read("f")
    assert info.value.errno == errno.EIO
    assert fs.stats.errors == 1


def test_xattrs_are_stored_encrypted(make_fs: Callable[..., Mounted]) -> None:
    for flags in ("default", "plaintextnames"):
        m = make_fs(flags)
        m.fs.write("f", b"x")
        m.fs.setxattr("f", "user.secret-name", b"secret value")
        cpath = m.vault().cipher_path("f")
        names = os.listxattr(cpath)
        assert len(names) == 1 and names[0].startswith(XATTR_PREFIX)
        assert "secret" not in names[0]
        stored = os.getxattr(cpath, names[0])
        assert b"secret" not in stored and len(stored) == len(b"secret value") + 32
        v = m.vault()
        assert v.xattr_names.decrypt_xattr_name(names[0]) == b"user.secret-name"
        assert v.decrypt_xattr_value(stored, "f") == b"secret value"
        if flags == "plaintextnames":
            assert names[0].endswith("=")  # padded base64 without Raw64 (§6.10)
    with pytest.raises(OSError) as info:
        m.fs.getxattr("f", "security.capability")
    assert info.value.errno == errno.EOPNOTSUPP


# -- read-only --------------------------------------------------------------------------------

WRITE_ACTIONS: dict[str, Callable[[DirectApi], object]] = {
    "create": lambda fs: fs.write("new", b"x"),
    "open-write": lambda fs: fs.open("f", os.O_WRONLY),
    "open-trunc": lambda fs: fs.open("f", os.O_RDONLY | os.O_TRUNC),
    "mkdir": lambda fs: fs.mkdir("new"),
    "rmdir": lambda fs: fs.rmdir("d"),
    "unlink": lambda fs: fs.unlink("f"),
    "rename": lambda fs: fs.rename("f", "g"),
    "link": lambda fs: fs.link("f", "g"),
    "symlink": lambda fs: fs.symlink("f", "g"),
    "truncate": lambda fs: fs.truncate("f", 0),
    "chmod": lambda fs: fs.chmod("f", 0o600),
    "setxattr": lambda fs: fs.setxattr("f", "user.a", b"1"),
    "removexattr": lambda fs: fs.removexattr("f", "user.a"),
    "mknod": lambda fs: fs.call("mknod", ROOT, b"p", stat.S_IFIFO | 0o600, 0, fs.ctx),
}


@pytest.mark.parametrize("action", list(WRITE_ACTIONS))
def test_read_only_refuses_writes(make_fs: Callable[..., Mounted], action: str) -> None:
    rw = make_fs()
    rw.fs.write("f", b"content")
    rw.fs.mkdir("d")
    rw.fs.setxattr("f", "user.a", b"1")
    ro = ForwardOperations(Vault.open(rw.cipherdir, password=PASSWORD), read_only=True)
    fs = DirectApi(ro)
    before = {p.name: p.stat().st_mtime_ns for p in rw.cipherdir.iterdir()}
    with pytest.raises(OSError) as info:
        WRITE_ACTIONS[action](fs)
    assert info.value.errno == errno.EROFS
    assert {p.name: p.stat().st_mtime_ns for p in rw.cipherdir.iterdir()} == before
    assert fs.read("f") == b"content"  # reading still works
    assert fs.listdir("") == ["d", "f"]


def test_write_handle_refused_when_read_only(make_fs: Callable[..., Mounted]) -> None:
    rw = make_fs()
    rw.fs.write("f", b"content")
    ro = ForwardOperations(Vault.open(rw.cipherdir, password=PASSWORD), read_only=True)
    fh = DirectApi(ro).open("f", os.O_RDONLY)
    with pytest.raises(pyfuse3.FUSEError) as info:
        trio.run(ro.write, fh, 0, b"x")
    assert info.value.errno == errno.EROFS


# -- gocryptfs vectors ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["v1.3", "v2.2-xchacha", "v2.2-deterministic-names", "v0.7-plaintextnames"])
def test_reads_upstream_example_vaults(vector_copy: Callable[[str], Path], name: str) -> None:
    cipher = vector_copy(f"tests/example_filesystems/{name}")
    fs = DirectApi(ForwardOperations(Vault.open(cipher, password=b"test")))
    assert fs.read("status.txt") == b"It works!\n"
    assert fs.readlink("rel") == "status.txt"
    assert fs.readlink("abs") == "/a/b/c/d"
    assert fs.lstat("abs")[1] == len("/a/b/c/d")
    if name != "v0.7-plaintextnames":
        long_name = "longname_255_" + "x" * 242
        assert fs.read(long_name) == b"It works!\n"
    assert {"status.txt", "rel", "abs"} <= set(fs.listdir(""))


def test_mount_options_and_fsname() -> None:
    assert {"nosuid", "nodev"} <= FORWARD_MOUNT_OPTIONS
    assert "default_permissions" not in FORWARD_MOUNT_OPTIONS  # only with allow_other (worker)
    assert not {o for o in FORWARD_MOUNT_OPTIONS if o.startswith(("fsname=", "subtype="))}
    assert forward_fsname("/a,b\\c") == "/a\\,b\\\\c"
    assert forward_fsname("rel").startswith("/")


def test_hard_link_inode_survives_losing_either_name(fs: Mounted) -> None:
    fs.fs.write("a", b"shared")
    ino = fs.fs.ino("a")
    fs.fs.link("a", "b")  # the table now knows the inode by both names
    fs.fs.unlink("b")
    assert trio.run(fs.ops.getattr, ino, Ctx()).st_nlink == 1
    fs.fs.link("a", "c")
    fs.fs.unlink("a")
    attr = trio.run(fs.ops.getattr, ino, Ctx())
    assert (attr.st_nlink, attr.st_size) == (1, 6)
    fi = trio.run(fs.ops.open, ino, os.O_RDONLY, Ctx())
    assert bytes(trio.run(fs.ops.read, fi.fh, 0, 10)) == b"shared"
    trio.run(fs.ops.release, fi.fh)


def test_readdir_keeps_the_table_in_step_with_the_listing(make_fs: Callable[..., Mounted]) -> None:
    fs = make_fs(log_names=True)
    fs.fs.mkdir("d1")
    fs.fs.mkdir("d2")
    fs.fs.write("d1/a", b"shared")
    fs.fs.link("d1/a", "d2/b")
    ino = fs.fs.ino("d1/a")
    v = fs.vault()
    # A listing finds the inode under its other name: the table keeps both names.
    assert dict(fs.fs.readdir("d2"))["b"].st_ino == ino
    node = fs.ops._nodes[ino]
    names = {node.path, *(p for p, _ in node.others or [])}
    assert names == {str(v.cipher_path("d1/a")), str(v.cipher_path("d2/b"))}
    assert node.plain == "d2/b"
    # Listing again counts one more kernel lookup per entry and keeps the path it has.
    lookups, path = node.lookups, node.path
    fs.fs.readdir("d2")
    assert node.lookups == lookups + 1 and node.path is path
    # Losing the listed name leaves the inode reachable through the other one.
    fs.fs.unlink("d2/b")
    attr = trio.run(fs.ops.getattr, ino, Ctx())
    assert (attr.st_nlink, attr.st_size) == (1, 6)
    assert fs.ops._nodes[ino].path == str(v.cipher_path("d1/a"))


def test_an_inode_number_on_another_device_is_another_object(make_fs: Callable[..., Mounted]) -> None:
    """The table keys objects on the cipher dir's device by st_ino alone; an object with the
    same number on another device (a filesystem mounted inside the cipher dir) is not it."""
    fs = make_fs(log_names=True)
    fs.fs.write("a", b"x")
    ino = fs.fs.ino("a")
    st = os.lstat(fs.vault().cipher_path("a"))
    fields = list(st)
    fields[stat.ST_DEV] = st.st_dev + 1
    elsewhere = os.stat_result(fields)
    same = fs.ops._same(ino)
    assert same(st) and not same(elsewhere)
    other = fs.ops._remember(elsewhere, str(fs.cipherdir / "elsewhere"), "elsewhere")
    assert other != ino and fs.ops._nodes[ino].plain == "a"
    assert fs.ops._nodes[other].plain == "elsewhere"
    path = fs.ops._nodes[ino].path
    assert path is not None and fs.ops._remember(st, path, "a") == ino  # still found by number


@pytest.mark.parametrize("log_names", [False, True], ids=["default", "names-logged"])
def test_the_table_holds_plain_paths_only_when_names_may_be_logged(
    make_fs: Callable[..., Mounted], log_names: bool
) -> None:
    """Plain paths serve log messages alone: a mount that logs no names keeps none."""
    fs = make_fs(log_names=log_names)
    fs.fs.mkdir("d")
    fs.fs.write("d/secret", b"x")
    fs.fs.readdir("d")
    nodes = fs.ops._nodes.values()
    assert {n.plain for n in nodes} == ({"", "d", "d/secret"} if log_names else {""})
    v = fs.vault()
    assert {n.path for n in nodes} == {str(v.cipher_path(p)) for p in ("", "d", "d/secret")}


def test_listing_after_a_rename_points_the_table_at_the_new_place(make_fs: Callable[..., Mounted]) -> None:
    fs = make_fs(log_names=True)
    fs.fs.mkdir("old")
    fs.fs.write("old/f", b"payload")
    fs.fs.readdir("old")
    ino = fs.fs.ino("old/f")
    fs.fs.rename("old", "new")
    assert [(n, a.st_ino) for n, a in fs.fs.readdir("new")] == [("f", ino)]
    assert fs.ops._nodes[ino].path == str(fs.vault().cipher_path("new/f"))
    assert fs.ops._nodes[ino].plain == "new/f"


def test_ls_l_attribute_questions_are_answered_like_gocryptfs(fs: Mounted) -> None:
    """`ls -l` asks every entry for its SELinux label and ACL: absent means ENODATA (§7.2)."""
    fs.fs.write("f", b"x")
    fs.fs.mkdir("d")
    for path in ("f", "d", ""):
        for name in ("security.selinux", "system.posix_acl_access", "user.none"):
            with pytest.raises(OSError) as info:
                fs.fs.getxattr(path, name)
            assert info.value.errno == errno.ENODATA, (path, name)
    label = b"system_u:object_r:user_home_t:s0\0"
    fs.fs.setxattr("f", "security.selinux", label)
    assert fs.fs.getxattr("f", "security.selinux") == label
    # Stored encrypted like any name but the ACLs, which alone pass through in the clear.
    [stored] = os.listxattr(fs.vault().cipher_path("f"))
    assert stored.startswith(XATTR_PREFIX) and "selinux" not in stored
    fs.fs.removexattr("f", "security.selinux")
    with pytest.raises(OSError) as info:
        fs.fs.getxattr("f", "security.selinux")
    assert info.value.errno == errno.ENODATA
    assert fs.stats.errors == 0


@pytest.mark.parametrize("probe", ["getxattrat", "proc"])
def test_xattr_probe_answers_absent_present_and_never_follows_a_planted_link(
    fs: Mounted, probe: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Whether an xattr is set is asked of the entry itself, by getxattrat(2) or, on kernels
    before 6.13, through its /proc name: the answers agree, and a symlink planted in the
    cipher dir is not followed to a file outside that has the attribute."""
    if probe == "proc":
        monkeypatch.setattr(dirfds, "_getxattrat", None)
    fs.fs.write("f", b"x")
    fs.fs.setxattr("f", "user.a", b"value")
    assert fs.fs.getxattr("f", "user.a") == b"value"
    for absent in ("user.b", "security.selinux"):
        with pytest.raises(OSError) as info:
            fs.fs.getxattr("f", absent)
        assert info.value.errno == errno.ENODATA
    cpath = fs.vault().cipher_path("f")
    outside = tmp_path / "outside"
    outside.write_bytes(b"not in the vault")
    disk = os.listxattr(cpath)[0]
    os.setxattr(outside, disk, os.getxattr(cpath, disk))
    os.unlink(cpath)
    os.symlink(outside, cpath)
    with pytest.raises(OSError) as info:
        fs.fs.getxattr("f", "user.a")
    assert info.value.errno in (errno.ENODATA, errno.ESTALE)


def test_xattr_of_an_object_removed_behind_our_back(fs: Mounted) -> None:
    fs.fs.write("f", b"x")
    ino = fs.fs.ino("f")
    os.unlink(fs.vault().cipher_path("f"))
    with pytest.raises(pyfuse3.FUSEError) as info:
        trio.run(fs.ops.getxattr, ino, b"security.selinux", Ctx())
    assert info.value.errno == errno.ENOENT
    assert fs.stats.errors == 0  # an everyday error, not damage


def test_replaced_open_file_keeps_its_content(fs: Mounted) -> None:
    fs.fs.write("old", b"old content")
    fs.fs.write("new", b"new")
    old_ino = fs.fs.ino("old")
    fh = fs.fs.open("old", os.O_RDONLY)
    fs.fs.rename("new", "old")
    assert fs.fs.read("old") == b"new"
    assert bytes(trio.run(fs.ops.read, fh, 0, 100)) == b"old content"
    assert trio.run(fs.ops.getattr, old_ino, Ctx()).st_size == len(b"old content")
    trio.run(fs.ops.release, fh)


def test_create_without_o_excl_opens_a_racing_file(fs: Mounted) -> None:
    """The kernel sends create after a failed lookup; someone may have made the file since."""
    Vault.open(fs.cipherdir, password=PASSWORD).write_file("raced", b"already here")
    fi, attr = trio.run(fs.ops.create, ROOT, b"raced", stat.S_IFREG | 0o644, os.O_RDWR, Ctx())
    assert attr.st_size == len(b"already here")
    assert bytes(trio.run(fs.ops.read, fi.fh, 0, 100)) == b"already here"
    trio.run(fs.ops.release, fi.fh)
    with pytest.raises(pyfuse3.FUSEError) as info:
        trio.run(fs.ops.create, ROOT, b"raced", stat.S_IFREG | 0o644, os.O_RDWR | os.O_EXCL, Ctx())
    assert info.value.errno == errno.EEXIST


def test_chmod_of_a_symlink_is_refused(fs: Mounted) -> None:
    fs.fs.write("target", b"x")
    fs.fs.symlink("target", "ln")
    with pytest.raises(OSError) as info:
        fs.fs.chmod("ln", 0o600)
    assert info.value.errno == errno.EOPNOTSUPP
    assert fs.fs.lstat("target")[2] == 0o644


def test_flush_is_declined_once_for_all(fs: Mounted) -> None:
    """Writes are on disk when acknowledged; ENOSYS stops the kernel's flush per close."""
    fs.fs.write("f", b"x")
    fh = fs.fs.open("f", os.O_RDWR)
    with pytest.raises(pyfuse3.FUSEError) as info:
        trio.run(fs.ops.flush, fh)
    assert info.value.errno == errno.ENOSYS
    trio.run(fs.ops.release, fh)


def _exchange(fs: Mounted, a: str, b: str, flags: int = pyfuse3.RENAME_EXCHANGE) -> None:
    fs.fs.call("rename", *fs.fs.split(a), *fs.fs.split(b), flags, fs.fs.ctx)


@pytest.mark.parametrize("flags", ["default", "plaintextnames", "longnamemax62"])
def test_rename_exchange_swaps_files_and_the_table_follows(
    make_fs: Callable[..., Mounted], flags: str
) -> None:
    """renameat2(RENAME_EXCHANGE) as gocryptfs supports it: both names stay, the objects swap."""
    m = make_fs(flags, log_names=True)
    m.fs.mkdir("d")
    long_a, long_b = "a" * 200, "d/" + "b" * 220  # long names: their .name sidecars stay valid
    m.fs.write(long_a, b"A")
    m.fs.write(long_b, b"BB")
    ino_a, ino_b = m.fs.ino(long_a), m.fs.ino(long_b)
    fh = m.fs.open(long_a, os.O_RDWR)  # an open handle follows its object
    _exchange(m, long_a, long_b)
    assert (m.fs.read(long_a), m.fs.read(long_b)) == (b"BB", b"A")
    assert (m.fs.ino(long_a), m.fs.ino(long_b)) == (ino_b, ino_a)
    assert m.ops._nodes[ino_a].plain == long_b and m.ops._nodes[ino_b].plain == long_a
    m.fs.call("write", fh, 0, b"X")
    m.fs.call("release", fh)
    assert m.fs.read(long_b) == b"X"
    v = m.vault()
    assert (v.read_file(long_a), v.read_file(long_b)) == (b"BB", b"X")
    assert [e.name for e in v.listdir("d")] == [long_b[2:]]
    assert all(e.error is None for e in v.listdir("", include_bad=True))
    assert m.stats.errors == 0


def test_rename_exchange_swaps_directories_with_their_contents(make_fs: Callable[..., Mounted]) -> None:
    """Directories trade places with everything below them: IVs, descriptors and inode
    table are keyed by path, so all of them must follow."""
    fs = make_fs(log_names=True)
    fs.fs.mkdir("x")
    fs.fs.mkdir("x/sub")
    fs.fs.write("x/sub/f", b"from x")
    fs.fs.mkdir("y")
    fs.fs.write("y/" + LONG, b"from y")
    assert fs.fs.read("x/sub/f") == b"from x"  # IVs and descriptors of both are cached now
    ino_f = fs.fs.ino("x/sub/f")
    _exchange(fs, "x", "y")
    assert fs.fs.listdir("x") == [LONG] and fs.fs.listdir("y") == ["sub"]
    assert fs.fs.read("y/sub/f") == b"from x" and fs.fs.read("x/" + LONG) == b"from y"
    assert fs.ops._nodes[ino_f].plain == "y/sub/f"
    assert fs.ops._nodes[ino_f].path == str(fs.vault().cipher_path("y/sub/f"))
    fs.fs.write("x/new", b"n")  # names are encrypted with the IV of the directory now there
    fs.fs.write("y/sub/new", b"m")
    v = fs.vault()
    assert sorted(e.name for e in v.listdir("x")) == sorted([LONG, "new"])
    assert v.read_file("y/sub/new") == b"m"
    # A file and a directory swap too.
    _exchange(fs, "x/new", "y")
    assert fs.fs.read("y") == b"n" and fs.fs.read("x/new/sub/new") == b"m"


def test_rename_exchange_needs_both_names(fs: Mounted) -> None:
    fs.fs.write("a", b"A")
    with pytest.raises(OSError) as info:
        _exchange(fs, "a", "missing")
    assert info.value.errno == errno.ENOENT
    fs.fs.write("b", b"B")
    with pytest.raises(OSError) as info:
        _exchange(fs, "a", "b", pyfuse3.RENAME_EXCHANGE | pyfuse3.RENAME_NOREPLACE)
    assert info.value.errno == errno.EINVAL
    assert (fs.fs.read("a"), fs.fs.read("b")) == (b"A", b"B")


def test_holes_read_as_zeros_without_reading_them(fs: Mounted, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sparse file (a sparse bomb, say) costs no disk reads and no per-block checks for its
    holes: whole cipher blocks in a hole of the cipher file are zeros (§5.3)."""
    size, mid = 64 << 20, 32 << 20
    fs.fs.write("sparse", b"head")
    fs.fs.truncate("sparse", size)
    fs.fs.pwrite("sparse", mid, b"middle")
    read_blocks: list[int] = []
    real = VaultFile._decrypt_blocks_into

    def counted(self: VaultFile, first: int, count: int, *rest: Any) -> int:
        read_blocks.append(first)
        return real(self, first, count, *rest)

    monkeypatch.setattr(VaultFile, "_decrypt_blocks_into", counted)
    fh = fs.fs.open("sparse", os.O_RDONLY)
    chunk = 1 << 20
    try:
        data = b"".join(bytes(fs.fs.call("read", fh, off, chunk)) for off in range(0, size, chunk))
    finally:
        fs.fs.call("release", fh)
    expected = bytearray(size)
    expected[:4] = b"head"
    expected[mid : mid + 6] = b"middle"
    assert data == expected
    # Only the chunks holding data (and a neighbour sharing a disk block with one) are read.
    assert 2 <= len(read_blocks) <= 4 < size // chunk
    assert all(b < 256 or abs(b - mid // BLOCK_SIZE) <= 256 for b in read_blocks)


def test_owner_writes_a_write_only_file_through_a_worker_that_is_not_root(
    make_fs: Callable[..., Mounted],
) -> None:
    """Mode 0200: a partial block is read, changed and written back (§5.4), so the owner is
    lent read permission for the open only, as gocryptfs does. Root would not need it: the
    worker runs as an ordinary user here, in a forked child."""
    if os.geteuid() != 0:
        skip_or_fail("the test drops to the user nobody; run it as root")
    user = nobody()
    m = make_fs()
    m.fs.write("wo", b"A" * (BLOCK_SIZE + 100))
    m.fs.chmod("wo", 0o200)
    for p in [m.cipherdir, *m.cipherdir.rglob("*")]:
        os.lchown(p, user.uid, user.gid)
    # Opened as root, before the fork: the test's temporary directories are root's alone.
    api = DirectApi(ForwardOperations(m.vault()))
    try:
        as_user(user, lambda: api.pwrite("wo", BLOCK_SIZE + 1, b"B"))
    finally:
        api.ops.close()
    assert m.fs.read("wo") == b"A" * (BLOCK_SIZE + 1) + b"B" + b"A" * 98
    assert stat.S_IMODE(os.lstat(m.vault().cipher_path("wo")).st_mode) == 0o200  # given back
