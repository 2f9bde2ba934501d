"""A session on an unlocked vault or reverse folder, and what a front end offers it (SessionIO)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from vaultsh.service.registry import read_only_reason
from vaultsh.vault.config import CONF_NAME, ConfFile
from vaultsh.vault.errors import UsageError
from vaultsh.vault.keys import FormatOptions
from vaultsh.vault.opening import open_unlocked
from vaultsh.vault.reverse import ReverseView
from vaultsh.vault.tree import Tree, VaultTree
from vaultsh.vault.vault import Vault

# -- the contract with front-ends -----------------------------------------------------------


class SessionIO(Protocol):
    """What a front-end (shell, TUI, CLI, tests) offers the commands."""

    def write(self, text: str) -> None:
        """Show one line of normal output."""

    def error(self, text: str) -> None:
        """Show a one-line error."""

    def ask_secret(self, prompt: str) -> bytes:
        """Ask for a password without echo."""
        ...

    def confirm(self, question: str) -> bool:
        """Ask a yes/no question; no is the safe default."""
        ...

    def progress(self, done: int, total: int) -> None:
        """Bytes done out of total (total may be 0 when unknown)."""

    def cancelled(self) -> bool:
        """Whether the person asked to stop the running command."""
        ...


@runtime_checkable
class ByteSink(Protocol):
    """An IO that can take raw bytes (the CLI's stdout): `cat` then passes file content as is."""

    def write_bytes(self, data: bytes | memoryview) -> None: ...


@dataclass
class Session:
    """One unlocked folder as a front-end holds it: where the person is, how to talk to them."""

    # The folder as open_unlocked gave it: a vault, or a reverse-mode folder's encrypted view
    # (§9), whose `cipherdir` is then the plain dir and `cwd` a plain path in it. Commands read
    # it through `tree`; one that writes gets the vault from `vault_for`, which refuses a
    # reverse view, so no command can write into a reverse-mode folder by mistake.
    folder: Vault | ReverseView
    cipherdir: Path
    io: SessionIO
    cwd: str = ""  # plain path below the vault root, "" is the root
    # An alternative config (--config); None: the one the vault was opened with, if any,
    # else CIPHERDIR/gocryptfs.conf.
    config_path: Path | None = None
    # Front-end callbacks for commands only some front-ends have: "exit" (leave the session),
    # "theme" (switch the TUI theme, called with a name or None to list), "masterkey" (show the
    # master key, called with its text, somewhere other than the output: a TUI dialog).
    hooks: dict[str, Callable[..., object]] = field(default_factory=dict)
    show_progress: bool = True  # measure the work first so that io.progress knows the total
    processes: int = 1  # 2 lets exports fork a second decrypting process (only safe in the CLI)
    quiet: bool = False  # no summary line after a transfer (the CLI stays silent on success)
    finished: bool = False  # set by `exit`
    by_master_key: bool = False  # unlocked with the master key: passwd needs no old password

    @classmethod
    def open_reverse(
        cls,
        plaindir: Path,
        io: SessionIO,
        *,
        password: bytes | None = None,
        master_key: bytes | None = None,
        hooks: dict[str, Callable[..., object]] | None = None,
    ) -> Session:
        """Unlock a reverse-mode folder by password or master key (§9.1); VaultError if not."""
        view = open_unlocked(
            plaindir,
            reverse=True,
            password=None if password is None else lambda: password,
            master_key=None if master_key is None else lambda: master_key,
        )
        return cls(view, plaindir, io, hooks=dict(hooks or {}))

    @property
    def conf(self) -> ConfFile | None:
        """The config the folder was unlocked from; None with a master key and no config."""
        return self.folder.conf

    @conf.setter
    def conf(self, conf: ConfFile | None) -> None:
        self.folder.conf = conf

    @property
    def master_key(self) -> bytes:
        return self.folder.keys.master_key

    @property
    def options(self) -> FormatOptions:
        return self.folder.options

    @property
    def reverse(self) -> ReverseView | None:
        """The encrypted view, when the folder is a reverse-mode one."""
        return self.folder if isinstance(self.folder, ReverseView) else None

    def vault_for(self, command: str) -> Vault:
        """The vault, for `command` that writes into it or reads its cipher files; UsageError
        naming the command on a reverse-mode folder."""
        if isinstance(self.folder, ReverseView):
            raise UsageError(f"{command}: {read_only_reason(self.cipherdir)}")
        return self.folder

    @property
    def tree(self) -> Tree:
        """The folder as the commands read it: the reverse view, or the vault's plain tree."""
        return self.folder if isinstance(self.folder, ReverseView) else VaultTree(self.folder)

    @property
    def conf_path(self) -> Path:
        if self.config_path is not None:
            return self.config_path
        if self.conf is not None and self.conf.path is not None:
            return self.conf.path
        return self.cipherdir / CONF_NAME

    def resolve(self, path: str) -> str:
        """A plain vault path from an argument relative to `cwd` ('..' stops at the root)."""
        parts = [] if path.startswith("/") else [p for p in self.cwd.split("/") if p]
        for part in path.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if parts:
                    parts.pop()
                continue
            parts.append(part)
        return "/".join(parts)


def show(plain: str) -> str:
    """How a plain vault path is shown to people: absolute within the vault."""
    return "/" + plain


@runtime_checkable
class Chooser(Protocol):
    """An IO that can offer a choice of answers (the shell, the TUI); others get a refusal."""

    def choose(self, question: str, choices: list[tuple[str, str]]) -> str | None:
        """One of the (value, label) choices' values; None if no one can be asked (a script)."""
        ...
