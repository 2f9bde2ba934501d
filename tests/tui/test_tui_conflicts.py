"""Conflict copies in the cipher pane: e exports, r adopts, d deletes, the info panel compares."""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from tui_harness import (
    DEEP,
    DEPTHS,
    MASTER_KEY,
    answer_prompt,
    command_done,
    info_text,
    join,
    log_text,
    opened_at,
    wait_for,
)

from vaultsh.service import integrity
from vaultsh.tui import browser
from vaultsh.tui.app import VaultApp
from vaultsh.tui.entries import Entry
from vaultsh.tui.inspect import describe_cipher
from vaultsh.tui.screens import ConfirmScreen
from vaultsh.vault.vault import Vault

CHANGED = b"changed on the other machine\nsecond line\n"
ADOPTED = "todo (conflict 2026-01-02).txt"


@pytest.fixture
def conflicted(deep_vault: Path) -> Path:
    """deep_vault with a Dropbox copy of todo.txt, other content, at the root and in a/b/c."""
    vault = Vault.open(deep_vault, master_key=MASTER_KEY)
    for where in ("", DEEP):
        # Content is bound to the file ID, not the name: another file's cipher bytes under the
        # copy's name decrypt, as a sync tool's copy of an edit does.
        vault.write_file(join(where, "edit.tmp"), CHANGED)
        todo = vault.cipher_path(join(where, "todo.txt"))
        shutil.copyfile(vault.cipher_path(join(where, "edit.tmp")), copy_path(todo))
        vault.unlink(join(where, "edit.tmp"))
    return deep_vault


def copy_path(todo_cipher: Path) -> Path:
    return todo_cipher.with_name(todo_cipher.name + " (conflicted copy 2026-01-02)")


def copy_of(root: Path, where: str) -> Path:
    return copy_path(Vault.open(root, master_key=MASTER_KEY).cipher_path(join(where, "todo.txt")))


async def to_cipher_entry(pilot: Pilot[Any], app: VaultApp, name: str) -> Entry:
    """Go to the cipher pane and put the cursor on the entry called `name` on disk."""
    await pilot.press("tab")
    await pilot.pause()
    cipher = app.main.cipher
    entry = next(e for e in cipher.rows if e.cipher_name == name)
    cipher.move_to(cipher.row_of(entry) or 0)
    await pilot.pause()
    assert app.main.active_list() is cipher
    return entry


@contextlib.asynccontextmanager
async def on_copy(root: Path, where: str) -> AsyncIterator[tuple[VaultApp, Pilot[Any]]]:
    """The vault open at `where`, the cursor on todo.txt's copy in the cipher pane."""
    async with opened_at(root, where) as (app, pilot):
        await to_cipher_entry(pilot, app, copy_of(root, where).name)
        yield app, pilot


@pytest.mark.asyncio
@DEPTHS
async def test_r_adopts_the_copy_under_a_plain_name(conflicted: Path, where: str) -> None:
    async with on_copy(conflicted, where) as (app, pilot):
        await pilot.press("r")
        await command_done(pilot, app)
        vault = Vault.open(conflicted, master_key=MASTER_KEY)
        assert vault.read_file(join(where, ADOPTED)) == CHANGED, log_text(app)
        assert not copy_of(conflicted, where).exists()
        assert f"/{join(where, ADOPTED)}" in log_text(app)
        assert app.main.cwd == where
        current = app.main.plain.current
        assert current is not None and current.plain_name == ADOPTED


@pytest.mark.asyncio
@DEPTHS
async def test_d_deletes_the_copy_after_asking(conflicted: Path, where: str) -> None:
    async with on_copy(conflicted, where) as (app, pilot):
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await command_done(pilot, app)
        assert not copy_of(conflicted, where).exists(), log_text(app)
        vault = Vault.open(conflicted, master_key=MASTER_KEY)
        assert vault.exists(join(where, "todo.txt"))


@pytest.mark.asyncio
async def test_d_then_n_keeps_the_copy(conflicted: Path) -> None:
    async with on_copy(conflicted, "") as (app, pilot):
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await pilot.pause()
        assert copy_of(conflicted, "").exists()


@pytest.mark.asyncio
@DEPTHS
async def test_e_exports_the_copy_decrypted(conflicted: Path, where: str, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    async with on_copy(conflicted, where) as (app, pilot):
        await pilot.press("e")
        await answer_prompt(pilot, app, str(dest))
        await command_done(pilot, app)
        exported = dest.joinpath(*where.split("/"), ADOPTED) if where else dest / ADOPTED
        assert exported.read_bytes() == CHANGED, log_text(app)
        assert copy_of(conflicted, where).exists()  # the vault is not changed


@pytest.mark.asyncio
@DEPTHS
async def test_the_info_panel_compares_both_sides(conflicted: Path, where: str) -> None:
    async with on_copy(conflicted, where) as (app, pilot):
        await wait_for(pilot, lambda: "Compared with the original" in info_text(app))
        text = info_text(app)
        assert "differ" in text
        assert "changed on the other machine" in text
        assert ("buy milk" if where else "root todo") in text
        assert f"{len(CHANGED):,} bytes" in text


@pytest.mark.asyncio
async def test_the_comparison_looks_where_the_copy_was_shown_not_where_the_screen_is_now(
    conflicted: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The info worker can run after the shown directory changed: it compares in the copy's own."""
    async with opened_at(conflicted, DEEP) as (app, pilot):
        await pilot.press("tab")
        await pilot.pause()
        release = threading.Event()
        looked_in: list[str] = []
        describe, find_copy = describe_cipher, integrity.conflict_copy

        def slow_describe(*args: Any) -> Any:
            release.wait(30)  # the screen moves on meanwhile
            return describe(*args)

        def recording_find(vault: Vault, plain_dir: str, name: str) -> Any:
            looked_in.append(plain_dir)
            return find_copy(vault, plain_dir, name)

        monkeypatch.setattr(browser, "describe_cipher", slow_describe)
        monkeypatch.setattr(integrity, "conflict_copy", recording_find)
        cipher = app.main.cipher
        entry = next(e for e in cipher.rows if e.cipher_name == copy_of(conflicted, DEEP).name)
        cipher.move_to(cipher.row_of(entry) or 0)
        await pilot.pause()
        app.main.cwd = ""  # what a directory change sets before its listing arrives
        release.set()
        await wait_for(pilot, lambda: "Compared with the original" in info_text(app))
        assert looked_in == [DEEP]
        assert "buy milk" in info_text(app)  # a/b/c/todo.txt, not the root's


@pytest.mark.asyncio
async def test_d_deletes_a_directory_copy_without_following_symlinks(
    conflicted: Path, tmp_path: Path
) -> None:
    vault = Vault.open(conflicted, master_key=MASTER_KEY)
    original = vault.cipher_path("a")
    copy = original.with_name(original.name + " (conflicted copy 2026-01-02)")
    shutil.copytree(original, copy, symlinks=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_bytes(b"not the vault's\n")
    (copy / "link").symlink_to(outside)
    async with opened_at(conflicted) as (app, pilot):
        await to_cipher_entry(pilot, app, copy.name)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await command_done(pilot, app)
        assert not copy.exists() and not copy.is_symlink(), log_text(app)
        assert (outside / "keep.txt").read_bytes() == b"not the vault's\n"
        assert Vault.open(conflicted, master_key=MASTER_KEY).read_file(f"{DEEP}/todo.txt") == b"buy milk\n"


@pytest.mark.asyncio
async def test_a_stray_file_is_no_conflict_copy(conflicted: Path) -> None:
    async with opened_at(conflicted) as (app, pilot):
        await to_cipher_entry(pilot, app, "stray file.txt")
        await pilot.press("r")
        await command_done(pilot, app)
        assert "not a conflict copy" in log_text(app)
        assert (conflicted / "stray file.txt").exists()
