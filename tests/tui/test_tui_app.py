"""The two-pane TUI driven with real keys through Textual's Pilot: unlock, browse, link, change, mount."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fuse_harness import kernel_mounted
from textual import events
from textual.widgets import Input
from tui_harness import (
    LONG_NAME,
    MASTER_KEY,
    PASSWORD,
    SIZE,
    answer_passwords,
    answer_prompt,
    command_done,
    enter_line,
    exit_status,
    footer_actions,
    info_text,
    log_text,
    make_reverse_folder,
    make_vault,
    masterkey_from_command_line,
    mount_with_keys,
    open_at,
    opened_at,
    row_text,
    select_plain,
    shows_mount,
    start_in_tmux,
    status_text,
    tmux,
    type_text,
    unlock_in_tmux,
    vaultsh_command,
    wait_for,
    wait_screen,
    wrong_password_refused,
)
from vault_factory import new_vault

from vaultsh.service import mounts
from vaultsh.service.transfer import Cancelled
from vaultsh.tui import bridge
from vaultsh.tui.app import VaultApp
from vaultsh.tui.entries import ROLE_BAD, ROLE_DIRIV, ROLE_OBJECT, ROLE_SIDECAR, Entry
from vaultsh.tui.inspect import InfoPanel
from vaultsh.tui.main_screen import MainScreen
from vaultsh.tui.panes import EntryList
from vaultsh.tui.screens import (
    ChoiceScreen,
    ConfirmScreen,
    HelpScreen,
    PasswordScreen,
    SecretScreen,
)
from vaultsh.vault.config import CONF_NAME
from vaultsh.vault.errors import ExitCode, PasswordIncorrectError
from vaultsh.vault.keys import format_master_key
from vaultsh.vault.names import b64_encode, pad16
from vaultsh.vault.tree import TreeNode, VaultTree
from vaultsh.vault.vault import Vault


def main_of(app: VaultApp) -> MainScreen:
    return app.main


# -- unlocking -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_unlock_dialog_wrong_then_right_password(vault_dir: Path) -> None:
    app = VaultApp(vault_dir)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await wrong_password_refused(pilot, app)
        assert app.session is None
        assert dialog.query_one("#password", Input).value == ""
        await type_text(pilot, PASSWORD)
        await pilot.press("enter")
        await open_at(pilot, app)
        screen = main_of(app)
        assert isinstance(app.screen, MainScreen)
        names = {e.plain_name for e in screen.plain.rows}
        assert names == {"docs", "notes.txt", "binary.bin", LONG_NAME}
        assert screen.plain.rows[0].plain_name == "docs"  # directories first
        assert app.focused is screen.plain


@pytest.mark.asyncio
async def test_escape_in_password_dialog_exits_with_code_12(vault_dir: Path) -> None:
    app = VaultApp(vault_dir)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PasswordScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.return_code is not None)
    assert app.return_code == int(ExitCode.PASSWORD_INCORRECT) == 12


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["vault", "reverse folder"])
async def test_given_wrong_password_exits_with_its_code(tmp_path: Path, kind: str) -> None:
    root = tmp_path / kind
    if kind == "vault":
        make_vault(root)
    else:
        make_reverse_folder(root)
    app = VaultApp(root, password=b"nope")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.return_code is not None)
    assert app.return_code == PasswordIncorrectError.exit_code


# -- browsing ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_navigation_into_and_out_of_a_directory(vault_dir: Path) -> None:
    async with opened_at(vault_dir) as (app, pilot):
        screen = main_of(app)
        assert screen.plain.current is not None and screen.plain.current.plain_name == "docs"
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.cwd == "docs" and not screen.dir_loading)
        assert [e.plain_name for e in screen.plain.rows] == ["report.txt"]
        cipher_roles = sorted(e.role for e in screen.cipher.rows)
        assert cipher_roles == [ROLE_DIRIV, ROLE_OBJECT]
        assert screen.dir_node is not None
        docs = vault_dir / screen.dir_node.cipher_path
        assert docs == Vault.open(vault_dir, master_key=MASTER_KEY).cipher_path("docs")
        await pilot.press("backspace")
        await wait_for(pilot, lambda: screen.cwd == "" and not screen.dir_loading)
        assert screen.plain.current is not None and screen.plain.current.plain_name == "docs"
        await pilot.press("j", "j")
        assert screen.plain.cursor == 2
        await pilot.press("k")
        assert screen.plain.cursor == 1
        await pilot.press("l")  # a file: preview, not a directory change
        await pilot.pause()
        assert screen.cwd == ""


@pytest.mark.asyncio
async def test_linked_cursors_plain_to_cipher_marks_sidecar_and_diriv(vault_dir: Path) -> None:
    async with opened_at(vault_dir) as (app, pilot):
        screen = main_of(app)
        assert app.session is not None
        vault = app.session.vault_for("x-ray")
        for name in ("notes.txt", LONG_NAME, "docs"):
            entry = select_plain(screen, name)
            await pilot.pause()
            selected = screen.cipher.current
            assert selected is entry
            assert selected.cipher_name == vault.cipher_path(name).name
            marked = {e.cipher_name for e in screen.cipher.all_entries if id(e) in screen.cipher.marked}
            expected = {"gocryptfs.diriv"}
            if name == LONG_NAME:
                assert selected.cipher_name.startswith("gocryptfs.longname.")
                expected.add(selected.cipher_name + ".name")
            assert marked == expected
            sidecar_row = row_text(screen.cipher, screen.cipher_by_name["gocryptfs.diriv"])
            assert sidecar_row.startswith("◆")


@pytest.mark.asyncio
async def test_linked_cursors_cipher_to_plain(vault_dir: Path) -> None:
    async with opened_at(vault_dir) as (app, pilot):
        screen = main_of(app)
        await pilot.press("tab")
        assert app.focused is screen.cipher
        seen: set[str] = set()
        for row in range(len(screen.cipher.rows)):
            screen.cipher.move_to(row)
            await pilot.pause()
            entry = screen.cipher.rows[row]
            if entry.role == ROLE_OBJECT:
                assert screen.plain.current is entry
                seen.add(entry.plain_name or "")
            elif entry.role == ROLE_SIDECAR:
                # the .name file selects the object it names, which is marked beside it
                owner = screen.cipher_by_name[entry.owner_name or ""]
                assert screen.plain.current is owner
                assert owner.plain_name == LONG_NAME
                assert id(owner) in screen.cipher.marked
                seen.add("sidecar")
        assert seen == {"docs", "notes.txt", "binary.bin", LONG_NAME, "sidecar"}
        # Moving with keys in the cipher pane moves the plain cursor too.
        screen.cipher.move_to(len(screen.cipher.rows) - 1)
        await pilot.press("up")
        await pilot.pause()
        current = screen.cipher.current
        assert current is not None
        if current.role == ROLE_OBJECT:
            assert screen.plain.current is current


@pytest.mark.asyncio
async def test_conflict_copies_and_stray_files_are_flagged_and_explained(vault_dir: Path) -> None:
    async with opened_at(vault_dir) as (app, pilot):
        screen = main_of(app)
        bad = {e.cipher_name: e for e in screen.cipher.all_entries if e.role == ROLE_BAD}
        notes_cipher = screen.plain.rows[[e.plain_name for e in screen.plain.rows].index("notes.txt")]
        conflict_name = notes_cipher.cipher_name + " (conflicted copy 2024-05-01)"
        assert set(bad) == {conflict_name, "stray file.txt"}
        # never hidden, never in the plain pane, flagged with a marker
        assert all(e not in screen.plain.all_entries for e in bad.values())
        for e in bad.values():
            assert row_text(screen.cipher, e).startswith("!")
        await pilot.press("tab")
        screen.cipher.select(bad[conflict_name], notify=True)
        await wait_for(pilot, lambda: "sync-conflict" in info_text(app))
        text = info_text(app)
        assert "Copy of" in text and "notes.txt" in text
        screen.cipher.select(bad["stray file.txt"], notify=True)
        await wait_for(pilot, lambda: "stray file" in info_text(app))
        assert "hides this entry" in info_text(app)
        assert "2 undecryptable" in str(screen.query_one("#cipher-pane").border_subtitle)


@pytest.mark.asyncio
async def test_info_panel_preview_hex_and_xray(vault_dir: Path) -> None:
    async with opened_at(vault_dir) as (app, pilot):
        screen = main_of(app)
        assert app.session is not None
        vault = app.session.vault_for("x-ray")
        select_plain(screen, "notes.txt")
        await wait_for(pilot, lambda: "hello from the vault" in info_text(app))
        assert "second line" in info_text(app)
        select_plain(screen, "binary.bin")
        await wait_for(pilot, lambda: "00000000  00 01 02 03" in info_text(app))
        # x-ray of the same file from the cipher side: header file ID as on disk
        await pilot.press("tab")
        await wait_for(pilot, lambda: "X-ray" in str(screen.query_one("#info", InfoPanel).border_title))
        header = vault.cipher_path("binary.bin").read_bytes()[:18]
        text = info_text(app)
        assert f"version 2, file ID {header[2:].hex()}" in text
        assert "1 block of" in text and "AES-GCM-256" in text
        assert f"{18 + 32} bytes = 18 header + 1 × 32" in text
        diriv = (vault_dir / "gocryptfs.diriv").read_bytes().hex()
        assert diriv in text
        # long name: hash and sidecar explained
        await pilot.press("tab")
        long_entry = select_plain(screen, LONG_NAME)
        await pilot.press("tab")
        await wait_for(pilot, lambda: "Long name" in info_text(app))
        assert long_entry.cipher_name[len("gocryptfs.longname.") :] in info_text(app).replace("\n", "")


@pytest.mark.asyncio
async def test_filter_by_plain_name_is_incremental_and_escape_clears(vault_dir: Path) -> None:
    async with opened_at(vault_dir) as (app, pilot):
        screen = main_of(app)
        await pilot.press("slash")
        await type_text(pilot, "n")
        assert {e.plain_name for e in screen.plain.rows} == {"notes.txt", "binary.bin", LONG_NAME}
        await type_text(pilot, "ot")
        assert [e.plain_name for e in screen.plain.rows] == ["notes.txt"]
        objects = [e for e in screen.cipher.rows if e.role == ROLE_OBJECT]
        assert objects == screen.plain.rows  # the cipher pane narrows to the same objects
        await pilot.press("enter")  # keep the filter, back to the list
        assert app.focused is screen.plain
        assert len(screen.plain.rows) == 1
        await pilot.press("escape")
        assert len(screen.plain.rows) == 4


# -- changing the vault through keys -----------------------------------------------------------


@pytest.mark.asyncio
async def test_export_with_progress_decrypts_files(vault_dir: Path, tmp_path: Path) -> None:
    vault = Vault.open(vault_dir, master_key=MASTER_KEY)
    big = os.urandom(3 << 20)
    vault.write_file("docs/big.bin", big)
    dest = tmp_path / "out"
    dest.mkdir()
    seen: list[tuple[int, int]] = []
    async with opened_at(vault_dir) as (app, pilot):
        io = app.io
        real_progress = io.progress

        def spy(done: int, total: int) -> None:
            seen.append((done, total))
            real_progress(done, total)

        io.progress = spy  # type: ignore[method-assign]
        select_plain(main_of(app), "docs")
        await pilot.press("f5")
        await answer_prompt(pilot, app, str(dest))
        await command_done(pilot, app)
        assert not app.main.query_one("#transfer").display
    assert (dest / "docs" / "report.txt").read_bytes() == b"quarterly numbers\n"
    assert (dest / "docs" / "big.bin").read_bytes() == big
    assert seen and seen[-1] == (len(big) + 18, len(big) + 18)
    assert "exported 2 files" in log_text(app)


@pytest.mark.asyncio
async def test_export_can_be_cancelled_with_escape(vault_dir: Path, tmp_path: Path) -> None:
    vault = Vault.open(vault_dir, master_key=MASTER_KEY)
    vault.write_file("docs/big.bin", os.urandom(4 << 20))
    dest = tmp_path / "out"
    dest.mkdir()
    async with opened_at(vault_dir) as (app, pilot):
        gate = threading.Event()
        io = app.io
        real_progress = io.progress

        def held_progress(done: int, total: int) -> None:
            real_progress(done, total)
            gate.wait(10)  # hold the export after its first chunk until Esc was pressed

        io.progress = held_progress  # type: ignore[method-assign]
        select_plain(main_of(app), "docs")
        await pilot.press("e")
        await answer_prompt(pilot, app, str(dest))
        await wait_for(pilot, lambda: app.main.busy)
        await pilot.pause()
        bar = app.main.query_one("#transfer")
        assert bar.display
        await wait_for(pilot, lambda: bar.query_one("ProgressBar").progress > 0)  # type: ignore[attr-defined]
        await pilot.press("escape")
        assert io.cancelled()
        gate.set()
        await command_done(pilot, app)
    assert "cancelled" in log_text(app)
    assert not (dest / "docs" / "big.bin").exists()


@pytest.mark.asyncio
async def test_mkdir_rename_delete_through_keys(vault_dir: Path) -> None:
    async with opened_at(vault_dir) as (app, pilot):
        screen = main_of(app)
        await pilot.press("f7")
        await answer_prompt(pilot, app, "photos")
        await command_done(pilot, app)
        assert "photos" in {e.plain_name for e in screen.plain.rows}
        assert screen.plain.current is not None and screen.plain.current.plain_name == "photos", app.focused
        vault = Vault.open(vault_dir, master_key=MASTER_KEY)
        assert vault.stat("photos").kind == "dir"

        await pilot.press("r")
        await answer_prompt(pilot, app, "pictures")
        await command_done(pilot, app)
        names = {e.plain_name for e in screen.plain.rows}
        assert "pictures" in names and "photos" not in names
        assert vault.exists("pictures") and not vault.exists("photos")

        select_plain(screen, "docs")
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")  # keep it
        await command_done(pilot, app)
        assert vault.exists("docs/report.txt")
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await command_done(pilot, app)
        assert not vault.exists("docs")
        assert "docs" not in {e.plain_name for e in screen.plain.rows}


@pytest.mark.asyncio
async def test_passwd_through_dialogs_then_new_password_opens(vault_dir: Path) -> None:
    app = VaultApp(vault_dir, password=PASSWORD.encode())
    async with app.run_test(size=SIZE) as pilot:
        await open_at(pilot, app)
        await pilot.press("p")
        # Unlocked with the password: the old one is asked again, then the new one twice.
        await answer_passwords(pilot, app, PASSWORD, "new secret", "new secret")
        await command_done(pilot, app)
        assert "Password changed" in log_text(app)
        assert "new secret" not in log_text(app)
    assert Vault.open(vault_dir, password=b"new secret").keys.master_key == MASTER_KEY
    with pytest.raises(PasswordIncorrectError):
        Vault.open(vault_dir, password=PASSWORD.encode())
    assert (vault_dir / (CONF_NAME + ".bak")).exists()


@pytest.mark.asyncio
async def test_master_key_shown_after_password(vault_dir: Path) -> None:
    async with opened_at(vault_dir) as (app, pilot):
        await pilot.press("K")
        await wrong_password_refused(pilot, app)
        assert isinstance(app.screen, PasswordScreen)
        await type_text(pilot, PASSWORD)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SecretScreen))
        shown = app.screen
        assert isinstance(shown, SecretScreen)
        assert shown.secret == format_master_key(MASTER_KEY)
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)
        assert format_master_key(MASTER_KEY) not in log_text(app)


@pytest.mark.asyncio
async def test_masterkey_command_shows_the_key_in_a_dialog_never_in_the_log(vault_dir: Path) -> None:
    async with opened_at(vault_dir) as (app, pilot):
        assert await masterkey_from_command_line(pilot, app) == format_master_key(MASTER_KEY)
        await pilot.press("escape")
        await command_done(pilot, app)
        assert isinstance(app.screen, MainScreen)
        assert "> masterkey" in log_text(app)
        key_groups = format_master_key(MASTER_KEY).split("-")
        assert not any(group in log_text(app) for group in key_groups)


# -- themes, help, command line ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_theme_cycles_and_theme_command(vault_dir: Path) -> None:
    async with opened_at(vault_dir) as (app, pilot):
        assert app.theme == "vaultsh-dark"
        assert {"vaultsh-dark", "vaultsh-light", "vaultsh-high-contrast"} <= set(app.theme_names)
        seen = {app.theme}
        for _ in range(len(app.theme_names)):
            await pilot.press("t")
            seen.add(app.theme)
        assert seen == set(app.theme_names)
        assert app.theme == "vaultsh-dark"  # came round again
        await pilot.press("colon")
        await type_text(pilot, "theme vaultsh-light")
        await pilot.press("enter")
        await command_done(pilot, app)
        assert app.theme == "vaultsh-light"
        await pilot.press("colon")
        await type_text(pilot, "theme nosuch")
        await pilot.press("enter")
        await command_done(pilot, app)
        assert app.theme == "vaultsh-light"
        assert "unknown theme" in log_text(app)


@pytest.mark.asyncio
async def test_theme_argument_is_applied(vault_dir: Path) -> None:
    async with opened_at(vault_dir, theme="vaultsh-high-contrast") as (app, _pilot):
        assert app.theme == "vaultsh-high-contrast"


@pytest.mark.asyncio
async def test_help_screen_lists_every_key(vault_dir: Path) -> None:
    async with opened_at(vault_dir) as (app, pilot):
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        keys = dict(app.screen.keys)
        for label in ("Tab", "F5 / e", "F6 / i", "F7 / M", "F8 / d", "r", "m", "u", "p", "K", "I",
                      "Ctrl-R", "t", "F1 / ?", "F2 / :", "F10 / q", "/", "Backspace / h / ←"):  # fmt: skip
            assert label in keys, label
        assert any("k" in k and "j" in k for k in keys)
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("q")  # closes the help, does not quit
        assert isinstance(app.screen, MainScreen)
        assert app.return_code is None


@pytest.mark.asyncio
async def test_command_line_runs_registry_commands(vault_dir: Path) -> None:
    async with opened_at(vault_dir) as (app, pilot):
        screen = main_of(app)
        await pilot.press("f2")
        assert screen.query_one("#cmdline", Input).has_focus
        await type_text(pilot, "ls docs")
        await pilot.press("enter")
        await command_done(pilot, app)
        assert "> ls docs" in log_text(app)
        assert "report.txt" in log_text(app)
        assert not screen.query_one("#cmdline", Input).display
        await pilot.press("colon")
        await type_text(pilot, "cd docs")
        await pilot.press("enter")
        await command_done(pilot, app)
        assert screen.cwd == "docs"
        assert [e.plain_name for e in screen.plain.rows] == ["report.txt"]
        await pilot.press("colon")
        await type_text(pilot, "frobnicate")
        await pilot.press("enter")
        await command_done(pilot, app)
        assert "unknown command" in log_text(app)


@pytest.mark.asyncio
async def test_keys_typed_right_after_the_colon_go_into_the_command_line(vault_dir: Path) -> None:
    """As a terminal delivers fast typing: every key queued before the first is handled."""
    async with opened_at(vault_dir) as (app, pilot):
        screen = main_of(app)
        names = {":": "colon", " ": "space", "/": "slash"}
        for ch in ":cd /docs":  # "d" alone would delete, "/" would filter
            app.post_message(events.Key(names.get(ch, ch), ch))
        app.post_message(events.Key("enter", "\r"))
        await command_done(pilot, app)
        await wait_for(pilot, lambda: screen.cwd == "docs" and not screen.dir_loading)
        assert "> cd /docs" in log_text(app)
        assert isinstance(app.screen, MainScreen) and screen.input_mode == "command"
        assert not screen.query_one("#cmdline", Input).display
        assert app.focused is screen.plain


@pytest.mark.asyncio
async def test_quit_key_exits_when_not_mounted(vault_dir: Path) -> None:
    async with opened_at(vault_dir) as (app, pilot):
        await pilot.press("q")
        await wait_for(pilot, lambda: app.return_code is not None)
    assert app.return_code == 0


# -- rough edges: empty listings, long names, long lines -------------------------------------------


def first_row(lst: EntryList) -> str:
    return lst.render_line(0).text.strip()


@pytest.mark.asyncio
async def test_empty_directory_and_a_filter_without_match_say_so(vault_dir: Path) -> None:
    Vault.open(vault_dir, master_key=MASTER_KEY).mkdir("empty")
    async with opened_at(vault_dir) as (app, pilot):
        screen = main_of(app)
        assert first_row(screen.plain).startswith("▶")  # the first entry, not a hint
        select_plain(screen, "empty")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.cwd == "empty" and not screen.dir_loading)
        assert screen.plain.rows == []
        assert first_row(screen.plain) == "(empty directory)"
        assert [e.cipher_name for e in screen.cipher.rows] == ["gocryptfs.diriv"]
        await pilot.press("backspace")
        await wait_for(pilot, lambda: screen.cwd == "" and not screen.dir_loading)
        await pilot.press("slash")
        await type_text(pilot, "zzz")
        assert screen.plain.rows == []
        assert first_row(screen.plain) == "(no name contains “zzz”: Esc clears the filter)"
        await pilot.press("escape")
        assert len(screen.plain.rows) == 5
        assert first_row(screen.plain).startswith("▶")


@pytest.mark.asyncio
async def test_long_names_stay_readable_in_titles_dialogs_and_the_log(vault_dir: Path) -> None:
    vault = Vault.open(vault_dir, master_key=MASTER_KEY)
    parts = [f"directory-number-{i}-with-a-long-name" for i in range(4)]
    for depth in range(1, len(parts) + 1):
        vault.mkdir("/".join(parts[:depth]))
    deep = "/".join(parts)
    async with opened_at(vault_dir) as (app, pilot):
        screen = main_of(app)
        # The pane title keeps the deepest directory in view, cut in the middle to fit.
        screen.load_dir(deep)
        await wait_for(pilot, lambda: screen.cwd == deep and not screen.dir_loading)
        pane = screen.query_one("#plain-pane")
        title = str(pane.border_title)
        assert title.endswith(parts[-1]) and "…" in title
        assert len(title) <= pane.size.width - 4
        cipher_title = str(screen.query_one("#cipher-pane").border_title)
        assert cipher_title.endswith(vault.cipher_path(deep).name[-30:]) and "…" in cipher_title
        # A long name in a question wraps inside the dialog instead of being cut.
        screen.load_dir("")
        await wait_for(pilot, lambda: screen.cwd == "" and not screen.dir_loading)
        select_plain(screen, LONG_NAME)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.pause()
        question = app.screen.query_one(".dialog-question")
        dialog = app.screen.query_one(".dialog")
        assert LONG_NAME in str(question.render())
        assert question.size.height > 1 and question.size.width <= dialog.size.width
        await pilot.press("n")
        # A long log line wraps at the log's width: every word of it is on screen.
        line = "mounted " + " ".join(parts) + " and all of it is readable"
        app.log_line(line, "")
        await pilot.pause()
        log = screen.query_one("#log")
        width = log.scrollable_content_region.width
        shown = [log.render_line(y).text for y in range(log.scrollable_content_region.height)]
        assert all(len(row) <= width for row in shown)
        assert " ".join(" ".join(shown).split()).endswith(line)


def test_io_ask_secret_cancel_raises_cancelled() -> None:
    io = bridge.TuiIO.__new__(bridge.TuiIO)
    io.ask = lambda screen: None  # type: ignore[method-assign]
    with pytest.raises(Cancelled):
        io.ask_secret("Password: ")


# -- a huge directory --------------------------------------------------------------------------


def make_huge_dir(root: Path, count: int) -> Vault:
    """`count` empty files with real encrypted names, written straight to the cipher dir."""
    vault = new_vault(root, PASSWORD, master_key=MASTER_KEY)
    iv = vault.dir_iv(root)
    plain = [f"file-{i:06d}.txt".encode() for i in range(count)]
    for start in range(0, count, 10_000):
        chunk = plain[start : start + 10_000]
        for raw in vault.keys.eme.encrypt_many(iv, [pad16(p) for p in chunk]):
            os.mknod(root / b64_encode(raw, vault.options.raw64))
    return vault


@pytest.mark.asyncio
async def test_huge_directory_stays_responsive_while_names_stream_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = 100_000
    make_huge_dir(tmp_path / "huge", count)
    held = threading.Event()
    release = threading.Event()
    real_scan = VaultTree.cipher_entries

    def gated_scan(tree: VaultTree, directory: TreeNode, **kwargs: Any) -> Iterator[list[Entry]]:
        # Hold the loader after its first batch, so the test sees the half-loaded state for sure.
        for n, batch in enumerate(real_scan(tree, directory, **kwargs)):
            yield batch
            if n == 0:
                held.set()
                release.wait(60)

    monkeypatch.setattr(VaultTree, "cipher_entries", gated_scan)
    app = VaultApp(tmp_path / "huge", master_key=MASTER_KEY)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: held.is_set() and len(app.main.plain.rows) > 0)
        screen = main_of(app)
        assert screen.dir_loading
        first_rows = len(screen.plain.rows)
        assert 0 < first_rows < count
        assert str(screen.query_one("#plain-pane").border_subtitle).startswith("loading")
        await pilot.press("j", "j", "j")
        assert screen.plain.cursor == 3
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert screen.dir_loading
        cursor_entry = screen.plain.current
        release.set()
        await wait_for(pilot, lambda: not screen.dir_loading, steps=2000)
        assert len(screen.plain.rows) == count
        names = [e.plain_name or "" for e in screen.plain.rows]
        assert names[:3] == ["file-000000.txt", "file-000001.txt", "file-000002.txt"]
        assert names == sorted(names)
        assert screen.plain.current is cursor_entry  # the cursor kept its entry through the sort
        await pilot.press("end")
        assert screen.plain.current is not None
        assert screen.plain.current.plain_name == f"file-{count - 1:06d}.txt"
        await pilot.pause()
        assert screen.cipher.current is screen.plain.current


# -- mounting ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_mount_and_unmount_through_a_real_worker(vault_dir: Path, mountpoint: Path) -> None:
    async with opened_at(vault_dir) as (app, pilot):
        await pilot.pause()
        assert "unmount" not in footer_actions(app) and "mount" in footer_actions(app)
        await pilot.press("u")  # not mounted: says so, runs nothing
        await pilot.pause()
        assert "not mounted (m mounts it)" in log_text(app) and not app.main.busy
        await mount_with_keys(pilot, app, mountpoint)
        assert (mountpoint / "notes.txt").read_bytes() == b"hello from the vault\nsecond line\n"
        status = status_text(app)
        assert shows_mount(status, "forward rw", mountpoint), status
        assert len(status) <= SIZE[0] - 2  # fitted to the status bar
        await wait_for(pilot, lambda: "unmount" in footer_actions(app))
        await pilot.press("u")
        await command_done(pilot, app)
        assert not kernel_mounted(mountpoint)
        await wait_for(pilot, lambda: app.main.mount_info is None, steps=800)
        assert "not mounted" in status_text(app)
        await wait_for(pilot, lambda: "unmount" not in footer_actions(app))


@pytest.mark.asyncio
async def test_killed_worker_shows_a_stale_mount_that_u_clears(vault_dir: Path, mountpoint: Path) -> None:
    async with opened_at(vault_dir) as (app, pilot):
        await mount_with_keys(pilot, app, mountpoint)
        info = mounts.find_mount(vault_dir)
        assert info is not None and info.alive and info.mountpoint == str(mountpoint)
        os.kill(info.pid, signal.SIGKILL)
        await wait_for(pilot, lambda: "mount stale: worker gone — press u to clear" in status_text(app))
        assert kernel_mounted(mountpoint)  # dead, not gone: the kernel still lists it
        assert f"the mount at {mountpoint} is stale" in log_text(app)
        # The screen still answers (nothing waits on the dead mount) ...
        screen = main_of(app)
        await pilot.press("j")
        assert screen.plain.cursor == 1
        # ... and m is refused: a new mount there would lose the stale one's record.
        assert "mount" not in footer_actions(app) and "unmount" in footer_actions(app)
        await pilot.press("m")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert "press u to clear it first" in log_text(app)
        # Quitting asks about the stale mount too.
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen))
        assert "is stale" in app.screen.question  # type: ignore[attr-defined]
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press("u")
        await command_done(pilot, app)
        assert not kernel_mounted(mountpoint), log_text(app)
        assert not os.path.ismount(mountpoint)  # safe now: nothing is mounted there
        await wait_for(pilot, lambda: app.main.mount_info is None, steps=800)
        assert "not mounted" in status_text(app)
        assert mounts.find_mount(vault_dir) is None  # the record is gone too


@pytest.mark.asyncio
async def test_quit_while_mounted_cancel_then_unmount_and_quit(vault_dir: Path, mountpoint: Path) -> None:
    async with opened_at(vault_dir) as (app, pilot):
        await enter_line(pilot, app, f"mount {mountpoint}")
        await command_done(pilot, app)
        await wait_for(pilot, lambda: app.main.mount_info is not None, steps=800)
        for key, cancel in (("q", "escape"), ("ctrl+q", "c")):
            await pilot.press(key)
            await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen))
            assert f"mounted at {mountpoint}" in app.screen.question  # type: ignore[attr-defined]
            await pilot.press(cancel)
            await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
            assert app.return_code is None and kernel_mounted(mountpoint)
        assert app.focused is main_of(app).plain
        # `exit` asks as q does; cancelled, the session goes on (commands refresh the panes).
        await enter_line(pilot, app, "exit")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen))
        await pilot.press("c")
        await command_done(pilot, app)
        await enter_line(pilot, app, "mkdir newdir")
        await command_done(pilot, app)
        assert "newdir" in {e.plain_name for e in main_of(app).plain.rows}
        # A busy mount (a file open in it) is not unmounted: the app says so and stays.
        with open(mountpoint / "notes.txt", "rb"):
            await pilot.press("q")
            await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen))
            await pilot.press("u")
            await wait_for(pilot, lambda: "not quitting" in log_text(app), steps=800)
            assert app.return_code is None and kernel_mounted(mountpoint) and not app.main.busy
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen))
        await pilot.press("u")
        await wait_for(pilot, lambda: app.return_code is not None, steps=800)
    assert app.return_code == 0
    assert not kernel_mounted(mountpoint)
    assert app.exit_notice is None


@pytest.mark.asyncio
async def test_quit_leaving_the_mount_says_where_it_stays(vault_dir: Path, mountpoint: Path) -> None:
    async with opened_at(vault_dir) as (app, pilot):
        await mount_with_keys(pilot, app, mountpoint)
        await enter_line(pilot, app, "exit")  # the command asks as q does
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen))
        await pilot.press("l")
        await wait_for(pilot, lambda: app.return_code is not None, steps=800)
    assert app.return_code == 0
    assert os.path.ismount(mountpoint)  # still served by its worker
    assert (mountpoint / "notes.txt").read_bytes() == b"hello from the vault\nsecond line\n"
    notice = app.exit_notice
    assert notice == (
        f"vaultsh: {vault_dir} stays mounted at {mountpoint}; unmount it with `vaultsh unmount {mountpoint}`"
    )
    # The advice works as printed.
    advice = shlex.split(notice.split("`")[1])
    assert advice[0] == "vaultsh"
    done = subprocess.run(
        [sys.executable, "-m", "vaultsh", *advice[1:]], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert not kernel_mounted(mountpoint)


def test_leaving_the_mount_prints_where_it_stays_in_a_real_terminal(
    vault_dir: Path, tmp_path: Path, tmux_session: str, mountpoint: Path
) -> None:
    """`vaultsh DIR` under tmux: mount, q, l; the shell then shows where the mount stays."""
    status = tmp_path / "status"
    session = tmux_session
    start_in_tmux(session, vaultsh_command(status, vault_dir))
    unlock_in_tmux(session)
    # The rows show behind the unlock dialog while it closes: wait until it is gone.
    wait_screen(session, lambda s: "notes.txt" in s and "Unlock vault" not in s)
    tmux("send-keys", "-t", session, ":")
    wait_screen(session, lambda s: "command (help lists them" in s)
    tmux("send-keys", "-t", session, "-l", f"mount {mountpoint}")
    tmux("send-keys", "-t", session, "Enter")
    wait_screen(session, lambda s: "mounted forward rw at" in s)
    tmux("send-keys", "-t", session, "q")
    wait_screen(session, lambda s: "Quit, leave mounted (l)" in s)
    tmux("send-keys", "-t", session, "l")
    assert exit_status(status) == "exit=0"
    shown = tmux("capture-pane", "-p", "-J", "-t", session)  # -J: wrapped lines joined
    assert (
        f"vaultsh: {vault_dir} stays mounted at {mountpoint}; unmount it with `vaultsh unmount {mountpoint}`"
    ) in shown
    assert os.path.ismount(mountpoint)  # its worker outlived the TUI and still serves
