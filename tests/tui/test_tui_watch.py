"""The directory watcher behind the TUI's auto-refresh: one call per burst, only for the watched dir."""

from __future__ import annotations

import time
from pathlib import Path

from vaultsh.tui.watch import DEBOUNCE, DirWatcher


def wait_calls(calls: list[float], count: int) -> None:
    for _ in range(400):
        if len(calls) >= count:
            return
        time.sleep(0.025)
    raise AssertionError(f"{count} calls expected, got {len(calls)}")


def quiet_period() -> None:
    """Long enough for a pending (debounced) call to have been made."""
    time.sleep(DEBOUNCE * 3)


def test_a_burst_of_changes_is_one_call_and_moving_on_is_none(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    calls: list[float] = []
    watcher = DirWatcher(calls.append)
    try:
        watcher.watch(first)
        watcher.watch(second)  # leaving `first` sends IN_IGNORED for it: not a change
        (first / "ignored.txt").write_bytes(b"the old directory")
        quiet_period()
        assert calls == []
        for i in range(50):  # a sync tool writing many files at once
            (second / f"f{i}").write_bytes(b"x")
        wait_calls(calls, 1)
        quiet_period()
        assert len(calls) == 1
        (second / "f0").unlink()
        wait_calls(calls, 2)
    finally:
        watcher.close()


def test_a_symlink_is_not_watched_through(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    calls: list[float] = []
    watcher = DirWatcher(calls.append)
    try:
        watcher.watch(link)
        assert not watcher.watching
        (real / "x").write_bytes(b"x")
        quiet_period()
        assert calls == []
    finally:
        watcher.close()


def test_watching_the_same_directory_again_keeps_a_change_just_made(tmp_path: Path) -> None:
    """The TUI lists (and watches) its directory again right after a command of its own: the
    change the command made is still reported, stamped no later than that listing's start, so
    the listing is known to hold it."""
    calls: list[float] = []
    watcher = DirWatcher(calls.append)
    try:
        watcher.watch(tmp_path)
        (tmp_path / "renamed.txt").write_bytes(b"a change of our own")
        watcher.watch(tmp_path)  # the listing after the command
        listing_started = time.monotonic()
        wait_calls(calls, 1)
        assert calls[0] <= listing_started
        quiet_period()
        assert len(calls) == 1
    finally:
        watcher.close()


def test_settle_stamps_the_queued_changes_before_a_reload(tmp_path: Path) -> None:
    calls: list[float] = []
    watcher = DirWatcher(calls.append)
    try:
        watcher.watch(tmp_path)
        (tmp_path / "new.txt").write_bytes(b"x")
        watcher.settle()
        reload_started = time.monotonic()
        wait_calls(calls, 1)
        assert calls[0] <= reload_started
    finally:
        watcher.close()
