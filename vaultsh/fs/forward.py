"""Forward mode over FUSE: the read-write plaintext view of a gocryptfs vault (spec §5–§8)."""

# Longer than 600 lines on purpose: the FUSE handlers of one mount share the node table (by
# kernel inode and by backing inode) and the open-file and open-directory tables under one set
# of invariants (which handler may drop a node, when a node's path is updated); they are one
# class so the invariants stay readable in one place. The format work lives in vaultsh.vault.

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat as stat_mod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyfuse3
from pyfuse3 import EntryAttributes, FileInfo, FUSEError, RequestContext, SetattrFields, StatvfsData

from vaultsh.fs.frontend import FuseFrontend, request, statfs_reply
from vaultsh.fs.stats import MountStats
from vaultsh.mount_protocol import mount_device
from vaultsh.vault.content import BLOCK_SIZE
from vaultsh.vault.errors import FsError, VaultError
from vaultsh.vault.file import ReadBuffers, VaultFile
from vaultsh.vault.names import NAME_MAX
from vaultsh.vault.ops import RenameResult
from vaultsh.vault.vault import DirEntry, Vault

log = logging.getLogger(__name__)

# Every change to the tree goes through this mount, and the kernel drops what its own
# operations make stale, so cached names and attributes only miss edits made to the cipher
# directory behind our back. Longer timeouts save a Python round trip per `stat`.
ENTRY_TIMEOUT = 10.0
ATTR_TIMEOUT = 10.0
# Remembered "no such name" answers: untar and compilers look up many names before creating them.
NEGATIVE_TIMEOUT = 2.0

# Mount options this filesystem wants besides fsname/subtype (which the caller adds): as
# gocryptfs does, set-uid bits and device nodes have no effect through the mount. Like
# gocryptfs, `default_permissions` is left to the worker, which adds it with allow_other only:
# a private mount is reached by its owner alone, whose rights on the cipher files already
# decide, and the kernel's own checks would cost an extra request per create and unlink.
FORWARD_MOUNT_OPTIONS: frozenset[str] = frozenset({"nosuid", "nodev"})

# Kernel read-ahead for the mount. FUSE starts at 128 KiB, so a sequential reader costs one
# request per 128 KiB; with 1 MiB the fixed cost per request is spread over 8 times the data.
READAHEAD_KIB = 1024

# How far ahead of a sequential reader the cipher file is fetched (posix_fadvise WILLNEED).
# Requests are served one at a time, so without it each read waits for the disk and the disk
# waits for the decryption; with it the next megabytes arrive while this one is decrypted.
PREFETCH_BYTES = 8 << 20


def forward_fsname(cipherdir: str | os.PathLike[str]) -> str:
    """The `fsname=` value for a mount of `cipherdir`: its absolute path, like gocryptfs.

    libfuse splits `-o` options at commas and reads backslash escapes, so both are escaped.
    """
    path = os.path.abspath(os.fspath(cipherdir))
    return path.replace("\\", "\\\\").replace(",", "\\,")


def raise_readahead(mountpoint: str | os.PathLike[str], kib: int = READAHEAD_KIB) -> bool:
    """Set the kernel read-ahead of a mounted filesystem; False if not allowed (needs root).

    Call it once the mount is up: the setting lives in the mount's backing-device entry in
    sysfs and goes away with the mount. The device comes from mountinfo, not from a stat of
    the mountpoint, which the serving process itself must never do (it would wait on itself).
    """
    dev = mount_device(mountpoint)
    if dev is None:
        return False
    try:
        with open(f"/sys/class/bdi/{dev}/read_ahead_kb", "w") as f:
            f.write(str(kib))
    except OSError:
        return False
    return True


# Node ids handed out while an object's own number is held by another node: far above the
# inode numbers of ext4, xfs and btrfs, so they seldom displace an object's own number.
_SPARE_NODE_IDS = 1 << 63
# `.` and `..` lead every listing: directory offsets 1 and 2; entry i follows at i + 3.
_DOTS = 2
_S_IFMT = 0o170000  # the file-type bits of st_mode (stat.S_IFMT, without a call)


def _written_state(st: os.stat_result) -> int:
    """What a write to a regular file changes, in one int (kept per node, see _changed_behind)."""
    return hash((st.st_size, st.st_mtime_ns))


# An object's (st_dev, st_ino); for the cipher dir's own device (all but a mount inside it)
# st_ino alone, the same int object as the node id, so a node costs no tuple and no st_dev int.
Backing = int | tuple[int, int]

# The file-type bits as shared int objects: `st_mode & _S_IFMT` makes a new one per node.
_KINDS = {kind: kind for kind in (0o140000, 0o120000, 0o100000, 0o060000, 0o040000, 0o020000, 0o010000)}


@dataclass(eq=False, slots=True)
class _Node:
    """One object the kernel knows by a node id: where it lives in the cipher tree.

    `path` is its cipher path as a string (a Path would double the table's memory), None
    once the last name is gone (the object may still be open, or some process's working
    directory); `last` then holds its attributes from just before. `plain` is the plain
    path, kept only when names may be logged (else ""). Hard-linked files carry their other
    known names in `others`. For a regular file, `seen` is
    the hash of its cipher size and mtime as this mount last saw or left them (see
    `_changed_behind`).
    """

    id: int  # the FUSE node id, also reported as st_ino
    backing: Backing  # the cipher object's inode (see ForwardOperations._backing)
    kind: int  # its file type (S_IFMT bits)
    path: str | None
    plain: str  # plain path, only for messages
    lookups: int = 0
    others: list[tuple[str, str]] | None = None
    files: list[_OpenFile] | None = None  # open handles of this inode (None: none, the usual case)
    last: os.stat_result | None = None
    seen: int = 0


@dataclass(eq=False, slots=True)
class _OpenFile:
    """One file handle the kernel holds: the open cipher file and how it is being read."""

    file: VaultFile
    ino: int
    node: _Node
    writable: bool
    next_read: int = 0  # where a sequential reader's next request starts (plain offset)
    prefetched_to: int = 0  # cipher offset up to which the disk has been asked to read ahead


@dataclass(eq=False, slots=True)
class _OpenDir:
    """One directory handle the kernel holds, with its listing once read (see readdir)."""

    ino: int
    entries: list[DirEntry] | None = None


class ForwardOperations(FuseFrontend[_OpenFile, _OpenDir]):
    """pyfuse3 request handlers over a `Vault`, keeping gocryptfs's tree invariants (§8).

    Inode numbers are those of the cipher objects where possible (as gocryptfs does), so
    they are stable across lookups and hard links share one; the table maps each node id to
    a cipher path.
    """

    supports_dot_lookup = False  # no NFS export: the kernel then never looks up "." or ".."
    # The kernel gathers small writes (tar writes 10 KiB at a time) into large aligned ones
    # and answers write(2) from its page cache: half the requests of an untar, and no
    # read-modify-write of a partial block per write. Changes made to the cipher dir
    # behind the mount's back are picked up by lookups (see _changed_behind).
    enable_writeback_cache = True
    enable_acl = False
    _log = log

    def __init__(
        self,
        vault: Vault,
        *,
        read_only: bool = False,
        stats: MountStats | None = None,
        log_names: bool = False,
    ) -> None:
        super().__init__(stats=stats, log_names=log_names)
        self.vault = vault
        vault.sync_metadata = False  # gocryptfs does not fsync dirivs either (see Vault)
        self.read_only = read_only
        self._root_path = str(vault.cipherdir)
        root_st = vault.dirs.call(self._root_path, os.fstat)  # the root we hold
        self._dev = root_st.st_dev
        root = _Node(pyfuse3.ROOT_INODE, self._backing(root_st), stat_mod.S_IFDIR, self._root_path, "", 1)
        self._nodes: dict[int, _Node] = {root.id: root}  # every node the kernel may refer to
        self._named: dict[Backing, _Node] = {root.backing: root}  # by backing inode
        # Requests are served one at a time and a read's reply is sent before the next
        # request: every file's reads can share one set of buffers (see ReadBuffers).
        self._read_buffers = ReadBuffers()  # emptied when the mount is idle (release_buffers)
        self._next_spare_id = _SPARE_NODE_IDS
        self._plain_size = vault.content.cipher_to_plain_size
        self._encrypt_name = vault.encrypt_component
        self._links_encrypted = not vault.options.plaintext_names
        self._is_root = os.geteuid() == 0
        # Every cipher-side call goes through a directory descriptor (see Vault.dirs), so
        # cipher paths longer than PATH_MAX work and no planted symlink is followed.
        self._lstat = vault.lstat_cipher
        self._lstat_in = vault.lstat_in

    def release_buffers(self) -> None:
        # A megabyte after large reads, which an idle mount need not keep.
        self._read_buffers = ReadBuffers()

    # -- inode table ----------------------------------------------------------------------
    # The kernel knows objects by node id until it forgets them, also after they are removed
    # (an open file, a working directory). The backing file system may meanwhile give a new
    # object the removed one's inode number, so node ids are not inode numbers: a node is
    # found by its backing (st_dev, st_ino) only while it still has a name, and a new object
    # whose number is held by a node of a removed one gets a node id of its own. Giving it
    # the old id would hand the kernel's dead inode to the new object (ENOENT when creating
    # in a directory, the old file's cached pages) or, for a new type, make it fail both
    # objects with EIO.

    def _backing(self, st: os.stat_result) -> Backing:
        return st.st_ino if st.st_dev == self._dev else (st.st_dev, st.st_ino)

    def _node(self, ino: int) -> _Node:
        node = self._nodes.get(ino)
        if node is None:
            raise FUSEError(errno.ESTALE)
        return node

    def _dir_path(self, ino: int) -> tuple[str, str]:
        node = self._node(ino)
        if node.path is None:
            raise FsError(errno.ENOENT, f"{node.plain}: directory was removed")
        return node.path, node.plain

    def _named_node(self, st: os.stat_result) -> _Node | None:
        """The node of the object `st` among those that have a name, if the kernel knows it."""
        node = self._named.get(self._backing(st))
        if node is not None and node.kind != st.st_mode & _S_IFMT:
            # The number now belongs to an object of another type: the node's object was
            # removed behind the mount's back.
            self._bury(node, None)
            return None
        return node

    def _remember(self, st: os.stat_result, cpath: str, plain: str) -> int:
        """Count one kernel lookup of the object at `cpath`; returns its node id."""
        # The hot path of every lookup and listed entry: `_named_node`, inlined.
        backing = st.st_ino if st.st_dev == self._dev else (st.st_dev, st.st_ino)
        node = self._named.get(backing)
        if node is None or node.kind != st.st_mode & _S_IFMT or self._changed_behind(node, st):
            if node is not None:
                self._bury(node, None)  # see _named_node and _changed_behind
            node_id = st.st_ino  # the object's own number when free, as gocryptfs shows it
            if node_id in self._nodes or not node_id:
                node_id = self._spare_id()
            kind = st.st_mode & _S_IFMT
            node = _Node(node_id, backing, _KINDS.get(kind, kind), cpath, plain)
            self._saw(node, st)
            self._nodes[node_id] = self._named[backing] = node
        elif node.path is not cpath and node.path != cpath:
            if not stat_mod.S_ISDIR(st.st_mode) and node.path is not None:
                # Another name of a hard-linked file: keep both, either may go first.
                others = node.others if node.others is not None else []
                if (node.path, node.plain) not in others:
                    others.append((node.path, node.plain))
                others[:] = [o for o in others if o[0] != cpath]
                node.others = others
            node.path = cpath
            node.plain = plain
        node.lookups += 1
        return node.id

    @staticmethod
    def _changed_behind(node: _Node, st: os.stat_result) -> bool:
        """Whether a regular file was written behind the mount's back since it last saw it.

        With the writeback cache the kernel keeps its own size and mtime of a file for as
        long as it holds the inode, so a file changed in the cipher dir directly (a sync
        tool, another mount) would show its old size and pages for ever. A lookup that
        finds such a change (once the entry timeout has passed) hands the kernel a new node
        for the name, which it reads afresh. Files held open are left alone: their dirty
        pages belong to the inode the kernel has.
        """
        return node.kind == stat_mod.S_IFREG and not node.files and node.seen != _written_state(st)

    @staticmethod
    def _saw(node: _Node, st: os.stat_result) -> None:
        """Record what a change made by the mount left: it is no change behind its back."""
        node.seen = _written_state(st)

    def _spare_id(self) -> int:
        while self._next_spare_id in self._nodes:
            self._next_spare_id += 1
        self._next_spare_id += 1
        return self._next_spare_id - 1

    def _forget_node(self, node: _Node, count: int) -> None:
        """Drop `count` kernel lookups; a node nobody refers to any more leaves the table."""
        node.lookups -= count
        if node.lookups <= 0 and not node.files and node.id != pyfuse3.ROOT_INODE:
            self._evict(node)

    def _evict(self, node: _Node) -> None:
        if self._nodes.get(node.id) is node:
            del self._nodes[node.id]
        if self._named.get(node.backing) is node:
            del self._named[node.backing]

    def _bury(self, node: _Node, last: os.stat_result | None) -> None:
        """The object of `node` has no name left: no lookup may find the node again, and a
        new object on its inode number gets a node of its own."""
        node.path = None
        node.others = None
        node.last = last
        if self._named.get(node.backing) is node:
            del self._named[node.backing]

    def _drop_name(self, st: os.stat_result, gone: Path) -> None:
        """A name of the object `st` (its stat from just before) is gone from the cipher tree
        (unlink, rmdir, or replaced by a rename)."""
        node = self._named_node(st)
        if node is None:
            return
        cpath = str(gone)
        if st.st_nlink <= 1 or stat_mod.S_ISDIR(st.st_mode):
            self._bury(node, st)  # that was its last name
            return
        if node.others:
            node.others = [o for o in node.others if o[0] != cpath]
        if node.path == cpath:
            # A hard-linked file keeps its node: a lookup of a name the table does not know
            # yet finds it again.
            node.path, node.plain = node.others.pop() if node.others else (None, node.plain)
        if not node.others:
            node.others = None

    def _moved(self, st: os.stat_result, src: Path | str, dst: Path | str, new_plain: str) -> None:
        """Follow a rename of the object `st` in the table, including everything below a
        moved directory."""
        old, new = str(src), str(dst)
        node = self._named_node(st)
        old_plain = None
        if node is not None:
            if node.path == old:
                old_plain = node.plain
                node.path, node.plain = new, new_plain
            elif node.others:
                node.others = [(new, new_plain) if o[0] == old else o for o in node.others]
        if not stat_mod.S_ISDIR(st.st_mode):
            return
        prefix = old + "/"
        cut = len(prefix) - 1
        plain_prefix = (old_plain + "/") if old_plain else None
        for other in self._nodes.values():
            p = other.path
            if p is not None and p.startswith(prefix):
                other.path = new + p[cut:]
                if plain_prefix is not None and other.plain.startswith(plain_prefix):
                    other.plain = new_plain + other.plain[len(plain_prefix) - 1 :]

    def _stat(self, node: _Node) -> os.stat_result:
        """Current stat of a node's object: by a handle the kernel holds open (no name to
        resolve), by its path, or as it was when its last name went."""
        for f in node.files or ():
            return os.fstat(f.file.fd)
        if node.path is not None:
            try:
                st = self._lstat(node.path)
            except (FileNotFoundError, NotADirectoryError):
                pass
            else:
                if self._backing(st) == node.backing:
                    return st
        if node.last is not None:
            return node.last
        raise FsError(errno.ENOENT, f"{node.plain or '/'}: no longer exists")

    # -- attributes -----------------------------------------------------------------------

    def _attr(self, ino: int, st: os.stat_result, cpath: str | None) -> EntryAttributes:
        attr = EntryAttributes()
        attr.st_ino = ino
        attr.entry_timeout = ENTRY_TIMEOUT
        attr.attr_timeout = ATTR_TIMEOUT
        mode = st.st_mode
        attr.st_mode = mode
        attr.st_nlink = st.st_nlink
        attr.st_uid = st.st_uid
        attr.st_gid = st.st_gid
        attr.st_rdev = st.st_rdev
        if stat_mod.S_ISREG(mode):
            attr.st_size = self._plain_size(st.st_size)
        elif stat_mod.S_ISLNK(mode) and self._links_encrypted and cpath is not None:
            attr.st_size = self._link_size(cpath)  # the decrypted target's length (§7.1)
        else:
            attr.st_size = st.st_size
        attr.st_blksize = st.st_blksize
        attr.st_blocks = st.st_blocks
        attr.st_atime_ns = st.st_atime_ns
        attr.st_mtime_ns = st.st_mtime_ns
        attr.st_ctime_ns = st.st_ctime_ns
        return attr

    def _link_size(self, cpath: str) -> int:
        try:
            return len(os.fsencode(self.vault.readlink_cipher(Path(cpath), cpath)))
        except VaultError:
            return 0

    def _entry(self, st: os.stat_result, cpath: Path | str, plain: str) -> EntryAttributes:
        path = str(cpath)  # the table keeps strings (see _Node)
        return self._attr(self._remember(st, path, plain), st, path)

    def _owner(self, ppath: Path, ctx: RequestContext) -> tuple[int, int] | None:
        """Who gets a new object: the caller when we run as root for other users, else nobody
        (it stays ours). The Vault applies mode and owner on the descriptor of what it made."""
        if not self._is_root:
            return None
        # A set-gid parent decides the group, as the kernel does for local files.
        parent_sgid = self.vault.dirs.call(ppath, os.fstat).st_mode & stat_mod.S_ISGID
        return ctx.uid, -1 if parent_sgid else ctx.gid

    def _same(self, inode: int) -> Callable[[os.stat_result], bool]:
        """Whether a cipher object is `inode`: what the kernel checked the request against.

        Cipher-side calls act only on that object; a name swapped meanwhile for another one
        (a hard link to a file outside the vault, another user's file) gives ESTALE, and the
        kernel then looks the name up again and checks its permissions anew."""
        node = self._nodes.get(inode)
        backing = node.backing if node is not None else None
        return lambda st: self._backing(st) == backing

    def _check_writable(self) -> None:
        if self.read_only:
            raise FUSEError(errno.EROFS)

    def _join(self, parent_plain: str, name: str) -> str:
        """The plain path of `name` in a directory; "" unless names may be logged, the only
        use of plain paths, which then cost the node table neither memory nor time."""
        if not self.log_names:
            return ""
        return f"{parent_plain}/{name}" if parent_plain else name

    # -- lookups and attributes -----------------------------------------------------------

    @request
    def lookup(self, parent_inode: int, name: bytes, ctx: RequestContext) -> EntryAttributes:
        ppath, pplain = self._dir_path(parent_inode)
        if name == b".":
            st = self._lstat(ppath)
            return self._entry(st, ppath, pplain)
        if name == b"..":
            up = ppath if ppath == self._root_path else os.path.dirname(ppath)
            st = self._lstat(up)
            return self._entry(st, up, pplain.rpartition("/")[0])
        sname = os.fsdecode(name)
        disk = self._encrypt_name(ppath, sname)[0]
        try:
            st = self._lstat_in(ppath, disk)
        except FileNotFoundError:
            miss = EntryAttributes()
            miss.st_ino = 0  # a negative entry the kernel may cache
            miss.entry_timeout = NEGATIVE_TIMEOUT
            return miss
        return self._entry(st, os.path.join(ppath, disk), self._join(pplain, sname))

    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        # Not a request of any user (the kernel evicts inodes), so it neither counts as use
        # nor may it raise: pyfuse3 has nobody to send an error to.
        for ino, count in inode_list:
            node = self._nodes.get(ino)
            if node is not None:
                self._forget_node(node, count)

    @request
    def getattr(self, inode: int, ctx: RequestContext) -> EntryAttributes:
        node = self._node(inode)
        st = self._stat(node)
        attr = self._attr(inode, st, node.path)
        if st is node.last:
            attr.st_nlink = 0  # removed: what a local filesystem shows through an old handle
        return attr

    @request
    def setattr(
        self,
        inode: int,
        attr: EntryAttributes,
        fields: SetattrFields,
        fh: int | None,
        ctx: RequestContext,
    ) -> EntryAttributes:
        self._check_writable()
        node = self._node(inode)
        handle = self._files.get(fh) if fh is not None else None
        # An open descriptor reaches exactly the inode's object (checked when it was opened)
        # in one system call per change: `tar` sets owner, mode and times while it holds the
        # file open. Without one, the object is reached by its name and checked (`same`).
        fd = handle.file.fd if handle is not None else self._open_fd(node)
        path = Path(self._live_path(inode)[0]) if fd < 0 else None
        same = self._same(inode)
        if fields.update_size:
            self._truncate(node, handle, attr.st_size, same)
        if path is None:
            self._set_through_fd(fd, attr, fields)
            st = os.fstat(fd)
        else:
            now = self._stat(node) if self._kernel_times_flush(fields) else None
            if now is None or not (
                (not fields.update_atime or attr.st_atime_ns == now.st_atime_ns)
                and (not fields.update_mtime or attr.st_mtime_ns == now.st_mtime_ns)
            ):
                self._set_by_name(node, path, attr, fields, same)
                now = self._stat(node)
            st = now
        self._saw(node, st)
        return self._attr(inode, st, node.path)

    @staticmethod
    def _kernel_times_flush(fields: SetattrFields) -> bool:
        """A times-only setattr with ctime: how the kernel hands back the times it keeps
        (writeback cache), e.g. before it drops a closed file's inode. When they are what the
        file has, there is nothing to set (the kernel keeps ctime itself), and the file is
        not reopened by name for it."""
        return bool(
            fields.update_ctime
            and (fields.update_atime or fields.update_mtime)
            and not (fields.update_mode or fields.update_uid or fields.update_gid or fields.update_size)
        )

    @staticmethod
    def _new_times(
        attr: EntryAttributes, fields: SetattrFields, current: Callable[[], os.stat_result]
    ) -> tuple[int, int] | None:
        """(atime, mtime) in ns a setattr asks for, None if neither; `current` gives the other."""
        if not (fields.update_atime or fields.update_mtime):
            return None
        if fields.update_atime and fields.update_mtime:
            return attr.st_atime_ns, attr.st_mtime_ns
        cur = current()
        return (
            attr.st_atime_ns if fields.update_atime else cur.st_atime_ns,
            attr.st_mtime_ns if fields.update_mtime else cur.st_mtime_ns,
        )

    @classmethod
    def _set_through_fd(cls, fd: int, attr: EntryAttributes, fields: SetattrFields) -> None:
        if fields.update_mode:
            os.chmod(fd, stat_mod.S_IMODE(attr.st_mode))
        if fields.update_uid or fields.update_gid:
            uid = attr.st_uid if fields.update_uid else -1
            os.fchown(fd, uid, attr.st_gid if fields.update_gid else -1)
        times = cls._new_times(attr, fields, lambda: os.fstat(fd))
        if times is not None:
            os.utime(fd, ns=times)

    def _set_by_name(
        self,
        node: _Node,
        path: Path,
        attr: EntryAttributes,
        fields: SetattrFields,
        same: Callable[[os.stat_result], bool],
    ) -> None:
        if fields.update_mode:
            # Linux has no mode on symlinks: EOPNOTSUPP, never the link's target.
            self.vault.chmod_cipher(path, stat_mod.S_IMODE(attr.st_mode), same)
        if fields.update_uid or fields.update_gid:
            uid = attr.st_uid if fields.update_uid else -1
            self.vault.lchown_cipher(path, uid, attr.st_gid if fields.update_gid else -1, same)
        times = self._new_times(attr, fields, lambda: self._stat(node))
        if times is not None:
            self.vault.utime_cipher(path, times, same)

    @staticmethod
    def _open_fd(node: _Node) -> int:
        """A descriptor of the node's object if the kernel holds it open, else -1."""
        for f in node.files or ():
            return f.file.fd
        return -1

    def _truncate(
        self, node: _Node, handle: _OpenFile | None, size: int, same: Callable[[os.stat_result], bool]
    ) -> None:
        if handle is None or not handle.writable:
            # Any writable handle of the inode will do: they share its file ID state.
            handle = next((f for f in node.files or () if f.writable), None)
        if handle is not None:
            handle.file.truncate(size)
            return
        if node.path is None:
            raise FsError(errno.ENOENT, f"{node.plain}: no longer exists")
        with self._open_cipher(Path(node.path), node.plain, writable=True, same=same) as f:
            f.truncate(size)

    @request
    def readlink(self, inode: int, ctx: RequestContext) -> bytes:
        node = self._node(inode)
        if node.path is None:
            raise FsError(errno.ENOENT, f"{node.plain}: no longer exists")
        return os.fsencode(self.vault.readlink_cipher(Path(node.path), node.plain))

    @request
    def statfs(self, ctx: RequestContext) -> StatvfsData:
        # the root we hold, not its path
        return statfs_reply(self.vault.dirs.call(self._root_path, os.statvfs), NAME_MAX)

    # -- directories ----------------------------------------------------------------------

    @request
    def opendir(self, inode: int, ctx: RequestContext) -> int:
        self._node(inode)  # a removed directory opens too, and lists as empty
        fh = self._new_fh()
        self._dirs[fh] = _OpenDir(inode)
        return fh

    @request
    def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        handle = self._dirs.get(fh)
        if handle is None:
            raise FUSEError(errno.EBADF)
        node = self._node(handle.ino)
        dpath, dplain = node.path, node.plain
        if dpath is None:
            return  # removed: no entries, as on a local filesystem
        entries = handle.entries
        if entries is None or start_id == 0:
            # One decryption of the whole directory per opendir/rewinddir; later calls page
            # through the snapshot, so entries are neither skipped nor repeated (§6.8).
            listing = self.vault.list_cipher_dir(Path(dpath), include_bad=True, where=dplain or "/")
            entries = []
            for entry in listing:
                if entry.error is None:
                    entries.append(entry)
                else:
                    self.stats.errors += 1
                    where = dplain or "/" if self.log_names else f"directory {handle.ino}"
                    # The error names the cipher entry only: it has no plain name.
                    log.warning("%s: skipping undecryptable entry: %s", where, entry.error)
            handle.entries = entries

        def reply(dfd: int) -> None:
            if self._reply_dots(dfd, handle.ino, dpath, start_id, token):
                self._reply_entries(dfd, dpath, dplain, entries, max(start_id - _DOTS, 0), token)

        self.vault.dirs.call(dpath, reply)

    def _reply_dots(self, dfd: int, ino: int, dpath: str, start_id: int, token: pyfuse3.ReaddirToken) -> bool:
        """Send `.` and `..` first, as a local filesystem lists them (`ls -a`). The kernel takes
        no lookup reference for these two, so the table counts none; False once the buffer is full."""
        if start_id >= _DOTS:
            return True
        here = os.fstat(dfd)
        if dpath == self._root_path:
            up_ino, up = pyfuse3.ROOT_INODE, here
        else:
            up = os.stat("..", dir_fd=dfd, follow_symlinks=False)
            node = self._named.get(self._backing(up))
            up_ino = node.id if node is not None else up.st_ino
        dots = ((b".", ino, here), (b"..", up_ino, up))
        for index in range(start_id, _DOTS):
            name, dot_ino, st = dots[index]
            if not pyfuse3.readdir_reply(token, name, self._attr(dot_ino, st, None), index + 1):
                return False
        return True

    def _reply_entries(
        self,
        dfd: int,
        dpath: str,
        dplain: str,
        entries: list[DirEntry],
        start_id: int,
        token: pyfuse3.ReaddirToken,
    ) -> None:
        # Per entry this is the hot loop of `ls -l` and `find`: stat relative to the
        # directory's descriptor, no path object built.
        prefix = os.path.join(dpath, "")
        stat = os.stat
        for index in range(start_id, len(entries)):
            entry = entries[index]
            cname = entry.cipher_name
            try:
                st = stat(cname, dir_fd=dfd, follow_symlinks=False)
            except OSError:
                continue  # removed since the listing
            cpath = prefix + cname
            # Each entry sent counts as a lookup, so the node id is settled before the reply.
            ino = self._remember(st, cpath, self._join(dplain, entry.name))
            if not pyfuse3.readdir_reply(
                token, os.fsencode(entry.name), self._attr(ino, st, cpath), index + 1 + _DOTS
            ):
                self._forget_node(self._nodes[ino], 1)  # not sent: the buffer is full
                return

    @request
    def releasedir(self, fh: int) -> None:
        self._dirs.pop(fh, None)

    @request
    def fsyncdir(self, fh: int, datasync: bool) -> None:
        handle = self._dirs.get(fh)
        if handle is None:
            raise FUSEError(errno.EBADF)
        dpath = self._node(handle.ino).path
        if dpath is None:
            return  # removed: nothing of it is left to write out
        fd = self.vault.dirs.open_dir(Path(dpath))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _in_dir(self, inode: int) -> Iterator[tuple[Path, str]]:
        """(cipher dir, plain path) of a directory a request changes, held for the request:
        every call in it reaches the directory the kernel checked the caller's rights on, not
        another one swapped in under its name meanwhile (ESTALE; see DirFds.pinned)."""
        path, plain = self._dir_path(inode)
        with self.vault.dirs.pinned(path, self._same(inode)):
            yield Path(path), plain

    @contextlib.contextmanager
    def _new_name(self, parent_inode: int, name: bytes) -> Iterator[tuple[Path, str, str]]:
        """For a request that changes a directory: (parent cipher dir, name, plain path),
        with the parent held as `_in_dir` does."""
        self._check_writable()
        with self._in_dir(parent_inode) as (ppath, pplain):
            sname = os.fsdecode(name)
            yield ppath, sname, self._join(pplain, sname)

    @request
    def mkdir(self, parent_inode: int, name: bytes, mode: int, ctx: RequestContext) -> EntryAttributes:
        with self._new_name(parent_inode, name) as (ppath, sname, plain):
            want = mode & ~ctx.umask & 0o7777
            cpath, st = self.vault.make_dir(ppath, sname, want, plain, self._owner(ppath, ctx))
            return self._entry(st, cpath, plain)

    @request
    def rmdir(self, parent_inode: int, name: bytes, ctx: RequestContext) -> None:
        with self._new_name(parent_inode, name) as (ppath, sname, plain):
            cpath, st = self.vault.rmdir_at(ppath, sname, plain)
            self._drop_name(st, cpath)

    # -- names ----------------------------------------------------------------------------

    @request
    def mknod(
        self, parent_inode: int, name: bytes, mode: int, rdev: int, ctx: RequestContext
    ) -> EntryAttributes:
        with self._new_name(parent_inode, name) as (ppath, sname, plain):
            want = mode & ~ctx.umask
            cpath, st = self.vault.mknod_at(ppath, sname, want, rdev, plain, self._owner(ppath, ctx))
            return self._entry(st, cpath, plain)

    @request
    def symlink(self, parent_inode: int, name: bytes, target: bytes, ctx: RequestContext) -> EntryAttributes:
        with self._new_name(parent_inode, name) as (ppath, sname, plain):
            owner = self._owner(ppath, ctx)
            cpath, st = self.vault.make_symlink(ppath, sname, os.fsdecode(target), plain, owner)
            return self._entry(st, cpath, plain)

    @request
    def link(
        self, inode: int, new_parent_inode: int, new_name: bytes, ctx: RequestContext
    ) -> EntryAttributes:
        with self._new_name(new_parent_inode, new_name) as (ppath, sname, plain):
            existing = Path(self._live_path(inode)[0])
            cpath = self.vault.link_at(existing, ppath, sname, plain, self._same(inode))
            return self._entry(self._lstat(cpath), cpath, plain)

    @request
    def unlink(self, parent_inode: int, name: bytes, ctx: RequestContext) -> None:
        with self._new_name(parent_inode, name) as (ppath, sname, plain):
            cpath, st = self.vault.unlink_at(ppath, sname, plain)
            self._drop_name(st, cpath)

    @request
    def rename(
        self,
        parent_inode_old: int,
        name_old: bytes,
        parent_inode_new: int,
        name_new: bytes,
        flags: int,
        ctx: RequestContext,
    ) -> None:
        self._check_writable()
        if flags & ~(pyfuse3.RENAME_NOREPLACE | pyfuse3.RENAME_EXCHANGE) or flags == (
            pyfuse3.RENAME_NOREPLACE | pyfuse3.RENAME_EXCHANGE
        ):
            raise FUSEError(errno.EINVAL)
        with self._in_dir(parent_inode_old) as old, self._in_dir(parent_inode_new) as new:
            self._rename(old, name_old, new, name_new, flags)

    def _rename(
        self, old: tuple[Path, str], name_old: bytes, new: tuple[Path, str], name_new: bytes, flags: int
    ) -> None:
        (old_path, old_plain), (new_path, new_plain) = old, new
        src_name, dst_name = os.fsdecode(name_old), os.fsdecode(name_new)
        dst_plain = self._join(new_plain, dst_name)
        if flags & pyfuse3.RENAME_EXCHANGE:
            src_plain = self._join(old_plain, src_name)
            there, back = self.vault.exchange_at(
                old_path, src_name, new_path, dst_name, where=(src_plain, dst_plain)
            )
            self._exchanged(there, back, src_plain, dst_plain)
            return
        res = self.vault.rename_at(
            old_path,
            src_name,
            new_path,
            dst_name,
            noreplace=bool(flags & pyfuse3.RENAME_NOREPLACE),
            where=(self._join(old_plain, src_name), dst_plain),
        )
        if res.src == res.dst:
            return
        if res.replaced is not None:
            self._drop_name(res.replaced, res.dst)
        self._moved(res.src_stat, res.src, res.dst, dst_plain)

    def _exchanged(self, there: RenameResult, back: RenameResult, src_plain: str, dst_plain: str) -> None:
        """Follow an exchange in the table: each object (and all below it) takes the other's
        path. The first moves out of the way through a path no real one can have (a NUL)."""
        aside = Path(f"{there.src}\0exchange")
        self._moved(there.src_stat, there.src, aside, dst_plain)
        self._moved(back.src_stat, back.src, back.dst, src_plain)
        self._moved(there.src_stat, aside, there.dst, dst_plain)

    # -- files ----------------------------------------------------------------------------

    def _open_cipher(
        self, cpath: Path, plain: str, *, writable: bool, same: Callable[[os.stat_result], bool]
    ) -> VaultFile:
        try:
            return self.vault.open_cipher_file(cpath, plain, writable=writable, same=same)
        except FsError as e:
            if e.errno != errno.EACCES or not writable:
                raise
        # A mode-0200 file: writing needs read access (see Vault.open_lending_read).
        return self.vault.open_lending_read(cpath, plain, same)

    def _add_handle(self, f: VaultFile, ino: int, writable: bool) -> FileInfo:
        node = self._nodes[ino]
        handle = _OpenFile(f, ino, node, writable)
        if node.files is None:
            node.files = []
        node.files.append(handle)
        fh = self._add_file(handle)
        # The page cache stays valid across opens: every write passes through it.
        return FileInfo(fh=fh, keep_cache=True)

    @request
    def open(self, inode: int, flags: int, ctx: RequestContext) -> FileInfo:
        node = self._node(inode)
        writable = flags & os.O_ACCMODE != os.O_RDONLY
        if writable or flags & os.O_TRUNC:
            self._check_writable()
        if node.path is None:
            raise FsError(errno.ENOENT, f"{node.plain}: no longer exists")
        writable = writable or bool(flags & os.O_TRUNC)
        f = self._open_cipher(Path(node.path), node.plain, writable=writable, same=self._same(inode))
        self._apply_o_trunc(f, node, flags)
        return self._add_handle(f, inode, writable)

    @request
    def create(
        self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: RequestContext
    ) -> tuple[FileInfo, EntryAttributes]:
        with self._new_name(parent_inode, name) as (ppath, sname, plain):
            return self._create(ppath, sname, plain, mode, flags, ctx)

    def _create(
        self, ppath: Path, sname: str, plain: str, mode: int, flags: int, ctx: RequestContext
    ) -> tuple[FileInfo, EntryAttributes]:
        want = mode & ~ctx.umask & 0o7777
        try:
            f, cpath = self.vault.create_at(
                ppath, sname, want, plain, exact_mode=True, owner=self._owner(ppath, ctx)
            )
        except FsError as e:
            if e.errno != errno.EEXIST or flags & os.O_EXCL:
                raise
            # Created by someone else since the kernel's lookup: open what is there.
            cpath = ppath / self._encrypt_name(ppath, sname)[0]
            st = self._lstat(cpath)
            if not stat_mod.S_ISREG(st.st_mode):
                raise
            attr = self._entry(st, cpath, plain)
            return self._finish_open(attr.st_ino, cpath, plain, flags), attr
        try:
            st = os.fstat(f.fd)
        except BaseException:
            f.close()
            raise
        attr = self._entry(st, cpath, plain)
        return self._add_handle(f, attr.st_ino, True), attr

    def _finish_open(self, ino: int, cpath: Path, plain: str, flags: int) -> FileInfo:
        f = self._open_cipher(cpath, plain, writable=True, same=self._same(ino))
        self._apply_o_trunc(f, self._nodes[ino], flags)
        return self._add_handle(f, ino, True)

    def _apply_o_trunc(self, f: VaultFile, node: _Node, flags: int) -> None:
        """Empty a file just opened with O_TRUNC; on failure the file is closed."""
        if not flags & os.O_TRUNC:
            return
        try:
            f.truncate(0)
            self._saw(node, os.fstat(f.fd))
        except BaseException:
            f.close()
            raise

    def _handle(self, fh: int) -> _OpenFile:
        handle = self._files.get(fh)
        if handle is None:
            raise FUSEError(errno.EBADF)
        return handle

    @request
    def read(self, fh: int, off: int, size: int) -> memoryview:  # type: ignore[override]
        # pyfuse3 replies with any contiguous buffer (its stub says bytes), and it copies the
        # view into the reply before any other request runs: the handle's buffer is safe.
        handle = self._handle(fh)
        data = handle.file.read_view(off, size, self._read_buffers)
        self.stats.bytes_read += len(data)
        if off == handle.next_read and data:
            self._prefetch(handle, off + len(data))
        handle.next_read = off + len(data)
        return data

    @staticmethod
    def _prefetch(handle: _OpenFile, plain_end: int) -> None:
        """Ask the disk for the cipher bytes after `plain_end`, a window at a time."""
        file = handle.file
        cipher_end = file.codec.cipher_offset(plain_end // BLOCK_SIZE)
        if cipher_end + PREFETCH_BYTES // 2 <= handle.prefetched_to:
            return  # still well inside the window asked for last time
        start = max(cipher_end, handle.prefetched_to)
        with contextlib.suppress(OSError):
            os.posix_fadvise(file.fd, start, cipher_end + PREFETCH_BYTES - start, os.POSIX_FADV_WILLNEED)
        handle.prefetched_to = cipher_end + PREFETCH_BYTES

    @request
    def write(self, fh: int, off: int, buf: bytes) -> int:
        if self.read_only:
            raise FUSEError(errno.EROFS)
        handle = self._handle(fh)
        written = handle.file.write(off, buf)
        self._saw(handle.node, os.fstat(handle.file.fd))
        self.stats.bytes_written += written
        return written

    async def flush(self, fh: int) -> None:
        # Writes reach the cipher file before they are acknowledged, so a flush has nothing
        # to do. ENOSYS tells the kernel so once, and it stops sending one on every close.
        raise FUSEError(errno.ENOSYS)

    @request
    def fsync(self, fh: int, datasync: bool) -> None:
        fd = self._handle(fh).file.fd
        if datasync:
            os.fdatasync(fd)
        else:
            os.fsync(fd)

    @request
    def release(self, fh: int) -> None:
        handle = self._pop_file(fh)
        if handle is None:
            return
        node = handle.node
        if node.files is not None:
            node.files.remove(handle)
            if not node.files:
                node.files = None
        self._close_file(handle)
        self._forget_node(node, 0)

    # -- extended attributes (§7.2) -------------------------------------------------------

    def _live_path(self, inode: int) -> tuple[str, str]:
        """The cipher path of an inode that still has a name (ENOENT once it has none)."""
        node = self._node(inode)
        if node.path is None:
            raise FsError(errno.ENOENT, f"{node.plain}: no longer exists")
        return node.path, node.plain or "/"

    async def getxattr(self, inode: int, name: bytes, ctx: RequestContext) -> bytes:
        if name == b"security.capability":
            # The kernel asks before every write(2) (a FUSE file never counts as free of
            # set-uid bits and capabilities): ~15,000 times in an untar of the fsbench tree.
            # gocryptfs answers without a disk access; this also skips the request wrapper,
            # as there is nothing to count or log.
            raise FUSEError(errno.EOPNOTSUPP)
        return await self._getxattr(inode, name, ctx)

    @request
    def _getxattr(self, inode: int, name: bytes, ctx: RequestContext) -> bytes:
        cpath, plain = self._live_path(inode)
        value = self.vault.find_xattr(cpath, name, plain, self._same(inode))
        if value is None:
            # The everyday answer: `ls -l` asks every entry for its SELinux label and ACL.
            # Like gocryptfs, an absent name is ENODATA, whatever its namespace (§7.2).
            raise FUSEError(errno.ENODATA)
        return value

    @request
    def setxattr(self, inode: int, name: bytes, value: bytes, ctx: RequestContext) -> None:
        self._check_writable()
        cpath, plain = self._live_path(inode)
        self.vault.set_xattr(Path(cpath), name, value, plain, same=self._same(inode))

    @request
    def listxattr(self, inode: int, ctx: RequestContext) -> Sequence[bytes]:
        cpath, plain = self._live_path(inode)
        return self.vault.list_xattrs(Path(cpath), plain, self._same(inode))

    @request
    def removexattr(self, inode: int, name: bytes, ctx: RequestContext) -> None:
        self._check_writable()
        cpath, plain = self._live_path(inode)
        self.vault.remove_xattr(Path(cpath), name, plain, self._same(inode))

    # -- teardown (FuseFrontend.close) ----------------------------------------------------

    def _close_file(self, handle: _OpenFile) -> None:
        handle.file.close()
