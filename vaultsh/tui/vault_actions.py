"""Vault actions of the main screen: mount, unmount, password, fsck, info, master key, theme."""

from __future__ import annotations

import shlex
from pathlib import Path

from vaultsh.service import commands
from vaultsh.tui.browser import BrowserScreen
from vaultsh.tui.screens import (
    ConfirmScreen,
    PasswordScreen,
    PromptScreen,
)


class VaultActions(BrowserScreen):
    """Keys that act on the whole vault rather than on the shown entries."""

    def action_mount(self) -> None:
        def go(mountpoint: str | None) -> None:
            if mountpoint:
                self._mount_at(mountpoint)

        default = str(Path.home() / "mnt" / self.vapp.cipherdir.resolve().name)
        if self.exports == "cipher":  # a mount shows what an export writes: the encrypted view
            prompt = "Mount the encrypted view (read-only) at (empty dir):"
            self._ask(PromptScreen("Mount encrypted view", prompt, default + "-encrypted", local="dir"), go)
            return
        self._ask(PromptScreen("Mount", "Mount the vault at (empty dir):", default, local="dir"), go)

    def _mount_at(self, mountpoint: str) -> None:
        """Mount at `mountpoint`; a missing one (the suggested ~/mnt/NAME) is offered to be made."""
        where = Path(mountpoint).expanduser()
        if where.exists() or where.is_symlink():
            self.vapp.run_command(f"mount {shlex.quote(mountpoint)}")
            return

        def create(yes: bool | None) -> None:
            if not yes:
                return
            try:
                where.mkdir(mode=0o700, parents=True)
            except OSError as e:
                self.vapp.log_line(f"{where}: cannot create the mountpoint: {e.strerror or e}", "error")
                return
            self.vapp.log_line(f"created {where}", "")
            self.vapp.run_command(f"mount {shlex.quote(str(where))}")

        question = f"{where} does not exist. Create it (mode 0700) and mount there?"
        self._ask(ConfirmScreen("Mount", question, yes="Create", no="Cancel"), create)

    def action_unmount(self) -> None:
        self.vapp.run_command("unmount")

    def action_passwd(self) -> None:
        if self.session is not None and self.session.by_master_key:
            from vaultsh.tui.recover_wizard import passwd_with_master_key

            passwd_with_master_key(self.vapp)
            return
        self.vapp.run_command("passwd")

    def action_fsck(self) -> None:
        from vaultsh.tui.fsck_screen import start_fsck

        start_fsck(self.vapp, self.cwd)

    def action_vault_info(self) -> None:
        self.vapp.run_command("info")

    def action_masterkey(self) -> None:
        session = self.session
        conf = session.conf if session else None
        if conf is None:
            self.vapp.log_line(
                "no config to check a password against (unlocked with the master key)", "error"
            )
            return

        def show(key: str | None) -> None:
            if key:
                self.vapp.show_master_key(key)

        self._ask(
            PasswordScreen[str](
                "Show the master key",
                "Password",
                verify=lambda pw: commands.reveal_master_key(conf, pw),
                detail="Enter the password again to see the master key.",
            ),
            show,
        )

    def action_cycle_theme(self) -> None:
        self.vapp.cycle_theme()
