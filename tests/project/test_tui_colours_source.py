"""The TUI's colours come from theme variables only: no colour is written in vaultsh/tui."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

TUI = Path(__file__).resolve().parents[2] / "vaultsh" / "tui"

# Colour names Rich and Textual accept (and their bright_/ansi_/dark_/light_ forms), hex and
# functional colours; and, in code, a choice made from a theme's name or darkness rather than
# from its colours.
_NAMES = (
    "red|green|blue|yellow|magenta|cyan|white|black|grey|gray|orange|purple|pink|violet|"
    "brown|gold|silver|navy|teal|olive|maroon|lime|aqua|fuchsia|crimson|salmon"
)
HARD_CODED = re.compile(
    rf"(?<![\w$-])(?:(?:bright_|ansi_|ansi_bright_|dark_|light_)?(?:{_NAMES})\d*)(?![\w-])"
    # A hex colour, not a CSS id that happens to be hex ("#add {", "#bad.x", "#fed, #cab"):
    r"|(?<![\w&])#(?:[0-9a-fA-F]{8}|[0-9a-fA-F]{6}|[0-9a-fA-F]{3})(?![\w.-]|\s*[{,>:])"
    r"|\b(?:rgba?|hsla?)\(",
    re.IGNORECASE,
)
# Run over the code's tokens joined by spaces ("theme . dark").
THEME_NAME_CHECK = re.compile(r"[\"'](?:light|dark)[\"']\s+(?:not\s+)?in\b|\.\s*dark\b", re.IGNORECASE)


# Python 3.12 splits an f-string into parts; 3.11 keeps it one STRING token.
_FSTRING_PARTS = {getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}


def hard_coded_colours(source: str, *, python: bool) -> list[str]:
    """Each colour written in `source`: in a Python file its strings (styles, CSS, markup) and
    its code (a check of the theme's name), in a stylesheet all of it; never its comments."""
    if not python:
        text = re.sub(r"/\*.*?\*/", "", source, flags=re.DOTALL)
        return [m.group(0) for m in HARD_CODED.finditer(text)]
    found = []
    code: list[str] = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            continue
        code.append(tok.string)
        if tok.type == tokenize.STRING or tok.type in _FSTRING_PARTS:
            found += [m.group(0) for m in HARD_CODED.finditer(tok.string)]
    found += [m.group(0) for m in THEME_NAME_CHECK.finditer(" ".join(code))]
    return found


def test_no_colour_is_written_in_the_tui() -> None:
    sources = sorted(TUI.glob("*.py")) + sorted(TUI.glob("*.tcss"))
    assert len(sources) > 10
    found = {
        p.name: hits
        for p in sources
        if (hits := hard_coded_colours(p.read_text(encoding="utf-8"), python=p.suffix == ".py"))
    }
    assert found == {}, "use the theme's variables ($error, palette.style('error'), ...) instead"


@pytest.mark.parametrize(
    "source",
    [
        'Text("failed", style="bold red")',
        'Text("x", style="#ff0000")',
        'CSS = "Label { color: $accent; background: #1e1e1e; }"',
        'style = "bright_green"',
        'ok = "light" in app.theme',
        "colour = 'white' if theme.dark else 'black'",
        'x = f"[on rgb(10,20,30)]{name}[/]"',
    ],
)
def test_the_check_finds_each_kind_of_written_colour(source: str) -> None:
    assert hard_coded_colours(source, python=True)


def test_the_check_leaves_theme_variables_ids_and_comments_alone() -> None:
    source = (
        "# red is the error colour of most themes, say the comments\n"
        'CSS = "#reverse { color: $error; background: $panel-lighten-1; } #add { color: $vault-bad; }"\n'
        'style = palette.style("error", bold=True) + " dim"\n'
        'grid = "greyed redraw"  # words that contain colour names\n'
    )
    assert hard_coded_colours(source, python=True) == []
    assert hard_coded_colours("Screen { color: $foreground; } /* not red */", python=False) == []
