"""Textual themes for vaultsh: built-in TOML themes plus the user's own from the config dir."""

from __future__ import annotations

import functools
import logging
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from textual.color import Color, ColorParseError
from textual.theme import Theme

log = logging.getLogger(__name__)

DEFAULT_THEME = "vaultsh-dark"
BUILTIN_THEMES = ("vaultsh-dark", "vaultsh-light", "vaultsh-high-contrast")

# Colours the TUI gives to entries that are not ordinary vault objects (app.tcss uses each):
# undecryptable names, and the diriv, long-name sidecars and config on the cipher side. Every
# theme defines them (user themes that leave one out get them derived from their own palette),
# so the CSS can use them whatever theme is active.
VAULT_VARIABLES = ("vault-bad", "vault-sidecar")


_COLOR_FIELDS = (
    "primary",
    "secondary",
    "accent",
    "warning",
    "error",
    "success",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
)
_NUMBER_FIELDS = ("luminosity_spread", "text_alpha")
_KNOWN_KEYS = {"name", "dark", "variables", *_COLOR_FIELDS, *_NUMBER_FIELDS}
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_VARIABLE_RE = re.compile(r"[a-z][a-z0-9-]{0,63}")
_STYLE_WORDS = {
    "b", "blink", "bold", "dim", "i", "italic", "none", "not", "o", "overline", "reverse",
    "strike", "u", "underline", "uu",
}  # fmt: skip
_PERCENT_RE = re.compile(r"\d{1,3}(\.\d+)?%")


class ThemeFileError(ValueError):
    """A theme file that cannot be used; the message is one line naming the file."""


def user_theme_dir() -> Path:
    """$XDG_CONFIG_HOME/vaultsh/themes, or ~/.config/vaultsh/themes."""
    base = os.environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".config"
    return root / "vaultsh" / "themes"


def _valid_css_value(value: str) -> bool:
    """A value Textual's CSS accepts for a theme variable: a colour (maybe 'auto'), with an
    optional alpha percentage, or text-style words. Checked here because a bad value would
    otherwise only fail when the theme is applied, taking the app down with it."""
    words = value.split()
    if not words:
        return False
    if all(w in _STYLE_WORDS for w in words):
        return True
    if len(words) == 2 and _PERCENT_RE.fullmatch(words[1]):
        words = words[:1]
    if len(words) != 1:
        return False
    if words[0] in ("auto", "transparent", "initial"):
        return True
    try:
        Color.parse(words[0])
    except ColorParseError:
        return False
    return True


@functools.cache
def _default_theme_data() -> dict[str, Any]:
    return tomllib.loads((builtin_theme_folder() / f"{DEFAULT_THEME}.toml").read_text(encoding="utf-8"))


def default_colour(name: str) -> str:
    """A colour of the default theme: a field ("error") or a variable ("vault-bad").

    What a theme that leaves the colour out, or text drawn before a theme applies, gets: every
    colour comes from a theme file, none is written in the code.
    """
    data = _default_theme_data()
    return str(data.get(name) or data["variables"][name])


def _derived_vault_variables(fields: Mapping[str, Any]) -> dict[str, str]:
    """vault-* colours from a theme's own palette, for themes that do not set them."""
    foreground = fields.get("foreground")
    muted = f"{foreground} 60%" if foreground else default_colour("vault-sidecar")
    return {"vault-bad": fields.get("error") or default_colour("vault-bad"), "vault-sidecar": muted}


def theme_from_mapping(data: Mapping[str, Any], where: str, default_name: str) -> Theme:
    """Build a Theme from parsed TOML, checking every field; raises ThemeFileError."""
    unknown = sorted(set(data) - _KNOWN_KEYS)
    if unknown:
        raise ThemeFileError(f"{where}: unknown key {unknown[0]!r}")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ThemeFileError(f"{where}: 'name' must be letters, digits, '-', '_' or '.'")
    if "primary" not in data:
        raise ThemeFileError(f"{where}: 'primary' colour is required")
    fields: dict[str, Any] = {}
    for key in _COLOR_FIELDS:
        if key not in data:
            continue
        value = data[key]
        if not isinstance(value, str):
            raise ThemeFileError(f"{where}: {key!r} must be a colour string")
        try:
            Color.parse(value)
        except ColorParseError:
            raise ThemeFileError(f"{where}: {key!r}: {value!r} is not a colour") from None
        fields[key] = value
    for key in _NUMBER_FIELDS:
        if key not in data:
            continue
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ThemeFileError(f"{where}: {key!r} must be a number from 0 to 1")
        fields[key] = float(value)
    dark = data.get("dark", True)
    if not isinstance(dark, bool):
        raise ThemeFileError(f"{where}: 'dark' must be true or false")
    raw_vars = data.get("variables", {})
    if not isinstance(raw_vars, dict):
        raise ThemeFileError(f"{where}: [variables] must be a table")
    variables = _derived_vault_variables(fields)
    for key, value in raw_vars.items():
        if not _VARIABLE_RE.fullmatch(key):
            raise ThemeFileError(f"{where}: bad variable name {key!r}")
        if not isinstance(value, str) or not _valid_css_value(value):
            raise ThemeFileError(f"{where}: variable {key!r}: {value!r} is not a colour or style")
        variables[key] = value
    return Theme(name=name, dark=dark, variables=variables, **fields)


def load_theme_file(path: Path) -> Theme:
    """Read one TOML theme file; raises ThemeFileError with a one-line reason."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ThemeFileError(f"{path}: cannot read: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ThemeFileError(f"{path}: not valid TOML: {e}") from None
    return theme_from_mapping(data, str(path), path.stem)


def builtin_theme_folder() -> Traversable:
    """vaultsh/themes in an installed wheel, else the top-level themes/ of a source checkout.

    The repository keeps the built-in themes beside vaultsh/ (see setup.py); a checkout run
    from its source or as an editable install has no vaultsh/themes, so it looks there.
    """
    packaged = resources.files("vaultsh") / "themes"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "themes"


def builtin_themes() -> dict[str, Theme]:
    """The themes shipped with vaultsh, in BUILTIN_THEMES order."""
    folder = builtin_theme_folder()
    out: dict[str, Theme] = {}
    for name in BUILTIN_THEMES:
        # A broken built-in is a packaging bug, so it raises instead of being skipped.
        data = tomllib.loads((folder / f"{name}.toml").read_text(encoding="utf-8"))
        out[name] = theme_from_mapping(data, f"built-in theme {name}", name)
    return out


def load_themes_with_warnings(user_dir: Path | None = None) -> tuple[dict[str, Theme], list[str]]:
    """Built-in and user themes, plus one warning line per user file that was skipped.

    A user theme with a built-in's name replaces it: that is how a user adjusts one.
    """
    themes = builtin_themes()
    warnings: list[str] = []
    folder = user_theme_dir() if user_dir is None else user_dir
    try:
        files: Iterable[Path] = sorted(folder.glob("*.toml"))
    except OSError as e:
        return themes, [f"{folder}: cannot list themes: {e.strerror or e}"]
    for path in files:
        try:
            theme = load_theme_file(path)
        except ThemeFileError as e:
            warnings.append(f"theme skipped: {e}")
            continue
        themes[theme.name] = theme
    return themes, warnings


def load_themes(user_dir: Path | None = None) -> dict[str, Theme]:
    """Built-in and user themes by name; unusable user files are logged and skipped."""
    themes, warnings = load_themes_with_warnings(user_dir)
    for line in warnings:
        log.warning("%s", line)
    return themes


def theme_names(user_dir: Path | None = None) -> list[str]:
    """Names of every available theme, built-ins first."""
    return list(load_themes(user_dir))


def theme_variable_defaults() -> dict[str, str]:
    """Fallbacks for App.get_theme_variable_defaults, so Textual's own themes work too."""
    return {key: default_colour(key) for key in VAULT_VARIABLES}
