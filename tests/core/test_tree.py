"""The Tree interface, for a vault and a reverse-mode view holding the same hostile names."""

from __future__ import annotations

import errno
import inspect
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
from vault_factory import NewVault
from vectors import OTHER_KEYS, XRAY_AESGCM, XRAY_AESSIV, copy_vector

from vaultsh.vault.cipher_entries import (
    ROLE_CONF,
    ROLE_DIRIV,
    ROLE_OBJECT,
    ROLE_SIDECAR,
    CipherEntry,
)
from vaultsh.vault.conf_names import CONF_NAME
from vaultsh.vault.content import HEADER_LEN
from vaultsh.vault.errors import FsError, VaultError
from vaultsh.vault.names import DIRIV_NAME, LONGNAME_SUFFIX
from vaultsh.vault.reverse import ReverseView
from vaultsh.vault.tree import ROOT, Tree, VaultTree
from vaultsh.vault.vault import Vault
from vaultsh.vault.xray import Fact

CONTROL = "bad\x1b[31mname\x07"  # a terminal escape and a bell in a name
INVALID_UTF8 = os.fsdecode(b"inv\xff\xfeutf")  # not UTF-8: kept as surrogates
LONG = "L" * 200  # hashed into a long name with a .name sidecar (§6.7)
FILES = {
    "notes.txt": b"hello\n",
    CONTROL: b"escape\n",
    INVALID_UTF8: b"invalid\n",
    LONG: b"long\n" * 2000,  # more than one block
    "docs/report.txt": b"report\n",
}


class Folder(NamedTuple):
    tree: Tree
    root: Path  # what the tree was opened on: the cipher dir or the plain dir
    # The bytes of a cipher-side file as the tree's other means show them (the file on disk,
    # or the view's own read).
    cipher_bytes: Callable[[str], bytes]
    dir_iv: Callable[[str], bytes]  # the IV of a cipher-side directory


def _vault(tmp_path: Path, new_vault: NewVault) -> Folder:
    vault = new_vault(tmp_path / "cipher")
    vault.mkdir("docs")
    for path, data in FILES.items():
        vault.write_file(path, data)
    vault.symlink("notes.txt", "link")
    return Folder(
        VaultTree(vault),
        vault.cipherdir,
        lambda cpath: (vault.cipherdir / cpath).read_bytes(),
        lambda cdir: (vault.cipherdir / cdir / DIRIV_NAME).read_bytes(),
    )


def _reverse(tmp_path: Path, new_vault: NewVault) -> Folder:
    plain = tmp_path / "plain"
    (plain / "docs").mkdir(parents=True)
    for path, data in FILES.items():
        (plain / path).write_bytes(data)
    (plain / "link").symlink_to("notes.txt")
    view = new_vault.reverse_folder(plain)
    return Folder(
        view,
        plain,
        lambda cpath: b"".join(view.iter_file(view.resolve(cpath))),
        view.dir_iv,
    )


@pytest.fixture(params=["vault", "reverse"])
def folder(request: pytest.FixtureRequest, tmp_path: Path, new_vault: NewVault) -> Folder:
    make = _vault if request.param == "vault" else _reverse
    return make(tmp_path, new_vault)


def _entries(tree: Tree, plain: str = "") -> list[CipherEntry]:
    return [e for batch in tree.cipher_entries(tree.node(plain)) for e in batch]


def _facts(xray: list[list[Fact]]) -> dict[str, str]:
    return {fact.key: fact.value for group in xray for fact in group}


def test_both_trees_have_every_member_of_the_protocol() -> None:
    members = {name for name, _ in inspect.getmembers(Tree) if not name.startswith("_")}
    members |= set(Tree.__annotations__)
    assert {"cipher_entries", "watch_dir", "xray", "cipher_chunks", "plain_head", "status_note"} <= members
    for cls in (VaultTree, ReverseView):
        missing = sorted(m for m in members if not hasattr(cls, m) and m not in ("root", "options"))
        assert missing == [], f"{cls.__name__} lacks {missing}"
    assert VaultTree.status_note == "" and "reverse" in ReverseView.status_note
    assert (VaultTree.cipher_place, ReverseView.cipher_place) == ("on disk", "in the encrypted view")


def test_cipher_entries_are_every_name_of_the_cipher_side_with_its_role(folder: Folder) -> None:
    tree = folder.tree
    entries = _entries(tree)
    by_plain = {e.plain_name or "": e for e in entries if e.role == ROLE_OBJECT}
    assert set(by_plain) == {"notes.txt", CONTROL, INVALID_UTF8, LONG, "docs", "link"}
    assert [e.cipher_name for e in entries] == sorted(e.cipher_name for e in entries)
    for name, entry in by_plain.items():
        assert entry.cipher_name == tree.encrypt_path(name)  # the root: one component
        assert tree.decrypt_path(entry.cipher_name) == name
    roles = {e.cipher_name: e.role for e in entries if e.role != ROLE_OBJECT}
    long_cipher = by_plain[LONG].cipher_name
    assert roles == {
        DIRIV_NAME: ROLE_DIRIV,
        CONF_NAME: ROLE_CONF,
        long_cipher + LONGNAME_SUFFIX: ROLE_SIDECAR,
    }
    notes = by_plain["notes.txt"]
    assert (notes.kind, notes.plain_size) == ("file", len(FILES["notes.txt"]))
    assert notes.cipher_size == len(folder.cipher_bytes(notes.cipher_name)) > notes.plain_size
    assert by_plain["link"].kind == "symlink" and by_plain["docs"].is_dir
    # The same objects as the plain listing, under the same cipher names.
    assert {n.cipher_name for n in tree.children(ROOT)} == {e.cipher_name for e in by_plain.values()}
    docs = _entries(tree, "docs")
    assert {e.plain_name for e in docs if e.role == ROLE_OBJECT} == {"report.txt"}
    assert CONF_NAME not in {e.cipher_name for e in docs}  # the config is in the root only


def test_cipher_entries_come_in_batches_and_stop_when_cancelled(folder: Folder) -> None:
    tree = folder.tree
    every = _entries(tree)
    batches = list(tree.cipher_entries(ROOT, first_batch=2, batch=3))
    assert [len(b) for b in batches[:-1]] == [2] + [3] * (len(batches) - 2)
    assert [e.cipher_name for b in batches for e in b] == [e.cipher_name for e in every]
    calls: list[int] = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) > 1  # after the first batch

    assert [len(b) for b in tree.cipher_entries(ROOT, first_batch=2, batch=3, cancelled=cancelled)] == [2]


def test_watch_dir_is_the_local_directory_that_changes_with_the_listing(folder: Folder) -> None:
    tree = folder.tree
    docs = tree.node("docs")
    watched = tree.watch_dir(docs)
    assert watched.is_dir() and watched == folder.root / (
        docs.cipher_path if tree.cipher_files else docs.plain
    )
    before = set(os.listdir(watched))
    if tree.writable:
        assert isinstance(tree, VaultTree)
        tree.vault.write_file("docs/new.txt", b"new")
    else:
        (folder.root / "docs" / "new.txt").write_bytes(b"new")
    assert set(os.listdir(watched)) - before  # the change shows there
    assert "new.txt" in {e.plain_name for e in _entries(tree, "docs")}


def test_xray_says_how_each_cipher_side_name_is_built(folder: Folder) -> None:
    tree = folder.tree
    entries = {e.plain_name or e.cipher_name: e for e in _entries(tree)}
    notes = entries["notes.txt"]
    facts = _facts(tree.xray(ROOT, notes))
    head = folder.cipher_bytes(notes.cipher_name)[:HEADER_LEN]
    assert facts["Header"] == f"version 2, file ID {head[2:].hex()}"
    assert facts["Plain"] == "notes.txt"
    assert folder.dir_iv("").hex() in facts["Dir IV"]
    control = _facts(tree.xray(ROOT, entries[CONTROL]))
    assert control["Plain"] == "$'bad\\033[31mname\\a'"  # quoted as `ls` shows it
    long = _facts(tree.xray(ROOT, entries[LONG]))
    assert f"{entries[LONG].cipher_name}{LONGNAME_SUFFIX}" in long["Long name"]
    assert "EME blocks" in long["Name"]
    assert ", 3 blocks of" in long["Content"] and long["Block 2"].startswith("IV ")
    diriv = _facts(tree.xray(ROOT, entries[DIRIV_NAME]))
    assert diriv["IV"].startswith(folder.dir_iv("").hex())
    conf = _facts(tree.xray(ROOT, entries[CONF_NAME]))
    assert "HKDF" in conf["FeatureFlags"] and "conf" in conf["Role"]
    sidecar = _facts(tree.xray(ROOT, entries[entries[LONG].cipher_name + LONGNAME_SUFFIX]))
    assert sidecar["Names"] == entries[LONG].cipher_name
    gone = CipherEntry("AAAAAAAAAAAAAAAAAAAAAA", "file", ROLE_OBJECT, plain_name="gone")
    assert any(f.tone == "error" for group in tree.xray(ROOT, gone) for f in group)


def test_cipher_chunks_are_the_cipher_side_bytes(folder: Folder) -> None:
    tree = folder.tree
    entries = {e.plain_name or e.cipher_name: e for e in _entries(tree)}
    for name in ("notes.txt", LONG, DIRIV_NAME, CONF_NAME):
        cipher_name = entries[name].cipher_name
        data = b"".join(tree.cipher_chunks(ROOT, cipher_name))
        assert data == folder.cipher_bytes(cipher_name)
        if name == LONG:
            assert len(data) == tree.plain_stat(tree.node(LONG)).cipher_size
    for name in ("docs", "link"):
        with pytest.raises(FsError) as raised:
            b"".join(tree.cipher_chunks(ROOT, entries[name].cipher_name))
        assert raised.value.errno in (errno.EINVAL, errno.ELOOP)
    with pytest.raises(VaultError):
        b"".join(tree.cipher_chunks(ROOT, "AAAAAAAAAAAAAAAAAAAAAA"))


def test_plain_head_is_the_start_of_the_plain_content(folder: Folder) -> None:
    tree = folder.tree
    for path, data in FILES.items():
        assert tree.plain_head(tree.node(path), 100) == data[:100]
    with pytest.raises(VaultError):
        tree.plain_head(tree.node("docs"), 100)


@pytest.mark.parametrize("relpath", [XRAY_AESGCM, XRAY_AESSIV], ids=["aesgcm", "aessiv"])
def test_a_vault_files_xray_agrees_with_gocryptfs_xray(relpath: str, tmp_path: Path) -> None:
    """Header and blocks as upstream gocryptfs-xray printed them for its test file (§11.6)."""
    root = copy_vector(relpath, tmp_path)
    printed = copy_vector(relpath + ".xray.txt", tmp_path).read_text()
    with Vault.open(root, master_key=bytes.fromhex(OTHER_KEYS[relpath].replace("-", ""))) as vault:
        tree = VaultTree(vault)
        (entry,) = [e for e in _entries(tree) if e.plain_name == "zero5000"]
        facts = _facts(tree.xray(ROOT, entry))
    file_id = re.search(r"Id: (\w+)", printed)
    assert file_id is not None and facts["Header"] == f"version 2, file ID {file_id.group(1)}"
    blocks = re.findall(r"Block\s+(\d+): IV: (\w+), Tag: (\w+), Offset:\s+(\d+) Len: (\d+)", printed)
    assert len(blocks) == 2
    for n, iv, tag, offset, length in blocks:
        assert facts[f"Block {n}"] == f"IV {iv}  tag {tag}  @{offset} len {length}"
    assert facts["Overhead"].endswith("5,082 on disk for 5,000 plain")
