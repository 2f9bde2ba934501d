"""Shared pytest options and fixtures: --run-slow, the gocryptfs guard, vectors, a new vault, own dirs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# The test folders (core/, fs/, service/, ...) share the helper modules at the top of tests/
# (vectors, vault_factory, posix_table and the *_harness modules) and import them by name,
# so put this directory on sys.path explicitly, whatever pytest's import mode.
_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from gocryptfs_harness import in_ci, require_gocryptfs, skip_or_fail  # noqa: E402
from vault_factory import NewVault  # noqa: E402
from vault_factory import new_vault as make_new_vault  # noqa: E402
from vectors import copy_vectors  # noqa: E402

from vaultsh.vault.vault import Vault  # noqa: E402

# The fixtures of the TUI tests (test vaults, a mountpoint, a tmux session) live with their
# helpers; loaded as a plugin, they reach every test module without being imported.
pytest_plugins = ["tui_harness"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        default=False,
        help="also run tests marked `slow` (CI=true runs them always)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow") or in_ci():  # CI runs every test
        return
    skip_slow = pytest.mark.skip(reason="slow test: pass --run-slow to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture
def need_gocryptfs() -> None:
    """Skip unless gocryptfs, fusermount3 and /dev/fuse exist; under CI=true, fail instead."""
    require_gocryptfs()


# ---------------------------------------------------------------------------------------------
# Upstream test vectors (tests/vectors/gocryptfs-upstream, see its INDEX.md)
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def vector_copy(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Factory: `vector_copy("tests/example_filesystems/v1.3")` -> a fresh writable copy."""

    def factory(relpath: str) -> Path:
        base = tmp_path_factory.mktemp("vectors")
        name = Path(relpath).name or "gocryptfs-upstream"
        return copy_vectors(relpath, base / name)

    return factory


@pytest.fixture
def upstream_vectors(vector_copy: Callable[[str], Path]) -> Path:
    """A fresh, writable copy of the whole gocryptfs-upstream vector directory."""
    return vector_copy("")


@pytest.fixture(autouse=True)
def private_runtime_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test gets its own runtime dir for mount sockets and registries.

    Parallel tests then never see each other's mounts, and nothing is left in the user's own
    runtime dir. It is short (under /tmp), since unix socket paths are limited to 108 bytes.
    """
    path = Path(tempfile.mkdtemp(prefix="vsrun-", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(path))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own config home (XDG_CONFIG_HOME, not made until something saves):
    preferences and themes are read and saved there, never in the user's own."""
    home = tmp_path / "config-home"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a full disk on demand (needs root, as in CI, where it must work)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True)
    if proc.returncode != 0:
        skip_or_fail(f"cannot mount a tmpfs (not root?): {proc.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        # lazily if a test left a descriptor open in it, so no mount outlives the test
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.fixture(scope="session")
def new_vault() -> NewVault:
    """The vault factory (tests/vault_factory.py): `new_vault(root, password=b"pw", *,
    master_key=None, **format options)` inits a vault in `root` (made if missing) with a fast
    scrypt and returns it unlocked; `new_vault.reverse_folder(...)` makes a reverse-mode
    folder and returns its view."""
    return make_new_vault


@pytest.fixture
def vault(tmp_path: Path, new_vault: NewVault) -> Vault:
    """A new, empty vault in tmp_path/cipher, password b"pw".

    Modules whose tests need another kind of vault define their own `vault` fixture."""
    return new_vault(tmp_path / "cipher")
