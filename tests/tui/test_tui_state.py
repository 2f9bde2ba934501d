"""The main screen's shown state: setting it redraws the titles and the status bar, and moves the session."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tui_harness import (
    MASTER_KEY,
    SIZE,
    command_done,
    loaded,
    screen_text,
    select_plain,
    status_text,
    type_text,
    wait_for,
)

from vaultsh.service import commands
from vaultsh.tui.app import VaultApp
from vaultsh.tui.entries import Entry
from vaultsh.vault.tree import TreeNode, VaultTree
from vaultsh.vault.vault import Vault


def subtitle(app: VaultApp) -> str:
    return str(app.main.query_one("#plain-pane").border_subtitle)


def title(app: VaultApp) -> str:
    return str(app.main.query_one("#plain-pane").border_title)


@pytest.mark.asyncio
async def test_the_session_and_the_title_follow_the_shown_directory(vault_dir: Path) -> None:
    app = VaultApp(vault_dir, master_key=MASTER_KEY)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, loaded(app))
        assert app.session is not None and app.session.cwd == ""
        select_plain(app.main, "docs")
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.main.dir_loading)
        assert app.session.cwd == "docs" and title(app).endswith("/docs")
        # A command with a relative path works in the shown directory.
        await pilot.press("colon")
        await type_text(pilot, "cat report.txt")
        await pilot.press("enter")
        await command_done(pilot, app)
        assert "quarterly numbers" in app.log_lines
        await pilot.press("backspace")
        await wait_for(pilot, lambda: not app.main.dir_loading and app.main.cwd == "")
        assert app.session.cwd == "" and title(app).endswith("  /")
        # `cd` in the command line moves the panes, and the session stays with them.
        await pilot.press("colon")
        await type_text(pilot, "cd docs")
        await pilot.press("enter")
        await command_done(pilot, app)
        assert app.main.cwd == app.session.cwd == "docs"


@pytest.mark.asyncio
async def test_the_subtitle_counts_the_selection_and_says_the_order(vault_dir: Path) -> None:
    app = VaultApp(vault_dir, master_key=MASTER_KEY)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, loaded(app))
        assert "selected" not in subtitle(app)
        select_plain(app.main, "notes.txt")
        await pilot.press("space")
        assert "1 selected" in subtitle(app)
        await pilot.press("asterisk")  # the others selected, notes.txt not
        shown = len([e for e in app.main.plain.rows if e.plain_name is not None])
        assert f"{shown - 1} selected" in subtitle(app)
        await pilot.press("asterisk")
        assert "1 selected" in subtitle(app)
        await pilot.press("S")
        assert "by name ↓" in subtitle(app)
        await pilot.press("full_stop")
        assert ".hidden" in subtitle(app)
        # Another directory starts with nothing selected.
        select_plain(app.main, "docs")
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.main.dir_loading)
        assert "selected" not in subtitle(app) and not app.main.selection.names


@pytest.mark.asyncio
async def test_the_status_bar_says_while_a_command_runs(vault_dir: Path) -> None:
    app = VaultApp(vault_dir, master_key=MASTER_KEY)
    started, release = threading.Event(), threading.Event()

    def held(session: commands.Session) -> int:
        started.set()
        release.wait(30)
        return 0

    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, loaded(app))
        assert "unlocked" in status_text(app) and "working…" not in status_text(app)
        app.run_task("a held task", held)
        await wait_for(pilot, started.is_set)
        assert "working…" in status_text(app)
        release.set()
        await command_done(pilot, app)
        assert "working…" not in status_text(app)


@pytest.mark.asyncio
async def test_the_panes_stay_drawn_while_a_directory_streams_in(
    vault_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = Vault.open(vault_dir, master_key=MASTER_KEY)
    for n in range(450):  # more than the first batch, so the listing can be held half-way
        vault.write_file(f"docs/f{n:04d}", b"")
    docs = vault.cipher_path("docs")
    held, release = threading.Event(), threading.Event()
    real_scan = VaultTree.cipher_entries

    def gated_scan(tree: VaultTree, directory: TreeNode, **kwargs: Any) -> Iterator[list[Entry]]:
        for n, batch in enumerate(real_scan(tree, directory, **kwargs)):
            yield batch
            if n == 0 and tree.watch_dir(directory) == docs:
                held.set()
                release.wait(30)

    monkeypatch.setattr(VaultTree, "cipher_entries", gated_scan)
    app = VaultApp(vault_dir, master_key=MASTER_KEY)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, loaded(app))
        select_plain(app.main, "docs")
        await pilot.press("enter")
        await wait_for(pilot, lambda: held.is_set() and bool(app.main.plain.rows))
        await pilot.pause()
        assert app.main.dir_loading
        drawn = screen_text(app)
        first = app.main.plain.rows[0].plain_name
        assert first is not None and first in drawn  # the names that came are on the screen
        assert "loading…" in drawn and "Plain  /docs" in drawn
        release.set()
        await wait_for(pilot, lambda: not app.main.dir_loading)
        assert "loading…" not in screen_text(app)
