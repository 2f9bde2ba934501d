"""The TUI on a reverse-mode folder: plain files left, their encrypted view right, mount, export."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from tui_harness import (
    BINARY,
    LONG_NAME,
    MASTER_KEY,
    NOTES,
    PASSWORD,
    REPORT,
    SIZE,
    answer_passwords,
    answer_prompt,
    command_done,
    enter_line,
    footer_actions,
    info_text,
    log_text,
    make_reverse_folder,
    make_vault,
    masterkey_from_command_line,
    open_at,
    row_text,
    select_plain,
    shows_mount,
    status_text,
    type_text,
    wait_for,
    wrong_password_refused,
)

from vaultsh.tui.app import VaultApp
from vaultsh.tui.entries import ROLE_CONF, ROLE_DIRIV, ROLE_OBJECT, ROLE_SIDECAR, Entry
from vaultsh.tui.main_screen import MainScreen
from vaultsh.tui.screens import HelpScreen, PromptScreen
from vaultsh.vault.config import CONF_NAME, REVERSE_CONF_NAME
from vaultsh.vault.content import HEADER_LEN
from vaultsh.vault.keys import format_master_key
from vaultsh.vault.reverse import ReverseView, derive
from vaultsh.vault.vault import Vault


@pytest.fixture
def plain_dir(tmp_path: Path) -> Path:
    return make_reverse_folder(tmp_path / "plain")


def open_view(root: Path) -> ReverseView:
    return ReverseView.open(root, master_key=MASTER_KEY)


async def opened(pilot: Pilot[Any], app: VaultApp) -> MainScreen:
    await open_at(pilot, app)
    return app.main


def by_cipher_name(screen: MainScreen) -> dict[str, Entry]:
    return {e.cipher_name: e for e in screen.cipher.all_entries}


async def command_line(pilot: Pilot[Any], app: VaultApp, line: str) -> None:
    """Run one line from the command line and wait until it is done."""
    await enter_line(pilot, app, line)
    await command_done(pilot, app)


# -- unlocking and the two trees ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_unlock_dialog_shows_plain_tree_and_the_encrypted_view(plain_dir: Path) -> None:
    app = VaultApp(plain_dir)
    async with app.run_test(size=SIZE) as pilot:
        await wrong_password_refused(pilot, app)
        assert app.session is None
        await type_text(pilot, PASSWORD)
        await pilot.press("enter")
        screen = await opened(pilot, app)
        assert isinstance(app.screen, MainScreen)
        assert app.session is not None and not app.session.tree.writable
        # Left: the real files, without the config.
        assert {e.plain_name for e in screen.plain.rows} == {
            "docs",
            "notes.txt",
            "binary.bin",
            LONG_NAME,
            "link",
        }
        assert screen.plain.rows[0].plain_name == "docs"
        # Right: exactly what a reverse mount lists, with the sizes it reports.
        view = open_view(plain_dir)
        listed = {e.cipher_name: e for e in view.listdir("")}
        entries = by_cipher_name(screen)
        assert set(entries) == set(listed)
        assert CONF_NAME in entries and "gocryptfs.diriv" in entries
        assert REVERSE_CONF_NAME not in entries
        for name, ve in listed.items():
            assert entries[name].cipher_size == view.stat(ve).size, name
        roles = {e.role for e in entries.values()}
        assert roles == {ROLE_OBJECT, ROLE_CONF, ROLE_DIRIV, ROLE_SIDECAR}
        assert "reverse (read-only view)" in status_text(app)
        assert "Encrypted view" in str(screen.query_one("#cipher-pane").border_title)


@pytest.mark.asyncio
async def test_linked_cursors_both_ways_and_into_a_directory(plain_dir: Path) -> None:
    app = VaultApp(plain_dir, master_key=MASTER_KEY)
    view = open_view(plain_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(pilot, app)
        # plain -> cipher: the object's encrypted name, its .name sidecar and the diriv marked
        for name in ("notes.txt", LONG_NAME, "link", "docs"):
            entry = select_plain(screen, name)
            await pilot.pause()
            assert screen.cipher.current is entry
            disk, _full = view.encrypt_name("", name)
            assert entry.cipher_name == disk
            marked = {e.cipher_name for e in screen.cipher.all_entries if id(e) in screen.cipher.marked}
            expected = {"gocryptfs.diriv"} | ({disk + ".name"} if name == LONG_NAME else set())
            assert marked == expected
        assert row_text(screen.cipher, by_cipher_name(screen)["gocryptfs.diriv"]).startswith("◆")
        # cipher -> plain, with keys in the cipher pane
        await pilot.press("tab")
        assert app.focused is screen.cipher
        seen: set[str] = set()
        await pilot.press("home")
        for _ in range(len(screen.cipher.rows)):
            await pilot.pause()
            current = screen.cipher.current
            assert current is not None
            if current.role == ROLE_OBJECT:
                assert screen.plain.current is current
                seen.add(current.plain_name or "")
            elif current.role == ROLE_SIDECAR:
                owner = by_cipher_name(screen)[current.owner_name or ""]
                assert screen.plain.current is owner and owner.plain_name == LONG_NAME
                seen.add("sidecar")
            await pilot.press("down")
        assert seen == {"docs", "notes.txt", "binary.bin", LONG_NAME, "link", "sidecar"}
        # into docs and back
        await pilot.press("tab")
        select_plain(screen, "docs")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.cwd == "docs" and not screen.dir_loading)
        docs_cipher = view.encrypt_name("", "docs")[0]
        assert screen.dir_node is not None and screen.dir_node.cipher_path == docs_cipher
        assert [e.plain_name for e in screen.plain.rows] == ["report.txt"]
        assert {e.cipher_name for e in screen.cipher.all_entries} == {
            e.cipher_name for e in view.listdir(docs_cipher, "docs")
        }
        await pilot.press("backspace")
        await wait_for(pilot, lambda: screen.cwd == "" and not screen.dir_loading)
        assert screen.plain.current is not None and screen.plain.current.plain_name == "docs"


@pytest.mark.asyncio
async def test_preview_and_xray_computed_from_the_view(plain_dir: Path) -> None:
    app = VaultApp(plain_dir, master_key=MASTER_KEY)
    view = open_view(plain_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(pilot, app)
        notes = select_plain(screen, "notes.txt")
        await wait_for(pilot, lambda: "Preview  notes.txt" in str(screen.query_one("#info").border_title))
        text = info_text(app)
        assert "hello from the plain side" in text
        assert (
            f"{len(NOTES)} bytes, {view.content.plain_to_cipher_size(len(NOTES))} in the encrypted view"
            in text
        )
        await pilot.press("tab")
        await wait_for(pilot, lambda: "X-ray" in str(screen.query_one("#info").border_title))
        text = info_text(app)
        header = view.read(view.resolve(notes.cipher_name), 0, HEADER_LEN)
        assert header[2:].hex() == derive(notes.cipher_name, "FILEID").hex()
        assert f"file ID {header[2:].hex()}" in text
        assert "(1 EME block)" in text  # 9 bytes of name: one block, said in the singular
        assert "1 block of" in text
        assert view.dir_iv("").hex() in text
        # the long name: two EME blocks and more, its sidecar named
        long_entry = by_cipher_name(screen)[view.encrypt_name("", LONG_NAME)[0]]
        screen.cipher.select(long_entry, notify=True)
        await wait_for(
            pilot, lambda: f"X-ray  {long_entry.cipher_name}" in str(screen.query_one("#info").border_title)
        )
        text = info_text(app)
        assert "EME blocks)" in text and long_entry.cipher_name + ".name" in text
        # the derived diriv
        screen.cipher.select(by_cipher_name(screen)["gocryptfs.diriv"], notify=True)
        await wait_for(pilot, lambda: "X-ray  gocryptfs.diriv" in str(screen.query_one("#info").border_title))
        assert derive("", "DIRIV").hex() in info_text(app)
        # the config as the view shows it
        screen.cipher.select(by_cipher_name(screen)[CONF_NAME], notify=True)
        await wait_for(pilot, lambda: f"X-ray  {CONF_NAME}" in str(screen.query_one("#info").border_title))
        assert "AESSIV" in info_text(app)
        # a symlink: its target on the plain side
        await pilot.press("tab")
        select_plain(screen, "link")
        await wait_for(pilot, lambda: "Preview  link" in str(screen.query_one("#info").border_title))
        assert "notes.txt" in info_text(app)


# -- commands --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_write_commands_are_refused_and_read_commands_work(plain_dir: Path) -> None:
    app = VaultApp(plain_dir, master_key=MASTER_KEY)
    view = open_view(plain_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(pilot, app)
        before = sorted(os.listdir(plain_dir))
        for key in ("M", "i", "r", "d"):
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, MainScreen), key  # refused at once, no dialog
            assert "reverse-mode folder is read-only" in app.log_lines[-1], key
        for line in ("rm notes.txt", "mkdir new", "mv notes.txt other.txt", "import /etc/hostname"):
            await command_line(pilot, app, line)
        assert log_text(app).count("encrypted view of a reverse-mode folder is read-only") == 8
        assert sorted(os.listdir(plain_dir)) == before
        await command_line(pilot, app, "encrypt-path docs/report.txt")
        docs = view.encrypt_name("", "docs")[0]
        cipher_path = docs + "/" + view.encrypt_name(docs, "report.txt")[0]
        assert cipher_path in app.log_lines
        await command_line(pilot, app, f"decrypt-path {cipher_path}")
        assert app.log_lines[-1] == "docs/report.txt"
        await command_line(pilot, app, "cd docs")
        assert screen.cwd == "docs" and [e.plain_name for e in screen.plain.rows] == ["report.txt"]
        await command_line(pilot, app, "cat report.txt")
        assert app.log_lines[-1] == REPORT.decode().strip()


@pytest.mark.asyncio
async def test_footer_and_help_list_only_the_keys_that_apply(plain_dir: Path, tmp_path: Path) -> None:
    forward = tmp_path / "vault"
    make_vault(forward)
    write_actions = {"import", "mkdir", "delete", "rename"}
    write_keys = {"F6 / i", "F7 / M", "F8 / d", "r", "E"}
    for root, reverse in ((plain_dir, True), (forward, False)):
        app = VaultApp(root, master_key=MASTER_KEY)
        async with app.run_test(size=SIZE) as pilot:
            await opened(pilot, app)
            await pilot.pause()
            shown = footer_actions(app)
            assert {"export", "mount", "help", "quit_app", "open"} <= shown
            assert "unmount" not in shown  # not mounted
            assert (write_actions & shown) == (set() if reverse else write_actions)
            await pilot.press("question_mark")
            help_screen = app.screen
            assert isinstance(help_screen, HelpScreen)
            keys = dict(help_screen.keys)
            assert "u" in keys and "m" in keys  # the help lists every key of the mode
            assert (write_keys & set(keys)) == (set() if reverse else write_keys)
            if reverse:
                assert "reverse-mode folder" in help_screen.intro
                assert "encrypted view" in keys["F5 / e"] and "encrypted view" in keys["m"]
            else:
                assert keys["F5 / e"].startswith("export (decrypt)")


@pytest.mark.asyncio
async def test_export_writes_the_encrypted_view_that_opens_as_a_vault(
    plain_dir: Path, tmp_path: Path
) -> None:
    app = VaultApp(plain_dir, master_key=MASTER_KEY)
    view = open_view(plain_dir)
    whole = tmp_path / "backup"
    single = tmp_path / "single"
    single.mkdir()
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(pilot, app)
        await command_line(pilot, app, f"export / {whole}")
        assert "exported" in log_text(app), log_text(app)
        # e on one file: its encrypted bytes under its encrypted name
        notes = select_plain(screen, "notes.txt")
        await pilot.press("e")
        await answer_prompt(pilot, app, str(single))
        await command_done(pilot, app)
    assert sorted(os.listdir(whole)) == sorted(e.cipher_name for e in view.listdir(""))
    # §9.4: the copied view is a forward vault that gives back the plain files.
    vault = Vault.open(whole, password=PASSWORD.encode())
    assert vault.read_file("notes.txt") == NOTES
    assert vault.read_file("docs/report.txt") == REPORT
    assert vault.read_file("binary.bin") == BINARY
    assert vault.read_file(LONG_NAME) == b"long name content\n"
    assert vault.readlink("link") == "notes.txt"
    ve = view.resolve(notes.cipher_name)
    assert (single / notes.cipher_name).read_bytes() == b"".join(view.iter_file(ve))


@pytest.mark.asyncio
async def test_passwd_rewraps_the_reverse_config(plain_dir: Path) -> None:
    app = VaultApp(plain_dir, master_key=MASTER_KEY)
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot, app)
        await pilot.press("p")
        await answer_passwords(pilot, app, PASSWORD, "new secret", "new secret")
        await command_done(pilot, app)
        assert "Password changed" in log_text(app)
    assert (plain_dir / (REVERSE_CONF_NAME + ".bak")).exists()
    assert not (plain_dir / CONF_NAME).exists()
    view = ReverseView.open(plain_dir, password=b"new secret")
    assert view.encrypt_name("", "notes.txt") == open_view(plain_dir).encrypt_name("", "notes.txt")


@pytest.mark.asyncio
async def test_masterkey_command_and_key_show_the_key_only_in_a_dialog(plain_dir: Path) -> None:
    app = VaultApp(plain_dir, master_key=MASTER_KEY)
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot, app)
        assert await masterkey_from_command_line(pilot, app) == format_master_key(MASTER_KEY)
        await pilot.press("escape")
        await command_done(pilot, app)
        assert format_master_key(MASTER_KEY) not in log_text(app)


# -- mounting the view -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_mount_the_encrypted_view_through_a_real_worker(plain_dir: Path, tmp_path: Path) -> None:
    from fuse_harness import force_unmount, require_fuse

    require_fuse()
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    view = open_view(plain_dir)
    app = VaultApp(plain_dir, master_key=MASTER_KEY)
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = await opened(pilot, app)
            await pilot.press("m")
            await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
            assert "encrypted view" in str(app.screen.query_one(".dialog-title").render())
            await answer_prompt(pilot, app, str(mountpoint))
            await command_done(pilot, app)
            assert os.path.ismount(mountpoint), log_text(app)
            shown_names = {e.cipher_name for e in screen.cipher.all_entries}
            assert set(os.listdir(mountpoint)) == shown_names == {e.cipher_name for e in view.listdir("")}
            notes = view.encrypt_name("", "notes.txt")[0]
            assert (mountpoint / notes).read_bytes() == b"".join(view.iter_file(view.resolve(notes)))
            with pytest.raises(OSError):
                (mountpoint / "new-file").write_bytes(b"x")  # the view is read-only
            await wait_for(pilot, lambda: app.main.mount_info is not None, steps=800)
            assert shows_mount(status_text(app), "reverse ro", mountpoint), status_text(app)
            await pilot.press("u")
            await command_done(pilot, app)
            assert not os.path.ismount(mountpoint)
            await wait_for(pilot, lambda: app.main.mount_info is None, steps=800)
            assert "not mounted" in status_text(app)
    finally:
        force_unmount(mountpoint)


@pytest.mark.asyncio
@pytest.mark.parametrize("where", ["", "docs"], ids=["root", "depth1"])
async def test_the_view_follows_new_and_removed_plain_files(plain_dir: Path, where: str) -> None:
    """The plain files are the real ones: a file made or removed by another program shows at once
    on both sides (its encrypted name on the right), the cursor staying on its entry."""
    app = VaultApp(plain_dir, master_key=MASTER_KEY)
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(pilot, app)
        if where:
            screen.plain.select(next(e for e in screen.plain.rows if e.plain_name == where))
            await pilot.press("enter")
            await wait_for(pilot, lambda: screen.cwd == where and not screen.dir_loading)
        before = screen.plain.current
        assert before is not None
        (plain_dir / where / "arrived.txt").write_bytes(b"new\n")

        def names() -> set[str | None]:
            return {e.plain_name for e in screen.plain.rows}

        await wait_for(pilot, lambda: "arrived.txt" in names())
        arrived = next(e for e in screen.plain.rows if e.plain_name == "arrived.txt")
        assert arrived.cipher_name in by_cipher_name(screen)  # its name in the encrypted view
        current = screen.plain.current
        assert current is not None and current.plain_name == before.plain_name
        (plain_dir / where / "arrived.txt").unlink()
        await wait_for(pilot, lambda: "arrived.txt" not in names())


@pytest.mark.asyncio
@pytest.mark.parametrize("where", ["", "docs"], ids=["root", "depth1"])
async def test_o_pages_a_read_only_copy_of_the_plain_file_or_the_encrypted_one(
    plain_dir: Path, where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """o in a reverse-mode folder: the plain pane's file, or the cipher pane's file as a reverse
    mount serves it, copied into a private 0700 directory for $PAGER and removed after; E is
    refused (read-only); a symlink is not followed."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    seen = tmp_path / "seen"
    seen.mkdir()
    pager = tmp_path / "pager"
    pager.write_text(
        '#!/bin/sh\nset -e\nstat -c %a "$(dirname "$1")" >> "$SEEN/modes"\n'
        'basename "$1" > "$SEEN/name"\ncat "$1" > "$SEEN/contents.part"\n'
        'mv "$SEEN/contents.part" "$SEEN/contents"\n'
    )
    pager.chmod(0o755)
    monkeypatch.setenv("PAGER", str(pager))
    monkeypatch.setenv("SEEN", str(seen))
    monkeypatch.setenv("EDITOR", str(pager))
    name, contents = ("report.txt", REPORT) if where else ("notes.txt", NOTES)
    view = open_view(plain_dir)

    def copies_gone() -> bool:
        return not list(runtime.glob("vaultsh-open-*"))

    async def paged(key: str = "o") -> bytes:
        await pilot.press(key)
        await wait_for(pilot, lambda: (seen / "contents").exists() and copies_gone())
        data = (seen / "contents").read_bytes()
        (seen / "contents").unlink()
        return data

    app = VaultApp(plain_dir, master_key=MASTER_KEY)
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(pilot, app)
        if where:
            select_plain(screen, where)
            await pilot.press("enter")
            await wait_for(pilot, lambda: screen.cwd == where and not screen.dir_loading)
        entry = select_plain(screen, name)
        assert await paged() == contents
        assert (seen / "name").read_text().strip() == name
        await pilot.press("tab")  # the cipher pane, its cursor on the same file
        assert screen.cipher.current is entry and screen.dir_node is not None
        encrypted = b"".join(
            view.iter_file(view.resolve(f"{screen.dir_node.cipher_path}/{entry.cipher_name}"))
        )
        assert len(encrypted) > len(contents) and contents not in encrypted
        assert await paged() == encrypted
        assert (seen / "name").read_text().strip() == entry.cipher_name
        assert set((seen / "modes").read_text().split()) == {"700"}
        await pilot.press("E")
        await pilot.pause(0.2)
        assert "read-only" in log_text(app) and not (seen / "contents").exists()
        assert app.screen is app.main and app.is_running
        if not where:
            await pilot.press("tab")
            select_plain(screen, "link")  # a relative link: what it points to, as on a vault
            assert await paged() == NOTES
            assert (seen / "name").read_text().strip() == "notes.txt"
    assert (plain_dir / name if not where else plain_dir / where / name).read_bytes() == contents
