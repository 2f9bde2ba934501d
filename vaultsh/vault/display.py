"""Untrusted names, link targets and messages made safe to show on a terminal (GNU ls quoting)."""

from __future__ import annotations

import codecs
import functools
import io
import re
import unicodedata
from typing import TextIO

# Why these and not more: a name arrives from a sync service or another person, so anything a
# terminal acts on instead of printing must never reach it raw. That is C0 controls (ESC starts
# escape sequences: titles, OSC 52 clipboard writes, screen clears; CR and BS overwrite what was
# shown; LF fakes lines), DEL, C1 controls (0x9b is a one-character CSI on some terminals),
# undecodable bytes (kept by os.fsdecode as lone surrogates \udc80-\udcff), other lone
# surrogates, line/paragraph separators and the invisible format characters (bidi overrides
# such as U+202E reorder what follows, so "exe.txt" can pose as "txt.exe"). Zero-width
# (non-)joiners stay: emoji sequences and several scripts need them. Ordinary spaces, private-use
# and unassigned code points are printable to a terminal and stay too.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_KEPT_FORMAT_CHARS = frozenset({"\u200c", "\u200d"})

# The encoding of the output when it cannot hold every character (a C or Latin-1 locale), set
# by `fit_output`; characters it lacks are then escaped as their UTF-8 bytes, as GNU ls does.
_narrow_encoding: str | None = None
_UNICODE_ENCODINGS = frozenset(
    {"utf-8", "utf-16", "utf-32", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"}
)


def fit_output(*streams: TextIO) -> None:
    """Make every name printable on `streams` (stdout first) whatever the locale.

    Names the output's encoding cannot hold are escaped by `quote_name` and `safe_text`, and
    any other text it cannot hold comes out backslash-escaped instead of failing the command.
    """
    global _narrow_encoding
    if not streams:
        return
    try:
        name = codecs.lookup(streams[0].encoding or "ascii").name
    except LookupError:
        name = "ascii"
    _narrow_encoding = None if name in _UNICODE_ENCODINGS else name
    _fits.cache_clear()
    for stream in streams:
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")


@functools.lru_cache(maxsize=4096)
def _fits(text: str) -> bool:
    """Whether the narrow output encoding holds `text`."""
    try:
        text.encode(_narrow_encoding or "utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Inside $'...' these have the short escapes bash understands; others are octal bytes or \u.
_SHORT_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\v": "\\v",
    "\f": "\\f",
    "\r": "\\r",
    "\\": "\\\\",
    "'": "\\'",
}

# Characters a POSIX shell reads as syntax (or as word breaks): names with them are quoted in
# shell style, so that what `ls` shows can be pasted back as one argument.
_SHELL_SPECIAL = re.compile(r"""[\s'"\\$`!*?\[\](){}<>|&;]|^[#~]""")
_NEEDS_DOUBLE_QUOTE_ESCAPE = re.compile(r'["$`\\!]')


def is_unsafe_char(ch: str) -> bool:
    """Whether a terminal could act on `ch` (or cannot show it honestly) instead of printing it."""
    if ch.isprintable():
        return _narrow_encoding is not None and not ch.isascii() and not _fits(ch)
    if ch in _KEPT_FORMAT_CHARS:
        return False
    return unicodedata.category(ch) in _UNSAFE_CATEGORIES


def has_unsafe_chars(text: str) -> bool:
    """Whether `text` holds any character that `is_unsafe_char` rejects."""
    # isprintable() runs in C; only text that fails it is looked at character by character.
    if text.isprintable():
        return _narrow_encoding is not None and not text.isascii() and not _fits(text)
    return any(is_unsafe_char(ch) for ch in text)


def _escape_char(ch: str) -> str:
    short = _SHORT_ESCAPES.get(ch)
    if short is not None:
        return short
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte os.fsdecode could not decode: show that byte
        return f"\\{code - 0xDC00:03o}"
    if code < 0x20 or code == 0x7F:
        return f"\\{code:03o}"
    if not is_unsafe_char(ch):
        return ch
    # C1, or a character the output cannot show: its UTF-8 bytes, as GNU ls shows them.
    if 0x80 <= code < 0xA0 or ch.isprintable():
        return "".join(f"\\{b:03o}" for b in ch.encode())
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def ansi_c_quote(text: str) -> str:
    """`text` in bash's $'...' form, every unsafe character as an escape."""
    return "$'" + "".join(_escape_char(ch) for ch in text) + "'"


def quote_name(name: str, *, shell: bool = False) -> str:
    """How a name, link target or path is shown on a terminal, as GNU ls does.

    A name with unsafe characters is shown whole in $'...' with escapes
    (`$'\\033]0;PWNED\\a'`, invalid UTF-8 as octal bytes `$'\\377\\376'`). Other names are
    shown unchanged, unless `shell` is set: then a name the shell would split or interpret
    (spaces, quotes, `$`, `*`, ...) is put in '...' (or "..." when it holds only a single
    quote), so that it can be pasted back as one argument. Without `shell` plain names with
    spaces stay as they are, for panes and messages that people read rather than paste.
    """
    if has_unsafe_chars(name):
        return ansi_c_quote(name)
    if not shell or (name and not _SHELL_SPECIAL.search(name)):
        return name
    if "'" in name and not _NEEDS_DOUBLE_QUOTE_ESCAPE.search(name):
        return f'"{name}"'
    return "'" + name.replace("'", "'\\''") + "'"


_UNSAFE_RUN_CANDIDATE = re.compile(r"[^\t\x20-\x7e]+")


def safe_text(text: str) -> str:
    """A message with every run of unsafe characters shown as $'...' in place; tabs stay.

    For lines built elsewhere that may embed a name (errors from the vault, log lines): the
    parts around the run are left as they are, so the message reads as before. Text that went
    through `quote_name` already is returned unchanged.
    """
    if not has_unsafe_chars(text.replace("\t", " ")):
        return text

    def fix(m: re.Match[str]) -> str:
        out: list[str] = []
        run: list[str] = []
        for ch in m.group():
            if is_unsafe_char(ch):
                run.append(ch)
                continue
            if run:
                out.append(ansi_c_quote("".join(run)))
                run = []
            out.append(ch)
        if run:
            out.append(ansi_c_quote("".join(run)))
        return "".join(out)

    return _UNSAFE_RUN_CANDIDATE.sub(fix, text)
