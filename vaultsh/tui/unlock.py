"""Opening a vault in the TUI: wizards, password dialogs, or the secrets given on the command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vaultsh.service import commands, folders
from vaultsh.tui.screens import ConfirmScreen, PasswordScreen
from vaultsh.vault.display import safe_text
from vaultsh.vault.errors import ExitCode, VaultError

if TYPE_CHECKING:
    from vaultsh.tui.app import VaultApp


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
        kind = folders.folder_kind(self.app.cipherdir)
        given = self._master_key is not None or self._password is not None
        if kind == "empty" and self._master_key is None:
            self._new_vault()
        elif kind == "configless" and not given:
            self.start_recovery()  # cipher files without their config
        elif given:
            self._unlock_given()
        else:
            self._ask_password()

    def _new_vault(self) -> None:
        from vaultsh.tui.wizard import CANCELLED_EXIT, NewVaultScreen, cancelled_notice

        def created(path: Path | None) -> None:
            if path is None:
                self.app.quit_with(CANCELLED_EXIT, cancelled_notice(self.app.cipherdir))
                return
            self.app.cipherdir = path
            self.app.cipherdir_label = safe_text(str(path))
            self._ask_password()  # a vault, or a reverse-mode folder: the opener tells

        if self._wizard_logn is not None:
            self.app.push_screen(NewVaultScreen(self.app.cipherdir, logn=self._wizard_logn), created)
        else:
            self.app.push_screen(NewVaultScreen(self.app.cipherdir), created)

    def _ask_password(self, conf_path: Path | None = None) -> None:
        root = self.app.cipherdir
        try:
            folders.read_config(root, conf_path)  # a broken config ends here, not in the dialog
        except VaultError as e:
            if conf_path is None and self._offer_backup(e):
                return
            self.app.quit_with(int(e.exit_code), f"vaultsh: {e}")
            return

        def unlocked(session: commands.Session | None) -> None:
            if session is None:
                self.app.quit_with(int(ExitCode.PASSWORD_INCORRECT))
                return
            self.app.opened_session(session)

        if folders.folder_kind(root) == "reverse":
            title, detail = "Unlock reverse-mode folder", f"{root} (encrypted view)"
        else:
            title, detail = "Unlock vault", str(root)
        screen = PasswordScreen[commands.Session](
            title,
            "Password",
            verify=lambda pw: folders.open_folder(root, self.app.io, password=lambda: pw, config=conf_path),
            detail=detail,
        )
        self.app.push_screen(screen, unlocked)

    def start_recovery(self) -> None:
        """The recovery wizard: at start for cipher files without a config, or by `:recover`."""
        from vaultsh.tui.recover_wizard import RecoverScreen, recovered_line

        session = self.app.session
        if session is not None and not session.tree.cipher_files:
            # The wizard finds the settings by trial on cipher files; a reverse view has none.
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
                self.app.session.conf = folders.read_config(self.app.cipherdir)
            else:
                self._master_key = key
                self._unlock_given()

        self.app.push_screen(screen, done)

    def _offer_backup(self, error: VaultError) -> bool:
        """A broken config with a .bak beside it: offer to unlock with the .bak; False if none."""
        backup = folders.config_backup(self.app.cipherdir)
        if backup is None:
            return False

        def answered(yes: bool | None) -> None:
            if yes:
                self._ask_password(backup)
            else:
                self.app.quit_with(int(error.exit_code), f"vaultsh: {error}")

        question = f"{error} — unlock with the previous config, {backup.name}?"
        self.app.push_screen(
            ConfirmScreen("Broken config", question, yes=f"Use {backup.name}", no="Quit"), answered
        )
        return True

    def _unlock_given(self) -> None:
        """Unlock with the secrets given on the command line (scrypt: off the UI thread)."""
        self.app.run_worker(self._unlock_in_worker, thread=True, exclusive=True, group="unlock")

    def _unlock_in_worker(self) -> None:
        password, master_key = self._password, self._master_key
        try:
            session = folders.open_folder(
                self.app.cipherdir,
                self.app.io,
                password=None if password is None else lambda: password,
                master_key=None if master_key is None else lambda: master_key,
            )
        except VaultError as e:
            self.app.call_from_thread(self.app.quit_with, int(e.exit_code), f"vaultsh: {e}")
            return
        except OSError as e:
            message = f"vaultsh: {self.app.cipherdir}: {e.strerror or e}"
            self.app.call_from_thread(self.app.quit_with, int(ExitCode.CIPHER_DIR), message)
            return
        finally:
            self._password = self._master_key = None
        self.app.call_from_thread(self.app.opened_session, session)
