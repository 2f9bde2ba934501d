"""The prompt_toolkit shell driven through a pipe: commands, Tab completion, history, Ctrl-C/D."""

from __future__ import annotations

import io
import os
import signal
import stat
import subprocess
from pathlib import Path

import pytest
from fuse_harness import kernel_mounted
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from shell_harness import Shell
from vault_factory import NewVault

from vaultsh.service.commands import Session, SessionIO
from vaultsh.shell.repl import ShellIO, history_path, prompt_text, run_script, run_shell
from vaultsh.vault.keys import format_master_key
from vaultsh.vault.vault import Vault

PASSWORD = b"pw"


@pytest.fixture
def vault(tmp_path: Path, new_vault: NewVault) -> tuple[Vault, bytes]:
    v = new_vault(tmp_path / "cipher", PASSWORD)
    v.mkdir("docs")
    v.write_file("docs/notes.txt", b"hello vault\n")
    v.mkdir("my docs")
    v.write_file("my docs/a file.txt", b"spaced\n")
    v.write_file("alpha.txt", b"a\n")
    return v, v.keys.master_key


def test_typed_commands_show_their_output(vault: tuple[Vault, bytes]) -> None:
    sh = Shell(vault[0])
    assert sh.type("ls\ncd docs\npwd\ncat notes.txt\n\x04") == 0
    assert sh.lines() == ["alpha.txt", "docs", "my docs", "/docs", "hello vault"]
    assert sh.err.getvalue() == ""
    assert sh.session is not None and prompt_text(sh.session) == "vaultsh:/docs> "


def test_errors_are_one_line_and_the_shell_goes_on(vault: tuple[Vault, bytes]) -> None:
    sh = Shell(vault[0])
    sh.type("cat nope\nfrobnicate\npwd\n\x04")
    errors = sh.err.getvalue().splitlines()
    assert len(errors) == 2
    assert errors[0].startswith("vaultsh: ") and "nope" in errors[0]
    assert "unknown command" in errors[1]
    assert sh.lines() == ["/"]


def test_tab_completes_decrypted_names_with_spaces(vault: tuple[Vault, bytes]) -> None:
    sh = Shell(vault[0])
    sh.type("cd my\t\npwd\ncat a\t\ncd /\ncat do\tno\t\n\x04")
    assert sh.lines() == ["/my docs", "spaced", "hello vault"]


def test_tab_with_several_candidates_inserts_their_common_part(vault: tuple[Vault, bytes]) -> None:
    v = vault[0]
    v.write_file("report-2023.txt", b"old\n")
    v.write_file("report-2024.txt", b"new\n")
    sh = Shell(v)
    sh.type("cat rep\t4.txt\n\x04")  # "rep" -> "report-202", then the rest typed by hand
    assert sh.lines() == ["new"]


def test_ctrl_c_drops_the_line_and_ctrl_d_exits(vault: tuple[Vault, bytes]) -> None:
    sh = Shell(vault[0])
    assert sh.type("cat docs/notes.txt\x03pwd\n\x04ls\n") == 0
    assert sh.lines() == ["/"]  # the dropped cat printed nothing; nothing ran after Ctrl-D


def test_exit_command_leaves(vault: tuple[Vault, bytes]) -> None:
    sh = Shell(vault[0])
    assert sh.type("exit\nls\n") == 0
    assert sh.lines() == []


def test_history_file_never_holds_secrets(
    vault: tuple[Vault, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    v, key = vault
    sh = Shell(v)
    with create_pipe_input() as pipe:
        pipe.send_text("ls\nmasterkey\npw\npasswd\npw\nnew-secret\nnew-secret\ncd docs\n\x04")
        run_shell(sh.factory, input=pipe, output=DummyOutput(), stdout=sh.out, stderr=sh.err)
    assert sh.err.getvalue() == ""
    assert format_master_key(key) in sh.lines()
    path = history_path()
    assert path == tmp_path / "data" / "vaultsh" / "history"
    text = path.read_text()
    assert "+ls" in text and "+cd docs" in text
    for secret in ("masterkey", "passwd", "new-secret", "+pw", format_master_key(key)):
        assert secret not in text, secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Vault.open(v.cipherdir, password=b"new-secret").read_file("alpha.txt") == b"a\n"


def test_ctrl_c_during_a_command_asks_it_to_stop(vault: tuple[Vault, bytes]) -> None:
    sio = ShellIO(io.StringIO(), io.StringIO())
    with sio.running():
        assert not sio.cancelled()
        os.kill(os.getpid(), signal.SIGINT)
        assert sio.cancelled()  # the first Ctrl-C is a request the command honours
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # the second one interrupts at once
    assert not sio.cancelled()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_script_mode_reads_commands_and_secrets_from_lines(vault: tuple[Vault, bytes]) -> None:
    v, key = vault
    out, err = io.StringIO(), io.StringIO()
    made: list[Session] = []

    def factory(sio: SessionIO) -> Session:
        made.append(Session(v, v.cipherdir, sio))
        return made[0]

    script = ["cd docs\n", "masterkey\n", "pw\n", "cat notes.txt\n"]
    status = run_script(factory, script, stdout=out, stderr=err)
    assert status == 0
    assert out.getvalue().splitlines() == [format_master_key(key), "hello vault"]
    status = run_script(factory, ["cat nope\n"], stdout=out, stderr=err)
    assert status == 11 and "nope" in err.getvalue()


def test_mv_onto_an_existing_file_asks_and_a_script_refuses(vault: tuple[Vault, bytes]) -> None:
    v = vault[0]
    sh = Shell(v)
    sh.type("mv alpha.txt docs/notes.txt\nc\nmv alpha.txt docs/notes.txt\nk\n\x04")
    assert v.read_file("docs/notes.txt") == b"hello vault\n"
    assert v.read_file("docs/notes (2).txt") == b"a\n" and not v.exists("alpha.txt")
    assert "cancelled" in sh.err.getvalue()
    sh = Shell(v)
    sh.type("mv 'docs/notes (2).txt' docs/notes.txt\no\n\x04")
    assert v.read_file("docs/notes.txt") == b"a\n" and not v.exists("docs/notes (2).txt")

    v.write_file("beta.txt", b"b\n")
    out, err = io.StringIO(), io.StringIO()
    status = run_script(
        lambda sio: Session(v, v.cipherdir, sio), ["mv beta.txt docs/notes.txt\n"], stdout=out, stderr=err
    )
    assert status == 11 and "/docs/notes.txt: already exists (mv -f overwrites it)" in err.getvalue()
    assert v.read_file("docs/notes.txt") == b"a\n"
    status = run_script(
        lambda sio: Session(v, v.cipherdir, sio), ["mv -f beta.txt docs/notes.txt\n"], stdout=out, stderr=err
    )
    assert status == 0 and v.read_file("docs/notes.txt") == b"b\n"


def test_cat_follows_symlinks_inside_the_vault_and_refuses_outside(vault: tuple[Vault, bytes]) -> None:
    v = vault[0]
    v.symlink("notes.txt", "docs/latest")  # relative to its own directory
    v.symlink("../docs/latest", "my docs/chain")  # a chain through another directory
    v.symlink("/etc/passwd", "outside")
    v.symlink("../../x", "docs/above")
    v.symlink("loop", "loop")
    sh = Shell(v)
    sh.type("cat docs/latest\ncd 'my docs'\ncat chain\ncat /outside\ncat /docs/above\ncat /loop\n\x04")
    assert sh.lines() == ["hello vault", "hello vault"]
    errors = sh.err.getvalue().splitlines()
    assert errors == [
        "vaultsh: /outside: a symlink to /etc/passwd, outside the vault",
        "vaultsh: /docs/above: a symlink to ../../x, outside the vault",
        "vaultsh: /loop: too many levels of symbolic links",
    ]


def test_ctrl_d_with_a_live_mount_offers_to_unmount(vault: tuple[Vault, bytes], mountpoint: Path) -> None:
    v = vault[0]
    sh = Shell(v)
    sh.type(f"mount {mountpoint}\n\x04n\n")
    assert kernel_mounted(mountpoint), sh.err.getvalue()
    assert sh.lines()[-1] == (
        f"{v.cipherdir} stays mounted at {mountpoint}; unmount it with `vaultsh unmount {mountpoint}`"
    )
    assert (mountpoint / "docs" / "notes.txt").read_bytes() == b"hello vault\n"
    sh = Shell(v)
    sh.type("exit\ny\n")
    assert sh.lines()[-1] == f"unmounted {mountpoint}", sh.err.getvalue()
    assert not kernel_mounted(mountpoint)


def test_pipe_to_a_local_command_and_redirect_to_a_local_file(
    vault: tuple[Vault, bytes], tmp_path: Path
) -> None:
    v = vault[0]
    out_file = tmp_path / "notes copy.txt"
    sh = Shell(v)
    sh.type(
        "cat docs/notes.txt | tr a-z A-Z\n"
        f"cat docs/notes.txt > '{out_file}'\n"
        f"ls >> '{out_file}'\n"
        "cat 'my docs/a file.txt' '|' x\n"  # a quoted | is an argument, not a pipe
        "ls | \n\x04"
    )
    assert sh.lines()[0] == "HELLO VAULT"
    assert out_file.read_bytes() == b"hello vault\nalpha.txt\ndocs\nmy docs\n"
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600
    errors = sh.err.getvalue()
    assert "unknown option" not in errors
    assert "vaultsh: /|: No such file or directory" in errors  # the quoted | was a vault name
    assert "spaced" in sh.lines()
    assert "| needs a vault command before it and a local one after it" in errors


def test_busy_unmount_names_the_processes_holding_the_mount(
    vault: tuple[Vault, bytes], mountpoint: Path
) -> None:
    v = vault[0]
    sh = Shell(v)
    sh.type(f"mount {mountpoint}\n\x04n\n")
    assert kernel_mounted(mountpoint), sh.err.getvalue()
    holder = subprocess.Popen(["sleep", "60"], cwd=mountpoint / "docs")
    try:
        sh = Shell(v)
        sh.type("unmount\n\x04n\n")
        error = sh.err.getvalue()
        assert "cannot unmount" in error and f"in use by {holder.pid} (sleep)" in error, error
        assert kernel_mounted(mountpoint)
    finally:
        holder.kill()
        holder.wait()
    sh = Shell(v)
    sh.type("unmount\n\x04")
    assert not kernel_mounted(mountpoint), sh.err.getvalue()
