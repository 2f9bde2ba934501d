"""The info panel: plain previews (text or hex), cipher x-rays (header, blocks, name parts), diagnoses."""

from __future__ import annotations

import io
import stat as stat_mod
from collections.abc import Callable

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.css.query import NoMatches
from textual.widgets import Static

from vaultsh.tui import palette
from vaultsh.tui.entries import Entry
from vaultsh.tui.panes import human_size, short_time
from vaultsh.tui.safety import as_text
from vaultsh.vault.display import quote_name, safe_text
from vaultsh.vault.errors import VaultError
from vaultsh.vault.tree import Tree, TreeNode

PREVIEW_BYTES = 4096
HEX_PREVIEW_BYTES = 512


def _kv(table: Table, key: str, value: str, style: str = "") -> None:
    # Values carry names, link targets and errors that embed them: never raw on the terminal,
    # and never markup (a str cell of a Rich table is read as markup: "[draft] x" lost "[draft]").
    # Made safe here, from the str: a Rich Text would already have dropped a name's controls.
    table.add_row(as_text(key, "bold"), as_text(value, style))


def _table() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    return table


def _mode(mode: int) -> str:
    return f"{stat_mod.filemode(mode)} ({stat_mod.S_IMODE(mode):04o})"


def hex_lines(data: bytes, start: int = 0) -> list[str]:
    """A classic hex dump: offset, 16 bytes in hex, the printable ASCII ones (others as '.')."""
    lines = []
    for off in range(0, len(data), 16):
        chunk = data[off : off + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{start + off:08x}  {hexes:<47}  {text}")
    return lines


def _hex_dump(data: bytes) -> Text:
    return Text("\n".join(hex_lines(data)), style="dim" if not data else "")


def looks_like_text(data: bytes) -> str | None:
    """The data as text if it decodes as UTF-8 without control bytes (a cut last char is fine)."""
    if b"\0" in data:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(data) - 3:
            return None
        text = data[: e.start].decode("utf-8")
    if any(ord(c) < 32 and c not in "\t\n\r\f" for c in text):
        return None
    return text


# -- plain side ------------------------------------------------------------------------------


_KINDS = {"file": "file", "dir": "directory", "symlink": "symbolic link"}


def describe_plain(tree: Tree, directory: TreeNode, entry: Entry) -> RenderableType:
    """What the plain pane's selection is: facts, then a preview of its first bytes."""
    table = _table()
    node = TreeNode(
        _joined(directory.plain, entry.plain_name or ""),
        _joined(directory.cipher_path, entry.cipher_name),
        entry.kind,
    )
    _kv(table, "Path", quote_name("/" + node.plain))
    try:
        st = tree.plain_stat(node)
    except VaultError as e:
        _kv(table, "Error", str(e), palette.style("error", bold=True))
        return table
    _kv(table, "Kind", _KINDS.get(st.kind, "special file"))
    place = tree.cipher_place
    if st.kind == "file":
        human = f" ({human_size(st.size)})" if st.size >= 1000 else ""
        _kv(table, "Size", f"{st.size:,} bytes{human}, {st.cipher_size:,} {place}")
    _kv(table, "Modified", short_time(st.mtime_ns))
    _kv(table, "Mode", _mode(st.mode))
    long_name = " (long name, §6.7)" if entry.long_name else ""
    _kv(table, "On disk" if tree.cipher_files else "In view", quote_name(entry.cipher_name) + long_name)
    parts: list[RenderableType] = [table]
    if st.kind == "symlink":
        try:
            _kv(table, "Target", quote_name(tree.plain_link(node)))
        except VaultError as e:
            _kv(table, "Target", str(e), palette.style("error"))
    elif st.kind == "file":
        parts.append(Text(""))
        parts.append(_preview(tree, node))
    return Group(*parts)


def _joined(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _preview(tree: Tree, node: TreeNode) -> RenderableType:
    try:
        data = tree.plain_head(node, PREVIEW_BYTES)
    except VaultError as e:
        return Text(safe_text(f"Cannot read: {e}"), style=palette.style("error", bold=True))
    return _preview_data(data)


def _preview_data(data: bytes) -> RenderableType:
    if not data:
        return Text("(empty file)", style="dim")
    text = looks_like_text(data)
    if text is not None:
        # A text file may still hold C1 controls or bidi overrides: escaped, line by line.
        lines = text.replace("\r\n", "\n").expandtabs(4).split("\n")
        return Text("\n".join(map(safe_text, lines)), no_wrap=False)
    return Group(Text("binary, first bytes:", style="dim"), _hex_dump(data[:HEX_PREVIEW_BYTES]))


# -- cipher side -----------------------------------------------------------------------------

# How each tone of a fact is drawn: from the theme's colours (see palette).
_TONES: dict[str, Callable[[], str]] = {
    "": lambda: "",
    "error": lambda: palette.style("error"),
    "alarm": lambda: palette.style("error", bold=True),
    "strong": lambda: "bold",
}


def describe_cipher(tree: Tree, directory: TreeNode, entry: Entry) -> RenderableType:
    """The x-ray of a name on the cipher side: what is stored (or served) there and how it is built."""
    parts: list[RenderableType] = []
    for group in tree.xray(directory, entry):
        table = _table()
        for fact in group:
            _kv(table, fact.key, fact.value, _TONES[fact.tone]())
        if parts:
            parts.append(Text(""))
        parts.append(table)
    return Group(*parts)


class InfoPanel(VerticalScroll):
    """The scrolling panel under the panes showing the selection's preview or x-ray."""

    body: RenderableType = ""

    def compose(self) -> ComposeResult:
        yield Static(self.body, id="info-body")

    def show(self, title: str, body: RenderableType) -> None:
        self.border_title = as_text(title)  # a name is never read as markup
        self.body = body
        # A preview worker can finish before the panel is composed or after it is gone (the
        # app closing): the body is kept and drawn when the panel composes.
        try:
            shown = self.query_one("#info-body", Static)
        except NoMatches:
            return
        shown.update(body)
        self.scroll_home(animate=False)

    def plain_text(self, width: int = 120) -> str:
        """What the panel shows, as text (for tests and for copying)."""
        console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
        console.print(self.body)
        return console.export_text()
