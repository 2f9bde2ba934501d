"""The new-vault wizard: init options, a password with a strength meter, master-key confirmation."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TypeVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import (
    Button,
    Checkbox,
    ContentSwitcher,
    Input,
    Label,
    LoadingIndicator,
    RadioButton,
    RadioSet,
    Static,
)

from vaultsh.service.strength import WEAK_BITS, Strength, estimate
from vaultsh.service.vaults import CreatedVault, InitOptions, create_vault
from vaultsh.tui.safety import SafeApp, as_text
from vaultsh.tui.themes import DEFAULT_THEME, load_themes, theme_variable_defaults
from vaultsh.vault.config import CONF_NAME, DEFAULT_SCRYPT_LOGN, REVERSE_CONF_NAME
from vaultsh.vault.display import safe_text
from vaultsh.vault.errors import ExitCode, VaultError
from vaultsh.vault.keys import LONGNAME_MAX_DEFAULT, format_master_key

METER_CELLS = 24
METER_FULL_BITS = 128.0  # where the meter is full; beyond this nothing changes in practice


_ResultT = TypeVar("_ResultT")


@dataclass(frozen=True)
class WizardChoices:
    """What the options step collected."""

    directory: Path
    options: InitOptions


def strength_bar(strength: Strength) -> str:
    """A text meter like '██████░░░░ 52 bits', proportional up to METER_FULL_BITS."""
    filled = min(METER_CELLS, round(strength.bits / METER_FULL_BITS * METER_CELLS))
    return "█" * filled + "░" * (METER_CELLS - filled) + f" {strength.bits:.0f} bits"


def password_fields() -> Iterator[Widget]:
    """A new password, its strength meter and warning, the repeat box and the error line."""
    yield Label("Password", classes="field-label")
    yield Input(password=True, id="password", compact=True)
    yield Static(strength_bar(Strength(0.0)), id="strength-meter", classes="-weak", markup=False)
    yield Static("", id="strength-warning", markup=False)
    yield Label("Repeat the password", classes="field-label")
    yield Input(password=True, id="password-repeat", compact=True)
    yield Static("", id="password-error", classes="error", markup=False)


def show_strength(screen: Widget, strength: Strength) -> None:
    """Update the meter and warning that `password_fields` put on `screen`."""
    meter = screen.query_one("#strength-meter", Static)
    meter.update(strength_bar(strength))
    meter.set_class(strength.weak, "-weak")
    meter.set_class(not strength.weak, "-good")
    lines: list[str] = []
    if strength.weak:
        lines.append(
            f"Weak: about {strength.bits:.0f} bits of estimated entropy; "
            f"{WEAK_BITS:.0f} or more is recommended. You can still use it."
        )
        if strength.warning and "bits of estimated entropy" not in strength.warning:
            lines.append(strength.warning)
        lines.extend(strength.suggestions[:2])
    screen.query_one("#strength-warning", Static).update("\n".join(lines))


def check_directory(directory: Path, reverse: bool) -> str | None:
    """Why `directory` cannot take a new vault (one line), or None when it can.

    Checked before asking for a password, so nobody types one twice for a doomed init;
    create_vault checks again when it runs.
    """
    if reverse:
        if not directory.is_dir():
            return f"{directory}: reverse mode needs an existing directory of plain files"
        if (directory / REVERSE_CONF_NAME).exists():
            return f"{directory}: already has a reverse config ({REVERSE_CONF_NAME})"
        return None
    if not os.path.lexists(directory):
        return None  # created on init
    if not directory.is_dir():
        return f"{directory}: exists and is not a directory"
    try:
        with os.scandir(directory) as it:
            if any(it):
                hint = " (it already holds a vault)" if (directory / CONF_NAME).exists() else ""
                return f"{directory}: not empty{hint}; a new vault needs an empty directory"
    except OSError as e:
        return f"{directory}: cannot read: {e.strerror or e}"
    return None


class MarkedCheckbox(Checkbox):
    """A checkbox whose state is a mark ("X" or blank), readable without colour (NO_COLOR)."""

    @property
    def BUTTON_INNER(self) -> str:  # type: ignore[override]  # Textual reads the mark from here
        return "X" if self.value else " "


class MarkedRadioButton(RadioButton):
    """A radio button whose choice is a mark ("●" or blank), readable without colour."""

    @property
    def BUTTON_INNER(self) -> str:  # type: ignore[override]  # Textual reads the mark from here
        return "●" if self.value else " "


_WIZARD_CSS = """
SCREEN {
    align: center middle;
}
SCREEN > #wizard {
    width: 84;
    max-width: 100%;
    height: auto;
    max-height: 100%;
    border: thick $primary;
    background: $surface;
    padding: 0 1;
}
SCREEN #wizard-title {
    text-style: bold;
    color: $primary;
    width: 100%;
}
SCREEN ContentSwitcher {
    height: auto;
}
SCREEN ContentSwitcher > * {
    height: auto;
}
SCREEN .field-label {
    margin-top: 1;
    color: $text-muted;
}
SCREEN Input {
    background: $panel;
}
SCREEN Input:focus {
    background: $panel-lighten-1;
}
SCREEN #reverse {
    margin-top: 1;
}
SCREEN .error {
    color: $error;
    height: auto;
}
SCREEN .hint {
    color: $text-muted;
    height: auto;
}
SCREEN #strength-meter.-weak {
    color: $error;
}
SCREEN #strength-meter.-good {
    color: $success;
}
SCREEN #strength-warning {
    color: $warning;
    height: auto;
}
SCREEN #master-key {
    text-style: bold;
    color: $accent;
    border: round $accent;
    padding: 0 2;
    width: auto;
    margin: 1 0;
}
SCREEN .buttons {
    height: auto;
    margin-top: 1;
    align-horizontal: right;
}
SCREEN .buttons Button {
    margin-left: 2;
    min-width: 10;
}
SCREEN LoadingIndicator {
    height: 3;
}
"""


def wizard_css(screen_class: str) -> str:
    """The wizards' look (a framed column of steps, the strength meter), for `screen_class`."""
    return _WIZARD_CSS.replace("SCREEN", screen_class)


class StepScreen(ModalScreen[_ResultT]):
    """A dialog made of steps in a ContentSwitcher, one shown at a time (the wizards)."""

    @property
    def step(self) -> str | None:
        return self.query_one(ContentSwitcher).current

    def _show(self, step: str, focus: str | None = None) -> None:
        self.query_one(ContentSwitcher).current = step
        if focus:
            self.query_one(focus).focus()


class NewVaultScreen(StepScreen[Path | None]):
    """Create a vault step by step; dismisses with its directory, or None if cancelled."""

    DEFAULT_CSS = wizard_css("NewVaultScreen")

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
    ]

    class Created(Message):
        """The init worker finished: the vault exists."""

        def __init__(self, created: CreatedVault) -> None:
            super().__init__()
            self.created = created

    class Failed(Message):
        """The init worker failed with a one-line reason."""

        def __init__(self, reason: str) -> None:
            super().__init__()
            self.reason = reason

    def __init__(
        self,
        directory: Path | None = None,
        *,
        logn: int = DEFAULT_SCRYPT_LOGN,
        name: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id)
        self.initial_directory = directory
        self.logn = logn
        self.choices: WizardChoices | None = None
        self.created_path: Path | None = None
        self._master_key_group: str | None = None

    # -- layout -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Vertical(id="wizard"):
            yield Label("New vault", id="wizard-title")
            with ContentSwitcher(initial="step-options"):
                with VerticalScroll(id="step-options"):
                    yield Label("Directory (created if missing; must be empty)", classes="field-label")
                    yield Input(
                        str(self.initial_directory or ""),
                        placeholder="path of the new cipher directory",
                        id="directory",
                        compact=True,
                    )
                    yield MarkedCheckbox(
                        "Reverse mode: encrypted view of an existing plain directory",
                        id="reverse",
                        compact=True,
                    )
                    yield MarkedCheckbox(
                        "Plaintext names (file names stay readable)", id="plaintext-names", compact=True
                    )
                    yield MarkedCheckbox(
                        "Deterministic names (no gocryptfs.diriv; same name, same cipher name)",
                        id="deterministic-names",
                        compact=True,
                    )
                    yield Label("Hash names longer than (62-255 bytes)", classes="field-label")
                    yield Input(str(LONGNAME_MAX_DEFAULT), id="longname-max", type="integer", compact=True)
                    yield Label("Content encryption", classes="field-label")
                    with RadioSet(id="cipher", compact=True):
                        yield MarkedRadioButton(
                            "AES-256-GCM (gocryptfs default)", value=True, id="cipher-gcm"
                        )
                        yield MarkedRadioButton(
                            "XChaCha20-Poly1305 (fast without AES hardware)", id="cipher-xchacha"
                        )
                    yield Static("", id="options-error", classes="error", markup=False)
                    with Horizontal(classes="buttons"):
                        yield Button("Cancel", id="options-cancel", compact=True)
                        yield Button("Next", id="options-next", variant="primary", compact=True)
                with VerticalScroll(id="step-password"):
                    yield from password_fields()
                    with Horizontal(classes="buttons"):
                        yield Button("Back", id="password-back", compact=True)
                        yield Button("Create vault", id="password-create", variant="primary", compact=True)
                with Vertical(id="step-working"):
                    yield Static("", id="working-label", markup=False)
                    yield LoadingIndicator()
                with VerticalScroll(id="step-key"):
                    yield Static("", id="created-label", markup=False)
                    yield Static(
                        "This is the master key. If the password is forgotten or the config file is "
                        "damaged, it is the only way to your files. Write it on paper and keep it "
                        "somewhere safe, away from the vault.",
                        classes="hint",
                        markup=False,
                    )
                    yield Static("", id="master-key", markup=False)
                    yield Label(
                        "To confirm you have it, type its first group (8 characters):", classes="field-label"
                    )
                    yield Input(id="key-confirm", max_length=8, compact=True)
                    yield Static("", id="key-error", classes="error", markup=False)
                    with Horizontal(classes="buttons"):
                        yield Button("Done", id="key-done", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#directory", Input).focus()

    # -- step 1: options --------------------------------------------------------------------

    def _read_choices(self) -> WizardChoices | str:
        """The options as entered, or a one-line reason they cannot be used."""
        text = self.query_one("#directory", Input).value.strip()
        if not text:
            return "Enter the directory for the new vault."
        directory = Path(text).expanduser().absolute()
        reverse = self.query_one("#reverse", Checkbox).value
        plaintext = self.query_one("#plaintext-names", Checkbox).value
        deterministic = self.query_one("#deterministic-names", Checkbox).value
        xchacha = self.query_one("#cipher-xchacha", RadioButton).value
        raw_max = self.query_one("#longname-max", Input).value.strip() or str(LONGNAME_MAX_DEFAULT)
        try:
            longname_max = int(raw_max)
        except ValueError:
            return f"Long-name limit {raw_max!r} is not a number."
        if not 62 <= longname_max <= LONGNAME_MAX_DEFAULT:
            return f"Long-name limit {longname_max} is outside 62..255."
        if plaintext and longname_max != LONGNAME_MAX_DEFAULT:
            return "A long-name limit has no effect with plaintext names."
        if plaintext and deterministic:
            return "Deterministic names only matter when names are encrypted."
        if reverse and xchacha:
            return "Reverse mode always uses AES-SIV; choose AES-256-GCM."
        problem = check_directory(directory, reverse)
        if problem:
            return problem
        options = InitOptions(
            plaintext_names=plaintext,
            deterministic_names=deterministic,
            xchacha=xchacha,
            longname_max=0 if longname_max == LONGNAME_MAX_DEFAULT else longname_max,
            reverse=reverse,
            logn=self.logn,
        )
        return WizardChoices(directory, options)

    @on(Button.Pressed, "#options-next")
    @on(Input.Submitted, "#directory, #longname-max")
    def _options_next(self) -> None:
        result = self._read_choices()
        error = self.query_one("#options-error", Static)
        if isinstance(result, str):
            error.update(as_text(result))
            return
        error.update("")
        self.choices = result
        self._show("step-password", "#password")

    @on(Button.Pressed, "#options-cancel")
    def _options_cancel(self) -> None:
        self.action_cancel()

    # -- step 2: password -------------------------------------------------------------------

    @on(Input.Changed, "#password")
    def _password_changed(self, event: Input.Changed) -> None:
        self._estimate(event.value)

    @work(thread=True, exclusive=True, group="strength")
    def _estimate(self, password: str) -> None:
        # zxcvbn takes milliseconds to tens of milliseconds: off the event loop, latest wins.
        strength = estimate(password)
        self.app.call_from_thread(self._show_strength, strength)

    def _show_strength(self, strength: Strength) -> None:
        show_strength(self, strength)

    @on(Input.Submitted, "#password")
    def _password_submitted(self) -> None:
        self.query_one("#password-repeat", Input).focus()

    @on(Button.Pressed, "#password-back")
    def _password_back(self) -> None:
        self.query_one("#password-error", Static).update("")
        self._show("step-options", "#directory")

    @on(Button.Pressed, "#password-create")
    @on(Input.Submitted, "#password-repeat")
    def _password_create(self) -> None:
        password = self.query_one("#password", Input).value
        repeat = self.query_one("#password-repeat", Input).value
        error = self.query_one("#password-error", Static)
        if not password:
            error.update("The password is empty.")
            return
        if password != repeat:
            error.update("The passwords do not match; type the same password twice.")
            self.query_one("#password-repeat", Input).value = ""
            self.query_one("#password-repeat", Input).focus()
            return
        assert self.choices is not None  # the password step is only reachable through options
        error.update("")
        secret = password.encode("utf-8")
        self.query_one("#password", Input).value = ""
        self.query_one("#password-repeat", Input).value = ""
        self.query_one("#working-label", Static).update(
            f"Creating the vault in {self.choices.directory} "
            f"(deriving the key with scrypt, cost 2^{self.choices.options.logn})…"
        )
        self._show("step-working")
        self._create(self.choices, secret)

    @work(thread=True, exclusive=True, group="create")
    def _create(self, choices: WizardChoices, password: bytes) -> None:
        # scrypt at logn 16 takes a noticeable fraction of a second; never on the event loop.
        try:
            created = create_vault(choices.directory, password, choices.options, create_dir=True)
        except VaultError as e:
            self.post_message(self.Failed(str(e)))
            return
        except OSError as e:
            self.post_message(self.Failed(f"{e.filename or choices.directory}: {e.strerror or e}"))
            return
        self.post_message(self.Created(created))

    @on(Failed)
    def _on_failed(self, message: Failed) -> None:
        reason = Text(safe_text(f"The vault was not created: {message.reason}"))  # as text, not markup
        self.query_one("#options-error", Static).update(reason)
        self._show("step-options", "#directory")

    # -- step 3: master key -----------------------------------------------------------------

    @on(Created)
    def _on_created(self, message: Created) -> None:
        created = message.created
        self.created_path = created.path
        grouped = format_master_key(created.master_key)
        self._master_key_group = grouped.split("-", 1)[0]
        groups = grouped.split("-")
        half = len(groups) // 2
        self.query_one("#master-key", Static).update(
            "-".join(groups[:half]) + "-\n" + "-".join(groups[half:])
        )
        what = "reverse-mode config" if created.reverse else "vault"
        where = f"{safe_text(str(created.path))} ({created.conf.options.content_encryption})"
        self.query_one("#created-label", Static).update(Text(f"The {what} has been created in {where}."))
        self._show("step-key", "#key-confirm")

    @on(Button.Pressed, "#key-done")
    @on(Input.Submitted, "#key-confirm")
    def _key_done(self) -> None:
        typed = self.query_one("#key-confirm", Input).value.strip().lower()
        error = self.query_one("#key-error", Static)
        if typed != self._master_key_group:
            error.update("That is not the first group of the master key; check the paper copy.")
            self.query_one("#key-confirm", Input).value = ""
            return
        error.update("")
        self._master_key_group = None
        self.query_one("#master-key", Static).update("")
        self.dismiss(self.created_path)

    # -- leaving ----------------------------------------------------------------------------

    def action_cancel(self) -> None:
        """Escape: leave without creating anything; ignored once the vault exists."""
        if self.step in ("step-options", "step-password"):
            self.dismiss(None)
        elif self.step == "step-key":
            self.query_one("#key-error", Static).update(
                "The vault exists: confirm you have the master key first."
            )


class NewVaultApp(SafeApp[Path | None]):
    """A small app that only runs the wizard; `created_path` is the new vault (or None)."""

    def __init__(
        self, directory: Path | None = None, theme: str | None = None, *, logn: int = DEFAULT_SCRYPT_LOGN
    ) -> None:
        super().__init__()
        self.directory = directory
        self.logn = logn
        self.created_path: Path | None = None
        self._wanted_theme = theme or DEFAULT_THEME

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return theme_variable_defaults()

    def on_mount(self) -> None:
        for theme in load_themes().values():
            self.register_theme(theme)
        if self.get_theme(self._wanted_theme) is not None:
            self.theme = self._wanted_theme
        else:
            self.theme = DEFAULT_THEME
            self.notify(
                f"unknown theme {self._wanted_theme!r}; using {DEFAULT_THEME}",
                severity="warning",
                markup=False,
            )
        self.push_screen(NewVaultScreen(self.directory, logn=self.logn), self._finished)

    def _finished(self, path: Path | None) -> None:
        self.created_path = path
        self.exit(path)


def run_new(
    directory: Path,
    theme: str | None,
    *,
    logn: int = DEFAULT_SCRYPT_LOGN,
    app: NewVaultApp | None = None,
) -> int:
    """Run the wizard full-screen: 0 when a vault was created, 1 when the person cancelled it.

    Pass `app` (a NewVaultApp) to read the new vault's path from `app.created_path` afterwards.
    """
    runner = app if app is not None else NewVaultApp(directory, theme, logn=logn)
    runner.run()
    if runner.created_path is not None:
        return 0
    if runner.return_code:  # a bug ended it: its one line is printed already
        return runner.return_code
    print(cancelled_notice(directory), file=sys.stderr)
    return CANCELLED_EXIT


# Esc is a choice, not an interrupt (gocryptfs's 15 means a signal): 1, as a refused request.
CANCELLED_EXIT = int(ExitCode.USAGE)


def cancelled_notice(directory: Path | None) -> str:
    where = f" in {directory}" if directory is not None else ""
    return f"vaultsh: cancelled; no vault created{where}"
