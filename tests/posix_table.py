"""Test helper: the POSIX behaviour table, run by syscalls below a directory or by direct FUSE calls."""

from __future__ import annotations

import errno
import os
import stat
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from gocryptfs_harness import import_or_skip

pyfuse3: Any = import_or_skip("pyfuse3")  # Any: a test swaps one of its functions
trio = import_or_skip("trio")

from vaultsh.fs.forward import ForwardOperations  # noqa: E402 - imports pyfuse3
from vaultsh.vault.content import BLOCK_SIZE  # noqa: E402

ROOT = 1  # the root directory's inode number in FUSE

# -- the table ---------------------------------------------------------------------------------
# The same table runs against direct calls (tests/fs/test_fs_forward_ops.py), a real mount and
# a plain directory (tests/fs/test_fs_forward_mount.py; the last checks the expectations).


class PosixApi:
    """Path-based file operations; every failure is an OSError carrying the errno."""

    def mkdir(self, path: str, mode: int = 0o755) -> None:
        raise NotImplementedError

    def rmdir(self, path: str) -> None:
        raise NotImplementedError

    def write(self, path: str, data: bytes, *, exclusive: bool = False) -> None:
        """Create or replace a file's whole content."""
        raise NotImplementedError

    def pwrite(self, path: str, offset: int, data: bytes) -> None:
        raise NotImplementedError

    def read(self, path: str) -> bytes:
        raise NotImplementedError

    def unlink(self, path: str) -> None:
        raise NotImplementedError

    def rename(self, src: str, dst: str, *, noreplace: bool = False) -> None:
        raise NotImplementedError

    def link(self, src: str, dst: str) -> None:
        raise NotImplementedError

    def symlink(self, target: str, path: str) -> None:
        raise NotImplementedError

    def readlink(self, path: str) -> str:
        raise NotImplementedError

    def truncate(self, path: str, size: int) -> None:
        raise NotImplementedError

    def chmod(self, path: str, mode: int) -> None:
        raise NotImplementedError

    def listdir(self, path: str) -> list[str]:
        raise NotImplementedError

    def lstat(self, path: str) -> tuple[str, int, int, int]:
        """(kind, size, permission bits, link count)."""
        raise NotImplementedError

    def setxattr(self, path: str, name: str, value: bytes) -> None:
        raise NotImplementedError

    def getxattr(self, path: str, name: str) -> bytes:
        raise NotImplementedError

    def listxattr(self, path: str) -> list[str]:
        raise NotImplementedError

    def removexattr(self, path: str, name: str) -> None:
        raise NotImplementedError


def kind_of(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


LONG = "L" * 200  # hashed with the default longnamemax (§6.7)
Step = Callable[[PosixApi], object]


@dataclass(frozen=True)
class PosixCase:
    """Set up with `setup`, run `action`; expect errno `error` or, on success, `check` to pass."""

    id: str
    setup: tuple[Step, ...]
    action: Step
    error: int | None = None
    check: Callable[[PosixApi], None] | None = None


def _w(path: str, data: bytes = b"x") -> Step:
    return lambda fs: fs.write(path, data)


def _d(path: str) -> Step:
    return lambda fs: fs.mkdir(path)


def _eq(expected: object, got: Callable[[PosixApi], object]) -> Callable[[PosixApi], None]:
    def check(fs: PosixApi) -> None:
        assert got(fs) == expected

    return check


def _seq(*steps: Step) -> Step:
    """Several steps as one action, run in order."""

    def run(fs: PosixApi) -> None:
        for step in steps:
            step(fs)

    return run


def _all(*checks: Callable[[PosixApi], None]) -> Callable[[PosixApi], None]:
    def check(fs: PosixApi) -> None:
        for c in checks:
            c(fs)

    return check


POSIX_CASES = [
    # errors
    PosixCase("mkdir-existing-dir", (_d("d"),), lambda fs: fs.mkdir("d"), errno.EEXIST),
    PosixCase("mkdir-over-file", (_w("f"),), lambda fs: fs.mkdir("f"), errno.EEXIST),
    PosixCase("mkdir-missing-parent", (), lambda fs: fs.mkdir("a/b"), errno.ENOENT),
    PosixCase("mkdir-under-file", (_w("f"),), lambda fs: fs.mkdir("f/x"), errno.ENOTDIR),
    PosixCase("rmdir-not-empty", (_d("d"), _w("d/f")), lambda fs: fs.rmdir("d"), errno.ENOTEMPTY),
    PosixCase("rmdir-missing", (), lambda fs: fs.rmdir("d"), errno.ENOENT),
    PosixCase("rmdir-file", (_w("f"),), lambda fs: fs.rmdir("f"), errno.ENOTDIR),
    PosixCase("unlink-dir", (_d("d"),), lambda fs: fs.unlink("d"), errno.EISDIR),
    PosixCase("unlink-missing", (), lambda fs: fs.unlink("f"), errno.ENOENT),
    PosixCase(
        "create-exclusive-existing", (_w("f"),), lambda fs: fs.write("f", b"y", exclusive=True), errno.EEXIST
    ),
    PosixCase("read-missing", (), lambda fs: fs.read("nope"), errno.ENOENT),
    PosixCase("read-through-file", (_w("f"),), lambda fs: fs.read("f/x"), errno.ENOTDIR),
    PosixCase("name-too-long", (), lambda fs: fs.write("n" * 256, b"x"), errno.ENAMETOOLONG),
    PosixCase("rename-missing", (), lambda fs: fs.rename("a", "b"), errno.ENOENT),
    PosixCase("rename-file-over-dir", (_w("f"), _d("d")), lambda fs: fs.rename("f", "d"), errno.EISDIR),
    PosixCase("rename-dir-over-file", (_d("d"), _w("f")), lambda fs: fs.rename("d", "f"), errno.ENOTDIR),
    PosixCase(
        "rename-dir-over-full-dir",
        (_d("a"), _d("b"), _w("b/x")),
        lambda fs: fs.rename("a", "b"),
        errno.ENOTEMPTY,
    ),
    PosixCase("rename-into-itself", (_d("a"), _d("a/b")), lambda fs: fs.rename("a", "a/b/c"), errno.EINVAL),
    PosixCase(
        "rename-noreplace-existing",
        (_w("a"), _w("b")),
        lambda fs: fs.rename("a", "b", noreplace=True),
        errno.EEXIST,
    ),
    PosixCase("link-existing", (_w("a"), _w("b")), lambda fs: fs.link("a", "b"), errno.EEXIST),
    PosixCase("link-missing", (), lambda fs: fs.link("a", "b"), errno.ENOENT),
    PosixCase("symlink-existing", (_w("a"),), lambda fs: fs.symlink("t", "a"), errno.EEXIST),
    PosixCase("readlink-file", (_w("a"),), lambda fs: fs.readlink("a"), errno.EINVAL),
    PosixCase("getxattr-missing", (_w("f"),), lambda fs: fs.getxattr("f", "user.none"), errno.ENODATA),
    PosixCase("removexattr-missing", (_w("f"),), lambda fs: fs.removexattr("f", "user.none"), errno.ENODATA),
    # successes
    PosixCase(
        "rename-over-file",
        (_w("a", b"AAA"), _w("b", b"B")),
        lambda fs: fs.rename("a", "b"),
        check=_all(_eq(["b"], lambda fs: fs.listdir("")), _eq(b"AAA", lambda fs: fs.read("b"))),
    ),
    PosixCase(
        "rename-over-empty-dir",
        (_d("a"), _w("a/x", b"in a"), _d("b")),
        lambda fs: fs.rename("a", "b"),
        check=_all(_eq(["b"], lambda fs: fs.listdir("")), _eq(b"in a", lambda fs: fs.read("b/x"))),
    ),
    PosixCase(
        "rename-across-dirs",
        (_d("a"), _d("b"), _d("a/sub"), _w("a/sub/f", b"deep")),
        lambda fs: fs.rename("a/sub", "b/moved"),
        check=_all(
            _eq([], lambda fs: fs.listdir("a")),
            _eq(["moved"], lambda fs: fs.listdir("b")),
            _eq(b"deep", lambda fs: fs.read("b/moved/f")),
        ),
    ),
    PosixCase(
        "rename-long-names",
        (_w(LONG, b"long"), _d("d")),
        lambda fs: fs.rename(LONG, "d/" + LONG + "2"),
        check=_all(
            _eq(["d"], lambda fs: fs.listdir("")),
            _eq([LONG + "2"], lambda fs: fs.listdir("d")),
            _eq(b"long", lambda fs: fs.read("d/" + LONG + "2")),
        ),
    ),
    PosixCase(
        "rename-noreplace-free",
        (_w("a", b"A"),),
        lambda fs: fs.rename("a", "b", noreplace=True),
        check=_eq(["b"], lambda fs: fs.listdir("")),
    ),
    PosixCase(
        "rename-hardlink-onto-itself",
        (_w("a", b"A"), lambda fs: fs.link("a", "b")),
        lambda fs: fs.rename("a", "b"),
        check=_eq(["a", "b"], lambda fs: fs.listdir("")),
    ),
    PosixCase(
        "hard-link-shares-content",
        (_w("a", b"first"),),
        _seq(lambda fs: fs.link("a", "b"), lambda fs: fs.pwrite("a", 0, b"FIRST")),
        check=_all(
            _eq(b"FIRST", lambda fs: fs.read("b")),
            _eq(("file", 5, 0o644, 2), lambda fs: fs.lstat("b")),
        ),
    ),
    PosixCase(
        "unlink-one-hard-link",
        (_w("a", b"kept"), lambda fs: fs.link("a", "b")),
        lambda fs: fs.unlink("a"),
        check=_all(
            _eq(b"kept", lambda fs: fs.read("b")), _eq(("file", 4, 0o644, 1), lambda fs: fs.lstat("b"))
        ),
    ),
    PosixCase(
        "symlink-roundtrip",
        (),
        lambda fs: fs.symlink("../some/where ü", "ln"),
        check=_all(
            _eq("../some/where ü", lambda fs: fs.readlink("ln")),
            _eq(len("../some/where ü".encode()), lambda fs: fs.lstat("ln")[1]),
        ),
    ),
    PosixCase(
        "long-dir-name",
        (),
        _seq(_d(LONG), _w(LONG + "/f"), lambda fs: fs.rmdir(LONG)),
        errno.ENOTEMPTY,
    ),
    PosixCase(
        "rmdir-long-name",
        (_d(LONG),),
        lambda fs: fs.rmdir(LONG),
        check=_eq([], lambda fs: fs.listdir("")),
    ),
    PosixCase(
        "truncate-grow-shrink",
        (_w("f", b"0123456789"),),
        _seq(lambda fs: fs.truncate("f", 3 * BLOCK_SIZE + 7), lambda fs: fs.truncate("f", 5)),
        check=_all(
            _eq(b"01234", lambda fs: fs.read("f")), _eq(("file", 5, 0o644, 1), lambda fs: fs.lstat("f"))
        ),
    ),
    PosixCase(
        "truncate-makes-holes",
        (_w("f", b"ab"),),
        _seq(lambda fs: fs.truncate("f", 20000), lambda fs: fs.pwrite("f", 9000, b"mid")),
        check=_eq(b"ab" + bytes(8998) + b"mid" + bytes(20000 - 9003), lambda fs: fs.read("f")),
    ),
    PosixCase(
        "write-past-eof",
        (_w("f", b"a"),),
        lambda fs: fs.pwrite("f", 12298, b"z"),
        check=_eq(b"a" + bytes(12297) + b"z", lambda fs: fs.read("f")),
    ),
    PosixCase(
        "chmod",
        (_w("f"),),
        lambda fs: fs.chmod("f", 0o600),
        check=_eq(("file", 1, 0o600, 1), lambda fs: fs.lstat("f")),
    ),
    PosixCase(
        "xattr-roundtrip",
        (_w("f"), _d("d")),
        _seq(
            lambda fs: fs.setxattr("f", "user.one", b"value 1"),
            lambda fs: fs.setxattr("f", "user.empty", b""),
            lambda fs: fs.setxattr("d", "user.dir", b"\x00\xffbinary"),
            lambda fs: fs.setxattr("f", "user.one", b"replaced"),
            lambda fs: fs.setxattr("f", "user.gone", b"x"),
            lambda fs: fs.removexattr("f", "user.gone"),
        ),
        check=_all(
            _eq(b"replaced", lambda fs: fs.getxattr("f", "user.one")),
            _eq(b"", lambda fs: fs.getxattr("f", "user.empty")),
            _eq(b"\x00\xffbinary", lambda fs: fs.getxattr("d", "user.dir")),
            _eq(["user.empty", "user.one"], lambda fs: sorted(fs.listxattr("f"))),
        ),
    ),
    PosixCase(
        "reserved-looking-names",
        (),
        _seq(_w("gocryptfs.diriv"), _d("gocryptfs.longname.x"), _w("x.name")),
        check=_eq(["gocryptfs.diriv", "gocryptfs.longname.x", "x.name"], lambda fs: fs.listdir("")),
    ),
]


def run_posix_case(fs: PosixApi, case: PosixCase) -> None:
    for step in case.setup:
        step(fs)
    if case.error is not None:
        with pytest.raises(OSError) as info:
            case.action(fs)
        assert info.value.errno == case.error, (
            f"{case.id}: got {errno.errorcode.get(info.value.errno or 0)}, want {errno.errorcode[case.error]}"
        )
        return
    case.action(fs)
    if case.check is not None:
        case.check(fs)


class OsApi(PosixApi):
    """PosixApi over ordinary syscalls below `root` (a plain directory or a mountpoint)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def p(self, path: str) -> str:
        return os.path.join(self.root, path) if path else str(self.root)

    def mkdir(self, path: str, mode: int = 0o755) -> None:
        os.mkdir(self.p(path), mode)

    def rmdir(self, path: str) -> None:
        os.rmdir(self.p(path))

    def write(self, path: str, data: bytes, *, exclusive: bool = False) -> None:
        flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
        fd = os.open(self.p(path), flags, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def pwrite(self, path: str, offset: int, data: bytes) -> None:
        fd = os.open(self.p(path), os.O_WRONLY)
        try:
            os.pwrite(fd, data, offset)
        finally:
            os.close(fd)

    def read(self, path: str) -> bytes:
        with open(self.p(path), "rb") as f:
            return f.read()

    def unlink(self, path: str) -> None:
        os.unlink(self.p(path))

    def rename(self, src: str, dst: str, *, noreplace: bool = False) -> None:
        if noreplace:
            renameat2_noreplace(self.p(src), self.p(dst))
        else:
            os.rename(self.p(src), self.p(dst))

    def link(self, src: str, dst: str) -> None:
        os.link(self.p(src), self.p(dst))

    def symlink(self, target: str, path: str) -> None:
        os.symlink(target, self.p(path))

    def readlink(self, path: str) -> str:
        return os.readlink(self.p(path))

    def truncate(self, path: str, size: int) -> None:
        os.truncate(self.p(path), size)

    def chmod(self, path: str, mode: int) -> None:
        os.chmod(self.p(path), mode)

    def listdir(self, path: str) -> list[str]:
        return sorted(os.listdir(self.p(path)))

    def lstat(self, path: str) -> tuple[str, int, int, int]:
        st = os.lstat(self.p(path))
        return kind_of(st.st_mode), st.st_size, stat.S_IMODE(st.st_mode), st.st_nlink

    def setxattr(self, path: str, name: str, value: bytes) -> None:
        os.setxattr(self.p(path), name, value)

    def getxattr(self, path: str, name: str) -> bytes:
        return os.getxattr(self.p(path), name)

    def listxattr(self, path: str) -> list[str]:
        return os.listxattr(self.p(path))

    def removexattr(self, path: str, name: str) -> None:
        os.removexattr(self.p(path), name)


def renameat2_noreplace(src: str, dst: str) -> None:
    """renameat2(RENAME_NOREPLACE): the os module has no binding for it."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd, rename_noreplace = -100, 1
    if libc.renameat2(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst), rename_noreplace) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), src)


# -- calling the operations directly -----------------------------------------------------------


@dataclass
class Ctx:
    """Stands in for pyfuse3.RequestContext (which only the kernel can fill in)."""

    uid: int = os.getuid()
    gid: int = os.getgid()
    pid: int = os.getpid()
    umask: int = 0o022


def fields(**set_: bool) -> Any:
    """A SetattrFields stand-in (the real one is read-only outside pyfuse3)."""
    names = ("atime", "mtime", "ctime", "mode", "uid", "gid", "size")
    return types.SimpleNamespace(**{f"update_{n}": set_.get(n, False) for n in names})


class DirectApi(PosixApi):
    """PosixApi that walks paths with `lookup` and calls the handlers through trio.run."""

    def __init__(self, ops: ForwardOperations) -> None:
        self.ops = ops
        self.ctx: Any = Ctx()

    def call(self, name: str, *args: Any) -> Any:
        try:
            return trio.run(getattr(self.ops, name), *args)
        except pyfuse3.FUSEError as e:
            raise OSError(e.errno, os.strerror(e.errno)) from None

    def lookup(self, parent: int, name: str) -> Any:
        attr = self.call("lookup", parent, os.fsencode(name), self.ctx)
        if attr.st_ino == 0:
            raise OSError(errno.ENOENT, f"{name}: no such entry")
        return attr

    def ino(self, path: str) -> int:
        ino = ROOT
        for part in [p for p in path.split("/") if p]:
            ino = self.lookup(ino, part).st_ino
        return ino

    def split(self, path: str) -> tuple[int, bytes]:
        parent, _, name = path.rpartition("/")
        return self.ino(parent), os.fsencode(name)

    def mkdir(self, path: str, mode: int = 0o755) -> None:
        self.call("mkdir", *self.split(path), mode, self.ctx)

    def rmdir(self, path: str) -> None:
        self.call("rmdir", *self.split(path), self.ctx)

    def open(self, path: str, flags: int) -> int:
        return int(self.call("open", self.ino(path), flags, self.ctx).fh)

    def write(self, path: str, data: bytes, *, exclusive: bool = False) -> None:
        parent, name = self.split(path)
        try:
            if exclusive:
                raise FileNotFoundError
            fh = self.open(path, os.O_WRONLY | os.O_TRUNC)
        except FileNotFoundError:
            flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else 0)
            fi, _attr = self.call("create", parent, name, stat.S_IFREG | 0o644, flags, self.ctx)
            fh = fi.fh
        try:
            if data:
                assert self.call("write", fh, 0, data) == len(data)
        finally:
            self.call("release", fh)

    def pwrite(self, path: str, offset: int, data: bytes) -> None:
        fh = self.open(path, os.O_WRONLY)
        try:
            self.call("write", fh, offset, data)
        finally:
            self.call("release", fh)

    def read(self, path: str) -> bytes:
        fh = self.open(path, os.O_RDONLY)
        try:
            return bytes(self.call("read", fh, 0, 1 << 24))
        finally:
            self.call("release", fh)

    def unlink(self, path: str) -> None:
        self.call("unlink", *self.split(path), self.ctx)

    def rename(self, src: str, dst: str, *, noreplace: bool = False) -> None:
        flags = pyfuse3.RENAME_NOREPLACE if noreplace else 0
        self.call("rename", *self.split(src), *self.split(dst), flags, self.ctx)

    def link(self, src: str, dst: str) -> None:
        self.call("link", self.ino(src), *self.split(dst), self.ctx)

    def symlink(self, target: str, path: str) -> None:
        self.call("symlink", *self.split(path), os.fsencode(target), self.ctx)

    def readlink(self, path: str) -> str:
        ino = self.ino(path)
        if not stat.S_ISLNK(self.call("getattr", ino, self.ctx).st_mode):
            raise OSError(errno.EINVAL, "not a symlink")  # the kernel answers this itself
        return os.fsdecode(self.call("readlink", ino, self.ctx))

    def setattr(self, path: str, attr: Any, **set_: bool) -> Any:
        return self.call("setattr", self.ino(path), attr, fields(**set_), None, self.ctx)

    def truncate(self, path: str, size: int) -> None:
        attr = pyfuse3.EntryAttributes()
        attr.st_size = size
        self.setattr(path, attr, size=True)

    def chmod(self, path: str, mode: int) -> None:
        attr = pyfuse3.EntryAttributes()
        attr.st_mode = mode
        self.setattr(path, attr, mode=True)

    def readdir(self, path: str, page: int = 1000, *, keep_dots: bool = False) -> list[tuple[str, Any]]:
        """All entries, asking `page` at a time like the kernel's fixed-size buffer."""
        fh = self.call("opendir", self.ino(path), self.ctx)
        out: list[tuple[str, Any]] = []
        try:
            start = 0
            while True:
                batch: list[tuple[str, Any, int]] = []

                def reply(
                    token: object, name: bytes, attr: Any, next_id: int, batch: list[Any] = batch
                ) -> bool:
                    if len(batch) >= page:
                        return False
                    batch.append((os.fsdecode(name), attr, next_id))
                    return True

                real = pyfuse3.readdir_reply
                pyfuse3.readdir_reply = reply
                try:
                    self.call("readdir", fh, start, None)
                finally:
                    pyfuse3.readdir_reply = real
                if not batch:
                    return out
                # `.` and `..` are left out, as os.listdir does; the test of them sees them.
                out.extend((n, a) for n, a, _ in batch if keep_dots or n not in (".", ".."))
                start = batch[-1][2]
        finally:
            self.call("releasedir", fh)

    def listdir(self, path: str) -> list[str]:
        return sorted(name for name, _ in self.readdir(path))

    def lstat(self, path: str) -> tuple[str, int, int, int]:
        attr = self.call("getattr", self.ino(path), self.ctx)
        return kind_of(attr.st_mode), attr.st_size, stat.S_IMODE(attr.st_mode), attr.st_nlink

    def setxattr(self, path: str, name: str, value: bytes) -> None:
        self.call("setxattr", self.ino(path), name.encode(), value, self.ctx)

    def getxattr(self, path: str, name: str) -> bytes:
        return bytes(self.call("getxattr", self.ino(path), name.encode(), self.ctx))

    def listxattr(self, path: str) -> list[str]:
        return [n.decode() for n in self.call("listxattr", self.ino(path), self.ctx)]

    def removexattr(self, path: str, name: str) -> None:
        self.call("removexattr", self.ino(path), name.encode(), self.ctx)
