"""Moving a multi-selection with `r`: one destination, one question, one task, at any depth."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Label
from tui_harness import (
    DEEP,
    DEPTHS,
    MASTER_KEY,
    PASSWORD,
    SIZE,
    answer_prompt,
    command_done,
    join,
    log_text,
    make_vault,
    opened_at,
    select_plain,
    wait_for,
)
from vault_factory import new_vault

from vaultsh.service import commands
from vaultsh.tui.app import VaultApp
from vaultsh.tui.main_screen import MainScreen
from vaultsh.tui.screens import ChoiceScreen, ConfirmScreen
from vaultsh.tui.selection import VaultDirPrompt
from vaultsh.vault.vault import Vault

PAYLOAD = bytes(range(256)) * 40  # spans several content blocks
ESC_NAME = "esc\x1b[31mred"  # a terminal escape in a name
MARKUP_NAME = "[bold]x"  # Rich markup in a name


@pytest.fixture
def move_vault(tmp_path: Path) -> Path:
    """The test vault plus a/b/c; the entries to move are added per test, where it needs them."""
    root = tmp_path / "vault"
    vault = make_vault(root)
    for part in ("a", "a/b", DEEP):
        vault.mkdir(part)
    return root


def populate(root: Path, where: str) -> Vault:
    """In `where`: a file, a directory with contents two levels deep, a symlink, a second
    file and an empty destination directory `dest`."""
    vault = Vault.open(root, master_key=MASTER_KEY)
    vault.write_file(join(where, "f.txt"), PAYLOAD)
    vault.mkdir(join(where, "d"))
    vault.write_file(join(where, "d/inner.txt"), b"inner\n")
    vault.mkdir(join(where, "d/sub"))
    vault.write_file(join(where, "d/sub/deep.bin"), b"\x00\xff" * 3000)
    vault.symlink("f.txt", join(where, "ln"))
    vault.write_file(join(where, "g.txt"), b"g\n")
    vault.mkdir(join(where, "dest"))
    return vault


async def select(pilot: Pilot[Any], app: VaultApp, *names: str) -> None:
    for name in names:
        select_plain(app.main, name)
        await pilot.press("space")
    assert app.main.selection.names == set(names)


async def ask_move(pilot: Pilot[Any], app: VaultApp, dest: str) -> None:
    """`r` on the selection, then `dest` as the destination."""
    await pilot.press("r")
    await wait_for(pilot, lambda: isinstance(app.screen, VaultDirPrompt))
    await answer_prompt(pilot, app, dest)


async def choose_then_confirm(pilot: Pilot[Any], app: VaultApp, choice: str) -> str:
    """Answer the question about names that exist with the key `choice`, then yes to the
    confirmation; returns the confirmation's question."""
    await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen))
    await pilot.press(choice)
    await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
    question = question_of(app)
    await pilot.press("y")
    await command_done(pilot, app)
    return question


def question_of(app: VaultApp) -> str:
    """The open dialog's question as drawn (a name's markup stays text)."""
    return str(app.screen.query_one(".dialog-question", Label).render())


def fresh(root: Path) -> Vault:
    return Vault.open(root, master_key=MASTER_KEY)


def names_in(root: Path, path: str) -> list[str]:
    return sorted(e.name for e in fresh(root).listdir(path))


@pytest.mark.asyncio
@DEPTHS
async def test_moves_a_file_a_tree_and_a_symlink_in_one_task(move_vault: Path, where: str) -> None:
    populate(move_vault, where)
    async with opened_at(move_vault, where) as (app, pilot):
        await select(pilot, app, "f.txt", "d", "ln")
        select_plain(app.main, "d")
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, VaultDirPrompt))
        assert "Move the 3 selected entries" in str(app.screen.query_one(".dialog-label", Label).render())
        box = app.screen.query_one("#answer", Input)
        assert box.value == f"/{where}/".replace("//", "/")
        box.value = "de"  # relative to the shown directory; Tab completes vault directories
        box.cursor_position = 2
        await pilot.press("tab")
        assert box.value == "dest/"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        dest = "/" + join(where, "dest")
        assert f"Move the 3 selected entries (4 files and 2 directories in all) into {dest}?" in question_of(
            app
        )
        await pilot.press("y")
        await command_done(pilot, app)

        vault = fresh(move_vault)  # the cipher tree as a new reader sees it
        assert vault.read_file(join(where, "dest/f.txt")) == PAYLOAD
        assert vault.read_file(join(where, "dest/d/inner.txt")) == b"inner\n"
        assert vault.read_file(join(where, "dest/d/sub/deep.bin")) == b"\x00\xff" * 3000
        assert vault.readlink(join(where, "dest/ln")) == "f.txt"
        assert names_in(move_vault, join(where, "dest")) == ["d", "f.txt", "ln"]
        for gone in ("f.txt", "d", "ln"):
            assert not vault.exists(join(where, gone))
        assert f"> move 3 selected entries into {dest}" in app.log_lines  # one task
        assert f"moved 3 entries (4 files, 2 directories) into {dest}" in log_text(app)
        assert app.main.selection.names == set()
        assert app.main.cwd == where
        # The cursor was on a moved entry: it is on the next one that stayed.
        current = app.main.plain.current
        assert current is not None and current.plain_name == "dest"


@pytest.mark.asyncio
@DEPTHS
async def test_names_that_exist_are_asked_about_once(move_vault: Path, where: str) -> None:
    vault = populate(move_vault, where)
    vault.write_file(join(where, "dest/f.txt"), b"already there\n")
    vault.mkdir(join(where, "dest/d"))
    vault.write_file(join(where, "h.txt"), b"new h\n")
    vault.write_file(join(where, "dest/h.txt"), b"old h\n")
    before = names_in(move_vault, where)
    async with opened_at(move_vault, where) as (app, pilot):
        dest = "/" + join(where, "dest")
        await select(pilot, app, "f.txt", "d", "g.txt")
        await ask_move(pilot, app, dest)
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen))
        question = question_of(app)
        assert f"2 of the selected names already exist in {dest}: d, f.txt." in question
        assert "never overwritten" in question
        assert not app.screen.query("#choice-overwrite")  # a directory takes part: no overwrite
        await pilot.press("c")
        await command_done(pilot, app)
        assert names_in(move_vault, where) == before  # nothing moved
        assert "nothing moved" in log_text(app)
        assert app.main.selection.names == {"f.txt", "d", "g.txt"}  # kept, to try again

        await ask_move(pilot, app, dest)
        question = await choose_then_confirm(pilot, app, "k")  # keep both
        assert "keep their names with a number added" in question
        vault = fresh(move_vault)
        assert vault.read_file(join(where, "dest/f.txt")) == b"already there\n"
        assert vault.read_file(join(where, "dest/f (2).txt")) == PAYLOAD
        assert vault.read_file(join(where, "dest/d (2)/sub/deep.bin")) == b"\x00\xff" * 3000
        assert vault.read_file(join(where, "dest/g.txt")) == b"g\n"
        assert names_in(move_vault, join(where, "dest/d")) == []

        # Files only: overwrite is offered; skip moves the rest and leaves the clash in place.
        vault.write_file(join(where, "i.txt"), b"i\n")
        await pilot.press("ctrl+r")
        await command_done(pilot, app)
        await select(pilot, app, "h.txt", "i.txt")
        await ask_move(pilot, app, dest)
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen))
        assert app.screen.query("#choice-overwrite")
        assert "Move the 1 selected entries" in await choose_then_confirm(pilot, app, "s")
        vault = fresh(move_vault)
        assert vault.read_file(join(where, "dest/i.txt")) == b"i\n"
        assert vault.read_file(join(where, "h.txt")) == b"new h\n"
        assert vault.read_file(join(where, "dest/h.txt")) == b"old h\n"

        await select(pilot, app, "h.txt")
        await ask_move(pilot, app, dest)
        assert "1 existing files there are replaced" in await choose_then_confirm(pilot, app, "o")
        vault = fresh(move_vault)
        assert vault.read_file(join(where, "dest/h.txt")) == b"new h\n"
        assert not vault.exists(join(where, "h.txt"))


@pytest.mark.asyncio
@DEPTHS
async def test_refusals_move_nothing_and_say_why_in_one_line(move_vault: Path, where: str) -> None:
    populate(move_vault, where)
    before = names_in(move_vault, where)
    inside_d = names_in(move_vault, join(where, "d"))
    async with opened_at(move_vault, where) as (app, pilot):
        await select(pilot, app, "f.txt", "d")
        cases = [
            ("d/sub", f"/{join(where, 'd')}: cannot move a directory into itself (/{join(where, 'd/sub')})"),
            ("d", f"/{join(where, 'd')}: cannot move a directory into itself (/{join(where, 'd')})"),
            ("nowhere", f"/{join(where, 'nowhere')}: no such directory in the vault"),
            ("g.txt", f"/{join(where, 'g.txt')}: not a directory"),
            (".", f"the selected entries are already in /{where}"),
        ]
        for typed, said in cases:
            await ask_move(pilot, app, typed)
            await command_done(pilot, app)
            assert isinstance(app.screen, MainScreen)  # no question asked
            assert said in app.log_lines[-1], (typed, app.log_lines[-3:])
            assert names_in(move_vault, where) == before
            assert names_in(move_vault, join(where, "d")) == inside_d
            assert app.main.selection.names == {"f.txt", "d"}

        # A valid destination, then No at the confirmation: nothing moves.
        await ask_move(pilot, app, "dest")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await command_done(pilot, app)
        assert app.log_lines[-1] == "nothing moved"
        assert names_in(move_vault, where) == before
        assert names_in(move_vault, join(where, "dest")) == []


@pytest.mark.asyncio
async def test_untrusted_names_show_as_text_in_the_questions(move_vault: Path) -> None:
    vault = Vault.open(move_vault, master_key=MASTER_KEY)
    target = "[red]in"
    vault.mkdir(target)
    for name in (MARKUP_NAME, ESC_NAME):
        vault.write_file(name, b"moved\n")
        vault.write_file(f"{target}/{name}", b"stays\n")
    async with opened_at(move_vault, "") as (app, pilot):
        await select(pilot, app, MARKUP_NAME, ESC_NAME)
        await ask_move(pilot, app, "/[red]in")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen))
        question = question_of(app)
        assert "\x1b" not in question
        assert "already exist in /[red]in: [bold]x, $'esc\\033[31mred'." in question
        await pilot.press("k")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "into /[red]in?" in question_of(app)
        await pilot.press("y")
        await command_done(pilot, app)
        vault = fresh(move_vault)
        assert vault.read_file(f"{target}/[bold]x (2)") == b"moved\n"
        assert vault.read_file(f"{target}/{ESC_NAME} (2)") == b"moved\n"
        assert vault.read_file(f"{target}/{MARKUP_NAME}") == b"stays\n"
        assert "\x1b" not in log_text(app)


@pytest.mark.asyncio
async def test_reverse_folder_refuses_a_move_of_the_selection(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    new_vault.reverse_folder(plain, PASSWORD, master_key=MASTER_KEY)
    (plain / "one.txt").write_bytes(b"1\n")
    (plain / "two.txt").write_bytes(b"2\n")
    (plain / "into").mkdir()
    before = sorted(os.listdir(plain))
    app = VaultApp(plain, master_key=MASTER_KEY)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.session is not None and not app.main.dir_loading)
        await wait_for(pilot, lambda: bool(app.main.plain.rows))
        await select(pilot, app, "one.txt", "two.txt")
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)  # refused at once, no dialog
        assert "reverse-mode folder is read-only" in app.log_lines[-1]
        assert sorted(os.listdir(plain)) == before
        assert os.listdir(plain / "into") == []


@pytest.mark.asyncio
async def test_cancel_during_the_move_stops_between_entries(
    move_vault: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(move_vault, "")
    async with opened_at(move_vault, "") as (app, pilot):
        real_move = commands.move_path

        def move_then_cancel(*args: Any, **kwargs: Any) -> int:
            # Esc pressed while the first entry moves: the task stops before the next one.
            code = real_move(*args, **kwargs)
            app.io.cancel.set()
            return code

        monkeypatch.setattr(commands, "move_path", move_then_cancel)
        await select(pilot, app, "d", "f.txt", "g.txt")
        await ask_move(pilot, app, "/dest")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await command_done(pilot, app)
        assert "moved 1 of 3 entries into /dest before cancelling" in log_text(app)
        assert app.log_lines[-1] == "cancelled"
        assert names_in(move_vault, "dest") == ["d"]
        vault = fresh(move_vault)
        assert vault.read_file("f.txt") == PAYLOAD and vault.read_file("g.txt") == b"g\n"
        assert app.main.selection.names == set()  # entries moved: the selection is done with
