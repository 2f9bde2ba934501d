"""The layering of docs/ARCHITECTURE.md: who may import what, checked on the real modules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "vaultsh"
UI_AND_FUSE = ("textual", "prompt_toolkit", "pyfuse3", "trio")
CRYPTO_LIBS = ("cryptography", "nacl")


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_only_crypto_package_imports_crypto_libraries() -> None:
    offenders = [
        str(p.relative_to(PKG))
        for p in PKG.rglob("*.py")
        if p.parent.name != "crypto" and imported_roots(p) & set(CRYPTO_LIBS)
    ]
    assert offenders == []


def test_core_imports_no_ui_or_fuse_library() -> None:
    for sub in ("crypto", "vault", "service"):
        for p in (PKG / sub).rglob("*.py"):
            assert not imported_roots(p) & set(UI_AND_FUSE), p


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


def _package_files(sub: str) -> list[Path]:
    return sorted((PKG / sub).rglob("*.py")) if (PKG / sub).is_dir() else []


def test_front_ends_import_no_fuse_or_crypto_library() -> None:
    # The TUI and the shell reach mounts through the service layer's worker protocol only.
    for sub in ("tui", "shell"):
        for p in _package_files(sub):
            assert not imported_roots(p) & {"pyfuse3", "trio", *CRYPTO_LIBS}, p


def test_fuse_package_imports_no_front_end() -> None:
    for p in _package_files("fs"):
        assert not imported_roots(p) & {"textual", "prompt_toolkit"}, p
        vaultsh_deps = {
            node.module.split(".")[1]
            for node in ast.walk(ast.parse(p.read_text()))
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vaultsh.")
        }
        assert vaultsh_deps <= {"vault", "fs", "service"}, (p, vaultsh_deps)
