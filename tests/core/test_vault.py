"""The Vault API on fresh vaults, for every format option (spec §5.3, §6.7, §8)."""

from __future__ import annotations

import errno
import hashlib
import itertools
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vault_factory import FORMAT_OPTIONS, NewVault

from vaultsh.vault.config import load_config
from vaultsh.vault.content import BLOCK_SIZE, HEADER_LEN
from vaultsh.vault.errors import FsError, VaultError
from vaultsh.vault.names import DIRIV_NAME, b64_decode, is_long_name, is_name_file
from vaultsh.vault.vault import Vault

PW = b"pw"
LOGN = 10

LONG = "long_" + "L" * 195  # 200 bytes: hashed in every encrypted-names mode
LONG2 = "other_" + "M" * 194
MID = "m" * 40  # hashed only with longname_max 62


@pytest.fixture(params=list(FORMAT_OPTIONS))
def vault(request: pytest.FixtureRequest, tmp_path: Path, new_vault: NewVault) -> Vault:
    return new_vault(tmp_path / "cipher", **FORMAT_OPTIONS[request.param])


def _names(v: Vault, path: str = "") -> set[str]:
    return {e.name for e in v.listdir(path)}


def check_tree(v: Vault) -> None:
    """Tree invariants of §6.5/§6.7/§8: no orphan or missing sidecars, no parked divivs."""
    for dirpath, dirnames, filenames in os.walk(v.cipherdir):
        names = set(dirnames) | set(filenames)
        assert not any(n.startswith(DIRIV_NAME + ".rmdir.") for n in names), names
        if v.options.diriv:
            diriv = Path(dirpath) / DIRIV_NAME
            assert diriv.is_file(), f"{dirpath} lacks its diriv"
            assert len(diriv.read_bytes()) == 16
        elif not v.options.plaintext_names:
            assert DIRIV_NAME not in names
        if v.options.plaintext_names:
            continue
        for n in names:
            if is_name_file(n):
                assert n[: -len(".name")] in names, f"orphan sidecar {n} in {dirpath}"
            elif is_long_name(n):
                assert n + ".name" in names, f"long name {n} without sidecar in {dirpath}"


# -- init / open ---------------------------------------------------------------------------------


def test_init_layout(vault: Vault) -> None:
    root = vault.cipherdir
    conf = root / "gocryptfs.conf"
    assert stat.S_IMODE(os.stat(conf).st_mode) == 0o400
    if vault.options.diriv:
        assert sorted(os.listdir(root)) == ["gocryptfs.conf", "gocryptfs.diriv"]
        assert stat.S_IMODE(os.stat(root / DIRIV_NAME).st_mode) == 0o444
    else:
        assert os.listdir(root) == ["gocryptfs.conf"]
    assert vault.listdir() == []
    assert load_config(conf).scrypt.n == 1024


def test_init_non_empty_dir(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    with pytest.raises(VaultError) as exc:
        Vault.init(tmp_path, PW, logn=LOGN)
    assert exc.value.exit_code == 6
    assert os.listdir(tmp_path) == ["something"]


def test_init_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(VaultError) as exc:
        Vault.init(tmp_path / "nope", PW, logn=LOGN)
    assert exc.value.exit_code == 6


@pytest.mark.parametrize("opt", list(FORMAT_OPTIONS))
def test_open_with_master_key_without_config(tmp_path: Path, opt: str) -> None:
    root = tmp_path / "c"
    root.mkdir()
    conf, key = Vault.init(root, PW, logn=LOGN, **FORMAT_OPTIONS[opt])
    v = Vault.open(root, password=PW)
    v.mkdir("d")
    v.write_file("d/" + LONG, b"payload")
    v.symlink("target", "ln")
    options = conf.options
    (root / "gocryptfs.conf").unlink()
    v2 = Vault.open(root, master_key=key, options=options)
    assert v2.conf is None
    assert _names(v2) == {"d", "ln"}
    assert v2.read_file("d/" + LONG) == b"payload"
    assert v2.readlink("ln") == "target"


def test_open_with_master_key_reads_config_options(tmp_path: Path) -> None:
    root = tmp_path / "c"
    root.mkdir()
    _, key = Vault.init(root, PW, logn=LOGN, xchacha=True, deterministic_names=True)
    v = Vault.open(root, master_key=key)
    assert v.options.xchacha and v.options.deterministic_names


def test_open_wrong_password(tmp_path: Path, new_vault: NewVault) -> None:
    new_vault(tmp_path / "c")
    with pytest.raises(VaultError) as exc:
        Vault.open(tmp_path / "c", password=b"nope")
    assert exc.value.exit_code == 12


# -- files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 10000, 3 * 4096])
def test_write_read(vault: Vault, size: int) -> None:
    data = os.urandom(size)
    vault.write_file("f", data)
    assert vault.read_file("f") == data
    st_ = vault.stat("f")
    assert st_.size == size and st_.kind == "file"
    assert st_.cipher_size == vault.content.plain_to_cipher_size(size)
    assert os.path.getsize(vault.cipher_path("f")) == st_.cipher_size
    if size:
        assert vault.read_file("f", 1, 5) == data[1:6]
        assert vault.read_file("f", size - 1) == data[-1:]
        assert vault.read_file("f", size + 10) == b""
        assert vault.read_file("f", 0, size + 100) == data
    assert b"".join(bytes(c) for c in vault.iter_file("f")) == data


def test_create_is_empty_on_disk(vault: Vault) -> None:
    with vault.create("e"):
        pass
    assert os.path.getsize(vault.cipher_path("e")) == 0
    assert vault.read_file("e") == b""
    with pytest.raises(FsError) as exc:
        vault.create("e")
    assert exc.value.errno == errno.EEXIST


def test_header_and_file_ids(vault: Vault) -> None:
    vault.write_file("a", b"x")
    vault.write_file("b", b"x")
    ha = vault.cipher_path("a").read_bytes()[:HEADER_LEN]
    hb = vault.cipher_path("b").read_bytes()[:HEADER_LEN]
    assert ha[:2] == hb[:2] == b"\x00\x02"
    assert ha[2:] != hb[2:]


def test_iter_file_large_with_holes(vault: Vault) -> None:
    n = 256 * BLOCK_SIZE + 1234  # crosses the 1 MiB streaming chunk
    with vault.create("big") as f:
        f.write(0, b"head")
        f.write(n - 4, b"tail")
    data = b"".join(bytes(chunk) for chunk in vault.iter_file("big"))  # views are reused
    assert len(data) == n
    assert data[:4] == b"head" and data[-4:] == b"tail"
    assert data[4:-4] == bytes(n - 8)
    assert vault.read_file("big") == data


def _blocks(v: Vault, path: str) -> list[bytes]:
    raw = v.cipher_path(path).read_bytes()[HEADER_LEN:]
    cb = v.content.cipher_block
    return [raw[i : i + cb] for i in range(0, len(raw), cb)]


def test_write_past_eof_layout(vault: Vault) -> None:
    """§5.3: 1 byte at 0 then 1 byte at 12298 → [full block, hole, hole, last block]."""
    with vault.create("sparse") as f:
        f.write(0, b"a")
        f.write(12298, b"b")
    o = vault.content.overhead
    cipher = vault.cipher_path("sparse").read_bytes()
    assert len(cipher) == HEADER_LEN + 3 * (BLOCK_SIZE + o) + 11 + o
    if o == 32:
        assert len(cipher) == 12445
    blocks = _blocks(vault, "sparse")
    assert [len(b) for b in blocks] == [BLOCK_SIZE + o] * 3 + [11 + o]
    assert blocks[0] != bytes(len(blocks[0]))
    assert blocks[1] == bytes(BLOCK_SIZE + o)
    assert blocks[2] == bytes(BLOCK_SIZE + o)
    assert vault.read_file("sparse") == b"a" + bytes(12297) + b"b"
    assert vault.stat("sparse").size == 12299


def test_write_past_eof_after_short_file(vault: Vault) -> None:
    with vault.create("g") as f:
        f.write(0, b"hello")
        f.write(2 * BLOCK_SIZE + 10, b"world")
    blocks = _blocks(vault, "g")
    assert len(blocks[0]) == vault.content.cipher_block  # re-encrypted as a full block
    assert blocks[1] == bytes(vault.content.cipher_block)
    expect = b"hello" + bytes(2 * BLOCK_SIZE + 5) + b"world"
    assert vault.read_file("g") == expect


@pytest.mark.parametrize(
    ("start", "new"),
    [
        (0, 1),
        (0, 4096),
        (0, 8192),
        (0, 20000),
        (10, 100),
        (10, 4096),
        (10, 9000),
        (4096, 5000),
        (5000, 4096),
        (10000, 5000),
        (10000, 1),
        (10000, 0),
        (20000, 12288),
        (100, 50),
    ],
)
def test_truncate(vault: Vault, start: int, new: int) -> None:
    data = os.urandom(start)
    vault.write_file("t", data)
    with vault.open_file("t", writable=True) as f:
        f.truncate(new)
        assert f.size() == new
    expect = data[:new] + bytes(max(0, new - start))
    assert vault.read_file("t") == expect
    assert os.path.getsize(vault.cipher_path("t")) == vault.content.plain_to_cipher_size(new)


def test_truncate_grow_from_empty_20000(vault: Vault) -> None:
    """§5.3: truncate 0 → 20000 gives [hole ×4, partial encrypted block]."""
    with vault.create("h") as f:
        f.truncate(20000)
    blocks = _blocks(vault, "h")
    cb = vault.content.cipher_block
    assert len(blocks) == 5
    for b in blocks[:4]:
        assert b == bytes(cb)
    assert len(blocks[4]) == 20000 - 4 * BLOCK_SIZE + vault.content.overhead
    assert blocks[4] != bytes(len(blocks[4]))
    assert vault.read_file("h") == bytes(20000)


def test_truncate_grow_to_block_multiple_is_all_holes(vault: Vault) -> None:
    with vault.create("m") as f:
        f.truncate(8192)
    cipher = vault.cipher_path("m").read_bytes()
    assert len(cipher) == HEADER_LEN + 2 * vault.content.cipher_block
    assert cipher[:2] == b"\x00\x02" and cipher[2:HEADER_LEN] != bytes(16)
    assert cipher[HEADER_LEN:] == bytes(2 * vault.content.cipher_block)
    assert vault.read_file("m") == bytes(8192)


def test_truncate_zero_then_write_new_file_id(vault: Vault) -> None:
    vault.write_file("z", b"first")
    id1 = vault.cipher_path("z").read_bytes()[2:HEADER_LEN]
    with vault.open_file("z", writable=True) as f:
        f.truncate(0)
        assert os.path.getsize(vault.cipher_path("z")) == 0
        f.write(0, b"second")
    id2 = vault.cipher_path("z").read_bytes()[2:HEADER_LEN]
    assert id1 != id2
    assert vault.read_file("z") == b"second"


def test_overwrite_middle_changes_nonce(vault: Vault) -> None:
    data = os.urandom(3 * BLOCK_SIZE)
    vault.write_file("w", data)
    before = _blocks(vault, "w")
    with vault.open_file("w", writable=True) as f:
        f.write(BLOCK_SIZE + 5, b"XYZ")
    after = _blocks(vault, "w")
    assert after[0] == before[0] and after[2] == before[2]
    ns = vault.content.aead.nonce_size
    assert after[1][:ns] != before[1][:ns]
    expect = bytearray(data)
    expect[BLOCK_SIZE + 5 : BLOCK_SIZE + 8] = b"XYZ"
    assert vault.read_file("w") == bytes(expect)


# -- property test: VaultFile == bytearray model -----------------------------------------------------

_counter = itertools.count()

_op = st.one_of(
    st.tuples(st.just("write"), st.integers(0, 20000), st.integers(1, 9000)),
    st.tuples(st.just("truncate"), st.integers(0, 20000), st.just(0)),
)


@pytest.fixture(scope="module", params=["default", "aessiv", "xchacha"])
def shared_vault(request: pytest.FixtureRequest, new_vault: NewVault) -> Iterator[Vault]:
    with tempfile.TemporaryDirectory() as d:
        yield new_vault(Path(d) / "c", **FORMAT_OPTIONS[request.param])


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(_op, min_size=1, max_size=8), seed=st.integers(0, 255))
def test_random_ops_match_model(shared_vault: Vault, ops: list[tuple[str, int, int]], seed: int) -> None:
    v = shared_vault
    name = f"model{next(_counter)}"
    model = bytearray()
    with v.create(name) as f:
        for i, (kind, a, b) in enumerate(ops):
            if kind == "write":
                data = bytes((seed + i + k) % 251 + 1 for k in range(b))
                if a > len(model):
                    model.extend(bytes(a - len(model)))
                model[a : a + b] = data
                f.write(a, data)
            else:
                if a < len(model):
                    del model[a:]
                else:
                    model.extend(bytes(a - len(model)))
                f.truncate(a)
            assert f.size() == len(model)
            assert f.read() == bytes(model)
    assert v.read_file(name) == bytes(model)
    assert os.path.getsize(v.cipher_path(name)) == v.content.plain_to_cipher_size(len(model))
    # every non-final block on disk is full size (block positions are fixed)
    cb = v.content.cipher_block
    raw = v.cipher_path(name).read_bytes()
    if raw:
        body = len(raw) - HEADER_LEN
        assert body % cb == 0 or body % cb > v.content.overhead
    v.unlink(name)


# -- directories ---------------------------------------------------------------------------------


def test_mkdir_rmdir(vault: Vault) -> None:
    vault.mkdir("d", 0o750)
    st_ = vault.stat("d")
    assert st_.kind == "dir"
    assert stat.S_IMODE(st_.mode) == 0o750
    cdir = vault.cipher_path("d")
    if vault.options.diriv:
        assert os.listdir(cdir) == [DIRIV_NAME]
        assert stat.S_IMODE(os.stat(cdir / DIRIV_NAME).st_mode) == 0o444
        assert len((cdir / DIRIV_NAME).read_bytes()) == 16
    else:
        assert os.listdir(cdir) == []
    assert _names(vault) == {"d"}
    vault.write_file("d/f", b"x")
    with pytest.raises(FsError) as exc:
        vault.rmdir("d")
    assert exc.value.errno == errno.ENOTEMPTY
    assert vault.read_file("d/f") == b"x"
    vault.unlink("d/f")
    vault.rmdir("d")
    assert _names(vault) == set()
    assert not cdir.exists()
    check_tree(vault)
    with pytest.raises(FsError) as exc2:
        vault.mkdir("nope/sub")
    assert exc2.value.errno == errno.ENOENT


def test_mkdir_existing(vault: Vault) -> None:
    vault.mkdir("d")
    with pytest.raises(FsError) as exc:
        vault.mkdir("d")
    assert exc.value.errno == errno.EEXIST


def test_rmdir_readonly_dir(vault: Vault) -> None:
    vault.mkdir("ro", 0o555)
    vault.rmdir("ro")
    assert _names(vault) == set()
    check_tree(vault)


@pytest.mark.parametrize("opt", ["default", "aessiv", "xchacha", "longnamemax62"])
def test_diriv_differs_per_dir(tmp_path: Path, opt: str, new_vault: NewVault) -> None:
    vault = new_vault(tmp_path / "c", **FORMAT_OPTIONS[opt])
    assert vault.options.diriv
    vault.mkdir("a")
    vault.mkdir("b")
    ia = (vault.cipher_path("a") / DIRIV_NAME).read_bytes()
    ib = (vault.cipher_path("b") / DIRIV_NAME).read_bytes()
    assert ia != ib
    vault.write_file("a/same", b"")
    vault.write_file("b/same", b"")
    assert vault.cipher_path("a/same").name != vault.cipher_path("b/same").name


def test_nested_long_dirs(vault: Vault) -> None:
    path = "/".join([LONG, LONG2, MID, "leaf"])
    parts = path.split("/")
    for i in range(1, len(parts)):
        vault.mkdir("/".join(parts[:i]))
    vault.write_file(path, b"deep")
    assert vault.read_file(path) == b"deep"
    assert _names(vault, "/".join(parts[:2])) == {MID}
    check_tree(vault)
    for i in range(len(parts), 0, -1):
        p = "/".join(parts[:i])
        if i == len(parts):
            vault.unlink(p)
        else:
            vault.rmdir(p)
    assert _names(vault) == set()
    check_tree(vault)
    leftovers = [n for n in os.listdir(vault.cipherdir) if n not in ("gocryptfs.conf", DIRIV_NAME)]
    assert leftovers == []


# -- rename --------------------------------------------------------------------------------------


def test_rename_file(vault: Vault) -> None:
    vault.write_file("a", b"A")
    vault.rename("a", "b")
    assert _names(vault) == {"b"}
    assert vault.read_file("b") == b"A"


def test_rename_over_existing_file(vault: Vault) -> None:
    vault.write_file("a", b"A")
    vault.write_file("b", b"B")
    vault.rename("a", "b")
    assert _names(vault) == {"b"}
    assert vault.read_file("b") == b"A"
    check_tree(vault)


def test_rename_dir_over_empty_dir(vault: Vault) -> None:
    vault.mkdir("src")
    vault.write_file("src/f", b"F")
    vault.mkdir("dst")
    vault.rename("src", "dst")
    assert _names(vault) == {"dst"}
    assert vault.read_file("dst/f") == b"F"
    check_tree(vault)


def test_rename_dir_over_non_empty_dir(vault: Vault) -> None:
    vault.mkdir("src")
    vault.mkdir("dst")
    vault.write_file("dst/keep", b"K")
    with pytest.raises(FsError) as exc:
        vault.rename("src", "dst")
    assert exc.value.errno == errno.ENOTEMPTY
    assert vault.read_file("dst/keep") == b"K"
    assert _names(vault) == {"src", "dst"}
    check_tree(vault)


def test_rename_file_over_dir_and_dir_over_file(vault: Vault) -> None:
    vault.write_file("f", b"F")
    vault.mkdir("d")
    with pytest.raises(FsError) as exc:
        vault.rename("f", "d")
    assert exc.value.errno == errno.EISDIR
    with pytest.raises(FsError) as exc2:
        vault.rename("d", "f")
    assert exc2.value.errno == errno.ENOTDIR
    with pytest.raises(FsError) as exc3:
        vault.rename("d", "d/inside")
    assert exc3.value.errno == errno.EINVAL
    check_tree(vault)


def test_rename_across_dirs(vault: Vault) -> None:
    vault.mkdir("x")
    vault.mkdir("y")
    vault.mkdir("x/sub")
    vault.write_file("x/sub/f", b"S")
    vault.write_file("x/file", b"F")
    vault.rename("x/file", "y/file2")
    vault.rename("x/sub", "y/sub")
    assert _names(vault, "x") == set()
    assert _names(vault, "y") == {"file2", "sub"}
    assert vault.read_file("y/file2") == b"F"
    assert vault.read_file("y/sub/f") == b"S"
    vault.write_file("y/sub/g", b"G")  # the moved dir still encrypts names correctly
    assert _names(vault, "y/sub") == {"f", "g"}
    check_tree(vault)


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        ("short", LONG),
        (LONG, "short"),
        (LONG, LONG2),
        ("short", MID),
        (MID, LONG),
    ],
    ids=["short-long", "long-short", "long-long", "short-mid", "mid-long"],
)
@pytest.mark.parametrize("kind", ["file", "dir", "symlink"])
def test_rename_long_names(vault: Vault, src: str, dst: str, kind: str) -> None:
    vault.mkdir("into")
    if kind == "file":
        vault.write_file(src, b"content")
    elif kind == "dir":
        vault.mkdir(src)
        vault.write_file(f"{src}/child", b"c")
    else:
        vault.symlink("somewhere", src)
    check_tree(vault)
    vault.rename(src, dst)
    assert _names(vault) == {dst, "into"}
    check_tree(vault)
    vault.rename(dst, f"into/{src}")
    assert _names(vault) == {"into"}
    assert _names(vault, "into") == {src}
    check_tree(vault)
    full = f"into/{src}"
    if kind == "file":
        assert vault.read_file(full) == b"content"
    elif kind == "dir":
        assert vault.read_file(f"{full}/child") == b"c"
    else:
        assert vault.readlink(full) == "somewhere"
    leftovers = [n for n in os.listdir(vault.cipherdir) if n not in ("gocryptfs.conf", DIRIV_NAME)]
    assert leftovers == [vault.cipher_path("into").name]


def test_rename_long_over_existing_long(vault: Vault) -> None:
    vault.write_file(LONG, b"1")
    vault.write_file(LONG2, b"2")
    vault.rename(LONG, LONG2)
    assert _names(vault) == {LONG2}
    assert vault.read_file(LONG2) == b"1"
    check_tree(vault)
    vault.mkdir(LONG)
    vault.mkdir(MID)
    vault.rename(LONG, MID)  # over an empty (long-name) directory
    assert _names(vault) == {LONG2, MID}
    check_tree(vault)


def test_rename_onto_itself(vault: Vault) -> None:
    vault.write_file(LONG, b"same")
    vault.rename(LONG, LONG)
    assert vault.read_file(LONG) == b"same"
    check_tree(vault)


def test_rename_missing_source(vault: Vault) -> None:
    with pytest.raises(FsError) as exc:
        vault.rename("ghost", "x")
    assert exc.value.errno == errno.ENOENT


# -- unlink, links -------------------------------------------------------------------------------


def test_unlink_long_name_removes_sidecar(vault: Vault) -> None:
    vault.write_file(LONG, b"x")
    cpath = vault.cipher_path(LONG)
    if not vault.options.plaintext_names:
        assert is_long_name(cpath.name)
        assert cpath.with_name(cpath.name + ".name").is_file()
    vault.unlink(LONG)
    assert not cpath.exists()
    assert not cpath.with_name(cpath.name + ".name").exists()
    assert _names(vault) == set()
    check_tree(vault)


def test_unlink_errors(vault: Vault) -> None:
    vault.mkdir("d")
    with pytest.raises(FsError) as exc:
        vault.unlink("d")
    assert exc.value.errno == errno.EISDIR
    with pytest.raises(FsError) as exc2:
        vault.unlink("missing")
    assert exc2.value.errno == errno.ENOENT


def test_rmdir_long_name_removes_sidecar(vault: Vault) -> None:
    vault.mkdir(LONG)
    cpath = vault.cipher_path(LONG)
    vault.rmdir(LONG)
    assert not cpath.exists()
    assert not cpath.with_name(cpath.name + ".name").exists()
    check_tree(vault)


def test_hard_link(vault: Vault) -> None:
    vault.write_file("orig", b"shared")
    vault.link("orig", LONG)
    assert vault.read_file(LONG) == b"shared"
    assert vault.stat(LONG).nlink == 2
    check_tree(vault)
    vault.unlink(LONG)
    check_tree(vault)
    assert vault.read_file("orig") == b"shared"


def test_rename_between_hard_links_of_one_file(vault: Vault) -> None:
    """rename(2) between two links of the same inode does nothing; both names stay valid."""
    vault.write_file("orig", b"shared")
    vault.link("orig", LONG)
    vault.rename(LONG, "orig")
    check_tree(vault)
    assert _names(vault) == {"orig", LONG}
    assert vault.read_file(LONG) == b"shared"
    vault.link("orig", LONG2)
    vault.rename(LONG2, LONG)
    check_tree(vault)
    assert _names(vault) == {"orig", LONG, LONG2}


@pytest.mark.parametrize(
    "target",
    ["x", " ", ".", "..", "status.txt", "/a/b/c/d", "dir/" * 60 + "end", "t" * 255, "é/ünï", "y" * 2000],
    ids=lambda t: f"len{len(t)}",
)
def test_symlink_readlink(vault: Vault, target: str) -> None:
    vault.symlink(target, "ln")
    assert vault.readlink("ln") == target
    st_ = vault.stat("ln")
    assert st_.kind == "symlink"
    assert st_.size == len(os.fsencode(target))
    stored = os.readlink(vault.cipher_path("ln"))
    if vault.options.plaintext_names:
        assert stored == target
    else:
        assert stored != target
    entries = {e.name: e for e in vault.listdir()}
    assert entries["ln"].kind == "symlink"


def test_symlink_long_name(vault: Vault) -> None:
    vault.symlink("/target", LONG)
    assert vault.readlink(LONG) == "/target"
    check_tree(vault)
    vault.unlink(LONG)
    check_tree(vault)


def test_symlink_existing(vault: Vault) -> None:
    vault.write_file("f", b"")
    with pytest.raises(FsError) as exc:
        vault.symlink("t", "f")
    assert exc.value.errno == errno.EEXIST


@pytest.mark.parametrize("opt", ["default", "deterministic", "aessiv", "xchacha"])
def test_symlink_target_encryption_is_randomised(tmp_path: Path, opt: str, new_vault: NewVault) -> None:
    vault = new_vault(tmp_path / "c", **FORMAT_OPTIONS[opt])
    vault.symlink("same", "a")
    vault.symlink("same", "b")
    assert os.readlink(vault.cipher_path("a")) != os.readlink(vault.cipher_path("b"))


@pytest.mark.parametrize("opt", ["default", "aessiv", "xchacha"])
def test_symlink_target_format(tmp_path: Path, opt: str, new_vault: NewVault) -> None:
    """§7.1: target = B64(nonce || AEAD(target, AD = BE64(0))), Raw64 in new vaults."""
    vault = new_vault(tmp_path / "c", **FORMAT_OPTIONS[opt])
    vault.symlink("status.txt", "ln")
    stored = os.readlink(vault.cipher_path("ln"))
    assert "=" not in stored and "/" not in stored and "+" not in stored
    blob = b64_decode(stored, raw=True)
    aead = vault.content.aead
    assert len(blob) == aead.overhead + len("status.txt")
    assert aead.open(blob, bytes(8)) == b"status.txt"


# -- two handles on one file ----------------------------------------------------------------------


def test_two_handles_truncate_zero_then_write(tmp_path: Path, new_vault: NewVault) -> None:
    """A handle that read the file ID must not reuse it after another handle truncated to 0.

    gocryptfs keeps the file ID per inode (shared by all open handles), and truncate(0) drops
    it there, so the next write by any handle creates a fresh header (§5.3).
    """
    vault = new_vault(tmp_path / "c")
    vault.write_file("f", b"hello world")
    with vault.open_file("f", writable=True) as a, vault.open_file("f", writable=True) as b:
        assert b.read() == b"hello world"  # b now knows the file ID
        a.truncate(0)
        b.write(0, b"new")
    assert vault.cipher_path("f").read_bytes()[:2] == b"\x00\x02"
    assert vault.read_file("f") == b"new"


def test_two_handles_interleaved_writes(tmp_path: Path, new_vault: NewVault) -> None:
    vault = new_vault(tmp_path / "c")
    vault.write_file("g", b"0123456789")
    with vault.open_file("g", writable=True) as a, vault.open_file("g", writable=True) as b:
        a.write(0, b"AA")
        b.write(5, b"BB")
        a.write(9000, b"CC")  # past EOF: pads the last block, holes in between
        assert b.read(0, 10) == b"AA234BB789"
        b.truncate(20)
    assert vault.read_file("g") == b"AA234BB789" + bytes(10)


# -- listing -------------------------------------------------------------------------------------


def test_listdir_hides_internal_files(vault: Vault) -> None:
    vault.write_file(LONG, b"")
    vault.mkdir("d")
    vault.symlink("t", "s")
    entries = vault.listdir()
    assert {e.name for e in entries} == {LONG, "d", "s"}
    kinds = {e.name: e.kind for e in entries}
    assert kinds == {LONG: "file", "d": "dir", "s": "symlink"}
    assert all(e.error is None for e in entries)
    assert {e.cipher_name for e in entries} == {vault.cipher_path(n).name for n in (LONG, "d", "s")}
    assert {e.name for e in vault.listdir(include_bad=True)} == {LONG, "d", "s"}
    assert vault.listdir("d") == []


def test_listdir_stray_file(vault: Vault) -> None:
    vault.write_file("good", b"")
    (vault.cipherdir / "stray-file").write_bytes(b"junk")
    (vault.cipherdir / "gocryptfs.longname.bogus").write_bytes(b"")  # no sidecar
    good = vault.listdir()
    if vault.options.plaintext_names:
        # every name is valid in plaintextnames mode
        assert {e.name for e in good} == {"good", "stray-file", "gocryptfs.longname.bogus"}
        return
    assert {e.name for e in good} == {"good"}
    bad = {e.cipher_name: e for e in vault.listdir(include_bad=True) if e.error}
    assert set(bad) == {"stray-file", "gocryptfs.longname.bogus"}
    assert all(e.error for e in bad.values())


def test_deterministic_diriv_is_a_plain_entry(tmp_path: Path, new_vault: NewVault) -> None:
    v = new_vault(tmp_path / "c", deterministic_names=True)
    (v.cipherdir / DIRIV_NAME).write_bytes(bytes(range(16)))
    assert v.listdir() == []
    bad = v.listdir(include_bad=True)
    assert [e.cipher_name for e in bad] == [DIRIV_NAME]
    assert bad[0].error


@pytest.mark.parametrize("name", ["gocryptfs.diriv", "gocryptfs.conf", "gocryptfs.longname.abc", "x.name"])
def test_magic_names_are_ordinary_in_subdirs(vault: Vault, name: str) -> None:
    vault.mkdir("sub")
    vault.write_file(f"sub/{name}", b"magic")
    assert _names(vault, "sub") == {name}
    assert vault.read_file(f"sub/{name}") == b"magic"
    vault.unlink(f"sub/{name}")
    vault.rmdir("sub")
    check_tree(vault)


@pytest.mark.parametrize("name", ["gocryptfs.diriv", "gocryptfs.longname.abc"])
def test_magic_names_in_root(vault: Vault, name: str) -> None:
    if vault.options.plaintext_names and name == "gocryptfs.diriv":
        vault.mkdir(name)  # §6.8: a directory named gocryptfs.diriv is allowed
        assert _names(vault) == {name}
        return
    vault.write_file(name, b"root magic")
    assert _names(vault) == {name}
    assert vault.read_file(name) == b"root magic"


def test_gocryptfs_conf_name_in_root(vault: Vault) -> None:
    if vault.options.plaintext_names:
        for op in (
            lambda: vault.write_file("gocryptfs.conf", b"x"),
            lambda: vault.mkdir("gocryptfs.conf"),
            lambda: vault.stat("gocryptfs.conf"),
            lambda: vault.unlink("gocryptfs.conf"),
            lambda: vault.read_file("gocryptfs.conf"),
            lambda: vault.symlink("t", "gocryptfs.conf"),
        ):
            with pytest.raises(FsError) as exc:
                op()
            assert exc.value.errno == errno.EPERM
        vault.write_file("other", b"")
        with pytest.raises(FsError) as exc2:
            vault.rename("other", "gocryptfs.conf")
        assert exc2.value.errno == errno.EPERM
        assert load_config(vault.cipherdir / "gocryptfs.conf")  # untouched
    else:
        vault.write_file("gocryptfs.conf", b"plain file")
        assert vault.read_file("gocryptfs.conf") == b"plain file"
        assert _names(vault) == {"gocryptfs.conf"}


@pytest.mark.parametrize("kind", ["file", "dir", "symlink"])
def test_name_length_limit(vault: Vault, kind: str) -> None:
    ok = "n" * 255
    too_long = "n" * 256
    make = {
        "file": lambda p: vault.write_file(p, b"x"),
        "dir": lambda p: vault.mkdir(p),
        "symlink": lambda p: vault.symlink("t", p),
    }[kind]
    make(ok)
    assert _names(vault) == {ok}
    with pytest.raises(FsError) as exc:
        make(too_long)
    assert exc.value.errno == errno.ENAMETOOLONG
    # multi-byte: 127 × 2 bytes + 1 = 255 bytes works, one more character does not
    make("é" * 127 + "a")
    with pytest.raises(FsError) as exc2:
        make("é" * 128)
    assert exc2.value.errno == errno.ENAMETOOLONG
    assert _names(vault) == {ok, "é" * 127 + "a"}
    check_tree(vault)


def test_odd_but_valid_names(vault: Vault) -> None:
    """Non-UTF-8 bytes (surrogate-escaped) and newlines are legal in names (§6.8)."""
    odd = "bad\udcff\udcfe-name"
    vault.write_file(odd, b"x")
    vault.mkdir("nl\nname")
    deep = "nl\nname/" + "\udcff" * 255
    vault.write_file(deep, b"y")
    assert _names(vault) == {odd, "nl\nname"}
    assert _names(vault, "nl\nname") == {"\udcff" * 255}
    assert vault.read_file(odd) == b"x"
    assert vault.read_file(deep) == b"y"
    rel = vault.cipher_path(deep).relative_to(vault.cipherdir).as_posix()
    assert vault.decrypt_cipher_path(rel) == deep
    check_tree(vault)


def test_missing_parent_is_enoent_not_corruption(vault: Vault) -> None:
    """A path through a directory that does not exist is ENOENT, through a file ENOTDIR.

    Neither is damage to the vault, so neither may surface as CorruptionError (EIO).
    """
    vault.write_file("file", b"x")
    for op in (
        lambda: vault.stat("nope/f"),
        lambda: vault.read_file("nope/f"),
        lambda: vault.listdir("nope/sub"),
        lambda: vault.mkdir("nope/a/b"),
        lambda: vault.write_file("nope/a/b", b""),
        lambda: vault.unlink("nope/f"),
        lambda: vault.rename("nope/f", "g"),
    ):
        with pytest.raises(FsError) as exc:
            op()
        assert exc.value.errno == errno.ENOENT, exc.value
    for op in (lambda: vault.stat("file/x"), lambda: vault.listdir("file/x")):
        with pytest.raises(FsError) as exc2:
            op()
        assert exc2.value.errno in (errno.ENOTDIR, errno.ENOENT), exc2.value
    assert not vault.exists("nope/f")


def test_invalid_paths(vault: Vault) -> None:
    with pytest.raises(FsError):
        vault.write_file("a/../b", b"")
    with pytest.raises(FsError):
        vault.write_file("", b"")
    with pytest.raises(FsError):
        vault.write_file("missing/f", b"")


# -- path mapping --------------------------------------------------------------------------------


def test_cipher_path_round_trip(vault: Vault) -> None:
    vault.mkdir(LONG)
    vault.mkdir(f"{LONG}/{MID}")
    vault.write_file(f"{LONG}/{MID}/file.txt", b"")
    vault.symlink("t", f"{LONG}/link")
    for plain in ["", LONG, f"{LONG}/{MID}", f"{LONG}/{MID}/file.txt", f"{LONG}/link"]:
        cpath = vault.cipher_path(plain)
        assert cpath.exists() or cpath.is_symlink()
        rel = cpath.relative_to(vault.cipherdir).as_posix()
        if plain == "":
            rel = ""
        assert vault.decrypt_cipher_path(rel) == plain
    if not vault.options.plaintext_names:
        assert vault.cipher_path(LONG).name != LONG
        with pytest.raises(FsError):
            vault.decrypt_cipher_path("not-a-cipher-name")
        sidecar = vault.cipher_path(LONG).name + ".name"
        with pytest.raises(FsError):
            vault.decrypt_cipher_path(sidecar)


def test_walk(vault: Vault) -> None:
    vault.mkdir("a")
    vault.mkdir("a/b")
    vault.write_file("a/b/c", b"")
    vault.write_file("z", b"")
    walked = [(p, [e.name for e in es]) for p, es in vault.walk()]
    assert walked == [("", ["a", "z"]), ("a", ["b"]), ("a/b", ["c"])]


@pytest.mark.parametrize("plaintext_names", [False, True])
def test_key_fits_is_decided_by_authenticated_content(
    tmp_path: Path, plaintext_names: bool, new_vault: NewVault
) -> None:
    v = new_vault(tmp_path / "c", plaintext_names=plaintext_names)
    assert v.key_fits() is None  # an empty root cannot tell
    v.mkdir("only-a-dir")
    wrong = bytes(b ^ 0x5A for b in v.keys.master_key)
    if plaintext_names:
        assert Vault.open(v.cipherdir, master_key=wrong).key_fits() is None
    v.write_file("note.txt", b"some content")
    assert Vault.open(v.cipherdir, master_key=v.keys.master_key).key_fits() is True
    # Many wrong keys: a name may pass its padding check by chance, the content never does.
    for i in range(40):
        key = bytes((b + i + 1) % 256 for b in v.keys.master_key)
        assert Vault.open(v.cipherdir, master_key=key).key_fits() is False


def test_key_fits_looks_inside_a_root_of_one_directory(tmp_path: Path, new_vault: NewVault) -> None:
    """A root whose only entry is a directory: its one name would pass a wrong key about 1
    time in 256, so what lies one level down decides too."""
    v = new_vault(tmp_path / "c")
    v.mkdir("docs")
    v.write_file("docs/a.txt", b"inside a directory")
    assert Vault.open(v.cipherdir, master_key=v.keys.master_key).key_fits() is True
    for i in range(512):  # with the root's name alone, all 512 refused: 13 times in 100
        key = hashlib.sha256(i.to_bytes(2, "big")).digest()
        assert Vault.open(v.cipherdir, master_key=key).key_fits() is False


def test_key_fits_a_root_of_one_directory_whose_file_is_damaged(tmp_path: Path, new_vault: NewVault) -> None:
    """A damaged file below the root is no proof of a wrong key: its name still decrypts."""
    v = new_vault(tmp_path / "c")
    v.mkdir("docs")
    v.write_file("docs/a.txt", b"x" * 10000)
    cfile = v.cipher_path("docs/a.txt")
    data = bytearray(cfile.read_bytes())
    data[100] ^= 1
    cfile.write_bytes(bytes(data))
    assert Vault.open(v.cipherdir, master_key=v.keys.master_key).key_fits() is True
    wrong = hashlib.sha256(b"wrong").digest()
    assert Vault.open(v.cipherdir, master_key=wrong).key_fits() is False


def test_key_fits_tolerates_a_stray_file(tmp_path: Path, new_vault: NewVault) -> None:
    v = new_vault(tmp_path / "c")
    for name in ("a", "b", "c"):
        v.mkdir(name)
    (v.cipherdir / ("A" * 22)).write_text("copied in by hand")
    assert Vault.open(v.cipherdir, master_key=v.keys.master_key).key_fits() is True


def test_a_missing_or_non_directory_parent_is_named_by_its_plain_path(vault: Vault) -> None:
    vault.mkdir("a")
    vault.write_file("a/file", b"x")
    cases = {
        "a/missing/deeper/f.txt": (errno.ENOENT, "/a/missing: no such directory"),
        "a/file/f.txt": (errno.ENOTDIR, "/a/file: not a directory"),
    }
    for path, (err, message) in cases.items():
        for call in (vault.cipher_path, vault.read_file, vault.stat):
            if call == vault.cipher_path and not vault.options.diriv:
                continue  # the path is computed without reading any directory
            with pytest.raises(FsError) as e:
                call(path)
            # without dirivs, nothing is read before the whole path is tried
            want = message if vault.options.diriv else f"{path}: {os.strerror(err)}"
            assert (e.value.errno, str(e.value)) == (err, want), (path, call)
    with pytest.raises(FsError) as e:
        vault.rename("a/missing/f.txt", "g.txt")
    assert e.value.errno == errno.ENOENT
    if vault.options.diriv:
        assert str(e.value) == "/a/missing: no such directory"
