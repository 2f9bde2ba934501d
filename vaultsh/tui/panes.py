"""The two linked panes of the main screen: entries, the streaming directory scan, the list widget."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TypeVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.events import Click, Hide
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from vaultsh.vault.config import CONF_NAME
from vaultsh.vault.display import quote_name, safe_text
from vaultsh.vault.errors import VaultError
from vaultsh.vault.names import DIRIV_NAME, LONGNAME_SUFFIX, is_long_name, is_name_file
from vaultsh.vault.reverse import ReverseEntry, ReverseView
from vaultsh.vault.vault import Vault, dirent_kind

# What an entry on disk is, from the vault's point of view.
ROLE_OBJECT = "object"  # a file, dir or symlink with a decryptable name
ROLE_BAD = "bad"  # on disk but not a valid vault object: conflict copy, corrupt name, stray file
ROLE_DIRIV = "diriv"  # the directory's name IV (§6.5)
ROLE_SIDECAR = "sidecar"  # `<long name>.name`, holding the full encrypted name (§6.7)
ROLE_CONF = "conf"  # gocryptfs.conf in the root (§3.1), or the backup a password change keeps
CONF_BACKUP_NAME = CONF_NAME + ".bak"  # the previous config, kept by `passwd` (§3.1)

FIRST_BATCH = 200  # rows the panes get before any other work: the screen fills at once
BATCH = 2000  # later batches: big enough that messages stay few, small enough to stay smooth


@dataclass(eq=False, slots=True)
class Entry:
    """One name on disk in the current cipher directory, shared by both panes (linked cursors)."""

    cipher_name: str
    kind: str  # "file", "dir", "symlink" or "other"
    role: str
    plain_name: str | None = None  # set for ROLE_OBJECT
    error: str | None = None  # why a ROLE_BAD entry is not a vault object
    cipher_size: int = 0
    plain_size: int = 0
    mtime_ns: int = 0
    view_entry: ReverseEntry | None = None  # reverse mode: the encrypted view's entry shown here

    @property
    def is_dir(self) -> bool:
        return self.kind == "dir"

    @property
    def long_name(self) -> bool:
        return self.role == ROLE_OBJECT and is_long_name(self.cipher_name)

    @property
    def sidecar_name(self) -> str | None:
        """The `.name` file of a hashed long name (§6.7)."""
        return self.cipher_name + LONGNAME_SUFFIX if self.long_name else None

    @property
    def owner_name(self) -> str | None:
        """For a `.name` sidecar: the cipher name of the object it names."""
        if self.role != ROLE_SIDECAR:
            return None
        return self.cipher_name[: -len(LONGNAME_SUFFIX)]


def plain_sort_key(entry: Entry) -> tuple[bool, str, str]:
    """Directories first, then by name ignoring case, as file managers list."""
    name = entry.plain_name or entry.cipher_name
    return (not entry.is_dir, name.casefold(), name)


SORT_FIELDS = ("name", "size", "mtime")  # what `s` cycles through


def sort_plain(entries: list[Entry], by: str = "name", reverse: bool = False) -> list[Entry]:
    """The plain pane's order: directories first, then by name, size or modification time
    (ties by name); `reverse` turns the order within each group around."""
    by_name = sorted(entries, key=plain_sort_key)
    if by == "size":
        by_name.sort(key=lambda e: e.plain_size)
    elif by == "mtime":
        by_name.sort(key=lambda e: e.mtime_ns)
    if reverse:
        by_name.reverse()
    return sorted(by_name, key=lambda e: not e.is_dir)  # stable: each group keeps its order


def is_hidden(entry: Entry) -> bool:
    return (entry.plain_name or "").startswith(".")


_ROLE_ORDER = {ROLE_CONF: 0, ROLE_DIRIV: 1, ROLE_BAD: 2, ROLE_OBJECT: 3, ROLE_SIDECAR: 3}


def cipher_sort_key(entry: Entry) -> tuple[int, str]:
    """Config and diriv on top, then problems, then objects with their sidecars (by disk name)."""
    return (_ROLE_ORDER[entry.role], entry.cipher_name)


def listing_digest(cipher_sorted: list[Entry]) -> bytes:
    """What the panes show of a listing (names, kinds, sizes, times), as a short digest: made
    beside the listing, so telling an unchanged reload from a changed one is a compare of bytes."""
    h = hashlib.blake2b(digest_size=16)
    for e in cipher_sorted:
        h.update(
            f"{e.cipher_name}\0{e.kind}\0{e.cipher_size}\0{e.mtime_ns}\n".encode("utf-8", "surrogateescape")
        )
    return h.digest()


def _stat_entry(entry: Entry, dirent: os.DirEntry[str], cdir: Path, vault: Vault) -> None:
    try:
        st = dirent.stat(follow_symlinks=False)
    except OSError:
        return
    entry.cipher_size = st.st_size
    entry.mtime_ns = st.st_mtime_ns
    if entry.kind == "file":
        entry.plain_size = vault.content.cipher_to_plain_size(st.st_size)
    elif entry.kind == "symlink":  # its size is the target's length, as lstat on a mount says
        with contextlib.suppress(VaultError, OSError):
            entry.plain_size = len(os.fsencode(vault.readlink_cipher(cdir / dirent.name, dirent.name)))


_T = TypeVar("_T")


def _chunks(items: list[_T], first: int, batch: int, cancelled: Callable[[], bool]) -> Iterator[list[_T]]:
    """A small first chunk (drawn at once), then bigger ones; stops when cancelled."""
    start, size = 0, first
    while start < len(items):
        if cancelled():
            return
        yield items[start : start + size]
        start += size
        size = batch


def scan_cipher_dir(
    vault: Vault,
    cdir: Path,
    *,
    first_batch: int = FIRST_BATCH,
    batch: int = BATCH,
    cancelled: Callable[[], bool] = lambda: False,
) -> Iterator[list[Entry]]:
    """Every name in a cipher directory, classified and decrypted, in batches (for a thread).

    Unlike `Vault.list_cipher_dir`, which answers "what is in the plain directory", this shows
    everything on disk: the diriv, long-name sidecars and the config are entries of the cipher
    pane, and names that do not decrypt are kept with the reason. Names are decrypted a batch
    at a time with `NameCodec.decrypt_many`, so the first rows are ready long before a huge
    directory is done. Raises VaultError if the directory cannot be read.
    """
    # Through a descriptor opened without following links, kept open while the entries are
    # looked at: their lstat is relative to it, so a directory swapped for a symlink is never
    # listed through.
    try:
        dfd = vault.dirs.open_dir(cdir)
    except OSError as e:
        raise VaultError(f"{cdir}: cannot list: {e.strerror or e}") from None
    try:
        try:
            with os.scandir(dfd) as it:
                dirents = sorted(it, key=lambda d: d.name)
        except OSError as e:
            raise VaultError(f"{cdir}: cannot list: {e.strerror or e}") from None
        yield from _scan_entries(vault, cdir, dirents, first_batch, batch, cancelled)
    finally:
        os.close(dfd)


def _scan_entries(
    vault: Vault,
    cdir: Path,
    dirents: list[os.DirEntry[str]],
    first_batch: int,
    batch: int,
    cancelled: Callable[[], bool],
) -> Iterator[list[Entry]]:
    options = vault.options
    is_root = cdir == vault.cipherdir
    iv: bytes | None = None
    iv_error: str | None = None
    if not options.plaintext_names:
        try:
            iv = vault.dir_iv(cdir)
        except VaultError as e:
            iv_error = str(e)  # every name here is then undecryptable: say why on each
    for chunk in _chunks(dirents, first_batch, batch, cancelled):
        out: list[Entry] = []
        pending: list[tuple[Entry, str]] = []  # (entry, full encrypted name) for decrypt_many
        for d in chunk:
            name = d.name
            entry = Entry(name, dirent_kind(d), ROLE_OBJECT)
            _stat_entry(entry, d, cdir, vault)
            out.append(entry)
            if is_root and name in (CONF_NAME, CONF_BACKUP_NAME):
                entry.role = ROLE_CONF
            elif options.plaintext_names:
                entry.plain_name = name
            elif name == DIRIV_NAME and options.diriv:
                entry.role = ROLE_DIRIV
            elif is_name_file(name):
                entry.role = ROLE_SIDECAR
            elif iv is None:
                entry.role, entry.error = ROLE_BAD, iv_error
            elif is_long_name(name):
                try:
                    entry.plain_name = vault.decrypt_entry(cdir, name)
                except VaultError as e:
                    entry.role, entry.error = ROLE_BAD, str(e)
            else:
                pending.append((entry, name))
        if pending and iv is not None:
            results = vault.names.decrypt_many([n for _, n in pending], iv)
            for (entry, _), res in zip(pending, results, strict=True):
                if isinstance(res, bytes):
                    entry.plain_name = res.decode("utf-8", "surrogateescape")
                else:
                    entry.role, entry.error = ROLE_BAD, str(res)
        yield out


def scan_view_dir(
    view: ReverseView,
    cipher_dir: str,
    plain_dir: str,
    *,
    first_batch: int = FIRST_BATCH,
    batch: int = BATCH,
    cancelled: Callable[[], bool] = lambda: False,
) -> Iterator[list[Entry]]:
    """Every entry of one directory of a reverse-mode folder's encrypted view, in batches.

    The names come from `ReverseView.listdir`, so the cipher pane shows exactly what a reverse
    mount shows: encrypted names, the derived gocryptfs.diriv, the virtual `.name` files of
    long names and, in the root, the config as gocryptfs.conf (§9.3). The plain pane shows the
    real objects among them. Raises VaultError if the plain directory cannot be read.
    """
    try:
        found = view.listdir(cipher_dir, plain_dir)
    except OSError as e:
        where = "/" + plain_dir
        raise VaultError(f"{where}: cannot list: {e.strerror or e}") from None
    found.sort(key=lambda e: e.cipher_name)
    for chunk in _chunks(found, first_batch, batch, cancelled):
        yield [_view_row(view, e) for e in chunk]


def _view_row(view: ReverseView, ve: ReverseEntry) -> Entry:
    if ve.data is not None:
        if ve.stat_from is None:
            role = ROLE_CONF
        elif ve.cipher_name == DIRIV_NAME:
            role = ROLE_DIRIV
        else:
            role = ROLE_SIDECAR
        entry = Entry(ve.cipher_name, "file", role, cipher_size=len(ve.data), view_entry=ve)
        with contextlib.suppress(OSError, VaultError):
            entry.mtime_ns = view.stat(ve).mtime_ns
        return entry
    assert ve.plain is not None
    entry = Entry(ve.cipher_name, ve.kind, ROLE_OBJECT, plain_name=ve.plain.rpartition("/")[2], view_entry=ve)
    with contextlib.suppress(OSError):  # gone since the listing: shown with what is known
        st = view.lstat_plain(ve.plain)
        entry.mtime_ns = st.st_mtime_ns
        entry.plain_size = entry.cipher_size = st.st_size
        if ve.kind == "file":
            entry.cipher_size = view.content.plain_to_cipher_size(st.st_size)
        elif ve.kind == "symlink":
            entry.cipher_size = view.cipher_size(ve)
    return entry


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


def link_targets(entry: Entry, cipher_by_name: dict[str, Entry]) -> list[Entry]:
    """Cipher entries to mark beside a plain entry's own cipher file: its sidecar and the diriv."""
    out: list[Entry] = []
    sidecar = entry.sidecar_name
    if sidecar is not None and sidecar in cipher_by_name:
        out.append(cipher_by_name[sidecar])
    if DIRIV_NAME in cipher_by_name and cipher_by_name[DIRIV_NAME].role == ROLE_DIRIV:
        out.append(cipher_by_name[DIRIV_NAME])
    return out
