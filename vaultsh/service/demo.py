"""A sample vault that shows what vaultsh displays: nested dirs, long names, links, conflicts."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import struct
import tempfile
import zlib
from pathlib import Path

from vaultsh.service.vaults import InitOptions, create_vault
from vaultsh.vault.config import MIN_SCRYPT_LOGN
from vaultsh.vault.errors import CipherDirError
from vaultsh.vault.vault import Vault

# The lowest scrypt cost gocryptfs accepts: the demo unlocks instantly. That is only right
# because the demo holds nothing secret and its password is printed; real vaults use logn 16.
DEMO_SCRYPT_LOGN = MIN_SCRYPT_LOGN

_WORDS = (
    "amber", "anchor", "aspen", "basil", "beacon", "birch", "canyon", "cedar", "cobalt", "comet",
    "coral", "crater", "delta", "dune", "ember", "fable", "fern", "fjord", "garnet", "glacier",
    "harbor", "hazel", "heron", "indigo", "island", "jasper", "juniper", "kelp", "lagoon", "lantern",
    "lemon", "lilac", "maple", "marble", "meadow", "mesa", "nectar", "nimbus", "oasis", "onyx",
    "orchid", "otter", "pebble", "pepper", "pine", "plume", "quartz", "quill", "raven", "reef",
    "saffron", "sequoia", "sierra", "spruce", "tundra", "thistle", "topaz", "umber", "valley",
    "velvet", "walnut", "willow", "yarrow", "zephyr",
)  # fmt: skip

README = """\
# Welcome to the vaultsh demo vault

Everything you see here is stored encrypted, in the gocryptfs format, in the cipher
directory this vault was opened from. Things to try:

- open `notes/` and `notes/journal/`: every directory has its own name IV (gocryptfs.diriv)
- the file with the very long name is stored under a hashed name plus a `.name` sidecar
- `latest-entry` is a symlink; its target is encrypted too
- `media/big-random.bin` is a few MiB, to watch export progress
- `empty/` is an empty directory
- switch to the cipher view: the entries marked as undecryptable are copies a sync tool
  made after a conflict, and a stray file someone dropped into the cipher directory
"""

TODO = """\
- [x] create a vault
- [ ] export the photos
- [ ] print the master key and keep it somewhere safe
"""

JOURNAL = """\
# 2 January 2026

Synced the vault between two laptops; both edited the README and the to-do list at the
same time, so the sync tools kept conflict copies of the encrypted files.
"""

LONG_NAME = (
    "minutes of the very long meeting about naming things, in which everybody agreed that "
    "file names should be short and then nobody could agree on which words to leave out "
    "of this one.txt"
)
BIG_SIZE = 3 * 1024 * 1024

# How sync tools name the copies they keep when two machines change one file (here: one
# cipher file). gocryptfs cannot decrypt these names, so they show up as undecryptable.
DROPBOX_SUFFIX = " (conflicted copy 2026-01-02)"
SYNCTHING_INFIX = ".sync-conflict-20260102-123456-ABCDEFG"
STRAY_NAME = "copied in by hand.txt"


def demo_password() -> str:
    """A readable random passphrase: five words from a list of 64 (30 bits; it is a demo)."""
    return "-".join(secrets.choice(_WORDS) for _ in range(5))


def _tiny_png(width: int = 16, height: int = 16) -> bytes:
    """A small gradient PNG, so the demo has a real binary file."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 16, y * 16, 160)) for x in range(width)) for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _pseudo_random(size: int) -> bytes:
    """Incompressible filler without draining the system's entropy pool."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha512(counter.to_bytes(8, "big")).digest() * 64
        counter += 1
    return bytes(out[:size])


def _fill(vault: Vault) -> None:
    vault.write_file("README.md", README.encode())
    vault.mkdir("notes")
    vault.write_file("notes/todo.txt", TODO.encode())
    vault.mkdir("notes/journal")
    vault.write_file("notes/journal/2026-01-02.md", JOURNAL.encode())
    vault.write_file(f"notes/{LONG_NAME}", b"Stored under gocryptfs.longname.* with a .name sidecar.\n")
    vault.mkdir("media")
    vault.write_file("media/gradient.png", _tiny_png())
    vault.write_file("media/big-random.bin", _pseudo_random(BIG_SIZE))
    vault.symlink("notes/journal/2026-01-02.md", "latest-entry")
    vault.mkdir("empty")


def _add_sync_debris(vault: Vault) -> list[Path]:
    """Conflict copies and a stray file in the cipher dir; returns their paths."""
    readme = vault.cipher_path("README.md")
    todo = vault.cipher_path("notes/todo.txt")
    dropbox = readme.with_name(readme.name + DROPBOX_SUFFIX)
    syncthing = todo.with_name(todo.name + SYNCTHING_INFIX)
    shutil.copyfile(readme, dropbox)
    shutil.copyfile(todo, syncthing)
    stray = vault.cipherdir / STRAY_NAME
    stray.write_text("This file was put into the cipher directory directly; it is not encrypted.\n")
    return [dropbox, syncthing, stray]


def make_demo_vault(dest: Path | None = None) -> tuple[Path, str]:
    """Create the demo vault in `dest` (new or empty dir; None: a temp dir) -> (path, password)."""
    if dest is None:
        root = Path(tempfile.mkdtemp(prefix="vaultsh-demo-"))
    else:
        root = Path(dest)
        if root.exists() and (not root.is_dir() or any(os.scandir(root))):
            raise CipherDirError(f"{root}: must be a new or empty directory for the demo vault")
    password = demo_password()
    created = create_vault(root, password.encode(), InitOptions(logn=DEMO_SCRYPT_LOGN), create_dir=True)
    vault = Vault(root, created.master_key, created.conf.options, created.conf)
    _fill(vault)
    _add_sync_debris(vault)
    return root, password
