"""Text the TUI colours outside its CSS (status bar, log, info panel) takes the theme's colours."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from rich.segment import Segment
from textual.color import Color
from textual.strip import Strip
from textual.widget import Widget
from tui_harness import make_vault, opened_at, select_plain, wait_for

from vaultsh.tui.inspect import InfoPanel
from vaultsh.tui.themes import BUILTIN_THEMES


def segment_colour(lines: list[Strip], text: str) -> str:
    """The foreground colour (as #RRGGBB) of the first drawn segment containing `text`."""
    for strip in lines:
        for seg in strip:
            assert isinstance(seg, Segment)
            if text in seg.text and seg.style is not None and seg.style.color is not None:
                return Color.from_rich_color(seg.style.color).hex.upper()
    raise AssertionError(f"{text!r} is not drawn with a colour")


def colours(lines: list[Strip]) -> set[str]:
    """Every foreground colour drawn in `lines`."""
    return {
        Color.from_rich_color(seg.style.color).hex.upper()
        for strip in lines
        for seg in strip
        if seg.style is not None and seg.style.color is not None and seg.text.strip()
    }


def drawn(widget: Widget) -> list[Strip]:
    return [widget.render_line(y) for y in range(widget.size.height)]


@pytest.mark.asyncio
@pytest.mark.parametrize("theme", BUILTIN_THEMES)
async def test_status_log_and_info_use_the_theme_colours(theme: str, tmp_path: Path) -> None:
    """ "unlocked" in the theme's success colour, an error in its error colour, in every theme
    (the light one too: no colour is chosen by the theme's name)."""
    make_vault(tmp_path / "vault")
    async with opened_at(tmp_path / "vault", theme=theme) as (app, pilot):
        variables = app.get_css_variables()
        success, error = Color.parse(variables["success"]).hex, Color.parse(variables["error"]).hex
        assert success != error
        await pilot.pause()
        assert segment_colour(drawn(app.main.query_one("#status")), "unlocked") == success
        app.log_line("something failed", "error")
        await pilot.pause()
        assert segment_colour(drawn(app.main.query_one("#log")), "something failed") == error
        # The cipher pane on a stray file: the x-ray says what is wrong in the error colour.
        await pilot.press("tab")
        stray = next(e for e in app.main.cipher.rows if e.cipher_name == "stray file.txt")
        row = app.main.cipher.row_of(stray)
        assert row is not None
        app.main.cipher.move_to(row)
        info = app.main.query_one("#info", InfoPanel)
        await wait_for(pilot, lambda: "stray file.txt" in str(info.border_title))
        await pilot.pause()
        console = Console(width=100, color_system="truecolor", file=io.StringIO())
        assert error in colours([Strip(console.render(info.body))])


@pytest.mark.asyncio
async def test_a_theme_change_recolours_the_status_bar_at_once(tmp_path: Path) -> None:
    """t: the status bar is drawn again in the new theme's colours, without waiting for a poll."""
    make_vault(tmp_path / "vault")
    async with opened_at(tmp_path / "vault", theme="vaultsh-dark") as (app, pilot):
        select_plain(app.main, "notes.txt")
        app.theme = "vaultsh-high-contrast"
        await pilot.pause()
        wanted = Color.parse(app.get_css_variables()["success"]).hex
        assert wanted == "#00FF00"
        assert segment_colour(drawn(app.main.query_one("#status")), "unlocked") == wanted
