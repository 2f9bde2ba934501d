"""The recovery wizard: a folder of cipher files without gocryptfs.conf, rebuilt from the master key."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, ContentSwitcher, Input, Label, LoadingIndicator, Static

from vaultsh.service import recover
from vaultsh.service.strength import Strength
from vaultsh.tui.wizard import NewVaultScreen, strength_bar
from vaultsh.vault.config import CONF_NAME, DEFAULT_SCRYPT_LOGN, load_config
from vaultsh.vault.errors import MasterKeyError, VaultError
from vaultsh.vault.keys import parse_master_key
from vaultsh.vault.vault import Vault


def read_key_input(typed: str, path: str) -> bytes:
    """The master key typed in, or read from the first line of a file; MasterKeyError if not."""
    if typed.strip():
        return parse_master_key(typed)
    if not path.strip():
        raise MasterKeyError("Type the master key or give the file that holds it.")
    file = Path(path.strip()).expanduser()
    try:
        with open(file, encoding="ascii", errors="replace") as f:
            return parse_master_key(f.readline(200))
    except OSError as e:
        raise MasterKeyError(f"{file}: cannot read the master key: {e.strerror or e}") from None


class RecoverScreen(ModalScreen[Vault | None]):
    """Explain, take the master key, show what was found, take a new password, write, open."""

    DEFAULT_CSS = (
        NewVaultScreen.DEFAULT_CSS.replace("NewVaultScreen", "RecoverScreen")
        + """
    RecoverScreen #found {
        height: auto;
        max-height: 16;
    }
    """
    )

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    class Found(Message):
        def __init__(self, plan: recover.Plan) -> None:
            super().__init__()
            self.plan = plan

    class Written(Message):
        def __init__(self, vault: Vault, backup: Path | None) -> None:
            super().__init__()
            self.vault = vault
            self.backup = backup

    class Failed(Message):
        def __init__(self, step: str, reason: str) -> None:
            super().__init__()
            self.step = step
            self.reason = reason

    def __init__(self, cipherdir: Path, *, logn: int = DEFAULT_SCRYPT_LOGN) -> None:
        super().__init__()
        self.cipherdir = cipherdir
        self.logn = logn
        self._key: bytes | None = None
        self.plan: recover.Plan | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="wizard"):
            yield Label("Recover a vault", id="wizard-title")
            with ContentSwitcher(initial="step-key"):
                with VerticalScroll(id="step-key"):
                    yield Static(
                        f"{self.cipherdir} holds encrypted files but no {CONF_NAME}: the config that "
                        "keeps the master key under your password is lost. With the master key (the "
                        "8 groups of 8 characters shown when the vault was made), a new config can be "
                        "written: the settings are found by trying the key on the files.",
                        classes="hint",
                        markup=False,
                    )
                    yield Label("Master key", classes="field-label")
                    yield Input(password=True, id="key", compact=True, placeholder="xxxxxxxx-xxxxxxxx-…")
                    yield Label("…or the file that holds it", classes="field-label")
                    yield Input(id="key-file", compact=True)
                    yield Checkbox(
                        "Take init's defaults for what the files cannot tell", id="defaults", compact=True
                    )
                    yield Static("", id="key-error", classes="error", markup=False)
                    with Horizontal(classes="buttons"):
                        yield Button("Cancel", id="key-cancel", compact=True)
                        yield Button("Next", id="key-next", variant="primary", compact=True)
                with VerticalScroll(id="step-password"):
                    yield Static("", id="found", markup=False)
                    yield Label("New password", classes="field-label")
                    yield Input(password=True, id="password", compact=True)
                    yield Static(
                        strength_bar(Strength(0.0)), id="strength-meter", classes="-weak", markup=False
                    )
                    yield Static("", id="strength-warning", markup=False)
                    yield Label("Repeat the password", classes="field-label")
                    yield Input(password=True, id="password-repeat", compact=True)
                    yield Static("", id="password-error", classes="error", markup=False)
                    with Horizontal(classes="buttons"):
                        yield Button("Back", id="password-back", compact=True)
                        yield Button("Write config", id="password-write", variant="primary", compact=True)
                with Vertical(id="step-working"):
                    yield Static("", id="working-label", markup=False)
                    yield LoadingIndicator()

    def on_mount(self) -> None:
        self.query_one("#key", Input).focus()

    @property
    def step(self) -> str | None:
        return self.query_one(ContentSwitcher).current

    def _show(self, step: str, focus: str | None = None) -> None:
        self.query_one(ContentSwitcher).current = step
        if focus:
            self.query_one(focus).focus()

    # -- step 1: the master key -------------------------------------------------------------

    @on(Button.Pressed, "#key-next")
    @on(Input.Submitted, "#key, #key-file")
    def _key_next(self) -> None:
        error = self.query_one("#key-error", Static)
        try:
            key = read_key_input(
                self.query_one("#key", Input).value, self.query_one("#key-file", Input).value
            )
        except VaultError as e:
            error.update(str(e))
            return
        error.update("")
        self.query_one("#key", Input).value = ""
        self._key = key
        choices = recover.Choices(defaults=self.query_one("#defaults", Checkbox).value)
        self.query_one("#working-label", Static).update("Trying the master key on the files…")
        self._show("step-working")
        self._detect(key, choices)

    @work(thread=True, exclusive=True, group="recover")
    def _detect(self, key: bytes, choices: recover.Choices) -> None:
        try:
            found = recover.plan(self.cipherdir, key, choices)
        except VaultError as e:
            self.post_message(self.Failed("step-key", str(e)))
            return
        self.post_message(self.Found(found))

    @on(Found)
    def _on_found(self, message: Found) -> None:
        self.plan = message.plan
        self.query_one("#found", Static).update("\n".join(recover.report_lines(message.plan)))
        self._show("step-password", "#password")

    @on(Button.Pressed, "#key-cancel")
    def _key_cancel(self) -> None:
        self.action_cancel()

    # -- step 2: the new password -------------------------------------------------------------

    @on(Input.Changed, "#password")
    def _password_changed(self, event: Input.Changed) -> None:
        self._estimate(event.value)

    @work(thread=True, exclusive=True, group="strength")
    def _estimate(self, password: str) -> None:
        from vaultsh.service.strength import estimate

        strength = estimate(password)
        self.app.call_from_thread(self._show_strength, strength)

    def _show_strength(self, strength: Strength) -> None:
        meter = self.query_one("#strength-meter", Static)
        meter.update(strength_bar(strength))
        meter.set_class(strength.weak, "-weak")
        meter.set_class(not strength.weak, "-good")
        warning = f"Weak: about {strength.bits:.0f} bits of estimated entropy." if strength.weak else ""
        self.query_one("#strength-warning", Static).update(warning)

    @on(Input.Submitted, "#password")
    def _password_submitted(self) -> None:
        self.query_one("#password-repeat", Input).focus()

    @on(Button.Pressed, "#password-back")
    def _password_back(self) -> None:
        self._show("step-key", "#key")

    @on(Button.Pressed, "#password-write")
    @on(Input.Submitted, "#password-repeat")
    def _password_write(self) -> None:
        password = self.query_one("#password", Input).value
        repeat = self.query_one("#password-repeat", Input).value
        error = self.query_one("#password-error", Static)
        if not password:
            error.update("The password is empty.")
            return
        if password != repeat:
            error.update("The passwords do not match; type the same password twice.")
            self.query_one("#password-repeat", Input).value = ""
            return
        assert self.plan is not None and self._key is not None
        error.update("")
        self.query_one("#password", Input).value = ""
        self.query_one("#password-repeat", Input).value = ""
        self.query_one("#working-label", Static).update(
            f"Writing {self.plan.conf_path} (deriving the key with scrypt, cost 2^{self.logn})…"
        )
        self._show("step-working")
        self._write(self.plan, self._key, password.encode("utf-8"))

    @work(thread=True, exclusive=True, group="recover")
    def _write(self, found: recover.Plan, key: bytes, password: bytes) -> None:
        try:
            backup = recover.write(found, recover.build_config(found, key, password, self.logn))
            conf = load_config(found.conf_path)
            vault = Vault(found.cipherdir, conf.decrypt_master_key(password), conf.options, conf)
        except VaultError as e:
            self.post_message(self.Failed("step-password", f"Nothing was opened: {e}"))
            return
        self.post_message(self.Written(vault, backup))

    @on(Written)
    def _on_written(self, message: Written) -> None:
        self._key = None
        kept = f"; the previous config is kept as {message.backup}" if message.backup else ""
        self.app.notify(f"Wrote {self.cipherdir / CONF_NAME}{kept}", markup=False)
        self.dismiss(message.vault)

    @on(Failed)
    def _on_failed(self, message: Failed) -> None:
        target = "#key-error" if message.step == "step-key" else "#password-error"
        self.query_one(target, Static).update(message.reason)
        self._show(message.step, "#key" if message.step == "step-key" else "#password")

    def action_cancel(self) -> None:
        """Escape: leave without writing; not while a worker runs."""
        if self.step != "step-working":
            self._key = None
            self.dismiss(None)
