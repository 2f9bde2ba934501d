"""Test helper: runs the prompt_toolkit shell on typed input over a pipe and keeps its output."""

from __future__ import annotations

import io

from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from vaultsh.service.commands import Session, SessionIO
from vaultsh.shell.repl import run_shell
from vaultsh.vault.vault import Vault


class Shell:
    """Runs the shell on typed input; keeps what it printed and the session it made."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.out = io.StringIO()
        self.err = io.StringIO()
        self.session: Session | None = None

    def factory(self, sio: SessionIO) -> Session:
        self.session = Session(self.vault, self.vault.cipherdir, sio)
        return self.session

    def type(self, keys: str, history: InMemoryHistory | None = None) -> int:
        with create_pipe_input() as pipe:
            pipe.send_text(keys)
            return run_shell(
                self.factory,
                history=history or InMemoryHistory(),
                input=pipe,
                output=DummyOutput(),
                stdout=self.out,
                stderr=self.err,
            )

    def lines(self) -> list[str]:
        return self.out.getvalue().splitlines()[1:]  # after the greeting
