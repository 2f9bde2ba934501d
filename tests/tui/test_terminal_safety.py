"""Hostile names (escapes, BEL, CR, OSC 52, C1, invalid UTF-8) never reach a terminal raw.

Through `vaultsh ls` / `decrypt-paths`, the shell, the TUI (Pilot and a real tmux terminal);
the machine forms (`-0`) keep the exact bytes.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from shell_harness import Shell
from textual.worker import WorkerFailed
from tui_harness import (
    MASTER_KEY,
    answer_prompt,
    capture,
    command_done,
    enter_line,
    exit_status,
    log_text,
    open_at,
    opened_at,
    row_text,
    select_plain,
    tmux,
    vaultsh_command,
    wait_for,
    wait_screen,
)
from vault_factory import new_vault

from vaultsh.service.commands import Session, split_line
from vaultsh.shell.repl import ShellIO, VaultCompleter, prompt_text
from vaultsh.tui.app import VaultApp
from vaultsh.tui.inspect import InfoPanel
from vaultsh.tui.main_screen import MainScreen
from vaultsh.tui.screens import PromptScreen
from vaultsh.vault.reverse import ReverseView
from vaultsh.vault.vault import Vault

PASSWORD = b"terminal safety"

TITLE = "\x1b]0;PWNED\x07title.txt"
WIPE = "\x1b[2J\x1b[Hwipe.txt"
BELL = "bell\x07.txt"
CR = "fake\rreal.txt"
CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4=\x07clip.txt"
C1_CSI = "csi\x9b31m.txt"
INVALID_UTF8 = os.fsdecode(b"bad\xff\xfe.txt")
HOSTILE_DIR = "red\x1b[31m!\x1b[0m"
LINK_TARGET = "\x1b]0;PWNED\x07target"
STRAY = "\x1b]0;STRAY\x07"  # a name on disk that is not a vault object
HOSTILE_FILES = [TITLE, WIPE, BELL, CR, CLIPBOARD, C1_CSI, INVALID_UTF8]


async def run_line(pilot: Any, app: VaultApp, line: str) -> None:
    """Run one line from the TUI's command line and wait until it is done."""
    await enter_line(pilot, app, line)
    await command_done(pilot, app)


# How each is shown: GNU ls's $'...' form.
SHOWN = {
    TITLE: "$'\\033]0;PWNED\\atitle.txt'",
    WIPE: "$'\\033[2J\\033[Hwipe.txt'",
    BELL: "$'bell\\a.txt'",
    CR: "$'fake\\rreal.txt'",
    CLIPBOARD: "$'\\033]52;c;cm0gLXJmIH4=\\aclip.txt'",
    C1_CSI: "$'csi\\302\\23331m.txt'",
    INVALID_UTF8: "$'bad\\377\\376.txt'",
    HOSTILE_DIR: "$'red\\033[31m!\\033[0m'",
    LINK_TARGET: "$'\\033]0;PWNED\\atarget'",
    STRAY: "$'\\033]0;STRAY\\a'",
}


def terminal_unsafe(text: str) -> list[str]:
    """Characters a terminal acts on: C0 but newline, DEL, C1, lone surrogates, bidi overrides.

    Written independently of vaultsh.vault.display, which is what is being checked.
    """
    return [
        ch
        for ch in text
        if (ord(ch) < 0x20 and ch != "\n")
        or 0x7F <= ord(ch) < 0xA0
        or 0xD800 <= ord(ch) <= 0xDFFF
        or 0x202A <= ord(ch) <= 0x202E
    ]


def assert_terminal_safe(data: bytes | str) -> None:
    text = data.decode("utf-8") if isinstance(data, bytes) else data  # strict: no invalid UTF-8
    assert terminal_unsafe(text) == [], text


def make_hostile_vault(root: Path) -> Vault:
    vault = new_vault(root, PASSWORD, master_key=MASTER_KEY)
    for name in HOSTILE_FILES:
        vault.write_file(name, b"hostile\n")
    vault.mkdir(HOSTILE_DIR)
    vault.write_file(f"{HOSTILE_DIR}/{TITLE}", b"deeper\n")
    vault.symlink(LINK_TARGET, "link")
    vault.write_file("plain.txt", b"ordinary\n")
    (root / STRAY).write_bytes(b"dropped into the cipher dir by hand or by a sync tool")
    return vault


@pytest.fixture
def hostile(tmp_path: Path) -> Vault:
    return make_hostile_vault(tmp_path / "vault")


@pytest.fixture
def passfile(tmp_path: Path) -> Path:
    p = tmp_path / "pw"
    p.write_bytes(PASSWORD + b"\n")
    return p


def vaultsh(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "vaultsh", *args], input=stdin, capture_output=True, timeout=120, check=False
    )


# -- the CLI -----------------------------------------------------------------------------------


def test_cli_ls_shows_names_and_link_targets_escaped(hostile: Vault, passfile: Path) -> None:
    for flags in (["-l"], ["-R"], ["-la", "--cipher"]):
        out = vaultsh("ls", *flags, "--passfile", str(passfile), str(hostile.cipherdir))
        assert out.returncode == 0, out.stderr
        assert_terminal_safe(out.stdout)
        assert_terminal_safe(out.stderr)
        text = out.stdout.decode()
        for name in HOSTILE_FILES:
            assert SHOWN[name] in text, (flags, name)
        assert "plain.txt" in text and "'plain.txt'" not in text  # plain names unchanged
    every = vaultsh("ls", "-a", "--passfile", str(passfile), str(hostile.cipherdir)).stdout.decode()
    assert f"?{SHOWN[STRAY]}  (undecryptable" in every
    long = vaultsh("ls", "-l", "--passfile", str(passfile), str(hostile.cipherdir)).stdout.decode()
    assert f"link -> {SHOWN[LINK_TARGET]}" in long
    recursive = vaultsh("ls", "-R", "--passfile", str(passfile), str(hostile.cipherdir)).stdout.decode()
    assert "$'/red\\033[31m!\\033[0m':" in recursive  # the dir heading is quoted whole


def test_cli_errors_that_name_a_hostile_path_are_escaped(hostile: Vault, passfile: Path) -> None:
    out = vaultsh("cat", "--passfile", str(passfile), str(hostile.cipherdir), f"{TITLE}-missing")
    assert out.returncode != 0
    assert_terminal_safe(out.stderr)
    assert out.stderr.decode().count("\n") == 1
    assert "$'\\033']0;PWNED$'\\a'title.txt-missing" in out.stderr.decode()
    out = vaultsh("ls", "--passfile", str(passfile), str(hostile.cipherdir), "--bogus\x1b]0;x\x07")
    assert out.returncode == 1
    assert_terminal_safe(out.stderr)


def test_decrypt_paths_escapes_for_people_and_keeps_exact_bytes_with_null(
    hostile: Vault, passfile: Path
) -> None:
    names = [*HOSTILE_FILES, f"{HOSTILE_DIR}/{TITLE}", "plain.txt"]
    ciphers = [hostile.cipher_path(n).relative_to(hostile.cipherdir).as_posix() for n in names]

    shown = vaultsh("decrypt-paths", "--passfile", str(passfile), str(hostile.cipherdir), *ciphers)
    assert shown.returncode == 0, shown.stderr
    assert_terminal_safe(shown.stdout)
    lines = shown.stdout.decode().splitlines()
    assert lines[: len(HOSTILE_FILES)] == [SHOWN[n] for n in HOSTILE_FILES]
    assert lines[-1] == "plain.txt"

    exact = vaultsh("decrypt-paths", "-0", "--passfile", str(passfile), str(hostile.cipherdir), *ciphers)
    assert exact.returncode == 0, exact.stderr
    assert exact.stdout == b"".join(os.fsencode(n) + b"\0" for n in names)

    # NUL-separated in as well: plain bytes -> cipher paths -> the same plain bytes.
    plain_in = b"".join(os.fsencode(n) + b"\0" for n in names)
    enc = vaultsh(
        "encrypt-paths", "--null", "--passfile", str(passfile), str(hostile.cipherdir), stdin=plain_in
    )
    assert enc.returncode == 0, enc.stderr
    assert enc.stdout == b"".join(c.encode() + b"\0" for c in ciphers)
    dec = vaultsh(
        "decrypt-paths", "-0", "--passfile", str(passfile), str(hostile.cipherdir), stdin=enc.stdout
    )
    assert dec.stdout == plain_in


def test_masterkey_from_stdin_leaves_the_null_separated_paths_after_it(hostile: Vault) -> None:
    cipher = hostile.cipher_path(INVALID_UTF8).relative_to(hostile.cipherdir).as_posix()
    stdin = MASTER_KEY.hex().encode() + b"\n" + cipher.encode() + b"\0"
    out = vaultsh("decrypt-paths", "-0", "--masterkey", "-", str(hostile.cipherdir), stdin=stdin)
    assert out.returncode == 0, out.stderr
    assert out.stdout == os.fsencode(INVALID_UTF8) + b"\0"


# -- the shell ---------------------------------------------------------------------------------


def test_shell_ls_cd_and_errors_show_hostile_names_escaped(hostile: Vault) -> None:
    sh = Shell(hostile)
    sh.type("ls\nls -l\ncat nope\x07\ncd red\t\npwd\nls\n\x04")
    out, err = sh.out.getvalue(), sh.err.getvalue()
    assert_terminal_safe(out)
    assert_terminal_safe(err)
    for name in HOSTILE_FILES:
        assert SHOWN[name] in out
    assert f"link -> {SHOWN[LINK_TARGET]}" in out
    assert "/" + HOSTILE_DIR not in out and "/red$'\\033'[31m!$'\\033'[0m" in out  # pwd
    assert sh.session is not None and sh.session.cwd == HOSTILE_DIR  # completion inserted the exact name
    assert_terminal_safe(prompt_text(sh.session))


def test_shell_completion_menu_shows_escaped_names_and_inserts_exact_ones(hostile: Vault) -> None:
    session = Session(hostile, hostile.cipherdir, ShellIO(io.StringIO(), io.StringIO()))
    found = list(VaultCompleter(session).get_completions(Document("cat csi"), CompleteEvent()))
    assert len(found) == 1
    assert found[0].display_text == SHOWN[C1_CSI]
    assert split_line(found[0].text) == [C1_CSI]  # what the line then holds is the real name
    assert found[0].text == SHOWN[C1_CSI]  # typed in escaped form, never raw
    sh = Shell(hostile)
    sh.type("cat csi\t\n\x04")
    assert sh.lines() == ["hostile"]


# -- the TUI (Pilot) ---------------------------------------------------------------------------


def pane_lines(screen: MainScreen) -> list[str]:
    return [row_text(lst, e) for lst in (screen.plain, screen.cipher) for e in lst.rows]


@pytest.mark.asyncio
async def test_tui_panes_info_log_and_screenshot_show_names_escaped(hostile: Vault) -> None:
    async with opened_at(hostile.cipherdir) as (app, pilot):
        screen = app.main
        lines = pane_lines(screen)
        for line in lines:
            assert_terminal_safe(line)
        plain = "\n".join(row_text(screen.plain, e) for e in screen.plain.rows)
        for name in HOSTILE_FILES:
            assert SHOWN[name] in plain, name
        assert SHOWN[HOSTILE_DIR] + "/" in plain
        cipher = "\n".join(row_text(screen.cipher, e) for e in screen.cipher.rows)
        assert SHOWN[STRAY] in cipher

        link_row = next(i for i, e in enumerate(screen.plain.rows) if e.plain_name == "link")
        screen.plain.move_to(link_row)
        panel = screen.query_one("#info", InfoPanel)
        await wait_for(pilot, lambda: "Target" in panel.plain_text())
        assert SHOWN[LINK_TARGET] in panel.plain_text()
        assert_terminal_safe(panel.plain_text())

        title_row = next(i for i, e in enumerate(screen.plain.rows) if e.plain_name == TITLE)
        screen.plain.move_to(title_row)
        await wait_for(pilot, lambda: "title.txt" in str(panel.border_title))
        assert_terminal_safe(str(panel.border_title))

        await pilot.press("tab")  # the cipher pane: the stray's diagnosis names it
        stray_row = next(i for i, e in enumerate(screen.cipher.rows) if e.cipher_name == STRAY)
        screen.cipher.move_to(stray_row)
        await wait_for(pilot, lambda: "STRAY" in panel.plain_text())
        assert SHOWN[STRAY] in panel.plain_text()
        assert_terminal_safe(panel.plain_text())
        assert_terminal_safe(str(panel.border_title))

        app.log_line(f"cannot open /{CLIPBOARD}", "error")  # the log's one way in
        assert_terminal_safe("\n".join(app.log_lines))
        await pilot.pause()

        svg = app.export_screenshot()
        assert_terminal_safe(svg)
        assert "PWNED" in svg  # the names are there, escaped


@pytest.mark.asyncio
async def test_tui_rename_dialog_does_not_put_a_hostile_name_in_the_input(hostile: Vault) -> None:
    async with opened_at(hostile.cipherdir) as (app, pilot):
        screen = app.main
        row = next(i for i, e in enumerate(screen.plain.rows) if e.plain_name == WIPE)
        screen.plain.move_to(row)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        dialog = app.screen
        assert isinstance(dialog, PromptScreen)
        assert dialog.value == "" and dialog.placeholder == SHOWN[WIPE]
        assert_terminal_safe(app.export_screenshot())
        await pilot.press(*"calm.txt", "enter")
        await wait_for(pilot, lambda: hostile.exists("calm.txt"))
        assert not hostile.exists(WIPE)


# -- a reverse-mode folder holding the same names: every read-only front end -------------------


def make_hostile_reverse_folder(root: Path) -> ReverseView:
    root.mkdir(parents=True)
    for name in HOSTILE_FILES:
        (root / name).write_bytes(b"hostile\n")
    (root / HOSTILE_DIR).mkdir()
    (root / HOSTILE_DIR / TITLE).write_bytes(b"deeper\n")
    os.symlink(LINK_TARGET, root / "link")
    (root / "plain.txt").write_bytes(b"ordinary\n")
    return new_vault.reverse_folder(root, PASSWORD, master_key=MASTER_KEY)


@pytest.fixture
def reverse_folder(tmp_path: Path) -> ReverseView:
    return make_hostile_reverse_folder(tmp_path / "plain")


def test_cli_reads_a_reverse_folder_and_shows_its_names_escaped(
    reverse_folder: ReverseView, passfile: Path, tmp_path: Path
) -> None:
    folder = ["--passfile", str(passfile), str(reverse_folder.plaindir)]
    for flags in (["-l"], ["-R"], ["--cipher"]):
        out = vaultsh("ls", *flags, *folder)
        assert out.returncode == 0, out.stderr
        assert_terminal_safe(out.stdout + out.stderr)
        for name in HOSTILE_FILES:
            assert SHOWN[name] in out.stdout.decode(), (flags, name)
    assert f"link -> {SHOWN[LINK_TARGET]}" in vaultsh("ls", "-l", *folder).stdout.decode()
    names = [*HOSTILE_FILES, f"{HOSTILE_DIR}/{TITLE}"]
    out = vaultsh("cat", *folder, *names)
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"hostile\n" * len(HOSTILE_FILES) + b"deeper\n"

    ciphers = [reverse_folder.encrypt_path(n) for n in names]
    enc = vaultsh("encrypt-paths", *folder, *names)
    assert enc.stdout.decode().splitlines() == ciphers
    shown = vaultsh("decrypt-paths", *folder, *ciphers)
    assert_terminal_safe(shown.stdout)
    assert shown.stdout.decode().splitlines()[: len(HOSTILE_FILES)] == [SHOWN[n] for n in HOSTILE_FILES]
    exact = vaultsh("decrypt-paths", "-0", *folder, *ciphers)
    assert exact.stdout == b"".join(os.fsencode(n) + b"\0" for n in names)

    # export writes the encrypted view: the directory under its encrypted name, with its diriv
    dest = tmp_path / "exported"
    dest.mkdir()
    out = vaultsh("export", *folder, HOSTILE_DIR, str(dest))
    assert out.returncode == 0, out.stderr
    dir_cipher, file_cipher = ciphers[-1].split("/")
    assert os.listdir(dest) == [dir_cipher]
    assert sorted(os.listdir(dest / dir_cipher)) == sorted([file_cipher, "gocryptfs.diriv"])

    # what does not apply, and what is missing: one line each, names escaped
    out = vaultsh("fsck", *folder)
    assert out.returncode == 1 and b"reverse-mode folder" in out.stderr
    assert out.stderr.decode().count("\n") == 1
    out = vaultsh("cat", *folder, f"{TITLE}-missing")
    assert out.returncode != 0 and out.stderr.decode().count("\n") == 1
    assert_terminal_safe(out.stderr)
    assert "$'\\033']0;PWNED$'\\a'title.txt-missing" in out.stderr.decode()
    out = vaultsh("decrypt-paths", *folder, "gocryptfs.conf")
    assert out.returncode == 1 and out.stderr.decode().count("gocryptfs.conf") == 1  # said once


def test_shell_reads_a_reverse_folder_and_shows_its_names_escaped(
    reverse_folder: ReverseView, passfile: Path
) -> None:
    typed = f"ls -l\ncd {SHOWN[HOSTILE_DIR]}\npwd\ncat {SHOWN[TITLE]}\ncat nope\x07\nrm {SHOWN[TITLE]}\n"
    out = vaultsh("shell", "--passfile", str(passfile), str(reverse_folder.plaindir), stdin=typed.encode())
    assert_terminal_safe(out.stdout)
    assert_terminal_safe(out.stderr)
    text, errors = out.stdout.decode(), out.stderr.decode()
    for name in HOSTILE_FILES:
        assert SHOWN[name] in text
    assert f"link -> {SHOWN[LINK_TARGET]}" in text
    assert "/red$'\\033'[31m!$'\\033'[0m\ndeeper\n" in text  # pwd, then cat in that directory
    assert "nope" in errors and "read-only" in errors
    assert (reverse_folder.plaindir / HOSTILE_DIR / TITLE).exists()


@pytest.mark.asyncio
async def test_tui_reads_a_reverse_folder_and_shows_its_names_escaped(
    reverse_folder: ReverseView, tmp_path: Path
) -> None:
    app = VaultApp(reverse_folder.plaindir, master_key=MASTER_KEY)
    async with app.run_test(size=(140, 40)) as pilot:
        await open_at(pilot, app)
        screen = app.main
        for line in pane_lines(screen):
            assert_terminal_safe(line)
        plain = "\n".join(row_text(screen.plain, e) for e in screen.plain.rows)
        for name in HOSTILE_FILES:
            assert SHOWN[name] in plain, name
        panel = screen.query_one("#info", InfoPanel)
        bell = select_plain(screen, BELL)
        await wait_for(pilot, lambda: "hostile" in panel.plain_text())  # the preview
        assert "$'/bell\\a.txt'" in panel.plain_text() and "In view" in panel.plain_text()
        await pilot.press("tab")  # the x-ray of the same entry, as the view serves it
        await wait_for(pilot, lambda: "Header" in panel.plain_text())
        assert SHOWN[BELL] in panel.plain_text() and bell.cipher_name in panel.plain_text()
        for text in (panel.plain_text(), str(panel.border_title)):
            assert_terminal_safe(text)

        await run_line(pilot, app, "ls -l")
        await wait_for(pilot, lambda: app.screen is not screen)  # more than a line: a panel too
        assert_terminal_safe(app.export_screenshot())
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        for line in (f"cat {SHOWN[TITLE]}", f"encrypt-path {SHOWN[INVALID_UTF8]}"):
            await run_line(pilot, app, line)
        assert_terminal_safe("\n".join(app.log_lines))
        assert f"link -> {SHOWN[LINK_TARGET]}" in log_text(app)
        assert "hostile" in app.log_lines  # cat
        assert app.log_lines[-1] == reverse_folder.encrypt_path(INVALID_UTF8)

        await pilot.press("tab", "slash", *"bell")  # the filter finds a name by its real text
        await wait_for(pilot, lambda: [e.plain_name for e in screen.plain.rows] == [BELL])
        await pilot.press("enter")
        select_plain(screen, BELL)
        await pilot.press("e")  # export: the entry as the view serves it, under its cipher name
        dest = tmp_path / "exported"
        dest.mkdir()
        await answer_prompt(pilot, app, str(dest))
        await command_done(pilot, app)
        assert os.listdir(dest) == [bell.cipher_name]
        assert (dest / bell.cipher_name).read_bytes() == b"".join(
            reverse_folder.iter_file(reverse_folder.resolve(bell.cipher_name))
        )

        await pilot.press("F")  # fsck does not apply: one line says why
        await pilot.pause()
        assert app.screen is screen and "reverse-mode folder" in app.log_lines[-1]
        assert_terminal_safe(app.export_screenshot())


# -- the last-resort error handler -------------------------------------------------------------


class _Boom(RuntimeError):
    pass


@pytest.mark.asyncio
async def test_a_bug_in_a_worker_is_one_log_line_and_the_app_goes_on(
    hostile: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vaultsh.tui import browser

    def describe_plain(*args: Any) -> Any:
        password = "hunter2-in-a-local"  # what Textual's traceback would have drawn
        raise _Boom(f"boom {len(password)}")

    app = VaultApp(hostile.cipherdir, master_key=MASTER_KEY)
    with pytest.raises(WorkerFailed) as raised:  # run_test re-raises what reached the handler
        async with app.run_test(size=(140, 40)) as pilot:
            await open_at(pilot, app)
            monkeypatch.setattr(browser, "describe_plain", describe_plain)
            app.main.plain.move_to(1)
            await wait_for(pilot, lambda: any("internal error" in line for line in app.log_lines))
            assert app.return_code is None  # still running
            line = next(line for line in app.log_lines if "internal error" in line)
            assert line == "internal error (_Boom: boom 18); VAULTSH_DEBUG=1 shows details"
            assert "hunter2" not in app.export_screenshot()
            app.main.plain.move_to(0)
            await pilot.press("q")
    assert "boom" in str(raised.value)


@pytest.mark.asyncio
async def test_a_bug_in_a_handler_ends_the_app_with_one_line(
    hostile: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: MainScreen) -> None:
        secret_preview = "hunter2-preview"
        raise _Boom(f"handler {len(secret_preview)}")

    monkeypatch.setattr(MainScreen, "action_switch_pane", broken)
    app = VaultApp(hostile.cipherdir, master_key=MASTER_KEY)
    exit_text: list[str] = []
    with pytest.raises(_Boom):
        async with app.run_test(size=(140, 40)) as pilot:
            await open_at(pilot, app)
            await pilot.press("tab")
            await wait_for(pilot, lambda: app.return_code is not None)
            exit_text.extend(str(r) for r in app._exit_renderables)
    assert app.return_code == 11
    assert exit_text == ["vaultsh: internal error (_Boom: handler 15); VAULTSH_DEBUG=1 shows details"]


# -- a real terminal -------------------------------------------------------------------------


def info_title(screen: str) -> str:
    """The info panel's title line (it names the entry under the cursor)."""
    return next((line for line in screen.splitlines() if "Preview  " in line), "")


def test_hostile_names_in_a_real_terminal_ring_no_bell_set_no_title_and_show_escaped(
    hostile: Vault, passfile: Path, tmp_path: Path, tmux_session: str
) -> None:
    status = tmp_path / "status"
    command = vaultsh_command(status, "--passfile", passfile, hostile.cipherdir)
    window = tmux(
        "new-session", "-d", "-P", "-F", "#{window_id}", "-s", tmux_session, "-x", "140", "-y", "40"
    )
    target = window.strip()
    tmux("set-option", "-t", tmux_session, "window-size", "manual")
    tmux("resize-window", "-t", target, "-x", "140", "-y", "40")
    # Titles and bells are what a hostile name would change, and tmux records both: the pane
    # title, and a bell flag on a window that is not the current one (hence a second window).
    tmux("set-option", "-t", tmux_session, "allow-rename", "on")
    tmux("select-pane", "-t", target, "-T", "before")
    tmux("new-window", "-t", tmux_session)
    tmux("send-keys", "-t", target, "-l", command)
    tmux("send-keys", "-t", target, "Enter")

    def flag(name: str) -> str:
        return tmux("display-message", "-p", "-t", target, f"#{{{name}}}").strip()

    screen = wait_screen(target, lambda s: "plain.txt" in s and "bell" in s)
    assert flag("pane_title") == "before"
    assert flag("window_bell_flag") == "0"
    assert "$'\\033]0;PWNED\\atitle.txt'" in screen
    assert "$'bad\\377\\376.txt'" in screen
    assert "$'csi\\302\\23331m.txt'" in screen
    assert "$'bell\\a.txt'" in screen
    assert "Plain" in screen and "Cipher" in screen  # \x1b[2J did not wipe the panes
    # The link's target shows in the info panel when the cursor is on it.
    for _ in range(len(HOSTILE_FILES) + 3):
        shown = info_title(capture(target))
        if "link" in shown:
            break
        tmux("send-keys", "-t", target, "j")
        wait_screen(target, lambda s, shown=shown: info_title(s) != shown)  # type: ignore[misc]
    wait_screen(target, lambda s: "$'\\033]0;PWNED\\atarget'" in s)
    assert flag("pane_title") == "before"
    assert flag("window_bell_flag") == "0"
    tmux("send-keys", "-t", target, "q")
    assert exit_status(status) == "exit=0"


def test_the_escaped_form_ls_shows_can_be_pasted_back_into_the_shell(hostile: Vault) -> None:
    sh = Shell(hostile)
    lines = [f"cat {SHOWN[name]}" for name in HOSTILE_FILES]
    sh.type("\n".join([*lines, f"cd {SHOWN[HOSTILE_DIR]}", f"cat {SHOWN[TITLE]}", "\x04"]) + "\n")
    assert sh.err.getvalue() == ""
    assert sh.lines() == ["hostile"] * len(HOSTILE_FILES) + ["deeper"]


def test_split_line_reads_bash_quoting(hostile: Vault) -> None:
    assert split_line("""a 'b c' "d\\"e" f\\ g '' $'x\\ty\\'z' p$'\\302\\233'q""") == [
        "a",
        "b c",
        'd"e',
        "f g",
        "",
        "x\ty'z",
        "p\x9bq",
    ]
    assert split_line("cat $'\\377\\376'") == ["cat", os.fsdecode(b"\xff\xfe")]
    with pytest.raises(ValueError, match="closing"):
        split_line("cat $'open")
    with pytest.raises(ValueError, match="closing"):
        split_line("cat 'open")


def test_completion_inserts_a_hostile_name_in_its_escaped_form(hostile: Vault) -> None:
    session = Session(hostile, hostile.cipherdir, ShellIO(io.StringIO(), io.StringIO()))
    found = list(VaultCompleter(session).get_completions(Document("cd red"), CompleteEvent()))
    assert [c.text for c in found] == ["$'red\\033[31m!\\033[0m/'"]
    assert split_line(found[0].text) == [HOSTILE_DIR + "/"]
    assert found[0].display_text == SHOWN[HOSTILE_DIR] + "/"


def test_shell_cat_shows_crlf_text_plainly_and_escapes_in_file_controls(hostile: Vault) -> None:
    hostile.write_file("dos.txt", b"first\r\nclear\x1b[2J here\r\n")
    sh = Shell(hostile)
    sh.type("cat dos.txt\n\x04")
    assert sh.lines() == ["first", "clear$'\\033'[2J here"]


@pytest.mark.asyncio
async def test_tui_titles_and_notifications_never_read_names_as_markup(tmp_path: Path) -> None:
    """A name like Rich markup ("[link=…]" would make a hyperlink) is shown as the name."""
    root = tmp_path / "markup"
    vault = new_vault(root, PASSWORD, master_key=MASTER_KEY)
    vault.mkdir("[b]deep")
    vault.write_file("[b]deep/[link=evil.example]x", b"x\n")
    async with opened_at(root) as (app, pilot):
        screen = app.main
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.cwd == "[b]deep" and not screen.dir_loading)
        screen.plain.move_to(0)
        panel = screen.query_one("#info", InfoPanel)
        await wait_for(pilot, lambda: "Preview" in str(panel.border_title) and "x" in panel.plain_text())
        app.log_line("cannot read /[link=http://evil.example]y[/link]", "error")
        await pilot.pause()
        svg = app.export_screenshot()
        assert "Plain&#160;&#160;/[b]deep" in svg  # the pane title, literally
        assert "Preview&#160;&#160;[link=evil.example]x" in svg  # the info title
        assert "[link=http://evil.example]y[/link]" in svg  # the log line and its notification
