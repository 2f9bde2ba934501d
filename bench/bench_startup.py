#!/usr/bin/env python3
"""Benchmark: `vaultsh mount` against `gocryptfs` from the command line to "ready", and the daemon's RSS.

Run from the repository root (as root, or as a user who may mount FUSE):

    .venv/bin/python bench/bench_startup.py [--repeat 15] [--workdir DIR]
    # two versions of vaultsh under the same load, in one alternation:
    .venv/bin/python bench/bench_startup.py --vaultsh-tree before=/tmp/old-checkout --vaultsh-tree after=.

Both mount a vault made by `gocryptfs -init -scryptn 10` (so scrypt costs about a millisecond;
`--scryptn 16` is gocryptfs's default) with `-passfile`/`--passfile`, alternating, each run
timed from the start of the command to its "Filesystem mounted and ready." line. Each vaultsh
checkout is run both as `python -m vaultsh` and as the `vaultsh` script an installer writes
for the entry point in its pyproject.toml (`--entry` picks one). The daemon's VmRSS and
VmHWM are read right after that line, then the mount is undone with `fusermount3 -u` and the
daemon waited for. Prints medians (with the range) and the vaultsh / gocryptfs ratio, and the
load average, since the figures move with what else the machine runs.

vaultsh's own modules are compiled to bytecode first (`compileall`): with
PYTHONDONTWRITEBYTECODE set, as in some development shells, every run would otherwise compile
them from source, which an installed package never does.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
READY = b"Filesystem mounted and ready."
TIMEOUT = 30.0
GOAL_SECONDS = 0.15
GOAL_RSS_MIB = 30.0


@dataclass
class Samples:
    seconds: list[float] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)
    hwm_kib: list[int] = field(default_factory=list)


def env(tree: Path) -> dict[str, str]:
    """Our environment, with the checkout `tree` first on the import path."""
    e = dict(os.environ)
    e["PYTHONPATH"] = str(tree) + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    return e


def status_kib(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field_name} missing for pid {pid}")


# Prints the pid of the vaultsh worker serving the mountpoint given (its registry entry): a
# worker started before the command line was parsed does not carry the mountpoint in its own.
VAULTSH_PID = (
    "import sys; from pathlib import Path; from vaultsh.service import mounts; "
    "print(mounts.status(Path(sys.argv[1])).pid)"
)


def daemon_pid(mnt: Path, marker: bytes, tree: Path) -> int:
    """The FUSE daemon of `mnt`: gocryptfs's command line holds `marker` and the mountpoint;
    vaultsh's worker is named by the checkout `tree`'s own registry."""
    if marker != b"gocryptfs":
        cp = subprocess.run(
            [PY, "-c", VAULTSH_PID, str(mnt)], env=env(tree), cwd=tree, capture_output=True, text=True
        )
        if cp.returncode != 0:
            raise RuntimeError(f"no vaultsh worker found for {mnt}: {cp.stderr.strip()}")
        return int(cp.stdout)
    want = os.fsencode(mnt)
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and d.name != str(os.getpid()):
            with contextlib.suppress(OSError):
                argv = (d / "cmdline").read_bytes().split(b"\0")
                if want in argv and any(marker in a for a in argv):
                    return int(d.name)
    raise RuntimeError(f"no daemon found for {mnt}")


def mount_once(cmd: list[str], tree: Path, mnt: Path, marker: bytes, out: Samples) -> None:
    """Mount, time it to the ready line, read the daemon's memory, unmount. `python -m` puts
    its working directory first on the import path: it runs in `tree`, whose vaultsh is meant."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env(tree), cwd=tree)
    assert proc.stdout is not None
    line = b""
    while READY not in line and (chunk := proc.stdout.readline()):
        line = chunk  # gocryptfs says where it reads the password from first
    elapsed = time.perf_counter() - t0
    proc.stdout.read()
    proc.wait(TIMEOUT)
    if READY not in line or not os.path.ismount(mnt):
        raise RuntimeError(f"{' '.join(cmd)}: no ready line (rc {proc.returncode}): {line!r}")
    pid = daemon_pid(mnt, marker, tree)
    out.seconds.append(elapsed)
    out.rss_kib.append(status_kib(pid, "VmRSS"))
    out.hwm_kib.append(status_kib(pid, "VmHWM"))
    subprocess.run(["fusermount3", "-u", str(mnt)], check=True)
    deadline = time.monotonic() + TIMEOUT
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.01)


@contextlib.contextmanager
def workdir(base: Path | None) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="vaultsh-startup-", dir=base))
    try:
        yield path
    finally:
        for mnt in path.glob("mnt-*"):
            if os.path.ismount(mnt):
                subprocess.run(["fusermount3", "-u", "-z", str(mnt)], check=False)
        shutil.rmtree(path, ignore_errors=True)


def console_script(tree: Path, directory: Path) -> Path:
    """The `vaultsh` script as an installer writes it for the entry point in the checkout
    `tree`'s pyproject.toml (the checkout itself is found by PYTHONPATH, see env)."""
    entry = tomllib.loads((tree / "pyproject.toml").read_text())["project"]["scripts"]["vaultsh"]
    module, _, function = entry.partition(":")
    directory.mkdir()
    script = directory / "vaultsh"
    script.write_text(
        f"#!{PY}\nimport sys\nfrom {module} import {function}\n"
        f"if __name__ == '__main__':\n    sys.exit({function}())\n"
    )
    script.chmod(0o755)
    return script


def median_text(values: list[float], scale: float = 1.0, fmt: str = ".3f") -> str:
    v = [x * scale for x in values]
    return f"{statistics.median(v):{fmt}} ({min(v):{fmt}}–{max(v):{fmt}})"


def vaultsh_trees(specs: list[str]) -> dict[str, Path]:
    """NAME=DIR options as {name: checkout}; none: this checkout, named "vaultsh"."""
    trees = {}
    for spec in specs or ["vaultsh=" + str(REPO)]:
        name, sep, path = spec.partition("=")
        if not sep or not name or name == "gocryptfs" or not (Path(path) / "vaultsh").is_dir():
            raise SystemExit(f"--vaultsh-tree {spec!r}: want NAME=DIR, DIR holding a vaultsh package")
        trees[name] = Path(path).resolve()
    return trees


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=15, help="mounts of each (default 15)")
    p.add_argument("--workdir", type=Path, help="where the vaults go (default: the system temp dir)")
    p.add_argument("--vaultsh-tree", action="append", default=[], metavar="NAME=DIR",
                   help="a vaultsh checkout to time (repeatable; default: this one)")  # fmt: skip
    p.add_argument("--entry", choices=("both", "module", "script"), default="both",
                   help="run vaultsh as `python -m vaultsh`, as its installed script, or both")  # fmt: skip
    p.add_argument("--scryptn", type=int, default=10, help="the vaults' scrypt cost, log2 N (default 10)")
    args = p.parse_args(argv)
    trees = vaultsh_trees(args.vaultsh_tree)
    # Each run of vaultsh: (checkout, how it is started).
    runs = {
        f"{name} {entry}" if args.entry == "both" else name: (tree, entry)
        for name, tree in trees.items()
        for entry in (("module", "script") if args.entry == "both" else (args.entry,))
    }
    for tree in trees.values():
        subprocess.run(
            [PY, "-m", "compileall", "-q", str(tree / "vaultsh")], check=True, stdout=subprocess.DEVNULL
        )
    names = ["gocryptfs", *runs]
    results = {name: Samples() for name in names}
    with workdir(args.workdir) as root:
        passfile = root / "pw"
        passfile.write_text("startup-bench\n")
        commands: dict[str, tuple[list[str], Path, Path, bytes]] = {}
        for i, name in enumerate(names):
            cipher, mnt = root / f"cipher-{i}", root / f"mnt-{i}"
            cipher.mkdir()
            mnt.mkdir()
            init = ["gocryptfs", "-init", "-q", "-scryptn", str(args.scryptn), "-passfile", str(passfile)]
            subprocess.run([*init, str(cipher)], check=True)
            if name == "gocryptfs":
                cmd = ["gocryptfs", "-passfile", str(passfile), str(cipher), str(mnt)]
                commands[name] = (cmd, REPO, mnt, b"gocryptfs")
                continue
            tree, entry = runs[name]
            if entry == "module":
                start = [PY, "-m", "vaultsh"]
            else:
                start = [str(console_script(tree, root / f"bin-{i}"))]
            cmd = [*start, "mount", "--passfile", str(passfile), str(cipher), str(mnt)]
            commands[name] = (cmd, tree, mnt, b"vaultsh.fs.worker")
        for name in names:  # warm the page cache; not counted
            mount_once(*commands[name], Samples())
        for _ in range(args.repeat):
            for name in names:
                mount_once(*commands[name], results[name])
    go = results["gocryptfs"]
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"{args.repeat} mounts each, alternating, -scryptn {args.scryptn}; load average {load}; ", end="")
    print("median (min–max)\n")
    print("| | " + " | ".join(names) + " | " + " | ".join(f"{n} / gocryptfs" for n in runs) + " | goal |")
    print("|---|" + "---:|" * (len(names) + len(runs)) + "---:|")
    rows = (
        ("CLI to ready, s", "seconds", 1.0, ".3f", f"≤ {GOAL_SECONDS}"),
        ("daemon VmRSS at ready, MiB", "rss_kib", 1 / 1024, ".1f", f"≤ {GOAL_RSS_MIB:g}"),
        ("daemon VmHWM at ready, MiB", "hwm_kib", 1 / 1024, ".1f", f"≤ {GOAL_RSS_MIB:g}"),
    )
    for label, attr, scale, fmt, goal in rows:
        cells = [median_text(getattr(results[n], attr), scale, fmt) for n in names]
        base = statistics.median(getattr(go, attr))
        ratios = [f"{statistics.median(getattr(results[n], attr)) / base:.1f}×" for n in runs]
        print(f"| {label} | " + " | ".join(cells + ratios) + f" | {goal} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
