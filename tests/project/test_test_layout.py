"""The suite's own rules: no test module imports another, and nothing skips under CI=true."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def imported_test_modules(source: str) -> list[tuple[int, str]]:
    """(line, module) of every import of a test module (test_*, at any depth, in any scope)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            # `from tests.core import test_x` names the test module among the imported names.
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found += [(node.lineno, name) for name in names if name.split(".")[-1].startswith("test_")]
    return sorted(found)


def test_the_check_finds_every_spelling_of_a_test_module_import() -> None:
    source = (
        "import os\n"
        "from fuse_harness import mount_view\n"
        "from test_fs_reverse import exact_manifest\n"
        "import tests.fs.test_deep_paths\n"
        "from tests.core import test_vault\n"
        "def later():\n"
        "    from test_tui_app import make_vault\n"
    )
    assert [line for line, _ in imported_test_modules(source)] == [3, 4, 5, 7]


def suite_modules() -> list[Path]:
    """The test modules, conftest and helper modules (the gocryptfs vectors are data)."""
    return sorted(p for p in TESTS.rglob("*.py") if "vectors" not in p.relative_to(TESTS).parts[:-1])


def test_no_module_of_the_suite_imports_a_test_module() -> None:
    # A helper two test modules need lives in a tests/*.py helper module (fuse_harness,
    # tui_harness, ...): importing a test module runs its module-level code and, with pytest's
    # import modes, can load it twice or not at all.
    offenders = [
        f"{path.relative_to(TESTS)}:{line}: imports {module}"
        for path in suite_modules()
        for line, module in imported_test_modules(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_test_module_names_are_unique() -> None:
    # The layer folders are not packages: mypy and pytest know each module by its file name.
    names = Counter(path.name for path in suite_modules())
    assert [name for name, count in names.items() if count > 1] == []


# Skips that would also happen under CI=true. The CI-aware ways are gocryptfs_harness's
# skip_or_fail, import_or_skip and require_gocryptfs (and fuse_harness's require_fuse).
PLAIN_SKIPS = {
    "pytest.skip",
    "pytest.importorskip",
    "pytest.xfail",
    "pytest.mark.skip",
    "pytest.mark.skipif",
    "pytest.mark.xfail",
}


def plain_skips(source: str) -> list[tuple[int, str]]:
    """(line, name) of every use of pytest's own skips and expected failures."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            name = ast.unparse(node)
            if name in PLAIN_SKIPS:
                found.append((node.lineno, name))
    return sorted(found)


def test_the_check_finds_plain_skips() -> None:
    source = (
        "import pytest\n"
        "pytest.importorskip('pyfuse3')\n"
        "@pytest.mark.skipif(True, reason='x')\n"
        "def test_a():\n"
        "    pytest.skip('no tool')\n"
        "    skip_or_fail('no tool')\n"
    )
    assert plain_skips(source) == [(2, "pytest.importorskip"), (3, "pytest.mark.skipif"), (5, "pytest.skip")]


def test_nothing_skips_under_ci() -> None:
    # CI=true must run every test: what is missing there is a failure, not a skip. Only the
    # helper that decides (and the --run-slow option, which CI=true overrides) may skip.
    allowed = {TESTS / "gocryptfs_harness.py", TESTS / "conftest.py"}
    offenders = [
        f"{path.relative_to(TESTS)}:{line}: {name}"
        for path in suite_modules()
        if path not in allowed
        for line, name in plain_skips(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
