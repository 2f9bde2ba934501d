"""Hostile cipher dirs against the key check, the config reader, listings and the shell/CLI."""

from __future__ import annotations

import errno
import functools
import json
import os
import shutil
import stat as stat_mod
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple, TypeVar

import pytest
from fuse_harness import force_unmount, require_fuse
from gocryptfs_harness import CmdResult, run_cmd, vaultsh_env, write_passfile
from vault_factory import NewVault

from vaultsh.vault.detect import detect
from vaultsh.vault.errors import CorruptionError, VaultError
from vaultsh.vault.keys import format_master_key
from vaultsh.vault.names import DIRIV_NAME
from vaultsh.vault.tree import ROOT, TreeNode, VaultTree
from vaultsh.vault.vault import Vault

_T = TypeVar("_T")
PASSWORD = "hostile pässword"
# What desktops and sync tools leave in every folder they look at: no key decrypts these.
STRAYS = {
    ".DS_Store": b"\0\0\0\1Bud1" + bytes(range(256)) * 16,
    "desktop.ini": b"[.ShellClassInfo]\r\nIconResource=C:\\x.ico,0\r\n",
    "Thumbs.db": bytes(range(256)) * 40,
}


def cli(
    *args: str | os.PathLike[str], env: dict[str, str] | None = None, stdin: bytes | None = None
) -> CmdResult:
    return run_cmd([sys.executable, "-m", "vaultsh", *args], input=stdin, env=env or vaultsh_env())


@pytest.fixture
def pw(tmp_path: Path) -> Path:
    return write_passfile(tmp_path / "pw", PASSWORD)


# -- a key unwrapped from the config is never second-guessed; strays never vote ---------------


@pytest.fixture
def dirs_and_strays(tmp_path: Path, new_vault: NewVault) -> tuple[Path, str]:
    """A vault whose root holds only directories, plus what Finder and Explorer leave there."""
    with new_vault(tmp_path / "cipher", PASSWORD.encode()) as vault:
        vault.mkdir("docs")
        vault.write_file("docs/a.txt", b"inside a directory")
        key = format_master_key(vault.keys.master_key)
    for name, data in STRAYS.items():
        (tmp_path / "cipher" / name).write_bytes(data)
    return tmp_path / "cipher", key


@pytest.fixture
def mount_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    require_fuse()
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    try:
        yield {**vaultsh_env(), "XDG_RUNTIME_DIR": str(run_dir)}
    finally:
        force_unmount(mnt)


def test_right_password_mounts_a_root_of_directories_and_strays(
    dirs_and_strays: tuple[Path, str], pw: Path, tmp_path: Path, mount_env: dict[str, str]
) -> None:
    cipher, _key = dirs_and_strays
    mnt = tmp_path / "mnt"
    res = cli("mount", "--passfile", pw, cipher, mnt, env=mount_env)
    assert res.returncode == 0, res.err
    assert sorted(os.listdir(mnt)) == ["docs"]
    cli("unmount", mnt, env=mount_env).check()
    # A key the password unwrapped is proven by the config's GCM tag: even a root where most
    # names are shaped like cipher names but decrypt to nothing (another vault's files
    # copied in) does not make the mount refuse it.
    for i in range(3):
        (cipher / ("B" * 21 + "ABCD"[i])).write_bytes(b"from another vault")
    res = cli("mount", "--passfile", pw, cipher, mnt, env=mount_env)
    assert res.returncode == 0, res.err
    cli("unmount", mnt, env=mount_env).check()


def test_master_key_unlocks_a_root_of_directories_and_strays(
    dirs_and_strays: tuple[Path, str], pw: Path, tmp_path: Path, mount_env: dict[str, str]
) -> None:
    cipher, key = dirs_and_strays
    keyfile = tmp_path / "key"
    keyfile.write_text(key + "\n")
    mnt = tmp_path / "mnt"
    res = cli("mount", "--masterkey-file", keyfile, cipher, mnt, env=mount_env)
    assert res.returncode == 0, res.err
    assert (mnt / "docs" / "a.txt").read_bytes() == b"inside a directory"
    cli("unmount", mnt, env=mount_env).check()
    raw = bytes.fromhex(key.replace("-", ""))
    assert detect(cipher, raw).key_fits is True
    # passwd with the master key proves it on the vault first: the strays must not stop it.
    res = cli("passwd", "--masterkey-file", keyfile, "--new-passfile", pw, cipher)
    assert res.returncode == 0, res.err
    # A wrong key is still refused: the directories' names do not decrypt under it.
    wrong = bytes(b ^ 0x33 for b in raw)
    assert Vault.open(cipher, master_key=wrong).key_fits() is False
    assert detect(cipher, wrong).key_fits is False
    keyfile.write_text(format_master_key(wrong))
    res = cli("mount", "--masterkey-file", keyfile, cipher, mnt, env=mount_env)
    assert res.returncode == 14 and len(res.err.strip().splitlines()) == 1


# -- symlinks, FIFOs and devices planted in the cipher dir --------------------------------------

SECRET = b"outside the vault: never to be read or written\n"


class Planted(NamedTuple):
    cipher: Path
    outside: Path
    evil: str  # cipher name of the link to `outside`
    inside_outside: str  # cipher name, in `outside`, of its file
    device: bool  # whether a device node could be made (root only)


@pytest.fixture
def planted(tmp_path: Path, new_vault: NewVault) -> Planted:
    """`evil` is a symlink to a copy (outside the vault) of what was a vault directory, so it
    would decrypt if followed; `linkiv`'s diriv is a symlink to that copy's; `fifoiv`'s diriv
    and a long name's sidecar are FIFOs; `pipe` and `null` are a FIFO and a device."""
    cipher = tmp_path / "cipher"
    outside = tmp_path / "outside"
    with new_vault(cipher, PASSWORD.encode()) as vault:
        vault.mkdir("evil")
        vault.write_file("evil/secret.txt", SECRET)
        c_evil = vault.cipher_path("evil")
        inside = vault.cipher_path("evil/secret.txt").name
        shutil.copytree(c_evil, outside)
        vault.unlink("evil/secret.txt")
        vault.rmdir("evil")
        os.symlink(outside, c_evil)
        vault.mkdir("linkiv")
        vault.write_file("linkiv/f.txt", b"x")
        c_linkiv = vault.cipher_path("linkiv")
        os.unlink(c_linkiv / DIRIV_NAME)
        os.symlink(outside / DIRIV_NAME, c_linkiv / DIRIV_NAME)
        vault.mkdir("fifoiv")
        vault.write_file("fifoiv/g.txt", b"x")
        c_fifoiv = vault.cipher_path("fifoiv")
        os.unlink(c_fifoiv / DIRIV_NAME)
        os.mkfifo(c_fifoiv / DIRIV_NAME)
        vault.write_file("L" * 200, b"long")
        c_long = vault.cipher_path("L" * 200)
        sidecar = c_long.with_name(c_long.name + ".name")
        os.unlink(sidecar)
        os.mkfifo(sidecar)
        os.mkfifo(vault.cipher_path("pipe"))
        try:
            os.mknod(vault.cipher_path("null"), 0o600 | stat_mod.S_IFCHR, os.makedev(1, 3))
            device = True
        except PermissionError:
            device = False
        vault.write_file("ok.txt", b"fine\n")
    return Planted(cipher, outside, c_evil.name, inside, device)


def snapshot(top: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every object below `top` with its mode, mtime and content: to show nothing changed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st = p.lstat()
            data = p.read_bytes() if stat_mod.S_ISREG(st.st_mode) else b""
            out[str(p.relative_to(top))] = (st.st_mode, st.st_mtime_ns, data)
    return out


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_cli_never_acts_through_a_planted_directory_symlink(
    planted: Planted, pw: Path, tmp_path: Path
) -> None:
    cipher, outside = planted.cipher, planted.outside
    before = snapshot(outside)
    listing = cli("ls", "-l", "--passfile", pw, cipher)
    assert listing.returncode == 0, listing.err
    evil_line = next(line for line in listing.out.splitlines() if line.endswith("evil") or " evil " in line)
    assert evil_line.startswith("l")  # shown as the symlink it is
    res = cli("cat", "--passfile", pw, cipher, "evil/secret.txt")
    assert res.returncode != 0 and res.out == "" and "not a directory" in one_line(res.err)
    assert cli("mkdir", "--passfile", pw, cipher, "evil/new").returncode != 0
    src = tmp_path / "src.txt"
    src.write_bytes(b"imported")
    assert cli("import", "--passfile", pw, cipher, src, "evil/imported.txt").returncode != 0
    res = cli("mv", "--passfile", pw, cipher, "ok.txt", "evil/ok.txt")
    assert res.returncode != 0
    res = cli("decrypt-paths", "--passfile", pw, cipher, f"{planted.evil}/{planted.inside_outside}")
    assert res.returncode == 1 and res.out == "" and "not a directory" in one_line(res.err)
    out = tmp_path / "out"
    res = cli("export", "--passfile", pw, cipher, "/", out)
    assert res.returncode != 0
    assert "evil" in res.err and not (out / "evil").exists() and (out / "ok.txt").read_bytes() == b"fine\n"
    assert snapshot(outside) == before
    # rm removes the link itself, nothing behind it.
    cli("rm", "-r", "--passfile", pw, cipher, "evil").check()
    assert not (cipher / planted.evil).is_symlink() and snapshot(outside) == before
    with Vault.open(cipher, password=PASSWORD.encode()) as vault:
        assert vault.read_file("ok.txt") == b"fine\n"


def test_shell_never_acts_through_a_planted_directory_symlink(
    planted: Planted, pw: Path, tmp_path: Path
) -> None:
    cipher, outside = planted.cipher, planted.outside
    before = snapshot(outside)
    src = tmp_path / "src.txt"
    src.write_bytes(b"imported")
    script = "\n".join(
        [
            "ls -l",
            "cd evil",
            "ls evil",
            "cat evil/secret.txt",
            "mkdir evil/new",
            f"import {src} evil/imported.txt",
            "mv ok.txt evil/ok.txt",
            f"export evil {tmp_path / 'out'}",
            "rm evil",
            "ls",
        ]
    )
    res = cli("shell", "--passfile", pw, cipher, stdin=script.encode())
    assert snapshot(outside) == before
    assert "secret" not in res.out and SECRET.decode().strip() not in res.out
    assert not (tmp_path / "out").exists()
    # cd, cat, mkdir, import, mv and export through the link are each refused in one line.
    refused = [line for line in res.err.splitlines() if "evil" in line or planted.evil in line]
    assert len(refused) == 6, res.err
    lines = res.out.splitlines()
    assert any(line.startswith("l") and " evil -> " in line for line in lines)  # ls -l: a link
    assert not (cipher / planted.evil).is_symlink()  # rm removed the link, nothing behind it
    with Vault.open(cipher, password=PASSWORD.encode()) as vault:
        assert vault.read_file("ok.txt") == b"fine\n"


def test_symlinked_or_fifo_diriv_and_sidecar_are_refused_at_once(planted: Planted, pw: Path) -> None:
    res = cli("ls", "-R", "-a", "--passfile", pw, planted.cipher)
    assert res.returncode == 26  # corrupt, as gocryptfs -fsck says; a mount answers EIO
    errors = res.err.strip().splitlines()
    linkiv = next(line for line in errors if "/linkiv" in line)
    assert "gocryptfs.diriv" in linkiv and "symbolic link (not followed" in linkiv
    fifoiv = next(line for line in errors if "/fifoiv" in line)
    assert "gocryptfs.diriv" in fifoiv and "FIFO" in fifoiv
    assert "long-name sidecar" in res.out and "FIFO" in res.out  # -a shows the broken long name
    with Vault.open(planted.cipher, password=PASSWORD.encode()) as vault:
        for path in ("linkiv/f.txt", "fifoiv/g.txt"):
            with pytest.raises(CorruptionError) as e:
                vault.read_file(path)
            assert e.value.errno == errno.EIO
    for name in ("pipe", "null") if planted.device else ("pipe",):
        res = cli("cat", "--passfile", pw, planted.cipher, name)
        assert res.returncode == 11 and "not a regular file" in one_line(res.err)


def _in_thread(fn: Callable[[], _T]) -> _T:
    """fn() in a thread, waited for a bounded time: a call stuck on a FIFO fails the test
    instead of hanging it."""
    result: list[_T] = []
    worker = threading.Thread(target=lambda: result.append(fn()), daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "blocked (on a FIFO?)"
    return result[0]


def test_cipher_entries_and_xrays_never_follow_or_block(planted: Planted) -> None:
    """What the TUI's cipher pane and info panel show (Tree.cipher_entries, Tree.xray)."""
    outside_iv = (planted.outside / DIRIV_NAME).read_bytes().hex()
    with Vault.open(planted.cipher, password=PASSWORD.encode()) as vault:
        tree = VaultTree(vault)
        entries = {e.plain_name: e for batch in tree.cipher_entries(ROOT) for e in batch}
        assert entries["evil"].kind == "symlink"
        for name in ("linkiv", "fifoiv"):
            xray = _in_thread(functools.partial(tree.xray, ROOT, entries[name]))
            text = "\n".join(f"{fact.key} {fact.value}" for group in xray for fact in group)
            assert "unreadable" in text and outside_iv not in text
            assert ("symbolic link" if name == "linkiv" else "FIFO") in text
        with pytest.raises(VaultError):  # the pane does not list through it
            list(tree.cipher_entries(TreeNode("evil", planted.evil, "dir")))
        with pytest.raises(VaultError):  # nor page a file through it
            b"".join(tree.cipher_chunks(ROOT, planted.evil))


# -- low: hostile configs, names in any locale, dashed cipher names -----------------------------


def _config_with(cipher: Path, **scrypt: int) -> None:
    conf = cipher / "gocryptfs.conf"
    data = json.loads(conf.read_text())
    data["ScryptObject"].update(scrypt)
    os.chmod(conf, 0o600)
    conf.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("content", "code", "says"),
    [
        # Go cannot hold 2^63 in the int gocryptfs reads N into: it fails to load (exit 11).
        ({"N": 1 << 63}, 11, "field N is out of range"),
        # 2^40 loads in gocryptfs and then panics in scrypt; vaultsh refuses it before any work.
        ({"N": 1 << 40}, 27, "above the maximum"),
        ({"R": 1 << 40}, 27, "above the maximum"),
        ({"P": -1}, 27, "below the minimum"),
    ],
)
def test_hostile_scrypt_parameters_get_gocryptfs_codes(
    tmp_path: Path, pw: Path, content: dict[str, int], code: int, says: str, new_vault: NewVault
) -> None:
    new_vault(tmp_path / "cipher", PASSWORD.encode()).close()
    _config_with(tmp_path / "cipher", **content)
    for command in ("ls", "masterkey", "shell"):
        res = cli(command, "--passfile", pw, tmp_path / "cipher", stdin=b"")
        assert res.returncode == code and says in one_line(res.err), res.describe()
        assert "Traceback" not in res.err and "internal error" not in res.err
    res = cli("info", tmp_path / "cipher")
    assert res.returncode == 8 and says in one_line(res.err)  # gocryptfs -info: exit 8


def test_deep_or_huge_config_json_gets_gocryptfs_code(tmp_path: Path, pw: Path, new_vault: NewVault) -> None:
    cipher = tmp_path / "cipher"
    new_vault(cipher, PASSWORD.encode()).close()
    conf = cipher / "gocryptfs.conf"
    os.chmod(conf, 0o600)
    # gocryptfs 2.3 answers both with "Cannot open config file" and exit 11.
    for content in ("[" * 100_000, " " * (2 << 20) + "{}"):
        conf.write_text(content)
        res = cli("ls", "--passfile", pw, cipher)
        assert res.returncode == 11, res.describe()
        assert "Traceback" not in res.err and "internal error" not in res.err and one_line(res.err)


@pytest.fixture
def odd_names(tmp_path: Path, new_vault: NewVault) -> Path:
    """A vault holding names that are not UTF-8, and one that is but is not ASCII."""
    with new_vault(tmp_path / "cipher", PASSWORD.encode()) as vault:
        vault.write_file(os.fsdecode(b"caf\xe9.txt"), b"latin-1 name")
        vault.mkdir(os.fsdecode(b"dir\xff"))
        vault.write_file(os.fsdecode(b"dir\xff/\xc3\x28.bin"), b"broken utf-8")
        vault.write_file("naïve.txt", b"utf-8 name")
    return tmp_path / "cipher"


@pytest.mark.parametrize("utf8_mode", ["1", "0"])
def test_names_not_utf8_are_listed_escaped_in_the_c_locale(odd_names: Path, pw: Path, utf8_mode: str) -> None:
    env = {k: v for k, v in vaultsh_env().items() if not k.startswith(("LC_", "PYTHONIOENCODING"))}
    # Python turns on its UTF-8 mode in the C locale by itself; PYTHONUTF8=0 gives the plain
    # ASCII terminal that a C locale means to other programs.
    env.update(LANG="C", LC_ALL="C", PYTHONUTF8=utf8_mode)
    naive = "na\\303\\257ve.txt" if utf8_mode == "0" else "naïve.txt"
    expected = {"$'caf\\351.txt'", "$'dir\\377'", "$'/dir\\377':", "$'\\303(.bin'"}
    ls = cli("ls", "-R", "--passfile", pw, odd_names, env=env)
    shell = cli("shell", "--passfile", pw, odd_names, env=env, stdin=b"ls -R\n")
    for res in (ls, shell):
        assert res.returncode == 0 and res.err == "", res.describe()
        lines = set(res.out.splitlines())
        assert expected <= lines and any(naive in line for line in lines)
    # The same bytes given on the command line reach the file.
    out = cli("cat", "--passfile", pw, odd_names, os.fsdecode(b"caf\xe9.txt"), env=env)
    assert out.returncode == 0 and out.out == "latin-1 name"


def test_cipher_names_starting_like_short_options_are_paths(
    tmp_path: Path, pw: Path, new_vault: NewVault
) -> None:
    with new_vault(tmp_path / "cipher", PASSWORD.encode()) as vault:
        wanted = ("-h", "-0")
        names = {}
        for i in range(400_000):
            full = vault.encrypt_component(vault.cipherdir, f"n{i}")[1]
            if full[:2] in wanted and full[:2] not in names:
                names[full[:2]] = (f"n{i}", full)
                if len(names) == len(wanted):
                    break
        for plain, _full in names.values():
            vault.write_file(plain, b"")
    assert len(names) == 2
    res = cli("decrypt-paths", "--passfile", pw, tmp_path / "cipher", *(full for _p, full in names.values()))
    assert res.returncode == 0, res.describe()
    assert res.out.splitlines() == [plain for plain, _full in names.values()]


def test_a_broken_root_diriv_is_not_blamed_on_the_key(tmp_path: Path, new_vault: NewVault) -> None:
    """A FIFO or symlink as the root's diriv says nothing about the key (no key reads names
    there): a master-key unlock is not refused for it, the listing reports it (EIO)."""
    with new_vault(tmp_path / "cipher", PASSWORD.encode()) as vault:
        vault.mkdir("d")
        key = vault.keys.master_key
    root_iv = tmp_path / "cipher" / DIRIV_NAME
    os.chmod(root_iv, 0o600)
    root_iv.unlink()
    os.mkfifo(root_iv)
    with Vault.open(tmp_path / "cipher", master_key=key) as vault:
        assert vault.key_fits() is None
        with pytest.raises(CorruptionError) as e:
            vault.listdir("")
        assert e.value.errno == errno.EIO and "FIFO" in str(e.value)
