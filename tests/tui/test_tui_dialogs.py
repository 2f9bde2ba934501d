"""Local paths in the TUI's dialogs: Tab completion, the directory browser and the default text."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Label, OptionList
from tui_harness import (
    MASTER_KEY,
    command_done,
    log_text,
    make_vault,
    opened_at,
    select_plain,
    wait_for,
)
from user_harness import as_user, nobody

from vaultsh.tui import app as app_module
from vaultsh.tui.pathpick import (
    BROWSER_PATH_CELLS,
    BROWSER_ROWS,
    PathBrowser,
    PathKind,
    ShownPaths,
    complete_local,
)
from vaultsh.tui.safety import SafeApp, cut_middle
from vaultsh.tui.screens import PromptScreen
from vaultsh.tui.themes import theme_variable_defaults
from vaultsh.vault.display import has_unsafe_chars
from vaultsh.vault.vault import Vault

ESC_NAME = "esc\x1b[31mred"  # a terminal escape in a name: shown as $'\033', never raw
BAD_UTF8 = os.fsdecode(b"bad\xff\xfe")  # not UTF-8: kept as lone surrogates
SMALL = (80, 24)
KEY_NAMES = {" ": "space", ".": "full_stop", "/": "slash", "~": "tilde"}


class DialogApp(SafeApp[None]):
    """The TUI's stylesheet and one dialog, whose answers are collected."""

    CSS_PATH = str(Path(app_module.__file__).with_name("app.tcss"))

    def __init__(self, dialog: PromptScreen) -> None:
        super().__init__()
        self.dialog = dialog
        self.answers: list[str | None] = []

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return theme_variable_defaults()

    def on_mount(self) -> None:
        self.push_screen(self.dialog, self.answers.append)


def dialog(value: str, local: PathKind = "dir") -> DialogApp:
    return DialogApp(PromptScreen("Export", "Decrypt to (local path):", value, local=local))


def answer_box(app: DialogApp) -> Input:
    return app.dialog.query_one("#answer", Input)


def candidates_line(app: DialogApp) -> str:
    return str(app.dialog.query_one("#candidates", Label).render())


async def tab_after(pilot: Pilot[Any], app: DialogApp, typed: str) -> str:
    """Type `typed` at the end of the answer (through the keyboard), press Tab, give the value."""
    for ch in typed:
        await pilot.press(ch if ch.isalnum() else KEY_NAMES[ch])
    await pilot.press("tab")
    return answer_box(app).value


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """a1/b2/c3 with a directory and a file both starting with "target", beside decoys."""
    root = tmp_path / "local"
    (root / "a1" / "b2" / "c3" / "targets").mkdir(parents=True)
    (root / "a1" / "b2" / "c3" / "target.txt").write_text("x")
    (root / "a1" / "b2" / "other").mkdir()
    (root / "a1" / "bz.txt").write_text("x")
    (root / "z").mkdir()
    return root


@pytest.mark.asyncio
async def test_tab_completes_a_path_three_levels_down(tree: Path) -> None:
    app = dialog(f"{tree}/")
    async with app.run_test(size=SMALL) as pilot:
        assert await tab_after(pilot, app, "a") == f"{tree}/a1/"
        assert await tab_after(pilot, app, "b") == f"{tree}/a1/b2/"  # bz.txt is a file: not offered
        assert await tab_after(pilot, app, "c") == f"{tree}/a1/b2/c3/"
        assert await tab_after(pilot, app, "t") == f"{tree}/a1/b2/c3/targets/"
        assert app.focused is answer_box(app)  # Tab never leaves the input
        await pilot.press("enter")
    assert app.answers == [f"{tree}/a1/b2/c3/targets/"]


@pytest.mark.asyncio
async def test_import_completion_offers_files_and_lists_several_candidates(tree: Path) -> None:
    app = dialog(f"{tree}/a1/b2/c3/", local="any")
    async with app.run_test(size=SMALL) as pilot:
        assert await tab_after(pilot, app, "t") == f"{tree}/a1/b2/c3/target"  # their common start
        assert candidates_line(app) == "target.txt  targets/"
        assert await tab_after(pilot, app, ".") == f"{tree}/a1/b2/c3/target.txt"
        await pilot.press("enter")
    assert app.answers == [f"{tree}/a1/b2/c3/target.txt"]


@pytest.mark.asyncio
async def test_tab_over_names_with_spaces_escapes_and_invalid_utf8(tmp_path: Path) -> None:
    root = tmp_path / "odd"
    root.mkdir()
    (root / "my dir" / "deeper").mkdir(parents=True)
    (root / ESC_NAME / "inner").mkdir(parents=True)
    os.makedirs(os.fsencode(root) + b"/bad\xff\xfe/inside")
    app = dialog(f"{root}/")
    async with app.run_test(size=SMALL) as pilot:
        box = answer_box(app)
        assert await tab_after(pilot, app, "m") == f"{root}/my dir/"
        assert await tab_after(pilot, app, "d") == f"{root}/my dir/deeper/"
        box.value = f"{root}/"
        assert await tab_after(pilot, app, "e") == f"{root}/esc$'\\033'[31mred/"
        assert await tab_after(pilot, app, "i") == f"{root}/esc$'\\033'[31mred/inner/"
        assert not has_unsafe_chars(box.value)  # the terminal never gets the ESC
        await pilot.press("enter")
        await pilot.pause()
    assert app.answers == [f"{root}/{ESC_NAME}/inner/"]
    assert os.path.isdir(app.answers[0] or "")

    app = dialog(f"{root}/")
    async with app.run_test(size=SMALL) as pilot:
        box = answer_box(app)
        await pilot.press("tab")  # three names: listed escaped, the input unchanged
        assert box.value == f"{root}/"
        assert candidates_line(app) == "bad$'\\377\\376'/  esc$'\\033'[31mred/  my dir/"
        assert await tab_after(pilot, app, "b") == f"{root}/bad$'\\377\\376'/"
        assert await tab_after(pilot, app, "i") == f"{root}/bad$'\\377\\376'/inside/"
        await pilot.press("enter")
        await pilot.pause()
    assert app.answers == [f"{root}/{BAD_UTF8}/inside/"]
    assert os.fsencode(app.answers[0] or "") == os.fsencode(root) + b"/bad\xff\xfe/inside/"


@pytest.mark.asyncio
async def test_a_default_path_with_an_escape_is_shown_escaped_and_answered_real(tmp_path: Path) -> None:
    (tmp_path / ESC_NAME).mkdir()
    app = dialog(f"{tmp_path}/{ESC_NAME}/")  # the working directory has such a name
    async with app.run_test(size=SMALL) as pilot:
        assert answer_box(app).value == f"{tmp_path}/esc$'\\033'[31mred/"
        await pilot.press("o", "u", "t")
        await pilot.press("enter")
    assert app.answers == [f"{tmp_path}/{ESC_NAME}/out"]


@pytest.mark.asyncio
async def test_hidden_entries_only_once_a_dot_is_typed(tmp_path: Path) -> None:
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "visible").mkdir()
    app = dialog(f"{tmp_path}/")
    async with app.run_test(size=SMALL) as pilot:
        assert await tab_after(pilot, app, "") == f"{tmp_path}/visible/"
        answer_box(app).value = f"{tmp_path}/"
        assert await tab_after(pilot, app, ".") == f"{tmp_path}/."  # ../ and .hidden/
        assert candidates_line(app) == "../  .hidden/"
        assert await tab_after(pilot, app, "h") == f"{tmp_path}/.hidden/"
        await pilot.press("ctrl+o")
        browser = await browser_of(pilot, app)
        assert labels(browser)[2:] == []  # in .hidden/ now: empty
        await pilot.press("backspace")
        assert labels(browser)[2:] == ["visible/"]
        where = cut_middle(str(tmp_path), BROWSER_PATH_CELLS)  # a long path keeps its end
        assert str(browser.query_one("#browser-path", Label).render()) == f"{where}   (1 hidden)"
        await pilot.press("full_stop")
        assert labels(browser)[2:] == [".hidden/", "visible/"]


def tilde_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    (home / "Documents").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.mark.asyncio
async def test_tilde_is_expanded_for_listing_and_in_the_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tilde_home(tmp_path, monkeypatch)
    app = dialog("")
    async with app.run_test(size=SMALL) as pilot:
        assert await tab_after(pilot, app, "~") == "~/"
        assert await tab_after(pilot, app, "D") == "~/Documents/"
        await pilot.press("enter")
    assert app.answers == [f"{home}/Documents/"]


@pytest.mark.asyncio
async def test_a_fifo_in_the_listed_directory_is_never_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")  # nobody writes it: opening it for reading would block
    (tmp_path / "pipes.d").mkdir()
    app = dialog(f"{tmp_path}/", local="any")
    async with app.run_test(size=SMALL) as pilot:
        assert await tab_after(pilot, app, "p") == f"{tmp_path}/pipe"
        assert candidates_line(app) == "pipe  pipes.d/"
        await pilot.press("ctrl+o")
        browser = await browser_of(pilot, app)
        assert labels(browser)[2:] == ["pipes.d/", "pipe"]  # listed, not opened
        await pilot.press("escape")
    # A non-blocking open for writing fails with ENXIO exactly when no reader has the FIFO open.
    with pytest.raises(OSError) as no_reader:
        os.open(tmp_path / "pipe", os.O_WRONLY | os.O_NONBLOCK)
    assert no_reader.value.errno == errno.ENXIO


@pytest.mark.asyncio
async def test_default_text_is_not_selected_so_typing_appends(tmp_path: Path) -> None:
    app = dialog(f"{tmp_path}/")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("n", "e", "w")
        assert answer_box(app).value == f"{tmp_path}/new"
        await pilot.press("enter")
    assert app.answers == [f"{tmp_path}/new"]


# -- the directory browser ------------------------------------------------------------------------


async def browser_of(pilot: Pilot[Any], app: Any) -> PathBrowser:
    await wait_for(pilot, lambda: isinstance(app.screen, PathBrowser))
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, PathBrowser)
    return screen


def labels(browser: PathBrowser) -> list[str]:
    return [str(browser._label(row)) for row in browser.rows]


async def open_row(pilot: Pilot[Any], browser: PathBrowser, label: str, key: str = "enter") -> None:
    """Move the browser's cursor to the row shown as `label` with the arrow keys, then `key`."""
    await pilot.press("home", *["down"] * labels(browser).index(label), key)
    await pilot.pause()


@pytest.mark.asyncio
async def test_browser_picks_a_nested_directory(tree: Path) -> None:
    app = dialog(f"{tree}/")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("ctrl+o")
        browser = await browser_of(pilot, app)
        assert browser.current == str(tree)
        assert labels(browser)[2:] == ["a1/", "z/"]  # directories only: bz.txt is a file
        await open_row(pilot, browser, "a1/")
        assert labels(browser)[2:] == ["b2/"]
        await open_row(pilot, browser, "b2/")
        await pilot.press("backspace")  # up again, the cursor on where it came from
        assert browser.current == f"{tree}/a1"
        assert labels(browser)[browser.query_one("#browser-list").highlighted] == "b2/"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await open_row(pilot, browser, "c3/")
        await open_row(pilot, browser, "targets/", key="space")  # picked without going in
        await wait_for(pilot, lambda: app.screen is app.dialog)
        assert answer_box(app).value == f"{tree}/a1/b2/c3/targets/"
        assert app.focused is answer_box(app)
        await pilot.press("enter")
    assert app.answers == [f"{tree}/a1/b2/c3/targets/"]


@pytest.mark.asyncio
async def test_browser_picks_an_escaped_name_and_a_file_for_import(tmp_path: Path) -> None:
    (tmp_path / ESC_NAME).mkdir()
    (tmp_path / ESC_NAME / "notes.txt").write_text("x")
    app = dialog(f"{tmp_path}/", local="any")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("ctrl+o")
        browser = await browser_of(pilot, app)
        await open_row(pilot, browser, "esc$'\\033'[31mred/")
        await open_row(pilot, browser, "notes.txt")  # Enter on a file picks it
        await wait_for(pilot, lambda: app.screen is app.dialog)
        assert answer_box(app).value == f"{tmp_path}/esc$'\\033'[31mred/notes.txt"
        await pilot.press("enter")
    assert app.answers == [f"{tmp_path}/{ESC_NAME}/notes.txt"]


@pytest.mark.asyncio
async def test_escape_leaves_the_browser_and_keeps_the_dialog_as_it_was(tree: Path) -> None:
    app = dialog(f"{tree}/a1/b")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("ctrl+o")
        browser = await browser_of(pilot, app)
        assert browser.current == f"{tree}/a1"  # the nearest existing directory of the text
        await open_row(pilot, browser, "b2/")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.dialog)
        assert answer_box(app).value == f"{tree}/a1/b"
        assert app.focused is answer_box(app)
        await pilot.press("2")  # the dialog goes on where it was
        assert answer_box(app).value == f"{tree}/a1/b2"


@pytest.mark.asyncio
async def test_browser_fits_80x24(tree: Path) -> None:
    for n in range(40):
        (tree / f"dir{n:02}").mkdir()
    app = dialog(f"{tree}/")
    async with app.run_test(size=SMALL) as pilot:
        keys = app.dialog.query(".dialog-hint").last()
        assert str(keys.render()) == "Enter: OK   Tab: complete   Ctrl-O: browse   Esc: cancel"
        assert keys.region.right <= SMALL[0]
        await pilot.press("ctrl+o")
        browser = await browser_of(pilot, app)
        listing = browser.query_one("#browser-list")
        hint = browser.query(".dialog-hint").last()
        assert listing.size.height >= 10  # the list gets most of the dialog
        assert hint.region.bottom <= SMALL[1] and hint.region.right <= SMALL[0]
        assert "Esc back" in str(hint.render())
        await pilot.press("end", "enter")  # scrolls to the last of 44 rows
        assert browser.current == f"{tree}/z"


# -- an unreadable directory ------------------------------------------------------------------------


@pytest.fixture
def locked_tree() -> Iterator[Path]:
    """`locked` (mode 000) holding `inner`, in a directory an ordinary user can reach."""
    root = Path(tempfile.mkdtemp(prefix="vaultsh-dialogs-"))
    root.chmod(0o755)
    (root / "locked" / "inner").mkdir(parents=True)
    (root / "locked").chmod(0)
    yield root
    (root / "locked").chmod(0o755)
    shutil.rmtree(root)


async def check_unreadable(root: Path) -> None:
    """Tab in and a browser opened on an unreadable directory: no candidates, no exception."""
    paths = ShownPaths()
    assert complete_local(f"{root}/locked/", "dir", paths) == (f"{root}/locked/", [])
    assert complete_local(f"{root}/lo", "dir", paths) == (f"{root}/lo", [f"{root}/locked/"])
    app = dialog(f"{root}/locked/")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("tab")
        assert candidates_line(app) == "no match"
        await pilot.press("ctrl+o")
        browser = await browser_of(pilot, app)
        assert browser.current == str(root)  # the nearest directory that can be listed
        error = str(browser.query_one("#browser-error", Label).render())
        assert error == f"cannot open {root}/locked: Permission denied"
        await pilot.press("up")  # back onto "..", then on "locked" again and in
        await open_row(pilot, browser, "locked/")
        assert browser.current == str(root)
        await pilot.press("escape", "enter")
    assert app.answers == [f"{root}/locked/"]


def test_an_unreadable_directory_gives_no_candidates_and_no_error(locked_tree: Path) -> None:
    if os.geteuid() != 0:
        asyncio.run(check_unreadable(locked_tree))
        return
    # Root reads any directory: the check runs in a child that is the user nobody.
    as_user(nobody(), lambda: asyncio.run(check_unreadable(locked_tree)))


@pytest.mark.asyncio
async def test_an_unreadable_directory_as_root_raises_nothing(locked_tree: Path) -> None:
    """Whoever runs it (root lists it anyway), Tab and the browser on a mode-000 directory work."""
    app = dialog(f"{locked_tree}/locked/")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("tab")
        await pilot.press("ctrl+o")
        browser = await browser_of(pilot, app)
        await pilot.press("escape", "enter")
    readable = os.access(locked_tree / "locked", os.R_OK)
    assert app.answers == [f"{locked_tree}/locked/" + ("inner/" if readable else "")]
    assert browser.current == str(locked_tree / "locked" / "inner" if readable else locked_tree)


# -- the real export flow ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_export_to_a_destination_picked_in_the_browser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault_dir = tmp_path / "vault"
    make_vault(vault_dir)
    local = tmp_path / "local"
    (local / "backups" / "2024").mkdir(parents=True)
    (local / "other").mkdir()
    monkeypatch.chdir(local)  # the export dialog starts in the working directory
    async with opened_at(vault_dir, size=SMALL) as (app, pilot):
        select_plain(app.main, "notes.txt")
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        prompt = app.screen
        await pilot.press("ctrl+o")
        browser = await browser_of(pilot, app)
        assert browser.current == str(local)
        await open_row(pilot, browser, "backups/")
        await open_row(pilot, browser, "2024/")
        await open_row(pilot, browser, "./   (choose this directory)")
        await wait_for(pilot, lambda: app.screen is prompt)
        assert prompt.query_one("#answer", Input).value == f"{local}/backups/2024/"
        await pilot.press("enter")
        await command_done(pilot, app)
    assert (local / "backups" / "2024" / "notes.txt").read_bytes() == b"hello from the vault\nsecond line\n"
    assert not any((local / "other").iterdir())
    assert "error" not in log_text(app).lower()


@pytest.mark.asyncio
async def test_a_huge_directory_is_cut_in_the_browser_and_says_how_to_narrow(tmp_path: Path) -> None:
    for n in range(BROWSER_ROWS + 5):
        (tmp_path / f"d{n:05}").mkdir()
    app = dialog(f"{tmp_path}/")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("ctrl+o")
        browser = await browser_of(pilot, app)
        listing = browser.query_one("#browser-list", OptionList)
        assert len(browser.rows) == 2 + BROWSER_ROWS
        assert listing.option_count == 3 + BROWSER_ROWS
        last = listing.get_option_at_index(listing.option_count - 1)
        assert str(last.prompt) == "… 5 more: type a name's start in the dialog, then Tab"
        assert last.disabled


@pytest.mark.asyncio
async def test_import_a_file_picked_in_the_browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vault_dir = tmp_path / "vault"
    make_vault(vault_dir)
    local = tmp_path / "local"
    (local / "photos").mkdir(parents=True)
    (local / "photos" / "cat.jpg").write_bytes(b"\xff\xd8 a cat")
    monkeypatch.chdir(local)
    async with opened_at(vault_dir, size=SMALL) as (app, pilot):
        select_plain(app.main, "docs")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.main.cwd == "docs" and not app.main.dir_loading)
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        await pilot.press("ctrl+o")
        browser = await browser_of(pilot, app)
        assert browser.current == str(local)  # no default text: the working directory
        await open_row(pilot, browser, "photos/")
        await open_row(pilot, browser, "cat.jpg")  # files are offered for import; Enter picks
        await wait_for(pilot, lambda: not isinstance(app.screen, PathBrowser))
        assert app.screen.query_one("#answer", Input).value == f"{local}/photos/cat.jpg"
        await pilot.press("enter")
        await command_done(pilot, app)
    vault = Vault.open(vault_dir, master_key=MASTER_KEY)
    assert vault.read_file("docs/cat.jpg") == b"\xff\xd8 a cat"
