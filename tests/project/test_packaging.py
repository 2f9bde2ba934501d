"""Packaging: the built package carries the top-level themes/ and finds them once installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from gocryptfs_harness import REPO_ROOT

from vaultsh.tui.themes import BUILTIN_THEMES, builtin_theme_folder

# What setup.py needs to lay out the package; copied so the build leaves the checkout untouched.
_BUILD_INPUTS = ("setup.py", "pyproject.toml", "README.md", "vaultsh", "themes")


def _build_lib(tmp_path: Path) -> Path:
    """Run setuptools' build_py on a copy of the sources: the tree a wheel is zipped from."""
    src = tmp_path / "src"
    src.mkdir()
    for name in _BUILD_INPUTS:
        item = REPO_ROOT / name
        if item.is_dir():
            shutil.copytree(item, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(item, src / name)
    lib = tmp_path / "lib"
    subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(lib)],
        cwd=src,
        check=True,
        capture_output=True,
    )
    return lib


def test_checkout_finds_the_top_level_themes_folder() -> None:
    assert Path(str(builtin_theme_folder())) == REPO_ROOT / "themes"
    assert sorted(p.stem for p in (REPO_ROOT / "themes").glob("*.toml")) == sorted(BUILTIN_THEMES)


def test_built_package_ships_and_finds_the_builtin_themes(tmp_path: Path) -> None:
    lib = _build_lib(tmp_path)
    shipped = lib / "vaultsh" / "themes"
    assert sorted(p.name for p in shipped.iterdir()) == sorted(f"{n}.toml" for n in BUILTIN_THEMES)
    assert (lib / "vaultsh" / "tui" / "app.tcss").is_file()
    assert not (lib / "themes").exists()  # nothing lands at the top of site-packages

    # Import the built tree, not the checkout, from a directory outside both.
    probe = (
        "import json; from vaultsh.tui import themes; "
        "print(json.dumps([str(themes.builtin_theme_folder()), list(themes.builtin_themes())]))"
    )
    env = {**os.environ, "PYTHONPATH": str(lib)}
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, check=True, capture_output=True, text=True
    ).stdout
    folder, names = json.loads(out)
    assert Path(folder) == shipped
    assert names == list(BUILTIN_THEMES)
