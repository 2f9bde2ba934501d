"""The two linked panes of the main screen: the list widget that draws entries line by line."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.events import Click, Hide
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from vaultsh.tui.entries import (
    ROLE_BAD,
    ROLE_CONF,
    ROLE_DIRIV,
    ROLE_SIDECAR,
    Entry,
)
from vaultsh.vault.display import quote_name, safe_text

# -- display helpers -------------------------------------------------------------------------


def human_size(n: int) -> str:
    """Compact sizes for a narrow column: 999, 1.0K, 12K, 3.4M (powers of 1024)."""
    if n < 1000:
        return str(n)
    value = float(n)
    for unit in "KMGTP":
        value /= 1024
        if value < 9.95:
            return f"{value:.1f}{unit}"
        if value < 999.5:
            return f"{value:.0f}{unit}"
    return f"{value:.0f}E"


def short_time(mtime_ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(mtime_ns / 1e9))


def fit(text: str, width: int) -> str:
    """Cut `text` to `width` cells with an ellipsis, or pad it."""
    if width <= 0:
        return ""
    if cell_len(text) <= width:
        return text + " " * (width - cell_len(text))
    cut = text
    while cut and cell_len(cut) > width - 1:
        cut = cut[:-1]
    return cut + "…" + " " * (width - 1 - cell_len(cut))


# -- the list widget -------------------------------------------------------------------------


class EntryList(ScrollView, can_focus=True):
    """A virtual list of entries drawn line by line, so 100,000 rows cost nothing to show.

    Rows are kept in a plain list; only the visible lines are rendered. A filter narrows the
    visible rows, the cursor follows its entry (not its row number) when rows change, and
    `marked` entries (the linked sidecar and diriv) get their own style.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "first", "First", show=False),  # g goes to a path (MainScreen)
        Binding("end,G", "last", "Last", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "entry-list--cursor",
        "entry-list--dir",
        "entry-list--bad",
        "entry-list--meta",
        "entry-list--marked",
        "entry-list--dim",
        "entry-list--chosen",
    }

    DEFAULT_CSS = """
    EntryList { overflow-x: hidden; }
    """

    class Highlighted(Message):
        """The user moved the cursor to `entry` (not sent for programmatic linked moves)."""

        def __init__(self, entry_list: EntryList, entry: Entry | None, moved: bool = True) -> None:
            super().__init__()
            self.entry_list = entry_list
            self.entry = entry
            self.moved = moved  # False when only the focus arrived

        @property
        def control(self) -> EntryList:
            return self.entry_list

    class Activated(Message):
        """Enter or a double click on an entry."""

        def __init__(self, entry_list: EntryList, entry: Entry) -> None:
            super().__init__()
            self.entry_list = entry_list
            self.entry = entry

        @property
        def control(self) -> EntryList:
            return self.entry_list

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.rows: list[Entry] = []
        self._all: list[Entry] = []
        self._row_of: dict[int, int] | None = {}  # id(entry) -> row, rebuilt lazily
        self._keep: Callable[[Entry], bool] | None = None
        self.cursor = 0
        self.marked: set[int] = set()  # ids of entries shown as linked
        # The other pane's cursor is on something with no counterpart here (the config, a
        # stray file): no row is shown as current, so none looks linked to it.
        self.unlinked = False
        self.chosen: set[int] = set()  # ids of entries the person selected (export, delete)
        self.placeholder = ""  # shown dimmed when there is no row ("(empty directory)")

    # -- content ----------------------------------------------------------------------

    def clear(self) -> None:
        self.rows = []
        self._all = []
        self._row_of = {}
        self.cursor = 0
        self.marked = set()
        self._resized()

    def append(self, entries: list[Entry]) -> None:
        """Add a batch while a directory streams in; the cursor stays on its entry."""
        self._all.extend(entries)
        keep = self._keep
        new = entries if keep is None else [e for e in entries if keep(e)]
        self.rows.extend(new)
        self._row_of = None
        self._resized()

    def replace(self, entries: list[Entry]) -> None:
        """Swap in all entries (sorted), keeping the cursor on the same entry if it is there."""
        current = self.current
        self._all = entries
        self._apply_filter(current)

    def set_filter(self, keep: Callable[[Entry], bool] | None) -> None:
        self._keep = keep
        self._apply_filter(self.current)

    def _apply_filter(self, current: Entry | None) -> None:
        keep = self._keep
        self.rows = list(self._all) if keep is None else [e for e in self._all if keep(e)]
        self._row_of = None
        row = self.row_of(current) if current is not None else None
        self.cursor = row if row is not None else min(self.cursor, max(len(self.rows) - 1, 0))
        self._resized()
        self._scroll_to_cursor()

    @property
    def all_entries(self) -> list[Entry]:
        return self._all

    @property
    def current(self) -> Entry | None:
        if 0 <= self.cursor < len(self.rows):
            return self.rows[self.cursor]
        return None

    def row_of(self, entry: Entry) -> int | None:
        if self._row_of is None:
            self._row_of = {id(e): i for i, e in enumerate(self.rows)}
        return self._row_of.get(id(entry))

    def _resized(self) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, len(self.rows))
        self.refresh()

    # -- cursor -------------------------------------------------------------------------

    def move_to(self, row: int, *, notify: bool = True) -> None:
        if not self.rows:
            return
        self.unlinked = False
        self.cursor = max(0, min(row, len(self.rows) - 1))
        self._scroll_to_cursor()
        self.refresh()
        if notify:
            self.post_message(self.Highlighted(self, self.current))

    def select(self, entry: Entry | None, *, notify: bool = False) -> bool:
        """Put the cursor on `entry` if it is shown; False if it is not (filtered or absent)."""
        row = self.row_of(entry) if entry is not None else None
        if row is None:
            return False
        self.move_to(row, notify=notify)
        return True

    def unlink_cursor(self) -> None:
        """Show no current row until the cursor moves here again."""
        if not self.unlinked:
            self.unlinked = True
            self.refresh()

    def set_placeholder(self, text: str) -> None:
        if text != self.placeholder:
            self.placeholder = text
            self.refresh()

    def set_chosen(self, entries: list[Entry]) -> None:
        self.chosen = {id(e) for e in entries}
        self.refresh()

    def set_marked(self, entries: list[Entry]) -> None:
        self.marked = {id(e) for e in entries}
        self.refresh()

    def _scroll_to_cursor(self) -> None:
        height = self.scrollable_content_region.height
        if height <= 0:
            return
        top = round(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)

    def action_cursor(self, delta: int) -> None:
        self.move_to(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self.move_to(self.cursor + direction * max(1, self.scrollable_content_region.height - 1))

    def action_first(self) -> None:
        self.move_to(0)

    def action_last(self) -> None:
        self.move_to(len(self.rows) - 1)

    def on_focus(self) -> None:
        self.unlinked = False
        self.refresh()
        self.post_message(self.Highlighted(self, self.current, moved=False))

    def on_blur(self) -> None:
        self.refresh()

    def on_click(self, event: Click) -> None:
        row = event.y + round(self.scroll_y)
        if 0 <= row < len(self.rows):
            self.move_to(row)
            if event.chain >= 2 and self.current is not None:
                self.post_message(self.Activated(self, self.current))

    def _on_hide(self, event: Hide) -> None:
        # A relayout can report a pane as hidden for a frame (zero size) while it stays on
        # screen; Widget's handler would then move the focus to the other pane. The panes are
        # never hidden on purpose, so they keep the focus. Textual calls the handler of every
        # class in the MRO, so Widget's is skipped with prevent_default, not by not calling it.
        if self.has_focus and self.display:
            event.prevent_default()

    def on_resize(self) -> None:
        self._resized()
        self._scroll_to_cursor()

    # -- drawing ------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        row = y + round(self.scroll_y)
        base = self.rich_style
        if row >= len(self.rows):
            if row == 0 and self.placeholder:
                dim = base + self.get_component_rich_style("entry-list--dim")
                return Strip([Segment(fit(" " + safe_text(self.placeholder), width), dim)], width)
            return Strip.blank(width, base)
        entry = self.rows[row]
        style = base + self.row_style(entry)
        marker = " "
        if id(entry) in self.marked:
            style += self.get_component_rich_style("entry-list--marked")
            marker = "◆"
        if entry.role == ROLE_BAD:
            marker = "!"
        if id(entry) in self.chosen:
            style += self.get_component_rich_style("entry-list--chosen")
            marker = "*"  # as mc marks selected files: readable without colour
        if row == self.cursor and not self.unlinked:
            cursor_style = self.get_component_rich_style("entry-list--cursor")
            if not self.has_focus:
                cursor_style = Style(bgcolor=cursor_style.bgcolor, dim=False) + Style(bold=False)
            style += cursor_style
            if marker == " ":
                marker = "▶" if self.has_focus else "›"
        text = marker + self.format_row(entry, width - 1)
        return Strip([Segment(fit(text, width), style)], width)

    def row_style(self, entry: Entry) -> Style:
        if entry.role == ROLE_BAD:
            return self.get_component_rich_style("entry-list--bad")
        if entry.role in (ROLE_DIRIV, ROLE_SIDECAR, ROLE_CONF):
            return self.get_component_rich_style("entry-list--meta")
        if entry.is_dir:
            return self.get_component_rich_style("entry-list--dir")
        return Style()

    def format_row(self, entry: Entry, width: int) -> str:
        raise NotImplementedError

    def header(self, width: int) -> str:
        raise NotImplementedError


class PlainList(EntryList):
    """Decrypted names, plain sizes and modification times."""

    def format_row(self, entry: Entry, width: int) -> str:
        name = quote_name(entry.plain_name or entry.cipher_name)
        if entry.is_dir:
            name += "/"
        elif entry.kind == "symlink":
            name += "@"
        size = "<dir>" if entry.is_dir else human_size(entry.plain_size)
        tail = f" {size:>6}  {short_time(entry.mtime_ns)}"
        if width < 30:
            tail = f" {size:>6}"
        return fit(name, width - len(tail)) + tail

    def header(self, width: int) -> str:
        tail = f" {'Size':>6}  {'Modified':<16}" if width >= 31 else f" {'Size':>6}"
        return " " + fit("Name", width - 1 - len(tail)) + tail


_ROLE_TAG = {ROLE_DIRIV: "iv", ROLE_SIDECAR: "name", ROLE_CONF: "conf", ROLE_BAD: "bad"}


class CipherList(EntryList):
    """Names as stored on disk and cipher sizes; also the diriv, sidecars, config and bad names."""

    name_heading = "Name on disk"  # a reverse-mode folder's view is computed, not stored

    def format_row(self, entry: Entry, width: int) -> str:
        name = quote_name(entry.cipher_name) + ("/" if entry.is_dir else "")
        tag = _ROLE_TAG.get(entry.role, "long" if entry.long_name else "")
        size = "<dir>" if entry.is_dir else human_size(entry.cipher_size)
        tail = f" {tag:>4} {size:>6}"
        return fit(name, width - len(tail)) + tail

    def header(self, width: int) -> str:
        tail = f" {'':>4} {'Size':>6}"
        return " " + fit(self.name_heading, width - 1 - len(tail)) + tail
