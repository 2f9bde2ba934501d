"""Objects re-created on a reused backing inode number: vaultsh against gocryptfs and a plain directory."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fuse_harness import mounted_ops, require_fuse
from gocryptfs_harness import gocryptfs_init, gocryptfs_mount, import_or_skip, require_gocryptfs, skip_or_fail
from posix_table import DirectApi
from vault_factory import new_vault

from vaultsh.vault.vault import Vault

import_or_skip("pyfuse3")
trio = import_or_skip("trio")
from pyfuse3 import ROOT_INODE  # noqa: E402

from vaultsh.fs.forward import FORWARD_MOUNT_OPTIONS, ForwardOperations  # noqa: E402

PASSWORD = "reuse pässword"
ROUNDS = 400
KINDS = [("dir", "dir"), ("dir", "file"), ("file", "dir"), ("file", "file")]
OLD_DATA = b"old content\n" * 3
NEW_DATA = b"new\n"

# A second process holding the old object: a directory as its working directory and an open
# descriptor, a file by an O_PATH descriptor (which reaches no FUSE open, so the backing
# inode is free for reuse). On request it tries the old handles and reports each outcome
# as "ok", a value, or the errno name.
HOLDER = r"""
import errno, json, os, sys

def outcome(fn):
    try:
        value = fn()
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    return "ok" if value is None else value

def read_reopened(fd):
    new = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY)
    try:
        return os.read(new, 4096).decode()
    finally:
        os.close(new)

def create_in(name, dir_fd=None):
    os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644, dir_fd=dir_fd))

fd = -1
kind = ""
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["op"] == "hold":
        kind = cmd["kind"]
        if kind == "dir":
            fd = os.open(cmd["path"], os.O_RDONLY | os.O_DIRECTORY)
            os.chdir(cmd["path"])
        else:
            fd = os.open(cmd["path"], os.O_PATH)
        reply = {}
    elif cmd["op"] == "probe":
        if kind == "dir":
            reply = {
                "old fstat": outcome(lambda: f"nlink={os.fstat(fd).st_nlink}"),
                "old cwd stat": outcome(lambda: f"dir={os.stat('.').st_mode >> 12 == 4}"),
                "old cwd lookup": outcome(lambda: os.stat(cmd["inner"])),
                "old cwd list": outcome(lambda: sorted(os.listdir("."))),
                "old fd list": outcome(lambda: sorted(os.listdir(fd))),
                "old cwd create": outcome(lambda: create_in("made")),
                "old fd create": outcome(lambda: create_in("made", fd)),
                "old fd mkdir": outcome(lambda: os.mkdir("sub", dir_fd=fd)),
                "old fd fsync": outcome(lambda: os.fsync(fd)),
            }
        else:
            reply = {
                "old fstat": outcome(lambda: f"nlink={os.fstat(fd).st_nlink} size={os.fstat(fd).st_size}"),
                "old reopen": outcome(lambda: read_reopened(fd)),
            }
    else:
        os.chdir("/")
        os.close(fd)
        reply = {}
    print(json.dumps(reply), flush=True)
"""


class Holder:
    """The holding process, driven one JSON line at a time."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def ask(self, **cmd: str) -> dict[str, object]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the holding process died"
        reply: dict[str, object] = json.loads(line)
        return reply

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@dataclass
class Target:
    """A plain view to run rounds in, and the directory whose entries back its objects."""

    label: str
    root: Path
    backing: Path

    def backing_ino(self, name: str) -> int:
        """Inode number of the backing object of `name` (the only entry of the root)."""
        if self.backing == self.root:  # a plain directory backs itself
            return os.lstat(self.backing / name).st_ino
        entries = [e for e in os.scandir(self.backing) if not e.name.startswith("gocryptfs.")]
        assert len(entries) == 1, [e.name for e in entries]
        return entries[0].inode()


def outcome(fn: Callable[[], object]) -> object:
    try:
        value = fn()
    except OSError as e:
        return errno.errorcode.get(e.errno or 0, str(e.errno))
    return "ok" if value is None else value


def make(path: Path, kind: str, data: bytes) -> None:
    if kind == "dir":
        path.mkdir()
    else:
        path.write_bytes(data)


def remove(path: Path, kind: str) -> None:
    if kind == "dir":
        path.rmdir()
    else:
        path.unlink()


def use_new_dir(path: Path) -> object:
    """Create, list and read back a file inside the new directory (left for the probe)."""
    (path / "inner").write_bytes(b"inner")
    return (sorted(os.listdir(path)), (path / "inner").read_bytes().decode())


def use_new_file(path: Path) -> object:
    first = path.read_bytes()
    with open(path, "ab") as f:
        f.write(NEW_DATA)
    return (first.decode(), path.read_bytes().decode())


def one_round(target: Target, holder: Holder, old: str, new: str) -> tuple[dict[str, object], bool]:
    """Replace an object held by another process; returns the outcome of every step and
    whether the new object got the old one's backing inode number."""
    path = target.root / "x"
    make(path, old, OLD_DATA)
    if old == "file":
        assert path.read_bytes() == OLD_DATA  # its pages are now in the kernel's cache
    before = target.backing_ino("x")
    holder.ask(op="hold", path=str(path), kind=old)
    steps: dict[str, object] = {"remove old": outcome(lambda: remove(path, old))}
    steps["make new"] = outcome(lambda: make(path, new, NEW_DATA))
    reused = target.backing_ino("x") == before
    steps["new type"] = outcome(lambda: "dir" if path.is_dir() else "file")
    steps["use new"] = outcome(lambda: use_new_dir(path) if new == "dir" else use_new_file(path))
    steps.update(holder.ask(op="probe", inner="inner"))
    holder.ask(op="release")
    if new == "dir":
        steps["clean inner"] = outcome(lambda: (path / "inner").unlink())
    steps["remove new"] = outcome(lambda: remove(path, new))
    return steps, reused


def run_rounds(target: Target, old: str, new: str, rounds: int) -> tuple[list[dict[str, object]], int]:
    holder = Holder()
    try:
        results = []
        reused = 0
        for _ in range(rounds):
            steps, hit = one_round(target, holder, old, new)
            results.append(steps)
            reused += hit
    finally:
        holder.close()
    return results, reused


# -- the three file systems, all backed by one ext4 (which hands a freed inode number to the
# next object created, unlike tmpfs) --------------------------------------------------------


@pytest.fixture(scope="module")
def ext4(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("ext4")
    image, mnt = base / "image", base / "mnt"
    mnt.mkdir()
    with open(image, "wb") as f:
        f.truncate(64 << 20)
    made = subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], capture_output=True, text=True)
    if made.returncode != 0:
        skip_or_fail(f"mkfs.ext4 failed: {made.stderr.strip()}")
    mounted = subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], capture_output=True, text=True)
    if mounted.returncode != 0:
        skip_or_fail(f"cannot mount an ext4 image (not root?): {mounted.stderr.strip()}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], check=False).returncode != 0:
            subprocess.run(["umount", "--lazy", str(mnt)], check=False)  # detached all the same


@pytest.fixture(scope="module")
def targets(ext4: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Target]]:
    require_fuse()
    require_gocryptfs()
    mounts = tmp_path_factory.mktemp("mounts")
    plain = ext4 / "plain"
    plain.mkdir()
    gc_cipher, vs_cipher = ext4 / "gocryptfs", ext4 / "vaultsh"
    gocryptfs_init(gc_cipher, PASSWORD)
    new_vault(vs_cipher, PASSWORD).close()
    with contextlib.ExitStack() as stack:
        gc_mnt = stack.enter_context(gocryptfs_mount(gc_cipher, mounts / "gocryptfs", PASSWORD))
        vs_mnt = stack.enter_context(
            mounted_ops(
                lambda: ForwardOperations(Vault.open(vs_cipher, password=PASSWORD.encode())),
                mounts / "vaultsh",
                set(FORWARD_MOUNT_OPTIONS),
            )
        )
        yield [
            Target("plain", plain, plain),
            Target("gocryptfs", gc_mnt, gc_cipher),
            Target("vaultsh", vs_mnt, vs_cipher),
        ]


# Where vaultsh and gocryptfs cannot do what a local file system does, and why. An O_PATH
# descriptor keeps a local file's inode alive, but the backing file of a removed file is gone
# for good once no one has it open: reopening it through /proc is ENOENT.
GONE_WITH_THE_BACKING = {"old reopen": "ENOENT"}


def differences(
    got: list[dict[str, object]], want: list[dict[str, object]], allowed: Callable[[str, object], bool]
) -> list[str]:
    """Steps whose outcome differs from the reference and is not `allowed(step, outcome)`."""
    out = []
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g.keys() == w.keys()
        out += [f"round {i}, {k}: {g[k]!r}, not {w[k]!r}" for k in g if g[k] != w[k] and not allowed(k, g[k])]
    return out


@pytest.mark.parametrize(("old", "new"), KINDS, ids=[f"{o}-to-{n}" for o, n in KINDS])
def test_replaced_object_on_reused_inode(targets: list[Target], old: str, new: str) -> None:
    """Another process holds the old object while it is replaced, in 400 rounds: the new
    object works, and the old handle acts as on a local file system. gocryptfs, run the same
    way, shows what a FUSE file system over a cipher directory can do."""
    outcomes = {}
    for target in targets:
        results, reused = run_rounds(target, old, new, ROUNDS)
        outcomes[target.label] = results
        print(f"{target.label} {old}->{new}: backing inode number reused in {reused} of {ROUNDS} rounds")
        if target.label == "vaultsh":
            # ext4 gives the next object the lowest free number: the old one's
            assert reused >= ROUNDS // 2
    plain = outcomes["plain"]
    # The reference: the new object works on gocryptfs as on the plain directory, and an old
    # handle there answers like the local one or says its object is gone, never EIO.
    gocryptfs = differences(
        outcomes["gocryptfs"], plain, lambda step, got: step.startswith("old ") and got == "ENOENT"
    )
    assert not gocryptfs, f"{len(gocryptfs)} differences, first: {gocryptfs[:5]}"
    vaultsh = differences(
        outcomes["vaultsh"], plain, lambda step, got: GONE_WITH_THE_BACKING.get(step, "-") == got
    )
    assert not vaultsh, f"{len(vaultsh)} differences, first: {vaultsh[:5]}"


# -- the node table, by direct calls on a vault on ext4 ----------------------------------------


@dataclass
class Direct:
    api: DirectApi
    cipher: Path

    def vault(self) -> Vault:
        """A Vault of its own: no cache shared with the one being served."""
        return Vault.open(self.cipher, password=PASSWORD.encode())

    def backing_ino(self, path: str) -> int:
        with self.vault() as vault:
            return os.lstat(vault.cipher_path(path)).st_ino

    def forget_all(self, ino: int) -> None:
        trio.run(self.api.ops.forget, [(ino, self.api.ops._nodes[ino].lookups)])


@pytest.fixture
def direct(ext4: Path) -> Iterator[Direct]:
    cipher = Path(tempfile.mkdtemp(dir=ext4, prefix="direct-"))
    new_vault(cipher, PASSWORD).close()
    ops = ForwardOperations(Vault.open(cipher, password=PASSWORD.encode()))
    try:
        yield Direct(DirectApi(ops), cipher)
    finally:
        ops.close()
        ops.vault.close()  # its directory descriptors would keep the ext4 busy


def test_new_directory_on_a_held_number_gets_a_node_of_its_own(direct: Direct) -> None:
    api = direct.api
    api.mkdir("d")
    backing = direct.backing_ino("d")
    old = api.ino("d")
    assert old == backing  # an object's own number while it is free
    api.rmdir("d")
    api.mkdir("d")
    assert direct.backing_ino("d") == backing  # ext4 handed the number on
    new = api.ino("d")
    assert new != old
    # The old node is a removed directory, as a local one looks through an old handle.
    attr = api.call("getattr", old, api.ctx)
    assert stat.S_ISDIR(attr.st_mode) and attr.st_nlink == 0
    with pytest.raises(FileNotFoundError):
        api.call("create", old, b"f", stat.S_IFREG | 0o644, os.O_WRONLY | os.O_CREAT, api.ctx)
    assert api.listdir("") == ["d"]
    # The new one works, under its own diriv: a Vault without caches reads what it got.
    api.write("d/f", b"in the new directory")
    with direct.vault() as fresh:
        assert fresh.read_file("d/f") == b"in the new directory"
    # Forgotten, the old node is gone; once the new one is forgotten as well, a lookup
    # gives the object its own number again.
    direct.forget_all(old)
    with pytest.raises(OSError) as e:
        api.call("getattr", old, api.ctx)
    assert e.value.errno == errno.ESTALE
    direct.forget_all(new)
    assert api.ino("d") == backing


def test_directory_replaced_by_a_rename_leaves_its_node_removed(direct: Direct) -> None:
    api = direct.api
    api.mkdir("d")
    api.mkdir("src")
    held, moved = api.ino("d"), api.ino("src")
    api.rename("src", "d")
    assert api.ino("d") == moved
    assert api.call("getattr", held, api.ctx).st_nlink == 0


def test_object_of_another_type_on_a_known_number_gets_a_new_node(direct: Direct) -> None:
    """Replaced behind the mount's back: the number is the same, the type tells them apart."""
    api = direct.api
    api.write("x", b"data")
    old = api.ino("x")
    with direct.vault() as behind:
        behind.unlink("x")
        behind.mkdir("x")
    assert direct.backing_ino("x") == old
    new = api.ino("x")
    assert new != old
    assert stat.S_ISDIR(api.call("getattr", new, api.ctx).st_mode)
    with pytest.raises(FileNotFoundError):
        api.call("getattr", old, api.ctx)


def test_hard_link_keeps_its_node_when_the_known_name_goes(direct: Direct) -> None:
    api = direct.api
    api.write("a", b"shared")
    with direct.vault() as behind:
        behind.link("a", "b")  # a name the table has not seen
    ino = api.ino("a")
    api.unlink("a")
    assert api.ino("b") == ino  # one file, one node, one st_ino
    attr = api.call("getattr", ino, api.ctx)
    assert (attr.st_nlink, attr.st_size) == (1, 6)
    assert api.read("b") == b"shared"


def test_listing_counts_a_lookup_only_for_entries_sent(direct: Direct) -> None:
    with direct.vault() as behind:
        for name in ("a", "b", "c"):
            behind.write_file(name, name.encode())
    api = direct.api
    # One entry per reply: every call fills the buffer and has one entry it cannot send.
    assert sorted(name for name, _ in api.readdir("", page=1)) == ["a", "b", "c"]
    nodes = api.ops._nodes
    assert len(nodes) == 4  # the root and the three
    assert [n.lookups for i, n in nodes.items() if i != ROOT_INODE] == [1, 1, 1]


def test_directory_replaced_behind_the_mount_gets_names_under_its_own_diriv(direct: Direct) -> None:
    """Someone else (a sync client, another mount) replaces a directory: once the served
    Vault reopens it, names in it are encrypted with the new directory's IV, not the old one."""
    api = direct.api
    api.mkdir("d")
    api.write("d/a", b"1")
    with direct.vault() as behind:
        behind.unlink("d/a")
        behind.rmdir("d")
        behind.mkdir("d")
    for i in range(70):  # more directories than the descriptor cache holds: d's goes
        api.mkdir(f"e{i}")
    api.write("d/b", b"2")
    with direct.vault() as fresh:
        assert [(e.name, e.error) for e in fresh.listdir("d", include_bad=True)] == [("b", None)]
        assert fresh.read_file("d/b") == b"2"
