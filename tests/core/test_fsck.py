"""fsck: the upstream broken vaults against real `gocryptfs -fsck`, injected damage, quarantine, --json."""

from __future__ import annotations

import base64
import codecs
import contextlib
import json
import os
import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from gocryptfs_harness import gocryptfs_fsck, passfile, require_gocryptfs, run_vaultsh
from vault_factory import new_vault
from vectors import (
    BROKEN_FS,
    HKDF_BROKEN_CONTENT,
    HKDF_BROKEN_NAMES,
    MALLEABLE,
    MALLEABLE_TWIN,
    OTHER_KEYS,
    PASSWORD,
    copy_vector,
    file_to_symlink,
)

from vaultsh.vault import fsck
from vaultsh.vault.content import BLOCK_SIZE, HEADER_LEN
from vaultsh.vault.display import safe_text
from vaultsh.vault.fsck import Finding, Kind
from vaultsh.vault.keys import parse_master_key
from vaultsh.vault.names import DIRIV_NAME, LONGNAME_SUFFIX, is_long_name
from vaultsh.vault.vault import Vault

BIG_BLOCKS = 300  # crosses the 256-block read chunk of the checker
LONG_FILE = "a file name long enough to be stored hashed, " + "x" * 150
LONG_DIR = "a directory name long enough to be hashed too, " + "y" * 140
FLAT = [f"flat-{i}.txt" for i in range(8)]


def pseudo_random(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def make_vault(root: Path) -> Vault:
    """A small vault with every kind of object: multi-block, long names, links, xattrs."""
    v = new_vault(root, PASSWORD)
    v.write_file("big.bin", pseudo_random(BIG_BLOCKS * BLOCK_SIZE + 100))
    v.write_file("small.txt", b"hello\n")
    v.write_file("empty", b"")
    v.mkdir("docs")
    v.write_file("docs/report.txt", b"the report\n" * 500)
    v.write_file(f"docs/{LONG_FILE}", b"long\n")
    v.mkdir(f"docs/{LONG_DIR}")
    v.write_file(f"docs/{LONG_DIR}/inner.txt", b"inner\n")
    v.symlink("docs/report.txt", "link")
    v.mkdir("flat")
    for name in FLAT:
        v.write_file(f"flat/{name}", name.encode())
    v.set_xattr(v.cipher_path("small.txt"), b"user.note", b"a note", "small.txt")
    return v


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    return make_vault(tmp_path / "cipher")


def rel(v: Vault, plain: str) -> str:
    return os.path.relpath(v.cipher_path(plain), v.cipherdir)


def found(v: Vault, path: str = "") -> set[tuple[Kind, str, int | None]]:
    return {(f.kind, f.cipher_path, f.block) for f in fsck.check(v, path)}


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    os.chmod(path, 0o644)
    path.write_bytes(bytes(data))


def test_clean_vault_has_no_findings(vault: Vault) -> None:
    checker = fsck.Checker(vault)
    assert list(checker.run()) == []
    # every object was looked at: 14 files, 4 dirs (root included), 1 symlink
    assert (checker.counts.files, checker.counts.dirs, checker.counts.symlinks) == (14, 4, 1)
    assert checker.counts.bytes > BIG_BLOCKS * BLOCK_SIZE


# -- injected damage, one fault at a time -----------------------------------------------------

Damage = Callable[[Vault], set[tuple[Kind, str, int | None]]]


def _flip_block(seed: int) -> Damage:
    def damage(v: Vault) -> set[tuple[Kind, str, int | None]]:
        rng = random.Random(seed)
        block = rng.randrange(BIG_BLOCKS + 1)
        cb = v.content.cipher_block
        size = v.cipher_path("big.bin").stat().st_size
        start = HEADER_LEN + block * cb
        flip(v.cipher_path("big.bin"), rng.randrange(start, min(start + cb, size)))
        return {(Kind.BLOCK_BAD, rel(v, "big.bin"), block)}

    return damage


def _flip_header_version(v: Vault) -> set[tuple[Kind, str, int | None]]:
    flip(v.cipher_path("docs/report.txt"), 1)
    return {(Kind.HEADER_BAD, rel(v, "docs/report.txt"), None)}


def _flip_file_id(v: Vault) -> set[tuple[Kind, str, int | None]]:
    # The file ID is authenticated with every block (§5.1): all of them fail.
    flip(v.cipher_path("small.txt"), 7)
    return {(Kind.BLOCK_BAD, rel(v, "small.txt"), 0)}


def _flip_name(v: Vault) -> set[tuple[Kind, str, int | None]]:
    cpath = v.cipher_path("docs/report.txt")
    # Swap the first character for another of the alphabet: still base64, no longer our name.
    # About 1 garbled name in 256 still unpads (it cannot be told from a real one): skip those.
    iv = v.dir_iv(cpath.parent)
    candidates = [c + cpath.name[1:] for c in "BCDEFGHIJKLMNOPQ" if c != cpath.name[0]]
    results = v.names.decrypt_many(candidates, iv)
    new = next(n for n, r in zip(candidates, results, strict=True) if not isinstance(r, bytes))
    cpath.rename(cpath.with_name(new))
    return {(Kind.CORRUPT_NAME, os.path.relpath(cpath.with_name(new), v.cipherdir), None)}


def _flip_diriv(v: Vault) -> set[tuple[Kind, str, int | None]]:
    cdir = v.cipher_path("flat")
    names = [p.name for p in cdir.iterdir() if p.name != DIRIV_NAME]
    flip(cdir / DIRIV_NAME, 3)
    iv = (cdir / DIRIV_NAME).read_bytes()
    # A wrong IV garbles every name; the rare one that still unpads cannot be told from real.
    results = v.names.decrypt_many(names, iv)
    bad = {n for n, r in zip(names, results, strict=True) if not isinstance(r, bytes)}
    assert bad, "a flipped diriv garbles the names"
    return {(Kind.CORRUPT_NAME, f"{rel(v, 'flat')}/{n}", None) for n in bad}


def _flip_name_file(v: Vault) -> set[tuple[Kind, str, int | None]]:
    cpath = v.cipher_path(f"docs/{LONG_FILE}")
    flip(cpath.with_name(cpath.name + LONGNAME_SUFFIX), 10)
    return {(Kind.NAME_FILE_BAD, os.path.relpath(cpath, v.cipherdir), None)}


def _delete_name_file(v: Vault) -> set[tuple[Kind, str, int | None]]:
    cpath = v.cipher_path(f"docs/{LONG_DIR}")
    inner = cpath / v.encrypt_component(cpath, "inner.txt")[0]
    os.unlink(cpath.with_name(cpath.name + LONGNAME_SUFFIX))
    # The directory's name is lost, its content is not: the walk still goes in.
    assert inner.exists()
    return {(Kind.NAME_FILE_MISSING, os.path.relpath(cpath, v.cipherdir), None)}


def _orphan_name_file(v: Vault) -> set[tuple[Kind, str, int | None]]:
    cpath = v.cipher_path(f"docs/{LONG_FILE}")
    os.unlink(cpath)
    return {(Kind.NAME_FILE_ORPHAN, os.path.relpath(cpath, v.cipherdir) + LONGNAME_SUFFIX, None)}


def _delete_diriv(v: Vault) -> set[tuple[Kind, str, int | None]]:
    os.unlink(v.cipher_path("flat") / DIRIV_NAME)
    return {(Kind.DIRIV_MISSING, rel(v, "flat"), None)}


def _short_diriv(v: Vault) -> set[tuple[Kind, str, int | None]]:
    d = v.cipher_path("docs") / DIRIV_NAME
    os.chmod(d, 0o644)
    d.write_bytes(d.read_bytes()[:15])
    return {(Kind.DIRIV_BAD, rel(v, "docs"), None)}


def _truncate(cut: int, kind: Kind, block: int | None) -> Damage:
    def damage(v: Vault) -> set[tuple[Kind, str, int | None]]:
        path = v.cipher_path("big.bin")
        os.truncate(path, path.stat().st_size - cut)
        return {(kind, rel(v, "big.bin"), block)}

    return damage


def _truncate_into_header(v: Vault) -> set[tuple[Kind, str, int | None]]:
    os.truncate(v.cipher_path("small.txt"), 10)
    return {(Kind.SIZE_INVALID, rel(v, "small.txt"), None)}


def _flip_symlink(v: Vault) -> set[tuple[Kind, str, int | None]]:
    cpath = v.cipher_path("link")
    target = os.readlink(cpath)
    os.unlink(cpath)
    os.symlink(("A" if target[5] != "A" else "B").join([target[:5], target[6:]]), cpath)
    return {(Kind.SYMLINK_BAD, rel(v, "link"), None)}


def _flip_xattr_value(v: Vault) -> set[tuple[Kind, str, int | None]]:
    cpath = v.cipher_path("small.txt")
    disk = v.xattr_disk_name(b"user.note")
    value = bytearray(os.getxattr(cpath, disk))
    value[-1] ^= 1
    os.setxattr(cpath, disk, bytes(value))
    return {(Kind.XATTR_VALUE_BAD, rel(v, "small.txt"), None)}


def _conflict_copies(v: Vault) -> set[tuple[Kind, str, int | None]]:
    report = v.cipher_path("docs/report.txt")
    small = v.cipher_path("small.txt")
    copies = [
        report.with_name(report.name + " (conflicted copy 2026-01-02)"),
        small.with_name(small.name + ".sync-conflict-20260102-123456-ABCDEFG"),
        small.with_name(small.name + "-LAPTOP-7Q2"),  # OneDrive
        report.with_name(report.name + " (1)"),  # Google Drive
    ]
    for c in copies:
        shutil.copyfile(report if c.parent == report.parent else small, c)
    return {(Kind.CONFLICT_COPY, os.path.relpath(c, v.cipherdir), None) for c in copies}


def _stray_plaintext(v: Vault) -> set[tuple[Kind, str, int | None]]:
    (v.cipher_path("docs") / "tax return 2025.pdf").write_bytes(b"%PDF-1.7 plain text")
    return {(Kind.STRAY_PLAINTEXT, f"{rel(v, 'docs')}/tax return 2025.pdf", None)}


def _config_backup(v: Vault) -> set[tuple[Kind, str, int | None]]:
    shutil.copyfile(v.cipherdir / "gocryptfs.conf", v.cipherdir / "gocryptfs.conf.bak")
    return {(Kind.CONFIG_BACKUP, "gocryptfs.conf.bak", None)}


def _rmdir_leftover(v: Vault) -> set[tuple[Kind, str, int | None]]:
    shutil.copyfile(v.cipherdir / DIRIV_NAME, v.cipherdir / (DIRIV_NAME + ".rmdir.12345"))
    return {(Kind.RMDIR_LEFTOVER, DIRIV_NAME + ".rmdir.12345", None)}


DAMAGES: dict[str, Damage] = {
    **{f"block-{seed}": _flip_block(seed) for seed in range(4)},
    "header-version": _flip_header_version,
    "header-file-id": _flip_file_id,
    "name": _flip_name,
    "diriv-flipped": _flip_diriv,
    "name-file-flipped": _flip_name_file,
    "name-file-deleted": _delete_name_file,
    "name-file-orphan": _orphan_name_file,
    "diriv-deleted": _delete_diriv,
    "diriv-short": _short_diriv,
    # 100 plain bytes in the last block: cipher tail 132 bytes (AES-GCM overhead 32)
    "truncated-mid-block": _truncate(50, Kind.BLOCK_BAD, BIG_BLOCKS),
    "truncated-tail-too-short": _truncate(110, Kind.SIZE_INVALID, BIG_BLOCKS),
    "truncated-into-header": _truncate_into_header,
    "symlink": _flip_symlink,
    "xattr-value": _flip_xattr_value,
    "conflict-copies": _conflict_copies,
    "stray-plaintext": _stray_plaintext,
    "config-backup": _config_backup,
    "rmdir-leftover": _rmdir_leftover,
}


@pytest.mark.parametrize("name", list(DAMAGES))
def test_injected_fault_is_found_and_nothing_else(vault: Vault, name: str) -> None:
    require_gocryptfs()
    expected = DAMAGES[name](vault)
    findings = list(fsck.check(vault))
    assert {(f.kind, f.cipher_path, f.block) for f in findings} == expected
    _assert_covers_gocryptfs(vault, findings)


def test_all_faults_at_once_cover_what_gocryptfs_finds(tmp_path: Path) -> None:
    """Every fault in one vault: each is found, and so is everything `gocryptfs -fsck` reports."""
    require_gocryptfs()
    v = make_vault(tmp_path / "cipher")
    assert gocryptfs_fsck(v.cipherdir, PASSWORD)[0] == 0, "gocryptfs accepts the clean vault"
    expected: set[tuple[Kind, str, int | None]] = set()
    # Faults on distinct objects, so that none hides another.
    for name in (
        "block-1",
        "name-file-flipped",
        "diriv-deleted",
        "symlink",
        "xattr-value",
        "stray-plaintext",
    ):
        expected |= DAMAGES[name](v)
    expected |= _truncate_into_header(v)
    findings = list(fsck.check(v))
    assert {(f.kind, f.cipher_path, f.block) for f in findings} == expected
    _assert_covers_gocryptfs(v, findings)


# -- the upstream broken vaults, against real gocryptfs -------------------------------------------

_GO_ENTRY = re.compile(r'^fsck: corrupt entry in dir "(.*)": "(.*)"$')
_GO_PLAIN = re.compile(
    r'^fsck: (?:error reading (?:file|symlink|dir)|error opening dir|corrupt xattr name on file) "([^"]*)"'
)
_GO_XATTR = re.compile(r'^fsck: error reading xattr "[^"]*" from "([^"]*)"')


def _gocryptfs_items(v: Vault) -> tuple[int, set[str], set[str]]:
    """gocryptfs -fsck's exit code, the cipher paths of its corrupt entries, its plain paths."""
    code, output = gocryptfs_fsck(v.cipherdir, PASSWORD)
    cipher: set[str] = set()
    plain: set[str] = set()
    for line in output.splitlines():
        if m := _GO_ENTRY.match(line):
            cdir = v.cipher_path(_go_unquote(m.group(1)))
            cipher.add(os.path.relpath(cdir / _disk_name(cdir, _go_unquote(m.group(2))), v.cipherdir))
        elif m := _GO_PLAIN.match(line) or _GO_XATTR.match(line):
            plain.add(_go_unquote(m.group(1)))
        else:
            assert not line.startswith("fsck: ") or line.startswith("fsck summary"), f"unparsed: {line}"
    return code, cipher, plain


def _go_unquote(text: str) -> str:
    """The inside of a Go %q string (\\xNN, \\n, \\", ...); our test names are ASCII."""
    return codecs.decode(text.encode("ascii", "backslashreplace"), "unicode_escape")


def _disk_name(cdir: Path, reported: str) -> str:
    """gocryptfs names a long-name entry by its sidecar's content: find the entry on disk."""
    if os.path.lexists(cdir / reported):
        return reported
    for sidecar in cdir.glob("gocryptfs.longname.*" + LONGNAME_SUFFIX):
        if sidecar.read_bytes() == reported.encode():
            return sidecar.name.removesuffix(LONGNAME_SUFFIX)
    raise AssertionError(f"gocryptfs reported {reported!r}, which is not in {cdir}")


def _assert_covers_gocryptfs(v: Vault, findings: list[Finding]) -> None:
    code, go_cipher, go_plain = _gocryptfs_items(v)
    assert code in (0, 26)
    if code == 26:
        assert findings
    assert go_cipher <= {f.cipher_path for f in findings}
    assert go_plain <= {f.plain_path for f in findings}


def _apply_broken_fs_xattrs(root: Path) -> None:
    """The xattrs INDEX.md lists for broken_fs_v1.4 (git cannot store them)."""
    rows = [
        (
            "6nGs4Ugr3EAHd0KzkyLZ-Q",
            "0a5e7yWl0SGUGeWB0Sy2Kg",
            "hxnZvXSkDicfwVS9w4r1yYkFF61Qou6NaL-VhObYEdu6kuM",
        ),
        (
            "CMyUifVTjW5fsgXonWBT_RDkvLkdGrLttkZ45T3Oi3A",
            "0a5e7yWl0SGUGeWB0Sy2K0",
            "QHUMDTgbnl8Sv_A2dFQic_G2vN4_gmDna3651JAhF7OZ-YI",
        ),
        (
            "b00sbnGXGToadr01GHZaYQn8tjyRhe1OXNBZoQtMlcQ",
            "0a5e7yWl0SGUGeWB0Sy2Kg",
            "A0hvCePeKpL8bCpijhDKtf7cIijXYQsPnEbNJ84M2ONW0dd",
        ),
    ]
    for name, xname, value in rows:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        os.setxattr(root / name, "user.gocryptfs." + xname, raw)


@pytest.fixture
def broken_fs(tmp_path: Path) -> Vault:
    root = copy_vector(BROKEN_FS, tmp_path)
    v = Vault.open(root, master_key=parse_master_key(OTHER_KEYS[BROKEN_FS]))
    for name in ("good_symlink", "corrupt_symlink", "corrupt_symlink_2"):
        file_to_symlink(v.cipher_path(name))
    _apply_broken_fs_xattrs(root)
    return v


def test_broken_fs_same_findings_as_gocryptfs(broken_fs: Vault) -> None:
    require_gocryptfs()
    findings = list(fsck.check(broken_fs))
    _assert_covers_gocryptfs(broken_fs, findings)
    by_plain = {f.plain_path: f.kind for f in findings if f.plain_path}
    assert by_plain == {
        "corrupt_file": Kind.BLOCK_BAD,
        "corrupt_file_2": Kind.HEADER_BAD,
        "corrupt_symlink": Kind.SYMLINK_BAD,
        "corrupt_symlink_2": Kind.SYMLINK_BAD,
        "missing_diriv": Kind.DIRIV_MISSING,
        "diriv_too_short": Kind.DIRIV_BAD,
        "diriv_too_long": Kind.DIRIV_BAD,
        "xattr_corrupt_name": Kind.XATTR_NAME_BAD,
        "xattr_corrupt_value": Kind.XATTR_VALUE_BAD,
        # what gocryptfs shows as empty files: no ciphertext is 1 to 17 bytes long
        "incomplete_file_1": Kind.SIZE_INVALID,
        "incomplete_file_3": Kind.SIZE_INVALID,
    }
    by_cipher = {f.cipher_path: f.kind for f in findings if f.plain_path is None}
    assert by_cipher == {
        "invalid_file_name.3": Kind.STRAY_PLAINTEXT,
        "invalid_file_name_2": Kind.CORRUPT_NAME,
        "invalid_file_name____1": Kind.CORRUPT_NAME,
    }


@pytest.mark.parametrize(
    ("relpath", "expected"),
    [
        (HKDF_BROKEN_CONTENT, {(Kind.BLOCK_BAD, "status.txt")}),
        # names and content written without HKDF: neither decrypts under this config
        (
            HKDF_BROKEN_NAMES,
            {(Kind.CORRUPT_NAME, "L3yg-cJYAInDGg4TcjXrnw"), (Kind.BLOCK_BAD, "L3yg-cJYAInDGg4TcjXrnw")},
        ),
    ],
)
def test_hkdf_sanity_vaults_like_gocryptfs(
    tmp_path: Path, relpath: str, expected: set[tuple[Kind, str]]
) -> None:
    require_gocryptfs()
    v = Vault.open(copy_vector(relpath, tmp_path), password=PASSWORD)
    findings = list(fsck.check(v))
    assert {(f.kind, f.cipher_path) for f in findings} == expected
    _assert_covers_gocryptfs(v, findings)


def test_malleable_base64_twins_are_found(tmp_path: Path) -> None:
    require_gocryptfs()
    root = copy_vector(MALLEABLE, tmp_path)
    twins = ["27AG8t-XZH7G9ou2OSD_z\ng", "27AG8t-XZH7G9ou2OSD_z\rg"]
    for t in twins:
        (root / t).touch()
    v = Vault.open(root, master_key=parse_master_key(OTHER_KEYS[MALLEABLE]))
    findings = list(fsck.check(v))
    assert {f.cipher_path for f in findings} == {MALLEABLE_TWIN, *twins}
    _assert_covers_gocryptfs(v, findings)  # v2.3 finds none of them; v2.5+ all three


# -- a big clean vault ----------------------------------------------------------------------------


def test_ten_thousand_files_clean(tmp_path: Path) -> None:
    root = tmp_path / "big"
    v = new_vault(root, PASSWORD)
    v.sync_metadata = False
    for d in range(100):
        cdir = v.make_dir(root, f"dir-{d:03}", 0o755, f"dir-{d:03}")[0]
        for i in range(100):
            f, _ = v.create_at(cdir, f"file-{i:03}.txt", 0o644, "")
            with f:
                f.write(0, f"{d}/{i}\n".encode() * (i + 1))
    checker = fsck.Checker(v)
    assert list(checker.run()) == []
    assert checker.counts.files == 10_000
    assert checker.counts.dirs == 101


# -- hostile cipher dirs ------------------------------------------------------------------------


def test_planted_fifos_and_symlinks_are_not_followed_or_waited_on(vault: Vault, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"not the vault's")
    flat = vault.cipher_path("flat")
    os.unlink(flat / DIRIV_NAME)
    os.mkfifo(flat / DIRIV_NAME)  # reading it without O_NONBLOCK would hang forever
    docs = vault.cipher_path("docs")
    long_file = vault.cipher_path(f"docs/{LONG_FILE}")
    sidecar = long_file.with_name(long_file.name + LONGNAME_SUFFIX)
    os.unlink(sidecar)
    os.symlink(outside / "secret", sidecar)
    os.mkfifo(docs / "QUJDREVGR0hJSktMTU5PUA")
    res = run_vaultsh("fsck", "--masterkey", "-", vault.cipherdir, input=_key_input(vault), timeout=60)
    assert res.returncode == 26, res.describe()
    lines = res.out.splitlines()
    flat_iv = f"diriv-bad: /flat (cipher {rel(vault, 'flat')}): gocryptfs.diriv"
    assert f"{flat_iv}: not a regular file but a FIFO" in lines
    cside = os.path.relpath(long_file, vault.cipherdir)
    assert f"name-file-bad: cipher {cside}: long name: sidecar is a symlink, not a file" in lines
    assert any(
        line.startswith(f"corrupt-name: cipher {rel(vault, 'docs')}/QUJDREVGR0hJSktMTU5PUA") for line in lines
    )
    assert (outside / "secret").read_bytes() == b"not the vault's"


def _key_input(v: Vault) -> bytes:
    return v.keys.master_key.hex().encode() + b"\n"


# -- the command: --json, --quarantine, exit codes ------------------------------------------------


def test_cli_clean_and_damaged_exit_codes(vault: Vault) -> None:
    with passfile(PASSWORD) as pf:
        clean = run_vaultsh("fsck", "--passfile", pf, vault.cipherdir)
        assert clean.returncode == 0, clean.describe()
        assert clean.out == ""
        assert "no problems found (14 files, 4 dirs, 1 symlinks)" in clean.err
        expected = _flip_block(0)(vault)
        bad = run_vaultsh("fsck", "--passfile", pf, vault.cipherdir)
    assert bad.returncode == 26
    ((_, cpath, block),) = expected
    assert bad.out == f"block-bad: /big.bin (cipher {cpath}): block {block} fails authentication\n"


def test_cli_json_records(vault: Vault) -> None:
    expected = _flip_block(2)(vault) | _stray_plaintext(vault) | _delete_diriv(vault)
    with passfile(PASSWORD) as pf:
        res = run_vaultsh("fsck", "--json", "--passfile", pf, vault.cipherdir)
    assert res.returncode == 26
    records = [json.loads(line) for line in res.out.splitlines()]
    assert {(r["kind"], r["cipher_path"], r["block"]) for r in records} == {
        (str(k), c, b) for k, c, b in expected
    }
    big = next(r for r in records if r["kind"] == "block-bad")
    assert big["plain_path"] == "big.bin" and isinstance(big["block"], int)
    stray = next(r for r in records if r["kind"] == "stray-plaintext")
    assert stray["plain_path"] is None and "privacy leak" in stray["detail"]
    assert "fsck summary: 3 problems" in res.err


def test_cli_subtree(vault: Vault) -> None:
    _flip_block(1)(vault)
    _stray_plaintext(vault)
    with passfile(PASSWORD) as pf:
        res = run_vaultsh("fsck", "--json", "--passfile", pf, vault.cipherdir, "docs")
    assert res.returncode == 26
    assert [json.loads(line)["kind"] for line in res.out.splitlines()] == ["stray-plaintext"]


def test_quarantine_moves_damaged_items_keeping_cipher_paths(vault: Vault, tmp_path: Path) -> None:
    damaged = (
        _flip_block(3)(vault)
        | _stray_plaintext(vault)
        | _delete_diriv(vault)
        | _conflict_copies(vault)
        | _flip_name_file(vault)
    )
    before = {c: (vault.cipherdir / c).lstat().st_ino for _k, c, _b in damaged}
    q = tmp_path / "quarantine"
    with passfile(PASSWORD) as pf:
        res = run_vaultsh("fsck", "--quarantine", q, "--passfile", pf, vault.cipherdir)
        assert res.returncode == 26, res.describe()
        for c, ino in before.items():
            assert not os.path.lexists(vault.cipherdir / c)
            assert (q / c).lstat().st_ino == ino  # moved, not copied
            if is_long_name(Path(c).name):
                assert (q / (c + LONGNAME_SUFFIX)).is_file()  # the sidecar went along
        assert (q / rel(vault, "flat")).is_dir()
        again = run_vaultsh("fsck", "--passfile", pf, vault.cipherdir)
    assert again.returncode == 0, again.describe()


def test_quarantine_inside_the_vault_is_refused(vault: Vault) -> None:
    _stray_plaintext(vault)
    with passfile(PASSWORD) as pf:
        res = run_vaultsh("fsck", "--quarantine", vault.cipherdir / "q", "--passfile", pf, vault.cipherdir)
    assert res.returncode == 1
    assert "must be outside the vault" in res.err and len(res.err.splitlines()) == 1
    assert not (vault.cipherdir / "q").exists()
    assert (vault.cipher_path("docs") / "tax return 2025.pdf").exists()


def test_fsck_in_the_shell_session(vault: Vault) -> None:
    _stray_plaintext(vault)
    with passfile(PASSWORD) as pf:
        res = run_vaultsh("shell", "--passfile", pf, vault.cipherdir, input=b"cd docs\nfsck --json\n")
    assert [json.loads(line)["kind"] for line in res.out.splitlines() if line.startswith("{")] == [
        "stray-plaintext"
    ]


# -- --force-decode -------------------------------------------------------------------------------


def _damage_blocks(v: Vault, path: str, blocks: list[int]) -> None:
    cpath = v.cipher_path(path)
    for b in blocks:
        flip(cpath, HEADER_LEN + b * v.content.cipher_block + 20)


def test_force_decode_export_saves_the_undamaged_blocks(vault: Vault, tmp_path: Path) -> None:
    original = vault.read_file("big.bin")
    damaged = [5, 270]  # in the first and the second 1 MiB read
    _damage_blocks(vault, "big.bin", damaged)
    with passfile(PASSWORD) as pf:
        plain = run_vaultsh("export", "--passfile", pf, vault.cipherdir, "big.bin", tmp_path / "out")
        assert plain.returncode == 26
        assert not (tmp_path / "out").exists()  # without the flag nothing is written
        forced = run_vaultsh(
            "export", "--force-decode", "--passfile", pf, vault.cipherdir, "big.bin", tmp_path / "out"
        )
    assert forced.returncode == 26, forced.describe()
    saved = (tmp_path / "out").read_bytes()
    assert len(saved) == len(original)
    expected = bytearray(original)
    for b in damaged:
        expected[b * BLOCK_SIZE : (b + 1) * BLOCK_SIZE] = bytes(BLOCK_SIZE)
    assert saved == bytes(expected)
    warnings = [line for line in forced.err.splitlines() if "written as zeros" in line]
    assert [w.split("block ")[1].split()[0] for w in warnings] == ["5", "270"]


def test_force_decode_cat_and_a_truncated_last_block(vault: Vault) -> None:
    original = vault.read_file("docs/report.txt")  # 5500 bytes: two blocks
    cpath = vault.cipher_path("docs/report.txt")
    # Cut the last block down to 10 bytes: too short for its nonce and tag.
    os.truncate(cpath, HEADER_LEN + vault.content.cipher_block + 10)
    _damage_blocks(vault, "docs/report.txt", [0])
    with passfile(PASSWORD) as pf:
        refused = run_vaultsh("cat", "--passfile", pf, vault.cipherdir, "docs/report.txt")
        forced = run_vaultsh("cat", "--force-decode", "--passfile", pf, vault.cipherdir, "docs/report.txt")
    assert refused.returncode == 26 and refused.stdout == b""
    assert forced.returncode == 26
    assert forced.stdout == bytes(BLOCK_SIZE) + b"\0"  # one zero byte stands for the cut block
    assert len(original) > BLOCK_SIZE
    assert "block 0 is damaged" in forced.err and "block 1 is damaged" in forced.err


def test_force_decode_on_a_clean_file_changes_nothing(vault: Vault, tmp_path: Path) -> None:
    with passfile(PASSWORD) as pf:
        res = run_vaultsh(
            "export", "--force-decode", "--passfile", pf, vault.cipherdir, "big.bin", tmp_path / "out"
        )
    assert res.returncode == 0 and res.err == ""
    assert (tmp_path / "out").read_bytes() == vault.read_file("big.bin")


def test_fsck_force_decode_puts_back_a_salvaged_copy(vault: Vault, tmp_path: Path) -> None:
    original = vault.read_file("big.bin")
    big = vault.cipher_path("big.bin")
    _damage_blocks(vault, "big.bin", [7])
    _flip_header_version(vault)  # a damaged header cannot be salvaged: that file only leaves
    q = tmp_path / "q"
    with passfile(PASSWORD) as pf:
        alone = run_vaultsh("fsck", "--force-decode", "--passfile", pf, vault.cipherdir)
        assert alone.returncode == 1 and "needs --quarantine" in alone.err
        res = run_vaultsh("fsck", "--quarantine", q, "--force-decode", "--passfile", pf, vault.cipherdir)
        assert res.returncode == 26, res.describe()
        assert "salvaged: /big.bin" in res.out
        assert (q / big.name).is_file()  # the damaged original, untouched
        expected = bytearray(original)
        expected[7 * BLOCK_SIZE : 8 * BLOCK_SIZE] = bytes(BLOCK_SIZE)
        assert vault.read_file("big.bin") == bytes(expected)
        assert not vault.exists("docs/report.txt")
        assert run_vaultsh("fsck", "--passfile", pf, vault.cipherdir).returncode == 0


def test_fsck_command_reports_progress_and_can_be_cancelled(vault: Vault) -> None:
    from vaultsh.service.commands import Session, run_line

    class IO:
        def __init__(self, stop_after: int | None) -> None:
            self.lines: list[str] = []
            self.errors: list[str] = []
            self.steps: list[tuple[int, int]] = []
            self.stop_after = stop_after

        def write(self, text: str) -> None:
            self.lines.append(text)

        def error(self, text: str) -> None:
            self.errors.append(text)

        def ask_secret(self, prompt: str) -> bytes:
            raise AssertionError("no secret is needed")

        def confirm(self, question: str) -> bool:
            return False

        def progress(self, done: int, total: int) -> None:
            self.steps.append((done, total))

        def cancelled(self) -> bool:
            return self.stop_after is not None and len(self.steps) >= self.stop_after

    _stray_plaintext(vault)
    io = IO(None)
    assert run_line(Session(vault, vault.cipherdir, io), "fsck") == 26
    assert io.lines and io.lines[0].startswith("stray-plaintext: cipher ")
    totals = {t for _d, t in io.steps}
    assert totals == {fsck.measure(vault).objects} and io.steps == sorted(io.steps)
    stopper = IO(2)
    assert run_line(Session(vault, vault.cipherdir, stopper), "fsck") == 15
    assert len(stopper.steps) == 2 and stopper.errors == ["cancelled"]


def test_an_abandoned_or_cancelled_walk_closes_its_directories(vault: Vault) -> None:
    def open_fds() -> list[str]:
        # only descriptors inside this vault: other tests' garbage may close
        # its own descriptors at any moment during the walk
        held = []
        for n in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                held.append(os.readlink(f"/proc/self/fd/{n}"))
        return sorted(p for p in held if p.startswith(str(vault.cipherdir)))

    before = open_fds()
    walk = fsck.check(vault)
    _stray_plaintext(vault)
    next(iter(walk))  # the walk now holds fds of the root and docs
    walk.close()
    assert open_fds() == before

    class Stop(Exception):
        pass

    def stop(counts: fsck.Counts) -> None:
        if counts.files >= 3:
            raise Stop

    with pytest.raises(Stop):
        list(fsck.check(vault, progress=stop))
    assert open_fds() == before


def test_hostile_names_never_reach_the_terminal_raw(vault: Vault) -> None:
    evil = "title\x1b]0;PWNED\x07 \x1b[2J.txt"
    (vault.cipherdir / evil).write_bytes(b"plain")
    os.close(os.open(os.fsencode(vault.cipherdir) + b"/bad-\xff.txt", os.O_CREAT | os.O_WRONLY, 0o644))
    with passfile(PASSWORD) as pf:
        human = run_vaultsh("fsck", "--passfile", pf, vault.cipherdir)
        machine = run_vaultsh("fsck", "--json", "--passfile", pf, vault.cipherdir)
    assert human.returncode == machine.returncode == 26
    assert b"\x1b" not in human.stdout and b"\x07" not in human.stdout and b"\xff" not in human.stdout
    assert f"cipher {safe_text(evil)}:" in human.out
    bad = os.fsdecode(b"bad-\xff.txt")
    assert f"cipher {safe_text(bad)}:" in human.out
    # --json keeps the exact name (invalid UTF-8 as Python's surrogate escapes)
    paths = {json.loads(line)["cipher_path"] for line in machine.out.splitlines()}
    assert paths == {evil, os.fsdecode(b"bad-\xff.txt")}
