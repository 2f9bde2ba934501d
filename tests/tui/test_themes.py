"""Themes: built-in TOML themes, user themes from the config dir, broken files, contrast."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.color import Color
from textual.theme import Theme
from textual.widgets import Static

from vaultsh.tui import palette
from vaultsh.tui.themes import (
    BUILTIN_THEMES,
    DEFAULT_THEME,
    VAULT_VARIABLES,
    builtin_theme_folder,
    load_themes,
    load_themes_with_warnings,
    theme_names,
    theme_variable_defaults,
    user_theme_dir,
)

CUSTOM = """\
name = "solarized-vault"
dark = true
primary = "#268bd2"
secondary = "#2aa198"
warning = "#b58900"
error = "#dc322f"
accent = "#d33682"
foreground = "#93a1a1"
background = "#002b36"
surface = "#073642"
panel = "#0b4452"

[variables]
vault-sidecar = "#586e75"
footer-key-foreground = "#268bd2"
"""


def relative_luminance(color: Color) -> float:
    """WCAG 2.x relative luminance of an sRGB colour."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(color.r) + 0.7152 * linear(color.g) + 0.0722 * linear(color.b)


def contrast(a: str, b: str) -> float:
    la, lb = sorted((relative_luminance(Color.parse(a)), relative_luminance(Color.parse(b))), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def resolved_variables(theme: Theme) -> dict[str, str]:
    """The CSS variables an app sees with this theme (Textual's generated ones, then the theme's)."""
    return {**theme.to_color_system().generate(), **theme.variables}


def test_contrast_helper_matches_wcag_reference_values() -> None:
    assert contrast("#000000", "#FFFFFF") == pytest.approx(21.0)
    assert contrast("#777777", "#FFFFFF") == pytest.approx(4.48, abs=0.01)
    assert contrast("#123456", "#123456") == pytest.approx(1.0)


def test_builtin_themes_load_with_vault_variables(tmp_path: Path) -> None:
    themes = load_themes(tmp_path)  # an empty user dir: built-ins only
    assert list(themes) == list(BUILTIN_THEMES)
    assert DEFAULT_THEME in themes
    assert themes["vaultsh-light"].dark is False
    assert themes["vaultsh-dark"].dark is True
    for theme in themes.values():
        for key in VAULT_VARIABLES:
            Color.parse(theme.variables[key])  # a real colour, not a fallback placeholder


def test_every_vault_variable_is_used_by_the_tui_css() -> None:
    """A colour the themes define but nothing draws with is dead weight in every theme file."""
    css = (Path(palette.__file__).parent / "app.tcss").read_text()
    assert [key for key in VAULT_VARIABLES if f"${key};" not in css] == []
    for theme_file in builtin_theme_folder().iterdir():
        defined = {line.split("=")[0].strip() for line in theme_file.read_text().splitlines()}
        assert {key for key in defined if key.startswith("vault-")} == set(VAULT_VARIABLES), theme_file.name


def test_missing_user_dir_is_not_an_error(tmp_path: Path) -> None:
    themes, warnings = load_themes_with_warnings(tmp_path / "does-not-exist")
    assert list(themes) == list(BUILTIN_THEMES)
    assert warnings == []


def test_user_dir_defaults_to_xdg_config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    folder = tmp_path / "vaultsh" / "themes"
    assert user_theme_dir() == folder
    folder.mkdir(parents=True)
    (folder / "solarized.toml").write_text(CUSTOM)
    assert theme_names() == [*BUILTIN_THEMES, "solarized-vault"]

    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/path")  # not absolute: ignored, as XDG says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_theme_dir() == tmp_path / "home" / ".config" / "vaultsh" / "themes"


def test_custom_user_theme_loads_and_gets_missing_vault_colours(tmp_path: Path) -> None:
    (tmp_path / "solarized.toml").write_text(CUSTOM)
    themes, warnings = load_themes_with_warnings(tmp_path)
    assert warnings == []
    theme = themes["solarized-vault"]
    assert theme.primary == "#268bd2"
    assert theme.background == "#002b36"
    assert theme.variables["vault-sidecar"] == "#586e75"  # given
    assert theme.variables["vault-bad"] == "#dc322f"  # derived from its error colour
    assert theme.variables["footer-key-foreground"] == "#268bd2"


def test_name_defaults_to_file_stem_and_user_theme_replaces_builtin(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text('primary = "#ff8800"\n')
    (tmp_path / "dark.toml").write_text('name = "vaultsh-dark"\nprimary = "#00ff00"\n')
    themes, warnings = load_themes_with_warnings(tmp_path)
    assert warnings == []
    assert themes["mine"].primary == "#ff8800"
    assert themes["vaultsh-dark"].primary == "#00ff00"


BROKEN = {
    "syntax.toml": "name = 'x\nprimary = 1",
    "badcolour.toml": 'name = "bc"\nprimary = "not-a-colour"\n',
    "typo.toml": 'name = "typo"\nprimry = "#ffffff"\n',
    "noprimary.toml": 'name = "np"\nbackground = "#000000"\n',
    "badvar.toml": 'name = "bv"\nprimary = "#fff"\n[variables]\nvault-bad = "url(x)"\n',
    "badname.toml": 'name = "../../etc"\nprimary = "#fff"\n',
    "alpha.toml": 'name = "al"\nprimary = "#fff"\ntext_alpha = 3\n',
    "dark.toml": 'name = "dk"\nprimary = "#fff"\ndark = "yes"\n',
}


def test_broken_user_files_are_skipped_with_one_warning_each(tmp_path: Path) -> None:
    for name, text in BROKEN.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "good.toml").write_text(CUSTOM)
    (tmp_path / "notes.txt").write_text("not a theme, not a .toml: ignored")
    themes, warnings = load_themes_with_warnings(tmp_path)
    assert list(themes) == [*BUILTIN_THEMES, "solarized-vault"]
    assert len(warnings) == len(BROKEN)
    for line in warnings:
        assert "\n" not in line
        assert line.startswith("theme skipped: ")
    for name in BROKEN:
        assert sum(str(tmp_path / name) in line for line in warnings) == 1, name
    why = {name: next(w for w in warnings if name in w) for name in BROKEN}
    assert "not valid TOML" in why["syntax.toml"]
    assert "'not-a-colour' is not a colour" in why["badcolour.toml"]
    assert "unknown key 'primry'" in why["typo.toml"]
    assert "'primary' colour is required" in why["noprimary.toml"]
    assert "vault-bad" in why["badvar.toml"]


def test_load_themes_logs_the_warnings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "badcolour.toml").write_text(BROKEN["badcolour.toml"])
    with caplog.at_level(logging.WARNING, logger="vaultsh.tui.themes"):
        themes = load_themes(tmp_path)
    assert "bc" not in themes
    assert [r.getMessage() for r in caplog.records] == [
        f"theme skipped: {tmp_path / 'badcolour.toml'}: 'primary': 'not-a-colour' is not a colour"
    ]


def test_unreadable_theme_file_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "dir.toml").mkdir()  # a directory named like a theme: reading it fails
    themes, warnings = load_themes_with_warnings(tmp_path)
    assert list(themes) == list(BUILTIN_THEMES)
    assert len(warnings) == 1 and "cannot read" in warnings[0]


@pytest.mark.parametrize("name", BUILTIN_THEMES)
def test_builtin_text_colours_are_readable(name: str, tmp_path: Path) -> None:
    """WCAG AA (4.5:1) for text, vault markers and the log's / info panel's error, warning and
    success text (vaultsh/tui/palette.py) on the backgrounds that rows use."""
    variables = resolved_variables(load_themes(tmp_path)[name])
    for fg in ("foreground", *VAULT_VARIABLES, *palette.ROLES):
        for bg in ("background", "surface"):
            ratio = contrast(variables[fg], variables[bg])
            assert ratio >= 4.5, f"{name}: {fg} on {bg} is {ratio:.2f}:1"


def test_high_contrast_theme_meets_wcag_aaa(tmp_path: Path) -> None:
    """7:1 or more for every text colour on every background it can appear on."""
    theme = load_themes(tmp_path)["vaultsh-high-contrast"]
    variables = resolved_variables(theme)
    assert theme.text_alpha == 1.0  # text is not blended into the background
    foregrounds = (
        "foreground",
        "text",
        "text-muted",
        "text-disabled",
        "foreground-muted",
        "primary",
        "warning",
        "error",
        "success",
        "accent",
        "footer-key-foreground",
        "footer-foreground",
        *VAULT_VARIABLES,
    )
    for fg in foregrounds:
        for bg in ("background", "surface", "panel", "footer-background"):
            ratio = contrast(variables[fg], variables[bg])
            assert ratio >= 7.0, f"{fg} {variables[fg]} on {bg} {variables[bg]} is {ratio:.2f}:1"
    cursor = contrast(variables["block-cursor-foreground"], variables["block-cursor-background"])
    assert cursor >= 7.0
    selection = contrast(variables["input-selection-foreground"], variables["input-selection-background"])
    assert selection >= 7.0
    # The other built-ins are ordinary themes: high contrast must be clearly higher than them.
    dark = resolved_variables(load_themes(tmp_path)["vaultsh-dark"])
    assert contrast(variables["foreground"], variables["background"]) > contrast(
        dark["foreground"], dark["background"]
    )


class ThemedApp(App[None]):
    """An app whose CSS uses every vault-* variable, as the TUI's does."""

    CSS = "\n".join(f"#{key} {{ color: ${key}; }}" for key in VAULT_VARIABLES)

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return theme_variable_defaults()

    def compose(self) -> ComposeResult:
        for key in VAULT_VARIABLES:
            yield Static(key, id=key)


@pytest.mark.asyncio
async def test_every_theme_applies_in_a_textual_app(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text('primary = "#ff8800"\nforeground = "#dddddd"\n')  # no vault colours
    themes = load_themes(tmp_path)
    app = ThemedApp()
    async with app.run_test() as pilot:
        for theme in themes.values():
            app.register_theme(theme)
        for name, theme in themes.items():
            app.theme = name
            await pilot.pause()
            for key in VAULT_VARIABLES:
                expected = Color.parse(theme.variables[key].split()[0])
                shown = app.query_one(f"#{key}", Static).styles.color
                assert (shown.r, shown.g, shown.b) == (expected.r, expected.g, expected.b), (name, key)
        app.theme = "textual-dark"  # Textual's own theme: vaultsh's defaults fill the gaps
        await pilot.pause()
        assert app.get_css_variables()["vault-bad"] == theme_variable_defaults()["vault-bad"]
