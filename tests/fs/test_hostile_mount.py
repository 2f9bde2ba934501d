"""Attacks on a real mount: a hostile cipher dir reaches nothing outside, hangs nothing, leaks nothing."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import pwd
import resource
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fuse_harness import require_fuse
from gocryptfs_harness import skip_or_fail
from user_harness import User, as_user, fork_as, wait_ok
from vault_factory import new_vault

from vaultsh.fs.frontend import LOG_NAMES_ENV
from vaultsh.mount_protocol import MountFiles
from vaultsh.service import mounts
from vaultsh.service.mounts import MountRequest
from vaultsh.vault.names import DIRIV_NAME
from vaultsh.vault.vault import Vault

PASSWORD = b"hostile test password"
ATTACKER = "vaultsh-attacker"
# Rounds of the race between an attacker swapping cipher names and requests through the
# mount: counted, not timed, so the test does the same work on any machine.
RACE_ROUNDS = 150


# -- an unprivileged second user --------------------------------------------------------------


@pytest.fixture(scope="module")
def attacker() -> Iterator[User]:
    """A local user without privileges, made for these tests and removed after them."""
    if os.geteuid() != 0:
        skip_or_fail("the escalation tests mount as root; run them as root")
    made = False
    try:
        pw = pwd.getpwnam(ATTACKER)
    except KeyError:
        if shutil.which("useradd") is None:
            skip_or_fail("useradd is missing: no second user can be made to attack the mount")
        cmd = ["useradd", "--system", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin"]
        result = subprocess.run([*cmd, ATTACKER], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            skip_or_fail(f"useradd {ATTACKER} failed: {result.stderr.strip()}")
        made = True
        pw = pwd.getpwnam(ATTACKER)
    try:
        yield User(pw.pw_uid, pw.pw_gid)
    finally:
        if made:
            subprocess.run(["userdel", ATTACKER], capture_output=True, check=False)


def attempt(fn: Callable[..., object], *args: object, **kw: object) -> None:
    """One step of an attack: refusals (EPERM, EIO, ESTALE, ...) are the expected outcome."""
    with contextlib.suppress(OSError):
        fn(*args, **kw)


# -- the arena: a vault the attacker may write, beside things of root's ------------------------


@dataclass
class Arena:
    base: Path
    cipher: Path
    mnt: Path
    secret_dir: Path  # root's, 0700
    secret_file: Path  # root's, 0600
    shared_file: Path  # root's, 0666: others may write it, so they may hard-link it

    def outside(self) -> dict[str, object]:
        """Everything about the objects outside the vault an attack could change.

        Others may write the shared file (and its user xattrs), so for it only what they
        may not change counts: its mode and owner."""
        out: dict[str, object] = {}
        for path in (self.secret_dir, self.secret_file):
            st = os.lstat(path)
            out[path.name] = (
                st.st_mode,
                st.st_uid,
                st.st_gid,
                st.st_size,
                st.st_mtime_ns,
                os.listxattr(path, follow_symlinks=False),
                sorted(os.listdir(path)) if stat.S_ISDIR(st.st_mode) else path.read_bytes(),
            )
        st = os.lstat(self.shared_file)
        out[self.shared_file.name] = (st.st_mode, st.st_uid, st.st_gid)
        return out

    def cipher_name_of(self, make: Callable[[], object]) -> str:
        """The cipher name of what `make` creates in the vault root."""
        before = set(os.listdir(self.cipher))
        make()
        [name] = set(os.listdir(self.cipher)) - before
        return name


@pytest.fixture
def rundir(private_runtime_dir: Path) -> Path:
    """Where the mounts of a test keep their sockets, registry files and logs (see conftest)."""
    return private_runtime_dir / "vaultsh"


@contextlib.contextmanager
def mounted(cipher: Path, mnt: Path, key: bytes, *, allow_other: bool = False) -> Iterator[mounts.MountInfo]:
    """A real mount by the worker process, as `vaultsh mount` makes it."""
    require_fuse()
    info = mounts.mount(MountRequest(cipher, mnt, allow_other=allow_other), key)
    try:
        yield info
    finally:
        if mounts.mounted_at(mnt):
            try:
                mounts.unmount(mnt)
            finally:
                if mounts.mounted_at(mnt):
                    subprocess.run(["fusermount3", "-u", "-z", str(mnt)], check=False, capture_output=True)


@pytest.fixture
def arena(attacker: User, rundir: Path) -> Iterator[tuple[Arena, bytes]]:
    """A vault owned by the attacker, mounted by root for everyone (--allow-other), on the
    same filesystem as a root-only directory, a root-only file and a root file others may
    write (and so hard-link)."""
    base = Path(tempfile.mkdtemp(prefix="vsh-hostile-", dir="/tmp"))
    base.chmod(0o755)
    a = Arena(base, base / "cipher", base / "mnt", base / "secret_dir", base / "secret_file", base / "shared")
    key = new_vault(a.cipher, PASSWORD).keys.master_key
    for root, dirs, files in os.walk(a.cipher):
        for name in [".", *dirs, *files]:
            os.chown(os.path.join(root, name), attacker.uid, attacker.gid)
    a.mnt.mkdir()
    a.secret_dir.mkdir(mode=0o700)
    a.secret_file.write_bytes(b"root's secret")
    a.secret_file.chmod(0o600)
    a.shared_file.write_bytes(b"root's shared file")
    a.shared_file.chmod(0o666)
    try:
        with mounted(a.cipher, a.mnt, key, allow_other=True):
            yield a, key
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _assert_mount_still_serves(a: Arena) -> None:
    """The mount answers root after the attack, and its vault is still whole."""
    os.listdir(a.mnt)
    (a.mnt / "after-attack").write_bytes(b"ok")
    assert (a.mnt / "after-attack").read_bytes() == b"ok"


# -- the escalation ----------------------------------------------------------------------------


def test_a_name_swapped_for_a_hard_link_to_roots_file_is_not_touched(
    arena: tuple[Arena, bytes], attacker: User
) -> None:
    """The attacker's own file, already known to the kernel, is replaced in the cipher dir by
    a hard link to a root file: requests the kernel allows for the attacker's file must not
    reach root's (no chown to the attacker, no chmod, no new times, no truncation)."""
    a, _key = arena
    before = a.outside()

    def attack() -> None:
        f = a.mnt / "mine"
        name = a.cipher_name_of(lambda: f.write_bytes(b"my own"))
        os.stat(f)  # the kernel now holds the attacker's file under this name
        os.link(a.shared_file, a.cipher / "swap")
        os.rename(a.cipher / "swap", a.cipher / name)
        attempt(os.chown, f, attacker.uid, attacker.gid)
        attempt(os.chmod, f, 0o4777)
        attempt(os.utime, f, ns=(0, 0))
        attempt(os.truncate, f, 0)
        attempt(os.setxattr, f, "user.planted", b"x")
        with contextlib.suppress(OSError):
            fd = os.open(f, os.O_WRONLY | os.O_TRUNC)
            os.close(fd)

    as_user(attacker, attack)
    assert a.outside() == before
    _assert_mount_still_serves(a)


def test_planted_symlinks_lead_nowhere(arena: tuple[Arena, bytes], attacker: User) -> None:
    """A directory and a file the kernel knows are swapped for symlinks to root's directory
    and file: creating below the directory and changing the file act on neither."""
    a, _key = arena
    before = a.outside()

    def attack() -> None:
        d, f, loose = a.mnt / "d", a.mnt / "f", a.mnt / "loose"
        dname = a.cipher_name_of(lambda: d.mkdir())
        fname = a.cipher_name_of(lambda: f.write_bytes(b"mine"))
        loose.write_bytes(b"to move")
        os.stat(d)
        os.stat(f)
        os.rename(a.cipher / dname, a.cipher / "d.moved")
        os.symlink(a.secret_dir, a.cipher / dname)
        os.rename(a.cipher / fname, a.cipher / "f.moved")
        os.symlink(a.secret_file, a.cipher / fname)
        attempt((d / "new").write_bytes, b"planted")
        attempt(os.mkdir, d / "newdir")
        attempt(os.mkfifo, d / "fifo")
        attempt(os.symlink, "x", d / "link")
        attempt(os.rename, loose, d / "moved")
        attempt(os.link, loose, d / "linked")
        for fn, args in (
            (os.chown, (f, attacker.uid, attacker.gid)),
            (os.chmod, (f, 0o777)),
            (os.truncate, (f, 0)),
            (os.setxattr, (f, "user.planted", b"x")),
            (os.utime, (f,)),
        ):
            attempt(fn, *args)
        with contextlib.suppress(OSError):
            os.close(os.open(f, os.O_WRONLY | os.O_TRUNC))

    as_user(attacker, attack)
    assert a.outside() == before
    _assert_mount_still_serves(a)


def test_a_directory_swapped_for_another_users_gets_nothing(
    arena: tuple[Arena, bytes], attacker: User
) -> None:
    """Inside the vault too: root's private directory, moved by the attacker under the cipher
    name of the attacker's own directory (which the kernel knows), receives nothing from
    requests the kernel allowed in the attacker's directory."""
    a, _key = arena
    private = a.mnt / "roots-private"
    pname = a.cipher_name_of(lambda: private.mkdir(mode=0o700))
    (private / "keep").write_bytes(b"root's")
    private_ino = os.lstat(a.cipher / pname).st_ino
    before = sorted(os.listdir(a.cipher / pname))

    def attack() -> None:
        d, loose = a.mnt / "mine", a.mnt / "loose"
        loose.write_bytes(b"to move")
        dname = a.cipher_name_of(d.mkdir)
        os.stat(d)
        os.rename(a.cipher / dname, a.cipher / "mine.aside")
        os.rename(a.cipher / pname, a.cipher / dname)  # same parent: no right on the dir needed
        attempt((d / "planted").write_bytes, b"x")
        attempt(os.mkdir, d / "planted-dir")
        attempt(os.mkfifo, d / "planted-fifo")
        attempt(os.symlink, "t", d / "planted-link")
        attempt(os.link, loose, d / "planted-hardlink")
        attempt(os.rename, loose, d / "planted-moved")

    as_user(attacker, attack)
    [moved] = [p for p in a.cipher.iterdir() if p.lstat().st_ino == private_ino]
    assert sorted(os.listdir(moved)) == before
    _assert_mount_still_serves(a)


def test_racing_renames_against_requests_reach_nothing_outside(
    arena: tuple[Arena, bytes], attacker: User
) -> None:
    """One attacker process keeps swapping a directory and a file of the cipher dir for
    symlinks to root's directory and file and for a hard link to root's shared file; another
    sends creates, mkdirs, renames, chmods, chowns, utimes and truncates through the mount."""
    a, _key = arena
    before = a.outside()
    d, f = a.mnt / "d", a.mnt / "f"
    known = set(os.listdir(a.cipher))

    def make_own() -> None:
        d.mkdir()
        f.write_bytes(b"mine")

    as_user(attacker, make_own)
    [dname] = [n for n in set(os.listdir(a.cipher)) - known if (a.cipher / n).is_dir()]
    [fname] = [n for n in set(os.listdir(a.cipher)) - known if (a.cipher / n).is_file()]
    stop_r, stop_w = os.pipe()

    def swapper() -> None:
        os.close(stop_w)
        cd, cf = a.cipher / dname, a.cipher / fname
        while True:
            for cpath, aside, planted in (
                (cd, a.cipher / "d.real", lambda p: os.symlink(a.secret_dir, p)),
                (cf, a.cipher / "f.real", lambda p: os.symlink(a.secret_file, p)),
                (cf, a.cipher / "f.real", lambda p: os.link(a.shared_file, p)),
            ):
                attempt(os.rename, cpath, aside)
                attempt(planted, cpath)
                attempt(os.unlink, cpath)
                attempt(os.rename, aside, cpath)
            if _readable(stop_r):  # the requester is done (or gone)
                return

    def requester() -> None:
        os.close(stop_r)
        try:
            for i in range(RACE_ROUNDS):
                attempt((d / f"new{i}").write_bytes, b"x")
                attempt(os.mkdir, d / f"dir{i}")
                attempt(os.rename, d / f"new{i}", d / f"renamed{i}")
                attempt(os.chmod, f, 0o4777 if i % 2 else 0o600)
                attempt(os.chown, f, attacker.uid, attacker.gid)
                attempt(os.utime, f, ns=(i, i))
                attempt(os.truncate, f, i)
                attempt(os.setxattr, f, "user.race", b"%d" % i)
                attempt(os.chmod, d, 0o777)
        finally:
            os.write(stop_w, b"x")

    swap_pid = fork_as(attacker, swapper)
    try:
        as_user(attacker, requester)
    finally:
        os.close(stop_w)
        os.close(stop_r)
        wait_ok(swap_pid)
    assert a.outside() == before
    _assert_mount_still_serves(a)


def _readable(fd: int) -> bool:
    import select

    return bool(select.select([fd], [], [], 0)[0])


# -- planted metadata: EIO for that entry, never a hang ------------------------------------------


def _ls(path: Path) -> subprocess.CompletedProcess[str]:
    """`ls` in its own process with a deadline: a hanging mount fails the test, never blocks it."""
    return subprocess.run(["ls", "-la", str(path)], capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.usefixtures("rundir")
def test_symlinked_or_fifo_metadata_gives_eio_and_the_mount_keeps_serving(tmp_path: Path) -> None:
    """A diriv that is a symlink (to a valid IV) or a FIFO, and a long name's `.name` that is
    a FIFO: that directory or entry answers EIO (as gocryptfs does), everything else is
    served, and the mount still unmounts."""
    cipher, mnt = tmp_path / "cipher", tmp_path / "mnt"
    key = new_vault(cipher, PASSWORD).keys.master_key
    mnt.mkdir()
    v = Vault.open(cipher, password=PASSWORD)
    for d in ("linked", "fifo", "names", "good"):
        v.mkdir(d)
    v.write_file("names/" + "n" * 200, b"long")
    v.write_file("names/short", b"s")
    v.write_file("good/f", b"fine")
    linked, fifo, names = (v.cipher_path(d) for d in ("linked", "fifo", "names"))
    real_iv = tmp_path / "iv"
    real_iv.write_bytes((linked / DIRIV_NAME).read_bytes())
    (linked / DIRIV_NAME).unlink()
    (linked / DIRIV_NAME).symlink_to(real_iv)
    (fifo / DIRIV_NAME).unlink()
    os.mkfifo(fifo / DIRIV_NAME)
    [name_file] = [p for p in names.iterdir() if p.name.endswith(".name")]
    name_file.unlink()
    os.mkfifo(name_file)

    with mounted(cipher, mnt, key):
        for d in ("linked", "fifo"):
            listing = _ls(mnt / d)
            assert listing.returncode != 0 and "Input/output error" in listing.stderr, listing
            with pytest.raises(OSError) as info:
                (mnt / d / "new").write_bytes(b"x")
            assert info.value.errno == errno.EIO
        listing = _ls(mnt / "names")
        assert listing.returncode == 0 and "short" in listing.stdout and "nnnn" not in listing.stdout
        assert (mnt / "good" / "f").read_bytes() == b"fine"
        recursive = subprocess.run(["ls", "-lR", str(mnt)], capture_output=True, timeout=120, check=False)
        assert b"good" in recursive.stdout
    assert not mounts.mounted_at(mnt)
    assert real_iv.read_bytes() == (linked / DIRIV_NAME).read_bytes()  # never written through


# -- what the worker leaves for others on the machine ----------------------------------------------


@pytest.mark.usefixtures("rundir")
def test_worker_dumps_no_core(tmp_path: Path) -> None:
    """The worker holds the master key: it can leave no core file behind."""
    cipher, mnt = tmp_path / "cipher", tmp_path / "mnt"
    key = new_vault(cipher, PASSWORD).keys.master_key
    mnt.mkdir()
    with mounted(cipher, mnt, key) as info:
        limits = Path(f"/proc/{info.pid}/limits").read_text().splitlines()
        [core] = [line for line in limits if line.startswith("Max core file size")]
        assert core.split()[4:6] == ["0", "0"]  # soft and hard limit


def test_hardened_process_is_not_dumpable() -> None:
    """PR_SET_DUMPABLE 0 (checked in a forked child: the flag cannot be set back)."""
    from vaultsh.fs.worker import harden_process

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            harden_process()
            libc = ctypes.CDLL(None, use_errno=True)
            pr_get_dumpable = 3
            os.write(
                w,
                b"%d %d"
                % (libc.prctl(pr_get_dumpable, 0, 0, 0, 0), resource.getrlimit(resource.RLIMIT_CORE)[1]),
            )
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        answer = f.read()
    os.waitpid(pid, 0)
    assert answer == b"0 0"  # not dumpable, hard core limit 0


@pytest.mark.parametrize("asked", [False, True], ids=["default", "names-asked-for"])
def test_worker_log_holds_no_plain_names_unless_asked(
    tmp_path: Path, rundir: Path, monkeypatch: pytest.MonkeyPatch, asked: bool
) -> None:
    """A damaged file is logged by request and error; its plain path only when asked for."""
    if asked:
        monkeypatch.setenv(LOG_NAMES_ENV, "1")
    else:
        monkeypatch.delenv(LOG_NAMES_ENV, raising=False)
    cipher, mnt = tmp_path / "cipher", tmp_path / "mnt"
    key = new_vault(cipher, PASSWORD).keys.master_key
    mnt.mkdir()
    v = Vault.open(cipher, password=PASSWORD)
    v.mkdir("private-dir")
    v.write_file("private-dir/secret-plan.txt", b"x" * 10000)
    cfile = v.cipher_path("private-dir/secret-plan.txt")
    with open(cfile, "r+b") as f:  # flip a byte of block 0: it no longer authenticates
        f.seek(100)
        byte = f.read(1)[0]
        f.seek(100)
        f.write(bytes([byte ^ 1]))
    with mounted(cipher, mnt, key):
        with pytest.raises(OSError) as info:
            (mnt / "private-dir" / "secret-plan.txt").read_bytes()
        assert info.value.errno == errno.EIO
    log = MountFiles.for_mountpoint(mnt, rundir).log.read_text()
    assert "failed authentication" in log if asked else "read" in log and "CorruptionError (EIO)" in log
    for plain in ("private-dir", "secret-plan"):
        assert (plain in log) == asked, log
