"""Test helper: a SessionIO that records what a command said, and snapshots of trees on disk."""

from __future__ import annotations

import base64
import hashlib
import os
import stat as stat_mod
from collections.abc import Callable
from pathlib import Path

from vaultsh.service.commands import Session, run_line


class RecordingIO:
    """A SessionIO that records everything and answers from prepared lists."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.errors: list[str] = []
        self.secrets: list[bytes] = []
        self.prompts: list[str] = []
        self.progress_calls: list[tuple[int, int]] = []
        self.cancel_when: Callable[[], bool] = lambda: False

    def write(self, text: str) -> None:
        self.out.append(text)

    def error(self, text: str) -> None:
        self.errors.append(text)

    def ask_secret(self, prompt: str) -> bytes:
        self.prompts.append(prompt)
        return self.secrets.pop(0)

    def confirm(self, question: str) -> bool:
        self.prompts.append(question)
        return False

    def progress(self, done: int, total: int) -> None:
        self.progress_calls.append((done, total))

    def cancelled(self) -> bool:
        return self.cancel_when()

    def take(self) -> list[str]:
        out, self.out = self.out, []
        return out


def rio(s: Session) -> RecordingIO:
    assert isinstance(s.io, RecordingIO)
    return s.io


def run(s: Session, line: str) -> tuple[int, list[str], list[str]]:
    """Run one command line in a session made with a RecordingIO: (exit code, output, errors)."""
    io = rio(s)
    io.out, io.errors = [], []
    code = run_line(s, line)
    return code, io.out, io.errors


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes | str | None]]:
    """Every object below `root` (itself included): mode, mtime and content or link target."""
    out: dict[str, tuple[int, int, bytes | str | None]] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in [".", *dirs, *files]:
            p = Path(dirpath, name)
            st = p.lstat()
            body: bytes | str | None = None
            if stat_mod.S_ISLNK(st.st_mode):
                body = os.readlink(p)
            elif stat_mod.S_ISREG(st.st_mode):
                body = p.read_bytes()
            out[str(p.relative_to(root))] = (st.st_mode, st.st_mtime_ns, body)
    return out


def long_alias(disk_name: str) -> str:
    """The long-name alias of a cipher name (§6.7): a hash, computed without any key."""
    digest = hashlib.sha256(disk_name.encode("ascii")).digest()
    return "gocryptfs.longname." + base64.urlsafe_b64encode(digest).decode().rstrip("=")
