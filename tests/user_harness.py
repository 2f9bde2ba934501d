"""Test helper: run part of a test in a forked child that has dropped to another user."""

from __future__ import annotations

import os
import pwd
import traceback
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class User:
    uid: int
    gid: int


def nobody() -> User:
    """The user nobody, which every Linux system has."""
    entry = pwd.getpwnam("nobody")
    return User(entry.pw_uid, entry.pw_gid)


def fork_as(user: User, action: Callable[[], None]) -> int:
    """Start `action` in a forked child that has dropped to `user`; returns its pid."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            os.setgroups([])
            os.setgid(user.gid)
            os.setuid(user.uid)
            action()
        except BaseException:
            traceback.print_exc()
            code = 1
        os._exit(code)
    return pid


def wait_ok(pid: int) -> None:
    """Wait for a child of `fork_as`; fail if its action raised."""
    _pid, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the process of the other user failed (see its traceback)"


def as_user(user: User, action: Callable[[], None]) -> None:
    """Run `action` as `user` in a child process, to its end; fail if it raised."""
    wait_ok(fork_as(user, action))
