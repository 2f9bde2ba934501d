"""Names that sync tools give the copies they keep of a file changed on two machines."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Container, Iterator
from typing import NamedTuple

# A sync tool that cannot merge two versions renames one of them; in a vault the renamed
# cipher name no longer decrypts (or, with plaintext names, reads as a new file). Each
# pattern yields the original name as base + ext.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Dropbox", re.compile(
        r"^(?P<base>.+?) \((?:[^()]*'s )?conflicted copy(?P<tail>[^()]*(?:\(\d+\))?)\)(?P<ext>\.[^.]*)?$")),
    ("Syncthing", re.compile(
        r"^(?P<base>.+?)\.sync-conflict-(?P<tail>\d{8}-\d{6})(?:-[A-Z0-9]{7})?(?P<ext>\..*)?$")),
    ("Nextcloud", re.compile(r"^(?P<base>.+?) \(conflicted copy (?P<tail>[^()]*)\)(?P<ext>\..*)?$")),
    ("Google Drive or iCloud", re.compile(r"^(?P<base>.+?) \((?:Case )?Conflict(?: \d+)?\)(?P<ext>\..*)?$")),
)  # fmt: skip
# Loose readings: also how people name their own files ("photo (1).jpg", "my-notes.txt").
_NUMBERED = re.compile(r"^(?P<base>.+?) ?\(\d{1,3}\)(?P<ext>\.[^.]*)?$")  # Google Drive
# OneDrive appends "-HOSTNAME" before the extension. Cipher names contain '-' themselves, so
# this only counts when the name before the suffix exists beside the copy.
_ONEDRIVE_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,62}")
_DATE = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})")


class Origin(NamedTuple):
    """What a conflict copy's name says: the original name, the tool, the date if it has one."""

    original: str
    tool: str
    date: dt.date | None
    loose: bool = False  # a reading that ordinary names match too


def _date_in(text: str) -> dt.date | None:
    m = _DATE.search(text)
    if m is None:
        return None
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def candidates(name: str) -> Iterator[Origin]:
    """Every reading of `name` as a conflict copy, most specific first (the tail-end OneDrive last)."""
    for tool, pattern in _PATTERNS:
        m = pattern.match(name)
        if m:
            tail = m.groupdict().get("tail") or ""
            yield Origin(m.group("base") + (m.group("ext") or ""), tool, _date_in(tail))
    m = _NUMBERED.match(name)
    if m:
        yield Origin(m.group("base") + (m.group("ext") or ""), "Google Drive", None, loose=True)
    stem, dot, ext = name.rpartition(".") if "." in name[1:] else (name, "", "")
    pos = stem.rfind("-")
    while pos > 0:
        if _ONEDRIVE_HOST.fullmatch(stem[pos + 1 :]):
            yield Origin(stem[:pos] + dot + ext, "OneDrive", None, loose=True)
        pos = stem.rfind("-", 0, pos)


def find_origin(name: str, existing: Container[str] | None = None, *, loose: bool = True) -> Origin | None:
    """The original a copy named `name` was made from.

    With `existing` (the names beside it), only an original that exists counts. The loose
    readings (OneDrive's "-HOST", Google Drive's "(1)") are tried only then, and only with
    `loose`: among plain names, "my-notes.txt" beside "my.txt" is no copy; a cipher name that
    does not decrypt but extends a real one is.
    """
    for origin in candidates(name):
        if origin.loose and (existing is None or not loose):
            continue
        if existing is None:
            return origin
        if origin.original != name and origin.original in existing:
            return origin
    return None


def conflict_original(cipher_name: str) -> str | None:
    """The name a sync-conflict copy was made from, if `cipher_name` looks like one."""
    origin = find_origin(cipher_name)
    return None if origin is None else origin.original
