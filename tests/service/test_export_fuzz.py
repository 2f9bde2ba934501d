"""Fuzzing export with crafted cipher trees: nothing outside DEST is ever created or changed.

Each example builds a vault tree from random steps (files, directories, symlinks pointing
inside and outside, long names, long-name aliases copied onto other entries' names, FIFOs
planted as entries, as a diriv or as a `.name`) and exports it. VAULTSH_FUZZ_EXAMPLES sets a
larger number of examples for a longer run.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat as stat_mod
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from service_harness import long_alias, snapshot
from vault_factory import NewVault

from vaultsh.service import transfer
from vaultsh.vault.errors import VaultError
from vaultsh.vault.names import DIRIV_NAME, LONGNAME_SUFFIX
from vaultsh.vault.vault import Vault

EXAMPLES = int(os.environ.get("VAULTSH_FUZZ_EXAMPLES", "50"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
HANG_GUARD_S = 60  # an export of a few dozen entries takes milliseconds; this only stops a hang

NAMES = ["a", "b", "x", "gocryptfs.diriv", "L" * 200]  # few names: collisions are the point
# Never "/": a regression must not get to change the system's directories.
LINK_TARGETS = ["OUTSIDE", "WORK", "..", "../..", "SANDBOX", ".", "a", "x/../..", "OUTSIDE/sub"]

Step = tuple[int, str, int, int]  # (parent pick, action, name pick, extra pick)
# Weighted towards what makes two entries of one name: a link to a directory plus an alias.
ACTIONS = [
    *("file", "dir", "dir", "symlink", "symlink", "alias-dir", "alias-dir", "alias-file"),
    *("fifo", "fifo-diriv", "fifo-name", "raw-link"),
]
STEPS = st.lists(
    st.tuples(
        st.integers(0, 3), st.sampled_from(ACTIONS), st.integers(0, len(NAMES) - 1), st.integers(0, 50)
    ),
    max_size=14,
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, new_vault: NewVault) -> tuple[Path, bytes]:
    """One initialised cipher dir (config and root diriv) and its master key, copied per example."""
    with new_vault(tmp_path_factory.mktemp("template") / "cipher") as made:
        return made.cipherdir, made.keys.master_key


@contextmanager
def hang_guard() -> Iterator[None]:
    def expire(_sig: int, _frame: FrameType | None) -> None:
        raise TimeoutError("export hangs")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(HANG_GUARD_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _build(vault: Vault, steps: list[Step], sandbox: Path) -> None:
    """Apply the steps; a step that does not apply to the tree so far does nothing."""
    dirs = [""]
    for parent_pick, action, name_pick, extra in steps:
        parent = dirs[parent_pick % len(dirs)]
        name = NAMES[name_pick]
        path = f"{parent}/{name}" if parent else name
        cparent = vault.cipher_path(parent)
        try:
            if action == "file":
                vault.write_file(path, os.urandom(extra * 97))
            elif action == "dir":
                vault.mkdir(path, 0o700 + extra % 0o100)
                dirs.append(path)
            elif action == "symlink":
                target = LINK_TARGETS[extra % len(LINK_TARGETS)]
                for word, where in (("OUTSIDE", "outside"), ("WORK", "work"), ("SANDBOX", "")):
                    target = target.replace(word, str(sandbox / where))
                vault.symlink(target, path)
            elif action in ("alias-dir", "alias-file"):
                # An entry of the parent (a symlink if there is one: the dangerous case) gets
                # an alias, a copy of some directory or file.
                entries = vault.listdir(parent)
                victims = [e for e in entries if e.kind == "symlink"] or entries
                if not victims:
                    continue
                victim = victims[extra % len(victims)].cipher_name
                alias = cparent / long_alias(victim)
                source = [e for e in entries if (e.kind == "dir") == (action == "alias-dir")]
                if not source or os.path.lexists(alias):
                    continue
                copy = cparent / source[extra % len(source)].cipher_name
                if action == "alias-dir":
                    shutil.copytree(copy, alias, symlinks=True)
                else:
                    shutil.copy2(copy, alias, follow_symlinks=False)
                name_file = cparent / (alias.name + LONGNAME_SUFFIX)
                if not os.path.lexists(name_file):
                    name_file.write_text(victim)
            elif action == "fifo":
                os.mkfifo(cparent / vault.encrypt_component(cparent, name)[0])
            elif action == "fifo-diriv" and parent:
                os.unlink(cparent / DIRIV_NAME)
                os.mkfifo(cparent / DIRIV_NAME)
            elif action == "fifo-name":
                os.mkfifo(cparent / (long_alias(f"fifo{extra}") + LONGNAME_SUFFIX))
                os.mkdir(cparent / long_alias(f"fifo{extra}"))
            elif action == "raw-link":
                # A cipher-side link under an encrypted name, to a directory outside.
                os.symlink(sandbox / "outside", cparent / vault.encrypt_component(cparent, name)[0])
        except (VaultError, OSError):
            continue


@FUZZ
@given(
    steps=STEPS,
    dest_exists=st.booleans(),
    root_iv=st.randoms(use_true_random=False).map(lambda r: r.randbytes(15) + b"\1"),
)
def test_export_never_touches_anything_outside_dest(
    template: tuple[Path, bytes], tmp_path: Path, steps: list[Step], dest_exists: bool, root_iv: bytes
) -> None:
    sandbox = Path(tempfile.mkdtemp(dir=tmp_path))
    try:
        tdir, key = template
        cipher = sandbox / "cipher"
        shutil.copytree(tdir, cipher)
        # A root IV of the example's own: other encrypted names, so another listing order.
        (cipher / DIRIV_NAME).unlink()
        (cipher / DIRIV_NAME).write_bytes(root_iv)
        outside = sandbox / "outside"
        (outside / "sub").mkdir(parents=True)
        (outside / "mine").write_text("not the export's")
        work = sandbox / "work"
        work.mkdir()
        (work / "neighbour").write_text("beside DEST")
        dest = work / "dest"
        if dest_exists:
            dest.mkdir()
        with Vault.open(cipher, master_key=key) as builder:
            _build(builder, steps, sandbox)
        # A fresh Vault: nothing the builder cached (an IV replaced by a FIFO) hides a plant.
        with Vault.open(cipher, master_key=key) as vault:
            before = {p: snapshot(p) for p in (outside, cipher)}
            before_work = {k: v for k, v in snapshot(work).items() if k not in (".", "dest")}
            work_mode = work.stat().st_mode
            with hang_guard():
                try:
                    report = transfer.export(vault, "", dest)
                    event(f"exported, {len(report.failed)} failed")
                    if any("neither is exported" in why for _, why in report.failed):
                        event("duplicate names met")
                except VaultError as e:  # refusing is always allowed; touching anything outside is not
                    event(f"refused: {type(e).__name__}")
        assert {p: snapshot(p) for p in (outside, cipher)} == before
        after_work = snapshot(work)
        assert work.stat().st_mode == work_mode
        assert {k: v for k, v in after_work.items() if k != "." and k.split("/")[0] != "dest"} == before_work
        # Whatever DEST holds was made there: real directories and files, symlinks not entered.
        if os.path.lexists(dest):  # lexists: a symlink made as DEST, even a dangling one, fails
            assert stat_mod.S_ISDIR(dest.lstat().st_mode)
    finally:
        _unblock_and_remove(sandbox)


def _unblock_and_remove(sandbox: Path) -> None:
    """Remove an example's sandbox; a 0500 directory exported as such would refuse rmtree."""
    for dirpath, dirs, _files in os.walk(sandbox):
        for d in dirs:
            p = Path(dirpath, d)
            if not p.is_symlink():
                p.chmod(0o700)
    shutil.rmtree(sandbox, ignore_errors=True)
