"""SVG snapshots of the TUI's main screens (main view, help, password dialog) in every built-in theme."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from tui_harness import MASTER_KEY, make_reverse_folder, make_vault, wait_for

from vaultsh.tui.app import VaultApp
from vaultsh.tui.screens import PasswordScreen

THEMES = ["vaultsh-dark", "vaultsh-light", "vaultsh-high-contrast"]
# The smallest supported terminal and a common roomy one.
SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])


@pytest.fixture
def snapshot_vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The same bytes on every run: fixed key, deterministic names (no random diriv), UTC, umask 022.

    The vault is opened by the relative path `vault`, so the status bar shows no temp path.
    """
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.setenv("HOME", str(tmp_path))  # no user themes from the real home
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    old_umask = os.umask(0o022)
    try:
        make_vault(tmp_path / "vault", deterministic=True)
    finally:
        os.umask(old_umask)
    monkeypatch.chdir(tmp_path)
    yield Path("vault")
    time.tzset()


@pytest.fixture
def snapshot_reverse_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A reverse-mode folder whose view is the same on every run (its IVs derive from paths, §9.2)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    old_umask = os.umask(0o022)
    try:
        make_reverse_folder(tmp_path / "plain")
    finally:
        os.umask(old_umask)
    monkeypatch.chdir(tmp_path)
    yield Path("plain")
    time.tzset()


def settled(app: VaultApp) -> Callable[[Pilot[Any]], Any]:
    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_for(pilot, lambda: app.session is not None and not app.main.dir_loading)
        await wait_for(pilot, lambda: "Preview" in str(app.main.query_one("#info").border_title))
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("theme", THEMES)
@SIZES
def test_main_view(snap_compare: Any, snapshot_vault: Path, theme: str, size: tuple[int, int]) -> None:
    """Unlocked vault: plain and cipher trees side by side, flagged debris, the directory's info."""
    app = VaultApp(snapshot_vault, master_key=MASTER_KEY, theme=theme)
    assert snap_compare(app, terminal_size=size, run_before=settled(app))


@pytest.mark.parametrize("theme", THEMES)
@SIZES
def test_help_screen(snap_compare: Any, snapshot_vault: Path, theme: str, size: tuple[int, int]) -> None:
    """The help screen over the main view, listing every key."""
    app = VaultApp(snapshot_vault, master_key=MASTER_KEY, theme=theme)
    before = settled(app)

    async def run_before(pilot: Pilot[Any]) -> None:
        await before(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("theme", THEMES)
@SIZES
def test_password_dialog(snap_compare: Any, snapshot_vault: Path, theme: str, size: tuple[int, int]) -> None:
    """The unlock dialog after a wrong password (the message stays in the dialog)."""
    app = VaultApp(snapshot_vault, theme=theme)

    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_for(pilot, lambda: isinstance(app.screen, PasswordScreen))
        await pilot.press("w", "r", "o", "n", "g", "enter")
        dialog = app.screen
        assert isinstance(dialog, PasswordScreen)
        await wait_for(pilot, lambda: not dialog.busy)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@SIZES
def test_reverse_main_view(snap_compare: Any, snapshot_reverse_folder: Path, size: tuple[int, int]) -> None:
    """A reverse-mode folder: plain files left, the encrypted view a reverse mount shows right."""
    app = VaultApp(snapshot_reverse_folder, master_key=MASTER_KEY)
    assert snap_compare(app, terminal_size=size, run_before=settled(app))
