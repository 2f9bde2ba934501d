"""Rich styles for text drawn outside the CSS (log, info panel, status bar), from the theme's colours."""

from __future__ import annotations

from collections.abc import Mapping

from vaultsh.tui.themes import default_colour

# The theme colours such text uses: its meaning, never a colour name, so every theme (the light
# and the high-contrast ones, a user's own) decides how an error or a success looks.
ROLES = ("error", "warning", "success")

# The active theme's colours; until an app applies one (and where none runs: a test, a
# worker's early result), the default theme's.
_colours: dict[str, str] = {}


def use_theme(variables: Mapping[str, str]) -> None:
    """Take the colours from the active theme's CSS variables (App.get_css_variables())."""
    for role in ROLES:
        _colours[role] = variables.get(role) or default_colour(role)


def style(role: str, *, bold: bool = False) -> str:
    """A Rich style for text of this `role` ("error", "warning" or "success")."""
    colour = _colours.get(role) or default_colour(role)
    return f"bold {colour}" if bold else colour
