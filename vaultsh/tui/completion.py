"""An Input whose Tab completes its text (commands, names, paths) and never moves the focus."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import Input

# (text before the cursor) -> (the part of it that candidates replace, candidates)
Completer = Callable[[str], tuple[str, list[str]]]
SHOWN_CANDIDATES = 12  # a longer list is cut in the hint: typing more narrows it


def common_prefix(candidates: list[str]) -> str:
    """The longest start all candidates share, character by character (not by path part)."""
    if not candidates:
        return ""
    first, last = min(candidates), max(candidates)
    size = 0
    while size < min(len(first), len(last)) and first[size] == last[size]:
        size += 1
    return first[:size]


class CompletingInput(Input):
    """Tab completes like a shell: one candidate is inserted, several share their common
    start, and the candidates are reported through `on_candidates`. Tab and Shift-Tab stay in
    the input: in a file manager, a key leaving a text box runs the next keys as commands."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("tab", "complete", "Complete", show=False),
        Binding("shift+tab", "complete", "Complete", show=False),
    ]

    def __init__(
        self,
        value: str = "",
        *,
        completer: Completer | None = None,
        on_candidates: Callable[[list[str]], None] | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(value, **kwargs)  # type: ignore[arg-type]
        self.completer = completer
        self.on_candidates = on_candidates

    def action_complete(self) -> None:
        if self.completer is None:
            return
        before = self.value[: self.cursor_position]
        replaced, candidates = self.completer(before)
        if not candidates:
            return
        start = len(before) - len(replaced)
        insert = candidates[0] if len(candidates) == 1 else common_prefix(candidates)
        if len(insert) > len(replaced):
            self.value = before[:start] + insert + self.value[self.cursor_position :]
            self.cursor_position = start + len(insert)
        if len(candidates) > 1 and self.on_candidates is not None:
            self.on_candidates(candidates)


def candidates_hint(candidates: list[str]) -> str:
    """The candidates in one line, their last path parts only, cut after a dozen."""
    shown = [c.rstrip("/").rpartition("/")[2] + ("/" if c.endswith("/") else "") for c in candidates]
    more = len(shown) - SHOWN_CANDIDATES
    text = "  ".join(shown[:SHOWN_CANDIDATES])
    return text + (f"  … {more} more" if more > 0 else "")
