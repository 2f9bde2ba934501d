"""The offline reverse view against a live `gocryptfs -reverse` mount of the same tree (spec §9)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from gocryptfs_harness import gocryptfs_init, gocryptfs_mount, make_interop_tree

from vaultsh.vault.reverse import ReverseView

pytestmark = pytest.mark.gocryptfs

PASSWORD = "test"
FLAGS = {
    "default": (),
    "plaintextnames": ("-plaintextnames",),
    "deterministic-names": ("-deterministic-names",),
    "longnamemax62": ("-longnamemax", "62"),
}


def walk_mount(root: Path) -> dict[str, tuple[str, bytes | str, int]]:
    """path -> (kind, content or link target, st_mtime_ns) for every entry below root."""
    out: dict[str, tuple[str, bytes | str, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("symlink", os.readlink(p), st.st_mtime_ns)
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", b"", st.st_mtime_ns)
            else:
                out[rel] = ("file", p.read_bytes(), st.st_mtime_ns)
    return out


@pytest.mark.parametrize("variant", list(FLAGS))
def test_view_is_byte_identical_to_gocryptfs_reverse(
    need_gocryptfs: None, tmp_path: Path, variant: str
) -> None:
    plain = make_interop_tree(tmp_path / "plain")
    gocryptfs_init(plain, PASSWORD, "-reverse", *FLAGS[variant])
    with gocryptfs_mount(plain, tmp_path / "mnt", PASSWORD, "-reverse") as mnt:
        theirs = walk_mount(mnt)
    view = ReverseView.open(plain, password=PASSWORD.encode())
    ours_dir = tmp_path / "ours"
    view.materialize(ours_dir)
    ours = walk_mount(ours_dir)
    assert sorted(ours) == sorted(theirs)
    for path, (kind, content, mtime) in theirs.items():
        okind, ocontent, omtime = ours[path]
        assert (okind, ocontent) == (kind, content), path
        # Real objects keep the plain mtime; gocryptfs 2.3 gives virtual files the dir's.
        if kind != "dir" and not path.endswith(("gocryptfs.diriv", ".name", "gocryptfs.conf")):
            assert omtime == mtime, path
