"""The main screen: its key bindings, help, and which keys apply in the current mode."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import Input

from vaultsh.service import registry
from vaultsh.tui.external import ExternalPrograms
from vaultsh.tui.file_actions import FileActions
from vaultsh.tui.navigation import NavigatingScreen
from vaultsh.tui.screens import (
    HelpScreen,
    describe_bindings,
)
from vaultsh.tui.vault_actions import VaultActions

HELP_INTRO = (
    "Left: the plain tree (decrypted names). Right: the cipher tree (names on disk). Moving in "
    "one pane selects the same object in the other; its long-name .name sidecar and the "
    "directory's gocryptfs.diriv are marked ◆. Entries marked ! cannot be decrypted."
)
HELP_INTRO_REVERSE = (
    "A reverse-mode folder. Left: its plain files, the real ones. Right: the encrypted view a "
    "reverse mount shows (encrypted names, gocryptfs.conf, derived gocryptfs.diriv, long-name "
    ".name files), computed on the fly. Moving in one pane selects the same object in the "
    "other. The view is read-only: m mounts it, e writes it out (a backup); change the plain "
    "files themselves."
)
# The registry's command each key runs (action -> command), where that command may not apply
# to the open folder (see registry.why_not_here): there the key leaves the footer and the
# help, and pressing it says why. An action with arguments is written as in its binding.
# Editing in $EDITOR saves the file back as `import` writes it, but is refused as "edit".
KEY_COMMANDS = {
    "import": "import",
    "mkdir": "mkdir",
    "delete": "rm",
    "rename": "mv",
    "external('EDITOR')": "import",
    "fsck": "fsck",
}
KEY_NAMES = {"external('EDITOR')": "edit"}
REVERSE_TOOLTIPS = {
    "export": "write the encrypted view of the selection to a local path (a backup)",
    "mount": "mount the encrypted view read-only (asks the mountpoint)",
}


class MainScreen(NavigatingScreen, FileActions, ExternalPrograms, VaultActions):
    """Plain pane, cipher pane, info panel, log, command line and status bar."""

    # Help and Quit come first: the footer shows keys in this order and cuts what does not fit.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1,question_mark", "help", "Help", tooltip="this help"),
        Binding("f10,q", "quit_app", "Quit", tooltip="quit (asks to unmount if mounted)"),
        Binding("tab", "switch_pane", "Pane", tooltip="switch between the plain and cipher pane"),
        Binding("enter,l,right", "open", "Open", tooltip="open a directory / preview a file"),
        Binding("backspace,h,left", "up", "Up", tooltip="go to the parent directory"),
        Binding("slash", "filter", "Filter", tooltip="filter by plain name as you type (Esc clears)"),
        Binding(
            "g",
            "jump",
            "Go to",
            show=False,
            tooltip="go to a vault path (Tab completes; a file: its directory)",
        ),
        Binding(
            "b",
            "bookmark",
            "Mark",
            show=False,
            tooltip="bookmark this directory under a letter (this session)",
        ),
        Binding(
            "apostrophe",
            "goto_bookmark",
            "Marks",
            show=False,
            tooltip="go to a bookmark; ' again: back where you were",
        ),
        Binding("f", "search", "Find", show=False, tooltip="find a name as you type; n / N: next / previous"),
        Binding("n", "search_next(True)", "Next", show=False, tooltip="next name found"),
        Binding("N", "search_next(False)", "Previous", show=False, tooltip="previous name found"),
        Binding("f5,e", "export", "Export", tooltip="export (decrypt) the selection to a local path"),
        Binding("f6,i", "import", "Import", tooltip="import (encrypt) a local file or tree here"),
        Binding("f7,M", "mkdir", "Mkdir", tooltip="make a directory"),
        Binding("f8,d", "delete", "Delete", tooltip="delete the selection (asks first)"),
        Binding("r", "rename", "Rename", tooltip="rename or move the selection"),
        Binding(
            "o", "external('PAGER')", "Pager", show=False, tooltip="read the file in $PAGER (a private copy)"
        ),
        Binding(
            "E",
            "external('EDITOR')",
            "Edit",
            show=False,
            tooltip="edit the file in $EDITOR (a private copy, saved back after asking)",
        ),
        Binding(
            "space,insert",
            "toggle_select",
            "Select",
            show=False,
            tooltip="select or unselect the entry; export and delete then act on all selected",
        ),
        Binding(
            "v", "select_range", "Range", show=False, tooltip="select from the last selected entry to here"
        ),
        Binding("asterisk", "invert_selection", "Invert", show=False, tooltip="invert the selection"),
        Binding("s", "cycle_sort", "Sort", show=False, tooltip="sort by name, size or modification time"),
        Binding("S", "reverse_sort", "Reverse", show=False, tooltip="reverse the sort order"),
        Binding(
            "full_stop", "toggle_hidden", "Hidden", show=False, tooltip="show or hide names starting with ."
        ),
        Binding("m", "mount", "Mount", tooltip="mount the vault with FUSE (asks the mountpoint)"),
        Binding("u", "unmount", "Unmount", tooltip="unmount this vault (also clears a stale mount)"),
        Binding("p", "passwd", "Passwd", show=False, tooltip="change the vault password"),
        Binding("F", "fsck", "Fsck", show=False, tooltip="check this directory's tree for damage (fsck)"),
        Binding(
            "K", "masterkey", "Master key", show=False, tooltip="show the master key (asks the password)"
        ),
        Binding("I", "vault_info", "Info", show=False, tooltip="show the vault's config summary"),
        Binding("ctrl+r", "refresh", "Refresh", show=False, tooltip="reload the directory"),
        Binding("t", "cycle_theme", "Theme", show=False, tooltip="next colour theme"),
        Binding("f2,colon", "command_line", "Cmd", tooltip="command line (same commands as the shell)"),
        Binding("escape", "escape", "Cancel", show=False, tooltip="cancel a transfer, clear the filter"),
    ]

    # keys handled by the list widgets and the app, listed in the help too
    LIST_KEYS: ClassVar[list[tuple[str, str]]] = [
        ("↑ / k, ↓ / j", "move the cursor"),
        ("PgUp / PgDn", "move a page"),
        ("Home, End / G", "first / last entry"),
        ("Ctrl-C", "cancel a transfer, a listing, an input or dialog; else quit (as q)"),
    ]

    def intercept_key(self, event: Any) -> bool:
        """Handle a key before the app looks up its binding; True if it is dealt with.

        Called by the app, where a key arrives last: keys bubble up asynchronously, so by then
        the focus is what the keys before it made it. Two cases:
        - Keys typed right after ":" or "/" (a fast typist, a script) were on their way to the
          pane when the input opened. The input stops the printable keys it gets itself, so a
          printable one arriving here is such a key, and goes into the input (its binding would
          run a pane action: "m" would mount). Enter and Backspace need nothing: bindings are
          looked up from the focus, which is now the input.
        - A key whose action does not apply now is left out of the footer and not run
          (check_action); say why instead of doing nothing.
        """
        box = self.query_one("#cmdline", Input)
        if self.focused is box:
            if event.is_printable and event.character:
                box.insert_text_at_cursor(event.character)
                return True
            return False
        action = self._action_of_key(event.key)
        reason = self.unavailable(action) if action is not None else None
        if reason is None:
            return False
        self.vapp.log_line(reason, "error")
        return True

    # -- which keys apply --------------------------------------------------------------------

    @classmethod
    def _action_of_key(cls, key: str) -> str | None:
        for b in cls.BINDINGS:
            if isinstance(b, Binding) and key in (k.strip() for k in b.key.split(",")):
                return b.action
        return None

    def refused_here(self, action: str) -> str | None:
        """Why `action` never applies to the open folder (its command needs what the folder
        lacks), or None."""
        session = self.session
        command = KEY_COMMANDS.get(action)
        if session is None or command is None:
            return None
        refused = registry.why_not_here(registry.REGISTRY[command], session.tree)
        return None if refused is None else f"{KEY_NAMES.get(action, command)}: {refused}"

    def unavailable(self, action: str) -> str | None:
        """Why `action` does not apply now, or None if it does."""
        refused = self.refused_here(action)
        if refused is not None:
            return refused
        info = self.mount_info
        if action == "unmount" and info is None:
            return "not mounted (m mounts it)"
        if action == "mount" and info is not None and not info.alive:
            # Mounting anew would drop the stale mount's record, and `u` could not clear it.
            return f"the mount at {info.mountpoint} is stale (its worker is gone): press u to clear it first"
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys that do not apply now leave the footer (intercept_key says why if pressed)."""
        if parameters:  # as the binding spells it: "external('EDITOR')"
            action = f"{action}({', '.join(repr(p) for p in parameters)})"
        return self.unavailable(action) is None

    def help_keys(self) -> list[tuple[str, str]]:
        """The help's key list for this folder: the keys whose commands apply to it."""
        # Help and Quit lead the footer; in the help they close the list.
        bindings = [b for b in self.BINDINGS if isinstance(b, Binding)]
        last = [b for b in bindings if b.action in ("help", "quit_app")]
        bindings = [b for b in bindings if b not in last] + last
        bindings = [b for b in bindings if self.refused_here(b.action) is None]
        tooltips = {} if self.writable else REVERSE_TOOLTIPS
        return describe_bindings(bindings, tooltips) + self.LIST_KEYS

    def action_help(self) -> None:
        intro = HELP_INTRO if self.writable else HELP_INTRO_REVERSE
        self.app.push_screen(HelpScreen(self.help_keys(), intro))

    def action_quit_app(self) -> None:
        self.vapp.request_quit()
