"""The TUI for a vault in trouble, driven with real keys: the recovery wizard, a broken config's
.bak, passwd after a master-key unlock, and the fsck screen jumping to a damaged entry."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from gocryptfs_harness import (
    gocryptfs_init,
    gocryptfs_mount,
    make_interop_tree,
    xray_masterkey,
)
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, RadioButton, Static
from tui_harness import (
    MASTER_KEY,
    PASSWORD,
    SIZE,
    log_text,
    make_vault,
    open_at,
    opened_at,
    type_text,
    wait_for,
)
from vault_factory import new_vault

from vaultsh.tui.app import VaultApp
from vaultsh.tui.fsck_screen import FsckScreen
from vaultsh.tui.main_screen import MainScreen
from vaultsh.tui.recover_wizard import RecoverScreen
from vaultsh.tui.screens import ConfirmScreen, PasswordScreen
from vaultsh.vault.config import CONF_NAME, load_config
from vaultsh.vault.errors import ExitCode, PasswordIncorrectError, VaultError
from vaultsh.vault.keys import format_master_key
from vaultsh.vault.vault import Vault

TEST_LOGN = 10
NEW_PASSWORD = "kelp7 Onyx!fjord walnut"
WRONG_KEY = bytes(range(1, 33))
XCHACHA = "XChaCha20-Poly1305"  # how the detection names the cipher


def wizard(app: VaultApp) -> RecoverScreen:
    screen = app.screen
    assert isinstance(screen, RecoverScreen)
    return screen


def shown(screen: Any, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def set_input(pilot: Pilot[Any], app: VaultApp, selector: str, value: str) -> None:
    """Put `value` into an input of the current screen at once and submit it (Enter)."""
    box = app.screen.query_one(selector, Input)
    box.focus()
    box.value = value
    await pilot.pause()
    await pilot.press("enter")


async def reach_step(pilot: Pilot[Any], app: VaultApp, step: str) -> None:
    await wait_for(pilot, lambda: isinstance(app.screen, RecoverScreen) and wizard(app).step == step)


async def recover_with_keys(pilot: Pilot[Any], app: VaultApp, key_text: str) -> RecoverScreen:
    """Wizard from the key step to the written config: key, settings report, password twice."""
    await reach_step(pilot, app, "step-key")
    screen = wizard(app)
    await set_input(pilot, app, "#key-text", key_text)
    await reach_step(pilot, app, "step-settings")
    assert "AES-GCM-256" in shown(screen, "#report")
    await pilot.press("enter")  # Next (focused)
    await reach_step(pilot, app, "step-password")
    await type_text(pilot, "weak")
    await wait_for(pilot, lambda: "Weak" in shown(screen, "#strength-warning"))
    screen.query_one("#password", Input).value = NEW_PASSWORD
    await pilot.press("enter")
    await type_text(pilot, NEW_PASSWORD)
    await pilot.press("enter")
    return screen


@pytest.fixture
def lost_config(vault_dir: Path) -> Path:
    """The test vault without its config."""
    (vault_dir / CONF_NAME).unlink()
    return vault_dir


@pytest.fixture
def corrupt_config(vault_dir: Path) -> Path:
    """The test vault with a damaged config and a good backup of it beside."""
    shutil.copy(vault_dir / CONF_NAME, vault_dir / (CONF_NAME + ".bak"))
    (vault_dir / CONF_NAME).write_text("{ not json")
    return vault_dir


@pytest.mark.asyncio
async def test_recovery_wizard_writes_a_config_and_opens_the_vault(lost_config: Path) -> None:
    app = VaultApp(lost_config, logn=TEST_LOGN)
    async with app.run_test(size=SIZE) as pilot:
        await reach_step(pilot, app, "step-key")
        assert "no gocryptfs.conf" in shown(wizard(app), ".hint")
        await recover_with_keys(pilot, app, format_master_key(MASTER_KEY))
        await open_at(pilot, app)
        assert isinstance(app.screen, MainScreen)
        assert f"Wrote a new {lost_config / CONF_NAME}" in log_text(app)
        assert format_master_key(MASTER_KEY) not in log_text(app)
        assert NEW_PASSWORD not in log_text(app)
    vault = Vault.open(lost_config, password=NEW_PASSWORD.encode())
    assert vault.keys.master_key == MASTER_KEY
    assert vault.read_file("docs/report.txt") == b"quarterly numbers\n"
    assert not (lost_config / (CONF_NAME + ".bak")).exists()  # nothing was there to keep


@pytest.mark.asyncio
async def test_wrong_key_is_one_line_retry_and_escape_writes_nothing(
    lost_config: Path, tmp_path: Path
) -> None:
    before = sorted(os.listdir(lost_config))
    app = VaultApp(lost_config, logn=TEST_LOGN)
    async with app.run_test(size=SIZE) as pilot:
        await reach_step(pilot, app, "step-key")
        screen = wizard(app)
        await set_input(pilot, app, "#key-text", "not hex")
        assert "not valid hex" in shown(screen, "#key-error")
        await set_input(pilot, app, "#key-text", format_master_key(WRONG_KEY))
        await wait_for(pilot, lambda: "fits nothing" in shown(screen, "#key-error"))
        assert screen.step == "step-key"
        assert "\n" not in shown(screen, "#key-error")
        assert screen.query_one("#key-text", Input).value == ""
        # The right key from a file gets to the settings; Esc there leaves with nothing written.
        key_file = tmp_path / "key.txt"
        key_file.write_text(format_master_key(MASTER_KEY) + "\n")
        await set_input(pilot, app, "#key-file", str(key_file))
        await reach_step(pilot, app, "step-settings")
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_value == ExitCode.SIGINT
    assert sorted(os.listdir(lost_config)) == before


@pytest.mark.asyncio
async def test_empty_vault_asks_the_undecided_settings(tmp_path: Path) -> None:
    root = tmp_path / "vault"
    new_vault(root, PASSWORD, master_key=MASTER_KEY, logn=TEST_LOGN, xchacha=True).close()
    (root / CONF_NAME).unlink()  # only gocryptfs.diriv is left: nothing tells the cipher
    app = VaultApp(root, logn=TEST_LOGN)
    async with app.run_test(size=SIZE) as pilot:
        await reach_step(pilot, app, "step-key")
        screen = wizard(app)
        await set_input(pilot, app, "#key-text", format_master_key(MASTER_KEY))
        await reach_step(pilot, app, "step-settings")
        assert "cannot decide" in shown(screen, "#report")
        buttons = [
            b for b in screen.query("#question-content RadioButton").results(RadioButton) if b.name == XCHACHA
        ]
        assert len(buttons) == 1
        buttons[0].value = True
        await pilot.pause()
        screen.query_one("#settings-next").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "[--xchacha]" in shown(screen, "#report"))
        next_button = screen.query_one("#settings-next")
        assert app.focused is next_button
        # A button ignores Enter while it still shows the last press (a fraction of a second).
        await wait_for(pilot, lambda: not next_button.has_class("-active"))
        await pilot.press("enter")
        await reach_step(pilot, app, "step-password")
        for _ in range(2):
            await type_text(pilot, NEW_PASSWORD)
            await pilot.press("enter")
        await wait_for(pilot, lambda: app.session is not None)
    assert Vault.open(root, password=NEW_PASSWORD.encode()).options.xchacha


@pytest.mark.asyncio
async def test_recover_command_in_a_session_keeps_the_old_config_as_bak(vault_dir: Path) -> None:
    root = vault_dir
    async with opened_at(root, logn=TEST_LOGN) as (app, pilot):
        await pilot.press("colon")
        app.main.query_one("#cmdline", Input).value = "recover"
        await pilot.press("enter")
        await recover_with_keys(pilot, app, format_master_key(MASTER_KEY))
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        assert "the previous config is kept as" in log_text(app)
    assert Vault.open(root, password=NEW_PASSWORD.encode()).keys.master_key == MASTER_KEY
    assert Vault.open(root, config_path=root / (CONF_NAME + ".bak"), password=PASSWORD.encode())


@pytest.mark.asyncio
async def test_corrupt_config_offers_the_bak(corrupt_config: Path) -> None:
    root = corrupt_config
    app = VaultApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, PasswordScreen))
        await type_text(pilot, PASSWORD)
        await pilot.press("enter")
        await open_at(pilot, app)
        assert app.session is not None and app.session.conf_path == root / (CONF_NAME + ".bak")
    assert (root / CONF_NAME).read_text() == "{ not json"  # left for the person to replace


@pytest.mark.asyncio
async def test_corrupt_config_declining_the_bak_exits_with_the_config_error(corrupt_config: Path) -> None:
    root = corrupt_config
    app = VaultApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await pilot.pause()
    with pytest.raises(VaultError) as broken:
        load_config(root / CONF_NAME)
    assert app.return_value == broken.value.exit_code


@pytest.mark.asyncio
async def test_passwd_after_master_key_unlock_needs_no_old_password(vault_dir: Path) -> None:
    root = vault_dir
    async with opened_at(root) as (app, pilot):
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PasswordScreen))
        assert "old password is not needed" in str(app.screen.query_one(".dialog-detail").render())
        await type_text(pilot, "new secret")
        await pilot.press("enter")
        await type_text(pilot, "new secret")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        assert "Password changed" in log_text(app)
    assert Vault.open(root, password=b"new secret").keys.master_key == MASTER_KEY
    with pytest.raises(PasswordIncorrectError):
        Vault.open(root, password=PASSWORD.encode())


# -- fsck -----------------------------------------------------------------------------------------


def deep_damaged_vault(root: Path) -> Vault:
    """The test vault plus a/b/c/deep.txt with a flipped byte in its only block."""
    vault = make_vault(root)
    vault.mkdir("a")
    vault.mkdir("a/b")
    vault.mkdir("a/b/c")
    vault.write_file("a/b/c/deep.txt", b"deep content\n" * 10)
    vault.write_file("a/b/c/fine.txt", b"fine\n")
    cpath = vault.cipher_path("a/b/c/deep.txt")
    data = bytearray(cpath.read_bytes())
    data[40] ^= 0xFF  # inside block 0's ciphertext (header is 18 bytes, nonce 16)
    cpath.write_bytes(bytes(data))
    return vault


async def fsck_findings(pilot: Pilot[Any], app: VaultApp) -> FsckScreen:
    await wait_for(pilot, lambda: isinstance(app.screen, FsckScreen))
    screen = app.screen
    assert isinstance(screen, FsckScreen)
    await wait_for(pilot, lambda: screen.done)
    return screen


@pytest.mark.asyncio
async def test_fsck_key_lists_findings_and_enter_jumps_to_the_entry_at_depth_3(tmp_path: Path) -> None:
    root = tmp_path / "vault"
    deep_damaged_vault(root)
    async with opened_at(root) as (app, pilot):
        await pilot.press("F")
        screen = await fsck_findings(pilot, app)
        kinds = {str(f.kind) for f in screen.findings}
        assert {"block-bad", "conflict-copy", "stray-plaintext"} <= kinds, kinds
        options = screen.query_one(OptionList)
        assert options.option_count == len(screen.findings)
        assert "problems" in shown(screen, "#fsck-status")
        row = next(i for i, f in enumerate(screen.findings) if f.kind == "block-bad")
        assert "/a/b/c/deep.txt" in str(options.get_option_at_index(row).prompt)
        options.highlighted = row
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen) and not app.main.dir_loading)
        await wait_for(pilot, lambda: app.main.cwd == "a/b/c")
        current = app.main.plain.current
        assert current is not None and current.plain_name == "deep.txt"
        assert "fsck /: " in log_text(app)


@pytest.mark.asyncio
async def test_fsck_command_on_a_subtree_jumps_to_a_cipher_only_entry(tmp_path: Path) -> None:
    root = tmp_path / "vault"
    vault = deep_damaged_vault(root)
    cdir = vault.cipher_path("a/b/c")
    (cdir / "dropped by hand.txt").write_bytes(b"plain text")
    async with opened_at(root) as (app, pilot):
        await pilot.press("colon")
        app.main.query_one("#cmdline", Input).value = "fsck a/b"
        await pilot.press("enter")
        screen = await fsck_findings(pilot, app)
        assert {str(f.kind) for f in screen.findings} == {"block-bad", "stray-plaintext"}
        row = next(i for i, f in enumerate(screen.findings) if f.kind == "stray-plaintext")
        screen.query_one(OptionList).highlighted = row
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.main.active_side == "cipher")
        assert app.main.cwd == "a/b/c"
        current = app.main.cipher.current
        assert current is not None and current.cipher_name == "dropped by hand.txt"


# -- real gocryptfs ---------------------------------------------------------------------------------


@pytest.mark.gocryptfs
@pytest.mark.asyncio
async def test_wizard_recovers_a_gocryptfs_vault_that_gocryptfs_then_mounts(tmp_path: Path) -> None:
    cipher = tmp_path / "cipher"
    gocryptfs_init(cipher, PASSWORD)
    with gocryptfs_mount(cipher, tmp_path / "mnt1", PASSWORD) as mnt:
        make_interop_tree(mnt)
        expected = sorted(p.relative_to(mnt).as_posix() for p in mnt.rglob("*"))
    key = xray_masterkey(cipher / CONF_NAME, PASSWORD)
    (cipher / CONF_NAME).unlink()
    app = VaultApp(cipher, logn=TEST_LOGN)
    async with app.run_test(size=SIZE) as pilot:
        await recover_with_keys(pilot, app, key)
        await open_at(pilot, app)
    with gocryptfs_mount(cipher, tmp_path / "mnt2", NEW_PASSWORD) as mnt:
        assert sorted(p.relative_to(mnt).as_posix() for p in mnt.rglob("*")) == expected
