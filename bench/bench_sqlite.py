#!/usr/bin/env python3
"""Benchmark: SQLite inserts on a vaultsh forward mount against gocryptfs and the raw directory.

Run from the repository root:

    .venv/bin/python bench/bench_sqlite.py [--rows 50000] [--batch 100] [--repeat 3]
                                           [--modes wal,delete] [--vaultsh NAME=SRC ...]
                                           [--workdir DIR] [--count] [--keep]

Each round mounts every contender afresh -- a plain directory on the same disk (no FUSE), a
forward gocryptfs mount of a new vault (`gocryptfs -init -scryptn 10`) and a forward `vaultsh
mount` of a new vault -- and runs, per journal mode (WAL and DELETE, the rollback journal),
Python's sqlite3 on a new database there: `--rows` inserts of about 150 bytes each, committed
every `--batch` rows (SQLite's default synchronous=FULL, so every commit fsyncs), then a full
read back (checked: row count and a checksum of every row). Rounds are interleaved, the
median of `--repeat` is reported with time ratios against gocryptfs (< 1: faster).
`--vaultsh NAME=SRC` runs vaultsh from the source tree SRC (e.g. an older checkout, from `git
archive REV vaultsh | tar -x -C DIR`), repeatable, to compare versions in one run.

`--count` instead serves a vaultsh ForwardOperations in a child process of this one and
prints how many FUSE requests of each kind one run of each journal mode makes, with the time
spent in each handler: where the time goes.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_export import (  # shared helpers
    MOUNT_TIMEOUT,
    PY,
    REPO,
    log,
    run,
    tail,
    unmount_and_reap,
    wait_mounted,
)

DEFAULT_WORKDIR = Path("/var/tmp/vaultsh-bench-sqlite")
PASSWORD = b"bench-sqlite"
MODES = {"wal": "WAL", "delete": "DELETE"}


# -- the workload -----------------------------------------------------------------------------


def rows(n: int, seed: int = 50_000) -> Iterator[tuple[int, str, float, bytes]]:
    rng = random.Random(seed)
    for i in range(n):
        yield i, f"name-{i:06d}-{rng.getrandbits(32):08x}", rng.random() * 1e6, rng.randbytes(100)


def expected_digest(n: int) -> str:
    h = hashlib.sha256()
    for row in rows(n):
        h.update(repr(row).encode())
    return h.hexdigest()


def sqlite_inserts(directory: Path, mode: str, n: int, batch: int) -> float:
    """Seconds for `n` inserts in transactions of `batch` rows on a new database in `directory`."""
    db = directory / f"bench-{mode.lower()}.db"
    with contextlib.suppress(FileNotFoundError):
        db.unlink()
    t0 = time.perf_counter()
    con = sqlite3.connect(db)
    try:
        got = con.execute(f"PRAGMA journal_mode={mode}").fetchone()[0]
        if got.upper() != mode:
            raise RuntimeError(f"journal_mode={mode} refused (got {got})")
        con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, value REAL, payload BLOB)")
        con.execute("CREATE INDEX t_name ON t (name)")
        con.commit()
        pending = 0
        for row in rows(n):
            con.execute("INSERT INTO t VALUES (?, ?, ?, ?)", row)
            pending += 1
            if pending == batch:
                con.commit()
                pending = 0
        con.commit()
    finally:
        con.close()
    return time.perf_counter() - t0


def check_database(directory: Path, mode: str, n: int, digest: str) -> None:
    con = sqlite3.connect(directory / f"bench-{mode.lower()}.db")
    try:
        h = hashlib.sha256()
        count = 0
        for row in con.execute("SELECT id, name, value, payload FROM t ORDER BY id"):
            h.update(repr(tuple(row)).encode())
            count += 1
        if (count, h.hexdigest()) != (n, digest):
            raise RuntimeError(f"{directory}: database read back wrong ({count} rows)")
        if con.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise RuntimeError(f"{directory}: integrity_check failed")
    finally:
        con.close()


# -- contenders -------------------------------------------------------------------------------


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its descendants (0 for those gone)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total


class Contender:
    """A place to run the workload in: set up, mount, unmount."""

    def __init__(self, name: str, src: Path | None = None) -> None:
        self.name = name
        self.src = src  # vaultsh source tree, None for raw and gocryptfs
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.src is not None:
            env["PYTHONPATH"] = str(self.src)
        return env

    def start(self, root: Path, passfile: Path) -> Path:
        if self.name == "raw":
            (root / "raw").mkdir(parents=True)
            return root / "raw"
        cipher, mnt = root / "cipher", root / "mnt"
        cipher.mkdir(parents=True)
        mnt.mkdir()
        if self.src is None:
            init = ["gocryptfs", "-init", "-scryptn", "10", "-passfile", str(passfile), str(cipher)]
            mount = ["gocryptfs", "-fg", "-passfile", str(passfile), str(cipher), str(mnt)]
        else:
            init = [PY, "-m", "vaultsh", "init", "--scryptn", "10", "--passfile", str(passfile), str(cipher)]
            mount = [PY, "-m", "vaultsh", "mount", "--fg", "--passfile", str(passfile), str(cipher), str(mnt)]
        cp = run(init, env=self.env(), cwd=REPO, timeout=120)
        if cp.returncode != 0:
            raise RuntimeError(f"{self.name}: init failed: {tail(cp.stderr)}")
        with tempfile.TemporaryFile() as out:
            self.proc = subprocess.Popen(mount, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         env=self.env(), cwd=REPO)  # fmt: skip
            wait_mounted(mnt, self.proc, out, self.name)
        return mnt

    def stop(self, root: Path) -> None:
        if self.proc is None:
            return
        unmount_and_reap(root / "mnt", self.proc)
        self.proc = None


# -- counting requests ------------------------------------------------------------------------


def count_requests(workdir: Path, modes: list[str], n: int, batch: int) -> int:
    """Serve ForwardOperations (this checkout) in a child; count requests per kind and mode."""
    import json

    from vaultsh.vault.vault import Vault

    for mode in modes:
        root = workdir / f"count-{mode}"
        shutil.rmtree(root, ignore_errors=True)
        (root / "cipher").mkdir(parents=True)
        (root / "mnt").mkdir()
        Vault.init(root / "cipher", PASSWORD, logn=10)
        report = root / "counts.json"
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                serve_counting(root, report)
            except BaseException:
                import traceback

                traceback.print_exc()
                code = 1
            os._exit(code)
        try:
            end = time.monotonic() + MOUNT_TIMEOUT
            while not os.path.ismount(root / "mnt"):
                if time.monotonic() > end or os.waitpid(pid, os.WNOHANG)[0]:
                    raise RuntimeError("counting mount did not come up")
                time.sleep(0.01)
            secs = sqlite_inserts(root / "mnt", MODES[mode], n, batch)
        finally:
            run(["fusermount3", "-u", str(root / "mnt")])
            os.waitpid(pid, 0)
        counts = json.loads(report.read_text())
        total = sum(c for c, _ in counts.values())
        print(f"\n{MODES[mode]}: {n} inserts in batches of {batch}: {secs:.2f} s, {total} requests")
        print("| request | count | per insert | handler time s | µs each |")
        print("|---|---:|---:|---:|---:|")
        for name, (count, spent) in sorted(counts.items(), key=lambda kv: -kv[1][1]):
            print(f"| {name} | {count} | {count / n:.2f} | {spent:.3f} | {1e6 * spent / count:.0f} |")
    return 0


def serve_counting(root: Path, report: Path) -> None:
    import json

    import pyfuse3
    import trio

    from vaultsh.fs.forward import FORWARD_MOUNT_OPTIONS, ForwardOperations
    from vaultsh.vault.vault import Vault

    counts: dict[str, list[float]] = {}
    ops = ForwardOperations(Vault.open(root / "cipher", password=PASSWORD))
    for name in dir(pyfuse3.Operations):
        if name.startswith("_") or name in ("init", "stacktrace"):
            continue
        method = getattr(ops, name)
        if not callable(method):
            continue

        def wrap(fn: Callable[..., Any], label: str) -> Callable[..., Any]:
            async def counted(*args: Any, **kwargs: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    slot = counts.setdefault(label, [0, 0.0])
                    slot[0] += 1
                    slot[1] += time.perf_counter() - t0

            return counted

        setattr(ops, name, wrap(method, name))
    pyfuse3.init(ops, str(root / "mnt"), {"fsname=bench-count", *FORWARD_MOUNT_OPTIONS})
    try:
        trio.run(pyfuse3.main)
    finally:
        pyfuse3.close(unmount=True)
        report.write_text(json.dumps(counts))


# -- main -------------------------------------------------------------------------------------


def print_tables(
    args: argparse.Namespace,
    modes: list[str],
    names: list[str],
    results: dict[tuple[str, str], list[float]],
    cpu: dict[tuple[str, str], list[float]],
) -> None:
    """Markdown: median wall seconds with ratios to gocryptfs, then the FUSE daemons' CPU."""
    vaultsh = [n for n in names if n not in ("raw", "gocryptfs")]
    print(f"\nSQLite, {args.rows} inserts in transactions of {args.batch}; median of {args.repeat} "
          "interleaved rounds (seconds; ratio = time / gocryptfs time)\n")  # fmt: skip
    print("| journal | " + " | ".join(names) + "".join(f" | {n} / gocryptfs" for n in vaultsh) + " |")
    print("|---|" + "---:|" * (len(names) + len(vaultsh)))
    for mode in modes:
        med = {n: statistics.median(results[(n, mode)]) for n in names}
        ratios = "".join(f" | {med[n] / med['gocryptfs']:.2f}×" for n in vaultsh if "gocryptfs" in med)
        print(f"| {MODES[mode]} | " + " | ".join(f"{med[n]:.2f}" for n in names) + ratios + " |")
    fuse = [n for n in names if n != "raw"]
    print("\nCPU seconds of the FUSE daemon (median; a busy disk moves them less than wall time)\n")
    print("| journal | " + " | ".join(fuse) + " |")
    print("|---|" + "---:|" * len(fuse))
    for mode in modes:
        print(
            f"| {MODES[mode]} | "
            + " | ".join(f"{statistics.median(cpu[(n, mode)]):.2f}" for n in fuse)
            + " |"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--modes", default="wal,delete")
    ap.add_argument("--vaultsh", action="append", default=[], metavar="NAME=SRC")
    ap.add_argument("--only", default="", help="comma list of contenders to run (raw,gocryptfs,NAME)")
    ap.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    ap.add_argument("--count", action="store_true", help="count FUSE requests instead of timing")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if any(m not in MODES for m in modes):
        ap.error(f"--modes: choose from {', '.join(MODES)}")
    if args.count:
        return count_requests(args.workdir, modes, args.rows, args.batch)
    sources = [tuple(v.split("=", 1)) for v in args.vaultsh] or [("vaultsh", str(REPO))]
    contenders = [Contender("raw"), Contender("gocryptfs")]
    contenders += [Contender(name, Path(src).resolve()) for name, src in sources]
    if args.only:
        keep = set(args.only.split(","))
        contenders = [c for c in contenders if c.name in keep]
    passfile = args.workdir / "pass"
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    passfile.write_bytes(PASSWORD + b"\n")
    digest = expected_digest(args.rows)
    results: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    for rnd in range(args.repeat):
        for c in contenders:
            root = args.workdir / f"{c.name}-{rnd}"
            where = c.start(root, passfile)
            try:
                for mode in modes:
                    cpu0 = tree_cpu_seconds(c.proc.pid) if c.proc else 0.0
                    secs = sqlite_inserts(where, MODES[mode], args.rows, args.batch)
                    daemon = (tree_cpu_seconds(c.proc.pid) - cpu0) if c.proc else 0.0
                    check_database(where, MODES[mode], args.rows, digest)
                    results.setdefault((c.name, mode), []).append(secs)
                    cpu.setdefault((c.name, mode), []).append(daemon)
                    log(f"round {rnd + 1}/{args.repeat} {c.name} {MODES[mode]}: {secs:.2f} s, "
                        f"FUSE daemon CPU {daemon:.2f} s")  # fmt: skip
            finally:
                c.stop(root)
                if not args.keep:
                    shutil.rmtree(root, ignore_errors=True)
    print_tables(args, modes, [c.name for c in contenders], results, cpu)
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
