"""The recovery wizard driven with real keys: a vault without its config is rebuilt and opened."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from test_tui_app import LONG_NAME, MASTER_KEY, SIZE, loaded, make_vault, type_text, wait_for
from textual.pilot import Pilot
from textual.widgets import Input, Static

from vaultsh.tui.app import VaultApp
from vaultsh.tui.recover_wizard import RecoverScreen
from vaultsh.vault.config import CONF_NAME, load_config
from vaultsh.vault.keys import format_master_key

NEW = "new harbour lantern 42"


def wizard(pilot: Pilot[Any]) -> RecoverScreen:
    screen = pilot.app.screen
    assert isinstance(screen, RecoverScreen)
    return screen


def shown(screen: RecoverScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def type_into(pilot: Pilot[Any], screen: RecoverScreen, selector: str, value: str) -> None:
    # Typed key by key would take long for a 71-character key; the Input takes it as pasted.
    field = screen.query_one(selector, Input)
    field.focus()
    field.value = value
    await pilot.pause()


@pytest.fixture
def lost_config(tmp_path: Path) -> Path:
    root = tmp_path / "vault"
    make_vault(root)
    (root / CONF_NAME).unlink()
    return root


@pytest.mark.asyncio
async def test_wizard_rebuilds_the_config_and_opens_the_vault(lost_config: Path) -> None:
    app = VaultApp(lost_config, logn=10)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, RecoverScreen))
        screen = wizard(pilot)
        # A wrong key is refused on the spot, nothing written.
        await type_into(pilot, screen, "#key", format_master_key(bytes(32)))
        await pilot.press("enter")
        await wait_for(pilot, lambda: "fits nothing" in shown(screen, "#key-error"))
        assert not (lost_config / CONF_NAME).exists()
        # The right key: the settings found are shown with their evidence.
        await type_into(pilot, screen, "#key", format_master_key(MASTER_KEY))
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.step == "step-password")
        found = shown(screen, "#found")
        assert "AES-GCM-256" in found and "names decrypt" in found
        await type_text(pilot, NEW)
        await pilot.press("enter")
        await type_text(pilot, NEW)
        await pilot.press("enter")
        await wait_for(pilot, loaded(app))
        assert app.vault is not None
        assert app.vault.read_file("notes.txt") == b"hello from the vault\nsecond line\n"
        assert LONG_NAME in [e.name for e in app.vault.listdir("")]
    conf = load_config(lost_config / CONF_NAME)
    assert conf.decrypt_master_key(NEW.encode()) == MASTER_KEY


@pytest.mark.asyncio
async def test_wizard_reads_the_key_from_a_file_and_escape_writes_nothing(
    lost_config: Path, tmp_path: Path
) -> None:
    keyfile = tmp_path / "key.txt"
    keyfile.write_text(format_master_key(MASTER_KEY) + "\n")
    app = VaultApp(lost_config, logn=10)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, RecoverScreen))
        screen = wizard(pilot)
        await type_into(pilot, screen, "#key-file", str(keyfile))
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.step == "step-password")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.is_running)
    assert not (lost_config / CONF_NAME).exists()


@pytest.mark.asyncio
async def test_ordinary_folder_gets_no_wizard(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "letter.txt").write_text("dear")
    app = VaultApp(folder, logn=10)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: not app.is_running)
    assert app.return_code == 11  # the config-not-found exit, as before: no wizard was shown
    assert os.listdir(folder) == ["letter.txt"]
