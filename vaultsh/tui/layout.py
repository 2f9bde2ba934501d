"""Fitting the main screen to the terminal: the lists' share of the height, the too-small notice."""

from __future__ import annotations

from textual.geometry import Size

MIN_WIDTH, MIN_HEIGHT = 80, 24  # the smallest terminal the main screen is laid out for
LOWER_MIN, LOWER_MAX = 5, 13  # rows of the info panel and log, borders included
FIXED_ROWS = 3  # status bar, footer, and a row kept for the transfer bar


def lower_height(screen_height: int) -> int:
    """Rows for the info panel and log: a third of what is left, so the lists get the most."""
    return max(LOWER_MIN, min(LOWER_MAX, (screen_height - FIXED_ROWS) // 3))


def too_small(size: Size) -> str | None:
    """The notice shown instead of the panes below the minimum size, or None if it fits."""
    if size.width >= MIN_WIDTH and size.height >= MIN_HEIGHT:
        return None
    return (
        f"Terminal too small: {size.width}×{size.height}.\n"
        f"vaultsh needs at least {MIN_WIDTH}×{MIN_HEIGHT}; enlarge the window.\n"
        "F10 or q quits."
    )
