"""The new-vault wizard driven by key presses: options, strength warning, repeat check,
master-key confirmation, cancelling, and vaults that vaultsh and gocryptfs both open."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gocryptfs_harness import REPO_ROOT, gocryptfs_info_fields, gocryptfs_mount, skip_or_fail
from textual.pilot import Pilot
from textual.widgets import Checkbox, RadioButton, Static

from vaultsh.service.vaults import InitOptions, create_vault
from vaultsh.tui.wizard import NewVaultApp, NewVaultScreen
from vaultsh.vault.config import CONF_NAME, REVERSE_CONF_NAME, load_config
from vaultsh.vault.errors import CipherDirError, InitError
from vaultsh.vault.keys import format_master_key
from vaultsh.vault.vault import Vault

TEST_LOGN = 10  # gocryptfs's minimum: the wizard's default (16) is for real vaults
SIZE = (90, 30)
STRONG = "kelp7 Onyx!fjord walnut"  # about 68 bits by zxcvbn: no warning
SHORT = "hunter2"  # weak: warned about, but accepted (and fewer key presses)


def text(screen: NewVaultScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


def focused_id(pilot: Pilot[Path | None]) -> str | None:
    focused = pilot.app.focused
    return focused.id if focused is not None else None


async def settle(pilot: Pilot[Path | None]) -> None:
    """Let thread workers (strength estimate, scrypt) finish and their results arrive."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()


async def type_text(pilot: Pilot[Path | None], value: str) -> None:
    await pilot.press(*("space" if c == " " else c for c in value))


async def clear_input(pilot: Pilot[Path | None]) -> None:
    await pilot.press("home", "ctrl+k")


def wizard(pilot: Pilot[Path | None]) -> NewVaultScreen:
    screen = pilot.app.screen
    assert isinstance(screen, NewVaultScreen)
    return screen


async def enter_password_and_confirm_key(pilot: Pilot[Path | None], password: str) -> None:
    """From the password step: type it twice, create, type the first key group back."""
    screen = wizard(pilot)
    assert screen.step == "step-password"
    await type_text(pilot, password)
    await pilot.press("enter")
    await type_text(pilot, password)
    await pilot.press("enter")
    await settle(pilot)
    assert screen.step == "step-key"
    first_group = text(screen, "#master-key").split("-")[0]
    await type_text(pilot, first_group)
    await pilot.press("enter")
    await pilot.pause()


@pytest.mark.asyncio
async def test_default_options_full_walk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    target = tmp_path / "new [b]vault"  # shown as typed: no markup in paths
    app = NewVaultApp(None, None, logn=TEST_LOGN)
    async with app.run_test(size=SIZE) as pilot:
        screen = wizard(pilot)
        assert screen.step == "step-options" and focused_id(pilot) == "directory"
        await type_text(pilot, "~/new [b]vault")  # the home directory is expanded
        await pilot.press("enter")
        assert screen.step == "step-password" and focused_id(pilot) == "password"

        # A weak password gets the warning, but is not refused.
        await type_text(pilot, "password1")
        await settle(pilot)
        warning = text(screen, "#strength-warning")
        assert warning.startswith("Weak: about ")
        assert "common password" in warning
        assert screen.query_one("#strength-meter").has_class("-weak")
        assert "bits" in text(screen, "#strength-meter")

        # ... and a strong one clears it.
        await clear_input(pilot)
        await type_text(pilot, STRONG)
        await settle(pilot)
        assert text(screen, "#strength-warning") == ""
        assert screen.query_one("#strength-meter").has_class("-good")

        # A repeat that differs is refused: nothing is created.
        await pilot.press("enter")
        assert focused_id(pilot) == "password-repeat"
        await type_text(pilot, STRONG[:5])
        await pilot.press("enter")
        await settle(pilot)
        assert screen.step == "step-password"
        assert "do not match" in text(screen, "#password-error")
        assert not target.exists()

        await type_text(pilot, STRONG)
        await pilot.press("enter")
        await settle(pilot)
        assert screen.step == "step-key" and focused_id(pilot) == "key-confirm"

        # The key on screen is the vault's real master key.
        conf = load_config(target / CONF_NAME)
        key = conf.decrypt_master_key(STRONG.encode())
        shown = text(screen, "#master-key").replace("\n", "")
        assert shown == format_master_key(key)
        assert str(target) in text(screen, "#created-label")

        # Escape does not skip the confirmation once the vault exists.
        await pilot.press("escape")
        assert screen.step == "step-key" and app.screen is screen
        assert "confirm" in text(screen, "#key-error")

        # A wrong first group is refused, the right one accepted.
        first = shown.split("-")[0]
        wrong = "0" * 8 if first != "0" * 8 else "1" * 8
        await type_text(pilot, wrong)
        await pilot.press("enter")
        await pilot.pause()
        assert screen.step == "step-key" and app.screen is screen
        assert "not the first group" in text(screen, "#key-error")
        await type_text(pilot, first.upper())  # hex case does not matter
        await pilot.press("enter")
        await pilot.pause()
    assert app.return_value == target
    assert app.created_path == target
    vault = Vault.open(target, password=STRONG.encode())
    assert vault.options.diriv and not vault.options.xchacha and not vault.options.plaintext_names
    assert vault.keys.master_key == key
    assert conf.scrypt.logn == TEST_LOGN
    assert sorted(os.listdir(target)) == ["gocryptfs.conf", "gocryptfs.diriv"]


@pytest.mark.asyncio
async def test_default_vault_mounts_in_gocryptfs(tmp_path: Path, need_gocryptfs: None) -> None:
    target = tmp_path / "vault"
    app = NewVaultApp(target, None, logn=TEST_LOGN)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")  # the directory was given: accept the defaults
        await enter_password_and_confirm_key(pilot, SHORT)
    assert app.return_value == target
    fields = gocryptfs_info_fields(target)
    assert "DirIV" in fields["FeatureFlags"] and "HKDF" in fields["FeatureFlags"]
    with gocryptfs_mount(target, tmp_path / "mnt", SHORT) as mnt:
        assert os.listdir(mnt) == []
        (mnt / "hello.txt").write_bytes(b"written by gocryptfs\n")
        os.mkdir(mnt / "sub")
    vault = Vault.open(target, password=SHORT.encode())
    assert vault.read_file("hello.txt") == b"written by gocryptfs\n"
    assert {e.name for e in vault.listdir("")} == {"hello.txt", "sub"}


@pytest.mark.asyncio
async def test_plaintext_names_and_xchacha_by_keyboard(tmp_path: Path, need_gocryptfs: None) -> None:
    target = tmp_path / "vault"
    app = NewVaultApp(target, None, logn=TEST_LOGN)
    async with app.run_test(size=SIZE) as pilot:
        screen = wizard(pilot)
        await pilot.press("tab")
        assert focused_id(pilot) == "reverse"
        await pilot.press("tab")
        assert focused_id(pilot) == "plaintext-names"
        await pilot.press("space")
        await pilot.press("tab", "tab", "tab")
        assert focused_id(pilot) == "cipher"
        await pilot.press("down", "enter")  # AES-GCM -> XChaCha20-Poly1305
        await pilot.press("tab", "tab")
        assert focused_id(pilot) == "options-next"
        await pilot.press("enter")
        assert screen.step == "step-password"
        await enter_password_and_confirm_key(pilot, SHORT)
    assert app.return_value == target
    vault = Vault.open(target, password=SHORT.encode())
    assert vault.options.plaintext_names and vault.options.xchacha
    assert os.listdir(target) == ["gocryptfs.conf"]  # no diriv with plaintext names
    flags = gocryptfs_info_fields(target)["FeatureFlags"]
    assert "PlaintextNames" in flags and "XChaCha20Poly1305" in flags
    with gocryptfs_mount(target, tmp_path / "mnt", SHORT) as mnt:
        (mnt / "visible-name.txt").write_bytes(b"x" * 5000)
    assert (target / "visible-name.txt").exists()
    assert vault.read_file("visible-name.txt") == b"x" * 5000


@pytest.mark.asyncio
async def test_deterministic_names_and_long_name_limit(tmp_path: Path) -> None:
    target = tmp_path / "vault"
    app = NewVaultApp(target, None, logn=TEST_LOGN)
    async with app.run_test(size=SIZE) as pilot:
        screen = wizard(pilot)
        await pilot.press("tab", "tab", "tab")
        assert focused_id(pilot) == "deterministic-names"
        await pilot.press("space", "tab")
        assert focused_id(pilot) == "longname-max"
        await clear_input(pilot)
        await type_text(pilot, "30")
        await pilot.press("enter")
        assert screen.step == "step-options"  # refused: outside 62..255
        assert "outside 62..255" in text(screen, "#options-error")
        await clear_input(pilot)
        await type_text(pilot, "100")
        await pilot.press("enter")
        assert text(screen, "#options-error") == ""
        await enter_password_and_confirm_key(pilot, SHORT)
    vault = Vault.open(target, password=SHORT.encode())
    assert vault.options.deterministic_names and not vault.options.diriv
    assert vault.options.longname_max == 100
    vault.write_file("n" * 90, b"long")
    assert any(name.startswith("gocryptfs.longname.") for name in os.listdir(target))


@pytest.mark.asyncio
async def test_invalid_choices_are_refused_before_the_password(tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "something").write_text("x")
    app = NewVaultApp(full, None, logn=TEST_LOGN)
    async with app.run_test(size=SIZE) as pilot:
        screen = wizard(pilot)
        await pilot.press("enter")
        assert screen.step == "step-options"
        assert "not empty" in text(screen, "#options-error")
        # Reverse mode with XChaCha20 is impossible (reverse is always AES-SIV).
        await pilot.press("tab", "space")
        screen.query_one("#cipher").focus()
        await pilot.press("down", "enter")
        screen.query_one("#directory").focus()
        await pilot.press("enter")
        assert screen.step == "step-options"
        assert "AES-SIV" in text(screen, "#options-error")
        # An empty directory field.
        await clear_input(pilot)
        await pilot.press("enter")
        assert "Enter the directory" in text(screen, "#options-error")
    assert os.listdir(full) == ["something"]


@pytest.mark.asyncio
async def test_reverse_mode_writes_only_the_reverse_config(tmp_path: Path, need_gocryptfs: None) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "doc.txt").write_bytes(b"plain text, encrypted on the fly\n")
    app = NewVaultApp(plain, None, logn=TEST_LOGN)
    async with app.run_test(size=SIZE) as pilot:
        screen = wizard(pilot)
        await pilot.press("tab", "space", "shift+tab", "enter")
        assert screen.step == "step-password"
        await enter_password_and_confirm_key(pilot, SHORT)
    assert app.return_value == plain
    assert sorted(os.listdir(plain)) == [REVERSE_CONF_NAME, "doc.txt"]
    conf = load_config(plain / REVERSE_CONF_NAME)
    assert conf.options.aessiv
    with gocryptfs_mount(plain, tmp_path / "cipher", SHORT, "-reverse") as cipher:
        names = os.listdir(cipher)
        assert "gocryptfs.conf" in names and "gocryptfs.diriv" in names
        assert len(names) == 3  # plus doc.txt under its encrypted name


@pytest.mark.asyncio
async def test_cancel_leaves_the_directory_empty(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    app = NewVaultApp(empty, None, logn=TEST_LOGN)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await type_text(pilot, SHORT)
        await pilot.press("enter")
        await type_text(pilot, SHORT)  # typed twice, but never submitted
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_value is None and app.created_path is None
    assert os.listdir(empty) == []


@pytest.mark.asyncio
async def test_checkboxes_and_radio_buttons_show_their_state_without_colour(tmp_path: Path) -> None:
    app = NewVaultApp(tmp_path / "new", None, logn=TEST_LOGN)
    async with app.run_test(size=SIZE) as pilot:
        screen = wizard(pilot)
        box = screen.query_one("#plaintext-names", Checkbox)
        gcm = screen.query_one("#cipher-gcm", RadioButton)
        xchacha = screen.query_one("#cipher-xchacha", RadioButton)

        def mark(widget: Checkbox | RadioButton) -> str:
            return widget.render_line(0).text.strip()[1]  # inside the button's two edges

        assert mark(box) == " " and mark(gcm) == "●" and mark(xchacha) == " "
        box.value = True
        xchacha.value = True
        await pilot.pause()
        assert mark(box) == "X" and mark(xchacha) == "●" and mark(gcm) == " "


@pytest.mark.asyncio
async def test_cancel_button_creates_no_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "not-yet"
    app = NewVaultApp(missing, None, logn=TEST_LOGN)
    async with app.run_test(size=SIZE) as pilot:
        screen = wizard(pilot)
        screen.query_one("#options-cancel").focus()
        await pilot.press("enter")
        await pilot.pause()
    assert app.return_value is None
    assert not missing.exists()


@pytest.mark.asyncio
async def test_back_keeps_options_and_theme_is_applied(tmp_path: Path) -> None:
    target = tmp_path / "v"
    app = NewVaultApp(target, "vaultsh-high-contrast", logn=TEST_LOGN)
    async with app.run_test(size=SIZE) as pilot:
        assert app.theme == "vaultsh-high-contrast"
        screen = wizard(pilot)
        await pilot.press("enter")
        screen.query_one("#password-back").focus()
        await pilot.press("enter")
        assert screen.step == "step-options" and focused_id(pilot) == "directory"
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_value is None
    unknown = NewVaultApp(target, "[no-such-theme", logn=TEST_LOGN)
    async with unknown.run_test(size=SIZE) as pilot:
        assert unknown.theme == "vaultsh-dark"
        await pilot.press("escape")


# -- run_new in a real terminal (tmux) ------------------------------------------------------


class Tmux:
    """A private tmux server (its own socket file) running one command in an 80x24 pane."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def run(self, *args: str) -> str:
        out = subprocess.run(
            ["tmux", "-S", str(self.socket), *args], capture_output=True, text=True, timeout=30, check=True
        )
        return out.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "wizard")

    def styled(self) -> str:
        """The pane with its colours and attributes (focus shows only in those)."""
        return self.run("capture-pane", "-p", "-e", "-t", "wizard")

    def press_and_wait_for_change(self, key: str) -> None:
        """Press `key` and wait until the pane redraws, e.g. once the focus has moved, so that
        what is typed next reaches the newly focused field even on a loaded machine."""
        before = self.styled()
        self.keys(key)
        deadline = time.monotonic() + 60
        while self.styled() == before:
            if time.monotonic() > deadline:
                raise AssertionError(f"{key} changed nothing; the pane shows:\n{self.screen()}")
            time.sleep(0.05)

    def wait_for(self, needle: str) -> str:
        """Poll the pane until it shows `needle`; fail with what it shows if it never does."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            shown = self.screen()
            if needle in shown:
                return shown
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} never appeared; the pane shows:\n{self.screen()}")

    def exit_code(self, rc_file: Path) -> int:
        """Wait for the command to finish and write its exit code to `rc_file`."""
        deadline = time.monotonic() + 60
        while not rc_file.exists():
            if time.monotonic() > deadline:
                raise AssertionError(f"the wizard did not exit; the pane shows:\n{self.screen()}")
            time.sleep(0.05)
        return int(rc_file.read_text())

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.run("send-keys", "-t", "wizard", *(["-l"] if literal else []), *keys)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        skip_or_fail("needs tmux to run the wizard in a real terminal (scripts/setup.sh installs it)")
    server = Tmux(tmp_path / "tmux.sock")  # gone with tmp_path; no other tmux server is touched
    try:
        yield server
    finally:
        subprocess.run(["tmux", "-S", str(server.socket), "kill-server"], capture_output=True, timeout=30)


def start_run_new(tmux: Tmux, tmp_path: Path, directory: Path) -> Path:
    """Start `run_new(directory)` in the pane; returns the file its exit code is written to."""
    rc_file = tmp_path / "rc"
    script = tmp_path / "run.sh"
    code = (
        "import sys; from pathlib import Path; from vaultsh.tui.wizard import run_new; "
        f"sys.exit(run_new(Path(sys.argv[1]), None, logn={TEST_LOGN}))"
    )
    script.write_text(
        f"cd {shlex.quote(str(REPO_ROOT))}\n"
        f"{shlex.quote(sys.executable)} -c {shlex.quote(code)} {shlex.quote(str(directory))}\n"
        f"echo $? > {shlex.quote(str(rc_file))}.tmp && mv {shlex.quote(str(rc_file))}.tmp "
        f"{shlex.quote(str(rc_file))}\n"
        "sleep 60\n"  # the pane stays, with what was printed after the screen closed
    )
    tmux.run("new-session", "-d", "-s", "wizard", "-x", "80", "-y", "24", f"sh {shlex.quote(str(script))}")
    return rc_file


def test_run_new_in_a_terminal_creates_the_vault(tmp_path: Path, tmux: Tmux) -> None:
    # A short path, so that all of it fits in the 80-column directory field (pytest's own
    # temp paths under xdist are longer than that).
    short = Path(tempfile.mkdtemp(prefix="vw-", dir="/tmp"))
    try:
        _run_new_in_a_terminal(tmp_path, tmux, short / "vault")
    finally:
        shutil.rmtree(short, ignore_errors=True)


def _run_new_in_a_terminal(tmp_path: Path, tmux: Tmux, target: Path) -> None:
    rc_file = start_run_new(tmux, tmp_path, target)
    shown = tmux.wait_for("Content encryption")
    assert "New vault" in shown and str(target) in shown  # the whole form fits in 80x24
    tmux.keys("Enter")
    tmux.wait_for("Repeat the password")
    tmux.keys(SHORT, literal=True)
    tmux.wait_for("Weak: about")
    tmux.press_and_wait_for_change("Enter")  # to the repeat field
    tmux.keys(SHORT, literal=True)
    dots = "•" * len(SHORT)
    deadline = time.monotonic() + 60
    while sum(line.strip(" █▌▐") == dots for line in tmux.screen().splitlines()) < 2:
        assert time.monotonic() < deadline, f"the repeat field never filled:\n{tmux.screen()}"
        time.sleep(0.05)
    tmux.keys("Enter")
    shown = tmux.wait_for("type its first group")
    match = re.search(r"\b([0-9a-f]{8})-[0-9a-f]{8}-", shown)
    assert match, shown
    tmux.keys(match.group(1), literal=True)
    tmux.keys("Enter")
    assert tmux.exit_code(rc_file) == 0
    vault = Vault.open(target, password=SHORT.encode())
    assert format_master_key(vault.keys.master_key).startswith(match.group(1) + "-")


def test_run_new_cancelled_by_escape_exits_1_and_says_so(tmp_path: Path, tmux: Tmux) -> None:
    target = tmp_path / "vault"
    rc_file = start_run_new(tmux, tmp_path, target)
    tmux.wait_for("Content encryption")
    tmux.keys("Escape")
    assert tmux.exit_code(rc_file) == 1  # a choice, not gocryptfs's 15 for a signal
    assert f"vaultsh: cancelled; no vault created in {target}" in tmux.wait_for("no vault created").replace(
        "\n", ""
    )
    assert not target.exists()


# -- the service function behind the wizard -------------------------------------------------


def test_create_vault_makes_and_cleans_up_a_missing_directory(tmp_path: Path) -> None:
    fresh = tmp_path / "a" / "b"
    created = create_vault(fresh, b"pw", InitOptions(logn=TEST_LOGN), create_dir=True)
    assert created.path == fresh and created.config_path == fresh / CONF_NAME
    assert Vault.open(fresh, password=b"pw").keys.master_key == created.master_key
    assert created.master_key.hex() not in repr(created)  # messages and logs show reprs

    doomed = tmp_path / "doomed"
    with pytest.raises(InitError, match=re.escape("outside 62..255")):
        create_vault(doomed, b"pw", InitOptions(logn=TEST_LOGN, longname_max=30), create_dir=True)
    assert not doomed.exists()  # made for the init, removed when it failed

    with pytest.raises(CipherDirError):
        create_vault(tmp_path / "missing", b"pw", InitOptions(logn=TEST_LOGN))
    assert not (tmp_path / "missing").exists()


def test_create_vault_refuses_a_non_empty_directory_and_keeps_it(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep")
    with pytest.raises(CipherDirError, match="not empty"):
        create_vault(tmp_path, b"pw", InitOptions(logn=TEST_LOGN), create_dir=True)
    assert os.listdir(tmp_path) == ["mine.txt"]
    reverse = create_vault(tmp_path, b"pw", InitOptions(logn=TEST_LOGN, reverse=True))
    assert reverse.config_path == tmp_path / REVERSE_CONF_NAME and reverse.config_path.is_file()
    assert reverse.conf.options.aessiv


@pytest.mark.asyncio
async def test_empty_password_is_refused(tmp_path: Path) -> None:
    app = NewVaultApp(tmp_path / "v", None, logn=TEST_LOGN)
    async with app.run_test(size=SIZE) as pilot:
        screen = wizard(pilot)
        await pilot.press("enter", "enter", "enter")  # options, empty password, empty repeat
        assert screen.step == "step-password"
        assert text(screen, "#password-error") == "The password is empty."
        await pilot.press("escape")
        await pilot.pause()
    assert not (tmp_path / "v").exists()


@pytest.mark.asyncio
async def test_escape_in_the_wizard_of_the_main_app_exits_1_not_the_signal_code(tmp_path: Path) -> None:
    from vaultsh.tui.app import VaultApp

    empty = tmp_path / "empty"
    empty.mkdir()
    app = VaultApp(empty)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, NewVaultScreen)
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_code == 1 and os.listdir(empty) == []
