#!/usr/bin/env python3
"""Benchmark: a vaultsh FUSE mount against a gocryptfs mount and the raw directory.

Run from the repository root:

    .venv/bin/python bench/bench_mount.py [--size-mib 1024] [--files 2500] [--repeat 3]
                                          [--only raw,gocryptfs,vaultsh] [--workdir DIR]
                                          [--profile DIR] [--keep]

Each run mounts a *fresh* target three ways -- a plain directory on the same disk (no FUSE),
a forward gocryptfs mount of a new vault (``gocryptfs -init -scryptn 10``) and a forward
``vaultsh mount`` of a new vault (``vaultsh init --scryptn 10``) -- and runs the same steps on
each: sequential write (1 MiB writes, fsync at the end), sequential read, extracting a tarball
of small files (a generated source-tree-like layout), ``ls -lR``, reading every file and
``rm -rf``. Outputs are checked (sha256 of the big file and of every extracted file, entry
counts, ciphertext sizes, nothing left in the cipher dir after ``rm -rf``). It prints a Markdown
table with time ratios and goal verdicts and writes it as JSON to
``bench/results/mount-latest.json``.

Conventions: MB = 10^6 bytes; ratios are *time* ratios (vaultsh seconds / gocryptfs seconds, so
< 1 means vaultsh is faster, also for the MB/s rows); the page cache is dropped (``sync; echo 3
> /proc/sys/vm/drop_caches``) before the sequential read, ``ls -lR`` and the read of every
file. Peak RSS is the VmHWM of the FUSE daemon (gocryptfs) or the vaultsh mount worker, read
right before unmounting. With ``--profile DIR`` one extra, untimed vaultsh run records py-spy
profiles of the worker during the write, the read and the extract and prints its hot spots.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_export import (  # shared helpers of the sibling benchmark
    MB,
    MIB,
    PY,
    REPO,
    drop_caches,
    fmt_float,
    log,
    proc_status_kib,
    run,
    subprocess_env,
    tail,
    versions,
)

RESULTS = Path(__file__).resolve().parent / "results" / "mount-latest.json"
DEFAULT_WORKDIR = Path("/var/tmp/vaultsh-bench-mount")
CONTENDERS = ("raw", "gocryptfs", "vaultsh")
MOUNT_TIMEOUT = 60.0

# Command templates for the vaultsh CLI (`python -m vaultsh ...`). Adjust here if the CLI's
# argument order changes.
VAULTSH_INIT = ["init", "--scryptn", "10", "--passfile", "{passfile}", "{cipherdir}"]
VAULTSH_MOUNT = ["mount", "--passfile", "{passfile}", "{cipherdir}", "{mnt}"]
VAULTSH_UNMOUNT = ["unmount", "{mnt}"]
VAULTSH_MOUNTS = ["mounts"]

# Steps in the order they run on every mount. "seq" steps report MB/s, the others seconds.
STEPS = ("write", "read", "extract", "ls-lR", "read-all", "rm-rf")
SEQ_STEPS = ("write", "read")
STEP_LABEL = {
    "write": "sequential write (1 MiB writes + fsync)",
    "read": "sequential read (cold cache)",
    "extract": "tar -xf of the small-file tree",
    "ls-lR": "ls -lR (cold cache)",
    "read-all": "read every file (cold cache)",
    "rm-rf": "rm -rf of the tree",
}
# A step only makes sense when the step it builds on worked.
NEEDS = {"read": "write", "ls-lR": "extract", "read-all": "extract", "rm-rf": "extract"}
# Goal: vaultsh time / gocryptfs time at most this much.
GOAL_RATIO = {"write": 1.0, "read": 1.0, "extract": 1.5, "ls-lR": 1.5, "read-all": 1.5, "rm-rf": 1.5}
PROFILED_STEPS = ("write", "read", "extract")

# gocryptfs AES-GCM content layout (docs/gocryptfs-format.md §6): header + per-block overhead.
FILE_HEADER = 18
BLOCK_PLAIN = 4096
BLOCK_OVERHEAD = 32
VAULT_FILES = {"gocryptfs.conf", "gocryptfs.diriv", "gocryptfs.conf.bak"}


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def cipher_size(plain: int) -> int:
    if plain == 0:
        return 0
    blocks = -(-plain // BLOCK_PLAIN)
    return FILE_HEADER + plain + blocks * BLOCK_OVERHEAD


def fs_type(path: Path) -> str:
    """Filesystem type of the mount that holds path (longest matching mount point)."""
    best, kind = "", "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            parts = line.split()
            mnt = parts[1].replace("\\040", " ")
            if (str(path) == mnt or str(path).startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best):
                best, kind = mnt, parts[2]
    return kind


def fuse_fd_holders() -> set[int]:
    """PIDs of processes that hold an open /dev/fuse (FUSE daemons and mount workers)."""
    pids: set[int] = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (d / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == "/dev/fuse":
                        pids.add(int(d.name))
                        break
    return pids


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def cpu_seconds(pid: int | None) -> float | None:
    """utime + stime of all threads of pid (and its reaped children)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    # fields[0] is field 3 (state); utime, stime, cutime, cstime are fields 14..17
    return sum(int(x) for x in fields[11:15]) / ticks


def fuse_connection(mnt: Path) -> Path | None:
    """/sys/fs/fuse/connections/N of a mount (its anonymous device number), for aborting."""
    with contextlib.suppress(OSError):
        dev = os.stat(mnt).st_dev
        if os.major(dev) == 0:
            conn = Path("/sys/fs/fuse/connections") / str(os.minor(dev))
            if conn.is_dir():
                return conn
    return None


@contextlib.contextmanager
def deadline(seconds: float, conn: Path | None, what: str) -> Iterator[None]:
    """Abort the FUSE connection if a step hangs, so blocked syscalls fail with ENOTCONN and
    the benchmark can still unmount and clean up."""
    fired = threading.Event()

    def fire() -> None:
        fired.set()
        log(f"{what}: no progress after {seconds:.0f}s; aborting the FUSE connection")
        if conn is not None:
            with contextlib.suppress(OSError):
                (conn / "abort").write_text("1\n")

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
    if fired.is_set():
        raise TimeoutError(f"{what} took longer than {seconds:.0f}s (connection aborted)")


def write_all(fd: int, data: memoryview) -> None:
    while data:
        n = os.write(fd, data)
        data = data[n:]


# --------------------------------------------------------------------------------------------
# Data set: the big file's content and the small-file tarball (deterministic from --seed)
# --------------------------------------------------------------------------------------------

POOL_CHUNKS = 7  # distinct 1 MiB chunks; a prime, so a misplaced block changes the hash


@dataclass
class Dataset:
    size_mib: int
    pool: bytes = b""
    big_sha: str = ""
    tarball: Path = Path()
    tree: str = "tree"
    files: dict[str, tuple[int, str]] = field(default_factory=dict)  # relpath -> (size, sha256)
    dirs: list[str] = field(default_factory=list)
    tree_bytes: int = 0

    def chunk(self, i: int) -> memoryview:
        k = i % POOL_CHUNKS
        return memoryview(self.pool)[k * MIB : (k + 1) * MIB]

    @classmethod
    def create(cls, root: Path, size_mib: int, n_files: int, seed: int) -> Dataset:
        rng = random.Random(seed)
        ds = cls(size_mib=size_mib, pool=rng.randbytes(POOL_CHUNKS * MIB))
        h = hashlib.sha256()
        for i in range(size_mib):
            h.update(ds.chunk(i))
        ds.big_sha = h.hexdigest()
        ds.tarball = root / f"tree-{n_files}-{seed}.tar"
        ds.make_tarball(rng, n_files)
        return ds

    def make_tarball(self, rng: random.Random, n_files: int) -> None:
        """~100 directories (10 packages x 9 modules + the packages) of files of 0-64 KiB,
        mostly small like a source tree; fixed mtimes/owners so the tarball is reproducible."""
        exts = (".py", ".c", ".h", ".txt", ".md", ".json", ".rs", ".go")
        for i in range(10):
            pkg = f"pkg{i:02d}"
            self.dirs.append(pkg)
            self.dirs += [f"{pkg}/mod{j}" for j in range(9)]
        pool = memoryview(self.pool)
        with tarfile.open(self.tarball, "w", format=tarfile.GNU_FORMAT) as tar:
            for d in [self.tree] + [f"{self.tree}/{d}" for d in self.dirs]:
                ti = tarfile.TarInfo(d)
                ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 1_700_000_000
                tar.addfile(ti)
            for k in range(n_files):
                d = rng.choice(self.dirs)
                name = f"{d}/{rng.choice(('util', 'main', 'core', 'test', 'io'))}_{k}{rng.choice(exts)}"
                r = rng.random()
                if r < 0.10:
                    size = rng.randint(0, 100)
                elif r < 0.60:
                    size = rng.randint(100, 4096)
                elif r < 0.90:
                    size = rng.randint(4096, 16384)
                else:
                    size = rng.randint(16384, 65536)
                off = rng.randrange(0, len(pool) - size)
                data = pool[off : off + size]
                ti = tarfile.TarInfo(f"{self.tree}/{name}")
                ti.size, ti.mode, ti.mtime = size, 0o644, 1_700_000_000
                tar.addfile(ti, io.BytesIO(data))
                self.files[name] = (size, hashlib.sha256(data).hexdigest())
                self.tree_bytes += size


# --------------------------------------------------------------------------------------------
# Targets: one fresh mount (or plain directory) per run
# --------------------------------------------------------------------------------------------


class TargetError(RuntimeError):
    pass


class Target:
    """A place to run the steps in: `plain` is where files go; `cipher` holds the vault."""

    name = ""

    def __init__(self, root: Path, passfile: Path) -> None:
        self.root = root
        self.passfile = passfile
        self.cipher: Path | None = None
        self.plain = root / "plain"
        self.daemon_pid: int | None = None
        self.pid_method = ""
        self.conn: Path | None = None
        self.mounted = False

    def setup(self) -> float:
        """Create and mount; returns the mount time in seconds."""
        raise NotImplementedError

    def peak_rss_kib(self) -> int | None:
        return None if self.daemon_pid is None else proc_status_kib("VmHWM", self.daemon_pid)

    def teardown(self) -> None:
        pass

    def _unmount(self, commands: list[list[str]]) -> None:
        """Try each unmount command in turn (with retries while busy), lazy unmount last."""
        if not self.mounted:
            return
        for cmd in commands:
            for attempt in range(5):
                cp = run(cmd, timeout=60, env=subprocess_env(), cwd=REPO)
                if not os.path.ismount(self.plain):
                    self.mounted = False
                    break
                log(f"{' '.join(cmd[-3:])}: rc {cp.returncode} {tail(cp.stderr)}; retrying")
                time.sleep(0.3 * (attempt + 1))
            if not self.mounted:
                break
        if self.mounted:
            log(f"unmount of {self.plain} keeps failing; lazy unmount (fusermount3 -u -z)")
            run(["fusermount3", "-u", "-z", str(self.plain)], timeout=60)
            self.mounted = os.path.ismount(self.plain)
        self._reap_daemon()

    def _reap_daemon(self) -> None:
        """Wait for the daemon to exit after unmount; stop it (by its pid) if it lingers."""
        pid = self.daemon_pid
        if pid is None:
            return
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None:
                log(f"{self.name} daemon {pid} still running after unmount; sending {sig.name}")
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            for _ in range(100):
                if not pid_alive(pid):
                    return
                time.sleep(0.1)


class RawTarget(Target):
    name = "raw"

    def setup(self) -> float:
        self.plain.mkdir(parents=True)
        return 0.0


class GocryptfsTarget(Target):
    name = "gocryptfs"

    def setup(self) -> float:
        self.cipher = self.root / "cipher"
        self.cipher.mkdir(parents=True)
        self.plain.mkdir()
        cp = run(["gocryptfs", "-init", "-q", "-scryptn", "10", "-passfile", str(self.passfile),
                  str(self.cipher)], timeout=120)  # fmt: skip
        if cp.returncode != 0:
            raise TargetError(f"gocryptfs -init failed (rc {cp.returncode}): {tail(cp.stderr)}")
        before = fuse_fd_holders()
        t0 = time.perf_counter()
        cp = run(["gocryptfs", "-q", "-passfile", str(self.passfile), str(self.cipher),
                  str(self.plain)], timeout=MOUNT_TIMEOUT)  # fmt: skip
        secs = time.perf_counter() - t0
        self.mounted = os.path.ismount(self.plain)
        if cp.returncode != 0 or not self.mounted:
            raise TargetError(f"gocryptfs mount failed (rc {cp.returncode}): {tail(cp.stderr)}")
        self.conn = fuse_connection(self.plain)
        self.daemon_pid, self.pid_method = self._find_daemon(before)
        return secs

    def _find_daemon(self, before: set[int]) -> tuple[int | None, str]:
        want = str(self.plain).encode()
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                argv = (d / "cmdline").read_bytes().split(b"\0")
                if os.path.basename(argv[0]) == b"gocryptfs" and want in argv:
                    return int(d.name), "cmdline"
        new = fuse_fd_holders() - before
        if len(new) == 1:
            return new.pop(), "new /dev/fuse holder"
        return None, "not found"

    def teardown(self) -> None:
        self._unmount([["fusermount3", "-u", str(self.plain)]])


def vaultsh_cmd(template: list[str], **kw: str) -> list[str]:
    return [PY, "-m", "vaultsh", *(a.format(**kw) for a in template)]


def vaultsh_mount_unavailable() -> str | None:
    """Why `vaultsh mount` cannot be used (yet), or None when its CLI is there."""
    for template in (VAULTSH_MOUNT, VAULTSH_UNMOUNT):
        cp = run([PY, "-m", "vaultsh", template[0], "--help"], timeout=60, env=subprocess_env(),
                 cwd=REPO)  # fmt: skip
        if cp.returncode != 0:
            return f"`vaultsh {template[0]} --help` failed (rc {cp.returncode}): {tail(cp.stderr, 1)}"
    return None


class VaultshTarget(Target):
    name = "vaultsh"

    def __init__(self, root: Path, passfile: Path) -> None:
        super().__init__(root, passfile)
        self.foreground: subprocess.Popen[bytes] | None = None

    def setup(self) -> float:
        self.cipher = self.root / "cipher"
        self.cipher.mkdir(parents=True)
        self.plain.mkdir()
        kw = {"passfile": str(self.passfile), "cipherdir": str(self.cipher), "mnt": str(self.plain)}
        cp = run(vaultsh_cmd(VAULTSH_INIT, **kw), timeout=120, env=subprocess_env(), cwd=REPO)
        if cp.returncode != 0:
            raise TargetError(f"vaultsh init failed (rc {cp.returncode}): {tail(cp.stderr)}")
        before = fuse_fd_holders()
        t0 = time.perf_counter()
        secs = self._mount(vaultsh_cmd(VAULTSH_MOUNT, **kw))
        self.conn = fuse_connection(self.plain)
        self.daemon_pid, self.pid_method = self._find_worker(before)
        if self.daemon_pid is None:
            log("vaultsh worker pid not found: no peak RSS, CPU or profile for this run")
        return secs if secs else time.perf_counter() - t0

    def _mount(self, cmd: list[str]) -> float:
        """Run `vaultsh mount`; it either returns once mounted (worker in the background) or
        keeps running in the foreground -- both work. Output goes to files, not pipes, so a
        daemon that inherits them cannot block us."""
        with tempfile.TemporaryFile() as out:
            t0 = time.perf_counter()
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                 env=subprocess_env(), cwd=REPO, process_group=0)  # fmt: skip
            end = t0 + MOUNT_TIMEOUT
            while time.perf_counter() < end:
                rc = p.poll()
                if os.path.ismount(self.plain):
                    self.mounted = True
                    secs = time.perf_counter() - t0
                    if rc is None:  # still running: a foreground mount, or a CLI about to exit
                        with contextlib.suppress(subprocess.TimeoutExpired):
                            p.wait(timeout=5)
                        if p.poll() is None:
                            self.foreground = p
                    return secs
                if rc is not None and rc != 0:
                    out.seek(0)
                    raise TargetError(f"vaultsh mount failed (rc {rc}): {tail(out.read())}")
                # rc 0 but the mount is not visible yet: keep polling a little
                time.sleep(0.01)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
            p.wait()
            out.seek(0)
            msg = tail(out.read())
        raise TargetError(f"vaultsh mount: {self.plain} not mounted after {MOUNT_TIMEOUT:.0f}s: {msg}")

    def _find_worker(self, before: set[int]) -> tuple[int | None, str]:
        """Worker pid: from `vaultsh mounts`, else service.mounts.find_mount, else the one new
        holder of /dev/fuse. Each candidate must hold /dev/fuse."""
        holders = fuse_fd_holders()
        candidates: list[tuple[int, str]] = []
        cp = run(vaultsh_cmd(VAULTSH_MOUNTS), timeout=60, env=subprocess_env(), cwd=REPO)
        if cp.returncode == 0:
            candidates += [(pid, "vaultsh mounts") for pid in pids_in_listing(cp.stdout, self.plain)]
        with contextlib.suppress(Exception):
            sys.path.insert(0, str(REPO))
            import importlib

            find_mount: Callable[[Path], Any] = importlib.import_module("vaultsh.service.mounts").find_mount
            info = find_mount(self.plain)
            for attr in ("pid", "worker_pid"):
                if isinstance(pid := getattr(info, attr, None), int):
                    candidates.append((pid, f"find_mount().{attr}"))
        new = holders - before
        if len(new) == 1:
            candidates.append((next(iter(new)), "new /dev/fuse holder"))
        if self.foreground is not None:
            candidates.append((self.foreground.pid, "foreground mount process"))
        for pid, how in candidates:
            if pid in holders:
                return pid, how
        return None, "not found"

    def teardown(self) -> None:
        cmd = vaultsh_cmd(VAULTSH_UNMOUNT, mnt=str(self.plain))
        self._unmount([cmd, ["fusermount3", "-u", str(self.plain)]])
        if self.foreground is not None:
            try:
                self.foreground.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.foreground.pid, signal.SIGTERM)
                self.foreground.wait()


def pids_in_listing(stdout: bytes, mnt: Path) -> list[int]:
    """PIDs that `vaultsh mounts` shows for mnt: JSON objects with a *pid* key, or a text
    line naming the mount point with a `pid` label (`pid 123`, `pid=123`, `PID: 123`)."""
    text = stdout.decode("utf-8", "replace")
    found: list[int] = []
    with contextlib.suppress(ValueError):
        data = json.loads(text)
        items = data if isinstance(data, list) else data.get("mounts", [data])
        for item in items:
            if isinstance(item, dict) and str(mnt) in json.dumps(item):
                found += [v for k, v in item.items() if "pid" in k.lower() and isinstance(v, int)]
        return found
    lines = [ln for ln in text.splitlines() if str(mnt) in ln]
    for ln in lines:
        found += [int(m) for m in re.findall(r"\bpid\b\W{0,3}(\d+)", ln, re.IGNORECASE)]
    if not found and lines:  # a table: the PID column may be named in a header line
        header = next((ln for ln in text.splitlines() if re.search(r"\bpid\b", ln, re.I)), "")
        cols = header.split()
        idx = next((i for i, c in enumerate(cols) if c.lower() == "pid"), None)
        for ln in lines:
            parts = ln.split()
            if idx is not None and idx < len(parts) and parts[idx].isdigit():
                found.append(int(parts[idx]))
    return found


TARGETS: dict[str, type[Target]] = {"raw": RawTarget, "gocryptfs": GocryptfsTarget,
                                    "vaultsh": VaultshTarget}  # fmt: skip


# --------------------------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------------------------


@dataclass
class Step:
    step: str
    status: str = "ok"  # ok | error | WRONG-OUTPUT | skipped
    seconds: float | None = None
    nbytes: int | None = None
    mb_s: float | None = None
    daemon_cpu_s: float | None = None
    check: str = ""
    note: str = ""


class Runner:
    """Runs the steps on one mounted target."""

    def __init__(self, target: Target, ds: Dataset, args: argparse.Namespace) -> None:
        self.t = target
        self.ds = ds
        self.args = args
        self.big = target.plain / "big.bin"

    def step(self, name: str) -> Step:
        fn: Callable[[Step], None] = getattr(self, "do_" + name.replace("-", "_"))
        st = Step(name)
        cpu0 = cpu_seconds(self.t.daemon_pid)
        try:
            with deadline(self.args.step_timeout, self.t.conn, f"{self.t.name} {name}"):
                fn(st)
        except Exception as e:
            st.status, st.note, st.seconds = "error", f"{type(e).__name__}: {e}"[:300], None
        cpu1 = cpu_seconds(self.t.daemon_pid)
        if cpu0 is not None and cpu1 is not None:
            st.daemon_cpu_s = round(cpu1 - cpu0, 3)
        if st.status == "ok" and st.seconds and st.nbytes is not None:
            st.mb_s = st.nbytes / MB / st.seconds
        return st

    # -- sequential --------------------------------------------------------------------------

    def do_write(self, st: Step) -> None:
        os.sync()  # start with nothing dirty from earlier steps
        t0 = time.perf_counter()
        fd = os.open(self.big, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for i in range(self.ds.size_mib):
                write_all(fd, self.ds.chunk(i))
            os.fsync(fd)
        finally:
            os.close(fd)
        st.seconds = time.perf_counter() - t0
        st.nbytes = self.ds.size_mib * MIB
        t0 = time.perf_counter()
        os.sync()  # if fsync did not reach the disk, this shows it
        st.note = f"sync(2) afterwards {time.perf_counter() - t0:.2f}s"
        size = self.big.stat().st_size
        if size != st.nbytes:
            st.status, st.check = "WRONG-OUTPUT", f"size {size} != {st.nbytes}"
            return
        st.check = "size ok"
        if self.t.cipher is not None:
            entries = [e for e in os.listdir(self.t.cipher) if e not in VAULT_FILES]
            sizes = [(self.t.cipher / e).stat().st_size for e in entries]
            if sizes != [cipher_size(st.nbytes)]:
                st.status = "WRONG-OUTPUT"
                st.check = f"ciphertext sizes {sizes}, want [{cipher_size(st.nbytes)}]"
                return
            st.check += ", ciphertext size ok"

    def do_read(self, st: Step) -> None:
        buf = bytearray(MIB)
        total = 0
        drop_caches()
        t0 = time.perf_counter()
        with open(self.big, "rb", buffering=0) as f:
            while n := f.readinto(buf):
                total += n
        st.seconds = time.perf_counter() - t0
        st.nbytes = total
        # check in a second, untimed pass so hashing does not count as read time
        h = hashlib.sha256()
        with open(self.big, "rb", buffering=0) as f:
            while n := f.readinto(buf):
                h.update(memoryview(buf)[:n])
        if total != self.ds.size_mib * MIB or h.hexdigest() != self.ds.big_sha:
            st.status, st.check = "WRONG-OUTPUT", f"sha256 mismatch ({total} bytes)"
        else:
            st.check = "sha256 ok"

    # -- metadata-heavy ----------------------------------------------------------------------

    def prepare(self, name: str) -> None:
        """Untimed (and unprofiled) set-up of a step."""
        if name != "extract":
            return
        with deadline(self.args.step_timeout, self.t.conn, f"{self.t.name} {name} set-up"):
            with contextlib.suppress(FileNotFoundError):
                self.big.unlink()  # frees the disk; the tree steps start from an empty vault
            with open(self.ds.tarball, "rb") as f:  # warm the source: only the target counts
                while f.read(4 * MIB):
                    pass
            os.sync()

    def do_extract(self, st: Step) -> None:
        cmd = ["tar", "-xf", str(self.ds.tarball), "--no-same-owner", "-C", str(self.t.plain)]
        t0 = time.perf_counter()
        cp = run(cmd, timeout=self.args.step_timeout)
        st.seconds = time.perf_counter() - t0
        if cp.returncode != 0:
            raise RuntimeError(f"tar rc {cp.returncode}: {tail(cp.stderr)}")
        st.nbytes = self.ds.tree_bytes
        st.check = "checked by read-all"

    def do_ls_lR(self, st: Step) -> None:
        drop_caches()
        t0 = time.perf_counter()
        cp = run(["ls", "-lR", str(self.t.plain / self.ds.tree)], timeout=self.args.step_timeout)
        st.seconds = time.perf_counter() - t0
        if cp.returncode != 0:
            raise RuntimeError(f"ls rc {cp.returncode}: {tail(cp.stderr)}")
        lines = cp.stdout.decode("utf-8", "replace").splitlines()
        n_files = sum(ln.startswith("-") for ln in lines)
        n_dirs = sum(ln.startswith("d") for ln in lines)
        want_f, want_d = len(self.ds.files), len(self.ds.dirs)
        if (n_files, n_dirs) != (want_f, want_d):
            st.status = "WRONG-OUTPUT"
            st.check = f"{n_files} files / {n_dirs} dirs listed, want {want_f} / {want_d}"
        else:
            st.check = f"{n_files} files, {n_dirs} dirs"

    def do_read_all(self, st: Step) -> None:
        root = self.t.plain / self.ds.tree
        paths = [root / rel for rel in self.ds.files]
        buf = bytearray(128 * 1024)
        total = 0
        drop_caches()
        t0 = time.perf_counter()
        for p in paths:
            with open(p, "rb", buffering=0) as f:
                while n := f.readinto(buf):
                    total += n
        st.seconds = time.perf_counter() - t0
        st.nbytes = total
        bad: list[str] = []
        for rel, (size, sha) in self.ds.files.items():
            data = (root / rel).read_bytes()
            if len(data) != size or hashlib.sha256(data).hexdigest() != sha:
                bad.append(rel)
        extra = sum(len(fs) for _d, _ds, fs in os.walk(root)) - len(self.ds.files)
        if bad or extra:
            st.status = "WRONG-OUTPUT"
            st.check = f"{len(bad)} files wrong (e.g. {bad[:1]}), {extra} extra"
        else:
            st.check = f"sha256 ok ({len(self.ds.files)} files)"

    def do_rm_rf(self, st: Step) -> None:
        os.sync()
        t0 = time.perf_counter()
        cp = run(["rm", "-rf", str(self.t.plain / self.ds.tree)], timeout=self.args.step_timeout)
        st.seconds = time.perf_counter() - t0
        if cp.returncode != 0:
            raise RuntimeError(f"rm rc {cp.returncode}: {tail(cp.stderr)}")
        left = os.listdir(self.t.plain)
        if self.t.cipher is not None:
            left += [f"cipher:{e}" for e in os.listdir(self.t.cipher) if e not in VAULT_FILES]
        if left:
            st.status, st.check = "WRONG-OUTPUT", f"left behind: {left[:3]}"
        else:
            st.check = "empty" + (" (cipher dir too)" if self.t.cipher else "")


# --------------------------------------------------------------------------------------------
# py-spy profiling of the vaultsh worker
# --------------------------------------------------------------------------------------------


def py_spy() -> str | None:
    local = REPO / ".venv" / "bin" / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


@contextlib.contextmanager
def profiled(pid: int | None, out: Path, args: argparse.Namespace) -> Iterator[None]:
    """py-spy record of pid (and its children) for the duration of the block."""
    tool = py_spy()
    if pid is None or tool is None:
        log(f"no profile for {out.name}: " + ("py-spy not installed" if tool else "no worker pid"))
        yield
        return
    cmd = [tool, "record", "--pid", str(pid), "--format", args.profile_format, "-o", str(out),
           "--rate", str(args.profile_rate), "--subprocesses", "--nonblocking"]  # fmt: skip
    if args.profile_native:
        cmd.remove("--nonblocking")  # native unwinding needs the process stopped
        cmd.append("--native")
    logf = out.with_suffix(".log").open("wb")
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
    time.sleep(1.0)  # let it attach before the work starts
    try:
        yield
    finally:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        logf.close()


# Frames that mean "waiting, not working": the blocking loop's poll for the next FUSE request
# (trio's epoll wait in older versions), the control thread's poll and idle threads parked on a
# lock. Native mode records them; they are reported apart.
IDLE_FRAMES = ("epoll_wait", "EpollIOManager.get_events", "EpollIOManager._epoll_wait",
               "wait_readable (vaultsh/fs/blocking_loop.py", "_control_loop (vaultsh/fs/worker.py",
               "PyThread_acquire_lock_timed", "lock_PyThread_acquire_lock")  # fmt: skip
# The worker's outermost frames: every sample has them, so they say nothing.
LOOP_FRAMES = ("<module> (vaultsh/fs/worker.py", "main (vaultsh/fs/worker.py", "run (vaultsh/fs/worker.py",
               "serve (vaultsh/fs/worker.py", "run (vaultsh/fs/blocking_loop.py")  # fmt: skip
# Where busy samples go, first match wins (by frame substring).
PROFILE_CATEGORIES = (
    ("reply to the kernel (fuse_reply_*, incl. the woken client running)", "fuse_reply"),
    ("request handlers (vaultsh/fs/forward.py and below)", "vaultsh/fs/forward.py"),
    ("pyfuse3 request loop", ""),
)


def summarize_profile(path: Path, top: int = 12) -> dict[str, Any]:
    """Busy samples by category, and self and inclusive shares per function, from py-spy's
    raw (collapsed) output; idle samples (waiting for a request) are counted apart."""
    self_c: Counter[str] = Counter()
    self_line: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    cats: Counter[str] = Counter()
    total = idle = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if f]
        if not frames:
            continue
        if any(marker in f for f in frames[-3:] for marker in IDLE_FRAMES):
            idle += n
            continue
        total += n
        funcs = [short_frame(f, with_line=False) for f in frames]
        self_c[funcs[-1]] += n
        self_line[short_frame(frames[-1], with_line=True)] += n
        for fn in set(funcs):
            incl[fn] += n
        cats[next(c for c, key in PROFILE_CATEGORIES if any(key in f for f in frames))] += n

    def pct(c: Counter[str], only_vaultsh: bool = False) -> list[tuple[str, float]]:
        items = [(k, v) for k, v in c.most_common()
                 if not only_vaultsh or ("vaultsh/" in k and not k.startswith(LOOP_FRAMES))]  # fmt: skip
        return [(k, round(100 * v / total, 1)) for k, v in items[:top]] if total else []

    return {"samples": total, "idle_samples": idle, "categories": pct(cats), "self": pct(self_c),
            "self_lines": pct(self_line), "inclusive_vaultsh": pct(incl, only_vaultsh=True)}  # fmt: skip


def short_frame(frame: str, *, with_line: bool) -> str:
    """'func (/long/path/vaultsh/fs/forward.py:123)' -> 'func (vaultsh/fs/forward.py:123)'."""
    m = re.match(r"^(.*) \((.*?)(?::(\d+))?\)$", frame)
    if not m:
        return frame
    func, path, line = m.groups()
    if len(func) > 60:  # mangled Rust/C++ symbols
        func = func[:57] + "..."
    for marker in ("/site-packages/", str(REPO) + "/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{func} ({path}{':' + line if with_line and line else ''})"


# --------------------------------------------------------------------------------------------
# One run = one fresh target, all steps, unmount
# --------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    contender: str
    rep: int
    status: str = "ok"  # ok | error | unavailable
    note: str = ""
    mount_seconds: float | None = None
    peak_rss_kib: int | None = None
    daemon_pid: int | None = None
    pid_method: str = ""
    steps: dict[str, Step] = field(default_factory=dict)
    profiles: dict[str, Any] = field(default_factory=dict)


def run_one(name: str, rep: int, base: Path, passfile: Path, ds: Dataset, args: argparse.Namespace,
            profile_dir: Path | None = None) -> RunResult:  # fmt: skip
    res = RunResult(name, rep)
    root = base / f"{name}-{rep}"
    target = TARGETS[name](root, passfile)
    try:
        res.mount_seconds = target.setup()
        res.daemon_pid, res.pid_method = target.daemon_pid, target.pid_method
        runner = Runner(target, ds, args)
        for step in STEPS:
            need = NEEDS.get(step)
            if need and res.steps[need].status != "ok":
                res.steps[step] = Step(step, status="skipped", note=f"{need} failed")
                continue
            try:
                runner.prepare(step)
            except Exception as e:
                res.steps[step] = Step(step, status="error", note=f"set-up: {type(e).__name__}: {e}"[:300])
                continue
            if profile_dir is not None and step in PROFILED_STEPS:
                out = profile_dir / f"prof-{step}.{'txt' if args.profile_format == 'raw' else 'svg'}"
                if args.profile_format == "speedscope":
                    out = out.with_suffix(".json")
                with profiled(target.daemon_pid, out, args):
                    st = runner.step(step)
                if out.exists() and args.profile_format == "raw":
                    res.profiles[step] = {"file": str(out), **summarize_profile(out)}
                elif out.exists():
                    res.profiles[step] = {"file": str(out)}
            else:
                st = runner.step(step)
            res.steps[step] = st
            log(f"  {name} #{rep} {step:8s} {st.status:5s} {fmt_float(st.seconds, '.3f')} s"
                f"{f'  {st.mb_s:,.1f} MB/s' if st.mb_s and step in SEQ_STEPS else ''}"
                f"  cpu {fmt_float(st.daemon_cpu_s, '.2f')}  {st.check} {st.note}")  # fmt: skip
        res.peak_rss_kib = target.peak_rss_kib()
    except Exception as e:
        res.status, res.note = "error", f"{type(e).__name__}: {e}"[:400]
        log(f"  {name} #{rep}: {res.note}")
    finally:
        try:
            target.teardown()
        finally:
            if target.mounted:
                log(f"{target.plain} is STILL MOUNTED; leaving {root} in place")
            elif not args.keep:
                shutil.rmtree(root, ignore_errors=True)
    return res


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def best_step(runs: list[RunResult], step: str) -> Step | None:
    """Fastest ok run of a step; a failed run of it wins over nothing so the failure shows."""
    steps = [r.steps[step] for r in runs if step in r.steps]
    good = [s for s in steps if s.status == "ok" and s.seconds is not None]
    if good and len(good) == len(steps):
        return min(good, key=lambda s: s.seconds or 0.0)
    return next((s for s in steps if s.status != "ok"), None)


def summarize(results: dict[str, list[RunResult]]) -> dict[str, Any]:
    """Best-of-N per contender and step, the time ratios and the goal verdicts."""
    summary: dict[str, Any] = {"steps": {}, "goals": []}
    for step in STEPS:
        row: dict[str, Any] = {"label": STEP_LABEL[step], "unit": "MB/s" if step in SEQ_STEPS else "s"}
        for name, runs in results.items():
            st = best_step(runs, step)
            row[name] = None if st is None else asdict(st)
            if len(runs) > 1:
                row[name + "_all_seconds"] = [
                    None if step not in r.steps else r.steps[step].seconds for r in runs
                ]
        for a, b in (("vaultsh", "gocryptfs"), ("vaultsh", "raw"), ("gocryptfs", "raw")):
            row[f"{a}/{b}"] = time_ratio(row.get(a), row.get(b))
        r = row["vaultsh/gocryptfs"]
        row["goal"] = f"≤ {GOAL_RATIO[step]:.2f}×"
        row["verdict"] = "n/a" if r is None else ("PASS" if r <= GOAL_RATIO[step] else "MISS")
        summary["steps"][step] = row
        summary["goals"].append({"step": step, "ratio": r, "target": GOAL_RATIO[step],
                                 "verdict": row["verdict"]})  # fmt: skip
    rss: dict[str, Any] = {}
    mounts: dict[str, Any] = {}
    for name, runs in results.items():
        vals = [r.peak_rss_kib for r in runs if r.peak_rss_kib is not None]
        rss[name] = max(vals) if vals else None
        ms = [r.mount_seconds for r in runs if r.mount_seconds is not None and r.status == "ok"]
        mounts[name] = min(ms) if ms else None
    summary["peak_rss_kib"], summary["mount_seconds"] = rss, mounts
    return summary


def time_ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float | None:
    """a's seconds / b's seconds when both steps succeeded."""
    if a is None or b is None or a["status"] != "ok" or b["status"] != "ok":
        return None
    sa, sb = a["seconds"], b["seconds"]
    return float(sa / sb) if sa and sb else None


def cell(st: dict[str, Any] | None, step: str) -> str:
    if st is None:
        return "—"
    if st["status"] != "ok":
        return f"**{st['status']}**"
    if step in SEQ_STEPS:
        return f"{st['mb_s']:,.1f} MB/s"
    return f"{st['seconds']:.3f} s"


def secs_text(s: float | None) -> str:
    return "—" if s is None else f"{s:.3f} s"


def ratio_text(r: float | None) -> str:
    return "—" if r is None else f"{r:.2f}×"


def markdown(summary: dict[str, Any], results: dict[str, list[RunResult]], meta: dict[str, Any],
             unavailable: dict[str, str]) -> str:  # fmt: skip
    lines = [
        f"### vaultsh mount benchmark — {meta['timestamp']}",
        "",
        f"Sequential file {meta['size_mib']} MiB; tree of {meta['files']} files in "
        f"{meta['dirs']} dirs ({meta['tree_bytes'] / MB:.1f} MB). Fresh vault and mount per run; "
        f"best of {meta['repeat']} run(s). Page cache dropped before read, ls -lR and read-all: "
        f"{meta['caches_dropped']}. Load average (1/5/15 min) at start "
        f"{'/'.join(f'{x:.1f}' for x in meta['loadavg_1_5_15']['start'])}, at end "
        f"{'/'.join(f'{x:.1f}' for x in meta['loadavg_1_5_15']['end'])} on {os.cpu_count()} CPUs. "
        f"Work dir {meta['workdir']} ({meta['workdir_fs']}). "
        "MB = 10^6 bytes. **Ratios are time ratios**: vaultsh seconds ÷ gocryptfs seconds "
        "(< 1 = vaultsh faster; for MB/s rows it is gocryptfs MB/s ÷ vaultsh MB/s). "
        "Daemon CPU = user+sys seconds of the gocryptfs daemon / vaultsh worker during the step.",
        "",
        "| step | raw | gocryptfs | vaultsh | vaultsh/gocryptfs (time) | vaultsh/raw (time) "
        "| gocryptfs/raw (time) | daemon CPU s go / vs | goal | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for step in STEPS:
        row = summary["steps"][step]
        cpu = " / ".join(
            fmt_float((row.get(n) or {}).get("daemon_cpu_s"), ".2f") for n in ("gocryptfs", "vaultsh")
        )
        lines.append(
            f"| {row['label']} | {cell(row.get('raw'), step)} | {cell(row.get('gocryptfs'), step)} "
            f"| {cell(row.get('vaultsh'), step)} | {ratio_text(row['vaultsh/gocryptfs'])} "
            f"| {ratio_text(row['vaultsh/raw'])} | {ratio_text(row['gocryptfs/raw'])} | {cpu} "
            f"| {row['goal']} | {row['verdict']} |"
        )
    rss = summary["peak_rss_kib"]
    rss_r = rss["vaultsh"] / rss["gocryptfs"] if rss.get("vaultsh") and rss.get("gocryptfs") else None
    lines.append(
        f"| peak RSS MiB (daemon VmHWM) | — | {fmt_float(kib_mib(rss.get('gocryptfs')), ',.1f')} "
        f"| {fmt_float(kib_mib(rss.get('vaultsh')), ',.1f')} | {ratio_text(rss_r)} (memory) "
        "| — | — | — | — | — |"
    )
    ms = summary["mount_seconds"]
    ms_r = ms["vaultsh"] / ms["gocryptfs"] if ms.get("vaultsh") and ms.get("gocryptfs") else None
    lines.append(
        f"| mount (CLI, incl. unlock) | — | {secs_text(ms.get('gocryptfs'))} "
        f"| {secs_text(ms.get('vaultsh'))} | {ratio_text(ms_r)} | — | — | — | — | — |"
    )
    lines += ["", "Checks:"]
    for name, runs in results.items():
        notes = []
        for r in runs:
            if r.status != "ok":
                notes.append(f"run {r.rep}: **{r.status}** {r.note}")
            for st in r.steps.values():
                if st.status != "ok":
                    notes.append(f"run {r.rep} {st.step}: **{st.status}** {st.check} {st.note}".strip())
        good = {f"{s.step}: {s.check}" for r in runs for s in r.steps.values() if s.status == "ok"}
        checks = "; ".join(sorted(good, key=lambda c: STEPS.index(c.split(":")[0])))
        lines.append(f"- {name}: " + ("; ".join(notes) if notes else f"all ok — {checks}"))
    for name, why in unavailable.items():
        lines.append(f"- {name}: **{name} mount unavailable** — {why}")
    lines += ["", "Goals (vaultsh vs gocryptfs, time ratio):"]
    for g in summary["goals"]:
        lines.append(f"- {STEP_LABEL[g['step']]}: {ratio_text(g['ratio'])} (target ≤ "
                     f"{g['target']:.2f}×) → {g['verdict']}")  # fmt: skip
    return "\n".join(lines)


def kib_mib(kib: int | None) -> float | None:
    return None if kib is None else kib / 1024


def profile_markdown(profiles: dict[str, Any]) -> str:
    lines = ["", "### py-spy hot spots of the vaultsh worker (separate, untimed run)"]
    for step, prof in profiles.items():
        if "self" not in prof:
            lines += ["", f"**{STEP_LABEL[step]}** — {prof['file']}"]
            continue
        lines += ["", f"**{STEP_LABEL[step]}** — {prof['samples']} busy samples "
                  f"(+{prof['idle_samples']} idle), {prof['file']}. Busy time: "
                  + "; ".join(f"{c} {p}%" for c, p in prof["categories"]), ""]  # fmt: skip
        lines.append("| self % | function (self) | | incl. % | vaultsh function (inclusive) |")
        lines.append("|---:|---|---|---:|---|")
        a, b = prof["self"], prof["inclusive_vaultsh"]
        for i in range(max(len(a), len(b))):
            sa = f"{a[i][1]} | `{a[i][0]}`" if i < len(a) else " | "
            sb = f"{b[i][1]} | `{b[i][0]}`" if i < len(b) else " | "
            lines.append(f"| {sa} | | {sb} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--size-mib", type=int, default=1024, help="sequential file size (1024)")
    p.add_argument("--files", type=int, default=2500, help="files in the tarball (2500)")
    p.add_argument("--only", default=",".join(CONTENDERS), help="subset of raw,gocryptfs,vaultsh")
    p.add_argument("--repeat", type=int, default=3, help="runs per contender, best kept (3)")
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                   help=f"scratch space on a real disk, not tmpfs ({DEFAULT_WORKDIR})")  # fmt: skip
    p.add_argument("--keep", action="store_true", help="keep vaults and the tarball afterwards")
    p.add_argument("--seed", type=int, default=20240501, help="seed for data and tree layout")
    p.add_argument("--step-timeout", type=float, default=1800.0,
                   help="abort a hanging step after this many seconds (1800)")  # fmt: skip
    p.add_argument("--results", type=Path, default=RESULTS, help="JSON output path")
    p.add_argument("--profile", type=Path, metavar="DIR",
                   help="one extra untimed vaultsh run with py-spy on the worker during "
                        f"{', '.join(PROFILED_STEPS)}; profiles go to DIR")  # fmt: skip
    p.add_argument("--profile-format", choices=("raw", "flamegraph", "speedscope"), default="raw",
                   help="py-spy output format; raw (collapsed stacks) gets a hot-spot summary")  # fmt: skip
    p.add_argument("--profile-rate", type=int, default=200, help="py-spy samples per second (200)")
    p.add_argument("--profile-native", action="store_true", help="py-spy --native (C frames too)")
    p.add_argument("--fsbench", action="store_true",
                   help="instead of the steps above, run the canonical fsbench.sh on gocryptfs, "
                        "vaultsh, gocryptfs, ... (--repeat vaultsh runs) and print the ratios")  # fmt: skip
    p.add_argument("--fsbench-script", type=Path, default=None,
                   help="path of fsbench.sh ($FSBENCH or /work/shared/bench/fsbench.sh)")  # fmt: skip
    p.add_argument("--fsbench-size-mb", type=int, default=512, help="fsbench sequential file size (512)")
    p.add_argument("--vaultsh-tree", action="append", default=[], metavar="LABEL=DIR",
                   help="with --fsbench: also (or instead) run vaultsh from source tree DIR, shown as "
                        "vaultsh:LABEL; repeat to compare versions in one alternation")  # fmt: skip
    return p.parse_args(argv)


def preflight(args: argparse.Namespace, only: list[str]) -> None:
    tools = ["tar", "ls", "rm"] + (["gocryptfs", "fusermount3"] if only != ["raw"] else [])
    if missing := [t for t in tools if shutil.which(t) is None]:
        raise SystemExit(f"missing tools: {', '.join(missing)}")
    if only != ["raw"] and not os.path.exists("/dev/fuse"):
        raise SystemExit("/dev/fuse is missing: cannot mount")
    args.workdir.mkdir(parents=True, exist_ok=True)
    if fs_type(args.workdir.resolve()) in ("tmpfs", "ramfs"):
        log(f"WARNING: {args.workdir} is on {fs_type(args.workdir.resolve())}; the disk will not count")
    need = int(args.size_mib * MIB * 1.1) + args.files * 200_000 + 2**28
    free = shutil.disk_usage(args.workdir).free
    if free < need:
        raise SystemExit(f"{args.workdir}: {free / 2**30:.1f} GiB free, need ~{need / 2**30:.1f} GiB; "
                         "use --workdir or a smaller --size-mib")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.repeat < 1 or args.size_mib < 1 or args.files < 1:
        raise SystemExit("--repeat, --size-mib and --files must be ≥ 1")
    only = [c.strip() for c in args.only.split(",") if c.strip()]
    bad = set(only) - set(CONTENDERS)
    if bad or not only:
        raise SystemExit(f"unknown --only {sorted(bad)}; choose from {','.join(CONTENDERS)}")
    only = [c for c in CONTENDERS if c in only]
    preflight(args, only)
    if args.fsbench:
        return fsbench_main(args)

    unavailable: dict[str, str] = {}
    if "vaultsh" in only and (why := vaultsh_mount_unavailable()) is not None:
        unavailable["vaultsh"] = why
        only.remove("vaultsh")
        print(f"vaultsh mount unavailable: {why}. Running {', '.join(only) or 'nothing'} only; "
              "rerun this same command once `python -m vaultsh mount --help` works.")  # fmt: skip

    def _die(signum: int, _frame: object) -> None:  # SIGTERM/SIGHUP → finally blocks unmount
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _die)

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = args.workdir / f"run-{stamp}-{os.getpid()}"
    base.mkdir(parents=True)
    log(f"workspace {base}")
    passfile = base / "passfile"
    fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(os.urandom(16).hex() + "\n")
    started = dt.datetime.now().isoformat(timespec="seconds")
    load_before = os.getloadavg()
    results: dict[str, list[RunResult]] = {n: [] for n in only}
    profile_run: RunResult | None = None
    try:
        log(f"generating {args.size_mib} MiB of content and a {args.files}-file tarball")
        ds = Dataset.create(base, args.size_mib, args.files, args.seed)
        caches = drop_caches()
        for rep in range(1, args.repeat + 1):  # interleaved, so drift hits every contender
            for name in only:
                log(f"{name}: run {rep}/{args.repeat}")
                results[name].append(run_one(name, rep, base, passfile, ds, args))
        if args.profile is not None and "vaultsh" in only:
            args.profile.mkdir(parents=True, exist_ok=True)
            log(f"vaultsh: profile run (py-spy → {args.profile})")
            profile_run = run_one("vaultsh", 0, base, passfile, ds, args, profile_dir=args.profile)
    finally:
        still = [p for p in base.glob("*/plain") if os.path.ismount(p)]
        for p in still:  # only reached if a teardown itself failed
            log(f"last resort: fusermount3 -u -z {p}")
            run(["fusermount3", "-u", "-z", str(p)], timeout=60)
        if args.keep:
            log(f"kept {base}")
        elif any(os.path.ismount(p) for p in still):
            log(f"NOT removing {base}: something is still mounted")
        else:
            shutil.rmtree(base, ignore_errors=True)

    summary = summarize(results)
    meta: dict[str, Any] = {
        "timestamp": started,
        "size_mib": args.size_mib,
        "files": len(ds.files),
        "dirs": len(ds.dirs),
        "tree_bytes": ds.tree_bytes,
        "repeat": args.repeat,
        "contenders": only,
        "unavailable": unavailable,
        "caches_dropped": caches,
        "loadavg_1_5_15": {"start": load_before, "end": os.getloadavg()},
        "workdir": str(args.workdir),
        "workdir_fs": fs_type(args.workdir.resolve()),
        "vaults": "gocryptfs -init -scryptn 10 / vaultsh init --scryptn 10 (defaults)",
        "versions": versions(),
        "units": "MB = 1e6 bytes; ratios are time ratios (a/b seconds, < 1 = a faster)",
    }
    text = markdown(summary, results, meta, unavailable)
    if profile_run is not None:
        text += profile_markdown(profile_run.profiles)
    print(text)
    payload = {
        "meta": meta,
        "summary": summary,
        "runs": {n: [asdict(r) for r in runs] for n, runs in results.items()},
        "profile": None if profile_run is None else asdict(profile_run),
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    log(f"wrote {args.results}")
    failed = any(r.status != "ok" or any(s.status != "ok" for s in r.steps.values())
                 for runs in results.values() for r in runs)  # fmt: skip
    return 1 if failed else 0


def fsbench_main(args: argparse.Namespace) -> int:
    """`--fsbench`: fsbench.sh alternated between gocryptfs and vaultsh (see fsbench_run.py)."""
    import fsbench_run

    args.vaultsh_trees = {}
    for spec in args.vaultsh_tree:
        label, sep, tree = spec.partition("=")
        if not sep or not label or not Path(tree, "vaultsh").is_dir():
            raise SystemExit(f"--vaultsh-tree {spec!r}: want LABEL=DIR with DIR/vaultsh a package")
        args.vaultsh_trees[label] = Path(tree).resolve()
    if args.fsbench_script is None:
        args.fsbench_script = fsbench_run.DEFAULT_SCRIPT
    # Bytecode first, as an installed package has it: a fresh checkout's first mount would
    # otherwise compile every module in the worker and peak ~2 MiB higher than later ones.
    for tree in args.vaultsh_trees.values() or [Path(__file__).resolve().parent.parent]:
        compile_cmd = [sys.executable, "-m", "compileall", "-q", str(tree / "vaultsh")]
        subprocess.run(compile_cmd, check=True, stdout=subprocess.DEVNULL)
    if (why := vaultsh_mount_unavailable()) is not None:
        raise SystemExit(f"vaultsh mount unavailable: {why}")
    base = args.workdir / f"fsbench-{dt.datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}"
    base.mkdir(parents=True)
    passfile = base / "passfile"
    passfile.write_text(os.urandom(16).hex() + "\n")
    passfile.chmod(0o600)
    try:
        text, payload, ok = fsbench_run.main(args, base, passfile)
    finally:
        if any(os.path.ismount(p) for p in base.glob("*/plain")) or args.keep:
            log(f"NOT removing {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    print(text)
    out = args.results.with_name("fsbench-latest.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2) + "\n")
    log(f"wrote {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
