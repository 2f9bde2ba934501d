"""Opening a vault in the TUI: wizards, password dialogs, or the secrets given on the command line."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from vaultsh.service import commands
from vaultsh.tui.screens import ConfirmScreen, PasswordScreen
from vaultsh.vault.config import CONF_NAME, REVERSE_CONF_NAME, load_config
from vaultsh.vault.display import safe_text
from vaultsh.vault.errors import ExitCode, VaultError
from vaultsh.vault.vault import Vault

if TYPE_CHECKING:
    from vaultsh.tui.app import VaultApp

_Opened = TypeVar("_Opened")


class Unlocker:
    """Takes the app from a directory to an open session; holds the given secrets until then."""

    def __init__(
        self, app: VaultApp, *, password: bytes | None, master_key: bytes | None, logn: int | None
    ) -> None:
        self.app = app
        self._password = password
        self._master_key = master_key
        self._wizard_logn = logn  # the wizards' scrypt cost (tests make it cheap)

    def start(self) -> None:
        """Create, unlock or open the vault, whichever the directory and the given secrets call for."""
        try:
            self._start()
        except OSError as e:  # an unreadable directory: one line, not a traceback
            self.app.quit_with(int(ExitCode.CIPHER_DIR), f"vaultsh: {self.app.cipherdir}: {e.strerror or e}")

    def _start(self) -> None:
        root = self.app.cipherdir
        if not (root / CONF_NAME).exists() and (root / REVERSE_CONF_NAME).exists():
            # A reverse-mode folder (§9.1): plain files beside the config of their encrypted view.
            if self._master_key is not None or self._password is not None:
                self._unlock_given_reverse()
            else:
                self._ask_password_reverse()
            return
        no_vault = not (root / CONF_NAME).exists() and self._master_key is None
        if no_vault and (not root.exists() or (root.is_dir() and not any(root.iterdir()))):
            self._new_vault()
            return
        if no_vault and self._password is None and self._recoverable(root):
            self.start_recovery()  # cipher files without their config
            return
        if self._master_key is not None or self._password is not None:
            self._unlock_given()
            return
        self._ask_password()

    def _new_vault(self) -> None:
        try:
            from vaultsh.tui.wizard import CANCELLED_EXIT, NewVaultScreen, cancelled_notice
        except ImportError:
            self.app.quit_with(int(ExitCode.CIPHER_DIR), f"vaultsh: {self.app.cipherdir}: no vault here")
            return

        def created(path: Path | None) -> None:
            if path is None:
                self.app.quit_with(CANCELLED_EXIT, cancelled_notice(self.app.cipherdir))
                return
            self.app.cipherdir = path
            self.app.cipherdir_label = safe_text(str(path))
            if not (path / CONF_NAME).exists() and (path / REVERSE_CONF_NAME).exists():
                self._ask_password_reverse()  # the wizard made a reverse-mode folder
            else:
                self._ask_password()

        if self._wizard_logn is not None:
            self.app.push_screen(NewVaultScreen(self.app.cipherdir, logn=self._wizard_logn), created)
        else:
            self.app.push_screen(NewVaultScreen(self.app.cipherdir), created)

    @staticmethod
    def _recoverable(root: Path) -> bool:
        """Cipher files without a config: the recovery wizard can rebuild it."""
        from vaultsh.vault.detect import looks_like_cipherdir

        conf = root / CONF_NAME
        return not conf.exists() and not conf.is_symlink() and root.is_dir() and looks_like_cipherdir(root)

    def _ask_password(self, conf_path: Path | None = None) -> None:
        try:
            conf = load_config(conf_path or self.app.cipherdir / CONF_NAME)
        except VaultError as e:
            if conf_path is None and self._offer_backup(e):
                return
            self.app.quit_with(int(e.exit_code), f"vaultsh: {e}")
            return

        def unlocked(vault: Vault | None) -> None:
            if vault is None:
                self.app.quit_with(int(ExitCode.PASSWORD_INCORRECT))
                return
            self.app.opened(vault)

        screen = PasswordScreen[Vault](
            "Unlock vault",
            "Password",
            verify=lambda pw: Vault(self.app.cipherdir, conf.decrypt_master_key(pw), conf.options, conf),
            detail=str(self.app.cipherdir),
        )
        self.app.push_screen(screen, unlocked)

    def start_recovery(self) -> None:
        """The recovery wizard: at start for cipher files without a config, or by `:recover`."""
        from vaultsh.tui.recover_wizard import RecoverScreen, recovered_line

        if self.app.reverse is not None:
            self.app.log_line("recover: for a reverse-mode folder use `vaultsh recover --reverse`", "error")
            return
        in_session = self.app.session is not None
        logn = self._wizard_logn
        screen = (
            RecoverScreen(self.app.cipherdir)
            if logn is None
            else RecoverScreen(self.app.cipherdir, logn=logn)
        )

        def done(key: bytes | None) -> None:
            if key is None:
                if not in_session:
                    self.app.quit_with(int(ExitCode.SIGINT))
                return
            self.app.log_line(recovered_line(screen), "")
            if self.app.session is not None:
                self.app.session.vault.conf = load_config(self.app.cipherdir / CONF_NAME)
            else:
                self._master_key = key
                self._unlock_given()

        self.app.push_screen(screen, done)

    def _offer_backup(self, error: VaultError) -> bool:
        """A broken config with a .bak beside it: offer to unlock with the .bak; False if none."""
        conf_path = self.app.cipherdir / CONF_NAME
        bak = conf_path.with_name(CONF_NAME + ".bak")
        if not os.path.lexists(conf_path) or not bak.is_file():
            return False

        def answered(yes: bool | None) -> None:
            if yes:
                self._ask_password(bak)
            else:
                self.app.quit_with(int(error.exit_code), f"vaultsh: {error}")

        question = f"{error} — unlock with the previous config, {bak.name}?"
        self.app.push_screen(
            ConfirmScreen("Broken config", question, yes=f"Use {bak.name}", no="Quit"), answered
        )
        return True

    def _ask_password_reverse(self) -> None:
        try:
            load_config(
                self.app.cipherdir / REVERSE_CONF_NAME
            )  # a broken config ends here, not in the dialog
        except VaultError as e:
            self.app.quit_with(int(e.exit_code), f"vaultsh: {e}")
            return

        def unlocked(session: commands.Session | None) -> None:
            if session is None:
                self.app.quit_with(int(ExitCode.PASSWORD_INCORRECT))
                return
            self.app.opened_session(session)

        screen = PasswordScreen[commands.Session](
            "Unlock reverse-mode folder",
            "Password",
            verify=lambda pw: commands.Session.open_reverse(self.app.cipherdir, self.app.io, password=pw),
            detail=f"{self.app.cipherdir} (encrypted view)",
        )
        self.app.push_screen(screen, unlocked)

    def _unlock_given_reverse(self) -> None:
        password, master_key = self._password, self._master_key
        self._unlock_given_with(
            lambda: commands.Session.open_reverse(
                self.app.cipherdir, self.app.io, password=password, master_key=master_key
            ),
            self.app.opened_session,
        )

    def _unlock_given(self) -> None:
        password, master_key = self._password, self._master_key
        self.app.unlocked_with_master_key = master_key is not None
        if master_key is not None:
            self._unlock_given_with(
                lambda: Vault.open(self.app.cipherdir, master_key=master_key), self.app.opened_by_master_key
            )
        else:
            self._unlock_given_with(
                lambda: Vault.open(self.app.cipherdir, password=password), self.app.opened
            )

    def _unlock_given_with(self, unlock: Callable[[], _Opened], done: Callable[[_Opened], None]) -> None:
        """Unlock with the secrets given on the command line (scrypt: off the UI thread)."""
        self.app.run_worker(
            partial(self._unlock_in_worker, unlock, done), thread=True, exclusive=True, group="unlock"
        )

    def _unlock_in_worker(self, unlock: Callable[[], _Opened], done: Callable[[_Opened], None]) -> None:
        try:
            result = unlock()
        except VaultError as e:
            self.app.call_from_thread(self.app.quit_with, int(e.exit_code), f"vaultsh: {e}")
            return
        except OSError as e:
            message = f"vaultsh: {self.app.cipherdir}: {e.strerror or e}"
            self.app.call_from_thread(self.app.quit_with, int(ExitCode.CIPHER_DIR), message)
            return
        finally:
            self._password = self._master_key = None
        self.app.call_from_thread(done, result)
