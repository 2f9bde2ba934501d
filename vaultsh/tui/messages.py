"""Messages from the TUI's worker threads (and the directory watcher) to the screen and app."""

from __future__ import annotations

from textual.message import Message

from vaultsh.tui.entries import Entry


class DirBatch(Message):
    """A batch of entries of the directory being loaded."""

    def __init__(self, generation: int, entries: list[Entry]) -> None:
        super().__init__()
        self.generation = generation
        self.entries = entries


class DirLoaded(Message):
    """The whole directory, sorted for each pane."""

    def __init__(self, generation: int, plain: list[Entry], cipher: list[Entry], digest: bytes) -> None:
        super().__init__()
        self.generation = generation
        self.plain = plain
        self.cipher = cipher
        self.digest = digest  # listing_digest(cipher)


class DirFailed(Message):
    def __init__(self, generation: int, error: str) -> None:
        super().__init__()
        self.generation = generation
        self.error = error


class DirChanged(Message):
    """The shown directory changed on disk (a write through the mount, a sync tool)."""

    def __init__(self, last_change: float) -> None:
        super().__init__()
        self.last_change = last_change  # time.monotonic() of the last change seen


class TransferProgress(Message):
    """Bytes done of a running command's total (coalesced to a few per second)."""

    def __init__(self, done: int, total: int) -> None:
        super().__init__()
        self.done = done
        self.total = total
