"""A session on an unlocked vault or reverse folder, and what a front end offers it (SessionIO)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from vaultsh.vault.config import CONF_NAME, REVERSE_CONF_NAME, load_config
from vaultsh.vault.errors import (
    UsageError,
)
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
    """One unlocked vault as a front-end holds it: where the person is, how to talk to them."""

    vault: Vault
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
    # A reverse-mode folder (§9): `cipherdir` is then the plain dir, `cwd` a plain path in it,
    # and `reverse` its encrypted view. `vault` only carries the key, format flags and the
    # reverse config there (for mount, passwd, masterkey, info); the commands read the folder
    # through `tree`, and those that would write into it are refused (see Tree.writable).
    reverse: ReverseView | None = None
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
        conf_path = plaindir / REVERSE_CONF_NAME
        if master_key is None:
            if password is None:
                raise UsageError("a password or a master key is needed")
            master_key = load_config(conf_path).decrypt_master_key(password)
        view = ReverseView.open(plaindir, master_key=master_key)
        conf = load_config(conf_path)
        holder = Vault(plaindir, master_key, view.options, conf)
        return cls(holder, plaindir, io, hooks=dict(hooks or {}), reverse=view)

    @property
    def tree(self) -> Tree:
        """The folder as the commands read it: the reverse view, or the vault's plain tree."""
        return self.reverse or VaultTree(self.vault)

    @property
    def conf_path(self) -> Path:
        if self.config_path is not None:
            return self.config_path
        if self.vault.conf is not None and self.vault.conf.path is not None:
            return self.vault.conf.path
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
