"""Terminal-safe display of untrusted names: GNU ls's $'...' quoting, shell quoting, messages."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from vaultsh.vault.display import has_unsafe_chars, quote_name, safe_text
from vaultsh.vault.log_format import SafeLogFormatter

# Names a hostile cipher directory can carry, and how GNU ls shows each on a terminal.
HOSTILE = [
    ("\x1b]0;PWNED\x07", "$'\\033]0;PWNED\\a'"),
    ("\x1b[2J\x1b[H", "$'\\033[2J\\033[H'"),
    ("\x1b]52;c;cm0gLXJmIH4=\x07", "$'\\033]52;c;cm0gLXJmIH4=\\a'"),
    ("bell\x07", "$'bell\\a'"),
    ("over\rwrite", "$'over\\rwrite'"),
    ("two\nlines", "$'two\\nlines'"),
    ("tab\there", "$'tab\\there'"),
    ("csi\x9b31m", "$'csi\\302\\23331m'"),
    ("del\x7f", "$'del\\177'"),
    (os.fsdecode(b"\xff\xfe"), "$'\\377\\376'"),
    ("evil\u202etxt.exe", "$'evil\\u202etxt.exe'"),
    ("it's\x1b", "$'it\\'s\\033'"),
    ("back\\slash\x1b", "$'back\\\\slash\\033'"),
]


def raw_controls(text: str) -> list[str]:
    """Characters in `text` a terminal would act on instead of printing."""
    return [ch for ch in text if has_unsafe_chars(ch)]


@pytest.mark.parametrize(("name", "shown"), HOSTILE)
def test_hostile_names_are_shown_escaped_in_ansi_c_quotes(name: str, shown: str) -> None:
    assert quote_name(name) == shown
    assert quote_name(name, shell=True) == shown
    assert raw_controls(shown) == []


@pytest.mark.parametrize(("name", "_shown"), HOSTILE)
def test_bash_reads_the_escaped_form_back_to_the_exact_bytes(name: str, _shown: str) -> None:
    word = quote_name(name, shell=True)
    out = subprocess.run(["bash", "-c", f"printf %s {word}"], capture_output=True, check=True)
    assert out.stdout == os.fsencode(name)


@pytest.mark.parametrize(
    "name", ["notes.txt", "my file.txt", "日本語.txt", "👨\u200d👩\u200d👧", "a=b", "-x"]
)
def test_plain_names_are_unchanged_for_reading(name: str) -> None:
    assert quote_name(name) == name
    assert safe_text(f"/docs/{name}: no such file") == f"/docs/{name}: no such file"


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("notes.txt", "notes.txt"),
        ("日本語.txt", "日本語.txt"),
        ("my file.txt", "'my file.txt'"),
        ("it's", '"it\'s"'),
        ("it's $HOME", "'it'\\''s $HOME'"),
        ("*", "'*'"),
        ("#hash", "'#hash'"),
        ("", "''"),
    ],
)
def test_shell_quoting_of_names_a_shell_would_split_or_expand(name: str, shown: str) -> None:
    assert quote_name(name, shell=True) == shown
    out = subprocess.run(["bash", "-c", f"printf %s {shown}"], capture_output=True, check=True)
    assert out.stdout == name.encode()


def test_messages_escape_each_unsafe_run_in_place_and_keep_tabs() -> None:
    message = "/in/\x1b]0;PWNED\x07: no such file\tor directory"
    assert safe_text(message) == "/in/$'\\033']0;PWNED$'\\a': no such file\tor directory"
    assert safe_text(safe_text(message)) == safe_text(message)
    assert safe_text("bad " + os.fsdecode(b"\xffname")) == "bad $'\\377'name"


def test_a_quoted_name_inside_a_message_is_left_alone() -> None:
    shown = quote_name("\x1b[2J")
    assert safe_text(f"cannot open {shown}") == f"cannot open {shown}"


def test_log_lines_and_their_tracebacks_show_names_escaped() -> None:
    formatter = SafeLogFormatter("%(levelname)s: %(message)s")
    record = logging.LogRecord("w", logging.WARNING, __file__, 1, "%s: skipped", ("/a\x1b]0;X\x07",), None)
    assert formatter.format(record) == "WARNING: /a$'\\033']0;X$'\\a': skipped"
    try:
        raise ValueError("bad \x1b[2J name")
    except ValueError:
        failed = logging.LogRecord("w", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
    lines = formatter.format(failed).split("\n")
    assert lines[0] == "ERROR: boom" and lines[1].startswith("Traceback")
    assert lines[-1] == "ValueError: bad $'\\033'[2J name"
