#!/usr/bin/env python3
"""Benchmark: a vaultsh reverse mount against `gocryptfs -reverse` on the same plain folder.

Run from the repository root:

    .venv/bin/python bench/bench_reverse.py [--size-mib 256] [--files 2000] [--repeat 3]
                                            [--vaultsh NAME=SRC ...] [--workdir DIR] [--keep]

One plain folder (a big file and a tree of small files) gets one `gocryptfs -init -reverse
-scryptn 10` config; every contender mounts that folder read-only in reverse mode with it, so
all of them must show the same bytes. `--vaultsh NAME=SRC` adds a vaultsh contender run from
the source tree SRC (e.g. an older checkout: `git archive REV | tar -x -C /tmp/old`); the
default is this checkout, named "vaultsh". Runs are interleaved (one mount of each contender
per round, a fresh mount each time) and the median of `--repeat` rounds is reported.

Steps per mount: a cold read of the big file (page cache dropped first), three more reads of
the unchanged big file (the cache a view may keep across opens), a cold read of every small
file, a second read of every small file, and the logrotate pattern (rename app.log to
app.log.1, write a new app.log, read both; checked against a fresh ReverseView). Every read is
checked (sha256 against the offline ReverseView of the same folder).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_export import (  # shared helpers
    MIB,
    PY,
    REPO,
    drop_caches,
    log,
    run,
    tail,
    unmount_and_reap,
    wait_mounted,
)

DEFAULT_WORKDIR = Path("/var/tmp/vaultsh-bench-reverse")
PASSWORD = b"bench-reverse"
STEPS = ("cold read", "warm re-read x3", "small cold", "small re-read", "logrotate")
STEP_LABEL = {
    "cold read": "read the big file (cold cache)",
    "warm re-read x3": "read the unchanged big file 3 more times",
    "small cold": "read every small file (cold cache)",
    "small re-read": "read every small file again",
    "logrotate": "rename app.log, new app.log, read both",
}


def env_for(src: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(src)
    env.update({"NO_COLOR": "1", "TERM": "dumb"})
    return env


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_plain(plain: Path, size_mib: int, files: int) -> None:
    plain.mkdir(parents=True)
    chunk = os.urandom(MIB)
    with open(plain / "big.bin", "wb") as f:
        for i in range(size_mib):
            f.write(chunk[i % 7 :] + chunk[: i % 7])
    for i in range(files):
        d = plain / "src" / f"d{i % 40:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"file{i:05d}.txt").write_bytes(os.urandom(200 + (i * 37) % 9000))
    (plain / "logs").mkdir()
    (plain / "logs" / "app.log").write_bytes(b"yesterday's line\n" * 20000)


class Contender:
    def __init__(self, name: str, argv: Callable[[Path, Path, Path], list[str]], env: dict[str, str]) -> None:
        self.name, self.argv, self.env = name, argv, env

    def mount(self, plain: Path, mnt: Path, passfile: Path) -> subprocess.Popen[bytes]:
        mnt.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile() as out:
            proc = subprocess.Popen(self.argv(plain, mnt, passfile), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=out, env=self.env, cwd=REPO)  # fmt: skip
            wait_mounted(mnt, proc, out, self.name)
        return proc


def unmount(mnt: Path, proc: subprocess.Popen[bytes]) -> None:
    unmount_and_reap(mnt, proc)
    time.sleep(0.2)  # a daemonized worker may still be closing its fds


def read_file(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def one_mount(c: Contender, plain: Path, mnt: Path, passfile: Path, expected: dict[str, str],
              small: list[str]) -> dict[str, float]:  # fmt: skip
    from vaultsh.vault.reverse import ReverseView

    def cipher(view: ReverseView, rel: str) -> str:
        out = ""
        for part in rel.split("/"):
            out = "/".join(filter(None, (out, view.encrypt_name(out, part)[0])))
        return out

    view = ReverseView.open(plain, password=PASSWORD)
    big = mnt / cipher(view, "big.bin")
    small_paths = [mnt / cipher(view, rel) for rel in small]
    times: dict[str, float] = {}
    proc = c.mount(plain, mnt, passfile)
    try:
        drop_caches()
        secs, data = timed(lambda: read_file(big))
        assert isinstance(data, bytes) and sha256(data) == expected["big.bin"], f"{c.name}: big.bin differs"
        times["cold read"] = secs
        times["warm re-read x3"], datas = timed(lambda: [read_file(big) for _ in range(3)])
        assert all(sha256(d) == expected["big.bin"] for d in datas), f"{c.name}: re-read differs"  # type: ignore[attr-defined]
        drop_caches()
        times["small cold"], got = timed(lambda: [read_file(p) for p in small_paths])
        assert [sha256(d) for d in got] == [expected[r] for r in small], f"{c.name}: small files differ"  # type: ignore[attr-defined]
        times["small re-read"], got = timed(lambda: [read_file(p) for p in small_paths])
        assert [sha256(d) for d in got] == [expected[r] for r in small], f"{c.name}: small re-read differs"  # type: ignore[attr-defined]
        read_file(mnt / cipher(view, "logs/app.log"))

        def rotate_and_read() -> list[bytes]:
            os.rename(plain / "logs" / "app.log", plain / "logs" / "app.log.1")
            (plain / "logs" / "app.log").write_bytes(b"today's line\n" * 3)
            return [read_file(mnt / cipher(view, rel)) for rel in ("logs/app.log.1", "logs/app.log")]

        times["logrotate"], rotated = timed(rotate_and_read)
        fresh = ReverseView.open(plain, password=PASSWORD)
        for rel, data in zip(("logs/app.log.1", "logs/app.log"), rotated, strict=True):  # type: ignore[call-overload]
            want = b"".join(fresh.iter_file(fresh.resolve(cipher(fresh, rel))))
            if data != want:
                log(f"WRONG BYTES: {c.name} served stale ciphertext for {rel}")
                times["logrotate"] = float("nan")
    finally:
        unmount(mnt, proc)
        os.replace(plain / "logs" / "app.log.1", plain / "logs" / "app.log")
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--vaultsh", action="append", default=[], metavar="NAME=SRC")
    ap.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    if shutil.which("gocryptfs") is None or shutil.which("fusermount3") is None:
        log("needs gocryptfs and fusermount3")
        return 2
    sources = [tuple(v.split("=", 1)) for v in args.vaultsh] or [("vaultsh", str(REPO))]

    def gocryptfs_argv(p: Path, m: Path, pf: Path) -> list[str]:
        return ["gocryptfs", "-fg", "-reverse", "-passfile", str(pf), str(p), str(m)]

    contenders = [Contender("gocryptfs", gocryptfs_argv, dict(os.environ))]
    for name, src in sources:
        contenders.append(Contender(name, lambda p, m, pf: [PY, "-m", "vaultsh", "mount", "--reverse", "--fg",
                                                            "--passfile", str(pf), str(p), str(m)],
                                    env_for(Path(src).resolve())))  # fmt: skip
    if args.workdir.exists():
        shutil.rmtree(args.workdir)
    plain = args.workdir / "plain"
    log(f"plain folder: {args.size_mib} MiB file + {args.files} small files in {plain}")
    make_plain(plain, args.size_mib, args.files)
    passfile = args.workdir / "pass"
    passfile.write_bytes(PASSWORD + b"\n")
    cp = run(["gocryptfs", "-init", "-reverse", "-scryptn", "10", "-passfile", str(passfile), str(plain)])
    if cp.returncode != 0:
        log(f"gocryptfs -init -reverse failed: {tail(cp.stderr)}")
        return 1
    from vaultsh.vault.reverse import ReverseView

    view = ReverseView.open(plain, password=PASSWORD)
    small = sorted(str(p.relative_to(plain)) for p in (plain / "src").rglob("*.txt"))
    expected: dict[str, str] = {}
    for rel in ["big.bin", *small]:
        entry = next(e for e in view.listdir(*_dir_of(view, rel)) if e.plain == rel)
        expected[rel] = sha256(b"".join(view.iter_file(entry)))
    results: dict[str, list[dict[str, float]]] = {c.name: [] for c in contenders}
    for rnd in range(args.repeat):
        for c in contenders:
            log(f"round {rnd + 1}/{args.repeat}: {c.name}")
            results[c.name].append(
                one_mount(c, plain, args.workdir / f"mnt-{c.name}", passfile, expected, small)
            )
    names = [c.name for c in contenders]
    head = "| step | " + " | ".join(f"{n} s" for n in names) + " | " + " | ".join(
        f"{n} / gocryptfs" for n in names[1:]) + " |"  # fmt: skip
    print(f"\nreverse mounts, median of {args.repeat} interleaved rounds; {args.size_mib} MiB file, "
          f"{args.files} small files\n")  # fmt: skip
    print(head)
    print("|" + "---|" + "---:|" * (2 * len(names) - 1))
    for step in STEPS:
        med = {n: statistics.median(r[step] for r in results[n]) for n in names}
        cells = [f"{med[n]:.3f}" for n in names] + [f"{med[n] / med['gocryptfs']:.2f}×" for n in names[1:]]
        print(f"| {STEP_LABEL[step]} | " + " | ".join(cells) + " |")
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)
    return 0


def _dir_of(view: object, rel: str) -> tuple[str, str]:
    """(cipher dir, plain dir) of the directory holding the plain relative path `rel`."""
    from vaultsh.vault.reverse import ReverseView

    assert isinstance(view, ReverseView)
    plain_dir = os.path.dirname(rel)
    cdir = ""
    for part in filter(None, plain_dir.split("/")):
        cdir = "/".join(filter(None, (cdir, view.encrypt_name(cdir, part)[0])))
    return cdir, plain_dir


if __name__ == "__main__":
    sys.exit(main())
