"""passwd and recover killed (SIGKILL) at every step that changes the vault: it always opens.

The command runs in a subprocess under a small driver that counts the file-system calls on the
vault from the first one that modifies something (Python audit events: opens, link, rename,
remove) and kills its own process just before the N-th one, for every N; more runs are killed
after random delays.
Afterwards the config must open with the old or the new password, never neither.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from gocryptfs_harness import vaultsh_env, write_passfile
from vault_factory import new_vault

from vaultsh.vault.config import load_config
from vaultsh.vault.errors import VaultError
from vaultsh.vault.keys import format_master_key

OLD = b"old password"
NEW = b"new password"

DRIVER = textwrap.dedent(
    """
    import os, signal, sys
    kill_at, root, count_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    seen = 0
    armed = False  # after the first change, reads count too (the kill after the last write)
    WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def hook(event, args):
        global seen, armed
        if event == "open":
            path, mode, flags = args
            changes = bool(flags & WRITES) or (isinstance(mode, str) and mode[:1] in "wax+")
        else:
            path = args[0] if args else None
            changes = event in ("os.rename", "os.link", "os.remove", "os.unlink")
        if not (changes or armed) or not isinstance(path, (str, bytes, os.PathLike)):
            return
        if not os.fsdecode(os.fspath(path)).startswith(root):
            return
        armed = True
        seen += 1
        with open(count_file, "w") as f:  # outside root: not counted
            f.write(str(seen))
        if seen == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    sys.addaudithook(hook)
    from vaultsh.cli import main
    sys.exit(main(sys.argv[4:]))
    """
)


def make_vault(root: Path) -> bytes:
    """A small vaultsh vault with the old password and a few files; returns its master key."""
    with new_vault(root, OLD) as vault:
        vault.mkdir("docs")
        vault.write_file("docs/a.txt", b"alpha" * 1000)
        vault.write_file("b.bin", os.urandom(5000))
        return vault.keys.master_key


def opens_with(root: Path, key: bytes) -> set[bytes]:
    """Which of the two passwords unlock the vault's config to its master key."""
    conf = load_config(root / "gocryptfs.conf")
    found = set()
    for pw in (OLD, NEW):
        try:
            if conf.decrypt_master_key(pw) == key:
                found.add(pw)
        except VaultError:
            pass
    return found


def driven(kill_at: int, root: Path, count_file: Path, args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(kill_at), str(root), str(count_file), *args],
        env=vaultsh_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def command(kind: str, root: Path, secrets: Path) -> list[str]:
    if kind == "passwd":
        return ["passwd", "--passfile", str(secrets / "old"), "--new-passfile", str(secrets / "new"),
                "--scryptn", "10", str(root)]  # fmt: skip
    return ["recover", "--masterkey-file", str(secrets / "key"), "--new-passfile", str(secrets / "new"),
            "--scryptn", "10", str(root)]  # fmt: skip


def pristine_vault(tmp_path: Path) -> tuple[Path, Path, bytes]:
    """A vault under the OLD password to copy for each run, and beside it the passfiles (old,
    new) and master key file (key) both commands read: (vault, secrets dir, master key)."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    write_passfile(secrets / "old", OLD)
    write_passfile(secrets / "new", NEW)
    pristine = tmp_path / "pristine"
    key = make_vault(pristine)
    (secrets / "key").write_text(format_master_key(key) + "\n")
    return pristine, secrets, key


def check_after_kill(root: Path, key: bytes) -> None:
    opens = opens_with(root, key)
    assert opens, f"after the kill neither password opens {root}: {sorted(os.listdir(root))}"
    # Whatever was kept as a backup is the old config, whole.
    for name in os.listdir(root):
        if name.startswith("gocryptfs.conf.bak") and not name.endswith(".tmp"):
            assert load_config(root / name).decrypt_master_key(OLD) == key


@pytest.mark.parametrize("kind", ["passwd", "recover"])
def test_killed_at_every_write_step(tmp_path: Path, kind: str) -> None:
    pristine, secrets, key = pristine_vault(tmp_path)

    # A full run first: how many modifying steps there are, and that it succeeds.
    full = tmp_path / "full"
    subprocess.run(["cp", "-a", pristine, full], check=True)
    counter = tmp_path / "count"
    proc = driven(0, full, counter, command(kind, full, secrets))
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    steps = int(counter.read_text())
    assert steps >= 2  # at least the backup link and the new config
    assert opens_with(full, key) == {NEW}

    outcomes = set()
    for n in range(1, steps + 1):
        root = tmp_path / f"kill-{n}"
        subprocess.run(["cp", "-a", pristine, root], check=True)
        proc = driven(n, root, tmp_path / f"count-{n}", command(kind, root, secrets))
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        check_after_kill(root, key)
        outcomes.add(frozenset(opens_with(root, key)))
    # Both sides of the switch were seen: the kills really landed before and after it.
    assert frozenset({OLD}) in outcomes and frozenset({NEW}) in outcomes


@pytest.mark.parametrize("kind", ["passwd", "recover"])
def test_killed_after_random_delays(tmp_path: Path, kind: str) -> None:
    pristine, secrets, key = pristine_vault(tmp_path)
    first = tmp_path / "first"
    subprocess.run(["cp", "-a", pristine, first], check=True)
    start = time.monotonic()
    proc = driven(0, first, tmp_path / "count", command(kind, first, secrets))
    proc.communicate(timeout=60)
    duration = time.monotonic() - start
    rng = random.Random(f"{kind}-crash")
    for i in range(12):
        root = tmp_path / f"run-{i}"
        subprocess.run(["cp", "-a", pristine, root], check=True)
        proc = driven(0, root, tmp_path / f"count-{i}", command(kind, root, secrets))
        try:
            proc.wait(timeout=rng.uniform(0.5, 1.1) * duration)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        check_after_kill(root, key)
