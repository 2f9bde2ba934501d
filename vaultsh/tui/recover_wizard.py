"""The recovery wizard: a new gocryptfs.conf from the master key, for a vault that lost its config."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import (
    Button,
    ContentSwitcher,
    Input,
    Label,
    LoadingIndicator,
    RadioButton,
    RadioSet,
    Static,
)

from vaultsh.service import commands, recover
from vaultsh.service.passwords import SecretSource
from vaultsh.service.strength import estimate
from vaultsh.tui.screens import PasswordScreen
from vaultsh.tui.wizard import StepScreen, password_fields, show_strength, wizard_css
from vaultsh.vault import detect
from vaultsh.vault.config import DEFAULT_SCRYPT_LOGN
from vaultsh.vault.display import quote_name, safe_text
from vaultsh.vault.errors import MasterKeyError, VaultError
from vaultsh.vault.keys import parse_master_key

if TYPE_CHECKING:
    from vaultsh.tui.app import VaultApp

# The settings a wrong guess would turn into garbage, so the person chooses them; the others
# take gocryptfs's defaults when the files cannot tell (recover.plan does that).
_QUESTIONS = {
    detect.CONTENT: "Content encryption",
    detect.NAMES: "File names",
}
_CHOICE_LABELS: dict[object, str] = {
    detect.GCM: "AES-GCM-256 (gocryptfs's default)",
    detect.SIV: "AES-SIV-512 (-aessiv, reverse mode)",
    detect.XCHACHA: "XChaCha20-Poly1305 (-xchacha)",
    detect.DIRIV: "encrypted, with gocryptfs.diriv (the default)",
    detect.DETERMINISTIC: "encrypted, deterministic (-deterministic-names)",
    detect.PLAIN: "plain (-plaintextnames)",
}


def explanation(cipherdir: Path) -> str:
    where = quote_name(str(cipherdir))
    return (
        f"{where} holds encrypted files but no gocryptfs.conf, the file that keeps the master key "
        "under your password. With the master key (the 64 hex digits shown when the vault was "
        "created) a new config can be written: its settings are found by trying the key on the "
        "files, and it gets a new password. Nothing is written before the last step."
    )


def choices_from(answers: dict[str, object]) -> recover.Choices:
    """The person's answers as init's flags; `defaults` covers an answer that is the default."""
    return recover.Choices(
        aessiv=answers.get(detect.CONTENT) == detect.SIV,
        xchacha=answers.get(detect.CONTENT) == detect.XCHACHA,
        plaintext_names=answers.get(detect.NAMES) == detect.PLAIN,
        deterministic_names=answers.get(detect.NAMES) == detect.DETERMINISTIC,
        defaults=bool(answers),
    )


def open_questions(detection: detect.Detection) -> list[detect.Setting]:
    """The settings the files leave open and a default must not decide."""
    return [
        s
        for s in detect.iter_settings(detection)
        if s.name in _QUESTIONS and not s.decided and not s.assumable and s.candidates
    ]


class RecoverScreen(StepScreen[bytes | None]):
    """Recover a config step by step; dismisses with the master key once written, None if cancelled."""

    DEFAULT_CSS = (
        wizard_css("RecoverScreen")
        + """
    RecoverScreen #report { height: auto; margin-top: 1; }
    RecoverScreen RadioSet { height: auto; }
    """
    )

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, cipherdir: Path, *, logn: int = DEFAULT_SCRYPT_LOGN) -> None:
        super().__init__()
        self.cipherdir = cipherdir
        self.logn = logn
        self.master_key: bytes | None = None
        self.questions: list[detect.Setting] = []
        self.plan: recover.Plan | None = None
        self.written: Path | None = None
        self.backup: Path | None = None
        self.cancelled = False  # a late worker result must not touch a dismissed screen

    def compose(self) -> ComposeResult:
        with Vertical(id="wizard"):
            yield Label("Recover the vault's config", id="wizard-title")
            with ContentSwitcher(initial="step-key"):
                with VerticalScroll(id="step-key"):
                    yield Static(explanation(self.cipherdir), classes="hint", markup=False)
                    yield Label("Master key (typed, not shown)", classes="field-label")
                    yield Input(password=True, id="key-text", compact=True)
                    yield Label("… or a file holding it", classes="field-label")
                    yield Input(placeholder="path of a master-key file", id="key-file", compact=True)
                    yield Static("", id="key-error", classes="error", markup=False)
                    with Horizontal(classes="buttons"):
                        yield Button("Cancel", id="key-cancel", compact=True)
                        yield Button("Next", id="key-next", variant="primary", compact=True)
                with VerticalScroll(id="step-settings"):
                    yield Static("", id="report", markup=False)
                    yield Vertical(id="questions")
                    yield Static("", id="settings-error", classes="error", markup=False)
                    with Horizontal(classes="buttons"):
                        yield Button("Back", id="settings-back", compact=True)
                        yield Button("Next", id="settings-next", variant="primary", compact=True)
                with VerticalScroll(id="step-password"):
                    yield Static("The new config's password:", classes="hint", markup=False)
                    yield from password_fields()
                    with Horizontal(classes="buttons"):
                        yield Button("Back", id="password-back", compact=True)
                        yield Button("Write config", id="password-write", variant="primary", compact=True)
                with Vertical(id="step-working"):
                    yield Static("", id="working-label", markup=False)
                    yield LoadingIndicator()

    def on_mount(self) -> None:
        self.query_one("#key-text", Input).focus()

    def _error(self, step: str, message: str) -> None:
        self.query_one(f"#{step}-error", Static).update(safe_text(message))

    # -- step 1: the master key ------------------------------------------------------------

    def _read_key(self) -> bytes:
        path = self.query_one("#key-file", Input).value.strip()
        if path:
            return SecretSource(masterkey_file=os.path.expanduser(path)).read_master_key()
        return parse_master_key(self.query_one("#key-text", Input).value)

    @on(Button.Pressed, "#key-next")
    @on(Input.Submitted, "#key-text, #key-file")
    def _key_next(self) -> None:
        if self.step != "step-key":
            return
        try:
            key = self._read_key()
        except VaultError as e:
            self._error("key", str(e))
            return
        self._error("key", "")
        self.query_one("#working-label", Static).update("Trying the key on the files…")
        self._show("step-working")
        self._detect(key)

    @work(thread=True, exclusive=True, group="recover")
    def _detect(self, key: bytes) -> None:
        # Reads and decrypts up to a few hundred files: never on the event loop.
        try:
            detection = detect.detect(self.cipherdir, key)
            if detection.key_fits is False:
                raise MasterKeyError(f"the master key fits nothing here: {detection.key_evidence}")
            questions = open_questions(detection)
            found = None if questions else recover.plan(self.cipherdir, key, recover.Choices())
        except (VaultError, OSError) as e:
            self.app.call_from_thread(self._key_failed, _one_line(e))
            return
        self.app.call_from_thread(self._detected, key, detection, questions, found)

    def _key_failed(self, message: str) -> None:
        if self.cancelled:
            return
        self._error("key", message)
        self.query_one("#key-text", Input).value = ""
        self._show("step-key", "#key-text")

    def _detected(
        self,
        key: bytes,
        detection: detect.Detection,
        questions: list[detect.Setting],
        found: recover.Plan | None,
    ) -> None:
        if self.cancelled:
            return
        self.master_key = key
        self.query_one("#key-text", Input).value = ""
        self.questions = questions
        box = self.query_one("#questions", Vertical)
        box.remove_children()
        if found is not None:
            self._planned(found)
            return
        self.plan = None
        lines = [f"Master key: {detection.key_evidence}"]
        lines += [f"{s.name}: {s.evidence}" for s in detect.iter_settings(detection)]
        lines.append("The files cannot decide the settings below; choose what the vault was made with.")
        self.query_one("#report", Static).update(safe_text("\n".join(lines)))
        for setting in questions:
            box.mount(Label(_QUESTIONS[setting.name], classes="field-label"))
            box.mount(
                RadioSet(
                    *(
                        RadioButton(_CHOICE_LABELS.get(v, str(v)), value=i == 0, name=str(v))
                        for i, v in enumerate(setting.candidates)
                    ),
                    id=f"question-{setting.name}",
                    compact=True,
                )
            )
        self._show("step-settings", "#settings-next")

    # -- step 2: the settings ----------------------------------------------------------------

    def _answers(self) -> dict[str, object]:
        answers: dict[str, object] = {}
        for setting in self.questions:
            pressed = self.query_one(f"#question-{setting.name}", RadioSet).pressed_button
            if pressed is not None and pressed.name is not None:
                answers[setting.name] = pressed.name
        return answers

    @on(Button.Pressed, "#settings-next")
    def _settings_next(self) -> None:
        if self.plan is not None:
            self._show("step-password", "#password")
            return
        assert self.master_key is not None
        self.query_one("#working-label", Static).update("Checking the settings against the files…")
        self._show("step-working")
        self._settle(self.master_key, choices_from(self._answers()))

    @work(thread=True, exclusive=True, group="recover")
    def _settle(self, key: bytes, choices: recover.Choices) -> None:
        try:
            found = recover.plan(self.cipherdir, key, choices)
        except (VaultError, OSError) as e:
            self.app.call_from_thread(self._settle_failed, _one_line(e))
            return
        self.app.call_from_thread(self._settled, found)

    def _settle_failed(self, message: str) -> None:
        if not self.cancelled:
            self._error("settings", message)
            self._show("step-settings", "#settings-next")

    def _settled(self, found: recover.Plan) -> None:
        if self.cancelled:
            return
        self.query_one("#questions", Vertical).remove_children()
        self.questions = []
        self._planned(found)

    def _planned(self, found: recover.Plan) -> None:
        self.plan = found
        lines = recover.report_lines(found)
        lines.append("")
        lines.append(f"Next: a new password for {found.conf_path.name}.")
        self.query_one("#report", Static).update(safe_text("\n".join(lines)))
        self._error("settings", "")
        self._show("step-settings", "#settings-next")

    @on(Button.Pressed, "#settings-back")
    def _settings_back(self) -> None:
        self.plan = None
        self.master_key = None
        self._show("step-key", "#key-text")

    # -- step 3: the new password -----------------------------------------------------------

    @on(Input.Changed, "#password")
    def _password_changed(self, event: Input.Changed) -> None:
        self._estimate(event.value)

    @work(thread=True, exclusive=True, group="strength")
    def _estimate(self, password: str) -> None:
        strength = estimate(password)
        self.app.call_from_thread(show_strength, self, strength)

    @on(Input.Submitted, "#password")
    def _password_submitted(self) -> None:
        self.query_one("#password-repeat", Input).focus()

    @on(Button.Pressed, "#password-back")
    def _password_back(self) -> None:
        self._show("step-settings", "#settings-next")

    @on(Button.Pressed, "#password-write")
    @on(Input.Submitted, "#password-repeat")
    def _password_write(self) -> None:
        password = self.query_one("#password", Input).value
        repeat = self.query_one("#password-repeat", Input)
        if not password:
            self._error("password", "The password is empty.")
            return
        if password != repeat.value:
            self._error("password", "The passwords do not match; type the same password twice.")
            repeat.value = ""
            repeat.focus()
            return
        assert self.plan is not None and self.master_key is not None
        self._error("password", "")
        self.query_one("#password", Input).value = ""
        repeat.value = ""
        self.query_one("#working-label", Static).update(
            safe_text(f"Writing {self.plan.conf_path} (scrypt, cost 2^{self.logn})…")
        )
        self._show("step-working")
        self._write(self.plan, self.master_key, password.encode("utf-8"))

    @work(thread=True, exclusive=True, group="recover")
    def _write(self, found: recover.Plan, key: bytes, password: bytes) -> None:
        try:
            conf = recover.build_config(found, key, password, self.logn)
            backup = recover.write(found, conf)
        except (VaultError, OSError) as e:
            self.app.call_from_thread(self._write_failed, _one_line(e))
            return
        self.app.call_from_thread(self._written, found.conf_path, backup)

    def _write_failed(self, message: str) -> None:
        self._error("password", f"Nothing was written: {message}")
        self._show("step-password", "#password")

    def _written(self, conf_path: Path, backup: Path | None) -> None:
        self.written, self.backup = conf_path, backup
        self.dismiss(self.master_key)

    # -- leaving ------------------------------------------------------------------------------

    def action_cancel(self) -> None:
        """Escape: leave with nothing written (ignored while the config is being written)."""
        if self.step == "step-working" and self.plan is not None:
            return
        self.master_key = None
        self.cancelled = True
        self.dismiss(None)


def _one_line(error: Exception) -> str:
    if isinstance(error, OSError):
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror or error}"
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def recovered_line(screen: RecoverScreen) -> str:
    """What the wizard wrote, for the log."""
    kept = f"; the previous config is kept as {screen.backup}" if screen.backup else ""
    return f"Wrote a new {screen.written}{kept}."


def passwd_with_master_key(app: VaultApp) -> None:
    """`p` in a session unlocked with the master key: the key proves the right, no old password."""
    session = app.session
    if session is None:
        return
    key = session.master_key

    def change(password: bytes) -> str:
        bak, conf = commands.change_password(
            session.conf_path, session.cipherdir, lambda: password, master_key=lambda: key
        )
        session.conf = conf
        return f"Password changed. The previous config is kept as {bak}."

    def done(message: str | None) -> None:
        app.main.focus_active()
        if message is not None:
            app.log_line(message, "")
            app.main.action_refresh()  # the cipher pane now holds the old config's .bak

    app.push_screen(
        PasswordScreen[str](
            "New password",
            "New password",
            verify=change,
            repeat=True,
            detail="Unlocked with the master key: the old password is not needed.",
        ),
        done,
    )
