"""The shell's help and Tab completion offer only the commands the open folder can run."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from service_harness import RecordingIO, run
from vault_factory import NewVault

from vaultsh.service.commands import Session, SessionIO, complete
from vaultsh.service.folders import open_folder
from vaultsh.shell.repl import run_shell
from vaultsh.vault.errors import ExitCode

PASSWORD = b"pw"
# What a reverse-mode folder cannot run: writing into its view, examining stored cipher files.
WRITES = {"import", "mkdir", "mv", "rm"}
EXAMINES = {"fsck", "conflicts"}
# What it can: reading, its own config and key, mounting and the session's own commands.
READS = {"ls", "cd", "pwd", "cat", "export", "encrypt-path", "decrypt-path", "info", "mount", "unmount"}
KEYS = {"passwd", "recover", "masterkey", "theme", "help", "exit"}


@pytest.fixture(params=["vault", "reverse"])
def folder(request: pytest.FixtureRequest, tmp_path: Path, new_vault: NewVault) -> tuple[str, Path]:
    """(kind, root): a vault or a reverse-mode folder, each holding docs/notes.txt."""
    root = tmp_path / request.param
    if request.param == "vault":
        with new_vault(root, PASSWORD) as v:
            v.mkdir("docs")
            v.write_file("docs/notes.txt", b"notes\n")
    else:
        (root / "docs").mkdir(parents=True)
        (root / "docs" / "notes.txt").write_bytes(b"notes\n")
        new_vault.reverse_folder(root, PASSWORD)
    return request.param, root


def open_session(root: Path, sio: SessionIO) -> Session:
    """The folder opened as every front end opens it (a reverse-mode folder as its view)."""
    return open_folder(root, sio, password=lambda: PASSWORD)


def type_in_shell(kind: str, root: Path, keys: str) -> tuple[list[str], list[str]]:
    """Run `vaultsh shell`'s loop on typed keys; (output lines after the greeting, error lines)."""
    out, err = io.StringIO(), io.StringIO()
    with create_pipe_input() as pipe:
        pipe.send_text(keys + "\x04")
        run_shell(
            lambda sio: open_session(root, sio),
            history=InMemoryHistory(),
            input=pipe,
            output=DummyOutput(),
            stdout=out,
            stderr=err,
        )
    return out.getvalue().splitlines()[1:], err.getvalue().splitlines()


def listed(help_lines: list[str]) -> set[str]:
    """The command names `help` lists (each line starts with a usage, i.e. the name)."""
    return {line.split()[0] for line in help_lines if line.strip()}


def test_help_lists_the_commands_that_apply(folder: tuple[str, Path]) -> None:
    kind, root = folder
    lines, errors = type_in_shell(kind, root, "help\n")
    assert errors == []
    shown = listed(lines)
    assert shown >= READS | KEYS
    if kind == "vault":
        assert shown >= WRITES | EXAMINES
    else:
        assert not (WRITES | EXAMINES) & shown, shown & (WRITES | EXAMINES)


def test_help_on_a_command_that_does_not_apply_says_why_in_one_line(folder: tuple[str, Path]) -> None:
    kind, root = folder
    lines, errors = type_in_shell(kind, root, "help mkdir\nhelp put\nhelp fsck\nhelp ls\n")
    assert errors == []
    if kind == "vault":
        assert lines[0] == "usage: mkdir [-p] PATH..."
        assert any(line.startswith("usage: fsck") for line in lines)
        assert not any("does not apply" in line for line in lines)
        return
    assert lines[:3] == [
        f"mkdir: does not apply here: the encrypted view of a reverse-mode folder is read-only; "
        f"change the plain files in {root} instead",
        f"import: does not apply here: the encrypted view of a reverse-mode folder is read-only; "
        f"change the plain files in {root} instead",
        f"fsck: does not apply here: {root} is a reverse-mode folder: its files are plain, and its "
        "encrypted view is computed from them, so there are no cipher files to check",
    ]
    assert lines[3] == "usage: ls [-l] [-a] [-R] [--cipher] [PATH]"  # a command that applies


def test_running_one_is_still_refused_in_one_line_with_the_usage_exit_code(folder: tuple[str, Path]) -> None:
    kind, root = folder
    session = open_session(root, RecordingIO())
    for line in ("mkdir new", "rm docs/notes.txt", "fsck", "conflicts"):
        status, _, errors = run(session, line)
        if kind == "vault":
            assert status == 0 and not any("reverse" in e for e in errors), (line, errors)
        else:
            assert status == ExitCode.USAGE and len(errors) == 1, (line, errors)
            assert errors[0].startswith(line.split()[0] + ": ") and "reverse-mode folder" in errors[0]
    if kind == "reverse":
        assert (root / "docs" / "notes.txt").exists() and not (root / "new").exists()


def test_tab_completes_only_the_command_names_that_apply(folder: tuple[str, Path]) -> None:
    kind, root = folder
    # Each word is completed by Tab, then run: in a vault each completes to the full name
    # (mkdir makes a directory, fsck finds nothing wrong); in a reverse-mode folder nothing
    # completes, so the unknown prefixes are what runs.
    lines, errors = type_in_shell(kind, root, "mkd\t made\nfs\t\nhelp mk\t\nls\n")
    if kind == "vault":
        assert len(errors) == 1 and "fsck summary: no problems found" in errors[0], errors  # on stderr
        assert "usage: mkdir [-p] PATH..." in lines
        assert lines[-2:] == ["docs", "made"]
    else:
        assert [e.split(":")[1].strip() for e in errors] == ["mkd", "fs", "mk"], errors
        assert lines == ["docs"]


def test_completion_of_a_command_name_offers_the_applicable_names_and_aliases(
    folder: tuple[str, Path],
) -> None:
    kind, root = folder
    session = open_session(root, RecordingIO())
    names = set(complete(session, ""))
    assert READS | KEYS | {"get", "umount"} <= names
    refused = WRITES | EXAMINES | {"put", "rename"}  # put and rename: aliases of import and mv
    assert (refused & names) == (set() if kind == "reverse" else refused)
    # `help`'s argument completes to command names the same way.
    assert ("mkdir" in complete(session, "help mk")) == (kind == "vault")


def test_the_cli_help_lists_every_command_without_a_folder() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "vaultsh", "--help"], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    listed = {line.split()[0] for line in out.splitlines() if line.startswith("    ") and line.split()}
    assert WRITES | EXAMINES | {"ls", "cat", "export", "passwd", "mount", "info"} <= listed, listed
