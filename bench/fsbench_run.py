"""The canonical fsbench.sh run on gocryptfs and vaultsh mounts, alternated, with vaultsh/gocryptfs ratios.

Used by `bench_mount.py --fsbench`: gocryptfs, vaultsh, gocryptfs (and so on with --repeat),
each on a fresh vault and mount, so every vaultsh run has a gocryptfs run right before and
right after it under the same machine load; a ratio is taken against each neighbour.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bench_mount
from bench_export import PY, REPO, log, tail
from bench_mount import GocryptfsTarget, Target, TargetError, VaultshTarget, cpu_seconds

DEFAULT_SCRIPT = Path(os.environ.get("FSBENCH", "/work/shared/bench/fsbench.sh"))
# fsbench.sh figures: name -> (label, unit, higher is better)
FIGURES = {
    "seq_write": ("seq write, 128 KiB writes + fsync", "MB/s", True),
    "seq_read": ("seq read, cold", "MB/s", True),
    "untar": ("untar", "s", False),
    "ls_lR": ("ls -lR, cold", "s", False),
    "cat_all": ("cat all, cold", "s", False),
    "rm_rf": ("rm -rf", "s", False),
}
# Goal per figure as a vaultsh/gocryptfs ratio of throughput (higher is better) or of time.
GOALS = {"seq_write": ">= 1.0", "seq_read": ">= 1.0", "untar": "<= 1.0", "ls_lR": "<= 1.0",
         "cat_all": "<= 1.0", "rm_rf": "<= 1.0"}  # fmt: skip
TARGETS: dict[str, type[Target]] = {"gocryptfs": GocryptfsTarget, "vaultsh": VaultshTarget}


@dataclass
class FsbenchRun:
    name: str
    index: int
    figures: dict[str, float] = field(default_factory=dict)
    mount_s: float | None = None
    peak_rss_kib: int | None = None
    daemon_cpu_s: float | None = None
    load_1min: float = 0.0
    error: str = ""


def stdlib_tarball(dest: Path) -> tuple[Path, int]:
    """A tar of the benchmark interpreter's standard library (no bytecode caches, no
    site-packages): about 2,500 entries of real source. Returns the path and the entry count."""
    cp = subprocess.run([PY, "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
                        capture_output=True, text=True, check=True)  # fmt: skip
    stdlib = Path(cp.stdout.strip())
    tarball = dest / "pylib.tar"

    # Members are named "./...", as fsbench.sh's entry count (`find .` of the tree) expects.
    subprocess.run(["tar", "-C", str(stdlib), "--exclude=__pycache__", "--exclude=site-packages",
                    "-cf", str(tarball), "."], check=True)  # fmt: skip
    with tarfile.open(tarball) as tar:
        entries = len({name.rstrip("/") for name in tar.getnames()})
    return tarball, entries


def parse_figures(stdout: str) -> dict[str, float]:
    """fsbench.sh prints one `name value unit` line per figure."""
    out: dict[str, float] = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in FIGURES:
            out[parts[0]] = float(parts[1])
    return out


@contextlib.contextmanager
def vaultsh_from(tree: Path | None) -> Iterator[None]:
    """Run the vaultsh CLI (and so its worker) from another source tree for a while."""
    if tree is None:
        yield
        return
    # Replaced where bench_mount looks it up, so every command it runs sees the other tree.
    # Commands run as `python -m vaultsh` in this repository, and `-m` puts the current
    # directory before PYTHONPATH: PYTHONSAFEPATH keeps it out, else every "tree" is this one.
    original: Callable[[], dict[str, str]] = getattr(bench_mount, "subprocess_env")  # noqa: B009
    env = {**original(), "PYTHONPATH": str(tree), "PYTHONSAFEPATH": "1"}
    cp = subprocess.run([PY, "-c", "import vaultsh; print(vaultsh.__file__)"],
                        capture_output=True, text=True, env=env, cwd=REPO,
                        check=True)  # fmt: skip
    if not Path(cp.stdout.strip()).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"--vaultsh-tree {tree}: commands would import vaultsh from {cp.stdout.strip()}")
    setattr(bench_mount, "subprocess_env", lambda: dict(env))  # noqa: B010
    try:
        yield
    finally:
        setattr(bench_mount, "subprocess_env", original)  # noqa: B010


def run_fsbench(name: str, index: int, base: Path, passfile: Path, tarball: Path,
                args: argparse.Namespace) -> FsbenchRun:  # fmt: skip
    result = FsbenchRun(name, index, load_1min=os.getloadavg()[0])
    root = base / f"{index:02d}-{name.replace('/', '_')}"
    kind, _, label = name.partition(":")
    target = TARGETS[kind](root, passfile)
    with vaultsh_from(args.vaultsh_trees.get(label) if label else None):
        _run_on(target, result, tarball, args)
    status = result.error or " ".join(f"{k}={v:g}" for k, v in result.figures.items())
    log(f"{name} #{index}: {status}")
    return result


def _run_on(target: Target, result: FsbenchRun, tarball: Path, args: argparse.Namespace) -> None:
    root = target.root
    try:
        result.mount_s = target.setup()
        cpu0 = cpu_seconds(target.daemon_pid)
        env = {**os.environ, "SIZE_MB": str(args.fsbench_size_mb)}
        cp = subprocess.run(["bash", str(args.fsbench_script), str(target.plain), str(tarball)],
                            capture_output=True, text=True, env=env, timeout=args.step_timeout)  # fmt: skip
        cpu1 = cpu_seconds(target.daemon_pid)
        if cpu0 is not None and cpu1 is not None:
            result.daemon_cpu_s = cpu1 - cpu0
        result.peak_rss_kib = target.peak_rss_kib()
        result.figures = parse_figures(cp.stdout)
        if cp.returncode != 0 or set(result.figures) != set(FIGURES):
            result.error = f"fsbench.sh rc {cp.returncode}: {tail(cp.stderr)}"
    except (TargetError, subprocess.TimeoutExpired, OSError) as e:
        result.error = str(e)
    finally:
        target.teardown()
        if not os.path.ismount(target.plain):
            shutil.rmtree(root, ignore_errors=True)


def ratio(figure: str, vaultsh: float, gocryptfs: float) -> float | None:
    """vaultsh relative to gocryptfs: throughput ratio for MB/s figures, time ratio for seconds."""
    if not vaultsh or not gocryptfs:
        return None
    return vaultsh / gocryptfs


def neighbour_ratios(runs: list[FsbenchRun], name: str, figure: str) -> list[float]:
    """Each run of `name` against the nearest gocryptfs run before and after it."""
    out: list[float] = []
    for i, r in enumerate(runs):
        if r.name != name or r.error:
            continue
        before = next((g for g in reversed(runs[:i]) if g.name == "gocryptfs"), None)
        after = next((g for g in runs[i + 1 :] if g.name == "gocryptfs"), None)
        for g in (before, after):
            if g is not None and not g.error:
                x = ratio(figure, r.figures[figure], g.figures[figure])
                if x is not None:
                    out.append(x)
    return out


def span(values: list[float], fmt: str = "{:.2f}") -> str:
    if not values:
        return "–"
    lo, hi = min(values), max(values)
    return fmt.format(lo) if abs(hi - lo) < 0.005 else f"{fmt.format(lo)}–{fmt.format(hi)}"


def markdown(runs: list[FsbenchRun], meta: dict[str, Any]) -> str:
    lines = [
        f"## fsbench.sh: gocryptfs vs vaultsh ({meta['timestamp']})",
        "",
        f"{meta['entries']} tar entries (the interpreter's stdlib), {meta['size_mb']} MB sequential file; "
        f"order {' → '.join(r.name for r in runs)}; load average (1 min) {span(meta['loads'], '{:.1f}')} "
        f"during the runs on {os.cpu_count()} CPUs.",
        "",
    ]
    names = list(dict.fromkeys(r.name for r in runs if r.name != "gocryptfs"))
    head = "| step | unit | gocryptfs | " + " | ".join(f"{n} | {n} / gocryptfs" for n in names) + " | goal |"
    lines += [head, "|---|---|---:|" + "---:|---:|" * len(names) + "---|"]
    ok = [r for r in runs if not r.error]
    for fig, (label, unit, higher) in FIGURES.items():
        kind = "× throughput" if higher else "× time"
        fmt = "{:.1f}" if higher else "{:.2f}"
        cells = [span([r.figures[fig] for r in ok if r.name == "gocryptfs"], fmt)]
        for n in names:
            cells.append(span([r.figures[fig] for r in ok if r.name == n], fmt))
            cells.append(span(neighbour_ratios(runs, n, fig)) + kind)
        lines.append(f"| {label} | {unit} | " + " | ".join(cells) + f" | {GOALS[fig]} |")
    extras: tuple[tuple[str, Callable[[FsbenchRun], float | None], str], ...] = (
        ("mount time", lambda r: r.mount_s, "{:.2f} s"),
        ("daemon CPU (user+sys)", lambda r: r.daemon_cpu_s, "{:.1f} s"),
        (
            "daemon peak RSS",
            lambda r: None if r.peak_rss_kib is None else r.peak_rss_kib / 1024,
            "{:.1f} MiB",
        ),
    )
    for what, get, fmt in extras:
        cells = [span([x for r in ok if r.name == "gocryptfs" and (x := get(r)) is not None], fmt)]
        for n in names:
            cells += [span([x for r in ok if r.name == n and (x := get(r)) is not None], fmt), ""]
        lines.append(f"| {what} | | " + " | ".join(cells) + " | |")
    failed = [r for r in runs if r.error]
    if failed:
        lines += ["", "Failed runs:"] + [f"- {r.name} #{r.index}: {r.error}" for r in failed]
    return "\n".join(lines) + "\n"


def main(args: argparse.Namespace, base: Path, passfile: Path) -> tuple[str, dict[str, Any], bool]:
    """Run the alternation; returns the Markdown table, the JSON payload and whether all passed."""
    if not args.fsbench_script.is_file():
        raise SystemExit(f"{args.fsbench_script}: fsbench.sh not found (set --fsbench-script)")
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    tarball, entries = stdlib_tarball(base)
    log(f"tarball {tarball}: {entries} entries")
    vaultsh_names = [f"vaultsh:{label}" for label in args.vaultsh_trees] or ["vaultsh"]
    order = ["gocryptfs"] + [*vaultsh_names, "gocryptfs"] * args.repeat
    runs = [run_fsbench(name, i, base, passfile, tarball, args) for i, name in enumerate(order)]
    loads = [r.load_1min for r in runs] + [os.getloadavg()[0]]
    meta = {"timestamp": started, "entries": entries, "size_mb": args.fsbench_size_mb, "loads": loads}
    payload = {"meta": meta, "runs": [r.__dict__ for r in runs]}
    return markdown(runs, meta), payload, not any(r.error for r in runs)
