"""Rich styles for text drawn outside the CSS (log, info panel, status bar), from the theme's colours."""

from __future__ import annotations

from collections.abc import Mapping

# The theme colours such text uses: its meaning, never a colour name, so every theme (the light
# and the high-contrast ones, a user's own) decides how an error or a success looks.
ROLES = ("error", "warning", "success")

# Until an app applies a theme (and where none runs: a test, a worker's early result), the
# default theme's colours.
_DEFAULTS = {"error": "#E06C75", "warning": "#E5A84B", "success": "#7FBF7F"}
_colours = dict(_DEFAULTS)


def use_theme(variables: Mapping[str, str]) -> None:
    """Take the colours from the active theme's CSS variables (App.get_css_variables())."""
    for role in ROLES:
        _colours[role] = variables.get(role) or _DEFAULTS[role]


def style(role: str, *, bold: bool = False) -> str:
    """A Rich style for text of this `role` ("error", "warning" or "success")."""
    colour = _colours[role]
    return f"bold {colour}" if bold else colour
