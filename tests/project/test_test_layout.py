"""The test suite's own layout: test modules share helpers only through tests/*.py helper modules."""

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
    return found


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
