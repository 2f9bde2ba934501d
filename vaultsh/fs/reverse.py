"""The reverse-mode FUSE filesystem: a read-only encrypted view of a plain directory (§9)."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat as stat_mod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, NoReturn

import pyfuse3

from vaultsh.fs.frontend import FuseFrontend, request, statfs_reply
from vaultsh.fs.stats import MountStats
from vaultsh.vault.errors import VaultError
from vaultsh.vault.reverse import PATH_MAX, TAG_REAL, ReverseEntry, ReverseView, ViewStat

# Answered when the kernel asks about an inode whose name now leads to another plain object (a
# rename or a new file in the plain tree within the entry timeout): the kernel then looks the
# name up again, once, and retries with the fresh inode, as it does for NFS.
_STALE_ERRNOS = (errno.ENOENT, errno.ENOTDIR)

# Beyond pyfuse3.default_options. A reverse view is always read-only (§9.1), as gocryptfs
# mounts it; the subtype names the filesystem in /proc/mounts (fuse.vaultsh-reverse).
REVERSE_MOUNT_OPTIONS: frozenset[str] = frozenset({"ro", "subtype=vaultsh-reverse"})

# Inode numbers handed out for virtual files and for objects on other filesystems start here,
# far above what the plain filesystem's own numbers reach, so the two never meet.
SYNTHETIC_INODE_BASE = 1 << 63

# How long the kernel may keep names and attributes before asking again. The view itself is
# read-only; this bounds how late a change in the plain tree shows up.
CACHE_TIMEOUT = 1.0
# `.` and `..` lead every listing: directory offsets 1 and 2; entry i follows at i + 3.
_DOTS = 2

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND | os.O_CREAT


def reverse_fsname(plaindir: str | os.PathLike[str]) -> str:
    """The fsname= mount option value for a view of `plaindir`: its absolute path.

    Commas and backslashes are escaped because libfuse splits its option list at commas.
    """
    path = os.path.abspath(os.fspath(plaindir))
    return path.replace("\\", "\\\\").replace(",", "\\,")


log = logging.getLogger(__name__)


class _Key(NamedTuple):
    """What one inode of the view stands for.

    The plain object (dev, ino), which object of the view (TAG_*: virtual files borrow the
    inode of a real one), its file type, and the cipher path its bytes and names derive from
    (§9.2): the same plain file under another name is another object of the view, with another
    file ID. `path` is None for a regular file with several links, whose IVs come from one path
    pinned per object (§9.2), so that all its links are one object, as in the plain tree.
    """

    dev: int
    ino: int
    tag: int
    fmt: int
    path: str | None


# What the bytes the kernel may keep in its page cache for an inode were made from: the IV
# path and the plain file's identity, times and size at open (or the content of a virtual file).
_Fingerprint = tuple[object, ...]


@dataclass(slots=True)
class _Node:
    """An inode the kernel knows: the view entry it stands for, its key and its lookup count."""

    entry: ReverseEntry
    parent: int
    key: _Key
    lookups: int = 0
    # Fingerprint of the last open; the page cache is kept across opens only while it holds.
    cached: _Fingerprint | None = None
    # (size, mtime, ctime) the kernel was last told: it trusts them for the attribute timeout.
    shown: tuple[int, int, int] | None = None


@dataclass(slots=True)
class _OpenFile:
    """An open file: a plain fd plus the cipher path whose IVs it uses, or in-memory data."""

    fd: int
    iv_path: str
    data: bytes | None = None
    inode: int = 0


_OpenDir = tuple[int, list[ReverseEntry]]  # (inode, the listing at opendir)


def _read_only() -> NoReturn:
    """The answer to every request that would write (§9.1)."""
    raise pyfuse3.FUSEError(errno.EROFS)


class ReverseOperations(FuseFrontend[_OpenFile, _OpenDir]):
    """pyfuse3 handlers serving a ReverseView; every write gets EROFS.

    An inode stands for a plain object under one cipher path (_Key): a renamed plain file is a
    new inode of the view, since its file ID and IVs change with the path. Real objects keep
    their plain inode numbers while no other inode of the view holds that number (objects on
    other filesystems, virtual files, the config and a renamed object whose number is still
    held get synthetic ones, stable for the life of the mount). Files are read through an open
    plain fd per handle; the kernel keeps their cached pages across opens only while the
    plain file is unchanged (_Fingerprint). There is no lseek handler, so SEEK_HOLE finds no
    holes: a plaintext hole is encrypted data in the view (§9.2), and reporting it as a hole
    makes `cp` write zeros where ciphertext belongs.
    """

    supports_dot_lookup = True
    enable_writeback_cache = False
    _log = log

    def __init__(
        self,
        view: ReverseView,
        *,
        stats: MountStats | None = None,
        cache_timeout: float = CACHE_TIMEOUT,
        log_names: bool = False,
    ) -> None:
        super().__init__(stats=stats, log_names=log_names)
        self.view = view
        self._timeout = cache_timeout
        root = ReverseEntry("", "", "dir", plain="")
        # The directory itself, as every later stat of the root sees it (the plain dir may be
        # given as a symlink to it).
        root_key = self._key(root, view.stat(root))
        self._root_dev = root_key.dev
        self._nodes: dict[int, _Node] = {pyfuse3.ROOT_INODE: _Node(root, pyfuse3.ROOT_INODE, root_key, 1)}
        self._inodes: dict[_Key, int] = {root_key: pyfuse3.ROOT_INODE}  # the keys of _nodes
        self._synthetic: dict[_Key, int] = {}
        # gocryptfs derives a hard-linked file's IVs from the first path it is opened by, for
        # the whole mount (§9.2), so every link shows the same bytes: (cipher, plain) path.
        self._hardlink_ivs: dict[tuple[int, int], tuple[str, str]] = {}
        self._session = False  # serving a kernel (pyfuse3 called init): notifications can be sent

    def init(self) -> None:
        self._session = True

    # -- helpers -----------------------------------------------------------------------------

    def _node(self, inode: int) -> _Node:
        node = self._nodes.get(inode)
        if node is None:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return node

    @staticmethod
    def _key(entry: ReverseEntry, st: ViewStat) -> _Key:
        fmt = stat_mod.S_IFMT(st.mode)
        linked = st.tag == TAG_REAL and fmt == stat_mod.S_IFREG and st.nlink > 1
        return _Key(st.dev, st.ino, st.tag, fmt, None if linked else entry.cipher_path)

    def _inode(self, key: _Key) -> int:
        """The inode number for `key`: the one the kernel knows it by, else a free one."""
        inode = self._inodes.get(key)
        if inode is not None:
            return inode
        inode = self._synthetic.get(key)
        if inode is not None:
            return inode
        if (
            key.tag == TAG_REAL
            and key.dev == self._root_dev
            and pyfuse3.ROOT_INODE < key.ino < SYNTHETIC_INODE_BASE
            and key.ino not in self._nodes
        ):
            return key.ino
        inode = self._synthetic[key] = SYNTHETIC_INODE_BASE + len(self._synthetic)
        return inode

    def _stat_node(self, inode: int, node: _Node) -> ViewStat:
        """The view's stat of what `inode` stands for; ESTALE if its name leads elsewhere now.

        A file still open keeps its attributes after its plain name went away or was reused:
        they come from the fd then.
        """
        if inode == pyfuse3.ROOT_INODE:
            return self.view.stat(node.entry)
        try:
            st = self.view.stat(node.entry)
            if self._key(node.entry, st) == node.key:
                return st
        except VaultError as e:
            if e.errno not in _STALE_ERRNOS:
                raise
        for handle in self._files.values():
            if handle.inode == inode and handle.fd >= 0:
                return self.view.stat_of(node.entry, os.fstat(handle.fd))
        raise pyfuse3.FUSEError(errno.ESTALE)

    def _attributes(self, inode: int, st: ViewStat, key: _Key | None = None) -> pyfuse3.EntryAttributes:
        attr = pyfuse3.EntryAttributes()
        attr.st_ino = inode
        # A name of a file with several links is checked at every use: the inode does not
        # tell which of its names the kernel came by, and one of them may lead to a new file.
        attr.entry_timeout = 0 if key is not None and key.path is None else self._timeout
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

    def _remember(self, parent: int, entry: ReverseEntry, key: _Key, inode: int) -> None:
        """Count one more kernel reference to `inode`, which stands for `entry` (`key`)."""
        node = self._nodes.get(inode)
        if node is None:
            self._nodes[inode] = _Node(entry, parent, key, 1)
            self._inodes[key] = inode
            return
        node.lookups += 1
        if key.path is None:
            node.entry = entry  # the latest path to a file with several links
            node.parent = parent

    def _reply_entry(
        self, parent: int, entry: ReverseEntry, st: ViewStat | None = None
    ) -> pyfuse3.EntryAttributes:
        if st is None:
            st = self.view.stat(entry)
        key = self._key(entry, st)
        inode = self._inode(key)
        self._remember(parent, entry, key, inode)
        self._nodes[inode].shown = (st.size, st.mtime_ns, st.ctime_ns)
        return self._attributes(inode, st, key)

    # -- lookups and attributes ------------------------------------------------------------

    @request
    def lookup(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        parent = self._node(parent_inode)
        if name == b".":
            return self._reply_entry(parent.parent, parent.entry)
        if name == b"..":
            grandparent = self._node(parent.parent)
            return self._reply_entry(grandparent.parent, grandparent.entry)
        entry, st = self.view.lookup_stat(parent.entry, os.fsdecode(name))
        return self._reply_entry(parent_inode, entry, st)

    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        for inode, count in inode_list:
            node = self._nodes.get(inode)
            if node is None:
                continue
            node.lookups -= count
            if node.lookups <= 0 and inode != pyfuse3.ROOT_INODE:
                del self._nodes[inode]
                del self._inodes[node.key]

    @request
    def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        node = self._node(inode)
        st = self._stat_node(inode, node)
        node.shown = (st.size, st.mtime_ns, st.ctime_ns)
        return self._attributes(inode, st)

    @request
    def readlink(self, inode: int, ctx: pyfuse3.RequestContext) -> bytes:
        node = self._node(inode)
        entry = node.entry
        if entry.kind != "symlink":
            raise pyfuse3.FUSEError(errno.EINVAL)
        self._stat_node(inode, node)  # the target is encrypted with the path's IV (§9.2)
        target = os.fsencode(self.view.readlink(entry))
        if len(target) > PATH_MAX:  # the kernel would refuse it with a vaguer error (§7.1)
            raise pyfuse3.FUSEError(errno.ENAMETOOLONG)
        return target

    @request
    def access(self, inode: int, mode: int, ctx: pyfuse3.RequestContext) -> bool:
        self._node(inode)
        if mode & os.W_OK:
            raise pyfuse3.FUSEError(errno.EROFS)
        return True

    @request
    def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        st = os.statvfs(self.view.plaindir)
        return statfs_reply(st, st.f_namemax)

    # The view has no extended attributes. ENOSYS (rather than ENODATA per name) makes the
    # kernel stop asking for the whole mount: `ls -l` asks for ACLs of every entry, and those
    # round trips made it four times slower on a directory of 5000 files.
    @request
    def getxattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> bytes:
        raise pyfuse3.FUSEError(errno.ENOSYS)

    @request
    def listxattr(self, inode: int, ctx: pyfuse3.RequestContext) -> Sequence[bytes]:
        raise pyfuse3.FUSEError(errno.ENOSYS)

    # -- directories ---------------------------------------------------------------------------

    @request
    def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        node = self._node(inode)
        entry = node.entry
        if entry.kind != "dir":
            raise pyfuse3.FUSEError(errno.ENOTDIR)
        self._stat_node(inode, node)  # names inside are encrypted with the path's IV (§6.5)
        # One snapshot per open: readdir continues by index into it (stable offsets).
        entries = self.view.listdir(entry.cipher_path, entry.plain)
        fh = self._new_fh()
        self._dirs[fh] = (inode, entries)
        return fh

    @request
    def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        parent, entries = self._dirs[fh]
        if not self._reply_dots(parent, start_id, token):
            return
        for index in range(max(start_id - _DOTS, 0), len(entries)):
            entry = entries[index]
            try:
                st = self.view.stat(entry)
            except VaultError:
                continue  # gone from the plain tree since opendir
            key = self._key(entry, st)
            inode = self._inode(key)
            name = os.fsencode(entry.cipher_name)
            offset = index + 1 + _DOTS
            if not pyfuse3.readdir_reply(token, name, self._attributes(inode, st, key), offset):
                return
            self._remember(parent, entry, key, inode)
            self._nodes[inode].shown = (st.size, st.mtime_ns, st.ctime_ns)

    def _reply_dots(self, inode: int, start_id: int, token: pyfuse3.ReaddirToken) -> bool:
        """Send `.` and `..` first, as a local filesystem lists them (`ls -a`). The kernel takes
        no lookup reference for these two, so none is counted; False once the buffer is full."""
        if start_id >= _DOTS:
            return True
        node = self._node(inode)
        here = self._stat_node(inode, node)
        up_inode = node.parent  # the root's parent is the root itself
        up_node = self._nodes.get(up_inode)
        try:
            up = here if up_node is None or up_inode == inode else self._stat_node(up_inode, up_node)
        except pyfuse3.FUSEError:  # the parent's name leads elsewhere now: still list `..`
            up = here
        dots = ((b".", inode, here), (b"..", up_inode, up))
        for index in range(start_id, _DOTS):
            name, dot_inode, st = dots[index]
            if not pyfuse3.readdir_reply(token, name, self._attributes(dot_inode, st), index + 1):
                return False
        return True

    # Requests that cannot fail need no `request` wrapper: only the use is counted.
    async def releasedir(self, fh: int) -> None:
        self.stats.touch()
        self._dirs.pop(fh, None)

    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        self.stats.touch()

    # -- files ------------------------------------------------------------------------------

    @request
    def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        if flags & _WRITE_FLAGS:
            raise pyfuse3.FUSEError(errno.EROFS)
        node = self._node(inode)
        entry = node.entry
        if entry.kind == "dir":
            raise pyfuse3.FUSEError(errno.EISDIR)
        fingerprint: _Fingerprint
        if entry.data is not None:
            data = entry.data
            if entry.stat_from is None and self.view.conf_path is not None:
                data = self.view.conf_path.read_bytes()  # the config may have changed (-passwd)
            handle = _OpenFile(-1, entry.cipher_path, data, inode)
            fingerprint = (entry.cipher_path, data)
        elif entry.kind != "file" or entry.plain is None:
            raise pyfuse3.FUSEError(errno.EACCES)  # as gocryptfs: only regular files open
        else:
            handle, fingerprint = self._open_plain(inode, node, entry.plain)
        fh = self._add_file(handle)
        # The bytes are a pure function of the IV path and the plain file's content. Pages
        # the kernel cached for this inode stay only if both are what they were at the last
        # open; otherwise the kernel drops them (an open without keep_cache does that).
        keep = node.cached == fingerprint
        node.cached = fingerprint
        return pyfuse3.FileInfo(fh=fh, keep_cache=keep)

    def _open_plain(self, inode: int, node: _Node, plain: str) -> tuple[_OpenFile, _Fingerprint]:
        """A handle of the plain file `node` stands for; ESTALE if its name leads elsewhere now."""
        try:
            fd = self.view.open_plain(plain)
        except OSError as e:
            if e.errno in _STALE_ERRNOS:
                raise pyfuse3.FUSEError(errno.ESTALE) from None
            raise
        try:
            st = os.fstat(fd)
            if not stat_mod.S_ISREG(st.st_mode):
                raise pyfuse3.FUSEError(errno.EACCES)
            if self._key(node.entry, self.view.stat_of(node.entry, st)) != node.key:
                raise pyfuse3.FUSEError(errno.ESTALE)
        except BaseException:
            os.close(fd)
            raise
        iv_path = node.entry.cipher_path
        if st.st_nlink > 1:
            iv_path = self._pinned_iv_path(st, node.entry.cipher_path, plain)
        fingerprint = (iv_path, st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
        shown = (self.view.content.plain_to_cipher_size(st.st_size), st.st_mtime_ns, st.st_ctime_ns)
        if node.shown != shown and self._session:
            # The file changed since the kernel was told its size, maybe as a new file that got
            # the same inode number under the same name: have it ask again before reading.
            with contextlib.suppress(OSError):
                pyfuse3.invalidate_inode(inode, attr_only=True)
            node.shown = None
        return _OpenFile(fd, iv_path, None, inode), fingerprint

    def _pinned_iv_path(self, st: os.stat_result, cipher_path: str, plain: str) -> str:
        """The IV path of a file with several links: the first path it was opened by (§9.2).

        The pin holds only while that path still names the file: a new file created there
        derives its file ID from the same path, and two files must never share one.
        """
        ident = (st.st_dev, st.st_ino)
        pin = self._hardlink_ivs.get(ident)
        if pin is not None and pin[0] != cipher_path:
            try:
                pinned = self.view.lstat_plain(pin[1])
                if (pinned.st_dev, pinned.st_ino) != ident:
                    pin = None
            except OSError:
                pin = None
        if pin is None:
            pin = self._hardlink_ivs[ident] = (cipher_path, plain)
        return pin[0]

    @request
    def read(self, fh: int, off: int, size: int) -> bytes:
        handle = self._files.get(fh)
        if handle is None:
            raise pyfuse3.FUSEError(errno.EBADF)
        if handle.data is not None:
            data = handle.data[off : off + size]
        else:
            data = self.view.read_fd(handle.iv_path, handle.fd, off, size)
        self.stats.bytes_read += len(data)
        return data

    async def flush(self, fh: int) -> None:
        self.stats.touch()

    async def fsync(self, fh: int, datasync: bool) -> None:
        self.stats.touch()

    @request
    def release(self, fh: int) -> None:
        handle = self._pop_file(fh)
        if handle is not None:
            self._close_file(handle)

    def _close_file(self, handle: _OpenFile) -> None:
        if handle.fd >= 0:  # in-memory files (virtual ones) have no descriptor
            os.close(handle.fd)

    # -- everything that would write: EROFS ------------------------------------------------

    @request
    def setattr(
        self,
        inode: int,
        attr: pyfuse3.EntryAttributes,
        fields: pyfuse3.SetattrFields,
        fh: int | None,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        _read_only()

    @request
    def mknod(
        self, parent_inode: int, name: bytes, mode: int, rdev: int, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        _read_only()

    @request
    def mkdir(
        self, parent_inode: int, name: bytes, mode: int, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        _read_only()

    @request
    def unlink(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        _read_only()

    @request
    def rmdir(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        _read_only()

    @request
    def symlink(
        self, parent_inode: int, name: bytes, target: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        _read_only()

    @request
    def rename(
        self,
        parent_inode_old: int,
        name_old: bytes,
        parent_inode_new: int,
        name_new: bytes,
        flags: int,
        ctx: pyfuse3.RequestContext,
    ) -> None:
        _read_only()

    @request
    def link(
        self, inode: int, new_parent_inode: int, new_name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        _read_only()

    @request
    def create(
        self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: pyfuse3.RequestContext
    ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        _read_only()

    @request
    def write(self, fh: int, off: int, buf: bytes) -> int:
        _read_only()

    @request
    def setxattr(self, inode: int, name: bytes, value: bytes, ctx: pyfuse3.RequestContext) -> None:
        _read_only()

    @request
    def removexattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        _read_only()
