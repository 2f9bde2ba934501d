"""The upstream gocryptfs test vectors: where they live, how to copy them, what they contain.

The vectors live in the repository (tests/vectors/gocryptfs-upstream, see its INDEX.md and
LICENSE) and must never be written to, so every test works on a copy below `tmp_path`. In that
copy the cipher-side symlinks, which are stored as regular files holding the link target, are
turned back into real symlinks using the table below.

Every expected value here is data transcribed from INDEX.md or spec §12/§13.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PASSWORD = b"test"

# -- expected plaintext (spec §13) ------------------------------------------------------------

STATUS_CONTENT = b"It works!\n"
REL_TARGET = "status.txt"
ABS_TARGET = "/a/b/c/d"
LONGNAME_255 = "longname_255_" + "x" * 242
assert len(LONGNAME_255) == 255


@dataclass(frozen=True)
class ExampleVault:
    """One forward example filesystem: its INDEX.md row and ciphertext → plaintext table."""

    relpath: str
    master_key: str  # as printed in INDEX.md (grouped or plain hex)
    flags: tuple[str, ...]
    # cipher name -> plain name, from the INDEX.md tables (long names spelled out in full)
    symlinks: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    cipher_file_size: int = 60

    @property
    def name(self) -> str:
        return Path(self.relpath).name

    @property
    def has_longname(self) -> bool:
        return LONGNAME_255 in self.files.values()


_EX = "tests/example_filesystems/"

SUPPORTED_VAULTS: dict[str, ExampleVault] = {
    v.name: v
    for v in [
        ExampleVault(
            _EX + "v0.7",
            "ed7f6d83-40cce86c-0e7d79c2-a9438710-575221bf-30a0eb60-2821fa8f-7f3123bf",
            ("GCMIV128", "DirIV", "EMENames"),
            symlinks={"4tRF1LdULRFLiXwfze671Q==": "abs", "dwPcZNei4HN4qPA6FxoG_A==": "rel"},
            files={"RWPXmXkRFrWw1aOpq7C-NQ==": "status.txt"},
        ),
        ExampleVault(
            _EX + "v0.7-plaintextnames",
            "6d96397b-585631e1-c7cba69d-61e738b6-4d5ad2c2-e21f0fb3-52f60d3a-b08526f7",
            ("GCMIV128", "PlaintextNames"),
            symlinks={"abs": "abs", "rel": "rel"},
            files={"status.txt": "status.txt"},
        ),
        ExampleVault(
            _EX + "v0.9",
            "1cafe3f4-bc316466-2214c47c-ecd89bf3-4e078fe4-f5faeea7-8b7cab02-884f5e1c",
            ("GCMIV128", "DirIV", "EMENames", "LongNames"),
            symlinks={"00msNUi5h5aKMX_f-4pBhA==": "rel", "hwE1RKIXtF8hmQMvEXSTtg==": "abs"},
            files={
                "R83PhW-BBA_q4rPYD7dEMg==": "status.txt",
                "gocryptfs.longname.y4J-w3LBX165Mn_pGdDRY7Gb6EgHcTrdWjME3WGu-CQ=": LONGNAME_255,
            },
        ),
        ExampleVault(
            _EX + "v1.1-aessiv",
            "eaf371c3-f9a55336-8819f22b-7bccd7c2-a738cf61-7261c658-14c28a03-9428992b",
            ("GCMIV128", "DirIV", "EMENames", "LongNames", "AESSIV"),
            symlinks={"Sjl6QXHm2IjuKwaKgJ5jig==": "abs", "jCGXyJJqu4sdxRLsDQNEtA==": "rel"},
            files={
                "MA0FDdmnXpmPJtS_AcAbqQ==": "status.txt",
                "gocryptfs.longname.dDhdE3C5egl47Q4C4SuPNGPGkzyxuuHCP1efYMCaGqk=": LONGNAME_255,
            },
        ),
        ExampleVault(
            _EX + "v1.3",
            "fd890dab-86bf61cf-ec5ad460-ad3ed01f-9c52d546-2a31783d-a56b088d-3d05232e",
            ("GCMIV128", "DirIV", "EMENames", "LongNames", "Raw64", "HKDF"),
            symlinks={"gv65k_g2NQyBsSv_5dzMVQ": "abs", "uD4PVrDBY5y2k_qLKNOFvA": "rel"},
            files={
                "mGj2_hdnHe34Sp0iIQUwuw": "status.txt",
                "gocryptfs.longname.QhUr5d9FHerwEs--muUs6_80cy6JRp89c1otLwp92Cs": LONGNAME_255,
            },
        ),
        ExampleVault(
            _EX + "v2.2-deterministic-names",
            "722733f5-b0f399f5-5465ad7a-f0bed125-e82de7b4-045e7608-a5e5c78e-04a1a61e",
            ("HKDF", "GCMIV128", "EMENames", "LongNames", "Raw64"),
            symlinks={"5rnuPVh7zU9h5w36GgJfsQ": "rel", "YAqFj7_ODPtY1Xsfjfq3Zw": "abs"},
            files={
                "vqRhou1QUaSPxnmdCPFa5Q": "status.txt",
                "gocryptfs.longname.i9wUjJnqtKvC6jtS8ZAIUYWeMH8VITllPeJjlfSkNZo": LONGNAME_255,
            },
        ),
        ExampleVault(
            _EX + "v2.2-xchacha",
            "44670e7e-32475bfc-bdfb8a8c-be17a767-0679cac0-be705d8c-af41c411-28c40f26",
            ("HKDF", "XChaCha20Poly1305", "DirIV", "EMENames", "LongNames", "Raw64"),
            symlinks={"-d6B3-vXduk3KfmLhIOD_Q": "abs", "Y4Z6p3_XZ2yoqHuuJX4l6w": "rel"},
            files={
                "0FzVVSsqaL3FgoloAfeuaQ": "status.txt",
                "gocryptfs.longname.LSRpxavAZGa8XtbJOHutnI3ystvwDkintgk1h5E__Ts": LONGNAME_255,
            },
            cipher_file_size=68,
        ),
        ExampleVault(
            _EX + "v2.2-xchacha-deterministic-names",
            "beba88a9-c6cd1dc0-b69c6f9d-9daea493-9ae87082-4ffc40bf-b44e52db-3933af39",
            ("HKDF", "XChaCha20Poly1305", "EMENames", "LongNames", "Raw64"),
            symlinks={"QCVelV3GWR6e2tG6SEivxA": "rel", "pU6pYJvzh5ekRiQUuhQm0w": "abs"},
            files={
                "2IdIAfbUzIONJq8bnXtVgg": "status.txt",
                "gocryptfs.longname.YgPZi_hPi23QQOZcHFtxAXzdHSBtlWZlGQ6XIjf8DtY": LONGNAME_255,
            },
            cipher_file_size=68,
        ),
    ]
}

# Old formats whose config must be refused with exit code 27; the key still unwraps for v0.4.
UNSUPPORTED_VAULTS: dict[str, str] = {
    "v0.4": "74676e340b47c14500dac61a17a92316bb57044ce205b71f65f4fdca7cabd4b3",
    "v0.5": "199eae5536bff4af83b9a3a24fa16f651549ccdb2d08d1f0b1b269651b61f896",
    "v0.6": "7bc8deb05fc894efa093da4361561a810e8dee83fdc056a4937c37dd9df5c520",
    "v0.6-plaintextnames": "f4690202595e459364c4f7e04dddd7d1303147f90ca8aea2966341a752ea8ae9",
}

# Other vaults with a config, their INDEX.md master keys.
XRAY_AESGCM = "gocryptfs-xray/xray_tests/aesgcm_fs"
XRAY_AESSIV = "gocryptfs-xray/xray_tests/aessiv_fs"
BROKEN_FS = "tests/fsck/broken_fs_v1.4"
MALLEABLE = "tests/fsck/malleable_base64"
HKDF_BROKEN_CONTENT = "tests/hkdf_sanity/broken_content"
HKDF_BROKEN_NAMES = "tests/hkdf_sanity/broken_names"
CLI_LEGACY_CONF = "tests/cli/gocryptfs.conf.b9e5ba23"
CONFIG_TEST_DIR = "internal/configfile/config_test"

OTHER_KEYS: dict[str, str] = {
    XRAY_AESGCM: "b4d8b25c-324dd6ea-a328c990-6e8a2a3c-6038552a-042ced43-26cfff21-0c62957a",
    XRAY_AESSIV: "83dfe2df-9f6ad754-179cb4d5-377a65dd-bff54950-10e1b7b5-faf409e3-f7d8eeee",
    BROKEN_FS: "1eaa047652e7004f8fe91b8248cd46f70a011cbab9c3d862a258549000c56871",
    MALLEABLE: "cc685243ab8509adca9072f3a90104b35fb124de58b5bcd9d77f263a9d472bb3",
    HKDF_BROKEN_CONTENT: "2d7739671b518c2b5c9146a14d33adff30accd2c0c909bba208ce2b44d67acab",
    HKDF_BROKEN_NAMES: "7e3655889e9d4aba908c13668a3dc67b41bc00a6eae60ea86ff2487672921808",
    CLI_LEGACY_CONF: "b9e5ba23-981a22b8-c8d790d8-627add29-f680513f-b7b7035f-d203fb83-21d82205",
}

XRAY_ZERO5000_CIPHER = {XRAY_AESGCM: "VnvoeSetPaOFjZDaZAh0lA", XRAY_AESSIV: "klepPXQJIaEDaIx-yurAqQ"}

MALLEABLE_GOOD = "27AG8t-XZH7G9ou2OSD_zg"
MALLEABLE_TWIN = "27AG8t-XZH7G9ou2OSD_zh"

# Plaintext trees whose symlinks were stored as regular files (the `content` reference tree
# and the reverse-mode plaintext trees): plain path -> kept as is, symlinked by name.
_PLAIN_TREE_SYMLINKS = {
    "tests/example_filesystems/content": ("abs", "rel"),
    "tests/example_filesystems/v0.6-plaintextnames": ("abs", "rel"),
    "tests/example_filesystems/v1.1-reverse": ("abs", "rel"),
    "tests/example_filesystems/v1.1-reverse-plaintextnames": ("abs", "rel"),
    "tests/example_filesystems/v1.3-reverse": ("abs", "rel"),
}


def _symlink_table() -> dict[str, tuple[str, ...]]:
    table = {v.relpath: tuple(v.symlinks) for v in SUPPORTED_VAULTS.values()}
    table.update(_PLAIN_TREE_SYMLINKS)
    return table


SYMLINKS_BY_DIR = _symlink_table()


# -- locating and copying ----------------------------------------------------------------------


VECTORS_ENV = "VAULTSH_VECTORS"
IN_REPO_VECTORS = Path(__file__).resolve().parent / "vectors" / "gocryptfs-upstream"


def vectors_root() -> Path:
    """The read-only vector directory: $VAULTSH_VECTORS if set, else the copy in this repository."""
    override = os.environ.get(VECTORS_ENV)
    return Path(override).resolve() if override else IN_REPO_VECTORS


def require_vectors() -> Path:
    """The vector directory; a missing one is a broken checkout or override, so the test fails."""
    root = vectors_root()
    if not root.is_dir():
        pytest.fail(f"upstream gocryptfs vectors not found at {root} (check ${VECTORS_ENV})", pytrace=False)
    return root


def vector_path(relpath: str) -> Path:
    """Read-only path of a vector file (for reading only: never write below it)."""
    return require_vectors() / relpath


def make_writable(root: Path) -> None:
    """Give a copy of the (read-only) vectors owner-write, leaving symlinks alone."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            p = Path(dirpath) / name
            st = os.lstat(p)
            if not stat.S_ISLNK(st.st_mode):
                os.chmod(p, stat.S_IMODE(st.st_mode) | stat.S_IWUSR)
    os.chmod(root, stat.S_IMODE(os.stat(root).st_mode) | stat.S_IWUSR)


def restore_symlinks(copy: Path, relpath: str) -> None:
    """Turn the regular files that stand for symlinks back into symlinks (target = content)."""
    for cipher_name in SYMLINKS_BY_DIR.get(relpath.rstrip("/"), ()):
        file_to_symlink(copy / cipher_name)


def _restore_symlinks_below(copy: Path, relpath: str) -> None:
    # Every directory of the copied subtree that has symlinks in the table gets them back
    # (a no-op where real symlinks survived the checkout).
    prefix = relpath.strip("/")
    for dir_rel in SYMLINKS_BY_DIR:
        if prefix == "":
            restore_symlinks(copy / dir_rel, dir_rel)
        elif dir_rel == prefix or dir_rel.startswith(prefix + "/"):
            restore_symlinks(copy / dir_rel[len(prefix) :].lstrip("/"), dir_rel)


def copy_vectors(relpath: str, dest: Path) -> Path:
    """Copy `relpath` (below the vectors root; "" = everything) to `dest`, writable and with
    its symlinks restored: the one way a test gets vectors it may open, change or mount."""
    item = require_vectors() / relpath
    if not item.exists() and not item.is_symlink():
        raise FileNotFoundError(f"no such vector path: {item}")
    if item.is_dir():
        shutil.copytree(item, dest, symlinks=True)
        make_writable(dest)
        _restore_symlinks_below(dest, relpath)
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(item, dest, follow_symlinks=False)
        if not dest.is_symlink():
            os.chmod(dest, stat.S_IMODE(os.stat(dest).st_mode) | stat.S_IWUSR)
    return dest


def copy_vector(relpath: str, tmp_path: Path) -> Path:
    """A writable copy of a vector directory or file at `tmp_path`/vectors/`relpath`."""
    return copy_vectors(relpath, tmp_path / "vectors" / relpath)


def file_to_symlink(path: Path) -> None:
    """Replace a regular file that stands for a symlink by the symlink (target = content)."""
    if path.is_symlink():
        return
    target = path.read_bytes()
    path.unlink()
    os.symlink(target, path)
