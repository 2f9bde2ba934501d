"""End to end in a real terminal: `python -m vaultsh CIPHERDIR` under tmux, password typed, q quits."""

from __future__ import annotations

from pathlib import Path

from tui_harness import (
    LONG_NAME,
    MASTER_KEY,
    exit_status,
    make_vault,
    start_in_tmux,
    tmux,
    unlock_in_tmux,
    vaultsh_command,
    wait_screen,
)

from vaultsh.vault.vault import Vault


def test_open_unlock_browse_quit_in_tmux(tmp_path: Path, tmux_session: str) -> None:
    root = tmp_path / "vault"
    make_vault(root)
    vault = Vault.open(root, master_key=MASTER_KEY)
    notes_cipher = vault.cipher_path("notes.txt").name
    status = tmp_path / "status"
    start_in_tmux(tmux_session, vaultsh_command(status, root))
    unlock_in_tmux(tmux_session)
    screen = wait_screen(tmux_session, lambda s: "notes.txt" in s and notes_cipher in s)

    # plain and cipher names on the same rows, plain on the left, cipher on the right
    lines = screen.splitlines()
    assert any("docs/" in line and "Plain" not in line for line in lines)
    notes_line = next(line for line in lines if "notes.txt" in line)
    left, _, right = notes_line.partition("││")
    assert "notes.txt" in left
    assert "conflicted copy" in screen and "!" in screen  # the sync-conflict copy is flagged
    assert "unlocked" in screen and "not mounted" in screen
    assert LONG_NAME[:20] in screen
    assert right  # the right pane has content on the row as well

    tmux("send-keys", "-t", tmux_session, "q")
    assert exit_status(status) == "exit=0"


def footer_key(screen: str, label: str) -> str:
    """The key the footer (the last line) shows for `label`, as tmux names it ("f1" -> "F1")."""
    words = screen.rstrip("\n").splitlines()[-1].split()
    key = words[words.index(label) - 1]
    return key.upper() if key.startswith("f") and key[1:].isdigit() else key


def test_help_scrolls_to_its_end_and_quit_at_80x24(tmp_path: Path, tmux_session: str) -> None:
    """At the smallest supported size: help and quit are in the footer, the help scrolls."""
    root = tmp_path / "vault"
    make_vault(root)
    status = tmp_path / "status"
    start_in_tmux(tmux_session, vaultsh_command(status, root), 80, 24)
    unlock_in_tmux(tmux_session)
    screen = wait_screen(tmux_session, lambda s: "notes.txt" in s and "Unlock vault" not in s)

    tmux("send-keys", "-t", tmux_session, footer_key(screen, "Help"))
    # How to leave stays in view; the list goes on below.
    screen = wait_screen(tmux_session, lambda s: "vaultsh — keys" in s and "closes this help" in s)
    assert "first / last entry" not in screen
    tmux("send-keys", "-t", tmux_session, "End")
    screen = wait_screen(tmux_session, lambda s: "first / last entry" in s)
    assert "closes this help" in screen
    tmux("send-keys", "-t", tmux_session, "Escape")
    screen = wait_screen(tmux_session, lambda s: "vaultsh — keys" not in s)
    tmux("send-keys", "-t", tmux_session, footer_key(screen, "Quit"))
    assert exit_status(status) == "exit=0"
