"""Plain trees deeper than PATH_MAX as cipher paths: through mounts, gocryptfs, and the offline core."""

from __future__ import annotations

import errno
import os
import stat as stat_mod
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fuse_harness import mount_vault, mount_view
from gocryptfs_harness import (
    gocryptfs_init,
    gocryptfs_mount,
    run_vaultsh,
    write_passfile,
)
from vault_factory import new_vault

from vaultsh.vault.errors import ExitCode, short_path
from vaultsh.vault.reverse import ReverseView
from vaultsh.vault.vault import Vault

PASSWORD = "deep pässword"
PATH_MAX = 4096
NAME_MAX = 255

# 33 nested names of 127 bytes: 4,224 bytes of plain path, about 5,700 as cipher path.
DEEP_NAMES = [f"{i:02d}-" + "ü" * 20 + "d" * (127 - 3 - 40) for i in range(33)]
assert all(len(n.encode()) == 127 for n in DEEP_NAMES)
DEEP_REL = "/".join(DEEP_NAMES)
LEAF_DATA = b"at the bottom of a deep tree\n" * 300
MID_DATA = b"half way down\n"

Manifest = dict[str, tuple[str, bytes]]
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def build_deep_tree(root: Path) -> None:
    """`mkdir -p` of the deep chain, then a file half way, and a file and a symlink at the bottom.

    Every step is relative to a directory fd: the full plain path is longer than PATH_MAX.
    """
    subprocess.run(["mkdir", "-p", DEEP_REL], cwd=root, check=True, capture_output=True)
    fd = os.open(root, _DIR)
    try:
        for depth, name in enumerate(DEEP_NAMES):
            nxt = os.open(name, _DIR, dir_fd=fd)
            os.close(fd)
            fd = nxt
            if depth == 16:
                _write_at(fd, "middle.txt", MID_DATA)
        _write_at(fd, "leaf.txt", LEAF_DATA)
        os.symlink("leaf.txt", "leaf-link", dir_fd=fd)
    finally:
        os.close(fd)


def _write_at(dir_fd: int, name: str, data: bytes) -> None:
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640, dir_fd=dir_fd)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _read_at(dir_fd: int, name: str) -> bytes:
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dir_fd)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_tree(root: Path) -> Manifest:
    """Relative path -> (kind, content or link target) of a tree, read relative to dir fds."""
    out: Manifest = {}

    def walk(dir_fd: int, prefix: str) -> None:
        for name in sorted(os.listdir(dir_fd)):
            rel = f"{prefix}{name}"
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if stat_mod.S_ISDIR(st.st_mode):
                out[rel] = ("dir", b"")
                sub = os.open(name, _DIR, dir_fd=dir_fd)
                try:
                    walk(sub, rel + "/")
                finally:
                    os.close(sub)
            elif stat_mod.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.fsencode(os.readlink(name, dir_fd=dir_fd)))
            else:
                out[rel] = ("file", _read_at(dir_fd, name))

    top = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        walk(top, "")
    finally:
        os.close(top)
    return out


def expected_tree() -> Manifest:
    out: Manifest = {}
    for i in range(len(DEEP_NAMES)):
        out["/".join(DEEP_NAMES[: i + 1])] = ("dir", b"")
    out["/".join(DEEP_NAMES[:17]) + "/middle.txt"] = ("file", MID_DATA)
    out[DEEP_REL + "/leaf.txt"] = ("file", LEAF_DATA)
    out[DEEP_REL + "/leaf-link"] = ("link", b"leaf.txt")
    return out


def cipher_depth_bytes(cipherdir: Path) -> int:
    """Length of the longest cipher path below `cipherdir` (relative), found via dir fds."""
    longest = 0

    def walk(dir_fd: int, length: int) -> None:
        nonlocal longest
        for e in os.scandir(dir_fd):
            here = length + 1 + len(e.name)
            longest = max(longest, here)
            if e.is_dir(follow_symlinks=False):
                sub = os.open(e.name, _DIR, dir_fd=dir_fd)
                try:
                    walk(sub, here)
                finally:
                    os.close(sub)

    top = os.open(cipherdir, _DIR)
    try:
        walk(top, 0)
    finally:
        os.close(top)
    return longest


def vaultsh_ok(*args: object) -> str:
    return run_vaultsh(*(os.fspath(a) if isinstance(a, Path) else str(a) for a in args)).check().out


def check_offline(cipher: Path, pw: Path, tmp: Path) -> None:
    """Export, `ls -R`, and the Vault API (what the TUI's panes list) on a deep tree."""
    want = expected_tree()
    # The Vault API, as the TUI uses it: list each level and read the files.
    with Vault.open(cipher, password=PASSWORD.encode()) as vault:
        seen = {d + ("/" if d else "") + e.name for d, entries in vault.walk("") for e in entries}
        assert seen == set(want)
        assert vault.read_file(DEEP_REL + "/leaf.txt") == LEAF_DATA
        assert vault.readlink(DEEP_REL + "/leaf-link") == "leaf.txt"
        assert vault.stat(DEEP_REL).kind == "dir"
    out = tmp / "export"
    vaultsh_ok("export", "--passfile", pw, cipher, "/", out)
    assert read_tree(out) == want
    listing = vaultsh_ok("ls", "-R", "--passfile", pw, cipher)
    assert "leaf.txt" in listing and "middle.txt" in listing
    assert DEEP_REL in listing  # the deepest directory's heading
    # The shell: into the deepest directory, read there and make a directory there.
    script = f"cd {DEEP_REL}\npwd\nls\ncat leaf.txt\nmkdir from-shell\nexit\n"
    shown = run_vaultsh("shell", "--passfile", pw, cipher, input=script.encode()).check().out
    assert f"/{DEEP_REL}\n" in shown and "leaf-link" in shown and LEAF_DATA.decode() in shown
    with Vault.open(cipher, password=PASSWORD.encode()) as vault:
        assert vault.stat(DEEP_REL + "/from-shell").kind == "dir"
        vault.rmdir(DEEP_REL + "/from-shell")
    # Import the exported tree back under a new name, then move and remove it.
    vaultsh_ok("import", "--passfile", pw, out / DEEP_NAMES[0], cipher, "copy")
    vaultsh_ok("mv", "--passfile", pw, cipher, "copy", "moved")
    with Vault.open(cipher, password=PASSWORD.encode()) as vault:
        moved = "moved/" + "/".join(DEEP_NAMES[1:])
        assert vault.read_file(moved + "/leaf.txt") == LEAF_DATA
    vaultsh_ok("rm", "-r", "--passfile", pw, cipher, "moved")
    with Vault.open(cipher, password=PASSWORD.encode()) as vault:
        assert [e.name for e in vault.listdir("")] == [DEEP_NAMES[0]]


@pytest.fixture
def pw(tmp_path: Path) -> Path:
    return write_passfile(tmp_path / "pw.txt", PASSWORD)


def test_deep_tree_made_through_vaultsh_mount(tmp_path: Path, pw: Path, need_gocryptfs: None) -> None:
    cipher = tmp_path / "cipher"
    new_vault(cipher, PASSWORD).close()
    with mount_vault(cipher, tmp_path / "mnt", PASSWORD) as mnt:
        build_deep_tree(mnt)
        assert read_tree(mnt) == expected_tree()
    assert cipher_depth_bytes(cipher) > PATH_MAX  # the point of the exercise
    # Real gocryptfs reads the tree back. (Its -fsck cannot check such a tree: it walks by
    # full paths and reports ENAMETOOLONG as a corrupt file, even for trees it made itself.)
    with gocryptfs_mount(cipher, tmp_path / "gmnt", PASSWORD) as gmnt:
        assert read_tree(gmnt) == expected_tree()
    check_offline(cipher, pw, tmp_path)


def test_deep_tree_made_by_gocryptfs(tmp_path: Path, pw: Path, need_gocryptfs: None) -> None:
    cipher = tmp_path / "cipher"
    cipher.mkdir()
    gocryptfs_init(cipher, PASSWORD).check()
    with gocryptfs_mount(cipher, tmp_path / "gmnt", PASSWORD) as gmnt:
        build_deep_tree(gmnt)
    assert cipher_depth_bytes(cipher) > PATH_MAX
    with mount_vault(cipher, tmp_path / "mnt", PASSWORD) as mnt:
        assert read_tree(mnt) == expected_tree()
    check_offline(cipher, pw, tmp_path)
    # What the offline commands left is still gocryptfs's: it mounts and reads the same tree.
    with gocryptfs_mount(cipher, tmp_path / "gmnt2", PASSWORD) as gmnt:
        assert read_tree(gmnt) == expected_tree()


def test_deep_plain_tree_in_reverse_mode(tmp_path: Path, need_gocryptfs: None) -> None:
    """The encrypted view of a deep plain tree is deeper than PATH_MAX; served by vaultsh and
    read by gocryptfs (forward, over the view), and copied offline, it is the same tree."""
    plain = tmp_path / "plain"
    plain.mkdir()
    build_deep_tree(plain)
    new_vault.reverse_folder(plain, PASSWORD)
    with mount_view(plain, tmp_path / "view", PASSWORD) as view:
        assert cipher_depth_bytes(view) > PATH_MAX
        with gocryptfs_mount(view, tmp_path / "fwd", PASSWORD) as fwd:
            assert read_tree(fwd) == expected_tree()
    copy = tmp_path / "copy"
    ReverseView.open(plain, password=PASSWORD.encode()).materialize(copy)
    with Vault.open(copy, password=PASSWORD.encode()) as vault:
        seen = {d + ("/" if d else "") + e.name for d, entries in vault.walk("") for e in entries}
        assert seen == set(expected_tree())
        assert vault.read_file(DEEP_REL + "/leaf.txt") == LEAF_DATA


# -- ENAMETOOLONG: its own exit code, and a long path printed once ------------------------------


def test_short_path_keeps_both_ends() -> None:
    assert short_path("a/b") == "a/b"
    long = "/start/" + "m" * 5000 + "/end.txt"
    short = short_path(long)
    assert short.startswith("/start/") and short.endswith("/end.txt") and "..." in short
    assert len(short) <= 400


def test_name_too_long_has_its_own_exit_code(tmp_path: Path, pw: Path) -> None:
    cipher = tmp_path / "cipher"
    new_vault(cipher, PASSWORD).close()
    res = run_vaultsh("mkdir", "--passfile", pw, cipher, "n" * 256)
    assert res.returncode == ExitCode.NAME_TOO_LONG, res.describe()
    assert res.err.count("\n") == 1 and "too long" in res.err


def test_export_to_a_too_long_destination_names_it_once(tmp_path: Path, pw: Path) -> None:
    cipher = tmp_path / "cipher"
    with new_vault(cipher, PASSWORD) as vault:
        vault.mkdir("d")
        vault.write_file("d/f", b"x")
    dest = tmp_path / ("z" * 300)
    res = run_vaultsh("export", "--passfile", pw, cipher, "d", dest)
    assert res.returncode == ExitCode.NAME_TOO_LONG, res.describe()
    assert res.err.count("z" * 300) == 1 and res.err.count("\n") == 1
    assert not any(p.name.startswith("z") for p in tmp_path.iterdir())


# -- the PATH_MAX and NAME_MAX cases of pjdfstest, through a mount ------------------------------


@pytest.fixture(scope="module")
def mounted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("pathmax")
    cipher = base / "cipher"
    new_vault(cipher, PASSWORD).close()
    with mount_vault(cipher, base / "mnt", PASSWORD) as mnt:
        yield mnt


class Here:
    """A fresh directory in the mount, and calls relative to it (as pjdfstest works in its cwd)."""

    def __init__(self, root: Path, name: str) -> None:
        (root / name).mkdir()
        self.fd = os.open(root / name, os.O_RDONLY | os.O_DIRECTORY)

    def close(self) -> None:
        os.close(self.fd)

    def deep_dirs(self, total: int) -> str:
        """Make the directories of a relative path of exactly `total` bytes; return the path
        (its last component is not made). Components are NAME_MAX/2 long, like pjdfstest's:
        long enough to make the cipher path a third longer, short enough not to be hashed."""
        comp = NAME_MAX // 2
        parts: list[str] = []
        while total > comp + 1:
            parts.append(f"{len(parts):03d}" + "p" * (comp - 3))
            total -= comp + 1
        parts.append("q" * total)
        fd = os.dup(self.fd)
        try:
            for p in parts[:-1]:
                os.mkdir(p, dir_fd=fd)
                nxt = os.open(p, _DIR, dir_fd=fd)
                os.close(fd)
                fd = nxt
        finally:
            os.close(fd)
        return "/".join(parts)


def _create(path: str, dir_fd: int) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=dir_fd))


def _ops(h: Here, existing: str) -> dict[str, object]:
    fd = h.fd
    return {
        "mkdir": lambda p: os.mkdir(p, dir_fd=fd),
        "create": lambda p: _create(p, fd),
        "symlink": lambda p: os.symlink("target", p, dir_fd=fd),
        "link": lambda p: os.link(existing, p, src_dir_fd=fd, dst_dir_fd=fd),
        "rename": lambda p: os.rename(existing, p, src_dir_fd=fd, dst_dir_fd=fd),
    }


CREATING = ("mkdir", "create", "symlink", "link", "rename")


def _undo(kind: str, h: Here, path: str, existing: str) -> None:
    """Check the object made by `kind` works, then remove it (by the same long path)."""
    fd = h.fd
    if kind == "mkdir":
        os.chmod(path, 0o700, dir_fd=fd)
        assert os.stat(path, dir_fd=fd).st_mode & 0o777 == 0o700
        os.rmdir(path, dir_fd=fd)
    elif kind == "symlink":
        assert os.readlink(path, dir_fd=fd) == "target"
        os.unlink(path, dir_fd=fd)
    elif kind == "rename":
        os.rename(path, existing, src_dir_fd=fd, dst_dir_fd=fd)
    else:
        os.chmod(path, 0o600, dir_fd=fd)
        f = os.open(path, os.O_RDWR, dir_fd=fd)
        try:
            os.truncate(f, 12345)
            assert os.fstat(f).st_size == 12345
        finally:
            os.close(f)
        os.unlink(path, dir_fd=fd)


@pytest.mark.parametrize("kind", CREATING)
def test_name_max(mounted: Path, kind: str) -> None:
    h = Here(mounted, f"namemax-{kind}")
    try:
        _create("existing", h.fd)
        ops = _ops(h, "existing")
        ok, too_long = "n" * NAME_MAX, "n" * (NAME_MAX + 1)
        ops[kind](ok)  # type: ignore[operator]
        _undo(kind, h, ok, "existing")
        with pytest.raises(OSError) as e:
            ops[kind](too_long)  # type: ignore[operator]
        assert e.value.errno == errno.ENAMETOOLONG
        for call in (
            lambda: os.stat(too_long, dir_fd=h.fd),
            lambda: os.unlink(too_long, dir_fd=h.fd),
            lambda: os.rmdir(too_long, dir_fd=h.fd),
            lambda: os.chmod(too_long, 0o600, dir_fd=h.fd),
            lambda: os.truncate(os.path.join(f"/proc/self/fd/{h.fd}", too_long), 0),
        ):
            with pytest.raises(OSError) as e:
                call()
            assert e.value.errno == errno.ENAMETOOLONG
    finally:
        h.close()


@pytest.mark.parametrize("kind", CREATING)
def test_path_max(mounted: Path, kind: str) -> None:
    h = Here(mounted, f"pathmax-{kind}")
    try:
        _create("existing", h.fd)
        ops = _ops(h, "existing")
        ok = h.deep_dirs(PATH_MAX - 1)
        assert len(ok.encode()) == PATH_MAX - 1
        ops[kind](ok)  # type: ignore[operator]
        _undo(kind, h, ok, "existing")
        too_long = ok + "x"
        with pytest.raises(OSError) as e:
            ops[kind](too_long)  # type: ignore[operator]
        assert e.value.errno == errno.ENAMETOOLONG
    finally:
        h.close()


# -- symlink targets: pjdfstest symlink/03 and the format's own limit ---------------------------

# A target is stored as the cipher symlink's own target: base64url (no padding) of a 16-byte
# nonce, the encrypted target and a 16-byte tag (§7.1). Linux allows a symlink 4,095 bytes, so
# the longest storable plain target is 3,039 bytes: ceil((3039 + 32) * 4 / 3) = 4,095.
LONGEST_TARGET = 3039


def _target(length: int) -> str:
    """A path-like target of exactly `length` bytes (components of 100 bytes)."""
    parts, left = [], length
    while left > 101:
        parts.append("t" * 100)
        left -= 101
    parts.append("u" * left)
    target = "/".join(parts)
    assert len(target.encode()) == length
    return target


def test_symlink_targets_up_to_the_format_limit(tmp_path: Path, need_gocryptfs: None) -> None:
    """The longest target the format can hold works through the mount and in gocryptfs; one
    byte more, and pjdfstest symlink/03's PATH_MAX-1 target, are ENAMETOOLONG with nothing
    left behind (gocryptfs refuses both the same way)."""
    cipher = tmp_path / "cipher"
    new_vault(cipher, PASSWORD).close()
    longest = _target(LONGEST_TARGET)
    with mount_vault(cipher, tmp_path / "mnt", PASSWORD) as mnt:
        os.symlink(longest, mnt / "longest")
        assert os.readlink(mnt / "longest") == longest
        assert os.lstat(mnt / "longest").st_size == LONGEST_TARGET
        for length in (LONGEST_TARGET + 1, PATH_MAX - 1):
            with pytest.raises(OSError) as e:
                os.symlink(_target(length), mnt / f"len-{length}")
            assert e.value.errno == errno.ENAMETOOLONG
        assert os.listdir(mnt) == ["longest"]
    # one cipher entry besides the config and diriv: the refused links left nothing
    assert len(os.listdir(cipher)) == 3
    with gocryptfs_mount(cipher, tmp_path / "gmnt", PASSWORD) as gmnt:
        assert os.readlink(gmnt / "longest") == longest
        with pytest.raises(OSError) as e:
            os.symlink(_target(LONGEST_TARGET + 1), gmnt / "too-long")
        assert e.value.errno == errno.ENAMETOOLONG
