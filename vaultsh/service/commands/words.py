"""Typed lines split into words as a POSIX shell (and bash's $'...') would."""

from __future__ import annotations

import os
import re


def split_line(line: str) -> list[str]:
    """The words of a typed line, as a POSIX shell splits and unquotes them.

    Besides '...', "..." and backslashes this reads bash's $'...' (what `ls` shows for names
    with control characters or invalid UTF-8), so a name can be pasted back exactly.
    ValueError for an unclosed quote.
    """
    words, raw, value = _scan(line, strict=True)
    return [*words, value] if raw else words


_ANSI_C_ESCAPES = {"a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r"}
_ANSI_C_ESCAPES |= {"t": "\t", "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?"}
_ANSI_C_NUMBER = re.compile(r"([0-7]{1,3})|x([0-9a-fA-F]{1,2})|u([0-9a-fA-F]{1,4})|U([0-9a-fA-F]{1,8})")


def _ansi_c(text: str, i: int) -> tuple[str, int, bool]:
    """Decode bash's $'...' whose opening quote is at text[i]: (value, index after, closed).

    Octal and hex escapes are bytes, so `$'\\377'` is the byte 0xff; the caller turns the
    word's bytes back into a name with os.fsdecode.
    """
    out: list[str] = []
    i += 1
    while i < len(text):
        ch = text[i]
        if ch == "'":
            return "".join(out), i + 1, True
        if ch != "\\" or i + 1 == len(text):
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        m = _ANSI_C_NUMBER.match(text, i + 1)
        if nxt in _ANSI_C_ESCAPES:
            out.append(_ANSI_C_ESCAPES[nxt])
            i += 2
        elif m and (m.group(1) or m.group(2)):
            byte = int(m.group(1), 8) & 0xFF if m.group(1) else int(m.group(2), 16)
            out.append(os.fsdecode(bytes([byte])))
            i = m.end()
        elif m and not 0xD800 <= int(m.group(3) or m.group(4), 16) <= 0xDFFF:
            code = int(m.group(3) or m.group(4), 16)
            out.append(chr(code) if code <= 0x10FFFF else text[i : m.end()])
            i = m.end()
        else:
            out.append(text[i : i + 2])
            i += 2
    return "".join(out), i, False


def _word(value: list[str]) -> str:
    """A finished word: bytes given as escapes ($'\\302\\233') rejoined into characters."""
    text = "".join(value)
    try:
        return os.fsdecode(os.fsencode(text))
    except UnicodeEncodeError:
        return text


def _scan(text: str, *, strict: bool = False) -> tuple[list[str], str, str]:
    """(finished words, raw text of the word being typed, its unquoted value).

    Like shlex in POSIX mode (plus bash's $'...'), but an open quote at the end is allowed:
    that is the word someone is typing. With `strict` an open quote is a ValueError.
    """
    words: list[str] = []
    value: list[str] = []
    start = 0
    in_word = False
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "$" and not quote and text.startswith("'", i + 1):
            if not in_word:
                in_word, start = True, i
            decoded, i, closed = _ansi_c(text, i + 1)
            value.append(decoded)
            if not closed and strict:
                raise ValueError("No closing quotation")
            continue
        if quote:
            if ch == quote:
                quote = ""
            elif ch == "\\" and quote == '"' and i + 1 < len(text) and text[i + 1] in '"\\$`':
                i += 1
                value.append(text[i])
            else:
                value.append(ch)
        elif ch.isspace():
            if in_word:
                words.append(_word(value))
                value, in_word = [], False
        else:
            if not in_word:
                in_word, start = True, i
            if ch in "'\"":
                quote = ch
            elif ch == "\\":
                if i + 1 < len(text):
                    i += 1
                    value.append(text[i])
            else:
                value.append(ch)
        i += 1
    if quote and strict:
        raise ValueError("No closing quotation")
    if not in_word:
        return words, "", ""
    return words, text[start:], _word(value)


def current_word(text_before_cursor: str) -> str:
    """The raw (possibly quoted) word under the cursor that `complete` candidates replace."""
    return _scan(text_before_cursor)[1]
