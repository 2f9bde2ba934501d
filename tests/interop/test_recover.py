"""`vaultsh recover`: configs rebuilt from the master key for vaults written by the real gocryptfs.

Every vault here is made by gocryptfs itself (one per flag set of the interop matrix, and a
reverse-mode folder); its config is deleted, `vaultsh recover` writes a new one, and gocryptfs
mounts the vault with the new password and shows the same tree.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from gocryptfs_harness import (
    EXAMPLE_VAULTS,
    REVERSE_VARIANTS,
    VARIANTS,
    CmdResult,
    Manifest,
    Variant,
    assert_same_tree,
    copy_tree,
    gocryptfs_info_fields,
    gocryptfs_init,
    gocryptfs_mount,
    group_key,
    make_interop_tree,
    run_vaultsh,
    tree_manifest,
    write_passfile,
    xray_masterkey,
)

pytestmark = pytest.mark.gocryptfs

OLD_PASSWORD = "old pässword"
NEW_PASSWORD = "new password 2"
REVERSE_CONF = ".gocryptfs.reverse.conf"


class Built:
    """A pristine gocryptfs vault with the interop tree, and its master key; tests copy it."""

    def __init__(self, path: Path, key: str, expected: Manifest) -> None:
        self.path = path
        self.key = key
        self.expected = expected

    def copy(self, dest: Path) -> Path:
        shutil.copytree(self.path, dest, symlinks=True)
        return dest


@pytest.fixture(scope="module")
def expected_tree(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    return tree_manifest(make_interop_tree(tmp_path_factory.mktemp("plain")))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, expected_tree: Manifest) -> Callable[[Variant], Built]:
    """gocryptfs -init with a variant's flags, the interop tree written through a gocryptfs mount."""
    cache: dict[str, Built] = {}

    def make(variant: Variant) -> Built:
        if variant.id not in cache:
            base = tmp_path_factory.mktemp(f"built-{variant.id}")
            cipher = base / "cipher"
            gocryptfs_init(cipher, OLD_PASSWORD, *variant.gocryptfs)
            with gocryptfs_mount(cipher, base / "mnt", OLD_PASSWORD) as mnt:
                make_interop_tree(mnt)
            key = xray_masterkey(cipher / "gocryptfs.conf", OLD_PASSWORD)
            cache[variant.id] = Built(cipher, key, expected_tree)
        return cache[variant.id]

    return make


@pytest.fixture
def secrets(tmp_path: Path) -> Callable[[str], tuple[Path, Path]]:
    """(master key file, new password file) in a private directory."""

    def make(key: str) -> tuple[Path, Path]:
        d = tmp_path / "secrets"
        d.mkdir(exist_ok=True)
        keyfile = d / "masterkey"
        keyfile.write_text(group_key(key) + "\n")
        return keyfile, write_passfile(d / "newpw", NEW_PASSWORD)

    return make


@dataclasses.dataclass(frozen=True)
class Lost:
    """A copy of a built vault (its config deleted, unless kept) and the files that recover it."""

    cipher: Path
    key: str
    expected: Manifest
    keyfile: Path
    newpw: Path


@pytest.fixture
def lost_config(
    built: Callable[[Variant], Built], secrets: Callable[[str], tuple[Path, Path]], tmp_path: Path
) -> Callable[..., Lost]:
    """Factory: `lost_config(variant_id="default", *, keep_config=False)` -> a Lost in tmp_path."""

    def make(variant_id: str = "default", *, keep_config: bool = False) -> Lost:
        b = built(next(v for v in VARIANTS if v.id == variant_id))
        cipher = b.copy(tmp_path / "cipher")
        if not keep_config:
            (cipher / "gocryptfs.conf").unlink()
        keyfile, newpw = secrets(b.key)
        return Lost(cipher, b.key, b.expected, keyfile, newpw)

    return make


def recover(cipher: Path, keyfile: Path, newpw: Path, *flags: str) -> CmdResult:
    return run_vaultsh(
        "recover", "--masterkey-file", keyfile, "--new-passfile", newpw, "--scryptn", "10", *flags, cipher
    )


def listing(root: Path) -> dict[str, bytes]:
    """Every path below root with its content (files) or target (symlinks): proves nothing changed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                out[rel] = os.readlink(p).encode()
            elif p.is_file():
                out[rel] = p.read_bytes()
            else:
                out[rel] = b"<dir>"
    return out


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.id for v in VARIANTS])
def test_recovered_config_mounts_in_gocryptfs(
    need_gocryptfs: None,
    lost_config: Callable[..., Lost],
    tmp_path: Path,
    variant: Variant,
) -> None:
    b = lost_config(variant.id)
    cipher, keyfile, newpw = b.cipher, b.keyfile, b.newpw
    res = recover(cipher, keyfile, newpw).check()
    assert "[--defaults]" not in res.out
    # The flags gocryptfs -init wrote are found again, byte for byte in -info's order.
    assert gocryptfs_info_fields(cipher)["FeatureFlags"].split() == list(variant.feature_flags)
    with gocryptfs_mount(cipher, tmp_path / "mnt", NEW_PASSWORD) as mnt:
        assert_same_tree(tree_manifest(mnt), b.expected, f"gocryptfs mount after recover ({variant.id})")
    assert xray_masterkey(cipher / "gocryptfs.conf", NEW_PASSWORD) == b.key


@pytest.mark.parametrize("variant", REVERSE_VARIANTS, ids=[v.id for v in REVERSE_VARIANTS])
def test_reverse_folder_recovered(
    need_gocryptfs: None,
    secrets: Callable[[str], tuple[Path, Path]],
    tmp_path: Path,
    variant: Variant,
) -> None:
    """A plain folder that lost .gocryptfs.reverse.conf: the same encrypted view as before."""
    plain = make_interop_tree(tmp_path / "plain")
    expected = tree_manifest(plain)
    gocryptfs_init(plain, OLD_PASSWORD, "-reverse", *variant.gocryptfs)
    key = xray_masterkey(plain / REVERSE_CONF, OLD_PASSWORD)
    with gocryptfs_mount(plain, tmp_path / "view1", OLD_PASSWORD, "-reverse") as view:
        before = sorted(p for p in listing(view) if p != "gocryptfs.conf")
    (plain / REVERSE_CONF).unlink()
    keyfile, newpw = secrets(key)

    # Nothing in a plain folder shows the name settings: they must be stated.
    refused = recover(plain, keyfile, newpw, "--reverse")
    assert refused.returncode == 1, refused.describe()
    assert "cannot decide" in refused.err and not (plain / REVERSE_CONF).exists()

    # A name-mode flag settles everything; otherwise --defaults takes init's choice for names.
    names_given = {"--plaintextnames", "--deterministic-names"} & set(variant.vaultsh)
    flags = variant.vaultsh if names_given else (*variant.vaultsh, "--defaults")
    res = recover(plain, keyfile, newpw, "--reverse", *flags).check()
    assert "cannot be checked" in res.out
    assert json.loads((plain / REVERSE_CONF).read_text())["FeatureFlags"] == list(variant.feature_flags)
    with gocryptfs_mount(plain, tmp_path / "view2", NEW_PASSWORD, "-reverse") as view:
        after = sorted(p for p in listing(view) if p != "gocryptfs.conf")
        assert after == before, "the encrypted view's names changed"
        # The view is a vault whose config is the recovered one: gocryptfs opens it forward.
        with gocryptfs_mount(view, tmp_path / "fwd", NEW_PASSWORD) as fwd:
            assert_same_tree(tree_manifest(fwd), expected, "forward mount of the recovered view")


def test_wrong_key_exits_14_and_writes_nothing(
    need_gocryptfs: None,
    lost_config: Callable[..., Lost],
    secrets: Callable[[str], tuple[Path, Path]],
) -> None:
    b = lost_config()
    cipher = b.cipher
    before = listing(cipher)
    wrong = "%064x" % (int(b.key, 16) ^ 1)
    keyfile, newpw = secrets(wrong)
    res = recover(cipher, keyfile, newpw)
    assert res.returncode == 14, res.describe()
    assert "fits nothing" in res.err and len(res.err.strip().splitlines()) == 1
    assert listing(cipher) == before
    # Also with a damaged config in place: it stays, and no .bak appears.
    (cipher / "gocryptfs.conf").write_text("{ damaged")
    res = recover(cipher, keyfile, newpw, "--dry-run")
    assert res.returncode == 14
    assert listing(cipher) == {**before, "gocryptfs.conf": b"{ damaged"}


@pytest.mark.parametrize(
    ("variant_id", "flag"),
    [
        ("default", "--aessiv"),
        ("default", "--plaintextnames"),
        ("default", "--deterministic-names"),
        ("aessiv", "--xchacha"),
        ("plaintextnames", "--deterministic-names"),
        ("longnamemax62", "--longnamemax=200"),
    ],
)
def test_flag_contradicting_the_files_is_refused(
    need_gocryptfs: None,
    lost_config: Callable[..., Lost],
    variant_id: str,
    flag: str,
) -> None:
    b = lost_config(variant_id)
    cipher, keyfile, newpw = b.cipher, b.keyfile, b.newpw
    before = listing(cipher)
    res = recover(cipher, keyfile, newpw, flag)
    assert res.returncode == 1, res.describe()
    assert f"{flag.split('=')[0]}" in res.err and "contradicts" in res.err
    assert listing(cipher) == before


def test_flag_agreeing_with_the_files_is_accepted(
    need_gocryptfs: None,
    lost_config: Callable[..., Lost],
) -> None:
    b = lost_config("aessiv")
    cipher, keyfile, newpw = b.cipher, b.keyfile, b.newpw
    res = recover(cipher, keyfile, newpw, "--aessiv").check()
    assert "[--aessiv]" in res.out
    assert "AESSIV" in gocryptfs_info_fields(cipher)["FeatureFlags"].split()


def test_empty_vault_needs_flags(
    need_gocryptfs: None, secrets: Callable[[str], tuple[Path, Path]], tmp_path: Path
) -> None:
    cipher = tmp_path / "cipher"
    gocryptfs_init(cipher, OLD_PASSWORD, "-xchacha")
    key = xray_masterkey(cipher / "gocryptfs.conf", OLD_PASSWORD)
    (cipher / "gocryptfs.conf").unlink()
    keyfile, newpw = secrets(key)
    res = recover(cipher, keyfile, newpw)
    assert res.returncode == 1, res.describe()
    assert "cannot decide content" in res.err and "--xchacha" in res.err
    assert os.listdir(cipher) == ["gocryptfs.diriv"]
    res = recover(cipher, keyfile, newpw, "--xchacha").check()
    assert "cannot be checked" in res.out
    with gocryptfs_mount(cipher, tmp_path / "mnt", NEW_PASSWORD) as mnt:
        (mnt / "hello").write_text("hi")
    assert gocryptfs_info_fields(cipher)["FeatureFlags"].split() == [
        "HKDF",
        "XChaCha20Poly1305",
        "DirIV",
        "EMENames",
        "LongNames",
        "Raw64",
    ]


def test_existing_config_is_kept_as_bak_then_bak_n(
    need_gocryptfs: None,
    lost_config: Callable[..., Lost],
    tmp_path: Path,
) -> None:
    b = lost_config(keep_config=True)
    cipher, keyfile, newpw = b.cipher, b.keyfile, b.newpw
    original = (cipher / "gocryptfs.conf").read_bytes()
    res = recover(cipher, keyfile, newpw).check()
    assert "gocryptfs.conf.bak" in res.err
    assert (cipher / "gocryptfs.conf.bak").read_bytes() == original
    second = (cipher / "gocryptfs.conf").read_bytes()
    recover(cipher, keyfile, newpw).check()
    assert (cipher / "gocryptfs.conf.bak").read_bytes() == original
    assert (cipher / "gocryptfs.conf.bak.1").read_bytes() == second
    # The old password still opens the kept config (gocryptfs reads it with -config).
    with gocryptfs_mount(
        cipher, tmp_path / "mnt", OLD_PASSWORD, "-config", str(cipher / "gocryptfs.conf.bak")
    ) as mnt:
        assert (mnt / "empty-file").exists()


def test_dry_run_and_json(
    need_gocryptfs: None,
    lost_config: Callable[..., Lost],
) -> None:
    variant = next(v for v in VARIANTS if v.id == "longnamemax62")
    b = lost_config(variant.id)
    cipher, keyfile = b.cipher, b.keyfile
    before = listing(cipher)
    dry = run_vaultsh("recover", "--masterkey-file", keyfile, "--dry-run", cipher).check()
    assert "nothing written" in dry.out and "hashed above 62" in dry.out
    assert listing(cipher) == before
    res = run_vaultsh("recover", "--masterkey-file", keyfile, "--dry-run", "--json", cipher).check()
    data = json.loads(res.out)
    assert data["key_fits"] is True
    assert data["written"] is None and data["backup"] is None
    assert data["feature_flags"] == list(variant.feature_flags)
    assert data["long_name_max"] == 62
    assert data["settings"]["content"]["value"] == "AES-GCM-256"
    assert data["settings"]["names"]["source"] == "found"
    assert listing(cipher) == before


def test_master_key_from_stdin_and_new_password_from_extpass(
    need_gocryptfs: None,
    lost_config: Callable[..., Lost],
    tmp_path: Path,
) -> None:
    b = lost_config("deterministic-names")
    cipher, newpw = b.cipher, b.newpw
    res = run_vaultsh(
        "recover",
        "--masterkey",
        "-",
        "--new-extpass",
        f"cat {newpw}",
        "--scryptn",
        "10",
        cipher,
        input=(group_key(b.key) + "\n").encode(),
    ).check()
    assert b.key not in res.output and group_key(b.key) not in res.output
    with gocryptfs_mount(cipher, tmp_path / "mnt", NEW_PASSWORD) as mnt:
        assert (mnt / "a" / "b" / "c" / "d" / "deep.txt").read_text() == "four levels down\n"


def test_init_wraps_a_given_master_key_under_a_passfile(need_gocryptfs: None, tmp_path: Path) -> None:
    key = os.urandom(32).hex()
    keyfile = tmp_path / "key"
    keyfile.write_text(group_key(key) + "\n")
    pw = write_passfile(tmp_path / "pw", NEW_PASSWORD)
    cipher = tmp_path / "cipher"
    cipher.mkdir()
    run_vaultsh("init", "--masterkey-file", keyfile, "--passfile", pw, "--scryptn", "10", cipher).check()
    assert xray_masterkey(cipher / "gocryptfs.conf", NEW_PASSWORD) == key
    # Two password sources are still one too many.
    other = tmp_path / "other"
    other.mkdir()
    res = run_vaultsh("init", "--passfile", pw, "--extpass", "echo x", other)
    assert res.returncode == 1 and not os.listdir(other)


def test_broken_config_error_names_the_bak(need_gocryptfs: None, tmp_path: Path) -> None:
    cipher = tmp_path / "cipher"
    gocryptfs_init(cipher, OLD_PASSWORD)
    pw = write_passfile(tmp_path / "pw", OLD_PASSWORD)
    conf = cipher / "gocryptfs.conf"
    os.chmod(conf, 0o600)
    without_bak = run_vaultsh("ls", "--passfile", pw, cipher)
    assert without_bak.returncode == 0, without_bak.describe()
    shutil.copy(conf, cipher / "gocryptfs.conf.bak")
    for damage in (b'{"Version": 2, "FeatureFlags": ["Nope"]}', b"\x00garbage", b""):
        conf.write_bytes(damage)
        res = run_vaultsh("ls", "--passfile", pw, cipher)
        assert res.returncode != 0
        lines = res.err.strip().splitlines()
        assert len(lines) == 1 and "gocryptfs.conf.bak exists" in lines[0], res.describe()
        assert f"--config {cipher / 'gocryptfs.conf.bak'}" in lines[0]
        # Following the advice works.
        run_vaultsh("ls", "--config", cipher / "gocryptfs.conf.bak", "--passfile", pw, cipher).check()
    conf.unlink()
    (cipher / "gocryptfs.conf.bak").unlink()
    (cipher / "file").write_bytes(b"x")
    res = run_vaultsh("ls", "--passfile", pw, cipher)
    assert res.returncode != 0 and "vaultsh recover" in res.err and ".bak" not in res.err


@pytest.mark.parametrize("name", EXAMPLE_VAULTS)
def test_upstream_example_vaults_recovered(
    need_gocryptfs: None,
    vector_copy: Callable[[str], Path],
    secrets: Callable[[str], tuple[Path, Path]],
    tmp_path: Path,
    name: str,
) -> None:
    """Vaults from gocryptfs 0.7 to 2.2, legacy ones without HKDF or Raw64 among them."""
    vault = vector_copy(f"tests/example_filesystems/{name}")
    flags = gocryptfs_info_fields(vault)["FeatureFlags"].split()
    key = xray_masterkey(vault / "gocryptfs.conf", "test")
    with gocryptfs_mount(vault, tmp_path / "before", "test") as mnt:
        expected = tree_manifest(mnt)
    os.chmod(vault, 0o755)
    (vault / "gocryptfs.conf").unlink()
    keyfile, newpw = secrets(key)
    recover(vault, keyfile, newpw).check()
    recovered = gocryptfs_info_fields(vault)["FeatureFlags"].split()
    # Same flags, except that LongNames, which changes nothing for the names present, is
    # always written.
    assert set(recovered) - {"LongNames"} == set(flags) - {"LongNames"}
    with gocryptfs_mount(vault, tmp_path / "after", NEW_PASSWORD) as mnt:
        assert_same_tree(tree_manifest(mnt), expected, f"{name} after recover")


@pytest.mark.parametrize("variant", REVERSE_VARIANTS, ids=[v.id for v in REVERSE_VARIANTS])
def test_reverse_folder_recovered_from_a_copy_of_its_view(
    need_gocryptfs: None,
    secrets: Callable[[str], tuple[Path, Path]],
    tmp_path: Path,
    variant: Variant,
) -> None:
    """A backup of the encrypted view is the evidence: settings found, a wrong key refused."""
    plain = make_interop_tree(tmp_path / "plain")
    gocryptfs_init(plain, OLD_PASSWORD, "-reverse", *variant.gocryptfs)
    key = xray_masterkey(plain / REVERSE_CONF, OLD_PASSWORD)
    with gocryptfs_mount(plain, tmp_path / "view1", OLD_PASSWORD, "-reverse") as view:
        backup = copy_tree(view, tmp_path / "backup")
    (plain / REVERSE_CONF).unlink()
    before = listing(plain)

    wrong_keyfile, newpw = secrets("%064x" % (int(key, 16) ^ 1 << 200))
    res = recover(plain, wrong_keyfile, newpw, "--reverse", "--view", str(backup))
    assert res.returncode == 14, res.describe()
    assert listing(plain) == before

    keyfile, newpw = secrets(key)
    res = recover(plain, keyfile, newpw, "--reverse", "--view", str(backup)).check()
    assert "[--defaults]" not in res.out and "fits" in res.out
    assert json.loads((plain / REVERSE_CONF).read_text())["FeatureFlags"] == list(variant.feature_flags)
    with gocryptfs_mount(plain, tmp_path / "view2", NEW_PASSWORD, "-reverse") as view:
        names = sorted(p for p in listing(view) if p != "gocryptfs.conf")
    assert names == sorted(p for p in listing(backup) if p != "gocryptfs.conf")
