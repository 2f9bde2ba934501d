"""The TUI's remembered preferences (theme, sort, hidden names) in $XDG_CONFIG_HOME/vaultsh/config.toml."""

from __future__ import annotations

import contextlib
import json
import os
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

from vaultsh.tui.entries import SORT_FIELDS


def config_path() -> Path:
    """$XDG_CONFIG_HOME/vaultsh/config.toml (XDG: a relative value is ignored; default ~/.config)."""
    base = os.environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".config"
    return root / "vaultsh" / "config.toml"


@dataclass
class Prefs:
    theme: str | None = None  # None: the default theme
    sort: str = "name"
    sort_reverse: bool = False
    show_hidden: bool = True


def load_prefs(path: Path | None = None) -> tuple[Prefs, str | None]:
    """The saved preferences and, if the file is unreadable or wrong, why (defaults are used)."""
    path = path or config_path()
    prefs = Prefs()
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return prefs, None
    except (OSError, tomllib.TOMLDecodeError) as e:
        return prefs, f"{path}: cannot read the preferences ({e}); using the defaults"
    problems = []
    theme = data.get("theme")
    if isinstance(theme, str):
        prefs.theme = theme
    sort = data.get("sort", "name")
    if sort in SORT_FIELDS:
        prefs.sort = sort
    else:
        problems.append(f"sort = {sort!r} (one of {', '.join(SORT_FIELDS)})")
    for key in ("sort_reverse", "show_hidden"):
        value = data.get(key, getattr(prefs, key))
        if isinstance(value, bool):
            setattr(prefs, key, value)
        else:
            problems.append(f"{key} = {value!r} (true or false)")
    warning = f"{path}: ignored {'; '.join(problems)}" if problems else None
    return prefs, warning


def save_prefs(prefs: Prefs, path: Path | None = None) -> str | None:
    """Write the preferences (atomically, 0600 in a 0700 directory); the error text if it fails."""
    path = path or config_path()
    lines = ["# vaultsh preferences, rewritten when they change in the full-screen interface"]
    for key, value in asdict(prefs).items():
        if value is not None:  # TOML has no null; JSON's quoting of strings and booleans fits TOML's
            lines.append(f"{key} = {json.dumps(value)}")
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        return f"{path}: cannot save the preferences: {e.strerror or e}"
    return None
