"""Test helper: the TUI test vaults, Pilot and tmux drivers, and the TUI fixtures (a plugin)."""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fuse_harness import cleaned_up, kernel_mounted, require_fuse
from gocryptfs_harness import REPO_ROOT, skip_or_fail
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Input
from vault_factory import new_vault

from vaultsh.tui.app import VaultApp
from vaultsh.tui.entries import Entry
from vaultsh.tui.inspect import InfoPanel
from vaultsh.tui.main_screen import MainScreen
from vaultsh.tui.panes import EntryList
from vaultsh.tui.screens import PasswordScreen, PromptScreen, SecretScreen
from vaultsh.vault.vault import Vault

PASSWORD = "correct horse"
MASTER_KEY = bytes(range(32))
FIXED_MTIME_NS = 1_700_000_000 * 10**9
LONG_NAME = "a-rather-long-report-name-" + "x" * 180 + ".txt"  # > 255 chars encrypted: hashed (§6.7)
SIZE = (140, 40)
DEEP = "a/b/c"
# Each action is tried in the root and three levels down: paths built for the root only
# (relative to the session's directory) go wrong in subdirectories.
DEPTHS = pytest.mark.parametrize("where", ["", DEEP], ids=["root", "depth3"])


# -- test vaults ----------------------------------------------------------------------------


def set_fixed_mtimes(root: Path) -> None:
    """`root` and everything below it (links themselves) to FIXED_MTIME_NS: what the panes and
    snapshots show does not depend on when the test ran."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), ns=(FIXED_MTIME_NS, FIXED_MTIME_NS), follow_symlinks=False)
    os.utime(root, ns=(FIXED_MTIME_NS, FIXED_MTIME_NS))


def make_vault(root: Path, *, deterministic: bool = False) -> Vault:
    """A small vault with a dir, text, binary and long-name files, plus sync debris beside them."""
    vault = new_vault(root, PASSWORD, master_key=MASTER_KEY, deterministic_names=deterministic)
    vault.mkdir("docs")
    vault.write_file("docs/report.txt", b"quarterly numbers\n")
    vault.write_file("notes.txt", b"hello from the vault\nsecond line\n")
    vault.write_file("binary.bin", bytes(range(256)))
    vault.write_file(LONG_NAME, b"long name content\n")
    # A sync tool's conflict copy of notes.txt, and a file dropped in by hand.
    notes_cipher = vault.cipher_path("notes.txt")
    conflict = notes_cipher.with_name(notes_cipher.name + " (conflicted copy 2024-05-01)")
    conflict.write_bytes(notes_cipher.read_bytes())
    (root / "stray file.txt").write_bytes(b"not encrypted")
    set_fixed_mtimes(root)
    return vault


NOTES = b"hello from the plain side\nsecond line\n"
REPORT = b"quarterly numbers\n"
BINARY = bytes(range(256)) * 20  # two blocks of content


def make_reverse_folder(root: Path) -> Path:
    """Plain files (a dir, text, binary, a long name, a symlink) beside a reverse config."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "docs").mkdir()
    (root / "docs" / "report.txt").write_bytes(REPORT)
    (root / "notes.txt").write_bytes(NOTES)
    (root / "binary.bin").write_bytes(BINARY)
    (root / LONG_NAME).write_bytes(b"long name content\n")
    os.symlink("notes.txt", root / "link")
    new_vault.reverse_folder(root, PASSWORD, master_key=MASTER_KEY)
    set_fixed_mtimes(root)
    return root


@pytest.fixture
def vault_dir(tmp_path: Path) -> Path:
    """The small test vault (make_vault) in tmp_path/vault."""
    root = tmp_path / "vault"
    make_vault(root)
    return root


@pytest.fixture
def deep_vault(tmp_path: Path) -> Path:
    """The test vault plus a/b/c holding todo.txt and, like a trap, a/b/c/a/b/c."""
    root = tmp_path / "vault"
    vault = make_vault(root)
    vault.mkdir("a")
    vault.mkdir("a/b")
    vault.mkdir(DEEP)
    vault.write_file(f"{DEEP}/todo.txt", b"buy milk\n")
    vault.write_file("todo.txt", b"root todo\n")
    # Sync debris deep down too: a conflict copy and a file dropped in by hand.
    deep_todo = vault.cipher_path(f"{DEEP}/todo.txt")
    deep_todo.with_name(deep_todo.name + " (conflicted copy)").write_bytes(deep_todo.read_bytes())
    (deep_todo.parent / "stray file.txt").write_bytes(b"not encrypted")
    # The path a child name gets when it is resolved against the current directory twice.
    for part in ("a/b/c/a", "a/b/c/a/b", "a/b/c/a/b/c"):
        vault.mkdir(part)
    return root


# -- driving the app under Pilot --------------------------------------------------------------


async def wait_for(pilot: Pilot[Any], condition: Callable[[], bool], steps: int = 1200) -> None:
    """Let the app run until `condition` holds (workers finish in their own time)."""
    for _ in range(steps):
        if condition():
            return
        await pilot.pause(0.025)
    raise AssertionError("condition not reached")


def loaded(app: VaultApp) -> Callable[[], bool]:
    """Unlocked (a vault or a reverse folder) and its directory listed."""
    return lambda: app.session is not None and not app.main.dir_loading and bool(app.main.cipher.all_entries)


async def type_text(pilot: Pilot[Any], text: str) -> None:
    await pilot.press(*[{" ": "space", "/": "slash", ".": "full_stop"}.get(c, c) for c in text])


def select_plain(screen: MainScreen, name: str) -> Entry:
    for row, e in enumerate(screen.plain.rows):
        if e.plain_name == name:
            screen.plain.move_to(row)
            return e
    raise AssertionError(f"{name} not in the plain pane")


def row_text(lst: EntryList, entry: Entry) -> str:
    row = lst.row_of(entry)
    assert row is not None
    lst.scroll_to(y=row, animate=False, immediate=True)
    return lst.render_line(row - round(lst.scroll_y)).text


def log_text(app: VaultApp) -> str:
    return "\n".join(app.log_lines)


def info_text(app: VaultApp) -> str:
    return app.main.query_one("#info", InfoPanel).plain_text()


async def enter_line(pilot: Pilot[Any], app: VaultApp, line: str) -> None:
    """Open the command line and enter `line` (set at once: each typed key costs a frame)."""
    await pilot.press("colon")
    box = app.main.query_one("#cmdline", Input)
    assert box.has_focus
    box.value = line
    await pilot.press("enter")


async def answer_prompt(pilot: Pilot[Any], app: VaultApp, text: str) -> None:
    await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
    box = app.screen.query_one("#answer", Input)
    box.value = text
    await pilot.press("enter")


async def wrong_password_refused(pilot: Pilot[Any], app: VaultApp) -> PasswordScreen[Any]:
    """Type a wrong password into the unlock dialog; returns the dialog once it says so."""
    await wait_for(pilot, lambda: isinstance(app.screen, PasswordScreen))
    await type_text(pilot, "wrong")
    await pilot.press("enter")
    dialog = app.screen
    assert isinstance(dialog, PasswordScreen)
    await wait_for(pilot, lambda: not dialog.busy)
    assert "Password incorrect" in str(dialog.query_one("#dialog-error").render())
    return dialog


async def answer_passwords(pilot: Pilot[Any], app: VaultApp, *answers: str) -> None:
    """Type each answer into the password dialog that asks for it, one dialog after another."""
    for answer in answers:
        await wait_for(pilot, lambda: isinstance(app.screen, PasswordScreen))
        dialog = app.screen
        await type_text(pilot, answer)
        await pilot.press("enter")
        await wait_for(pilot, lambda d=dialog: app.screen is not d)  # type: ignore[misc]


async def command_done(pilot: Pilot[Any], app: VaultApp) -> None:
    await wait_for(pilot, lambda: not app.main.busy)
    await wait_for(pilot, lambda: not app.main.dir_loading)


async def masterkey_from_command_line(pilot: Pilot[Any], app: VaultApp) -> str:
    """Type `:masterkey` and the password; return what the dialog that opens shows."""
    await pilot.press("colon")
    await type_text(pilot, "masterkey")
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, PasswordScreen))
    await type_text(pilot, PASSWORD)
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, SecretScreen))
    dialog = app.screen
    assert isinstance(dialog, SecretScreen)
    return dialog.secret


def status_text(app: VaultApp) -> str:
    return str(app.main.query_one("#status").render())


def footer_actions(app: VaultApp) -> set[str]:
    """The actions whose keys the footer shows now."""
    return {str(getattr(key, "action", "")) for key in app.main.query("FooterKey")}


def join(where: str, name: str) -> str:
    return f"{where}/{name}" if where else name


async def open_at(pilot: Pilot[Any], app: VaultApp, where: str = "") -> None:
    """Wait until the app is unlocked and lists its directory, then go to `where` the way a
    person does: Enter on each directory in turn."""
    await wait_for(pilot, loaded(app))
    for part in [p for p in where.split("/") if p]:
        select_plain(app.main, part)
        await pilot.press("enter")
        await wait_for(pilot, lambda part=part: app.main.cwd.endswith(part) and not app.main.dir_loading)  # type: ignore[misc]
    assert app.main.cwd == where
    await pilot.pause()  # the pane takes the focus once laid out


@contextlib.asynccontextmanager
async def opened_at(
    cipherdir: Path, where: str = "", size: tuple[int, int] = SIZE, **options: Any
) -> AsyncIterator[tuple[VaultApp, Pilot[Any]]]:
    """The folder in `cipherdir` opened in the TUI (unlocked with the master key; `options` go to
    VaultApp), shown at `where`."""
    app = VaultApp(cipherdir, master_key=MASTER_KEY, **options)
    async with app.run_test(size=size) as pilot:
        await open_at(pilot, app, where)
        yield app, pilot


def screen_text(app: VaultApp) -> str:
    """What the terminal shows, as text: every widget of the screen (and the ones below a dialog)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True, legacy_windows=False)
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    assert update is not None
    console.print(update)
    return console.export_text(styles=False)


# -- mounting ----------------------------------------------------------------------------------


@pytest.fixture
def mountpoint(tmp_path: Path) -> Iterator[Path]:
    """An empty mountpoint for a real worker, cleaned up whatever the test leaves there."""
    require_fuse()
    path = tmp_path / "mnt"
    path.mkdir()
    with cleaned_up(path):
        yield path


async def mount_with_keys(pilot: Pilot[Any], app: VaultApp, mountpoint: Path) -> None:
    await pilot.press("m")
    await answer_prompt(pilot, app, str(mountpoint))
    await command_done(pilot, app)
    assert kernel_mounted(mountpoint), log_text(app)
    await wait_for(pilot, lambda: app.main.mount_info is not None and app.main.mount_info.alive, steps=800)


def shows_mount(status: str, mode: str, mountpoint: Path) -> bool:
    """The status bar names the mount; a long mountpoint is cut in the middle to fit."""
    _, found, where = status.partition(f"mounted {mode} at ")
    where = where.split(" ")[0]
    head, _, tail = where.partition("…")
    return bool(found) and str(mountpoint).startswith(head) and str(mountpoint).endswith(tail)


# -- a real terminal (tmux) --------------------------------------------------------------------


WIDTH, HEIGHT = SIZE  # the terminal of the Pilot tests


def tmux(*args: str) -> str:
    out = subprocess.run(["tmux", *args], capture_output=True, text=True, check=True)
    return out.stdout


@pytest.fixture
def tmux_session() -> Iterator[str]:
    """The name for a tmux session of the test's own, killed when the test ends."""
    if shutil.which("tmux") is None:
        skip_or_fail("tmux is not installed (Debian package tmux)")
    name = f"vaultsh-test-{uuid.uuid4().hex[:8]}"
    yield name
    subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True, check=False)


def capture(session: str) -> str:
    return tmux("capture-pane", "-p", "-t", session)


def wait_screen(session: str, condition: Callable[[str], bool], timeout: float = 30.0) -> str:
    """Poll the terminal until `condition` holds for its text (a bounded wait, not a timing test)."""
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = capture(session)
        if condition(screen):
            return screen
        time.sleep(0.1)
    raise AssertionError(f"terminal never showed what was expected; last screen:\n{screen}")


def vaultsh_command(status: Path, *args: object) -> str:
    """The shell line that runs `vaultsh ARGS...` from the checkout, then writes `exit=CODE` to
    `status`."""
    words = shlex.join([sys.executable, "-m", "vaultsh", *map(str, args)])
    return f"cd {shlex.quote(str(REPO_ROOT))} && {words}; echo exit=$? > {shlex.quote(str(status))}"


def start_in_tmux(session: str, command: str, width: int = WIDTH, height: int = HEIGHT) -> None:
    """Start the tmux session `session` at a fixed size (whatever other clients of the server
    use) and run `command` in its shell."""
    tmux("new-session", "-d", "-s", session, "-x", str(width), "-y", str(height))
    tmux("set-option", "-t", session, "window-size", "manual")
    tmux("resize-window", "-t", session, "-x", str(width), "-y", str(height))
    tmux("send-keys", "-t", session, "-l", command)
    tmux("send-keys", "-t", session, "Enter")


def unlock_in_tmux(session: str) -> None:
    """Answer the unlock dialog with PASSWORD."""
    wait_screen(session, lambda s: "Unlock vault" in s)
    tmux("send-keys", "-t", session, "-l", PASSWORD)
    tmux("send-keys", "-t", session, "Enter")


def exit_status(status: Path, timeout: float = 30.0) -> str:
    """What the line of vaultsh_command wrote to `status` once vaultsh ended (a bounded wait)."""
    deadline = time.monotonic() + timeout
    while not (status.exists() and status.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return status.read_text().strip() if status.exists() else ""
