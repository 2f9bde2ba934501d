"""`vaultsh mount / mounts / unmount` as a user types them: real worker, real kernel mount."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fuse_harness import force_unmount, require_fuse, wait_for
from gocryptfs_harness import gocryptfs_fsck
from vault_factory import NewVault

from vaultsh.vault.reverse import ReverseView
from vaultsh.vault.vault import Vault

PASSWORD = "mount test pw"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    require_fuse()
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    # A private runtime dir: parallel tests never see each other's mounts.
    return {**os.environ, "XDG_RUNTIME_DIR": str(run_dir)}


@pytest.fixture
def passfile(tmp_path: Path) -> Path:
    p = tmp_path / "pw"
    p.write_text(PASSWORD + "\n")
    return p


@pytest.fixture
def cipher(tmp_path: Path, new_vault: NewVault) -> Path:
    """A new, empty vault, closed: only the processes under test use it."""
    new_vault(tmp_path / "cipher", PASSWORD).close()
    return tmp_path / "cipher"


@pytest.fixture
def mnt(tmp_path: Path) -> Iterator[Path]:
    m = tmp_path / "mnt"
    m.mkdir()
    try:
        yield m
    finally:
        force_unmount(m)


def vaultsh(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vaultsh", *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_mount_write_list_unmount_then_gocryptfs_fsck(
    cipher: Path, env: dict[str, str], passfile: Path, mnt: Path, need_gocryptfs: None
) -> None:
    p = vaultsh(env, "mount", "--passfile", str(passfile), str(cipher), str(mnt))
    assert p.returncode == 0, p.stderr
    assert "ready" in p.stdout and os.path.ismount(mnt)
    (mnt / "docs").mkdir()
    (mnt / "docs" / "a note.txt").write_text("written through the mount\n")
    table = vaultsh(env, "mounts")
    assert table.returncode == 0
    assert str(mnt) in table.stdout and "forward" in table.stdout
    # A second mount on the same mountpoint is refused with gocryptfs's mountpoint code.
    again = vaultsh(env, "mount", "--passfile", str(passfile), str(cipher), str(mnt))
    assert again.returncode == 10 and len(again.stderr.strip().splitlines()) == 1
    p = vaultsh(env, "unmount", str(mnt))
    assert p.returncode == 0, p.stderr
    assert not os.path.ismount(mnt)
    assert str(mnt) not in vaultsh(env, "mounts").stdout
    v = Vault.open(cipher, password=PASSWORD.encode())
    assert v.read_file("docs/a note.txt") == b"written through the mount\n"
    code, output = gocryptfs_fsck(cipher, PASSWORD)
    assert code == 0, output


def test_a_background_mount_worker_keeps_no_terminal_and_logs_to_its_file(
    cipher: Path, env: dict[str, str], passfile: Path, mnt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vaultsh.mount_protocol import MountFiles
    from vaultsh.service import mounts

    # The worker starts before the command line is parsed, sharing its stderr: once it knows
    # the mount it moves to the log, else this call would wait for the pipe to close.
    p = vaultsh(env, "mount", "--passfile", str(passfile), str(cipher), str(mnt))
    assert p.returncode == 0 and p.stderr == "", p.stderr
    monkeypatch.setenv("XDG_RUNTIME_DIR", env["XDG_RUNTIME_DIR"])
    try:
        pid = mounts.status(mnt).pid
        fds = {n: os.readlink(f"/proc/{pid}/fd/{n}") for n in (0, 1, 2)}
        assert fds == {0: os.devnull, 1: os.devnull, 2: str(MountFiles.for_mountpoint(mnt).log)}
        assert (mnt / "ok").write_text("x") == 1
    finally:
        assert vaultsh(env, "unmount", str(mnt)).returncode == 0
    assert not MountFiles.for_mountpoint(mnt).log.exists()  # an empty log is not kept


def test_wrong_password_and_busy_mountpoint_fail_with_gocryptfs_codes(
    tmp_path: Path, cipher: Path, env: dict[str, str], mnt: Path
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not it\n")
    p = vaultsh(env, "mount", "--passfile", str(wrong), str(cipher), str(mnt))
    assert p.returncode == 12 and len(p.stderr.strip().splitlines()) == 1
    assert not os.path.ismount(mnt)
    (mnt / "something").write_text("x")
    right = tmp_path / "right"
    right.write_text(PASSWORD + "\n")
    p = vaultsh(env, "mount", "--passfile", str(right), str(cipher), str(mnt))
    assert p.returncode == 10, p.stderr
    assert "not empty" in p.stderr and str(mnt) in p.stderr
    assert PASSWORD not in p.stderr


def test_reverse_mount_shows_the_encrypted_view(
    tmp_path: Path, env: dict[str, str], passfile: Path, mnt: Path
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    p = vaultsh(env, "init", "--reverse", "--scryptn", "10", "--passfile", str(passfile), str(plain))
    assert p.returncode == 0, p.stderr
    (plain / "report.txt").write_text("quarterly numbers\n")
    (plain / "photos").mkdir()
    p = vaultsh(env, "mount", "--reverse", "--passfile", str(passfile), str(plain), str(mnt))
    assert p.returncode == 0, p.stderr
    try:
        view = ReverseView.open(plain, password=PASSWORD.encode())
        expected = {e.cipher_name for e in view.listdir("")}
        assert set(os.listdir(mnt)) == expected
        assert {"gocryptfs.conf", "gocryptfs.diriv"} <= expected
        with pytest.raises(OSError):
            (mnt / "new").write_text("read-only view")
        assert "reverse" in vaultsh(env, "mounts").stdout
    finally:
        assert vaultsh(env, "unmount", str(mnt)).returncode == 0
    assert not os.path.ismount(mnt)


def console_script_entry() -> tuple[str, str]:
    """(module, function) the installed `vaultsh` script runs, from pyproject.toml."""
    import tomllib

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    entry = tomllib.loads(pyproject.read_text())["project"]["scripts"]["vaultsh"]
    module, _, function = entry.partition(":")
    return module, function


def console_script(tmp_path: Path) -> Path:
    """The `vaultsh` script as an installer writes it for the entry point in pyproject.toml."""
    module, function = console_script_entry()
    script = tmp_path / "bin" / "vaultsh"
    script.parent.mkdir(exist_ok=True)
    script.write_text(
        f"#!{sys.executable}\nimport sys\nfrom {module} import {function}\n"
        f"if __name__ == '__main__':\n    sys.exit({function}())\n"
    )
    script.chmod(0o755)
    return script


# Runs `python -m vaultsh ARGS` (ENTRY "-m") or the installed script's entry point (ENTRY
# "module:function") and writes the names of the modules it ran when it exits to OUT, and those
# it had run when it was about to start the mount worker to OUT.spawn (a module registered for
# lazy loading but never used is still a `_LazyModule`).
RECORDING_CLI = """
import atexit, importlib, runpy, sys
from vaultsh.service import worker_start
out, entry = sys.argv.pop(1), sys.argv.pop(1)
def record(path):
    ran = [n for n, m in sys.modules.items() if type(m).__name__ != "_LazyModule"]
    open(path, "w").write("\\n".join(sorted(ran)))
def recording_argv(*args, real=worker_start.worker_argv, **kwargs):
    record(out + ".spawn")
    return real(*args, **kwargs)
worker_start.worker_argv = recording_argv
atexit.register(record, out)
sys.argv[0] = "vaultsh"
if entry == "-m":
    runpy.run_module("vaultsh", run_name="__main__", alter_sys=True)
else:
    module, _, function = entry.partition(":")
    sys.exit(getattr(importlib.import_module(module), function)())
"""


def mount_recording_modules(
    tmp_path: Path, cipher: Path, env: dict[str, str], passfile: Path, mnt: Path, entry: str = "-m"
) -> tuple[set[str], set[str]]:
    """Mount the new vault `cipher` by `vaultsh mount` (run as `entry`, see RECORDING_CLI) and
    unmount it: the modules the command had run by the time it started its worker, and by its
    exit."""
    record = tmp_path / "modules.txt"
    argv = [sys.executable, "-c", RECORDING_CLI, str(record), entry, "mount", "--passfile", str(passfile)]
    p = subprocess.run([*argv, str(cipher), str(mnt)], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert os.path.ismount(mnt)
    assert vaultsh(env, "unmount", str(mnt)).returncode == 0
    at_spawn = record.with_name(record.name + ".spawn")
    return set(at_spawn.read_text().split()), set(record.read_text().split())


def test_mount_command_loads_no_interface_or_offline_command_modules(
    tmp_path: Path, cipher: Path, env: dict[str, str], passfile: Path, mnt: Path
) -> None:
    _at_spawn, loaded = mount_recording_modules(tmp_path, cipher, env, passfile, mnt)
    assert "vaultsh.service.mounts" in loaded  # it did run the mount command
    assert sorted(loaded.intersection({"vaultsh.service.commands", "vaultsh.service.transfer"})) == []
    top_level = {name.partition(".")[0] for name in loaded}
    assert sorted(top_level.intersection({"textual", "rich", "prompt_toolkit", "trio", "pyfuse3"})) == []


@pytest.mark.parametrize("entry", ["-m", "console script"])
def test_mount_command_starts_its_worker_before_parsing_or_loading_its_modules(
    tmp_path: Path, cipher: Path, env: dict[str, str], passfile: Path, mnt: Path, entry: str
) -> None:
    if entry != "-m":
        entry = ":".join(console_script_entry())
    at_spawn, loaded = mount_recording_modules(tmp_path, cipher, env, passfile, mnt, entry)
    # The worker reads the config and unwraps the key with the password: the command itself
    # never loads the config or cipher modules.
    assert "vaultsh.service.mounts" in loaded
    never = {"cryptography", "nacl", "_hashlib", "vaultsh.vault.config", "vaultsh.crypto.kdf"}
    assert sorted(loaded.intersection(never)) == []
    later = {
        "argparse",
        "cryptography",
        "hashlib",
        "_hashlib",
        "logging",
        "subprocess",
        "vaultsh.cli",
        "vaultsh.mount_protocol",
        "vaultsh.service.mounts",
        "vaultsh.vault.config",
        "vaultsh.vault.keys",
    }
    assert "vaultsh.service.worker_start" in at_spawn
    assert sorted(at_spawn.intersection(later)) == []


@pytest.mark.parametrize(
    "words",
    [
        ["--version"],
        ["mount"],  # usage: no cipher dir
        ["mount", "--passfile", "PW", "MISSING", "MNT"],  # no such cipher dir
        ["mount", "--passfile", "WRONG", "CIPHER", "MNT"],  # wrong password
        ["mount", "--passfile", "PW", "--config", "MISSING", "CIPHER", "MNT"],  # no such config
        ["mount", "--passfile", "PW", "CIPHER", "CIPHER/x"],  # mountpoint missing
        ["no-such-command"],
    ],
)
def test_the_installed_script_and_python_m_behave_alike(
    tmp_path: Path, env: dict[str, str], passfile: Path, mnt: Path, words: list[str]
) -> None:
    cipher = tmp_path / "cipher"
    cipher.mkdir()
    Vault.init(cipher, PASSWORD.encode(), logn=10)
    wrong = tmp_path / "wrong"
    wrong.write_text("not the password\n")
    places = {"PW": passfile, "WRONG": wrong, "MISSING": tmp_path / "missing", "CIPHER": cipher, "MNT": mnt}
    argv = [str(places[w]) if w in places else w.replace("CIPHER", str(cipher)) for w in words]
    script = console_script(tmp_path)
    by_module = vaultsh(env, *argv)
    by_script = subprocess.run(
        [str(script), *argv], input="", env=env, capture_output=True, text=True, timeout=120
    )
    assert (by_script.returncode, by_script.stdout, by_script.stderr) == (
        by_module.returncode,
        by_module.stdout,
        by_module.stderr,
    )
    assert by_module.stdout or by_module.stderr  # each case says something


def test_mount_errors_keep_their_message_and_gocryptfs_code(
    tmp_path: Path, cipher: Path, env: dict[str, str], passfile: Path, mnt: Path
) -> None:
    conf = cipher / "gocryptfs.conf"
    wrong = tmp_path / "wrong"
    wrong.write_text("not it\n")
    missing_pw = tmp_path / "no-passfile"

    def mount(*words: str | Path) -> tuple[int, str]:
        p = vaultsh(env, "mount", *map(str, words), str(cipher), str(mnt))
        assert len(p.stderr.splitlines()) == 1 and "Traceback" not in p.stderr, p.stderr
        assert PASSWORD not in p.stderr and not os.path.ismount(mnt)
        return p.returncode, p.stderr

    assert mount("--passfile", wrong) == (12, "vaultsh: Password incorrect.\n")
    assert mount("--fg", "--passfile", wrong) == (12, "vaultsh: Password incorrect.\n")
    code, err = mount("--passfile", missing_pw)
    assert code == 9 and str(missing_pw) in err  # gocryptfs's code for an unreadable password
    saved = conf.read_bytes()
    conf.write_text('{"Version": 2, "Creator": "broken')
    code, err = mount("--passfile", passfile)
    assert code != 0 and str(conf) in err
    # As gocryptfs: the config is read first, so its error wins over the password file's.
    assert mount("--passfile", missing_pw) == (code, err)
    conf.unlink()
    code, err = mount("--passfile", passfile)
    assert code == 11 and f"{conf}: config file not found" in err
    assert mount("--passfile", missing_pw) == (code, err)
    conf.write_bytes(saved)
    assert mount("--passfile", passfile, "--config", tmp_path / "none.conf")[0] == 11
    assert vaultsh(env, "mounts").stdout.strip() in ("", "no mounts")
    assert [p.name for p in (Path(env["XDG_RUNTIME_DIR"]) / "vaultsh").iterdir()] == []


def _workers_marked(mark: str) -> list[int]:
    """Mount workers whose environment holds `mark` (started by one test's command)."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmdline = (d / "cmdline").read_bytes()
                environ = (d / "environ").read_bytes().split(b"\0")
                state = (d / "stat").read_bytes().rsplit(b")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if b"vaultsh.fs.worker" in cmdline and mark.encode() in environ and state != b"Z":
                found.append(int(d.name))
    return found


@pytest.mark.parametrize(
    "words",
    [
        ["mount", "--passfile", "PW", "MISSING", "MNT"],  # no such cipher dir
        ["mount", "--passfile", "PW", "--bogus", "CIPHER", "MNT"],  # usage error
        ["mount", "--passfile", "WRONG", "CIPHER", "MNT"],  # wrong password
        ["mount", "--passfile", "PW", "CIPHER", "CIPHER/x"],  # mountpoint missing
    ],
)
def test_a_mount_that_fails_leaves_no_worker_and_no_mount(
    tmp_path: Path, cipher: Path, env: dict[str, str], passfile: Path, mnt: Path, words: list[str]
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not the password\n")
    places = {"PW": passfile, "WRONG": wrong, "MISSING": tmp_path / "missing", "CIPHER": cipher, "MNT": mnt}
    argv = [str(places[w]) if w in places else w.replace("CIPHER", str(cipher)) for w in words]
    mark = f"VAULTSH_TEST_MARK={os.getpid()}-{tmp_path.name}"
    marked_env = {**env, mark.split("=")[0]: mark.split("=")[1]}
    p = vaultsh(marked_env, *argv)
    assert p.returncode != 0
    assert len(p.stderr.strip().splitlines()) <= 2, p.stderr  # the error (and argparse's usage)
    assert "Traceback" not in p.stderr
    wait_for(lambda: not _workers_marked(mark), "the worker started ahead to exit")
    assert not os.path.ismount(mnt)
    assert vaultsh(env, "mounts").stdout.strip() in ("", "no mounts")


def test_a_command_line_builds_only_its_subcommand_and_parses_as_the_whole_parser() -> None:
    import argparse

    from vaultsh import cli

    def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return dict(action.choices)

    whole = subparsers(cli.build_parser())
    for name in cli.COMMANDS:
        alone = subparsers(cli.build_parser(name))
        assert name in alone and len(set(map(id, alone.values()))) == 1, name
        assert alone[name].format_help() == whole[name].format_help(), name
    words = ["mount", "--ro", "--idle", "5m", "--passfile", "pw", "cipher", "mnt"]
    assert cli.build_parser("mount").parse_args(words) == cli.build_parser().parse_args(words)
