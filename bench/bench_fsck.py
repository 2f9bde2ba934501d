#!/usr/bin/env python3
"""Benchmark: files/s of `vaultsh fsck` against `gocryptfs -fsck` on one 10,000-file vault.

Run from the repository root:

    .venv/bin/python bench/bench_fsck.py [--files 10000] [--repeat 3] [--cold] [--workdir DIR]

The vault is made by real `gocryptfs -init -scryptn 10` and filled through the Vault API with
small files (0-8 KiB, reproducible from --seed) in 100 directories, 5 % of them with names long
enough for a `.name` sidecar. Both checkers then run on the same ciphertext, each as a command
(wall clock: interpreter or binary start, scrypt unlock and the walk), best of --repeat runs;
the in-process `Checker` row excludes start and unlock. Both must report the vault clean.
With --cold (root only) the page cache is dropped before every timed run; else runs are warm.
Not part of the test suite: it times, and tests never do.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from vaultsh.vault import fsck  # noqa: E402
from vaultsh.vault.vault import Vault  # noqa: E402

PASSWORD = b"bench-fsck"


def build_vault(root: Path, files: int, seed: int) -> Vault:
    root.mkdir(parents=True)
    pw = root.parent / "passfile"
    subprocess.run(["gocryptfs", "-init", "-q", "-scryptn", "10", "-passfile", pw, root], check=True)
    v = Vault.open(root, password=PASSWORD)
    v.sync_metadata = False
    rng = random.Random(seed)
    dirs = [v.make_dir(root, f"dir-{d:03}", 0o755, "")[0] for d in range(100)]
    for i in range(files):
        cdir = dirs[i % len(dirs)]
        name = f"file-{i:05}" + ("-" + "long" * 50 if rng.random() < 0.05 else "") + ".dat"
        f, _ = v.create_at(cdir, name, 0o644, name)
        with f:
            size = rng.randrange(0, 8192)
            if size:
                f.write(0, rng.randbytes(size))
    return v


def drop_caches(cold: bool) -> None:
    if not cold:
        return
    subprocess.run(["sync"], check=True)
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def best_of(repeat: int, cold: bool, run: list[str | os.PathLike[str]], env: dict[str, str]) -> float:
    best = float("inf")
    for _ in range(repeat):
        drop_caches(cold)
        t0 = time.perf_counter()
        res = subprocess.run(run, capture_output=True, env=env, check=False)
        elapsed = time.perf_counter() - t0
        if res.returncode != 0:
            sys.exit(f"{run[0]} exited {res.returncode}:\n{res.stdout.decode()}{res.stderr.decode()}")
        best = min(best, elapsed)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cold", action="store_true", help="drop the page cache before each run (root)")
    ap.add_argument("--workdir", type=Path, help="scratch directory (default: a new temp dir)")
    args = ap.parse_args()
    if shutil.which("gocryptfs") is None:
        sys.exit("gocryptfs is not on PATH")
    work = Path(tempfile.mkdtemp(prefix="bench-fsck-", dir=args.workdir))
    try:
        pw = work / "passfile"
        pw.write_bytes(PASSWORD + b"\n")
        t0 = time.perf_counter()
        vault = build_vault(work / "cipher", args.files, args.seed)
        print(f"built {args.files} files in {time.perf_counter() - t0:.1f} s: {vault.cipherdir}")
        env = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")
        vaultsh: list[str | os.PathLike[str]] = [
            sys.executable,
            "-m",
            "vaultsh",
            "fsck",
            "--no-progress",
            "--passfile",
            pw,
            vault.cipherdir,
        ]
        gocryptfs: list[str | os.PathLike[str]] = [
            "gocryptfs",
            "-fsck",
            "-q",
            "-passfile",
            pw,
            vault.cipherdir,
        ]
        t_v = best_of(args.repeat, args.cold, vaultsh, env)
        t_g = best_of(args.repeat, args.cold, gocryptfs, env)
        best_api = float("inf")
        for _ in range(args.repeat):
            drop_caches(args.cold)
            t0 = time.perf_counter()
            checker = fsck.Checker(vault)
            problems = list(checker.run())
            best_api = min(best_api, time.perf_counter() - t0)
            if problems or checker.counts.files != args.files:
                sys.exit(f"in-process check is wrong: {problems[:3]}, {checker.counts}")
        n = args.files
        print(f"\n{n} files, {'cold' if args.cold else 'warm'} cache, best of {args.repeat}\n")
        print("| checker | seconds | files/s | vs gocryptfs -fsck |")
        print("|---|---:|---:|---:|")
        for label, t in (
            ("gocryptfs -fsck", t_g),
            ("vaultsh fsck (CLI)", t_v),
            ("fsck.Checker in-process", best_api),
        ):
            print(f"| {label} | {t:.2f} | {n / t:,.0f} | {t_g / t:.2f}x |")
        print(f"\nratio vaultsh fsck / gocryptfs -fsck (files/s): {t_g / t_v:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
