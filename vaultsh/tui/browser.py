"""The main screen's base: panes, linked cursors, info panel, titles, filter and selection marks."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from rich.console import Group, RenderableType
from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.reactive import var
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Input, RichLog, Static
from textual.worker import get_current_worker

from vaultsh.service import commands, integrity
from vaultsh.tui import conflict_actions, palette
from vaultsh.tui.completion import CompletingInput, candidates_hint
from vaultsh.tui.entries import (
    ROLE_BAD,
    ROLE_OBJECT,
    ROLE_SIDECAR,
    Entry,
    is_hidden,
    link_targets,
    sort_plain,
)
from vaultsh.tui.inspect import InfoPanel, describe_cipher, describe_plain
from vaultsh.tui.layout import lower_height, too_small
from vaultsh.tui.panes import CipherList, EntryList, PlainList
from vaultsh.tui.safety import as_text, cut_middle
from vaultsh.tui.screens import (
    TransferBar,
)
from vaultsh.tui.selection import Selection
from vaultsh.tui.status import StatusBar
from vaultsh.vault.display import safe_text
from vaultsh.vault.errors import VaultError
from vaultsh.vault.tree import TreeNode

if TYPE_CHECKING:
    from vaultsh.service.mounts import MountInfo
    from vaultsh.tui.app import VaultApp


LOG_KEEP = 2000  # lines of output kept
LOG_MIN_WIDTH = 20  # log lines wrap at the panel's width, down to this many cells


class BrowserScreen(Screen[None]):
    """The two panes with linked cursors, the info panel, the log and the bottom lines; the
    state every part of the main screen shares. Listing, navigation and actions build on it."""

    # The state that is shown (pane titles, status bar, footer keys) or shared by the app and
    # the screen is held here, in Textual reactives of the main screen, and nowhere else. The
    # main screen rather than the app: every widget that shows this state is one of its own,
    # so its watchers reach them directly, while the app's other screens (dialogs, viewer,
    # fsck) show none of it. A watcher redraws what depends on a value when the value changes;
    # callers only set it. `var`: nothing to repaint on the screen itself; init=False: nothing
    # is drawn before the screen is mounted and a folder is open.
    # The open vault or reverse-mode folder (None while locked): the app opens it, the
    # commands run on it.
    session: var[commands.Session | None] = var(None, init=False)
    # The plain path of the shown directory ("" the root). always_update: listing it again
    # also puts the session back in it.
    cwd: var[str] = var("", init=False, always_update=True)
    # The listing of the shown directory. Not Widget.loading: set on a screen, that replaces
    # the whole screen with a loading indicator, and the panes fill while names stream in.
    dir_loading: var[bool] = var(False, init=False)  # names are streaming in
    loaded_rows: var[int] = var(0, init=False)  # names that came so far
    partial: var[bool] = var(False, init=False)  # cancelled (Ctrl-C): only the names that came
    load_failed: var[bool] = var(False, init=False)  # failed (its error is in the log)
    selected: var[int] = var(0, init=False)  # how many names `selection` holds
    # How the plain pane shows the listing (its subtitle says so); the watchers apply them.
    filter_text: var[str] = var("", init=False)  # names containing this, typed after /
    sort_by: var[str] = var("name", init=False)  # one of SORT_FIELDS
    sort_reverse: var[bool] = var(False, init=False)
    show_hidden: var[bool] = var(True, init=False)  # names starting with "." (`.` toggles)
    busy: var[bool] = var(False, init=False)  # a command runs in the worker
    # This vault's mount (None: not mounted), as the app's periodic query last found it.
    # always_update: each answer redraws the status bar, whose mount counters change while the
    # record stays, and which also shows a config rewritten meanwhile (recover, passwd).
    mount_info: var[MountInfo | None] = var(None, init=False, always_update=True)

    def __init__(self) -> None:
        super().__init__()
        self.dir_node: TreeNode | None = None  # the shown directory, known by both its paths
        self.cipher_where: tuple[str, str] | None = None  # the cipher pane's name and directory
        self.cipher_by_name: dict[str, Entry] = {}
        self.search_text = ""  # what f found last; n and N find it again
        self.input_mode = "command"  # what the bottom input is for: "command" or "filter"
        self._moved_while_loading = False  # the cursor was moved by hand during a load
        self.active_side = "plain"
        self.selection = Selection()
        # Bookmarks (letter -> plain dir) live only as long as the session: a list of decrypted
        # directory names saved in the clear would give away what the vault hides.
        self.bookmarks: dict[str, str] = {}
        self.previous_dir: str | None = None  # where ' ' goes back to

    def compose(self) -> ComposeResult:
        with Horizontal(id="panes"):
            with Vertical(id="plain-pane", classes="pane"):
                yield Static("", id="plain-header", classes="pane-header")
                yield PlainList(id="plain")
            with Vertical(id="cipher-pane", classes="pane"):
                yield Static("", id="cipher-header", classes="pane-header")
                yield CipherList(id="cipher")
        with Horizontal(id="lower"):
            yield InfoPanel(id="info")
            # min_width: RichLog renders at least 78 cells wide and crops, which cut long lines.
            yield RichLog(id="log", wrap=True, markup=False, max_lines=LOG_KEEP, min_width=LOG_MIN_WIDTH)
        yield TransferBar(id="transfer")
        yield CompletingInput(
            id="cmdline",
            placeholder="command (help lists them)",
            completer=self._complete_input,
            on_candidates=lambda found: self.vapp.log_line(candidates_hint(found), ""),
        )
        yield StatusBar("", id="status")
        yield Static("", id="too-small")
        yield Footer(compact=True)  # every key fits on a 120-column terminal

    def on_mount(self) -> None:
        self.query_one("#transfer", TransferBar).display = False
        self.query_one("#cmdline", Input).display = False
        self.query_one("#plain-pane").border_title = "Plain"
        self.query_one("#cipher-pane").border_title = "Cipher"
        self.query_one("#info", InfoPanel).border_title = "Info"
        log = self.query_one("#log", RichLog)
        log.border_title = "Log"
        log.can_focus = False  # Tab moves between the panes only
        self.query_one("#info", InfoPanel).can_focus = False
        # Focus once laid out: a zero-size widget gets a Hide event, which moves the focus on.
        self.call_after_refresh(self.focus_active)
        self.vapp.start()

    def _complete_input(self, before: str) -> tuple[str, list[str]]:
        """Tab in the bottom input: a filter completes to names here, a command line as the
        shell completes it (command names, decrypted names, local paths)."""
        if self.input_mode in ("filter", "search"):
            needle = before.casefold()
            names = [e.plain_name for e in self.plain.all_entries if e.plain_name is not None]
            return before, sorted(n for n in names if n.casefold().startswith(needle))
        session = self.session
        if session is None:
            return before, []
        if self.input_mode == "jump":  # a path alone: it completes as ls's argument does
            return commands.current_word(before), commands.complete(session, "ls " + before)
        return commands.current_word(before), commands.complete(session, before)

    @property
    def plain(self) -> PlainList:
        return self.query_one("#plain", PlainList)

    @property
    def cipher(self) -> CipherList:
        return self.query_one("#cipher", CipherList)

    @property
    def vapp(self) -> VaultApp:
        """The app with its session; this screen is only ever shown by a VaultApp."""
        return cast("VaultApp", self.app)

    @property
    def writable(self) -> bool:
        """Whether the open folder changes through the panes: a vault, not a reverse-mode view
        (while locked, nothing is open to refuse a change)."""
        return self.session is None or self.session.tree.writable

    @property
    def cipher_stored(self) -> bool:
        """Whether the cipher pane shows stored files (a vault's, with conflict copies), not a
        view computed on each read (a reverse-mode folder's)."""
        return self.session is None or self.session.tree.cipher_files

    @property
    def exports(self) -> str:
        """What `e` writes out: "plain" files (a vault) or the "cipher" view (a reverse-mode folder)."""
        return "plain" if self.session is None else self.session.tree.exports

    def active_list(self) -> EntryList:
        """The pane the person works in: changed by Tab and by moving in a pane, not by relayouts."""
        return self.cipher if self.active_side == "cipher" else self.plain

    def focus_active(self) -> None:
        self.set_focus(self.active_list())  # at once: the next queued key goes to the pane

    def on_resize(self, event: events.Resize) -> None:
        notice = too_small(event.size)
        self.set_class(notice is not None, "too-small")
        self.query_one("#too-small", Static).update(as_text(notice or ""))
        self.query_one("#lower").styles.height = lower_height(event.size.height)
        self.call_after_refresh(self.update_headers)
        self.call_after_refresh(self._update_titles)
        self.call_after_refresh(self.update_status)

    def watch_session(self) -> None:
        if not self.cipher_stored:
            self.cipher.name_heading = "Name in the encrypted view"  # computed, not stored
        self.update_status()
        self.refresh_bindings()  # the footer's keys depend on the mode

    def watch_cwd(self, cwd: str) -> None:
        if self.session is not None:
            self.session.cwd = cwd  # commands take a relative path in the shown directory
        self._update_titles()

    # The pane titles show where the listing is: each change redraws them.
    def _titles_changed(self) -> None:
        self._update_titles()

    watch_dir_loading = watch_loaded_rows = watch_partial = _titles_changed
    watch_load_failed = watch_selected = _titles_changed

    def watch_filter_text(self) -> None:
        self._apply_filter()

    def watch_show_hidden(self) -> None:
        self._apply_filter()

    def watch_sort_by(self) -> None:
        self._resort()

    def watch_sort_reverse(self) -> None:
        self._resort()

    def watch_busy(self) -> None:
        self.update_status()

    def watch_mount_info(self, before: MountInfo | None, info: MountInfo | None) -> None:
        if info is not None and not info.alive and (before is None or before.alive):
            self.vapp.log_line(
                f"the mount at {info.mountpoint} is stale: its worker is gone "
                "(killed or crashed); press u to clear it",
                "error",
            )
        if _alive(before) != _alive(info):
            self.refresh_bindings()  # Unmount and Mount come and go with the mount
        self.update_status()

    def update_status(self) -> None:
        """Redraw the status bar: the vault, its format, the mount, whether a command runs."""
        try:
            bar = self.query_one("#status", StatusBar)
        except NoMatches:  # not composed yet, or a late worker result after the screen closed
            return
        vapp = self.vapp
        bar.show(vapp.cipherdir_label, self.session, self.mount_info, busy=self.busy)

    def update_headers(self) -> None:
        for lst, header_id in ((self.plain, "#plain-header"), (self.cipher, "#cipher-header")):
            width = lst.scrollable_content_region.width
            if width > 0:
                self.query_one(header_id, Static).update(as_text(lst.header(width)))

    def _update_titles(self) -> None:
        if self.session is None:
            return  # still locked: nothing is listed yet, so nothing to say about it
        plain_pane = self.query_one("#plain-pane")
        cipher_pane = self.query_one("#cipher-pane")
        plain_pane.border_title = _pane_title(plain_pane, "Plain", f"/{self.cwd}")
        if self.cipher_where is not None:
            cipher_pane.border_title = _pane_title(cipher_pane, *self.cipher_where)
        shown_plain = len(self.plain.rows)
        if self.dir_loading:
            plain_pane.border_subtitle = as_text(f"loading… {self.loaded_rows:,} names")
            cipher_pane.border_subtitle = as_text(f"loading… {self.loaded_rows:,}")
            self.plain.set_placeholder("loading…" if not self.loaded_rows else "")
            self.cipher.set_placeholder("")
            return
        bad = sum(1 for e in self.cipher.all_entries if e.role == "bad")
        if shown_plain:
            self.plain.set_placeholder("")
        elif self.load_failed:
            self.plain.set_placeholder("(cannot list this directory: see the log)")
        elif self.filter_text and self.plain.all_entries:
            self.plain.set_placeholder(f"(no name contains “{self.filter_text}”: Esc clears the filter)")
        elif bad:
            self.plain.set_placeholder("(no name here decrypts: see the cipher pane)")
        else:
            self.plain.set_placeholder("(empty directory)")
        self.cipher.set_placeholder("" if self.cipher.rows or self.load_failed else "(nothing here)")
        flt = f"  filter: {self.filter_text}" if self.filter_text else ""
        if self.selected:
            flt += f"  {self.selected} selected"
        if self.sort_by != "name" or self.sort_reverse:
            flt += f"  by {self.sort_by}{' ↓' if self.sort_reverse else ''}"
        if not self.show_hidden:
            flt += "  .hidden"
        if self.partial:
            flt += "  partial: Ctrl-R lists all"
        # As Text: the filter is typed text ("[b" is no markup).
        count = f"{shown_plain:,} {'entry' if shown_plain == 1 else 'entries'}"
        plain_pane.border_subtitle = as_text(count + flt)
        where = "on disk" if self.cipher_stored else "in the view"
        cipher_pane.border_subtitle = as_text(
            f"{len(self.cipher.all_entries):,} {where}" + (f", {bad} undecryptable" if bad else "")
        )

    # -- linked cursors and the info panel -------------------------------------------------

    def on_entry_list_highlighted(self, message: EntryList.Highlighted) -> None:
        source = message.entry_list
        if message.entry is not source.current:
            return  # stale: the rows changed (a batch, a sort, a filter) since it was sent
        if message.moved:
            self.active_side = "cipher" if source is self.cipher else "plain"
            if self.dir_loading:
                self._moved_while_loading = True
        self._relink(source)

    def _relink(self, source: EntryList) -> None:
        """Move the other pane's cursor to the same object and mark what belongs with it."""
        entry = source.current
        if entry is None:
            self.query_one("#info", InfoPanel).show("Info", Text("(empty directory)", style="dim"))
            return
        if source is self.plain:
            self.cipher.select(entry)
            self.cipher.set_marked(link_targets(entry, self.cipher_by_name))
        else:
            target = entry
            if entry.role == ROLE_SIDECAR and entry.owner_name is not None:
                target = self.cipher_by_name.get(entry.owner_name, entry)
            if target.role == ROLE_OBJECT:
                self.plain.select(target)
            else:
                self.plain.unlink_cursor()
            marks = link_targets(target, self.cipher_by_name) if target.role == ROLE_OBJECT else []
            if target is not entry:
                marks.append(target)
            self.cipher.set_marked(marks)
        self._inspect(source is self.plain, entry)

    def _inspect(self, plain_side: bool, entry: Entry) -> None:
        session, directory = self.session, self.dir_node
        if session is None or directory is None:
            return
        self._describe(plain_side, session, directory, entry)

    def _child(self, name: str) -> str:
        return f"{self.cwd}/{name}" if self.cwd else name

    def _absolute(self, name: str) -> str:
        """`name` in the shown directory as an absolute vault path: commands resolve a relative
        path against the session's directory, which already is the shown one."""
        return "/" + self._child(name)

    @work(thread=True, exclusive=True, group="info")
    def _describe(
        self, plain_side: bool, session: commands.Session, directory: TreeNode, entry: Entry
    ) -> None:
        """The preview (plain side) or x-ray (cipher side) of `entry` of the shown `directory`."""
        tree = session.tree
        if plain_side:
            title = f"Preview  {entry.plain_name}"
            body = _described(lambda: describe_plain(tree, directory, entry))
        else:
            title = f"X-ray  {entry.cipher_name}"
            body = _described(lambda: describe_cipher(tree, directory, entry))
            if entry.role == ROLE_BAD and not get_current_worker().is_cancelled:
                # Only stored cipher files have names that do not decrypt (a sync tool's copy).
                body = Group(body, self._comparison(session, directory.plain, entry))
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self.query_one("#info", InfoPanel).show, title, body)

    def _comparison(self, session: commands.Session, plain_dir: str, entry: Entry) -> RenderableType:
        """For a conflict copy: both sides side by side; nothing for another undecryptable name."""
        vault = session.vault_for("conflicts")
        try:
            copy = integrity.conflict_copy(vault, plain_dir, entry.cipher_name)
        except (VaultError, OSError):
            return Text("")
        try:
            both = integrity.sides(vault, copy)
        except (VaultError, OSError) as e:
            return Text(safe_text(f"Compare: {e}"))
        keys = Text("e: export the copy   r: adopt it under a plain name   d: delete it", style="dim")
        return Group(
            Text("\nCompared with the original", style="bold"),
            conflict_actions.compare_view(copy, both),
            keys,
        )

    def _resort(self) -> None:
        self.plain.replace(sort_plain(self.plain.all_entries, self.sort_by, self.sort_reverse))
        self._update_titles()

    def _apply_filter(self) -> None:
        needle = self.filter_text.casefold()
        hide = not self.show_hidden
        if not needle and not hide:
            self.plain.set_filter(None)
            self.cipher.set_filter(None)
        else:
            matches: Callable[[Entry], bool] = lambda e: (  # noqa: E731
                e.plain_name is not None and needle in e.plain_name.casefold() and not (hide and is_hidden(e))
            )
            owners = self.cipher_by_name

            def cipher_keep(e: Entry) -> bool:
                if e.role == ROLE_SIDECAR and e.owner_name in owners:
                    return matches(owners[e.owner_name])
                return e.role != ROLE_OBJECT or matches(e)

            self.plain.set_filter(matches)
            self.cipher.set_filter(cipher_keep)
        self._update_titles()
        self._relink(self.plain)

    # -- actions through the command registry ---------------------------------------------

    def _selected_plain(self) -> str | None:
        entry = self.active_list().current
        if entry is None or entry.role != ROLE_OBJECT or entry.plain_name is None:
            self.vapp.log_line(
                "select a vault entry first (undecryptable entries have no plain path)", "error"
            )
            return None
        return self._child(entry.plain_name)

    def _ask(self, screen: Screen[Any], then: Callable[[Any], None]) -> None:
        """Push a dialog; when it closes, the pane that was active gets the focus back first."""

        def answered(result: Any) -> None:
            self.focus_active()
            then(result)

        self.app.push_screen(screen, answered)

    def _show_selection(self) -> None:
        """Mark the selected rows and count them (after the selection or the rows changed)."""
        names = self.selection.names
        self.plain.set_chosen([e for e in self.plain.all_entries if e.plain_name in names])
        self.selected = len(names)


def _alive(info: MountInfo | None) -> bool | None:
    """Whether a mount serves (None: there is no mount)."""
    return None if info is None else info.alive


def _pane_title(pane: Widget, name: str, where: str) -> Text:
    """A pane's title with its directory, cut in the middle so the deepest name stays in view
    (Textual cuts a long title at its end)."""
    # The two panes share the width; during a relayout a pane can report a zero size.
    width = pane.size.width or pane.screen.size.width // 2
    room = width - len(name) - 8  # corners, the title's padding, the gap after the name
    where = safe_text(where)
    # As Text: a directory named like Rich markup ("[link=…]") stays a name.
    return as_text(f"{name}  {cut_middle(where, room) if width else where}")


def _described(describe: Callable[[], RenderableType]) -> RenderableType:
    """The info panel's body, or the error that kept it from being made (the entry changed
    on disk since the listing, say): shown in the panel, never a traceback."""
    try:
        return describe()
    except (VaultError, OSError) as e:
        return Text(safe_text(str(e)), style=palette.style("error", bold=True))
