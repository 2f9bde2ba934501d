"""The layering of docs/ARCHITECTURE.md: the import-linter contracts hold and cover every package."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PKG = REPO / "vaultsh"
UI_AND_FUSE = ("textual", "prompt_toolkit", "pyfuse3", "trio")


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    contracts: list[dict[str, object]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def test_import_contracts_hold() -> None:
    # Run as `lint-imports` does, from the checkout, without a cache left behind in it.
    run = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    out = subprocess.run(
        [sys.executable, "-c", run, "--no-cache", "--no-logo"], cwd=REPO, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_package_has_a_layer() -> None:
    # A new package or top-level module must be placed in the layers before it can be used.
    (layers,) = [c["layers"] for c in _contracts() if c["type"] == "layers"]
    assert isinstance(layers, list)
    placed = {name.strip() for layer in layers for name in layer.split("|")}
    top_level = {
        f"vaultsh.{p.stem if p.is_file() else p.name}"
        for p in PKG.iterdir()
        if (p.suffix == ".py" and p.name != "__init__.py") or (p / "__init__.py").is_file()
    }
    assert top_level == placed


def test_loading_the_cli_pulls_in_no_ui_or_fuse_module() -> None:
    code = (
        "import sys, vaultsh.cli, vaultsh.vault.vault, vaultsh.vault.reverse;"
        f"bad=[m for m in sys.modules if m.split('.')[0] in {UI_AND_FUSE!r}];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_module_opens_with_a_one_line_docstring() -> None:
    for p in PKG.rglob("*.py"):
        doc = ast.get_docstring(ast.parse(p.read_text()))
        assert doc, f"{p} has no module docstring"
        assert "\n" not in doc.strip(), f"{p}: module docstring should be one line"
