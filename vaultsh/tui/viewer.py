"""A full-screen viewer of one decrypted file: text with search, or a hex dump of binary data."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Input, Static, TextArea
from textual.widgets.text_area import Selection

from vaultsh.service.commands import human_bytes
from vaultsh.tui.inspect import hex_lines, looks_like_text
from vaultsh.tui.safety import as_text
from vaultsh.vault.errors import VaultError

TEXT_LIMIT = 8 << 20  # bytes of a text file shown; the title says when it is cut
HEX_LIMIT = 1 << 20  # bytes of binary data shown as hex (16 a line)

# (offset, size) -> bytes of the decrypted file; runs in a worker thread
Reader = Callable[[int, int], bytes]


def chunks_reader(chunks: Callable[[], Iterable[bytes | memoryview]]) -> Reader:
    """A Reader over a file read from its start in chunks (a Tree's plain_chunks); it reads no
    further than the bytes asked for."""

    def read(offset: int, size: int) -> bytes:
        out = bytearray()
        skip = offset
        for chunk in chunks():
            if skip >= len(chunk):
                skip -= len(chunk)
                continue
            out += chunk[skip : skip + size - len(out)]
            skip = 0
            if len(out) >= size:
                break
        return bytes(out)

    return read


def data_reader(data: bytes) -> Reader:
    """A Reader over bytes already at hand (a command's output)."""
    return lambda offset, size: data[offset : offset + size]


def render_for_viewing(data: bytes, size: int) -> tuple[str, str]:
    """(kind, document): the data as text if it is text, else as a hex dump; with a note when cut."""
    text = looks_like_text(data[:TEXT_LIMIT])
    if text is not None:
        cut = size > TEXT_LIMIT
        return ("text" + (f", first {human_bytes(TEXT_LIMIT)}" if cut else ""), text)
    shown = data[:HEX_LIMIT]
    cut = size > HEX_LIMIT
    return ("hex" + (f", first {human_bytes(HEX_LIMIT)}" if cut else ""), "\n".join(hex_lines(shown)))


def find(lines: list[str], needle: str, row: int, col: int, forward: bool) -> tuple[int, int] | None:
    """Where `needle` (ignoring case) next starts at or after row/col, or (backwards) last
    starts before it; the search wraps around the document."""
    if not needle or not lines:
        return None
    wanted = needle.casefold()
    folded = [line.casefold() for line in lines]
    count = len(lines)
    for step in range(count + 1):
        r = (row + step) % count if forward else (row - step) % count
        line = folded[r]
        if forward:
            at = line.find(wanted, col if step == 0 else 0)
        else:
            at = line.rfind(wanted, 0, col - 1 + len(wanted) if step == 0 else len(line))
        if at >= 0:
            return r, at
    return None


class ViewerScreen(Screen[None]):
    """Shows the file read by `read`; / searches, n and N go to the next and previous match."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", priority=True),
        Binding("q,f10", "leave", "Close", show=False, priority=True),
        Binding("slash", "search", "Search", priority=True),
        Binding("n", "next(True)", "Next", priority=True),
        Binding("N", "next(False)", "Previous", priority=True),
        Binding("ctrl+home,g", "edge(False)", "Top", show=False),
        Binding("ctrl+end,G", "edge(True)", "Bottom"),
    ]

    def __init__(self, title: str, size: int, read: Reader) -> None:
        super().__init__()
        self.title_text = title
        self.file_size = size
        self.read = read
        self.kind = "loading"
        self.needle = ""

    def compose(self) -> ComposeResult:
        yield Static(as_text(f"{self.title_text}  (loading…)"), id="viewer-title")
        yield TextArea("", read_only=True, show_line_numbers=True, id="viewer-text")
        yield Input(placeholder="search (Enter finds, Esc closes)", id="viewer-search")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#viewer-search", Input).display = False
        self.query_one("#viewer-text", TextArea).focus()
        self._load()

    @work(thread=True, exclusive=True, group="viewer")
    def _load(self) -> None:
        try:
            data = self.read(0, TEXT_LIMIT)
        except (VaultError, OSError) as e:
            self.app.call_from_thread(self._show, "error", str(e))
            return
        kind, document = render_for_viewing(data, self.file_size)
        self.app.call_from_thread(self._show, kind, document)

    def _show(self, kind: str, document: str) -> None:
        self.kind = kind
        self.query_one("#viewer-text", TextArea).load_text(document)
        self.query_one("#viewer-title", Static).update(
            as_text(f"{self.title_text}  ({kind}, {human_bytes(self.file_size)})")
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # While the search box is open its keys are text, except Esc, which closes it. The
        # footer asks again while the screen is being dismissed, when its widgets are gone.
        try:
            box = self.query_one("#viewer-search", Input)
        except NoMatches:
            return True
        return not (box.has_focus and action in ("search", "next", "leave", "edge"))

    def action_edge(self, bottom: bool) -> None:
        area = self.query_one("#viewer-text", TextArea)
        area.move_cursor((area.document.line_count - 1, 0) if bottom else (0, 0), center=False)
        area.scroll_cursor_visible()

    def action_leave(self) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        box = self.query_one("#viewer-search", Input)
        if box.display:
            box.display = False
            self.query_one("#viewer-text", TextArea).focus()
            return
        self.dismiss(None)

    def action_search(self) -> None:
        box = self.query_one("#viewer-search", Input)
        box.display = True
        box.value = self.needle
        self.set_focus(box)

    @on(Input.Submitted, "#viewer-search")
    def _search_entered(self, event: Input.Submitted) -> None:
        event.stop()
        self.needle = event.value
        event.input.display = False
        self.query_one("#viewer-text", TextArea).focus()
        self.action_next(True)

    def action_next(self, forward: bool) -> None:
        area = self.query_one("#viewer-text", TextArea)
        # Forward from the end of the current match (or the cursor), backward from its start.
        start, end = sorted((area.selection.start, area.selection.end))
        row, col = end if forward else start
        found = find(area.text.split("\n"), self.needle, row, col, forward)
        if found is None:
            self.notify(f"not found: {self.needle}" if self.needle else "/ searches", timeout=2, markup=False)
            return
        r, c = found
        area.selection = Selection((r, c), (r, c + len(self.needle)))
        area.scroll_cursor_visible(center=True)
