"""The offline CLI end to end: commands, secrets handling and gocryptfs exit codes (spec §11)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

KEY_RE = re.compile(r"^[0-9a-f]{8}(-[0-9a-f]{8}){7}$")


def run(*args: str, stdin: str | None = None, check: bool = False) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "vaultsh", *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"vaultsh {' '.join(args)} -> {proc.returncode}\n{proc.stderr}")
    return proc


@pytest.fixture
def pw(tmp_path: Path) -> Path:
    p = tmp_path / "pw"
    p.write_text("correct horse\n")
    return p


@pytest.fixture
def vault(tmp_path: Path, pw: Path) -> tuple[Path, str]:
    """A fresh vault with two files, a dir and a symlink; returns (cipherdir, master key)."""
    cdir = tmp_path / "cipher"
    cdir.mkdir()
    out = run("init", "--scryptn", "10", "--passfile", str(pw), str(cdir), check=True)
    key = out.stdout.strip()
    src = tmp_path / "src"
    (src / "docs").mkdir(parents=True)
    (src / "docs" / "notes.txt").write_text("hello vault\n")
    (src / "empty").write_bytes(b"")
    os.symlink("docs/notes.txt", src / "link")
    run("import", "--passfile", str(pw), f"{src}/", str(cdir), "/", check=True)
    return cdir, key


def test_init_prints_key_even_without_a_terminal(vault: tuple[Path, str]) -> None:
    cdir, key = vault
    assert KEY_RE.match(key), key
    conf = cdir / "gocryptfs.conf"
    assert oct(conf.stat().st_mode & 0o777) == "0o400"
    assert oct((cdir / "gocryptfs.diriv").stat().st_mode & 0o777) == "0o444"


def test_init_refuses_non_empty_dir_with_exit_6(tmp_path: Path, pw: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("x")
    p = run("init", "--scryptn", "10", "--passfile", str(pw), str(tmp_path / "d"))
    assert p.returncode == 6
    assert "not empty" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_init_names_a_missing_or_non_directory_target(tmp_path: Path, pw: Path) -> None:
    nope = tmp_path / "nope"
    p = run("init", "--scryptn", "10", "--passfile", str(pw), str(nope))
    assert p.returncode == 6
    assert p.stderr.strip() == f"vaultsh: {nope}: no such directory (make it first: mkdir {nope})"
    (tmp_path / "file").write_text("x")
    p = run("init", "--scryptn", "10", "--passfile", str(pw), str(tmp_path / "file"))
    assert p.returncode == 6
    assert p.stderr.strip() == f"vaultsh: {tmp_path / 'file'}: not a directory"
    assert not (tmp_path / "nope").exists() and (tmp_path / "file").read_text() == "x"


def test_info_and_missing_config(vault: tuple[Path, str], tmp_path: Path) -> None:
    cdir, _ = vault
    out = run("info", str(cdir), check=True).stdout.splitlines()
    assert out[0].startswith("Creator:           vaultsh ")
    assert out[1] == "FeatureFlags:      HKDF GCMIV128 DirIV EMENames LongNames Raw64"
    assert out[4] == "contentEncryption: AES-GCM-256"
    (tmp_path / "empty").mkdir()
    p = run("info", str(tmp_path / "empty"))
    assert p.returncode == 8


def test_ls_cat_and_paths(vault: tuple[Path, str], pw: Path) -> None:
    cdir, _ = vault
    ls = run("ls", "-R", "--passfile", str(pw), str(cdir), check=True).stdout
    assert "docs" in ls and "notes.txt" in ls and "link" in ls
    long = run("ls", "-l", "--passfile", str(pw), str(cdir), "docs", check=True).stdout
    assert re.search(r"-rw\S+\s+1\s+12 .* notes\.txt", long), long
    cat = run("cat", "--passfile", str(pw), str(cdir), "docs/notes.txt", check=True).stdout
    assert cat == "hello vault\n"
    enc = run("encrypt-paths", "--passfile", str(pw), str(cdir), "docs/notes.txt", check=True).stdout.strip()
    assert (cdir / enc).is_file()
    dec = run("decrypt-paths", "--passfile", str(pw), str(cdir), enc, check=True).stdout.strip()
    assert dec == "docs/notes.txt"


def test_wrong_password_exit_12(vault: tuple[Path, str], tmp_path: Path) -> None:
    cdir, _ = vault
    bad = tmp_path / "bad"
    bad.write_text("nope\n")
    p = run("ls", "--passfile", str(bad), str(cdir))
    assert p.returncode == 12
    assert p.stderr.strip() == "vaultsh: Password incorrect."


def test_password_from_stdin_and_extpass(vault: tuple[Path, str], tmp_path: Path) -> None:
    cdir, _ = vault
    p = run("cat", str(cdir), "docs/notes.txt", stdin="correct horse\n")
    assert p.returncode == 0 and p.stdout == "hello vault\n"
    script = tmp_path / "askpass.sh"
    script.write_text("#!/bin/sh\necho 'correct horse'\n")
    script.chmod(0o700)
    p = run("cat", "--extpass", str(script), str(cdir), "docs/notes.txt")
    assert p.returncode == 0 and p.stdout == "hello vault\n"


def test_empty_password_exit_9(vault: tuple[Path, str], tmp_path: Path) -> None:
    cdir, _ = vault
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert run("ls", "--passfile", str(empty), str(cdir)).returncode == 9
    assert run("ls", str(cdir), stdin="\n").returncode == 9


def test_passfile_and_extpass_together_is_usage_error(vault: tuple[Path, str], pw: Path) -> None:
    cdir, _ = vault
    assert run("ls", "--passfile", str(pw), "--extpass", "true", str(cdir)).returncode == 1


def test_masterkey_unlock_and_bad_key_exit_14(vault: tuple[Path, str], tmp_path: Path) -> None:
    cdir, key = vault
    p = run("cat", "--masterkey", "-", str(cdir), "docs/notes.txt", stdin=key + "\n")
    assert p.returncode == 0 and p.stdout == "hello vault\n"
    kf = tmp_path / "key"
    kf.write_text(key)
    p = run("cat", "--masterkey-file", str(kf), str(cdir), "docs/notes.txt")
    assert p.stdout == "hello vault\n"
    assert run("ls", "--masterkey", "-", str(cdir), stdin="abcd\n").returncode == 14
    shown = run("masterkey", "--passfile", str(tmp_path / "pw"), str(cdir), check=True).stdout.strip()
    assert shown == key


def test_masterkey_without_config_uses_flags(vault: tuple[Path, str], tmp_path: Path) -> None:
    """Recovery: with gocryptfs.conf gone, the master key and format flags still open it."""
    cdir, key = vault
    os.chmod(cdir / "gocryptfs.conf", 0o600)
    (cdir / "gocryptfs.conf").unlink()
    p = run("cat", "--masterkey", "-", str(cdir), "docs/notes.txt", stdin=key)
    assert p.returncode == 0 and p.stdout == "hello vault\n"


def test_passwd_keeps_backup_and_changes_password(vault: tuple[Path, str], tmp_path: Path, pw: Path) -> None:
    cdir, key = vault
    new = tmp_path / "new"
    new.write_text("new secret\n")
    old_conf = json.loads((cdir / "gocryptfs.conf").read_text())
    run("passwd", "--passfile", str(pw), "--new-passfile", str(new), str(cdir), check=True)
    conf = json.loads((cdir / "gocryptfs.conf").read_text())
    assert conf["FeatureFlags"] == old_conf["FeatureFlags"]
    assert conf["ScryptObject"]["Salt"] != old_conf["ScryptObject"]["Salt"]
    assert (cdir / "gocryptfs.conf.bak").exists()
    assert run("ls", "--passfile", str(pw), str(cdir)).returncode == 12
    assert run("ls", "--passfile", str(new), str(cdir)).returncode == 0
    # passwd --masterkey refuses to overwrite an existing .bak (gocryptfs: exit 7).
    kf = tmp_path / "key"
    kf.write_text(key)
    p = run("passwd", "--masterkey-file", str(kf), "--new-passfile", str(pw), str(cdir))
    assert p.returncode == 7
    (cdir / "gocryptfs.conf.bak").unlink()
    run("passwd", "--masterkey-file", str(kf), "--new-passfile", str(pw), str(cdir), check=True)
    assert run("ls", "--passfile", str(pw), str(cdir)).returncode == 0


def test_passwd_with_a_foreign_master_key_is_refused(
    vault: tuple[Path, str], tmp_path: Path, pw: Path
) -> None:
    cdir, _ = vault
    before = (cdir / "gocryptfs.conf").read_bytes()
    kf = tmp_path / "key"
    kf.write_text("-".join(["00112233"] * 8))
    p = run("passwd", "--masterkey-file", str(kf), "--new-passfile", str(pw), str(cdir))
    assert p.returncode == 14
    assert (cdir / "gocryptfs.conf").read_bytes() == before


def test_export_import_round_trip_keeps_metadata(vault: tuple[Path, str], tmp_path: Path, pw: Path) -> None:
    cdir, _ = vault
    out = tmp_path / "out"
    run("export", "--passfile", str(pw), str(cdir), "/", str(out), check=True)
    src = tmp_path / "src"
    for rel in ("docs/notes.txt", "empty"):
        assert (out / rel).read_bytes() == (src / rel).read_bytes()
        assert (out / rel).stat().st_mtime_ns == (src / rel).stat().st_mtime_ns
        assert (out / rel).stat().st_mode == (src / rel).stat().st_mode
    assert os.readlink(out / "link") == "docs/notes.txt"
    # Exporting into an existing directory puts the entry under its own name, like cp.
    into = tmp_path / "into"
    into.mkdir()
    run("export", "--passfile", str(pw), str(cdir), "docs", str(into), check=True)
    assert (into / "docs" / "notes.txt").read_text() == "hello vault\n"
    p = run("export", "--passfile", str(pw), str(cdir), "docs", str(into))
    assert p.returncode == 11 and "already exists" in p.stderr
    # Importing over an existing name is refused.
    p = run("import", "--passfile", str(pw), str(src / "empty"), str(cdir), "empty")
    assert p.returncode != 0 and "already exists" in p.stderr


def test_tampered_file_is_reported_and_not_left_half_written(
    vault: tuple[Path, str], tmp_path: Path, pw: Path
) -> None:
    cdir, _ = vault
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024))
    run("import", "--passfile", str(pw), str(big), str(cdir), "big.bin", check=True)
    enc = run("encrypt-paths", "--passfile", str(pw), str(cdir), "big.bin", check=True).stdout.strip()
    cfile = cdir / enc
    data = bytearray(cfile.read_bytes())
    data[2 * 1024 * 1024] ^= 0x01  # a byte in the middle of the third MiB
    cfile.write_bytes(data)
    dest = tmp_path / "exp"
    dest.mkdir()
    p = run("export", "--passfile", str(pw), str(cdir), "big.bin", str(dest))
    assert p.returncode == 26
    assert "big.bin" in p.stderr and "failed authentication" in p.stderr
    assert list(dest.iterdir()) == []  # no partial file, no temporary left behind
    whole = tmp_path / "whole"
    p = run("export", "--passfile", str(pw), str(cdir), "/", str(whole))
    assert p.returncode == 26
    assert (whole / "docs" / "notes.txt").read_text() == "hello vault\n"  # the rest is exported
    assert sorted(x.name for x in whole.iterdir()) == ["docs", "empty", "link"]


def test_corrupt_config_exit_codes(tmp_path: Path, pw: Path) -> None:
    cdir = tmp_path / "c"
    cdir.mkdir()
    run("init", "--scryptn", "10", "--passfile", str(pw), str(cdir), check=True)
    conf = cdir / "gocryptfs.conf"
    obj = json.loads(conf.read_text())
    os.chmod(conf, 0o600)
    obj["FeatureFlags"].append("StrangeFeatureFlag")
    conf.write_text(json.dumps(obj))
    assert run("ls", "--passfile", str(pw), str(cdir)).returncode == 27
    conf.write_text("{not json")
    assert run("ls", "--passfile", str(pw), str(cdir)).returncode == 11
    conf.unlink()
    p = run("ls", "--passfile", str(pw), str(cdir))
    assert p.returncode == 11 and "gocryptfs.conf" in p.stderr


def test_fido2_vault_is_refused_clearly(tmp_path: Path, pw: Path) -> None:
    cdir = tmp_path / "c"
    cdir.mkdir()
    run("init", "--scryptn", "10", "--passfile", str(pw), str(cdir), check=True)
    conf = cdir / "gocryptfs.conf"
    obj = json.loads(conf.read_text())
    obj["FeatureFlags"].append("FIDO2")
    obj["FIDO2"] = {"CredentialID": "AAAA", "HMACSalt": "AAAA"}
    os.chmod(conf, 0o600)
    conf.write_text(json.dumps(obj))
    p = run("ls", "--passfile", str(pw), str(cdir))
    assert p.returncode == 31
    assert "FIDO2" in p.stderr and "not supported" in p.stderr


def test_usage_errors_exit_1(tmp_path: Path) -> None:
    assert run("ls").returncode == 1
    assert run("frobnicate").returncode == 1
    assert run().returncode == 1


def test_missing_cipherdir_exit_6(tmp_path: Path, pw: Path) -> None:
    p = run("ls", "--passfile", str(pw), str(tmp_path / "nope"))
    assert p.returncode == 6


def test_no_secret_in_tracebacks_or_argv_of_children(vault: tuple[Path, str], tmp_path: Path) -> None:
    """A failing command prints one line, never a traceback that could carry a secret."""
    cdir, _ = vault
    p = run("cat", str(cdir), "does-not-exist", stdin="correct horse\n")
    assert p.returncode != 0
    assert "Traceback" not in p.stderr and "correct horse" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_progress_bar_only_on_a_terminal(vault: tuple[Path, str], tmp_path: Path, pw: Path) -> None:
    """Long exports draw a progress bar on an interactive stderr, and stay quiet otherwise."""
    import pty

    cdir, _ = vault
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(12 * 1024 * 1024))
    run("import", "--passfile", str(pw), str(big), str(cdir), "big.bin", check=True)
    quiet = run("export", "--passfile", str(pw), str(cdir), "big.bin", str(tmp_path / "q.bin"))
    assert quiet.returncode == 0 and quiet.stderr == ""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vaultsh",
            "export",
            "--passfile",
            str(pw),
            str(cdir),
            "big.bin",
            str(tmp_path / "t.bin"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
        env={**os.environ, "COLUMNS": "100", "TERM": "xterm"},
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=120) == 0
    os.close(master)
    drawn = b"".join(chunks).decode(errors="replace")
    assert "export" in drawn and "MB" in drawn
    assert (tmp_path / "t.bin").read_bytes() == big.read_bytes()


def test_export_and_import_of_255_byte_names(vault: tuple[Path, str], tmp_path: Path, pw: Path) -> None:
    """Temporary names must not grow the final name past the 255-byte limit."""
    cdir, _ = vault
    src = tmp_path / "longsrc"
    src.mkdir()
    name = "é" * 127 + "x"  # 255 bytes in UTF-8
    (src / name).write_text("long\n")
    run("import", "--passfile", str(pw), str(src), str(cdir), "/", check=True)
    out = tmp_path / "longout"
    run("export", "--passfile", str(pw), str(cdir), "longsrc", str(out), check=True)
    assert (out / name).read_text() == "long\n"


def test_reverse_init_info_and_passwd(tmp_path: Path, pw: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.txt").write_text("plain data\n")
    key = run("init", "--reverse", "--scryptn", "10", "--passfile", str(pw), str(plain), check=True)
    conf = plain / ".gocryptfs.reverse.conf"
    assert conf.is_file() and not (plain / "gocryptfs.conf").exists()
    info = run("info", str(plain), check=True).stdout
    assert "AESSIV" in info and "AES-SIV-512" in info
    # A second init --reverse refuses (gocryptfs: exit 7).
    assert run("init", "--reverse", "--scryptn", "10", "--passfile", str(pw), str(plain)).returncode == 7
    # ls of a reverse dir lists the view's plain names; fsck, which checks a vault's cipher
    # files, explains itself instead of failing on every name.
    assert run("ls", "--passfile", str(pw), str(plain), check=True).stdout == "a.txt\n"
    p = run("fsck", "--passfile", str(pw), str(plain))
    assert p.returncode == 1 and "reverse" in p.stderr
    new = tmp_path / "new"
    new.write_text("new pw\n")
    kf = tmp_path / "key"
    kf.write_text(key.stdout)
    run("passwd", "--masterkey-file", str(kf), "--new-passfile", str(new), str(plain), check=True)
    shown = run("masterkey", "--passfile", str(new), str(plain), check=True).stdout
    assert shown.strip() == key.stdout.strip()


def test_full_disk_gives_one_line_and_leaves_nothing(
    vault: tuple[Path, str], tmp_path: Path, pw: Path, tiny_disk: Path
) -> None:
    cdir, _ = vault
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 << 20))
    run("import", "--passfile", str(pw), str(big), str(cdir), "big.bin", check=True)
    p = run("export", "--passfile", str(pw), str(cdir), "big.bin", str(tiny_disk))
    assert p.returncode == 11
    assert "No space left on device" in p.stderr and "Traceback" not in p.stderr
    assert list(tiny_disk.iterdir()) == []


def _run_on_tty(args: list[str], answers: list[str], timeout: float = 60) -> tuple[int, str]:
    """Run vaultsh with a pseudo-terminal as its controlling tty, typing `answers` at prompts."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child becomes vaultsh
        os.execv(sys.executable, [sys.executable, "-m", "vaultsh", *args])
    import select

    out = b""
    answered = 0  # only answer a prompt that appeared after the last answer
    pending = list(answers)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not select.select([fd], [], [], 1.0)[0]:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        out += data
        if pending and out[answered:].rstrip().endswith(b":"):
            os.write(fd, pending.pop(0).encode() + b"\n")
            answered = len(out)
    else:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def test_init_asks_the_password_twice_on_a_terminal(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    code, out = _run_on_tty(["init", "--scryptn", "10", str(bad)], ["one secret", "another"])
    assert code == 9 and "do not match" in out
    assert list(bad.iterdir()) == []  # nothing written
    assert "one secret" not in out  # no echo
    good = tmp_path / "good"
    good.mkdir()
    code, out = _run_on_tty(["init", "--scryptn", "10", str(good)], ["same secret", "same secret"])
    assert code == 0 and "Your master key is:" in out
    code, out = _run_on_tty(["ls", str(good)], ["same secret"])
    assert code == 0


# -- the registry-backed subcommands, the shell and the front-end entry points -------------------


def test_mkdir_mv_rm_subcommands(vault: tuple[Path, str], pw: Path) -> None:
    cdir, _ = vault
    base = ["--passfile", str(pw), str(cdir)]
    run("mkdir", "-p", *base, "a/b c", check=True)
    run("mv", *base, "docs/notes.txt", "a/b c", check=True)
    assert run("cat", *base, "a/b c/notes.txt", check=True).stdout == "hello vault\n"
    p = run("mv", *base, "a/b c/notes.txt", "link")  # onto a symlink: refused, nothing asked
    assert p.returncode == 11 and p.stderr == "vaultsh: /link: already exists (mv -f overwrites it)\n"
    run("mv", "--force", *base, "a/b c/notes.txt", "link", check=True)
    assert run("cat", *base, "link", check=True).stdout == "hello vault\n"
    p = run("rm", *base, "a")
    assert p.returncode == 11 and "rm -r" in p.stderr and len(p.stderr.splitlines()) == 1
    run("rm", "-r", *base, "a", check=True)
    assert run("ls", *base, check=True).stdout.split() == ["docs", "empty", "link"]


def test_shell_reads_piped_commands(vault: tuple[Path, str], pw: Path) -> None:
    cdir, _ = vault
    p = run("shell", "--passfile", str(pw), str(cdir), stdin="cd docs\npwd\ncat notes.txt\ncat nope\n")
    assert p.stdout.splitlines() == ["/docs", "hello vault"]
    assert p.returncode == 11 and p.stderr.count("\n") == 1 and "nope" in p.stderr


def test_interactive_shell_on_a_terminal(vault: tuple[Path, str], tmp_path: Path) -> None:
    """The real prompt_toolkit shell on a pseudo-terminal: password, prompt, Tab, exit."""
    import pty
    import select

    cdir, _ = vault
    # No cursor-position requests: a bare pty never answers them, and the wait would show.
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "TERM": "xterm",
        "NO_COLOR": "1",
        "PROMPT_TOOLKIT_NO_CPR": "1",
    }
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child becomes vaultsh
        os.execve(sys.executable, [sys.executable, "-m", "vaultsh", "shell", str(cdir)], env)
    out = b""

    def wait_for(needle: bytes) -> None:
        nonlocal out
        deadline = time.monotonic() + 60
        while needle not in out and time.monotonic() < deadline:
            if select.select([fd], [], [], 1.0)[0]:
                try:
                    out += os.read(fd, 4096)
                except OSError:
                    break
        assert needle in out, out.decode(errors="replace")

    try:
        wait_for(b"Password:")
        os.write(fd, b"correct horse\n")
        wait_for(b"vaultsh:/>")  # the prompt's trailing space is drawn as a cursor move
        os.write(fd, b"cd do\t\r")
        wait_for(b"vaultsh:/docs>")
        os.write(fd, b"cat notes.txt\r")
        wait_for(b"hello vault")
        os.write(fd, b"exit\r")
    except BaseException:
        os.kill(pid, 9)
        raise
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, out.decode(errors="replace")
    assert b"hello vault" in out and b"correct horse" not in out
    history = (tmp_path / "data" / "vaultsh" / "history").read_text()
    assert "+cd docs/" in history and "+cat notes.txt" in history


def test_mounts_with_nothing_mounted(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(run_dir)}
    p = subprocess.run(
        [sys.executable, "-m", "vaultsh", "mounts"], capture_output=True, text=True, env=env, timeout=60
    )
    assert (p.returncode, p.stdout, p.stderr) == (0, "no mounts\n", "")
    for verb in ("unmount", "umount"):
        p = subprocess.run(
            [sys.executable, "-m", "vaultsh", verb, str(tmp_path)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert p.returncode == 10 and p.stderr == f"vaultsh: {tmp_path}: not mounted\n"


def test_mount_argument_errors_exit_1(vault: tuple[Path, str], tmp_path: Path, pw: Path) -> None:
    cdir, _ = vault
    assert run("mount", str(cdir)).returncode == 1  # no mountpoint
    assert run("unmount").returncode == 1
    p = run("mount", "--idle", "soon", "--passfile", str(pw), str(cdir), str(tmp_path))
    assert p.returncode == 1 and "duration" in p.stderr and len(p.stderr.splitlines()) == 1
    p = run("mount", "--passfile", str(pw), str(tmp_path / "nope"), str(tmp_path))
    assert p.returncode == 6


def _fake_module(monkeypatch: pytest.MonkeyPatch, name: str, **attrs: object) -> None:
    import types

    module = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(module, key, value)
    monkeypatch.setitem(sys.modules, name, module)


def test_a_directory_instead_of_a_subcommand_opens_the_tui(
    vault: tuple[Path, str], pw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vaultsh import cli
    from vaultsh.service.passwords import SecretSource

    cdir, _ = vault
    calls: list[tuple[Path, SecretSource, str | None]] = []

    def run_tui(cipherdir: Path, secrets: SecretSource, theme: str | None) -> int:
        calls.append((cipherdir, secrets, theme))
        return 0

    _fake_module(monkeypatch, "vaultsh.tui.app", run_tui=run_tui)
    assert cli.main([str(cdir), "--theme", "dusk", "--passfile", str(pw)]) == 0
    assert cli.main(["--passfile", str(pw), str(cdir)]) == 0
    (first, secrets, theme), (second, _, no_theme) = calls
    assert first == second == cdir and (theme, no_theme) == ("dusk", None)
    assert secrets.read_password() == b"correct horse"
    assert len(calls) == 2
    assert cli.main([str(cdir / "no-such-dir")]) == 6  # a path that is not there: gocryptfs's code
    with pytest.raises(SystemExit) as raised:
        cli.main(["no-such-command-or-dir"])
    assert raised.value.code == 1


def test_new_and_demo_entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from vaultsh import cli
    from vaultsh.service.passwords import SecretSource
    from vaultsh.vault.vault import Vault

    news: list[tuple[Path, str | None]] = []
    tuis: list[tuple[Path, bytes]] = []

    def run_new(directory: Path, theme: str | None) -> int:
        news.append((directory, theme))
        return 15

    def run_tui(cipherdir: Path, secrets: SecretSource, theme: str | None, greeting: str = "") -> int:
        tuis.append((cipherdir, secrets.read_password()))
        greetings.append(greeting)
        return 0

    def demo_greeting(path: Path, password: str) -> str:
        return f"demo {path} {password}"

    greetings: list[str] = []

    _fake_module(monkeypatch, "vaultsh.tui.wizard", run_new=run_new)
    _fake_module(monkeypatch, "vaultsh.tui.app", run_tui=run_tui, demo_greeting=demo_greeting)
    assert cli.main(["new", str(tmp_path / "fresh"), "--theme", "paper"]) == 15
    assert news == [(tmp_path / "fresh", "paper")]
    assert cli.main(["demo", "--dir", str(tmp_path / "demo")]) == 0
    shown = capsys.readouterr().out
    password = re.search(r"Password:\s+(\S+)", shown)
    assert password is not None and str(tmp_path / "demo") in shown
    assert tuis == [(tmp_path / "demo", password.group(1).encode())]
    assert greetings == [f"demo {tmp_path / 'demo'} {password.group(1)}"]  # the TUI is told the password
    assert Vault.open(tmp_path / "demo", password=tuis[0][1]).listdir()


def test_cipher_names_starting_with_a_dash_are_paths(vault: tuple[Path, str], pw: Path) -> None:
    """'-' is in the base64 alphabet: such a cipher name on argv is a path, not an option."""
    from vaultsh.vault.vault import Vault

    cdir, _ = vault
    v = Vault.open(cdir, password=pw.read_text().strip().encode())
    name = next(f"n{i}" for i in range(10_000) if v.encrypt_component(cdir, f"n{i}")[1].startswith("-"))
    v.write_file(name, b"dash")
    cipher_name = v.encrypt_component(cdir, name)[1]
    out = run("decrypt-paths", "--passfile", str(pw), str(cdir), cipher_name, "docs", check=False)
    assert out.returncode == 1  # "docs" is no cipher name: reported, the dash name still decrypts
    assert out.stdout.splitlines()[0] == name
    out = run("decrypt-paths", "--passfile", str(pw), str(cdir), cipher_name, check=True)
    assert out.stdout.strip() == name


def test_cat_takes_several_paths_and_rm_f_passes_over_missing_ones(vault: tuple[Path, str], pw: Path) -> None:
    cdir, _ = vault
    p = run("cat", "--passfile", str(pw), str(cdir), "docs/notes.txt", "/docs/notes.txt", check=True)
    assert p.stdout == "hello vault\n" * 2
    p = run("rm", "--passfile", str(pw), str(cdir), "missing", "empty")
    assert p.returncode != 0 and "missing" in p.stderr
    run("rm", "-f", "--passfile", str(pw), str(cdir), "missing", "empty", check=True)
    names = run("ls", "--passfile", str(pw), str(cdir), check=True).stdout.split()
    assert "empty" not in names and "docs" in names


def test_import_without_a_path_goes_to_the_vault_root(
    vault: tuple[Path, str], pw: Path, tmp_path: Path
) -> None:
    cdir, _ = vault
    (tmp_path / "new.txt").write_text("new\n")
    run("import", "--passfile", str(pw), str(tmp_path / "new.txt"), str(cdir), check=True)
    assert run("cat", "--passfile", str(pw), str(cdir), "new.txt", check=True).stdout == "new\n"


def test_unmount_without_a_mountpoint_is_a_usage_error() -> None:
    p = run("unmount")
    assert p.returncode == 1 and "name the mountpoint" in p.stderr and len(p.stderr.splitlines()) == 1


def test_read_only_commands_work_on_a_reverse_mode_folder(tmp_path: Path, pw: Path) -> None:
    """A reverse-mode plain dir opens as its encrypted view in the CLI and `vaultsh shell`, as in
    the TUI's command line; commands that would write into the view are refused in one line."""
    from vaultsh.vault.reverse import ReverseView

    plain = tmp_path / "plain"
    (plain / "docs").mkdir(parents=True)
    (plain / "docs" / "notes.txt").write_text("plain notes\n")
    run("init", "--reverse", "--scryptn", "10", "-q", "--passfile", str(pw), str(plain), check=True)
    view = ReverseView.open(plain, password=b"correct horse")
    cipher = next(e for e in view.listdir("") if e.plain == "docs").cipher_name
    assert run("ls", "--passfile", str(pw), str(plain), check=True).stdout == "docs\n"
    out = run("cat", "--passfile", str(pw), str(plain), "docs/notes.txt", check=True)
    assert out.stdout == "plain notes\n"
    out = run("encrypt-paths", "--passfile", str(pw), str(plain), "docs", check=True)
    assert out.stdout.strip() == cipher
    out = run("decrypt-paths", "--passfile", str(pw), str(plain), cipher, check=True)
    assert out.stdout == "docs\n"
    out = run("ls", "-R", "--passfile", str(pw), str(plain), check=True)
    assert out.stdout == "/:\ndocs\n\n/docs:\nnotes.txt\n"
    dest = tmp_path / "view"
    run("export", "--passfile", str(pw), str(plain), "/", str(dest), check=True)
    assert {"gocryptfs.conf", "gocryptfs.diriv", cipher} <= set(os.listdir(dest))
    out = run("mkdir", "--passfile", str(pw), str(plain), "new")
    assert out.returncode == 1 and "read-only" in out.stderr and len(out.stderr.splitlines()) == 1
    assert not (plain / "new").exists()
    out = run("shell", "--passfile", str(pw), str(plain), stdin="ls docs\nrm docs/notes.txt\n")
    assert out.stdout == "notes.txt\n" and "read-only" in out.stderr
    assert (plain / "docs" / "notes.txt").exists()
    # What examines stored cipher files does not apply: one line says why, in both front ends.
    for command in ("fsck", "conflicts"):
        out = run(command, "--passfile", str(pw), str(plain))
        assert out.returncode == 1 and len(out.stderr.splitlines()) == 1, command
        assert "reverse-mode folder" in out.stderr and "no cipher files to check" in out.stderr
    out = run("shell", "--passfile", str(pw), str(plain), stdin="info\nfsck\nconflicts docs\n")
    assert "Mode:              reverse (read-only encrypted view of the plain files)" in out.stdout
    assert out.stderr.count("no cipher files to check") == 2 and len(out.stderr.splitlines()) == 2


def test_the_cli_keeps_service_modules_imported_before_it() -> None:
    """The CLI loads its service modules lazily; one imported before the CLI stays the one
    module, so its classes (Cancelled, Session) are the same wherever they are named."""
    probe = (
        "import sys; import vaultsh.service.transfer as t, vaultsh.service.folders as f; import vaultsh.cli; "
        "print(sys.modules['vaultsh.service.transfer'] is t, sys.modules['vaultsh.service.folders'] is f, "
        "vaultsh.cli.transfer is t, vaultsh.cli.folders is f)"
    )
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    assert out.split() == ["True"] * 4


@pytest.mark.parametrize("extra", [[], ["--noprealloc"]])
def test_mount_flags_reach_the_mount_request(
    vault: tuple[Path, str], pw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: list[str]
) -> None:
    from vaultsh import cli
    from vaultsh.service import mounts

    cdir, _ = vault
    asked: list[mounts.MountRequest] = []
    monkeypatch.setattr(mounts, "mount", lambda request, *_a, **_k: asked.append(request))
    (tmp_path / "mnt").mkdir()
    assert cli.main(["mount", *extra, "--passfile", str(pw), str(cdir), str(tmp_path / "mnt")]) == 0
    (request,) = asked
    assert request.noprealloc is bool(extra) and request.mountpoint == tmp_path / "mnt"
