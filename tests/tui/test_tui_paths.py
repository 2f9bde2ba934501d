"""TUI actions at the root and deep in the tree: paths, overwrites, Tab in the inputs, dialogs."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, cast

import pytest
from fuse_harness import cleaned_up, kernel_mounted, require_fuse
from textual.color import Color
from textual.containers import VerticalScroll
from textual.pilot import Pilot
from textual.widgets import Input, Static, TextArea
from textual.widgets._footer import FooterKey
from tui_harness import (
    DEEP,
    DEPTHS,
    LONG_NAME,
    MASTER_KEY,
    PASSWORD,
    SIZE,
    answer_prompt,
    command_done,
    join,
    log_text,
    make_vault,
    mount_with_keys,
    open_at,
    opened_at,
    row_text,
    select_plain,
    status_text,
    wait_for,
)

from vaultsh import cli
from vaultsh.tui.app import VaultApp
from vaultsh.tui.entries import ROLE_CONF, Entry
from vaultsh.tui.fsck_screen import FsckScreen
from vaultsh.tui.main_screen import MainScreen
from vaultsh.tui.messages import DirChanged
from vaultsh.tui.screens import (
    ChoiceScreen,
    ConfirmScreen,
    HelpScreen,
    KeyScreen,
    PasswordScreen,
    PromptScreen,
    SecretScreen,
)
from vaultsh.tui.viewer import ViewerScreen
from vaultsh.vault.config import CONF_NAME
from vaultsh.vault.keys import format_master_key
from vaultsh.vault.names import DIRIV_NAME
from vaultsh.vault.tree import TreeNode, VaultTree
from vaultsh.vault.vault import Vault


@pytest.mark.asyncio
@DEPTHS
async def test_mkdir_makes_the_directory_where_the_cursor_is(deep_vault: Path, where: str) -> None:
    async with opened_at(deep_vault, where) as (app, pilot):
        await pilot.press("M")
        await answer_prompt(pilot, app, "archive")
        await command_done(pilot, app)
        vault = Vault.open(deep_vault, master_key=MASTER_KEY)
        assert vault.stat(join(where, "archive")).kind == "dir", log_text(app)
        assert not where or not vault.exists(f"{where}/{where}/archive")
        assert app.main.cwd == where
        assert app.main.plain.current is not None and app.main.plain.current.plain_name == "archive"


@pytest.mark.asyncio
@DEPTHS
async def test_rename_stays_in_the_directory_it_was_asked_in(deep_vault: Path, where: str) -> None:
    async with opened_at(deep_vault, where) as (app, pilot):
        select_plain(app.main, "todo.txt")
        await pilot.press("r")
        await answer_prompt(pilot, app, "done.txt")
        await command_done(pilot, app)
        vault = Vault.open(deep_vault, master_key=MASTER_KEY)
        assert vault.read_file(join(where, "done.txt")).endswith(b"\n"), log_text(app)
        assert not vault.exists(join(where, "todo.txt"))
        assert not where or not vault.exists(f"{where}/{where}/done.txt")
        assert app.main.plain.current is not None and app.main.plain.current.plain_name == "done.txt"


@pytest.mark.asyncio
@DEPTHS
async def test_tab_in_the_filter_completes_and_keys_after_it_stay_text(deep_vault: Path, where: str) -> None:
    async with opened_at(deep_vault, where) as (app, pilot):
        box = app.main.query_one("#cmdline", Input)
        await pilot.press("slash", "t", "o", "d", "tab")
        assert box.has_focus and box.value == "todo.txt"
        await pilot.press("d", "y")  # would delete the selection if the focus had left
        await pilot.pause()
        assert box.has_focus and box.value == "todo.txtdy"
        assert not isinstance(app.screen, ConfirmScreen)
        assert Vault.open(deep_vault, master_key=MASTER_KEY).exists(join(where, "todo.txt"))


@pytest.mark.asyncio
@DEPTHS
async def test_tab_in_the_command_line_completes_commands_and_names(deep_vault: Path, where: str) -> None:
    async with opened_at(deep_vault, where) as (app, pilot):
        box = app.main.query_one("#cmdline", Input)
        await pilot.press("colon", "c", "a", "tab")
        assert box.has_focus and box.value == "cat", (app.focused, box.value, log_text(app))
        await pilot.press("space", "t", "o", "tab")
        assert box.has_focus and box.value == "cat todo.txt"
        await pilot.press("shift+tab", "enter")
        await command_done(pilot, app)
        expected = "buy milk" if where else "root todo"
        assert expected in log_text(app)


@pytest.mark.asyncio
@DEPTHS
async def test_rename_onto_an_existing_name_asks_cancel_keep_both_overwrite(
    deep_vault: Path, where: str
) -> None:
    vault = Vault.open(deep_vault, master_key=MASTER_KEY)
    vault.write_file(join(where, "other.txt"), b"other\n")
    vault.symlink("todo.txt", join(where, "shortcut"))
    async with opened_at(deep_vault, where) as (app, pilot):
        todo = vault.read_file(join(where, "todo.txt"))

        async def rename(name: str, to: str, answer: str) -> None:
            select_plain(app.main, name)
            await pilot.press("r")
            await answer_prompt(pilot, app, to)
            await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen))
            assert f"/{join(where, to)} already exists" in str(cast(ChoiceScreen, app.screen).question)
            await pilot.press(answer)
            await command_done(pilot, app)

        await rename("todo.txt", "other.txt", "c")
        assert vault.read_file(join(where, "other.txt")) == b"other\n"
        assert vault.read_file(join(where, "todo.txt")) == todo

        await rename("todo.txt", "other.txt", "escape")
        assert vault.read_file(join(where, "todo.txt")) == todo

        await rename("todo.txt", "shortcut", "k")  # a symlink is asked about too
        assert vault.readlink(join(where, "shortcut")) == "todo.txt"
        assert vault.read_file(join(where, "shortcut (2)")) == todo
        assert not vault.exists(join(where, "todo.txt"))

        await rename("shortcut (2)", "other.txt", "o")
        assert vault.read_file(join(where, "other.txt")) == todo
        assert not vault.exists(join(where, "shortcut (2)"))
        names = [e.plain_name for e in app.main.plain.rows]
        assert "other.txt" in names and "shortcut (2)" not in names


@pytest.mark.asyncio
@DEPTHS
async def test_80x24_lists_get_most_rows_help_scrolls_help_and_quit_in_the_footer(
    deep_vault: Path, where: str
) -> None:
    async with opened_at(deep_vault, where, (80, 24)) as (app, pilot):
        plain_rows = app.main.plain.size.height
        assert plain_rows >= 10 and plain_rows > app.main.query_one("#info").size.height
        shown = {
            str(cast(FooterKey, key).action): key.region
            for key in app.main.query("FooterKey")
            if key.region.right <= 80 and key.region.width > 0
        }
        assert {"help", "quit_app"} <= set(shown), shown

        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause()
        keys = app.screen.query_one("#help-keys", VerticalScroll)
        hint = app.screen.query_one(".dialog-hint")
        assert keys.has_focus and keys.max_scroll_y > 0  # more keys than rows: it scrolls
        assert hint.region.bottom <= 24 and "closes this help" in str(hint.render())
        await pilot.press("end")
        await wait_for(pilot, lambda: keys.scroll_y == keys.max_scroll_y)
        table = keys.query(Static).last()
        assert table.region.bottom == keys.region.bottom  # its last row is in view
        assert app.screen.keys[-1] == app.main.help_keys()[-1]  # type: ignore[attr-defined]
        await pilot.press("q")
        await wait_for(pilot, lambda: app.screen is app.main)


@pytest.mark.asyncio
async def test_below_80x24_a_clear_notice_replaces_the_panes(deep_vault: Path) -> None:
    async with opened_at(deep_vault, "", (70, 20)) as (app, pilot):
        notice = app.main.query_one("#too-small", Static)
        assert notice.display and "Terminal too small: 70×20" in str(notice.render())
        assert "at least 80×24" in str(notice.render())
        assert app.main.query_one("#panes").region.height == 0
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: app.main.query_one("#panes").region.height > 0)
        assert app.main.query_one("#too-small").region.height == 0


@pytest.mark.asyncio
@DEPTHS
async def test_the_suggested_mountpoint_is_offered_to_be_created(
    deep_vault: Path, where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_fuse()
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    suggested = home / "mnt" / "vault"
    app = VaultApp(deep_vault, master_key=MASTER_KEY)
    with cleaned_up(suggested):
        async with app.run_test(size=SIZE) as pilot:
            await open_at(pilot, app, where)
            await pilot.press("m")
            await answer_prompt(pilot, app, app.screen.query_one("#answer", Input).value)
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            assert f"{suggested} does not exist" in str(cast(ConfirmScreen, app.screen).question)
            await pilot.press("n")  # declined: nothing made, nothing mounted
            await pilot.pause()
            assert not suggested.exists() and not app.main.busy
            await pilot.press("m")
            await answer_prompt(pilot, app, str(suggested))
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await command_done(pilot, app)
            assert kernel_mounted(suggested), log_text(app)
            assert (suggested / join(where, "todo.txt")).read_bytes().endswith(b"\n")
            await pilot.press("u")
            await command_done(pilot, app)
            assert not kernel_mounted(suggested)
            assert (suggested.stat().st_mode & 0o777) == 0o700


@pytest.mark.asyncio
async def test_the_demo_shows_its_password_first_and_k_takes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`vaultsh demo` as started from the command line: its TUI is made as the CLI makes it."""
    made: list[VaultApp] = []
    real_init = VaultApp.__init__

    def keep(self: VaultApp, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(VaultApp, "__init__", keep)
    monkeypatch.setattr(VaultApp, "run", lambda self, **_: 0)  # it runs below, under the Pilot
    assert cli.main(["demo", "--dir", str(tmp_path / "demo")]) == 0
    password = capsys.readouterr().out.split("Password:")[1].split()[0]
    app = made[0]
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.session is not None and not app.main.dir_loading)
        first = f"Demo vault {tmp_path / 'demo'}: its password is {password} (K and p ask for it)"
        assert app.log_lines[0] == first
        await pilot.pause()
        await pilot.press("K")
        await wait_for(pilot, lambda: isinstance(app.screen, PasswordScreen))
        app.screen.query_one("#password", Input).value = password
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SecretScreen))


def cipher_entry(app: VaultApp, name: str) -> Entry:
    for e in app.main.cipher.rows:
        if e.cipher_name == name or e.cipher_name.endswith(name):
            return e
    raise AssertionError(f"{name} not in the cipher pane")


@pytest.mark.asyncio
@DEPTHS
async def test_a_cipher_entry_without_plain_counterpart_marks_no_plain_row(
    deep_vault: Path, where: str
) -> None:
    async with opened_at(deep_vault, where) as (app, pilot):
        plain, cipher = app.main.plain, app.main.cipher
        await pilot.press("tab")
        names = [" (conflicted copy", "stray file.txt"] + ([] if where else [CONF_NAME])
        for name in names:
            entry = next(e for e in cipher.rows if name in e.cipher_name)
            cipher.move_to(cipher.row_of(entry) or 0)
            await pilot.pause()
            assert plain.unlinked
            rows = [plain.render_line(y).text for y in range(len(plain.rows))]
            assert not any(r.startswith(("▶", "›")) for r in rows), rows
        await pilot.press("tab")  # back in the plain pane: its cursor is shown again
        await pilot.pause()
        assert not plain.unlinked and plain.render_line(plain.cursor).text.startswith("▶")


@pytest.mark.asyncio
@DEPTHS
async def test_symlink_sizes_backup_config_and_entry_count(deep_vault: Path, where: str) -> None:
    vault = Vault.open(deep_vault, master_key=MASTER_KEY)
    vault.symlink("todo.txt", join(where, "shortcut"))
    async with opened_at(deep_vault) as (app, pilot):
        await pilot.press("p")  # a password change keeps the old config as gocryptfs.conf.bak
        # Unlocked with the master key: one dialog asks only the new password, twice.
        await wait_for(pilot, lambda: isinstance(app.screen, PasswordScreen))
        dialog = app.screen
        dialog.query_one("#password", Input).value = "new secret"
        dialog.query_one("#repeat", Input).value = "new secret"
        dialog.query_one("#repeat", Input).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda d=dialog: app.screen is not d)  # type: ignore[misc]
        await command_done(pilot, app)
        backup = cipher_entry(app, CONF_NAME + ".bak")
        assert backup.role == ROLE_CONF and "conf" in row_text(app.main.cipher, backup)
        if where:
            await open_at(pilot, app, where)
        link = select_plain(app.main, "shortcut")
        assert link.plain_size == len("todo.txt")
        assert row_text(app.main.plain, link).split()[1] == str(len("todo.txt"))
        await pilot.press("slash", "s", "h", "o", "r", "t")
        await pilot.press("enter")
        await pilot.pause()
        subtitle = str(app.main.query_one("#plain-pane").border_subtitle)
        assert subtitle.startswith("1 entry ") and "entries" not in subtitle


@pytest.mark.asyncio
async def test_the_master_key_dialog_keeps_each_group_on_one_line(deep_vault: Path) -> None:
    async with opened_at(deep_vault, "", (80, 24)) as (app, pilot):
        await pilot.press("K")
        await wait_for(pilot, lambda: isinstance(app.screen, PasswordScreen))
        app.screen.query_one("#password", Input).value = PASSWORD
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SecretScreen))
        await pilot.pause()
        secret = app.screen.query_one("#secret", Static)
        shown = [secret.render_line(y).text.strip() for y in range(secret.size.height)]
        lines = [line for line in shown if line]
        groups = format_master_key(MASTER_KEY).split("-")
        assert lines == ["-".join(groups[:4]) + "-", "-".join(groups[4:])]


def contrast(a: Color, b: Color) -> float:
    """WCAG contrast ratio of two opaque colours."""

    def luminance(c: Color) -> float:
        def channel(v: int) -> float:
            x = v / 255
            return x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4

        return 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b)

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.asyncio
@pytest.mark.parametrize("theme", ["vaultsh-dark", "vaultsh-light", "vaultsh-high-contrast"])
async def test_unfocused_pane_borders_are_visible_in_every_theme(deep_vault: Path, theme: str) -> None:
    async with opened_at(deep_vault, theme=theme) as (app, _pilot):
        background = app.main.styles.background
        for selector in ("#cipher-pane", "#info", "#log"):  # the plain pane has the focus
            widget = app.main.query_one(selector)
            _kind, color = widget.styles.border_top
            shown = background + color  # a translucent border colour over what is behind it
            assert contrast(shown, background) >= 3.0, (selector, shown, background)


@pytest.mark.asyncio
async def test_live_mount_counters_fit_a_120_column_status_bar(deep_vault: Path, tmp_path: Path) -> None:
    require_fuse()
    mountpoint = tmp_path / "a-mountpoint-with-a-rather-long-name"
    mountpoint.mkdir()
    app = VaultApp(deep_vault, master_key=MASTER_KEY)
    with cleaned_up(mountpoint):
        async with app.run_test(size=(120, 40)) as pilot:
            await open_at(pilot, app, "")
            await mount_with_keys(pilot, app, mountpoint)
            assert (mountpoint / DEEP / "todo.txt").read_bytes() == b"buy milk\n"
            await wait_for(pilot, lambda: "read 9 B" in status_text(app), steps=800)
            status = status_text(app)
            assert "0 open" in status and "wrote 0 B" in status and "0 err" in status, status
            assert len(status) <= 120 - 2
            await pilot.press("u")
            await command_done(pilot, app)


async def cancel_after_first_chunk(
    pilot: Pilot[Any], app: VaultApp, key: str, answer: str, stop: str = "escape"
) -> None:
    """Start a transfer with `key`, hold it after its first chunk, press `stop`, let it stop."""
    gate = threading.Event()
    real_progress = app.io.progress

    def held_progress(done: int, total: int) -> None:
        real_progress(done, total)
        if done:
            gate.wait(10)

    app.io.progress = held_progress  # type: ignore[method-assign]
    await pilot.press(key)
    await answer_prompt(pilot, app, answer)
    bar = app.main.query_one("#transfer")
    await wait_for(pilot, lambda: bar.query_one("ProgressBar").progress > 0)  # type: ignore[attr-defined]
    await pilot.press(stop)
    assert app.io.cancelled()
    gate.set()
    await command_done(pilot, app)
    app.io.progress = real_progress  # type: ignore[method-assign]
    assert "cancelled" in log_text(app)


def make_album(cipherdir: Path, where: str) -> Vault:
    """`where`/album with three 2 MiB files: a transfer that takes more than one progress step."""
    vault = Vault.open(cipherdir, master_key=MASTER_KEY)
    vault.mkdir(join(where, "album"))
    for n in range(3):
        vault.write_file(join(where, f"album/photo{n}.raw"), os.urandom(2 << 20))
    return vault


@pytest.mark.asyncio
@DEPTHS
async def test_cancelled_export_and_import_leave_nothing_behind(
    deep_vault: Path, where: str, tmp_path: Path
) -> None:
    vault = make_album(deep_vault, where)
    dest = tmp_path / "out"
    dest.mkdir()
    source = tmp_path / "scans"
    source.mkdir()
    for n in range(3):
        (source / f"scan{n}.raw").write_bytes(os.urandom(2 << 20))
    async with opened_at(deep_vault, where) as (app, pilot):
        select_plain(app.main, "album")
        await cancel_after_first_chunk(pilot, app, "e", str(dest))
        assert os.listdir(dest) == []  # not even an empty album/
        await cancel_after_first_chunk(pilot, app, "i", str(source))
        assert not vault.exists(join(where, "scans"))
        assert "scans" not in {e.plain_name for e in app.main.plain.rows}


@pytest.mark.asyncio
@DEPTHS
async def test_cursor_stays_in_place_after_delete_rename_and_refresh(deep_vault: Path, where: str) -> None:
    vault = Vault.open(deep_vault, master_key=MASTER_KEY)
    for name in ("k1.txt", "k2.txt", "k3.txt"):
        vault.write_file(join(where, name), b"x\n")
    async with opened_at(deep_vault, where) as (app, pilot):
        select_plain(app.main, "k2.txt")
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await command_done(pilot, app)
        assert not vault.exists(join(where, "k2.txt"))
        current = app.main.plain.current
        assert current is not None and current.plain_name == "k3.txt"  # the next one, not the top
        await pilot.press("r")
        await answer_prompt(pilot, app, "k9.txt")
        await command_done(pilot, app)
        current = app.main.plain.current
        assert current is not None and current.plain_name == "k9.txt"
        await pilot.press("ctrl+r")
        await command_done(pilot, app)
        current = app.main.plain.current
        assert current is not None and current.plain_name == "k9.txt"


def chosen_names(app: VaultApp) -> set[str]:
    """The names the plain pane marks as selected, read from its rows as drawn."""
    plain = app.main.plain
    return {
        e.plain_name or "" for e in plain.rows if id(e) in plain.chosen and row_text(plain, e).startswith("*")
    }


@pytest.mark.asyncio
@DEPTHS
async def test_multi_select_export_and_delete(deep_vault: Path, where: str, tmp_path: Path) -> None:
    vault = Vault.open(deep_vault, master_key=MASTER_KEY)
    for name in ("m1.txt", "m2.txt", "m3.txt", "m4.txt"):
        vault.write_file(join(where, name), name.encode() * 1000)
    vault.mkdir(join(where, "msub"))
    vault.write_file(join(where, "msub/inner.txt"), b"inner\n")
    dest = tmp_path / "out"
    dest.mkdir()
    async with opened_at(deep_vault, where) as (app, pilot):
        select_plain(app.main, "m1.txt")
        await pilot.press("space")  # selects m1, moves to m2
        await pilot.press("down", "v")  # m3 by range: m1..m3
        assert chosen_names(app) == {"m1.txt", "m2.txt", "m3.txt"}
        await pilot.press("space")  # v left the cursor on m3: Space unselects it
        assert chosen_names(app) == {"m1.txt", "m2.txt"}
        select_plain(app.main, "msub")
        await pilot.press("insert")
        assert "3 selected" in str(app.main.query_one("#plain-pane").border_subtitle)

        await pilot.press("e")
        await answer_prompt(pilot, app, str(dest))
        await command_done(pilot, app)
        assert sorted(os.listdir(dest)) == ["m1.txt", "m2.txt", "msub"], log_text(app)
        assert (dest / "msub" / "inner.txt").read_bytes() == b"inner\n"
        assert "exported 3 selected entries" in log_text(app)
        assert chosen_names(app) == set()  # done with: the selection is cleared

        await pilot.press("asterisk")  # invert: everything shown is selected
        everything = {e.plain_name for e in app.main.plain.rows if e.plain_name}
        assert chosen_names(app) == everything
        select_plain(app.main, "m4.txt")
        await pilot.press("space")
        select_plain(app.main, "todo.txt")
        await pilot.press("space")
        await pilot.press("asterisk")  # now only m4 and todo are selected
        assert chosen_names(app) == {"m4.txt", "todo.txt"}
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        question = str(cast(ConfirmScreen, app.screen).question)
        assert "Delete the 2 selected entries from the vault: 2 files and 0 directories" in question
        await pilot.press("y")
        await command_done(pilot, app)
        assert not vault.exists(join(where, "m4.txt")) and not vault.exists(join(where, "todo.txt"))
        assert vault.exists(join(where, "m1.txt")) and vault.exists(join(where, "msub/inner.txt"))


@pytest.mark.asyncio
@DEPTHS
async def test_enter_opens_a_viewer_with_search_and_hex_for_binary(deep_vault: Path, where: str) -> None:
    vault = Vault.open(deep_vault, master_key=MASTER_KEY)
    lines = [f"line {n}" for n in range(200)]
    lines[150] = "the Needle is here"
    lines[40] = "a needle early on"
    vault.write_file(join(where, "long.txt"), ("\n".join(lines) + "\n").encode())
    vault.write_file(join(where, "blob.bin"), bytes(range(256)) * 4)
    vault.symlink("long.txt", join(where, "long-link"))
    async with opened_at(deep_vault, where, (80, 24)) as (app, pilot):
        select_plain(app.main, "long-link")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ViewerScreen) and app.screen.kind != "loading")
        viewer = app.screen
        assert isinstance(viewer, ViewerScreen) and viewer.kind == "text"
        area = viewer.query_one(TextArea)
        assert area.text.split("\n")[199] == "line 199"
        await pilot.press("ctrl+end")  # the whole file scrolls, not a preview's first lines
        await wait_for(pilot, lambda: area.scroll_y > 150)
        await pilot.press("ctrl+home")
        await pilot.press("slash", "n", "e", "e", "d", "l", "e", "enter")
        await pilot.pause()
        assert area.selection.start == (40, 2) and area.selected_text == "needle"
        await pilot.press("n")
        assert area.selection.start == (150, 4) and area.selected_text == "Needle"
        await pilot.press("n")  # wraps around
        assert area.selection.start == (40, 2)
        await pilot.press("N")  # back, wrapping the other way
        assert area.selection.start == (150, 4)
        await pilot.press("q")
        await wait_for(pilot, lambda: app.screen is app.main)

        select_plain(app.main, "blob.bin")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ViewerScreen) and app.screen.kind != "loading")
        viewer = app.screen
        assert isinstance(viewer, ViewerScreen) and viewer.kind == "hex"
        dump = viewer.query_one(TextArea).text.split("\n")
        assert len(dump) == 64 and dump[1].startswith("00000010  10 11 12 13")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.main)


@pytest.mark.asyncio
@DEPTHS
async def test_sort_by_name_size_mtime_reverse_and_hidden_toggle(deep_vault: Path, where: str) -> None:
    vault = Vault.open(deep_vault, master_key=MASTER_KEY)
    files = {"s-big.txt": (3000, 3), "s-mid.txt": (2000, 1), "s-small.txt": (1000, 2), ".s-dot": (10, 4)}
    for name, (size, age) in files.items():
        vault.write_file(join(where, name), b"x" * size)
        cpath = vault.cipher_path(join(where, name))
        os.utime(cpath, ns=(age * 10**18, age * 10**18))
    async with opened_at(deep_vault, where) as (app, pilot):

        def order() -> list[str]:
            return [
                e.plain_name or ""
                for e in app.main.plain.rows
                if (e.plain_name or "").lstrip(".").startswith("s-")
            ]

        assert order() == [".s-dot", "s-big.txt", "s-mid.txt", "s-small.txt"]
        select_plain(app.main, "s-mid.txt")
        await pilot.press("s")  # by size
        assert order() == [".s-dot", "s-small.txt", "s-mid.txt", "s-big.txt"]
        assert app.main.plain.current is not None and app.main.plain.current.plain_name == "s-mid.txt"
        await pilot.press("s")  # by modification time
        assert order() == ["s-mid.txt", "s-small.txt", "s-big.txt", ".s-dot"]
        await pilot.press("S")  # reversed
        assert order() == [".s-dot", "s-big.txt", "s-small.txt", "s-mid.txt"]
        assert "by mtime ↓" in str(app.main.query_one("#plain-pane").border_subtitle)
        await pilot.press("full_stop")  # hide dot names, in both panes
        assert ".s-dot" not in order() and len(order()) == 3
        dot_cipher = vault.cipher_path(join(where, ".s-dot")).name
        assert dot_cipher not in {e.cipher_name for e in app.main.cipher.rows}
        await pilot.press("full_stop")
        assert ".s-dot" in order()
        await pilot.press("s")  # back to names
        assert order() == ["s-small.txt", "s-mid.txt", "s-big.txt", ".s-dot"]  # still reversed


@pytest.mark.asyncio
async def test_theme_sort_and_hidden_are_remembered_in_config_toml(
    deep_vault: Path, config_home: Path
) -> None:
    async with opened_at(deep_vault) as (app, pilot):
        await pilot.press("s", "S", "full_stop", "t")
        await pilot.pause()
        chosen_theme = app.theme
    saved = (config_home / "vaultsh" / "config.toml").read_text()
    assert 'sort = "size"' in saved and "sort_reverse = true" in saved and "show_hidden = false" in saved
    assert f'theme = "{chosen_theme}"' in saved
    assert oct((config_home / "vaultsh" / "config.toml").stat().st_mode & 0o777) == "0o600"

    async with opened_at(deep_vault) as (app, pilot):
        assert app.theme == chosen_theme
        assert (app.main.sort_by, app.main.sort_reverse, app.main.show_hidden) == ("size", True, False)
        assert "by size ↓" in str(app.main.query_one("#plain-pane").border_subtitle)

    (config_home / "vaultsh" / "config.toml").write_text('sort = "colour"\nshow_hidden = "yes"\n')
    async with opened_at(deep_vault) as (app, pilot):
        assert app.main.sort_by == "name" and app.main.show_hidden
        warning = next(line for line in app.log_lines if "config.toml" in line)
        assert "ignored sort = 'colour' (one of name, size, mtime); show_hidden = 'yes'" in warning


@pytest.mark.asyncio
@DEPTHS
async def test_find_as_you_type_then_n_and_shift_n(deep_vault: Path, where: str) -> None:
    vault = Vault.open(deep_vault, master_key=MASTER_KEY)
    for name in ("quux-a.txt", "quux-b.txt", "zz-quux.txt"):
        vault.write_file(join(where, name), b"r\n")
    async with opened_at(deep_vault, where) as (app, pilot):

        def current() -> str:
            entry = app.main.plain.current
            return entry.plain_name or "" if entry is not None else ""

        rows_before = len(app.main.plain.rows)
        await pilot.press("f", "q", "u", "u")
        assert current() == "quux-a.txt"  # found as typed; nothing is filtered out
        assert len(app.main.plain.rows) == rows_before
        await pilot.press("enter")
        await pilot.press("n")
        assert current() == "quux-b.txt"
        await pilot.press("n")
        assert current() == "zz-quux.txt"
        await pilot.press("n")  # wraps to the first again
        assert current() == "quux-a.txt"
        await pilot.press("N")
        assert current() == "zz-quux.txt"


def plain_names(app: VaultApp) -> set[str | None]:
    return {e.plain_name for e in app.main.plain.rows}


@pytest.mark.asyncio
@DEPTHS
async def test_listing_follows_writes_through_a_real_mount(
    deep_vault: Path, where: str, mountpoint: Path
) -> None:
    async with opened_at(deep_vault, where) as (app, pilot):
        await mount_with_keys(pilot, app, mountpoint)
        await command_done(pilot, app)
        select_plain(app.main, "todo.txt")
        await pilot.pause()
        (mountpoint / where / "written-outside.txt").write_bytes(b"from another program\n")
        await wait_for(pilot, lambda: "written-outside.txt" in plain_names(app))
        current = app.main.plain.current
        assert current is not None and current.plain_name == "todo.txt"  # the cursor stayed
        assert app.main.active_list() is app.main.plain
        (mountpoint / where / "todo.txt").unlink()
        await wait_for(pilot, lambda: "todo.txt" not in plain_names(app))
        await pilot.press("u")
        await command_done(pilot, app)


@pytest.mark.asyncio
@DEPTHS
async def test_a_sync_tool_writing_the_cipher_dir_refreshes_without_losing_place(
    deep_vault: Path, where: str
) -> None:
    """Another program (a sync tool) adds and removes cipher files: the panes follow, keeping the
    cursor, the selection and the filter, and never show an empty "loading" pane meanwhile."""
    app = VaultApp(deep_vault, master_key=MASTER_KEY)
    other = Vault.open(deep_vault, master_key=MASTER_KEY)  # as a second machine would write
    async with app.run_test(size=SIZE) as pilot:
        await open_at(pilot, app, where)
        await pilot.press("slash")
        app.main.query_one("#cmdline", Input).value = "t"
        await pilot.press("enter")
        select_plain(app.main, "todo.txt")
        await pilot.press("space")  # selects todo.txt, the cursor moves on
        select_plain(app.main, "todo.txt")
        await pilot.pause()
        empty_seen: list[bool] = []
        app.main.plain.set_placeholder = lambda text: empty_seen.append(bool(text))  # type: ignore[method-assign]
        other.write_file(join(where, "tasks.txt"), b"synced in\n")
        other.write_file(join(where, "zz.bin"), b"x")
        await wait_for(pilot, lambda: "tasks.txt" in plain_names(app))
        assert "zz.bin" not in plain_names(app)  # the filter still applies
        current = app.main.plain.current
        assert current is not None and current.plain_name == "todo.txt"
        assert app.main.selection.names == {"todo.txt"}
        other.unlink(join(where, "tasks.txt"))
        await wait_for(pilot, lambda: "tasks.txt" not in plain_names(app))
        assert not any(empty_seen) and not app.main.dir_loading
        current = app.main.plain.current
        assert current is not None and current.plain_name == "todo.txt"


@pytest.mark.asyncio
async def test_a_change_of_our_own_is_listed_once_not_again_by_the_watcher(
    deep_vault: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rename in the TUI lists the directory again when it ends; the watcher's report of the
    same change, which comes later, finds that listing newer and lists nothing more."""
    listings: list[Path] = []
    reports: list[bool] = []
    scan, on_dir_changed = VaultTree.cipher_entries, MainScreen.on_dir_changed

    def counted_scan(tree: VaultTree, directory: TreeNode, **kwargs: Any) -> Any:
        listings.append(tree.watch_dir(directory))
        return scan(tree, directory, **kwargs)

    def counted_report(screen: MainScreen, message: DirChanged) -> None:
        on_dir_changed(screen, message)
        reports.append(True)

    monkeypatch.setattr(VaultTree, "cipher_entries", counted_scan)
    monkeypatch.setattr(MainScreen, "on_dir_changed", counted_report)
    async with opened_at(deep_vault, DEEP) as (app, pilot):
        select_plain(app.main, "todo.txt")
        listings.clear()
        await pilot.press("r")
        await answer_prompt(pilot, app, "done.txt")
        await command_done(pilot, app)
        await wait_for(pilot, lambda: bool(reports))  # the watcher saw the rename
        await pilot.pause()
        await wait_for(pilot, lambda: not app.main.dir_loading and app.main.quiet_generation == -1)
        assert "done.txt" in plain_names(app)
        assert listings == [Vault.open(deep_vault, master_key=MASTER_KEY).cipher_path(DEEP)]


@pytest.mark.asyncio
async def test_a_reload_that_finds_nothing_new_leaves_the_panes_alone(
    deep_vault: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chmod in the cipher dir wakes the watcher, but the panes show no mode: the reload's
    rows are not swapped in (no redraw, the cursor and scroll untouched)."""
    reports: list[bool] = []
    on_dir_changed = MainScreen.on_dir_changed

    def counted_report(screen: MainScreen, message: DirChanged) -> None:
        on_dir_changed(screen, message)
        reports.append(True)

    monkeypatch.setattr(MainScreen, "on_dir_changed", counted_report)
    async with opened_at(deep_vault, DEEP) as (app, pilot):
        rows = app.main.plain.rows
        cipher_file = next(e for e in app.main.cipher.rows if e.kind == "file" and e.role == "object")
        assert app.main.dir_node is not None
        os.chmod(deep_vault / app.main.dir_node.cipher_path / cipher_file.cipher_name, 0o600)
        await wait_for(pilot, lambda: bool(reports))
        await wait_for(pilot, lambda: app.main.quiet_generation == -1 and not app.main.dir_loading)
        assert app.main.plain.rows is rows
        # A real change is swapped in.
        Vault.open(deep_vault, master_key=MASTER_KEY).write_file(join(DEEP, "new.txt"), b"x")
        await wait_for(pilot, lambda: "new.txt" in plain_names(app))


@pytest.mark.asyncio
@DEPTHS
async def test_command_output_opens_in_a_full_width_scrollable_panel(deep_vault: Path, where: str) -> None:
    async with opened_at(deep_vault, where, (80, 24)) as (app, pilot):
        await pilot.press("colon")
        app.main.query_one("#cmdline", Input).value = "help"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ViewerScreen) and app.screen.kind != "loading")
        panel = app.screen
        assert isinstance(panel, ViewerScreen) and panel.title_text == "output of :help"
        area = panel.query_one(TextArea)
        assert area.size.width >= 76  # the whole width, not the log's third of it
        assert any(line.strip().startswith("masterkey") for line in area.text.split("\n"))
        await pilot.press("ctrl+end")
        await wait_for(pilot, lambda: area.scroll_y > 0)  # longer than the screen: it scrolls
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.main)
        await pilot.press("colon")
        app.main.query_one("#cmdline", Input).value = "ls -l"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ViewerScreen) and app.screen.kind != "loading")
        assert "todo.txt" in app.screen.query_one(TextArea).text
        await pilot.press("q")
        await wait_for(pilot, lambda: app.screen is app.main)
        await pilot.press("colon")
        app.main.query_one("#cmdline", Input).value = "pwd"  # one line: the log is enough
        await pilot.press("enter")
        await command_done(pilot, app)
        assert app.screen is app.main and f"/{where}" in app.log_lines[-1]


@pytest.mark.asyncio
@DEPTHS
async def test_g_jumps_to_a_path_with_completion(deep_vault: Path, where: str) -> None:
    async with opened_at(deep_vault, where) as (app, pilot):
        box = app.main.query_one("#cmdline", Input)
        await pilot.press("g")
        assert box.has_focus and box.value == (f"/{where}/" if where else "/")
        box.value = "/d" if where else "/a/b/c/to"
        box.cursor_position = len(box.value)
        await pilot.press("tab")
        assert box.value == ("/docs/" if where else "/a/b/c/todo.txt")
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: not app.main.dir_loading and app.main.cwd == ("docs" if where else DEEP)
        )
        if not where:  # a file: its directory, with the cursor on it
            await wait_for(pilot, lambda: app.main.plain.current is not None)
            current = app.main.plain.current
            assert current is not None and current.plain_name == "todo.txt"
        await pilot.press("g")
        box.value = "/no/such/place"
        await pilot.press("enter")
        await pilot.pause()
        assert log_text(app).splitlines()[-1] == "go to /no/such/place: No such file or directory"
        assert app.main.cwd == ("docs" if where else DEEP)  # it stays where it was


@pytest.fixture
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the private copies go ($XDG_RUNTIME_DIR): the test can see what is left there."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    return runtime


def no_copies(runtime: Path) -> bool:
    """No private copy is left (the runtime dir also holds vaultsh's own mount records)."""
    return not list(runtime.glob("vaultsh-open-*"))


def program_script(tmp_path: Path, name: str, body: str) -> str:
    """A stand-in for $PAGER or $EDITOR: a shell script run with the copy's path as $1."""
    script = tmp_path / name
    script.write_text("#!/bin/sh\nset -e\n" + body)
    script.chmod(0o755)
    return str(script)


@pytest.mark.asyncio
@DEPTHS
async def test_o_opens_a_private_copy_in_the_pager_then_removes_it(
    deep_vault: Path, where: str, tmp_path: Path, runtime_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = tmp_path / "seen"
    seen.mkdir()
    pager = program_script(
        tmp_path,
        "pager",
        "for copy; do :; done\n"  # the last argument: the copy
        f'stat -c %a "$(dirname "$copy")" > {seen}/dir-mode\nstat -c %a "$copy" > {seen}/file-mode\n'
        f'basename "$copy" > {seen}/name\ncat "$copy" > {seen}/contents\n',
    )
    monkeypatch.setenv("PAGER", f"{pager} --ignored-option-check")  # split as a shell would
    async with opened_at(deep_vault, where) as (app, pilot):
        select_plain(app.main, "todo.txt")
        await pilot.press("o")
        await wait_for(pilot, lambda: (seen / "contents").exists() and no_copies(runtime_dir))
        assert (seen / "contents").read_bytes() == (b"buy milk\n" if where else b"root todo\n")
        assert (seen / "dir-mode").read_text().strip() == "700"
        assert (seen / "file-mode").read_text().strip() == "600"
        assert (seen / "name").read_text().strip() == "todo.txt"
        assert app.screen is app.main and app.is_running


@pytest.mark.asyncio
@DEPTHS
async def test_o_on_the_cipher_pane_pages_the_cipher_file_as_stored(
    deep_vault: Path, where: str, tmp_path: Path, runtime_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cipher pane shows the cipher side: o there pages its bytes as stored (the config
    too), as a read-only copy; a directory is refused in one line."""
    seen = tmp_path / "seen"
    seen.mkdir()
    pager = program_script(tmp_path, "pager", f'basename "$1" > {seen}/name\ncat "$1" > {seen}/contents\n')
    monkeypatch.setenv("PAGER", pager)

    async def paged() -> bytes:
        await pilot.press("o")
        await wait_for(pilot, lambda: (seen / "contents").exists() and no_copies(runtime_dir))
        data = (seen / "contents").read_bytes()
        (seen / "contents").unlink()
        return data

    async with opened_at(deep_vault, where) as (app, pilot):
        todo = select_plain(app.main, "todo.txt")
        await pilot.press("tab")
        assert app.main.cipher.current is todo and app.main.dir_node is not None
        stored = deep_vault / app.main.dir_node.cipher_path / todo.cipher_name
        assert await paged() == stored.read_bytes()
        # A cipher name may start with "-" (base64url): the copy drops it, so no program reads
        # the name as an option.
        assert (seen / "name").read_text().strip() == todo.cipher_name.lstrip("-")
        if not where:
            conf = next(e for e in app.main.cipher.rows if e.cipher_name == CONF_NAME)
            app.main.cipher.select(conf)
            assert await paged() == (deep_vault / CONF_NAME).read_bytes()
        directory = next(e for e in app.main.cipher.rows if e.kind == "dir")
        app.main.cipher.select(directory)
        await pilot.press("o")
        await pilot.pause()
        assert app.log_lines[-1].endswith(f"/{directory.cipher_name}: not a regular file")
        assert app.screen is app.main and app.is_running


@pytest.mark.asyncio
@DEPTHS
async def test_e_edits_in_the_editor_and_saves_back_after_asking(
    deep_vault: Path, where: str, tmp_path: Path, runtime_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDITOR", program_script(tmp_path, "editor", "printf 'edited\\n' >> \"$1\"\n"))
    vault = Vault.open(deep_vault, master_key=MASTER_KEY)
    name = "todo.txt" if where else LONG_NAME  # a long name: its .name sidecar is replaced too
    path = join(where, name)
    before = vault.read_file(path)
    vault.chmod(path, 0o640)
    async with opened_at(deep_vault, where) as (app, pilot):
        select_plain(app.main, name)
        await pilot.press("E")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")  # discard: the vault keeps the old contents
        await wait_for(pilot, lambda: app.screen is app.main and no_copies(runtime_dir))
        assert vault.read_file(path) == before
        assert "changes discarded" in log_text(app)
        await pilot.press("E")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await command_done(pilot, app)
        assert vault.read_file(path) == before + b"edited\n"  # saved over the existing file
        assert vault.stat(path).mode & 0o777 == 0o640  # its mode kept
        assert no_copies(runtime_dir)  # the plaintext copy is gone
        listed = {e.name for e in vault.listdir(where, include_bad=True)}
        assert not any(n.startswith(".vaultsh-") for n in listed)  # no temporary left
        current = app.main.plain.current
        assert current is not None and current.plain_name == name
        # An editor that changes nothing: no question, nothing written.
        monkeypatch.setenv("EDITOR", "true")
        await pilot.press("E")
        await wait_for(pilot, lambda: "not changed" in log_text(app).splitlines()[-1])
        assert app.screen is app.main and no_copies(runtime_dir)


@pytest.mark.asyncio
@DEPTHS
async def test_bookmarks_b_sets_quote_goes_and_quote_quote_goes_back(deep_vault: Path, where: str) -> None:
    async with opened_at(deep_vault, where) as (app, pilot):
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, KeyScreen))
        await pilot.press("w")
        await wait_for(pilot, lambda: app.screen is app.main)
        assert app.main.bookmarks == {"w": where}
        select_plain(app.main, "docs" if not where else "a")
        await pilot.press("enter")  # somewhere else: docs, or a/b/c/a
        elsewhere = "docs" if not where else f"{where}/a"
        await wait_for(pilot, lambda: app.main.cwd == elsewhere and not app.main.dir_loading)
        await pilot.press("b")  # a second bookmark, x, here
        await wait_for(pilot, lambda: isinstance(app.screen, KeyScreen))
        await pilot.press("x")
        await wait_for(pilot, lambda: app.screen is app.main)
        await pilot.press("apostrophe")
        await wait_for(pilot, lambda: isinstance(app.screen, KeyScreen))
        await pilot.press("w")
        await wait_for(pilot, lambda: app.main.cwd == where and not app.main.dir_loading)
        await pilot.press("apostrophe")
        await wait_for(pilot, lambda: isinstance(app.screen, KeyScreen))
        await pilot.press("apostrophe")  # back where it was
        await wait_for(pilot, lambda: app.main.cwd == elsewhere and not app.main.dir_loading)
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, KeyScreen))
        await pilot.press("w")  # replaces w
        await wait_for(pilot, lambda: app.screen is app.main)
        assert app.main.bookmarks == {"w": elsewhere, "x": elsewhere}
        await pilot.press("apostrophe")
        await wait_for(pilot, lambda: isinstance(app.screen, KeyScreen))
        await pilot.press("z")
        await wait_for(pilot, lambda: app.screen is app.main)
        assert log_text(app).splitlines()[-1] == "no bookmark z (b then a letter sets one)"
        assert app.main.cwd == elsewhere


# -- Ctrl-C: cancel what runs, else the quit dialog; in an input or a dialog, what Esc does ---------


@pytest.mark.asyncio
@DEPTHS
async def test_ctrl_c_cancels_a_transfer_and_the_app_goes_on(
    deep_vault: Path, where: str, tmp_path: Path
) -> None:
    make_album(deep_vault, where)
    dest = tmp_path / "out"
    dest.mkdir()
    async with opened_at(deep_vault, where) as (app, pilot):
        select_plain(app.main, "album")
        await cancel_after_first_chunk(pilot, app, "e", str(dest), stop="ctrl+c")
        assert os.listdir(dest) == []
        assert isinstance(app.screen, MainScreen)  # no quit dialog: Ctrl-C went to the transfer
        assert app.return_code is None
        assert app.main.cwd == where


@pytest.mark.asyncio
@DEPTHS
async def test_ctrl_c_cancels_a_listing_and_keeps_what_was_listed(
    deep_vault: Path, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = Vault.open(deep_vault, master_key=MASTER_KEY)
    many = join(where, "many")
    vault.mkdir(many)
    count = 450  # more than the first batch, so the listing can be held half-way
    for n in range(count):
        vault.write_file(f"{many}/f{n:04d}", b"")
    held, release = threading.Event(), threading.Event()
    real_scan = VaultTree.cipher_entries
    many_cdir = vault.cipher_path(many)

    def gated_scan(tree: VaultTree, directory: TreeNode, **kwargs: Any) -> Any:
        for n, batch in enumerate(real_scan(tree, directory, **kwargs)):
            yield batch
            if n == 0 and tree.watch_dir(directory) == many_cdir and not release.is_set():
                held.set()
                release.wait(30)

    monkeypatch.setattr(VaultTree, "cipher_entries", gated_scan)
    async with opened_at(deep_vault, where) as (app, pilot):
        select_plain(app.main, "many")
        await pilot.press("enter")
        await wait_for(pilot, lambda: held.is_set() and bool(app.main.plain.rows))
        assert app.main.dir_loading
        shown = len(app.main.plain.rows)
        await pilot.press("ctrl+c")
        assert not app.main.dir_loading
        release.set()
        await pilot.pause(0.2)
        assert len(app.main.plain.rows) == shown < count  # the rest never came in
        assert isinstance(app.screen, MainScreen) and app.return_code is None
        assert "cancelled after" in log_text(app)
        assert "partial" in str(app.main.query_one("#plain-pane").border_subtitle)
        await pilot.press("ctrl+r")
        await command_done(pilot, app)
        assert len(app.main.plain.rows) == count
        assert "partial" not in str(app.main.query_one("#plain-pane").border_subtitle)


@pytest.mark.asyncio
@DEPTHS
async def test_ctrl_c_in_the_bottom_input_closes_it_as_esc_does(deep_vault: Path, where: str) -> None:
    vault = Vault.open(deep_vault, master_key=MASTER_KEY)
    async with opened_at(deep_vault, where) as (app, pilot):
        box = app.main.query_one("#cmdline", Input)
        await pilot.press("colon")
        box.value = "mkdir made-by-ctrl-c"
        await pilot.press("ctrl+c")
        assert not box.display  # closed; the typed line did not run
        await pilot.pause(0.2)
        assert not vault.exists(join(where, "made-by-ctrl-c"))
        rows = len(app.main.plain.rows)
        await pilot.press("slash")
        box.value = "todo"
        await wait_for(pilot, lambda: len(app.main.plain.rows) < rows)
        await pilot.press("ctrl+c")
        assert not box.display and app.main.filter_text == ""  # the filter cleared, as by Esc
        assert len(app.main.plain.rows) == rows
        assert isinstance(app.screen, MainScreen) and app.return_code is None


@pytest.mark.asyncio
@DEPTHS
async def test_ctrl_c_in_a_dialog_or_the_fsck_screen_cancels_it(deep_vault: Path, where: str) -> None:
    vault = Vault.open(deep_vault, master_key=MASTER_KEY)
    async with opened_at(deep_vault, where) as (app, pilot):
        await pilot.press("M")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        app.screen.query_one("#answer", Input).value = "not-made"
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.pause(0.2)
        assert not vault.exists(join(where, "not-made"))
        await pilot.press("F")
        await wait_for(pilot, lambda: isinstance(app.screen, FsckScreen))
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        assert app.return_code is None


@pytest.mark.asyncio
@DEPTHS
async def test_ctrl_c_with_nothing_running_quits_as_q_does(deep_vault: Path, where: str) -> None:
    async with opened_at(deep_vault, where) as (app, pilot):
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: app.return_code is not None)
    assert app.return_code == 0


@pytest.mark.asyncio
async def test_ctrl_c_while_mounted_opens_the_quit_dialog(deep_vault: Path, mountpoint: Path) -> None:
    """Nothing running, a live mount: Ctrl-C asks as q does; Ctrl-C in that dialog cancels it."""
    async with opened_at(deep_vault, DEEP) as (app, pilot):
        await mount_with_keys(pilot, app, mountpoint)
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen))
        assert app.screen.id == "quit-dialog"
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        assert app.return_code is None and kernel_mounted(mountpoint)
        await pilot.press("u")
        await command_done(pilot, app)


# -- a tree deeper than PATH_MAX as cipher paths -------------------------------------------------

# 33 names of 127 bytes: 4,224 bytes of plain path, about 5,700 as cipher path.
PATH_MAX_NAMES = [f"{i:02d}-" + "ü" * 20 + "d" * (127 - 3 - 40) for i in range(33)]
PATH_MAX_DEEP = "/".join(PATH_MAX_NAMES)


@pytest.mark.asyncio
async def test_a_tree_deeper_than_path_max_opens_and_changes_at_the_bottom(tmp_path: Path) -> None:
    root = tmp_path / "vault"
    vault = make_vault(root)
    for depth in range(len(PATH_MAX_NAMES)):
        vault.mkdir("/".join(PATH_MAX_NAMES[: depth + 1]))
    vault.write_file(f"{PATH_MAX_DEEP}/leaf.txt", b"at the bottom\n")
    assert len(os.fsencode(vault.cipher_path(PATH_MAX_DEEP))) > 4096
    async with opened_at(root, PATH_MAX_DEEP) as (app, pilot):
        assert [e.plain_name for e in app.main.plain.rows if e.plain_name] == ["leaf.txt"]
        assert any(e.cipher_name == DIRIV_NAME for e in app.main.cipher.rows)
        await pilot.press("M")
        await answer_prompt(pilot, app, "archive")
        await command_done(pilot, app)
        select_plain(app.main, "leaf.txt")
        await pilot.press("r")
        await answer_prompt(pilot, app, "done.txt")
        await command_done(pilot, app)
        assert app.main.cwd == PATH_MAX_DEEP, log_text(app)
    vault = Vault.open(root, master_key=MASTER_KEY)
    assert vault.stat(f"{PATH_MAX_DEEP}/archive").kind == "dir"
    assert vault.read_file(f"{PATH_MAX_DEEP}/done.txt") == b"at the bottom\n"
    assert sorted(e.name for e in vault.listdir(PATH_MAX_DEEP)) == ["archive", "done.txt"]
