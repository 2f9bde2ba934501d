"""docs/ARCHITECTURE.md names only modules that exist and explains every layering contract."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "ARCHITECTURE.md"
PACKAGES = ("crypto", "vault", "service", "fs", "tui", "shell")

# A source path as the page writes it: from the repository root (vaultsh/..., tests/...) or,
# inside the package, from a subpackage (vault/errors.py). The look-behind keeps the tail of a
# longer path (say $XDG_CONFIG_HOME/vaultsh/...) from counting as one.
PATH = re.compile(rf"(?<![\w/.$-])((?:vaultsh/|tests/|(?=(?:{'|'.join(PACKAGES)})/))[\w/]+\.py)\b")
# A dotted module name (python -m vaultsh.fs.worker).
MODULE = re.compile(r"(?<![\w./])vaultsh(?:\.\w+)+")
# A contract named in the layering section: **`contract-id`**.
CONTRACT = re.compile(r"\*\*`([a-z-]+)`\*\*")


def _text() -> str:
    return DOC.read_text(encoding="utf-8")


def _exists(path: str) -> bool:
    rel = path if path.startswith(("vaultsh/", "tests/")) else f"vaultsh/{path}"
    return (REPO / rel).is_file()


def _module_exists(dotted: str) -> bool:
    base = REPO.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def test_the_path_pattern_finds_paths_as_the_page_writes_them() -> None:
    sample = "see `vaultsh/fs/worker.py`, `vault/errors.py` and `tests/conftest.py`; not $X/vaultsh/a.py"
    assert PATH.findall(sample) == ["vaultsh/fs/worker.py", "vault/errors.py", "tests/conftest.py"]
    assert MODULE.findall("run `python -m vaultsh.fs.worker`.") == ["vaultsh.fs.worker"]


def test_every_module_path_named_exists() -> None:
    named = set(PATH.findall(_text()))
    assert len(named) > 50  # the module map: a page that lost it would pass trivially
    missing = sorted(p for p in named if not _exists(p))
    assert missing == [], f"docs/ARCHITECTURE.md names files that do not exist: {missing}"


def test_every_dotted_module_named_exists() -> None:
    named = set(MODULE.findall(_text()))
    missing = sorted(m for m in named if not _module_exists(m))
    assert missing == [], f"docs/ARCHITECTURE.md names modules that do not exist: {missing}"


def test_each_layering_contract_is_explained_and_each_explained_one_exists() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = {c["id"] for c in config["tool"]["importlinter"]["contracts"]}
    explained = set(CONTRACT.findall(_text()))
    assert explained == contracts
