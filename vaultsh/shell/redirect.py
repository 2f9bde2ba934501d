"""`|` and `>` in shell lines: a vault command's output piped to a local command or into a local file."""

from __future__ import annotations

import io
import os
import shlex
import subprocess
from dataclasses import dataclass
from typing import TextIO

from vaultsh.service.commands import Session, SessionIO, run_line
from vaultsh.vault.errors import ExitCode


@dataclass
class Redirect:
    command: str  # the vault command line before the operator
    operator: str  # "|", ">" or ">>"
    target: str  # the local command line, or the local file


def find_redirect(line: str) -> Redirect | None:
    """The first `|`, `>` or `>>` outside quotes and not escaped, splitting the line; None if none."""
    quote = ""
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == quote:
                quote = ""
            elif ch == "\\" and quote == '"':
                i += 1
        elif ch in "'\"":
            quote = ch
        elif ch == "\\":
            i += 1
        elif ch in "|>":
            operator = ">>" if line.startswith(">>", i) else ch
            return Redirect(line[:i].strip(), operator, line[i + len(operator) :].strip())
        i += 1
    return None


class _Captured:
    """A SessionIO that keeps the output (raw bytes from `cat`, lines from the rest)."""

    def __init__(self, io: SessionIO) -> None:
        self.io = io
        self.data = bytearray()

    def write(self, text: str) -> None:
        self.data += (text + "\n").encode("utf-8", "surrogateescape")

    def write_bytes(self, data: bytes | memoryview) -> None:
        self.data += data

    def error(self, text: str) -> None:
        self.io.error(text)

    def ask_secret(self, prompt: str) -> bytes:
        return self.io.ask_secret(prompt)

    def confirm(self, question: str) -> bool:
        return self.io.confirm(question)

    def progress(self, done: int, total: int) -> None:
        pass  # the bar would end up in the pipe or file

    def cancelled(self) -> bool:
        return self.io.cancelled()


def run_redirected(session: Session, redirect: Redirect, out: TextIO) -> int:
    """Run the vault command with its output captured, then hand it to the local side."""
    io_ = session.io
    if not redirect.command or not redirect.target:
        io_.error(f"{redirect.operator} needs a vault command before it and a local one after it")
        return int(ExitCode.USAGE)
    captured = _Captured(io_)
    session.io = captured
    try:
        status = run_line(session, redirect.command)
    finally:
        session.io = io_
    data = bytes(captured.data)
    if redirect.operator == "|":
        return _pipe(redirect.target, data, out)
    try:
        words = shlex.split(redirect.target)
    except ValueError as e:
        words = [str(e)] * 2
    if len(words) != 1:
        io_.error(f"{redirect.operator} needs one local file name after it (quote a name with spaces)")
        return int(ExitCode.USAGE)
    path = os.path.expanduser(words[0])
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if redirect.operator == ">>" else os.O_TRUNC)
    try:
        fd = os.open(path, flags, 0o600)  # decrypted content: readable by its owner only
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except OSError as e:
        io_.error(f"{path}: {e.strerror or e}")
        return int(ExitCode.OTHER)
    return status


def _pipe(command: str, data: bytes, out: TextIO) -> int:
    """Feed `data` to the local shell command; its output goes where the shell's goes."""
    try:
        fileno = out.fileno()
    except (OSError, io.UnsupportedOperation):
        fileno = -1
    out.flush()
    if fileno >= 0:  # a real terminal or file: the command writes there itself (a pager works)
        return subprocess.run(["/bin/sh", "-c", command], input=data, stdout=fileno, check=False).returncode
    done = subprocess.run(["/bin/sh", "-c", command], input=data, capture_output=True, check=False)
    out.write(done.stdout.decode("utf-8", "replace"))
    out.write(done.stderr.decode("utf-8", "replace"))
    out.flush()
    return done.returncode
