"""The commands shared by the CLI, the shell and the TUI: a session, what each command does, dispatch."""

from vaultsh.service.commands.completion import complete
from vaultsh.service.commands.dispatch import (
    COMMANDS,
    SECRET_COMMANDS,
    command_names,
    handler_of,
    keeps_history,
    lookup,
    run_line,
    run_words,
)
from vaultsh.service.commands.keys import change_password, check_key_fits, config_info, reveal_master_key
from vaultsh.service.commands.listing import (
    MAX_LINK_HOPS,
    cat_file,
    follow_tree_links,
    list_path,
)
from vaultsh.service.commands.mounting import human_duration, mount_table, mounts_lines
from vaultsh.service.commands.names import decrypt_paths, encrypt_paths
from vaultsh.service.commands.session import ByteSink, Chooser, Session, SessionIO, show
from vaultsh.service.commands.transfers import export_path, human_bytes, import_path
from vaultsh.service.commands.tree import (
    MV_CHOICES,
    free_name,
    make_dirs,
    move_path,
    remove_path,
    remove_paths,
)
from vaultsh.service.commands.views import export_view, reverse_refusal
from vaultsh.service.commands.words import current_word, split_line
from vaultsh.service.registry import Command

__all__ = [
    "COMMANDS",
    "MAX_LINK_HOPS",
    "MV_CHOICES",
    "SECRET_COMMANDS",
    "ByteSink",
    "Chooser",
    "Command",
    "Session",
    "SessionIO",
    "cat_file",
    "change_password",
    "check_key_fits",
    "command_names",
    "complete",
    "config_info",
    "current_word",
    "decrypt_paths",
    "encrypt_paths",
    "export_path",
    "export_view",
    "follow_tree_links",
    "free_name",
    "handler_of",
    "human_bytes",
    "human_duration",
    "import_path",
    "keeps_history",
    "list_path",
    "lookup",
    "make_dirs",
    "mount_table",
    "mounts_lines",
    "move_path",
    "remove_path",
    "remove_paths",
    "reveal_master_key",
    "reverse_refusal",
    "run_line",
    "run_words",
    "show",
    "split_line",
]
