"""The reverse-mode FUSE filesystem: a read-only encrypted view of a plain directory (§9)."""

from __future__ import annotations

import contextlib
import errno
import os
import stat as stat_mod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pyfuse3

from vaultsh.fs.stats import MountStats
from vaultsh.vault.errors import VaultError
from vaultsh.vault.reverse import PATH_MAX, TAG_REAL, ReverseEntry, ReverseView, ViewStat

# Beyond pyfuse3.default_options. A reverse view is always read-only (§9.1), as gocryptfs
# mounts it; the subtype names the filesystem in /proc/mounts (fuse.vaultsh-reverse).
REVERSE_MOUNT_OPTIONS: frozenset[str] = frozenset({"ro", "subtype=vaultsh-reverse"})

# Inode numbers handed out for virtual files and for objects on other filesystems start here,
# far above what the plain filesystem's own numbers reach, so the two never meet.
SYNTHETIC_INODE_BASE = 1 << 63

# How long the kernel may keep names and attributes before asking again. The view itself is
# read-only; this bounds how late a change in the plain tree shows up.
CACHE_TIMEOUT = 1.0

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND | os.O_CREAT


def reverse_fsname(plaindir: str | os.PathLike[str]) -> str:
    """The fsname= mount option value for a view of `plaindir`: its absolute path.

    Commas and backslashes are escaped because libfuse splits its option list at commas.
    """
    path = os.path.abspath(os.fspath(plaindir))
    return path.replace("\\", "\\\\").replace(",", "\\,")


@dataclass(slots=True)
class _Node:
    """An inode the kernel knows: the view entry it stands for and its lookup count."""

    entry: ReverseEntry
    parent: int
    lookups: int = 0


@dataclass(slots=True)
class _OpenFile:
    """An open file: a plain fd plus the cipher path whose IVs it uses, or in-memory data."""

    fd: int
    iv_path: str
    data: bytes | None = None


class ReverseOperations(pyfuse3.Operations):
    """pyfuse3 handlers serving a ReverseView; every write gets EROFS.

    Real objects keep their plain inode numbers (objects on other filesystems, virtual files
    and the config get synthetic ones, stable for the life of the mount). Files are read
    through an open plain fd per handle. There is no lseek handler, so SEEK_HOLE finds no
    holes: a plaintext hole is encrypted data in the view (§9.2), and reporting it as a hole
    makes `cp` write zeros where ciphertext belongs.
    """

    supports_dot_lookup = True
    enable_writeback_cache = False

    def __init__(
        self, view: ReverseView, *, stats: MountStats | None = None, cache_timeout: float = CACHE_TIMEOUT
    ) -> None:
        super().__init__()
        self.view = view
        self.stats = stats if stats is not None else MountStats()
        self._timeout = cache_timeout
        root_st = os.lstat(view.plaindir)
        self._root_dev = root_st.st_dev
        self._root_ino = root_st.st_ino
        root = ReverseEntry("", "", "dir", plain="")
        self._nodes: dict[int, _Node] = {pyfuse3.ROOT_INODE: _Node(root, pyfuse3.ROOT_INODE, 1)}
        self._synthetic: dict[tuple[int, int, int], int] = {}
        # gocryptfs derives a hard-linked file's IVs from the first path it is opened by, for
        # the whole mount (§9.2), so every link shows the same bytes.
        self._hardlink_ivs: dict[tuple[int, int], str] = {}
        self._files: dict[int, _OpenFile] = {}
        self._dirs: dict[int, tuple[int, list[ReverseEntry]]] = {}
        self._next_fh = 1

    # -- helpers -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _request(self) -> Iterator[None]:
        """Count the request; turn vault and OS errors into FUSE errors (and count those)."""
        self.stats.touch()
        try:
            yield
        except pyfuse3.FUSEError as e:
            self._count_error(e.errno)
            raise
        except VaultError as e:
            self._count_error(e.errno)
            raise pyfuse3.FUSEError(e.errno) from None
        except OSError as e:
            code = e.errno or errno.EIO
            self._count_error(code)
            raise pyfuse3.FUSEError(code) from None

    def _count_error(self, code: int) -> None:
        if code != errno.ENOENT:  # a failed lookup is an ordinary answer, not a fault
            self.stats.errors += 1

    def _node(self, inode: int) -> _Node:
        node = self._nodes.get(inode)
        if node is None:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return node

    def _inode(self, st: ViewStat) -> int:
        if st.tag == TAG_REAL and st.dev == self._root_dev:
            if st.ino == self._root_ino:
                return int(pyfuse3.ROOT_INODE)
            if st.ino != pyfuse3.ROOT_INODE and st.ino < SYNTHETIC_INODE_BASE:
                return st.ino
        key = (st.dev, st.ino, st.tag)
        inode = self._synthetic.get(key)
        if inode is None:
            inode = self._synthetic[key] = SYNTHETIC_INODE_BASE + len(self._synthetic)
        return inode

    def _attributes(self, inode: int, st: ViewStat) -> pyfuse3.EntryAttributes:
        attr = pyfuse3.EntryAttributes()
        attr.st_ino = inode
        attr.entry_timeout = self._timeout
        attr.attr_timeout = self._timeout
        attr.st_mode = st.mode
        attr.st_nlink = st.nlink
        attr.st_uid = st.uid
        attr.st_gid = st.gid
        attr.st_rdev = st.rdev
        attr.st_size = st.size
        attr.st_blocks = st.blocks
        attr.st_blksize = st.blksize
        attr.st_atime_ns = st.atime_ns
        attr.st_mtime_ns = st.mtime_ns
        attr.st_ctime_ns = st.ctime_ns
        return attr

    def _remember(self, parent: int, entry: ReverseEntry, inode: int) -> None:
        """Count one more kernel reference to `inode`, which now stands for `entry`."""
        node = self._nodes.get(inode)
        if node is None:
            self._nodes[inode] = _Node(entry, parent, 1)
            return
        node.lookups += 1
        if inode != pyfuse3.ROOT_INODE:
            node.entry = entry  # the latest path to the object (it may have several links)
            node.parent = parent

    def _reply_entry(self, parent: int, entry: ReverseEntry) -> pyfuse3.EntryAttributes:
        st = self.view.stat(entry)
        inode = self._inode(st)
        self._remember(parent, entry, inode)
        return self._attributes(inode, st)

    def _new_fh(self) -> int:
        fh = self._next_fh
        self._next_fh += 1
        return fh

    def _read_only(self) -> pyfuse3.FUSEError:
        self.stats.touch()
        self.stats.errors += 1
        return pyfuse3.FUSEError(errno.EROFS)

    # -- lookups and attributes ------------------------------------------------------------

    async def lookup(
        self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        with self._request():
            parent = self._node(parent_inode)
            if name == b".":
                return self._reply_entry(parent.parent, parent.entry)
            if name == b"..":
                grandparent = self._node(parent.parent)
                return self._reply_entry(grandparent.parent, grandparent.entry)
            entry = self.view.lookup(parent.entry, os.fsdecode(name))
            return self._reply_entry(parent_inode, entry)

    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        for inode, count in inode_list:
            node = self._nodes.get(inode)
            if node is None:
                continue
            node.lookups -= count
            if node.lookups <= 0 and inode != pyfuse3.ROOT_INODE:
                del self._nodes[inode]

    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        with self._request():
            st = self.view.stat(self._node(inode).entry)
            return self._attributes(inode, st)

    async def readlink(self, inode: int, ctx: pyfuse3.RequestContext) -> bytes:
        with self._request():
            entry = self._node(inode).entry
            if entry.kind != "symlink":
                raise pyfuse3.FUSEError(errno.EINVAL)
            target = os.fsencode(self.view.readlink(entry))
            if len(target) > PATH_MAX:  # the kernel would refuse it with a vaguer error (§7.1)
                raise pyfuse3.FUSEError(errno.ENAMETOOLONG)
            return target

    async def access(self, inode: int, mode: int, ctx: pyfuse3.RequestContext) -> bool:
        with self._request():
            self._node(inode)
            if mode & os.W_OK:
                raise pyfuse3.FUSEError(errno.EROFS)
            return True

    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        with self._request():
            st = os.statvfs(self.view.plaindir)
            out = pyfuse3.StatvfsData()
            out.f_bsize = st.f_bsize
            out.f_frsize = st.f_frsize
            out.f_blocks = st.f_blocks
            out.f_bfree = st.f_bfree
            out.f_bavail = st.f_bavail
            out.f_files = st.f_files
            out.f_ffree = st.f_ffree
            out.f_favail = st.f_favail
            out.f_namemax = st.f_namemax
            return out

    # The view has no extended attributes. ENOSYS (rather than ENODATA per name) makes the
    # kernel stop asking for the whole mount: `ls -l` asks for ACLs of every entry, and those
    # round trips made it four times slower on a directory of 5000 files.
    async def getxattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> bytes:
        self.stats.touch()
        raise pyfuse3.FUSEError(errno.ENOSYS)

    async def listxattr(self, inode: int, ctx: pyfuse3.RequestContext) -> Sequence[bytes]:
        self.stats.touch()
        raise pyfuse3.FUSEError(errno.ENOSYS)

    # -- directories ---------------------------------------------------------------------------

    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        with self._request():
            entry = self._node(inode).entry
            if entry.kind != "dir":
                raise pyfuse3.FUSEError(errno.ENOTDIR)
            # One snapshot per open: readdir continues by index into it (stable offsets).
            entries = self.view.listdir(entry.cipher_path, entry.plain)
            fh = self._new_fh()
            self._dirs[fh] = (inode, entries)
            return fh

    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        with self._request():
            parent, entries = self._dirs[fh]
            for index in range(start_id, len(entries)):
                entry = entries[index]
                try:
                    st = self.view.stat(entry)
                except VaultError:
                    continue  # gone from the plain tree since opendir
                inode = self._inode(st)
                name = os.fsencode(entry.cipher_name)
                if not pyfuse3.readdir_reply(token, name, self._attributes(inode, st), index + 1):
                    return
                self._remember(parent, entry, inode)

    async def releasedir(self, fh: int) -> None:
        self.stats.touch()
        self._dirs.pop(fh, None)

    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        self.stats.touch()

    # -- files ------------------------------------------------------------------------------

    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        with self._request():
            if flags & _WRITE_FLAGS:
                raise pyfuse3.FUSEError(errno.EROFS)
            entry = self._node(inode).entry
            if entry.kind == "dir":
                raise pyfuse3.FUSEError(errno.EISDIR)
            if entry.data is not None:
                data = entry.data
                if entry.stat_from is None and self.view.conf_path is not None:
                    data = self.view.conf_path.read_bytes()  # the config may have changed (-passwd)
                handle = _OpenFile(-1, entry.cipher_path, data)
            elif entry.kind != "file" or entry.plain is None:
                raise pyfuse3.FUSEError(errno.EACCES)  # as gocryptfs: only regular files open
            else:
                handle = self._open_plain(entry.cipher_path, entry.plain)
            fh = self._new_fh()
            self._files[fh] = handle
            self.stats.open_files += 1
            # The bytes are a pure function of the plain file; a change to it changes its mtime
            # or size, which makes the kernel drop the cached pages.
            return pyfuse3.FileInfo(fh=fh, keep_cache=True)

    def _open_plain(self, cipher_path: str, plain: str) -> _OpenFile:
        fd = self.view.open_plain(plain)
        try:
            st = os.fstat(fd)
        except OSError:
            os.close(fd)
            raise
        if not stat_mod.S_ISREG(st.st_mode):
            os.close(fd)
            raise pyfuse3.FUSEError(errno.EACCES)
        iv_path = cipher_path
        if st.st_nlink > 1:
            iv_path = self._hardlink_ivs.setdefault((st.st_dev, st.st_ino), cipher_path)
        return _OpenFile(fd, iv_path)

    async def read(self, fh: int, off: int, size: int) -> bytes:
        self.stats.touch()
        handle = self._files.get(fh)
        if handle is None:
            self.stats.errors += 1
            raise pyfuse3.FUSEError(errno.EBADF)
        if handle.data is not None:
            data = handle.data[off : off + size]
        else:
            try:
                data = self.view.read_fd(handle.iv_path, handle.fd, off, size)
            except OSError as e:
                self.stats.errors += 1
                raise pyfuse3.FUSEError(e.errno or errno.EIO) from None
        self.stats.bytes_read += len(data)
        return data

    async def flush(self, fh: int) -> None:
        self.stats.touch()

    async def fsync(self, fh: int, datasync: bool) -> None:
        self.stats.touch()

    async def release(self, fh: int) -> None:
        self.stats.touch()
        handle = self._files.pop(fh, None)
        if handle is None:
            return
        self.stats.open_files -= 1
        if handle.fd >= 0:
            os.close(handle.fd)

    def close_all(self) -> None:
        """Close the plain fds of handles the kernel never released (after an unmount)."""
        for handle in self._files.values():
            if handle.fd >= 0:
                os.close(handle.fd)
        self.stats.open_files -= len(self._files)
        self._files.clear()
        self._dirs.clear()

    # -- everything that would write: EROFS ------------------------------------------------

    async def setattr(
        self,
        inode: int,
        attr: pyfuse3.EntryAttributes,
        fields: pyfuse3.SetattrFields,
        fh: int | None,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        raise self._read_only()

    async def mknod(
        self, parent_inode: int, name: bytes, mode: int, rdev: int, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        raise self._read_only()

    async def mkdir(
        self, parent_inode: int, name: bytes, mode: int, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        raise self._read_only()

    async def unlink(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        raise self._read_only()

    async def rmdir(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        raise self._read_only()

    async def symlink(
        self, parent_inode: int, name: bytes, target: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        raise self._read_only()

    async def rename(
        self,
        parent_inode_old: int,
        name_old: bytes,
        parent_inode_new: int,
        name_new: bytes,
        flags: int,
        ctx: pyfuse3.RequestContext,
    ) -> None:
        raise self._read_only()

    async def link(
        self, inode: int, new_parent_inode: int, new_name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        raise self._read_only()

    async def create(
        self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: pyfuse3.RequestContext
    ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        raise self._read_only()

    async def write(self, fh: int, off: int, buf: bytes) -> int:
        raise self._read_only()

    async def setxattr(self, inode: int, name: bytes, value: bytes, ctx: pyfuse3.RequestContext) -> None:
        raise self._read_only()

    async def removexattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        raise self._read_only()
