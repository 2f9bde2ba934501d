"""Export and import as a library: cancellation, reports and leftovers (service/transfer.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vaultsh.service.transfer import Cancelled, export, import_
from vaultsh.vault.vault import Vault


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    cdir = tmp_path / "c"
    cdir.mkdir()
    Vault.init(cdir, b"pw", logn=10)
    return Vault.open(cdir, password=b"pw")


def _tree(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    for i in range(5):
        (root / f"f{i}").write_bytes(os.urandom(3 << 20))
    (root / "sub" / "small").write_text("x")
    return root


def test_cancelled_export_leaves_only_finished_files(vault: Vault, tmp_path: Path) -> None:
    import_(vault, _tree(tmp_path / "src"), "")
    calls = 0

    def cancel_after_four_steps() -> bool:
        nonlocal calls
        calls += 1
        return calls > 4  # in the middle of the second 3 MiB file

    out = tmp_path / "out"
    with pytest.raises(Cancelled):
        export(vault, "src", out, cancelled=cancel_after_four_steps)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["f0"]  # complete; nothing partial, no temporary names
    assert (out / "f0").read_bytes() == (tmp_path / "src" / "f0").read_bytes()


def test_cancelled_import_leaves_no_temporary_in_the_vault(vault: Vault, tmp_path: Path) -> None:
    src = _tree(tmp_path / "src")
    seen: list[int] = []
    with pytest.raises(Cancelled):
        import_(vault, src, "", cancelled=lambda: len(seen) > 0 or bool(seen.append(1)))
    listing = {e.name for e in vault.listdir("src", include_bad=True)}
    assert all(not n.startswith(".vaultsh-") for n in listing)
    assert listing <= {"f0"}


def test_report_counts_and_progress_sum(vault: Vault, tmp_path: Path) -> None:
    src = _tree(tmp_path / "src")
    os.symlink("f0", src / "link")
    steps: list[int] = []
    rep = import_(vault, src, "", progress=steps.append)
    assert (rep.files, rep.dirs, rep.symlinks) == (6, 2, 1)
    assert sum(steps) == rep.bytes == 5 * (3 << 20) + 1
    steps.clear()
    rep = export(vault, "", tmp_path / "out", progress=steps.append)
    assert (rep.files, rep.symlinks, rep.failed) == (6, 1, [])
    assert sum(steps) == rep.bytes


def test_progress_total_from_cipher_sizes_is_exact_for_a_clean_vault(vault: Vault, tmp_path: Path) -> None:
    from vaultsh.service.transfer import plain_tree_size, source_size

    src = _tree(tmp_path / "src")
    (src / ("long-" + "n" * 200)).write_bytes(os.urandom(5000))  # a long name and its sidecar
    import_(vault, src, "")
    assert plain_tree_size(vault, "src") == source_size(src) == 5 * (3 << 20) + 1 + 5000
    assert plain_tree_size(vault, "src/f0") == 3 << 20
