"""Loading directories into the panes: streamed from a thread worker, reloaded when they change."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

from rich.text import Text
from textual import work
from textual.worker import get_current_worker

from vaultsh.tui import palette
from vaultsh.tui.browser import BrowserScreen
from vaultsh.tui.entries import (
    ROLE_OBJECT,
    Entry,
    cipher_sort_key,
    listing_digest,
    sort_plain,
)
from vaultsh.tui.inspect import (
    InfoPanel,
)
from vaultsh.tui.messages import DirBatch, DirChanged, DirFailed, DirLoaded
from vaultsh.tui.status import STATUS_PATH_CELLS, shorten_path
from vaultsh.tui.watch import DirWatcher
from vaultsh.vault.display import safe_text
from vaultsh.vault.errors import VaultError

# A directory's entries in batches, given a check whether to stop.
Lister = Callable[[Callable[[], bool]], Iterator[list[Entry]]]


class ListingScreen(BrowserScreen):
    """Lists the shown directory in a worker, batch by batch; auto-refresh swaps a reload in."""

    def __init__(self) -> None:
        super().__init__()
        self.generation = 0  # of the listing under way: older results are dropped
        self.opened = 0  # directories shown so far (a background reload is not one)
        self._select_after_load: str | None = None
        self.watcher: DirWatcher | None = None  # reloads the listing when the directory changes
        self.quiet_generation = -1  # the generation of a background reload (auto-refresh)
        self.listed_at = 0.0  # time.monotonic() when the latest listing started
        self.shown_digest = b""  # listing_digest of the entries in the panes
        self._changed_during_load = False
        self._lister: Lister | None = None  # lists the shown directory (again, to reload it)

    # -- loading directories ------------------------------------------------------------

    def load_dir(self, path: str, select: str | None = None) -> None:
        """Show the plain directory `path`; `select` is a plain name to put the cursor on."""
        listing = self._listing_of(path)
        if listing is None:
            return
        watched, self.cipher_where, lister = listing
        self._watch(watched)  # before the listing starts: see DirWatcher.watch
        self._lister = lister
        self._start_load(path, select)
        self._scan(self.generation, lister)

    def _listing_of(self, path: str) -> tuple[Path, tuple[str, str], Lister] | None:
        """How to list the plain directory `path`: the local directory that changes with it, the
        cipher pane's title, the scan; None if it cannot be listed (said in the log)."""
        session = self.session
        if session is None:
            return None
        tree = session.tree
        try:
            directory = tree.node(path)
            if directory.kind != "dir":
                raise VaultError(f"/{path}: not a directory")
        except VaultError as e:
            self.vapp.log_line(str(e), "error")
            return None
        self.dir_node = directory
        where = "/" + directory.cipher_path
        if tree.cipher_files:  # stored files: shown where they are on disk
            title = "Cipher"
            where = shorten_path(self.vapp.cipherdir_label, STATUS_PATH_CELLS) + where.rstrip("/")
        else:  # computed on each read: shown by their path in the view
            title = "Encrypted view"
        return (
            tree.watch_dir(directory),
            (title, where),
            lambda cancelled: tree.cipher_entries(directory, cancelled=cancelled),
        )

    def _start_load(self, path: str, select: str | None) -> None:
        if path != self.cwd:
            self.selection.clear()  # a selection belongs to one directory
            self.previous_dir = self.cwd
        self.generation += 1
        self.opened += 1
        self.listed_at = time.monotonic()
        self.shown_digest = b""
        self.cipher_by_name = {}
        self._select_after_load = select
        self._moved_while_loading = False
        self.plain.clear()
        self.cipher.clear()
        self._show_selection()
        # What the titles show last: their watchers draw them from everything set above.
        self.dir_loading = True
        self.load_failed = False
        self.partial = False
        self.loaded_rows = 0
        self.cwd = path

    def cancel_listing(self) -> bool:
        """Stop the listing under way, keeping the rows it has shown; False if none runs."""
        if not self.dir_loading:
            return False
        self.app.workers.cancel_group(self, "listing")
        self.generation += 1  # batches already on their way are dropped
        self.dir_loading = False
        self.partial = True
        self.vapp.log_line(
            f"listing of /{self.cwd} cancelled after {self.loaded_rows:,} names (Ctrl-R lists it again)", ""
        )
        self._relink(self.active_list())
        return True

    def _watch(self, directory: Path) -> None:
        if self.watcher is None:  # made with the first listing, so a screen never shown has none
            self.watcher = DirWatcher(self._dir_changed)
        self.watcher.watch(directory)

    def _rescan(self, generation: int) -> None:
        """List the shown directory again under `generation` (nothing is cleared here)."""
        if self._lister is not None:
            self._scan(generation, self._lister)

    def reload_quietly(self) -> None:
        """The auto-refresh: list the shown directory again in the background and swap the
        result in when it is complete, the cursors on the same entries; the panes stay as they
        are meanwhile (no flicker, no "loading…")."""
        if self.watcher is not None:
            self.watcher.settle()
        self.generation += 1
        self.quiet_generation = self.generation
        self.listed_at = time.monotonic()
        self._rescan(self.generation)

    def _dir_changed(self, last_change: float) -> None:
        self.post_message(DirChanged(last_change))  # from the watcher's thread

    def on_dir_changed(self, message: DirChanged) -> None:
        if self.session is None or self.busy:
            return  # a running command reloads the listing when it ends
        if message.last_change < self.listed_at:
            return  # listed since (after a command of our own, say): that listing has it
        if self.dir_loading or self.generation == self.quiet_generation:
            self._changed_during_load = True  # that listing may have missed it: once more after
            return
        self.reload_quietly()

    def _swap_in(self, plain: list[Entry], cipher: list[Entry], digest: bytes) -> None:
        """A background reload's result: replace the rows, keep the cursors and the selection."""
        if digest == self.shown_digest:
            return  # nothing changed that the panes show (a change undone, say)
        self.shown_digest = digest
        on_plain, on_cipher = self.plain.current, self.cipher.current
        # In place: the filter's closures hold this dict.
        self.cipher_by_name.clear()
        self.cipher_by_name.update((e.cipher_name, e) for e in cipher)
        self.plain.replace(plain)
        self.cipher.replace(cipher)
        if on_plain is not None:
            self.plain.select(next((e for e in self.plain.rows if e.plain_name == on_plain.plain_name), None))
        if on_cipher is not None:
            self.cipher.select(self.cipher_by_name.get(on_cipher.cipher_name))
        self.selection.keep_only({e.plain_name for e in plain if e.plain_name is not None})
        self._show_selection()
        self._update_titles()  # the rows changed, the listing's state did not
        self._relink(self.active_list())

    def on_unmount(self) -> None:
        if self.watcher is not None:
            self.watcher.close()

    @work(thread=True, exclusive=True, group="listing")
    def _scan(self, generation: int, batches: Lister) -> None:
        """Stream a directory's entries to the panes; `batches(cancelled)` yields them."""
        worker = get_current_worker()
        everything: list[Entry] = []
        try:
            for batch in batches(lambda: worker.is_cancelled):
                everything.extend(batch)
                self.post_message(DirBatch(generation, batch))
        except VaultError as e:
            self.post_message(DirFailed(generation, str(e)))
            return
        except OSError as e:  # the directory vanished or turned unreadable while listed
            self.post_message(DirFailed(generation, f"/{self.cwd}: cannot list: {e.strerror or e}"))
            return
        if not worker.is_cancelled:
            self._post_loaded(generation, everything)

    def _post_loaded(self, generation: int, everything: list[Entry]) -> None:
        plain = sort_plain([e for e in everything if e.role == ROLE_OBJECT], self.sort_by, self.sort_reverse)
        cipher = sorted(everything, key=cipher_sort_key)
        self.post_message(DirLoaded(generation, plain, cipher, listing_digest(cipher)))

    def on_dir_batch(self, message: DirBatch) -> None:
        if message.generation != self.generation or message.generation == self.quiet_generation:
            return  # stale, or a background reload: swapped in whole once loaded
        first = self.loaded_rows == 0
        for e in message.entries:
            self.cipher_by_name[e.cipher_name] = e
        self.plain.append([e for e in message.entries if e.role == ROLE_OBJECT])
        self.cipher.append(message.entries)
        self.loaded_rows += len(message.entries)
        if first:
            self.update_headers()
            self._relink(self.active_list())

    def on_dir_loaded(self, message: DirLoaded) -> None:
        if message.generation != self.generation:
            return
        if self._changed_during_load:
            self._changed_during_load = False
            self.call_later(self.reload_quietly)
        if message.generation == self.quiet_generation:
            self.quiet_generation = -1
            self._swap_in(message.plain, message.cipher, message.digest)
            return
        self.shown_digest = message.digest
        self.plain.replace(message.plain)
        self.cipher.replace(message.cipher)
        if self.filter_text:
            self._apply_filter()
        wanted = self._select_after_load
        self._select_after_load = None
        if not self._moved_while_loading:
            # Batches arrive in disk order; once sorted, start at the top unless told otherwise.
            self.plain.move_to(0, notify=False)
            self.cipher.move_to(0, notify=False)
        if wanted is not None:
            for e in message.plain:
                if e.plain_name == wanted:
                    self.plain.select(e)
                    break
        self.selection.keep_only({e.plain_name for e in message.plain if e.plain_name is not None})
        self._show_selection()
        self.dir_loading = False  # once the rows are in: its watcher draws the titles from them
        self.update_headers()
        self._relink(self.active_list())

    def on_dir_failed(self, message: DirFailed) -> None:
        if message.generation != self.generation:
            return
        if message.generation == self.quiet_generation:  # the directory went away, say
            self.quiet_generation = -1
            self.shown_digest = b""
            self.plain.clear()
            self.cipher.clear()
            self.cipher_by_name.clear()
            self._update_titles()  # the rows went; the listing's state may stay as it was
        self.dir_loading = False
        self.load_failed = True
        self.vapp.log_line(message.error, "error")
        self.query_one("#info", InfoPanel).show(
            "Error", Text(safe_text(message.error), style=palette.style("error", bold=True))
        )
