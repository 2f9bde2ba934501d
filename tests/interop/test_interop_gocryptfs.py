"""Interop with the real gocryptfs 2.3 binary, both directions (docs/gocryptfs-format.md).

gocryptfs writes, vaultsh reads (`export`, `ls`, `cat`, path translation); vaultsh writes
(`init`, `import`, `passwd`), gocryptfs reads (`-fsck`, mount, `-info`); reverse mode round
trip. vaultsh is driven as a subprocess (`python -m vaultsh`), exactly as a user would.

The tests named `test_harness_*` exercise only the harness and gocryptfs itself; they make sure
a failure elsewhere is vaultsh's and not the harness'.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from gocryptfs_harness import (
    DIR_200,
    EXAMPLE_VAULTS,
    NAME_255,
    REVERSE_VARIANTS,
    VARIANTS,
    CmdResult,
    CommandFailed,
    Manifest,
    Variant,
    assert_same_tree,
    copy_tree,
    gocryptfs_fsck,
    gocryptfs_info_fields,
    gocryptfs_init,
    gocryptfs_mount,
    group_key,
    make_interop_tree,
    manifest_diff,
    run_cmd,
    run_vaultsh,
    tree_manifest,
    write_passfile,
    xray_ctlsock_paths,
    xray_masterkey,
)

pytestmark = pytest.mark.gocryptfs

# Non-ASCII on purpose: the password is raw bytes, with no normalisation (§3.4).
PASSWORD = "interop pässwörd"
REVERSE_CONF = ".gocryptfs.reverse.conf"


variants = pytest.mark.parametrize("variant", VARIANTS, ids=[v.id for v in VARIANTS])
reverse_variants = pytest.mark.parametrize("variant", REVERSE_VARIANTS, ids=[v.id for v in REVERSE_VARIANTS])

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def pw(tmp_path: Path) -> Path:
    """Passfile with PASSWORD + newline; the same file is used for vaultsh and gocryptfs."""
    return write_passfile(tmp_path / "password.txt", PASSWORD)


def vaultsh_ok(*args: str | os.PathLike[str], input: bytes | None = None) -> CmdResult:
    """Run vaultsh and require exit code 0."""
    return run_vaultsh(*args, input=input).check()


def vaultsh_init(
    cipherdir: Path, pw: Path, *flags: str, scryptn: int | None = 10, create: bool = True
) -> CmdResult:
    """`vaultsh init [--scryptn N] --passfile PW FLAGS... CIPHERDIR` (like gocryptfs, the
    directory must exist and be empty, so it is created first)."""
    if create:
        cipherdir.mkdir(parents=True, exist_ok=True)
    scrypt = ["--scryptn", str(scryptn)] if scryptn is not None else []
    return vaultsh_ok("init", *scrypt, "--passfile", pw, *flags, cipherdir)


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_GROUPED_KEY = re.compile(r"(?:[0-9a-fA-F]{8}-\s*){7}[0-9a-fA-F]{8}(?![0-9a-fA-F])")


def parse_printed_master_key(text: str) -> str:
    """The master key from `vaultsh init` output: 8 dash-joined groups of 8 hex digits, possibly
    split over lines and coloured like gocryptfs' printout (§3.7) -> 64 lowercase hex."""
    found = _GROUPED_KEY.findall(_ANSI.sub("", text))
    assert len(found) == 1, f"expected exactly one grouped master key in:\n{text}"
    key = re.sub(r"[-\s]", "", found[0]).lower()
    assert len(key) == 64
    return key


def load_conf(path: Path) -> dict[str, object]:
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


def _norm_listed_path(s: str) -> str:
    s = s.strip()
    if s.startswith("./"):
        s = s[2:]
    return s.strip("/")


def parse_ls_recursive(output: str) -> set[str]:
    """The set of relative paths in `vaultsh ls -R` output.

    The contract does not fix the format, so two are understood: coreutils style (blocks of
    "DIR:" followed by the base names in it, separated by blank lines; "/" or "." is the root)
    and one relative path per line (a leading "/" or "./" and a trailing "/" are ignored).
    """
    lines = output.splitlines()
    if lines and lines[0].endswith(":"):
        paths: set[str] = set()
        current: str | None = None
        for line in lines:
            if not line.strip():
                current = None
            elif current is None:
                assert line.endswith(":"), f"expected a 'DIR:' header, got {line!r}\n{output}"
                current = _norm_listed_path(line[:-1])
                current = "" if current == "." else current
            else:
                paths.add(f"{current}/{line}" if current else line)
        return paths
    return {_norm_listed_path(line) for line in lines if line.strip()}


def check_ls_recursive(output: str, expected: Manifest) -> None:
    """`vaultsh ls -R` lists exactly the plain paths, no gocryptfs-internal names."""
    assert "gocryptfs." not in output, f"internal names leaked into the listing:\n{output}"
    listed = parse_ls_recursive(output)
    want = set(expected)
    assert listed == want, (
        f"`vaultsh ls -R`: missing {sorted(want - listed)}, unexpected {sorted(listed - want)}"
        f"\n--- output ---\n{output}"
    )


def check_cipherdir_invariants(cipher: Path, variant: Variant) -> None:
    """On-disk invariants a forward-mode writer must keep (§3.1, §5.1, §6.5, §6.7, §8)."""
    conf = cipher / "gocryptfs.conf"
    assert stat.S_IMODE(conf.stat().st_mode) == 0o400, "gocryptfs.conf must be 0400 (§3.1)"
    problems = []
    for dirpath, dirnames, filenames in os.walk(cipher):
        d = Path(dirpath)
        names = set(dirnames) | set(filenames)
        diriv = d / "gocryptfs.diriv"
        if variant.diriv:
            if not diriv.is_file():
                problems.append(f"missing {diriv}")
            else:
                if stat.S_IMODE(diriv.stat().st_mode) != 0o444:
                    problems.append(f"{diriv} mode {oct(diriv.stat().st_mode)} != 0444")
                data = diriv.read_bytes()
                if len(data) != 16 or data == bytes(16):
                    problems.append(f"{diriv}: bad content {data.hex()}")
        elif "gocryptfs.diriv" in names:
            problems.append(f"{diriv} must not exist without DirIV")
        for name in names:
            p = d / name
            if name.endswith(".tmp") or name.startswith("gocryptfs.diriv.rmdir."):
                problems.append(f"leftover {p}")
            if name.startswith("gocryptfs.longname."):
                if variant.plaintextnames:
                    problems.append(f"long-name file in plaintextnames mode: {p}")
                    continue
                if name.endswith(".name"):
                    if name[: -len(".name")] not in names:
                        problems.append(f"orphan {p}")
                    if stat.S_IMODE(p.stat().st_mode) != 0o444:
                        problems.append(f"{p} mode {oct(p.stat().st_mode)} != 0444")
                    full = p.read_bytes()
                    digest = hashlib.sha256(full).digest()
                    want = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
                    if name != f"gocryptfs.longname.{want}.name":
                        problems.append(f"{p}: hash of its content is {want}")
                    if full.endswith(b"\n"):
                        problems.append(f"{p} ends in a newline")
                elif f"{name}.name" not in names:
                    problems.append(f"{p} has no .name companion")
            if p.is_symlink() or not p.is_file():
                continue
            if name == "gocryptfs.diriv" or name.endswith(".name"):
                continue
            if d == cipher and name in ("gocryptfs.conf", "gocryptfs.conf.bak"):
                continue
            size = p.stat().st_size
            if size == 0:
                continue  # empty plaintext <=> empty ciphertext (§5.1)
            with open(p, "rb") as f:
                header = f.read(18)
            if size <= 18 or header[:2] != b"\x00\x02" or header[2:] == bytes(16):
                problems.append(f"{p}: bad header {header.hex()} (size {size})")
    assert not problems, "cipherdir invariants violated:\n" + "\n".join(problems)


def reverse_view_copy(plain: Path, dest: Path, password: str, mnt: Path) -> Path:
    """Mount `plain` with `gocryptfs -reverse` and copy the encrypted view to `dest`.

    Not `cp -a`: gocryptfs 2.3's reverse view answers SEEK_DATA/SEEK_HOLE with the plaintext's
    holes mapped to cipher offsets, although it fills those ranges with real ciphertext. cp
    (coreutils 9) trusts them for files that look sparse and leaves zeros in the copy, which
    then fails to decrypt (EIO). `copy_tree` reads every byte and keeps modes and mtimes.
    """
    with gocryptfs_mount(plain, mnt, password, "-reverse"):
        copy_tree(mnt, dest)
    return dest


# ---------------------------------------------------------------------------------------------
# Harness sanity (no vaultsh involved)
# ---------------------------------------------------------------------------------------------


def test_harness_interop_tree_is_deterministic(tmp_path: Path) -> None:
    one = tree_manifest(make_interop_tree(tmp_path / "one"))
    two = tree_manifest(make_interop_tree(tmp_path / "two"))
    assert_same_tree(two, one)
    assert one[NAME_255]["type"] == "file"
    assert one[DIR_200]["type"] == "dir"
    assert one["a/b/c/d/deep.txt"]["type"] == "file"
    assert one["empty-dir"] == {"mode": 0o755, "type": "dir"}
    assert one["modes/group-readable"]["mode"] == 0o640
    assert one["modes/executable.sh"]["mode"] == 0o755
    assert one["links/dangling"]["target"] == "does/not/exist"
    assert one["sparse-1MiB"]["size"] == 1024 * 1024
    assert one["sparse-truncate-20000"]["size"] == 20_000
    assert one["héllo wörld.txt"]["mtime"] == 1_000_000_000
    with open(tmp_path / "one" / "sparse-1MiB", "rb") as f:
        f.seek(600_000 - 1)
        assert f.read(12) == b"\x000123456789\x00"

    # The comparison notices each kind of difference.
    os.chmod(tmp_path / "two" / "modes" / "private", 0o644)
    os.utime(tmp_path / "two" / "empty-file", ns=(0, 0))
    os.remove(tmp_path / "two" / "links" / "relative")
    os.symlink("elsewhere", tmp_path / "two" / "links" / "relative")
    (tmp_path / "two" / "sizes" / "size-1").write_bytes(b"!")
    diff = manifest_diff(tree_manifest(tmp_path / "two"), one)
    for rel in ("modes/private", "empty-file", "links/relative", "sizes/size-1"):
        assert repr(rel) in diff


def test_harness_parse_ls_recursive() -> None:
    coreutils = "/:\na\nb c\n\na:\nx\n\nempty:\n"
    flat = "a\n/b c\n./a/x/\n"
    assert parse_ls_recursive(coreutils) == {"a", "b c", "a/x"}
    assert parse_ls_recursive(flat) == {"a", "b c", "a/x"}


@variants
def test_harness_gocryptfs_roundtrip(need_gocryptfs: None, tmp_path: Path, variant: Variant) -> None:
    """make_interop_tree through gocryptfs alone gives back an equal manifest."""
    expected = tree_manifest(make_interop_tree(tmp_path / "src"))
    cipher = tmp_path / "cipher"
    gocryptfs_init(cipher, PASSWORD, *variant.gocryptfs)
    conf = load_conf(cipher / "gocryptfs.conf")
    assert tuple(conf["FeatureFlags"]) == variant.feature_flags  # type: ignore[arg-type]
    assert conf.get("LongNameMax") == variant.longnamemax
    with gocryptfs_mount(cipher, tmp_path / "mnt", PASSWORD) as mnt:
        make_interop_tree(mnt)
        assert_same_tree(tree_manifest(mnt), expected, "gocryptfs mount (written)")
    with gocryptfs_mount(cipher, tmp_path / "mnt", PASSWORD) as mnt:
        assert_same_tree(tree_manifest(mnt), expected, "gocryptfs mount (remounted)")
    rc, out = gocryptfs_fsck(cipher, PASSWORD)
    assert rc == 0 and "no problems found" in out, out
    check_cipherdir_invariants(cipher, variant)


def test_harness_wrong_password_is_exit_12(need_gocryptfs: None, tmp_path: Path) -> None:
    cipher = tmp_path / "cipher"
    gocryptfs_init(cipher, PASSWORD)
    with pytest.raises(CommandFailed) as err, gocryptfs_mount(cipher, tmp_path / "mnt", "nope"):
        pass
    assert err.value.returncode == 12
    assert not os.path.ismount(tmp_path / "mnt")


def test_harness_reverse_roundtrip(need_gocryptfs: None, tmp_path: Path) -> None:
    """gocryptfs -reverse, copy, forward gocryptfs mount: the plain tree comes back (§9.4)."""
    plain = make_interop_tree(tmp_path / "plain")
    expected = tree_manifest(plain)
    gocryptfs_init(plain, PASSWORD, "-reverse")
    view = reverse_view_copy(plain, tmp_path / "view", PASSWORD, tmp_path / "rmnt")
    assert (view / "gocryptfs.conf").is_file()
    with gocryptfs_mount(view, tmp_path / "fmnt", PASSWORD) as mnt:
        assert_same_tree(tree_manifest(mnt), expected, "forward mount of the reverse view")


def test_harness_vector_copy(
    need_gocryptfs: None, vector_copy: Callable[[str], Path], tmp_path: Path
) -> None:
    vault = vector_copy("tests/example_filesystems/v1.3")
    assert (vault / "gocryptfs.conf").is_file()
    assert os.access(vault, os.W_OK)
    with gocryptfs_mount(vault, tmp_path / "mnt", "test") as mnt:
        assert (mnt / "status.txt").read_bytes() == b"It works!\n"
        assert os.readlink(mnt / "rel") == "status.txt"


def test_harness_upstream_vectors_fixture(upstream_vectors: Path) -> None:
    assert (upstream_vectors / "INDEX.md").is_file()
    content = upstream_vectors / "tests" / "example_filesystems" / "content"
    assert (content / "status.txt").read_bytes() == b"It works!\n"
    assert (content / "rel").is_symlink()


# ---------------------------------------------------------------------------------------------
# vaultsh init vs gocryptfs -init
# ---------------------------------------------------------------------------------------------


@variants
def test_init_config_matches_gocryptfs(
    need_gocryptfs: None, tmp_path: Path, pw: Path, variant: Variant
) -> None:
    """`vaultsh init` writes what `gocryptfs -init` writes (§3.1-§3.3, §6.5, §8)."""
    theirs_dir = tmp_path / "gocryptfs"
    gocryptfs_init(theirs_dir, PASSWORD, *variant.gocryptfs)
    ours_dir = tmp_path / "vaultsh"
    res = vaultsh_init(ours_dir, pw, *variant.vaultsh)
    key = parse_printed_master_key(res.out)

    theirs = load_conf(theirs_dir / "gocryptfs.conf")
    ours_text = (ours_dir / "gocryptfs.conf").read_text()
    ours = json.loads(ours_text)
    assert list(ours) == list(theirs), "JSON field order (§3.2)"
    assert ours["FeatureFlags"] == theirs["FeatureFlags"] == list(variant.feature_flags)
    assert ours.get("LongNameMax") == theirs.get("LongNameMax") == variant.longnamemax
    assert ours["Version"] == 2
    scrypt = ours["ScryptObject"]
    assert list(scrypt) == ["Salt", "N", "R", "P", "KeyLen"]
    assert (scrypt["N"], scrypt["R"], scrypt["P"], scrypt["KeyLen"]) == (1024, 8, 1, 32)
    assert len(base64.b64decode(scrypt["Salt"], validate=True)) == 32
    assert len(base64.b64decode(ours["EncryptedKey"], validate=True)) == 64
    # Go's MarshalIndent with a tab, plus a trailing newline (§3.1); gocryptfs' file agrees.
    for text in (ours_text, (theirs_dir / "gocryptfs.conf").read_text()):
        assert text == json.dumps(json.loads(text), indent="\t", ensure_ascii=False) + "\n"

    assert sorted(os.listdir(ours_dir)) == sorted(os.listdir(theirs_dir))
    assert stat.S_IMODE((ours_dir / "gocryptfs.conf").stat().st_mode) == 0o400
    if variant.diriv:
        diriv = ours_dir / "gocryptfs.diriv"
        assert stat.S_IMODE(diriv.stat().st_mode) == 0o444
        assert len(diriv.read_bytes()) == 16

    # The printed key is the real one, by gocryptfs-xray and by `vaultsh masterkey`.
    assert xray_masterkey(ours_dir / "gocryptfs.conf", PASSWORD) == key
    printed = vaultsh_ok("masterkey", "--passfile", pw, ours_dir).out.strip()
    assert re.fullmatch(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{8}){7}", printed), printed
    assert printed.replace("-", "").lower() == key

    fields = gocryptfs_info_fields(ours_dir)
    assert fields["FeatureFlags"].split() == list(variant.feature_flags)


# ---------------------------------------------------------------------------------------------
# gocryptfs writes, vaultsh reads
# ---------------------------------------------------------------------------------------------


@variants
def test_gocryptfs_to_vaultsh(need_gocryptfs: None, tmp_path: Path, pw: Path, variant: Variant) -> None:
    """A tree written through a gocryptfs mount exports identically with vaultsh."""
    expected = tree_manifest(make_interop_tree(tmp_path / "src"))
    cipher = tmp_path / "cipher"
    gocryptfs_init(cipher, PASSWORD, *variant.gocryptfs)
    with gocryptfs_mount(cipher, tmp_path / "mnt", PASSWORD) as mnt:
        make_interop_tree(mnt)  # real holes and truncate paths in the ciphertext (§5.3)
    before = tree_manifest(cipher)

    out = tmp_path / "export"
    vaultsh_ok("export", "--passfile", pw, cipher, "", out)
    assert_same_tree(tree_manifest(out), expected, "vaultsh export")

    listing = vaultsh_ok("ls", "-R", "--passfile", pw, cipher).out
    check_ls_recursive(listing, expected)
    long_listing = vaultsh_ok("ls", "-l", "-R", "--passfile", pw, cipher).out
    assert NAME_255 in long_listing and DIR_200 in long_listing

    for rel in ("héllo wörld.txt", "sparse-1MiB", "sizes/size-4097", f"{DIR_200}/{NAME_255}"):
        cat = vaultsh_ok("cat", "--passfile", pw, cipher, rel)
        assert cat.stdout == (tmp_path / "src" / rel).read_bytes(), rel

    # Reading must not modify the vault.
    assert_same_tree(tree_manifest(cipher), before, "cipherdir after reading with vaultsh")


@variants
def test_path_translation_matches_gocryptfs(
    need_gocryptfs: None, tmp_path: Path, pw: Path, variant: Variant
) -> None:
    """`vaultsh encrypt-paths`/`decrypt-paths` agree with gocryptfs' control socket (§11.4)."""
    cipher = tmp_path / "cipher"
    gocryptfs_init(cipher, PASSWORD, *variant.gocryptfs)
    plain = [
        "héllo wörld.txt",
        "日本語/ファイル.txt",
        NAME_255,
        DIR_200,
        f"{DIR_200}/{NAME_255}",
        "a/b/c/d/deep.txt",
        "links/long-target",
    ]
    # A short socket path: sun_path is limited to 108 bytes.
    with tempfile.TemporaryDirectory(prefix="vs-") as sockdir:
        sock = Path(sockdir) / "ctl.sock"
        with gocryptfs_mount(cipher, tmp_path / "mnt", PASSWORD, "-ctlsock", str(sock)) as mnt:
            make_interop_tree(mnt)
            theirs = xray_ctlsock_paths(sock, plain)
    for c in theirs:
        assert os.path.lexists(cipher / c), c

    # "--": Raw64 cipher names may start with "-" and would be taken for options.
    ours = vaultsh_ok("encrypt-paths", "--passfile", pw, cipher, "--", *plain).out.splitlines()
    assert [line.strip() for line in ours if line.strip()] == theirs
    back = vaultsh_ok("decrypt-paths", "--passfile", pw, cipher, "--", *theirs).out.splitlines()
    assert [line.strip() for line in back if line.strip()] == plain


@pytest.mark.parametrize("name", EXAMPLE_VAULTS)
def test_upstream_example_vaults_export_like_gocryptfs(
    need_gocryptfs: None, vector_copy: Callable[[str], Path], tmp_path: Path, name: str
) -> None:
    """Each supported upstream example vault (§13) exports to what gocryptfs shows."""
    vault = vector_copy(f"tests/example_filesystems/{name}")
    pf = write_passfile(tmp_path / "pw", "test")
    with gocryptfs_mount(vault, tmp_path / "mnt", "test") as mnt:
        expected = tree_manifest(mnt)
    assert "status.txt" in expected
    out = tmp_path / "export"
    vaultsh_ok("export", "--passfile", pf, vault, "/", out)
    assert_same_tree(tree_manifest(out), expected, f"vaultsh export of {name}")


# ---------------------------------------------------------------------------------------------
# vaultsh writes, gocryptfs reads
# ---------------------------------------------------------------------------------------------


@variants
def test_vaultsh_to_gocryptfs(need_gocryptfs: None, tmp_path: Path, pw: Path, variant: Variant) -> None:
    """A tree imported with vaultsh passes gocryptfs -fsck and mounts identically."""
    src = make_interop_tree(tmp_path / "src")
    expected = tree_manifest(src)
    cipher = tmp_path / "cipher"
    vaultsh_init(cipher, pw, *variant.vaultsh)
    # Import into a new plain directory "tree": PATH does not exist yet, so "SRC becomes PATH"
    # and "SRC is copied into PATH" mean the same thing.
    vaultsh_ok("import", "--passfile", pw, src, cipher, "tree")
    assert_same_tree(tree_manifest(src), expected, "import must not modify its source")

    rc, out = gocryptfs_fsck(cipher, PASSWORD)
    assert rc == 0, out
    assert "no problems found" in out, out
    check_cipherdir_invariants(cipher, variant)

    with gocryptfs_mount(cipher, tmp_path / "mnt", PASSWORD) as mnt:
        assert sorted(os.listdir(mnt)) == ["tree"]
        assert_same_tree(tree_manifest(mnt / "tree"), expected, "gocryptfs mount")

    # And back through vaultsh itself.
    out_dir = tmp_path / "export"
    vaultsh_ok("export", "--passfile", pw, cipher, "tree", out_dir)
    assert_same_tree(tree_manifest(out_dir), expected, "vaultsh export of its own import")


@variants
def test_passwd_then_gocryptfs_mounts(
    need_gocryptfs: None, tmp_path: Path, pw: Path, variant: Variant
) -> None:
    """`vaultsh passwd` (by password and by master key) produces configs gocryptfs accepts."""
    cipher = tmp_path / "cipher"
    key = parse_printed_master_key(vaultsh_init(cipher, pw, *variant.vaultsh).out)
    hello = tmp_path / "hello.txt"
    hello.write_bytes(b"hello, passwd\n")
    vaultsh_ok("import", "--passfile", pw, hello, cipher, "hello.txt")
    conf_path = cipher / "gocryptfs.conf"
    before = load_conf(conf_path)
    before_bytes = conf_path.read_bytes()

    new_pw = "new pässword 2"
    new_file = write_passfile(tmp_path / "new.txt", new_pw)
    vaultsh_ok("passwd", "--passfile", pw, "--new-passfile", new_file, cipher)
    after = load_conf(conf_path)
    assert stat.S_IMODE(conf_path.stat().st_mode) == 0o400
    # §3.6: new salt and key wrapping; everything else, including logN, is kept.
    for field in ("Creator", "FeatureFlags", "Version", "LongNameMax"):
        assert after.get(field) == before.get(field), field
    old_s, new_s = before["ScryptObject"], after["ScryptObject"]
    assert isinstance(old_s, dict) and isinstance(new_s, dict)
    assert new_s["N"] == old_s["N"] == 1024
    assert new_s["Salt"] != old_s["Salt"]
    assert after["EncryptedKey"] != before["EncryptedKey"]
    # vaultsh keeps the previous config (old password) as .bak on every passwd.
    assert (cipher / "gocryptfs.conf.bak").read_bytes() == before_bytes
    assert xray_masterkey(conf_path, new_pw) == key

    with gocryptfs_mount(cipher, tmp_path / "mnt", new_pw) as mnt:
        assert (mnt / "hello.txt").read_bytes() == b"hello, passwd\n"
    with pytest.raises(CommandFailed) as err, gocryptfs_mount(cipher, tmp_path / "mnt", PASSWORD):
        pass
    assert err.value.returncode == 12, "the old password must be rejected"
    assert run_vaultsh("ls", "--passfile", pw, cipher).returncode == 12

    # Recovery with the master key printed by `vaultsh init` (saved as a user would, + "\n").
    keyfile = tmp_path / "masterkey.txt"
    keyfile.write_text(group_key(key) + "\n")
    newer_pw = "newer password 3"
    newer_file = write_passfile(tmp_path / "newer.txt", newer_pw)
    conf_before = conf_path.read_bytes()
    # As gocryptfs, a master-key passwd never overwrites an existing .bak (exit 7) ...
    res = run_vaultsh("passwd", "--masterkey-file", keyfile, "--new-passfile", newer_file, cipher)
    assert res.returncode == 7, res.describe()
    assert conf_path.read_bytes() == conf_before
    # ... so the user moves it away first, as the message says.
    (cipher / "gocryptfs.conf.bak").unlink()
    vaultsh_ok("passwd", "--masterkey-file", keyfile, "--new-passfile", newer_file, cipher)
    bak = cipher / "gocryptfs.conf.bak"
    assert bak.is_file(), "passwd with a master key keeps gocryptfs.conf.bak (§3.6)"
    assert bak.read_bytes() == conf_before
    assert stat.S_IMODE(conf_path.stat().st_mode) == 0o400
    with gocryptfs_mount(cipher, tmp_path / "mnt", newer_pw) as mnt:
        assert (mnt / "hello.txt").read_bytes() == b"hello, passwd\n"
    with pytest.raises(CommandFailed) as err, gocryptfs_mount(cipher, tmp_path / "mnt", new_pw):
        pass
    assert err.value.returncode == 12

    # A second master-key passwd refuses to overwrite the .bak: exit 7, config untouched.
    conf_now = conf_path.read_bytes()
    res = run_vaultsh("passwd", "--masterkey-file", keyfile, "--new-passfile", pw, cipher)
    assert res.returncode == 7, res.describe()
    assert conf_path.read_bytes() == conf_now


def test_default_scrypt_cost(need_gocryptfs: None, tmp_path: Path, pw: Path) -> None:
    """Without --scryptn, `vaultsh init` uses N = 2^16 like gocryptfs (§3.2)."""
    cipher = tmp_path / "cipher"
    vaultsh_init(cipher, pw, scryptn=None)
    assert "N=65536" in gocryptfs_info_fields(cipher)["ScryptObject"]
    info = vaultsh_ok("info", cipher)
    assert "65536" in info.out, info.describe()
    with gocryptfs_mount(cipher, tmp_path / "mnt", PASSWORD) as mnt:
        (mnt / "written-by-gocryptfs.txt").write_bytes(b"N=65536\n")
    cat = vaultsh_ok("cat", "--passfile", pw, cipher, "written-by-gocryptfs.txt")
    assert cat.stdout == b"N=65536\n"


# ---------------------------------------------------------------------------------------------
# Reverse mode
# ---------------------------------------------------------------------------------------------


@reverse_variants
def test_reverse_init_roundtrip(need_gocryptfs: None, tmp_path: Path, pw: Path, variant: Variant) -> None:
    """`vaultsh init --reverse` makes a config `gocryptfs -reverse` mounts; a copy of the view
    exports back to the plain tree (§9.1, §9.4). See reverse_view_copy for why not `cp -a`."""
    plain = make_interop_tree(tmp_path / "plain")
    expected = tree_manifest(plain)
    vaultsh_init(plain, pw, "--reverse", *variant.vaultsh, create=False)
    conf = plain / REVERSE_CONF
    assert conf.is_file()
    assert stat.S_IMODE(conf.stat().st_mode) == 0o400
    assert not (plain / "gocryptfs.conf").exists()
    assert not (plain / "gocryptfs.diriv").exists()
    assert_same_tree(tree_manifest(plain, exclude=[REVERSE_CONF]), expected, "plain dir")

    # Same flags as `gocryptfs -init -reverse` (§3.3: `-reverse` adds AESSIV).
    theirs = tmp_path / "theirs"
    gocryptfs_init(theirs, PASSWORD, "-reverse", *variant.gocryptfs)
    want = load_conf(theirs / REVERSE_CONF)
    got = load_conf(conf)
    assert got["FeatureFlags"] == want["FeatureFlags"] == list(variant.feature_flags)
    assert got.get("LongNameMax") == want.get("LongNameMax")

    view = reverse_view_copy(plain, tmp_path / "view", PASSWORD, tmp_path / "rmnt")
    assert (view / "gocryptfs.conf").read_bytes() == conf.read_bytes()
    out = tmp_path / "export"
    vaultsh_ok("export", "--passfile", pw, view, "/", out)
    assert_same_tree(tree_manifest(out), expected, "vaultsh export of the reverse view")


# ---------------------------------------------------------------------------------------------
# Exit codes follow gocryptfs (§11.7)
# ---------------------------------------------------------------------------------------------


def _strange_flag_vault(tmp_path: Path) -> Path:
    cipher = tmp_path / "strange"
    gocryptfs_init(cipher, PASSWORD)
    conf = cipher / "gocryptfs.conf"
    data = load_conf(conf)
    flags = data["FeatureFlags"]
    assert isinstance(flags, list)
    flags.append("StrangeFeatureFlag")
    conf.chmod(0o600)
    conf.write_text(json.dumps(data, indent="\t") + "\n")
    conf.chmod(0o400)
    return cipher


def test_exit_codes_match_gocryptfs(need_gocryptfs: None, tmp_path: Path, pw: Path) -> None:
    """The same failure gives the same exit code in vaultsh as in gocryptfs 2.3."""
    good = tmp_path / "good"
    gocryptfs_init(good, PASSWORD)
    nonempty = tmp_path / "nonempty"
    nonempty.mkdir()
    (nonempty / "x").write_bytes(b"x")
    noconf = tmp_path / "noconf"
    noconf.mkdir()
    strange = _strange_flag_vault(tmp_path)
    wrong = write_passfile(tmp_path / "wrong.txt", "wrong password")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"\n")
    mnt = tmp_path / "mnt"
    mnt.mkdir()

    def gocryptfs_rc(*args: str | os.PathLike[str]) -> int:
        return run_cmd(["gocryptfs", "-q", *args]).returncode

    def mount_rc(cipher: Path, passfile_path: Path) -> int:
        rc = gocryptfs_rc("-passfile", passfile_path, cipher, mnt)
        if rc == 0:  # the scenario is broken; do not leave a mount behind
            run_cmd(["fusermount3", "-u", mnt])
        return rc

    scenarios: list[tuple[str, int, int, list[str | os.PathLike[str]]]] = [
        # (what, spec code, gocryptfs rc, vaultsh argv)
        (
            "init on a non-empty dir",
            6,
            gocryptfs_rc("-init", "-scryptn", "10", "-passfile", pw, nonempty),
            ["init", "--scryptn", "10", "--passfile", pw, nonempty],
        ),
        (
            "init on a missing dir",
            6,
            gocryptfs_rc("-init", "-scryptn", "10", "-passfile", pw, tmp_path / "missing"),
            ["init", "--scryptn", "10", "--passfile", pw, tmp_path / "missing"],
        ),
        ("info without a config", 8, gocryptfs_rc("-info", noconf), ["info", noconf]),
        ("info with an unknown flag", 8, gocryptfs_rc("-info", strange), ["info", strange]),
        (
            "unlock with an unknown flag",
            27,
            mount_rc(strange, pw),
            ["ls", "--passfile", pw, strange],
        ),
        ("wrong password", 12, mount_rc(good, wrong), ["ls", "--passfile", wrong, good]),
        ("empty password", 9, mount_rc(good, empty), ["ls", "--passfile", empty, good]),
        (
            "passwd with a wrong password",
            12,
            gocryptfs_rc("-passwd", "-passfile", wrong, good),
            ["passwd", "--passfile", wrong, "--new-passfile", pw, good],
        ),
    ]
    mismatches = []
    for what, spec_rc, theirs, argv in scenarios:
        assert theirs == spec_rc, f"gocryptfs itself: {what}: {theirs} (spec says {spec_rc})"
        res = run_vaultsh(*argv)
        if res.returncode != theirs:
            mismatches.append(f"{what}: vaultsh {res.returncode}, gocryptfs {theirs}\n{res.err}")
    assert not mismatches, "\n".join(mismatches)
    assert not (tmp_path / "missing").exists()
    assert sorted(os.listdir(nonempty)) == ["x"]
