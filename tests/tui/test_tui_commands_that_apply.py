"""The TUI's help screen, `:help` and `:` completion offer only what the open folder can run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, TextArea
from tui_harness import (
    command_done,
    enter_line,
    log_text,
    make_reverse_folder,
    make_vault,
    opened_at,
    wait_for,
)

from vaultsh.tui.app import VaultApp
from vaultsh.tui.fsck_screen import FsckScreen
from vaultsh.tui.screens import HelpScreen
from vaultsh.tui.viewer import ViewerScreen

# What a reverse-mode folder cannot run: writing into its view, examining stored cipher files.
REFUSED = {"import", "mkdir", "mv", "rm", "fsck", "conflicts"}
ALWAYS = {"ls", "cat", "export", "mount", "passwd", "masterkey", "info", "help"}


@pytest.fixture(params=["vault", "reverse"])
def folder(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    """(kind, root): the TUI test vault or the TUI test reverse-mode folder."""
    root = tmp_path / request.param
    if request.param == "vault":
        make_vault(root)
    else:
        make_reverse_folder(root)
    return request.param, root


async def panel_output(pilot: Pilot[Any], app: VaultApp, line: str) -> str:
    """Run a line of several lines' output; return what its full-width panel shows, closed again."""
    await enter_line(pilot, app, line)
    await wait_for(pilot, lambda: isinstance(app.screen, ViewerScreen) and app.screen.kind != "loading")
    text = app.screen.query_one(TextArea).text
    await pilot.press("escape")
    await wait_for(pilot, lambda: app.screen is app.main)
    return text


@pytest.mark.asyncio
async def test_help_and_help_cmd_at_the_command_line(folder: tuple[str, Path]) -> None:
    kind, root = folder
    async with opened_at(root) as (app, pilot):
        listed = {
            line.split()[0] for line in (await panel_output(pilot, app, "help")).split("\n") if line.strip()
        }
        assert listed >= ALWAYS
        assert (REFUSED & listed) == (REFUSED if kind == "vault" else set())
        for command, why in (("mkdir", "read-only"), ("fsck", "no cipher files to check")):
            if kind == "vault":  # its usage and arguments, in the panel
                shown = await panel_output(pilot, app, f"help {command}")
                assert shown.startswith(f"usage: {command} "), shown
                continue
            await enter_line(pilot, app, f"help {command}")  # one line: in the log
            await command_done(pilot, app)
            said = app.log_lines[-1]
            assert said.startswith(f"{command}: does not apply here: ") and why in said, said
            assert "reverse-mode folder" in said and app.log_lines[-2] == f"> help {command}"


@pytest.mark.asyncio
async def test_tab_at_the_command_line_completes_only_commands_that_apply(folder: tuple[str, Path]) -> None:
    kind, root = folder
    async with opened_at(root) as (app, pilot):
        box = app.main.query_one("#cmdline", Input)
        for typed, full in (("mk", "mkdir"), ("fs", "fsck"), ("co", "conflicts"), ("ma", "masterkey")):
            await pilot.press("colon", *typed, "tab")
            expected = full if kind == "vault" or full == "masterkey" else typed
            assert box.has_focus and box.value == expected, (typed, box.value)
            await pilot.press("escape")
            await wait_for(pilot, lambda: not box.has_focus)


@pytest.mark.asyncio
async def test_help_screen_lists_only_the_keys_whose_commands_apply(folder: tuple[str, Path]) -> None:
    kind, root = folder
    async with opened_at(root) as (app, pilot):
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        keys = dict(help_screen.keys)
        refused_keys = {"F", "F6 / i", "F7 / M", "F8 / d", "r", "E"}  # fsck, import, mkdir, rm, mv, edit
        assert (refused_keys & set(keys)) == (refused_keys if kind == "vault" else set())
        assert {"p", "K", "I", "m", "F5 / e"} <= set(keys)  # passwd, master key, info, mount, export
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.main)
        if kind == "reverse":
            # The fsck key, left out of the help, says why when pressed, as `:fsck` does.
            await pilot.press("F")
            await wait_for(pilot, lambda: "no cipher files to check" in log_text(app))
            assert not isinstance(app.screen, FsckScreen)
            assert app.log_lines[-1].startswith("fsck: ") and "reverse-mode folder" in app.log_lines[-1]
