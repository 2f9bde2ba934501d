"""Names that look like Textual/Rich markup, escapes and bad UTF-8 are shown as names in every part
of the TUI, and a bug never prints local variables."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.segment import Segment
from textual.pilot import Pilot
from textual.widgets import Input
from textual.widgets._toast import Toast
from tui_harness import (
    MASTER_KEY,
    PASSWORD,
    answer_prompt,
    log_text,
    open_at,
    opened_at,
    screen_text,
    select_plain,
    wait_for,
)
from vault_factory import new_vault

from vaultsh.tui.app import VaultApp
from vaultsh.tui.fsck_screen import FsckScreen
from vaultsh.tui.inspect import InfoPanel
from vaultsh.tui.screens import ChoiceScreen, PromptScreen
from vaultsh.tui.viewer import ViewerScreen
from vaultsh.vault.display import quote_name, safe_text
from vaultsh.vault.vault import Vault

ROOT_DIR = Path(__file__).resolve().parents[2]
SIZE = (160, 44)
BAD_UTF8 = os.fsdecode(b"bad\xff\xfe.txt")  # not UTF-8: kept as lone surrogates
NAMES = [
    "x [link=a:b].txt",  # crashed the TUI: a link style needs a value Textual can parse
    "[draft] notes.txt",  # was shown as " notes.txt"
    "[@click=app.quit]x",  # an action on click
    "[bold]b",
    "back\\[x]",  # a backslash before "[" is markup's own escape
    "\x1b[31mred",  # a terminal escape: quoted as ls does
    BAD_UTF8,
]
DIR_NAME = "[b]dir [link=https:x]"
LINK_NAME = "[i]link"
LINK_TARGET = "[link=https:x]target"
STRAY_NAME = "[@click=app.quit]stray"  # dropped into the cipher dir by hand: does not decrypt
SUB = "sub/[x]dir"  # two levels down, itself named like markup
WHERE = pytest.mark.parametrize("where", ["", SUB], ids=["root", "depth2"])


def fill(vault: Vault, where: str) -> None:
    def at(name: str) -> str:
        return f"{where}/{name}" if where else name

    for name in NAMES:
        vault.write_file(at(name), f"contents of {name!r}\n".encode("utf-8", "surrogateescape"))
    vault.mkdir(at(DIR_NAME))
    vault.symlink(LINK_TARGET, at(LINK_NAME))
    (vault.cipher_path(where) / STRAY_NAME).write_bytes(b"not encrypted")


@pytest.fixture
def markup_vault(tmp_path: Path) -> Vault:
    vault = new_vault(tmp_path / "vault", PASSWORD, master_key=MASTER_KEY)
    vault.mkdir("sub")
    vault.mkdir(SUB)
    fill(vault, "")
    fill(vault, SUB)
    return vault


def segments(app: VaultApp) -> list[Segment]:
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    assert update is not None
    console = Console(width=app.size.width, height=app.size.height, file=io.StringIO(), legacy_windows=False)
    return list(console.render(update))


def assert_no_markup_effects(app: VaultApp) -> None:
    """Markup would have left its marks in the drawn styles: a link, or a click action."""
    for seg in segments(app):
        style = seg.style
        if style is None:
            continue
        assert not style.link, f"a link drawn at {seg.text!r}"
        assert not any(key.startswith("@") for key in (style.meta or {})), f"an action at {seg.text!r}"


def assert_running(app: VaultApp) -> None:
    assert app.is_running and app.return_code is None and app._exception is None


def viewer_ready(app: VaultApp) -> bool:
    return isinstance(app.screen, ViewerScreen) and app.screen.kind != "loading"


def join(where: str, name: str) -> str:
    return f"{where}/{name}" if where else name


def info_title(app: VaultApp) -> str:
    title = app.main.query_one("#info", InfoPanel)._border_title
    return title.plain if title is not None else ""


async def show_info(pilot: Pilot[Any], app: VaultApp, name: str) -> None:
    select_plain(app.main, name)
    await wait_for(pilot, lambda: info_title(app) == "Preview  " + safe_text(name))
    await pilot.pause()


@pytest.mark.asyncio
@WHERE
async def test_each_name_is_shown_as_itself_in_the_panes_info_and_titles(
    markup_vault: Vault, where: str
) -> None:
    async with opened_at(markup_vault.cipherdir, where, SIZE) as (app, pilot):
        for name in [*NAMES, DIR_NAME, LINK_NAME]:
            await show_info(pilot, app, name)
            shown = screen_text(app)
            assert quote_name(name) in shown  # the pane's row
            assert "Preview  " + safe_text(name) in shown  # the info panel's title
            info = app.main.query_one("#info", InfoPanel).plain_text(width=200)
            assert f"Path      {quote_name('/' + join(where, name))}" in info
            if name == LINK_NAME:
                assert f"Target    {LINK_TARGET}" in info
            assert_no_markup_effects(app)
            assert_running(app)
        # The pane's title holds the directory, itself named like markup.
        if where:
            assert f"Plain  /{SUB}" in screen_text(app)


@pytest.mark.asyncio
@WHERE
async def test_the_viewer_opens_each_name_and_its_title_is_the_name(markup_vault: Vault, where: str) -> None:
    async with opened_at(markup_vault.cipherdir, where, SIZE) as (app, pilot):
        for name in NAMES:
            select_plain(app.main, name)
            await pilot.press("enter")
            await wait_for(
                pilot, lambda: isinstance(app.screen, ViewerScreen) and app.screen.kind != "loading"
            )
            shown = screen_text(app)
            assert f"{safe_text('/' + join(where, name))}  (text, " in shown
            assert safe_text(f"contents of {name!r}") in shown
            assert_no_markup_effects(app)
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is app.main)
            assert_running(app)


@pytest.mark.asyncio
@WHERE
async def test_the_cipher_pane_xray_and_errors_show_names_as_text(markup_vault: Vault, where: str) -> None:
    async with opened_at(markup_vault.cipherdir, where, SIZE) as (app, pilot):
        await pilot.press("tab")
        stray = next(e for e in app.main.cipher.rows if e.cipher_name == STRAY_NAME)
        app.main.cipher.select(stray, notify=True)
        await wait_for(pilot, lambda: info_title(app) == "X-ray  " + STRAY_NAME)
        await pilot.pause()
        shown = screen_text(app)
        info = app.main.query_one("#info", InfoPanel).plain_text(width=200)
        assert re.search(rf"On disk +{re.escape(STRAY_NAME)}", info)
        assert STRAY_NAME in shown
        assert_no_markup_effects(app)
        # Adopting it as a conflict copy is refused, and the error names it as it is.
        await pilot.press("r")
        await wait_for(
            pilot, lambda: f"{STRAY_NAME}: not a conflict copy" in log_text(app) and not app.main.busy
        )
        assert f"{STRAY_NAME}: not a conflict copy" in screen_text(app)
        assert_no_markup_effects(app)
        assert_running(app)


@pytest.mark.asyncio
@WHERE
async def test_rename_and_mkdir_over_markup_names(markup_vault: Vault, where: str) -> None:
    async with opened_at(markup_vault.cipherdir, where, SIZE) as (app, pilot):
        await show_info(pilot, app, "[draft] notes.txt")
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        assert "New name for [draft] notes.txt:" in screen_text(app)
        box = app.screen.query_one("#answer", Input)
        assert box.value == "[draft] notes.txt"
        box.value = "[final] notes.txt"
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: markup_vault.exists(join(where, "[final] notes.txt")) and not app.main.busy
        )
        await wait_for(pilot, lambda: not app.main.dir_loading)
        current = app.main.plain.current
        assert current is not None and current.plain_name == "[final] notes.txt"
        await wait_for(pilot, lambda: info_title(app) == "Preview  [final] notes.txt")
        assert "[final] notes.txt" in screen_text(app)
        assert not markup_vault.exists(join(where, "[draft] notes.txt"))

        # Onto an existing markup name: the question names both as they are.
        await show_info(pilot, app, "[final] notes.txt")
        await pilot.press("r")
        await answer_prompt(pilot, app, "x [link=a:b].txt")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen))
        shown = screen_text(app)
        assert "x [link=a:b].txt" in shown
        assert_no_markup_effects(app)
        await pilot.press("c")  # cancel: nothing changes
        await wait_for(pilot, lambda: app.screen is app.main and not app.main.busy)
        assert markup_vault.read_file(join(where, "x [link=a:b].txt")) == b"contents of 'x [link=a:b].txt'\n"
        assert markup_vault.exists(join(where, "[final] notes.txt"))

        # A new directory named like markup, made where the cursor is.
        await pilot.press("M")
        await answer_prompt(pilot, app, "[new] [@click=app.quit]d")
        await wait_for(pilot, lambda: markup_vault.exists(join(where, "[new] [@click=app.quit]d")))
        await wait_for(pilot, lambda: not app.main.busy and not app.main.dir_loading)
        await wait_for(pilot, lambda: info_title(app) == "Preview  [new] [@click=app.quit]d")
        assert "[new] [@click=app.quit]d/" in screen_text(app)
        # An existing markup name again: mkdir refuses, the error names it as it is.
        await pilot.press("M")
        await answer_prompt(pilot, app, DIR_NAME)
        await wait_for(pilot, lambda: not app.main.busy and DIR_NAME in log_text(app))
        assert DIR_NAME in screen_text(app)  # the log and its notification
        assert_no_markup_effects(app)
        assert_running(app)


@pytest.mark.asyncio
async def test_filter_fsck_and_notifications_keep_brackets(markup_vault: Vault) -> None:
    app = VaultApp(markup_vault.cipherdir, master_key=MASTER_KEY)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_at(pilot, app, SUB)
        await pilot.press("slash")
        app.main.query_one("#cmdline", Input).value = "[draft]"
        await pilot.pause()
        assert [e.plain_name for e in app.main.plain.rows] == ["[draft] notes.txt"]
        assert "filter: [draft]" in screen_text(app)  # the pane's subtitle
        await pilot.press("escape")
        await pilot.press("F")
        await wait_for(pilot, lambda: isinstance(app.screen, FsckScreen) and app.screen.done)
        await pilot.pause()
        shown = screen_text(app)
        assert f"fsck {quote_name('/' + SUB)}" in shown
        assert STRAY_NAME in shown  # the finding names the stray file as it is
        assert_no_markup_effects(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.main)
        app.log_line("no /[link=a:b]y [@click=app.quit]z", "error")
        await pilot.pause()
        assert "no /[link=a:b]y [@click=app.quit]z" in screen_text(app)  # the log
        await wait_for(pilot, lambda: bool(app.screen.query(Toast)))
        toast = app.screen.query(Toast).last()
        assert str(toast.render()) == "no /[link=a:b]y [@click=app.quit]z"  # its notification
        assert_no_markup_effects(app)
        assert_running(app)


# -- the last-resort handler, in a real run -------------------------------------------------------

SECRET_WORDS = ("hunter2-typed-password", "00112233445566778899aabbccddeeff")

# Runs an app for real (headless) and, once it is up, a handler that fails with secrets in its
# local variables: the vault's main screen (on Tab), or the new-vault wizard.
CRASH_SCRIPT = """
import sys
from pathlib import Path
from textual.app import App
from vaultsh.tui import app as app_module, main_screen, wizard
from vaultsh.service.passwords import SecretSource

def broken(self, *args):
    password = SECRET_WORDS[0]
    master_key = SECRET_WORDS[1]
    raise RuntimeError(f"cannot {len(password) + len(master_key)}")

def headless(cls, first_screen_ready):
    run = App.run
    cls.run = lambda self, **kw: run(self, headless=True, **kw)
    mounted = cls.on_mount
    def on_mount(self):
        mounted(self)
        first_screen_ready(self)
    cls.on_mount = on_mount

if sys.argv[2] == "vault":
    main_screen.MainScreen.action_switch_pane = broken
    opened = app_module.VaultApp.opened_session
    def opened_session(self, session):
        opened(self, session)
        self.set_timer(0.3, self.main.action_switch_pane)  # as if Tab was pressed
    app_module.VaultApp.opened_session = opened_session
    headless(app_module.VaultApp, lambda app: None)

    class MasterKey(SecretSource):
        has_masterkey = True
        def validate(self): pass
        def read_master_key(self): return bytes(range(32))

    sys.exit(app_module.run_tui(Path(sys.argv[1]), MasterKey()))
else:
    wizard.NewVaultScreen._password_create = broken
    headless(wizard.NewVaultApp, lambda app: app.set_timer(0.3, lambda: broken(app)))
    sys.exit(wizard.run_new(Path(sys.argv[1]) / "new", None, logn=10))
"""


def run_crashing(vault: Vault, tmp_path: Path, which: str, debug: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VAULTSH_DEBUG", "TEXTUAL")}
    env["PYTHONPATH"] = str(ROOT_DIR)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    if debug:
        env["VAULTSH_DEBUG"] = "1"
    script = f"SECRET_WORDS = {SECRET_WORDS!r}\n" + textwrap.dedent(CRASH_SCRIPT)
    where = vault.cipherdir if which == "vault" else tmp_path
    return subprocess.run(
        [sys.executable, "-c", script, str(where), which],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


APPS = pytest.mark.parametrize("which", ["vault", "wizard"])


@APPS
def test_a_bug_in_a_handler_prints_one_line_and_no_local_variables(
    markup_vault: Vault, tmp_path: Path, which: str
) -> None:
    done = run_crashing(markup_vault, tmp_path, which, debug=False)
    assert done.returncode == 11
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == ["vaultsh: internal error (RuntimeError: cannot 54); VAULTSH_DEBUG=1 shows details"]
    for secret in SECRET_WORDS:
        assert secret not in done.stdout + done.stderr


@APPS
def test_the_debug_traceback_leaves_out_local_variables(
    markup_vault: Vault, tmp_path: Path, which: str
) -> None:
    done = run_crashing(markup_vault, tmp_path, which, debug=True)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "Traceback" in output and "RuntimeError" in output and "broken" in output
    for secret in SECRET_WORDS:
        assert secret not in output
