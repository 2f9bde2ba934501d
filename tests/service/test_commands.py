"""The command registry over a real vault: every command, errors, cwd handling and completion."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from service_harness import RecordingIO, rio, run
from vault_factory import NewVault

from vaultsh.service import commands
from vaultsh.service.commands import COMMANDS, Session, complete, current_word, run_line
from vaultsh.service.commands.completion import _position
from vaultsh.service.mounts import MountInfo
from vaultsh.vault.conf_names import REVERSE_CONF_NAME
from vaultsh.vault.errors import ExitCode, PasswordIncorrectError, UsageError, VaultError
from vaultsh.vault.keys import format_master_key
from vaultsh.vault.reverse import ReverseView
from vaultsh.vault.vault import Vault

PASSWORD = b"pw"


@pytest.fixture
def made(tmp_path: Path, new_vault: NewVault) -> tuple[Path, bytes]:
    """A vault with text, binary, spaced names, a symlink and nested dirs; (cipherdir, key)."""
    with new_vault(tmp_path / "cipher", PASSWORD) as v:
        v.mkdir("docs")
        v.write_file("docs/notes.txt", b"hello vault\nsecond line\n")
        v.mkdir("my docs")
        v.write_file("my docs/a file.txt", b"spaced\n")
        v.mkdir("my docs/inner dir")
        v.write_file("binary.bin", b"\x00\x01\x02" * 100)
        v.write_file(".hidden", b"h")
        v.symlink("docs/notes.txt", "link")
        return v.cipherdir, v.keys.master_key


def vault_of(sess: Session) -> Vault:
    """The vault a forward session is open on."""
    assert isinstance(sess.folder, Vault)
    return sess.folder


@pytest.fixture
def sess(made: tuple[Path, bytes]) -> Session:
    cdir, _ = made
    return Session(Vault.open(cdir, password=PASSWORD), cdir, RecordingIO())


# -- listing and navigation -------------------------------------------------------------------


def test_ls_root_short_and_long(sess: Session) -> None:
    code, out, err = run(sess, "ls")
    assert (code, err) == (0, [])
    assert out == [".hidden", "binary.bin", "docs", "link", "my docs"]
    code, out, _ = run(sess, "ls -l docs")
    assert code == 0
    assert re.fullmatch(r"-rw-r--r--\s+1\s+24 \d{4}-\d\d-\d\d \d\d:\d\d notes\.txt", out[0]), out
    _, out, _ = run(sess, "ls -l")
    assert [line for line in out if line.endswith("link -> docs/notes.txt")], out


def test_ls_recursive_and_file_and_missing(sess: Session) -> None:
    _, out, _ = run(sess, "ls -R 'my docs'")
    assert out == ["/my docs:", "a file.txt", "inner dir", "", "/my docs/inner dir:"]
    assert run(sess, "ls docs/notes.txt")[1] == ["docs/notes.txt"]
    code, out, err = run(sess, "ls nope")
    assert code == 11 and out == [] and len(err) == 1 and "nope" in err[0]


def test_ls_all_shows_undecryptable_entries(sess: Session) -> None:
    (sess.cipherdir / "not-a-vault-name").write_text("junk")
    assert "not-a-vault-name" not in " ".join(run(sess, "ls")[1])
    _, out, _ = run(sess, "ls -a")
    assert any(line.startswith("?not-a-vault-name") and "undecryptable" in line for line in out), out


def test_ls_cipher_names_match_encrypt_path(sess: Session) -> None:
    _, out, _ = run(sess, "ls --cipher docs")
    cipher_name = out[0].split("[")[1].rstrip("]")
    _, enc, _ = run(sess, "encrypt-path docs/notes.txt")
    assert enc[0].endswith("/" + cipher_name)


def test_cd_pwd_and_relative_paths(sess: Session) -> None:
    assert run(sess, "pwd")[1] == ["/"]
    assert run(sess, "cd 'my docs'")[0] == 0
    assert run(sess, "pwd")[1] == ["/my docs"]
    assert run(sess, "ls")[1] == ["a file.txt", "inner dir"]
    assert run(sess, "cat ../docs/notes.txt")[1] == ["hello vault", "second line"]
    assert run(sess, "cat /docs/notes.txt")[1] == ["hello vault", "second line"]
    run(sess, "cd 'inner dir'")
    run(sess, "cd ../..")
    assert sess.cwd == ""
    run(sess, "cd ../../..")  # above the root stays at the root, as in a shell
    assert sess.cwd == ""
    run(sess, "cd docs")
    run(sess, "cd")
    assert sess.cwd == ""


def test_cd_errors_leave_cwd_unchanged(sess: Session) -> None:
    run(sess, "cd docs")
    code, _, err = run(sess, "cd notes.txt")
    assert code == 11 and err == ["/docs/notes.txt: not a directory"]
    code, _, err = run(sess, "cd /nowhere")
    assert code == 11 and len(err) == 1
    assert sess.cwd == "docs"


# -- reading ---------------------------------------------------------------------------------------


def test_cat_text_binary_dir_and_missing(sess: Session) -> None:
    assert run(sess, "cat docs/notes.txt") == (0, ["hello vault", "second line"], [])
    code, out, err = run(sess, "cat binary.bin")
    assert code == 1 and out == [] and "binary" in err[0] and "export" in err[0]
    code, _, err = run(sess, "cat docs")
    assert code == 11 and err == ["/docs: is a directory"]
    code, _, err = run(sess, "cat missing.txt")
    assert code == 11 and len(err) == 1


def test_cat_streams_bytes_to_a_byte_sink(sess: Session) -> None:
    class Sink(RecordingIO):
        def __init__(self) -> None:
            super().__init__()
            self.data = b""

        def write_bytes(self, data: bytes | memoryview) -> None:
            self.data += bytes(data)

    sink = Sink()
    sess.io = sink
    assert run_line(sess, "cat binary.bin") == 0
    assert sink.data == b"\x00\x01\x02" * 100


def test_info_shows_the_config(sess: Session) -> None:
    code, out, _ = run(sess, "info")
    assert code == 0
    assert any(line.startswith("FeatureFlags:") and "DirIV" in line for line in out)
    assert any(line.startswith("contentEncryption:") and "AES-GCM-256" in line for line in out)
    assert any(str(sess.cipherdir) in line for line in out)


def test_decrypt_and_encrypt_path(sess: Session) -> None:
    run(sess, "cd 'my docs'")
    code, out, _ = run(sess, "encrypt-path 'a file.txt'")
    assert code == 0 and (sess.cipherdir / out[0]).is_file()
    cipher_rel = out[0]
    assert run(sess, f"decrypt-path {shlex.quote(cipher_rel)}")[1] == ["my docs/a file.txt"]
    # A full path into the cipher dir works too (as pasted from `find`).
    full = str(sess.cipherdir / cipher_rel)
    assert run(sess, f"decrypt-paths {shlex.quote(full)}")[1] == ["my docs/a file.txt"]
    code, out, err = run(sess, "decrypt-path gocryptfs.diriv bogus")
    assert code == 1 and out == [] and len(err) == 2


def test_paths_starting_with_a_dash_are_paths_not_options(sess: Session) -> None:
    """'-' is in the base64url alphabet: a cipher path may start with it, in any directory."""
    v = vault_of(sess)
    name = next(
        f"d{i}" for i in range(10_000) if v.encrypt_component(v.cipherdir, f"d{i}")[1].startswith("-")
    )
    v.mkdir(name)
    v.write_file(f"{name}/-x", b"dashed")
    cipher_rel = v.cipher_path(f"{name}/-x").relative_to(v.cipherdir).as_posix()
    assert cipher_rel.startswith("-")
    assert run(sess, f"decrypt-path {shlex.quote(cipher_rel)}") == (0, [f"{name}/-x"], [])
    assert run(sess, f"encrypt-path {name}/-x") == (0, [cipher_rel], [])
    v.write_file("-notes.txt", b"")
    assert complete(sess, "encrypt-path -no") == ["-notes.txt"]
    code, out, err = run(sess, "decrypt-path -bogus")
    assert code == 1 and out == [] and len(err) == 1 and err[0].startswith("-bogus: ")


# -- transfers -------------------------------------------------------------------------------------


def test_export_and_import_round_trip_with_progress(sess: Session, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    code, out, err = run(sess, f"export docs {dest}")
    assert (code, err) == (0, [])
    assert (dest / "notes.txt").read_bytes() == b"hello vault\nsecond line\n"
    assert out and out[0].startswith("exported 1 files")
    calls = rio(sess).progress_calls
    assert calls and calls[-1] == (24, 24)
    src = tmp_path / "src"
    src.mkdir()
    (src / "new file.txt").write_bytes(b"x" * 5000)
    run(sess, "cd docs")
    code, _, err = run(sess, f"import {shlex.quote(str(src))}")  # default target: the cwd
    assert (code, err) == (0, [])
    assert vault_of(sess).read_file("docs/src/new file.txt") == b"x" * 5000
    code, _, err = run(sess, f"import {shlex.quote(str(src / 'new file.txt'))} /renamed.txt")
    assert code == 0 and vault_of(sess).read_file("renamed.txt") == b"x" * 5000


def test_transfer_errors_are_one_line(sess: Session, tmp_path: Path) -> None:
    dest = tmp_path / "o"
    dest.mkdir()
    assert run(sess, f"export docs {dest}")[0] == 0
    code, _, err = run(sess, f"export docs {dest}")
    assert code == 11 and len(err) == 1 and "already exists" in err[0]
    code, _, err = run(sess, f"import {tmp_path / 'missing'} /x")
    assert code == 11 and len(err) == 1
    code, _, err = run(sess, "export docs")
    assert code == 1 and err == ["usage: export [--force-decode] PATH DEST"]


def test_cancelled_export_leaves_no_partial_file(sess: Session, tmp_path: Path) -> None:
    vault_of(sess).write_file("big.bin", os.urandom(3 << 20))
    io = rio(sess)
    io.cancel_when = lambda: len(io.progress_calls) >= 1
    dest = tmp_path / "big.bin"
    code, _, err = run(sess, f"export big.bin {dest}")
    assert code == 15 and err == ["cancelled"]
    assert not dest.exists() and list(tmp_path.iterdir()) == [tmp_path / "cipher"]


# -- changing the tree ----------------------------------------------------------------------------


def test_mkdir_mv_rm(sess: Session) -> None:
    assert run(sess, "mkdir new")[0] == 0
    code, _, err = run(sess, "mkdir new")
    assert code == 11 and "already exists" in err[0]
    assert run(sess, "mkdir -p a/b/c 'a/sp ace'")[0] == 0
    assert sorted(e.name for e in vault_of(sess).listdir("a")) == ["b", "sp ace"]
    assert run(sess, "mv docs/notes.txt new")[0] == 0  # into an existing directory
    assert vault_of(sess).read_file("new/notes.txt").startswith(b"hello")
    assert run(sess, "mv new/notes.txt 'new/re named.txt'")[0] == 0
    assert [e.name for e in vault_of(sess).listdir("new")] == ["re named.txt"]
    code, _, err = run(sess, "rm a")
    assert code == 11 and "rm -r" in err[0]
    assert run(sess, "rm -r a")[0] == 0
    assert not vault_of(sess).exists("a")
    assert run(sess, "rm 'new/re named.txt' link")[0] == 0
    assert not vault_of(sess).exists("link")
    assert run(sess, "rm -f gone")[0] == 0
    assert run(sess, "rm gone")[0] == 11
    code, _, err = run(sess, "rm -r /")
    assert code == 11 and "root" in err[0]
    assert vault_of(sess).exists("docs")


def test_mv_and_rm_relative_to_cwd(sess: Session) -> None:
    run(sess, "cd 'my docs'")
    assert run(sess, "mv 'a file.txt' ../moved.txt")[0] == 0
    assert vault_of(sess).read_file("moved.txt") == b"spaced\n"
    assert run(sess, "rm -r 'inner dir'")[0] == 0
    assert vault_of(sess).listdir("my docs") == []


# -- secrets --------------------------------------------------------------------------------------


def test_passwd_then_reopen_with_the_new_password(sess: Session) -> None:
    io = rio(sess)
    io.secrets = [PASSWORD, b"new secret", b"new secret"]
    code, out, err = run(sess, "passwd")
    assert (code, err) == (0, [])
    assert io.prompts == ["Old password: ", "New password: ", "Repeat: "]
    assert "gocryptfs.conf.bak" in out[0]
    reopened = Vault.open(sess.cipherdir, password=b"new secret")
    assert reopened.read_file("docs/notes.txt").startswith(b"hello")
    with pytest.raises(PasswordIncorrectError):
        Vault.open(sess.cipherdir, password=PASSWORD)
    # The session's own config is the new one: masterkey now wants the new password.
    io.secrets = [b"new secret"]
    assert run(sess, "masterkey")[0] == 0


def test_passwd_refusals_keep_the_config(sess: Session) -> None:
    conf = sess.cipherdir / "gocryptfs.conf"
    before = conf.read_bytes()
    io = rio(sess)
    io.secrets = [b"wrong"]
    code, _, err = run(sess, "passwd")
    assert code == 12 and err == ["Password incorrect."]
    io.secrets = [PASSWORD, b"one", b"two"]
    code, _, err = run(sess, "passwd")
    assert code == 9 and err == ["Passwords do not match"]
    assert conf.read_bytes() == before


def test_masterkey_asks_the_password_again(sess: Session, made: tuple[Path, bytes]) -> None:
    io = rio(sess)
    io.secrets = [b"wrong"]
    code, out, err = run(sess, "masterkey")
    assert code == 12 and out == [] and err == ["Password incorrect."]
    io.secrets = [PASSWORD]
    code, out, _ = run(sess, "masterkey")
    assert code == 0 and out == [format_master_key(made[1])]
    assert io.prompts == ["Password: ", "Password: "]


# -- the registry itself ----------------------------------------------------------------------------


def test_help_lists_every_command_and_explains_one(sess: Session) -> None:
    _, out, _ = run(sess, "help")
    for name in COMMANDS:
        assert any(line.strip().startswith(name) for line in out), name
    _, out, _ = run(sess, "help rm")
    assert out[0] == "usage: rm [-r] [-f] PATH..."
    _, out, _ = run(sess, "help quit")
    assert out[0] == "usage: exit"
    assert run(sess, "help frob")[0] == 1


def test_exit_and_quit_finish_the_session_and_call_the_hook(sess: Session) -> None:
    called: list[bool] = []
    sess.hooks["exit"] = lambda: called.append(True)
    assert run(sess, "quit")[0] == 0
    assert sess.finished and called == [True]


def test_theme_goes_to_the_front_end_hook(sess: Session) -> None:
    code, _, err = run(sess, "theme dark")
    assert code == 1 and "full-screen" in err[0]
    seen: list[str | None] = []
    sess.hooks["theme"] = seen.append
    run(sess, "theme dark")
    run(sess, "theme")
    assert seen == ["dark", None]


@pytest.mark.parametrize(
    ("line", "code", "needle"),
    [
        ("frobnicate", 1, "unknown command"),
        ("cat 'unclosed", 1, "cannot parse"),
        ("ls -z", 1, "unknown option -z"),
        ("ls --long", 1, "unknown option --long"),
        ("mv one", 1, "usage: mv [-f] SRC DST"),
        ("pwd extra", 1, "usage: pwd"),
    ],
)
def test_bad_lines_give_one_error_line(sess: Session, line: str, code: int, needle: str) -> None:
    got, out, err = run(sess, line)
    assert got == code and out == [] and len(err) == 1 and needle in err[0], err


def test_blank_line_does_nothing(sess: Session) -> None:
    assert run(sess, "   ") == (0, [], [])


def test_resolve_paths() -> None:
    s = Session.__new__(Session)
    s.cwd = "a/b"
    assert s.resolve("c") == "a/b/c"
    assert s.resolve("../c/./d/") == "a/c/d"
    assert s.resolve("/x/../y") == "y"
    assert s.resolve("../../../..") == ""
    assert s.resolve("") == "a/b"


def test_history_filter_drops_secret_commands() -> None:
    assert commands.keeps_history("ls -l")
    assert not commands.keeps_history("passwd")
    assert not commands.keeps_history("  masterkey extra")
    assert not commands.keeps_history("")


# -- mounts (no FUSE needed) ------------------------------------------------------------------------


def test_mount_argument_errors(sess: Session, tmp_path: Path) -> None:
    assert run(sess, "mount")[0] == 1
    code, _, err = run(sess, f"mount {tmp_path} --idle soon")
    assert code == 1 and "duration" in err[0]
    code, _, err = run(sess, f"mount {tmp_path} --bogus")
    assert code == 1 and "--bogus" in err[0]


def test_mounts_and_unmount_with_nothing_mounted(
    sess: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    (tmp_path / "run").mkdir(mode=0o700)
    assert run(sess, "mounts") == (0, ["no mounts"], [])
    code, _, err = run(sess, "unmount")
    assert code == 1 and "not mounted" in err[0]


def test_mount_table_marks_stale_mounts() -> None:
    live = MountInfo(
        source="/v", mountpoint="/m", mode="forward", read_only=True, pid=42, started=1000.0,
        stats={"open_files": 3, "bytes_read": 5 << 20, "bytes_written": 0, "errors": 1},
    )  # fmt: skip
    stale = MountInfo(
        source="/plain", mountpoint="/m2", mode="reverse", read_only=False, pid=7, started=0.0, alive=False
    )
    header, row1, row2 = commands.mount_table([live, stale], now=1000.0 + 3725)
    assert header.split() == [
        "SOURCE", "MOUNTPOINT", "MODE", "RO/RW", "PID", "UPTIME", "OPEN", "READ", "WRITTEN", "ERR", "STATE"
    ]  # fmt: skip
    want = ["/v", "/m", "forward", "ro", "42", "1h02m", "3", "5.0", "MiB", "0", "B", "1", "live"]
    assert row1.split() == want
    assert row2.split()[:5] == ["/plain", "/m2", "reverse", "rw", "7"]
    assert row2.split()[5] == "-" and row2.endswith("stale")


# -- completion --------------------------------------------------------------------------------------


def test_complete_command_names(sess: Session) -> None:
    assert complete(sess, "ex") == ["exit", "export"]
    assert complete(sess, "") == [n for n in commands.command_names() if n != "?"]
    assert complete(sess, "help un") == ["unmount"]
    assert complete(sess, "nosuch arg") == []


def test_complete_decrypted_names_with_spaces(sess: Session) -> None:
    assert complete(sess, "cat ") == ["binary.bin", "docs/", "link", "'my docs/'"]
    assert complete(sess, "cat m") == ["'my docs/'"]
    assert complete(sess, "cat 'my docs/'") == ["'my docs/a file.txt'", "'my docs/inner dir/'"]
    assert complete(sess, "cat 'my docs/a") == ["'my docs/a file.txt'"]
    assert complete(sess, "cat my\\ docs/a") == ["'my docs/a file.txt'"]
    assert complete(sess, "cat .") == [".hidden"]
    # The completed line runs as is.
    line = "cat 'my docs/a"
    done = line[: len(line) - len(current_word(line))] + complete(sess, line)[0]
    assert run(sess, done)[1] == ["spaced"]


def test_complete_relative_to_cwd_and_dirs_only(sess: Session) -> None:
    run(sess, "cd 'my docs'")
    assert complete(sess, "cat ") == ["'a file.txt'", "'inner dir/'"]
    assert complete(sess, "cd ") == ["'inner dir/'"]
    assert complete(sess, "cat ../d") == ["../docs/"]
    assert complete(sess, "cat /d") == ["/docs/"]
    assert complete(sess, "cat nothing-here/x") == []


def test_complete_argument_kinds_by_position(sess: Session, tmp_path: Path) -> None:
    (tmp_path / "local one.txt").write_text("x")
    prefix = str(tmp_path) + "/loc"
    # export PATH DEST: the first argument is in the vault, the second is local.
    assert complete(sess, "export do") == ["docs/"]
    assert complete(sess, f"export docs {prefix}") == [shlex.quote(str(tmp_path / "local one.txt"))]
    # import SRC PATH: the other way round.
    assert complete(sess, f"import {prefix}") == [shlex.quote(str(tmp_path / "local one.txt"))]
    assert complete(sess, "import x do") == ["docs/"]
    assert complete(sess, "pwd ") == []
    assert complete(sess, "ls -") == []


def test_current_word_handles_quotes() -> None:
    assert current_word("cat 'my do") == "'my do"
    assert current_word("cat my\\ do") == "my\\ do"
    assert current_word("cat ") == ""
    assert current_word("ca") == "ca"


# -- a reverse-mode folder (§9) ------------------------------------------------------------------


@pytest.fixture
def reverse_sess(tmp_path: Path, new_vault: NewVault) -> Session:
    """A session on a reverse-mode folder: plain files beside .gocryptfs.reverse.conf."""
    plain = tmp_path / "plain"
    (plain / "docs").mkdir(parents=True)
    (plain / "docs" / "notes.txt").write_bytes(b"hello plain\nsecond line\n")
    (plain / "binary.bin").write_bytes(b"\x00\x01" * 3000)
    os.symlink("docs/notes.txt", plain / "link")
    new_vault.reverse_folder(plain, PASSWORD)
    return Session.open_reverse(plain, RecordingIO(), password=PASSWORD)


def test_reverse_session_refuses_commands_that_write_into_a_vault(reverse_sess: Session) -> None:
    before = sorted(os.listdir(reverse_sess.cipherdir))
    for line in ("mkdir x", "rm binary.bin", "mv binary.bin b", "import /etc/hostname"):
        code, out, err = run(reverse_sess, line)
        assert code == 1 and out == [], line
        assert len(err) == 1 and "read-only" in err[0] and str(reverse_sess.cipherdir) in err[0]
    assert sorted(os.listdir(reverse_sess.cipherdir)) == before


def test_reverse_session_holds_no_vault_that_a_write_could_reach(reverse_sess: Session) -> None:
    # No stand-in vault over the plain folder: writing code can only ask vault_for, which refuses.
    assert isinstance(reverse_sess.folder, ReverseView) and not hasattr(reverse_sess, "vault")
    before = sorted(os.listdir(reverse_sess.cipherdir))
    for command in ("mkdir", "import", "edit"):
        with pytest.raises(UsageError, match=f"^{command}: .*read-only") as caught:
            reverse_sess.vault_for(command)
        assert caught.value.exit_code == ExitCode.USAGE
    # Its key and config are the view's own (for info, passwd, masterkey and mount).
    assert (
        reverse_sess.conf is not None and reverse_sess.conf.path == reverse_sess.cipherdir / REVERSE_CONF_NAME
    )
    assert len(reverse_sess.master_key) == 32
    assert sorted(os.listdir(reverse_sess.cipherdir)) == before


def test_reverse_session_lists_reads_and_maps_paths(reverse_sess: Session) -> None:
    view = reverse_sess.reverse
    assert view is not None
    assert run(reverse_sess, "ls") == (0, ["binary.bin", "docs", "link"], [])
    code, out, _ = run(reverse_sess, "ls --cipher docs")
    assert out == [f"notes.txt  [{view.encrypt_path('docs/notes.txt').rpartition('/')[2]}]"]
    _, out, _ = run(reverse_sess, "ls -l")
    assert [line for line in out if line.endswith("link -> docs/notes.txt")], out
    # Laid out as in a vault: `ls -lR` has a heading per directory and the long columns.
    _, out, _ = run(reverse_sess, "ls -lR")
    assert out[0] == "/:" and out[4:6] == ["", "/docs:"] and len(out) == 7, out
    assert re.fullmatch(r"-rw\S+ +1 +24 \d{4}-\d\d-\d\d \d\d:\d\d notes\.txt", out[6]), out
    assert run(reverse_sess, "cd docs")[0] == 0 and reverse_sess.cwd == "docs"
    assert run(reverse_sess, "cat notes.txt") == (0, ["hello plain", "second line"], [])
    code, out, _ = run(reverse_sess, "encrypt-path notes.txt")
    assert code == 0 and view.resolve(out[0]).plain == "docs/notes.txt"
    assert run(reverse_sess, f"decrypt-path {out[0]}") == (0, ["docs/notes.txt"], [])
    code, _, err = run(reverse_sess, "cd /binary.bin")
    assert code != 0 and "not a directory" in err[0]
    assert complete(reverse_sess, "cat /d") == ["/docs/"]


def test_reverse_cat_follows_links_only_inside_and_never_waits_on_a_fifo(
    reverse_sess: Session, tmp_path: Path
) -> None:
    """`cat` reads a reverse folder's plain files as it reads a vault's: a symlink is followed
    only within the folder, and a FIFO is refused rather than waited on."""
    plain = reverse_sess.cipherdir
    secret = tmp_path / "outside.txt"
    secret.write_text("not in the folder\n")
    os.symlink(secret, plain / "out-abs")
    os.symlink("../outside.txt", plain / "out-rel")
    os.mkfifo(plain / "pipe")  # nobody writes it: an open for reading would block
    assert run(reverse_sess, "cat link") == (0, ["hello plain", "second line"], [])
    for name in ("out-abs", "out-rel"):
        code, out, err = run(reverse_sess, f"cat {name}")
        assert code != 0 and out == [] and len(err) == 1 and "outside the vault" in err[0]
    code, out, err = run(reverse_sess, "cat pipe")
    assert code != 0 and out == [] and len(err) == 1 and "not a regular file" in err[0]
    code, out, err = run(reverse_sess, "cat docs")
    assert code != 0 and err == ["/docs: is a directory"]


def test_fsck_and_conflicts_refuse_a_reverse_folder_in_one_line(reverse_sess: Session) -> None:
    """A reverse folder has no cipher files: fsck and conflicts say so instead of reading its
    plain files as damaged ciphertext."""
    reverse_sess.show_progress = False
    for line in ("fsck", "conflicts"):
        code, out, err = run(reverse_sess, line)
        assert code == 1 and out == [] and len(err) == 1 and "reverse-mode folder" in err[0], err


def test_open_folder_opens_a_vault_a_reverse_folder_and_a_vault_without_its_config(
    made: tuple[Path, bytes], reverse_sess: Session
) -> None:
    """One opener for the three cases; the config is read before a secret is asked for."""
    from vaultsh.service.folders import folder_kind, open_folder

    cdir, key = made
    assert folder_kind(cdir) == "vault" and folder_kind(reverse_sess.cipherdir) == "reverse"
    assert folder_kind(cdir / "missing") == "empty"
    vault = open_folder(cdir, RecordingIO(), password=lambda: PASSWORD)
    assert vault.reverse is None and vault.tree.writable and not vault.by_master_key
    rev = open_folder(reverse_sess.cipherdir, RecordingIO(), password=lambda: PASSWORD)
    assert rev.reverse is not None and not rev.tree.writable
    (cdir / "gocryptfs.conf").rename(cdir / "elsewhere.conf")
    asked: list[str] = []

    def password() -> bytes:
        asked.append("password")
        return PASSWORD

    assert folder_kind(cdir) == "configless"  # a front end offers the recovery here
    with pytest.raises(VaultError):
        open_folder(cdir, RecordingIO(), password=password)
    assert asked == []  # the missing config failed first
    lost = open_folder(cdir, RecordingIO(), master_key=lambda: key)
    assert lost.conf is None and lost.by_master_key
    assert run(lost, "cat docs/notes.txt") == (0, ["hello vault", "second line"], [])


def test_forward_and_reverse_sessions_read_through_one_tree(sess: Session, reverse_sess: Session) -> None:
    """Both kinds of folder are one `Tree` to the commands; only the vault is writable."""
    from vaultsh.vault.reverse import ReverseView
    from vaultsh.vault.tree import Tree, VaultTree

    assert isinstance(reverse_sess.tree, ReverseView) and not reverse_sess.tree.writable
    assert isinstance(sess.tree, VaultTree) and sess.tree.writable
    for tree in (sess.tree, reverse_sess.tree):
        t: Tree = tree
        docs = t.node("docs")
        assert docs.kind == "dir" and t.decrypt_path(t.encrypt_path("docs")) == "docs"
        names = {n.name for n in t.children(docs)}
        assert names and all(t.node(f"docs/{n}").plain == f"docs/{n}" for n in names)
        first = t.children(docs)[0]
        head = b"".join(t.cipher_chunks(docs, first.cipher_name))[:2]
        assert head == b"\x00\x02"  # the file header's version (§5.1)


def test_reverse_export_writes_a_view_that_opens_as_a_forward_vault(
    reverse_sess: Session, tmp_path: Path
) -> None:
    dest = tmp_path / "backup"
    code, out, err = run(reverse_sess, f"export / {dest}")
    assert (code, err) == (0, [])
    # gocryptfs.conf, two gocryptfs.diriv, notes.txt and binary.bin; the root and docs
    assert out[0].startswith("exported 5 files, 2 dirs, "), out
    vault = Vault.open(dest, password=PASSWORD)
    assert vault.read_file("docs/notes.txt") == b"hello plain\nsecond line\n"
    assert vault.readlink("link") == "docs/notes.txt"
    # one file into an existing directory: under its name in the view
    view = reverse_sess.reverse
    assert view is not None
    one = tmp_path / "one"
    one.mkdir()
    assert run(reverse_sess, f"export binary.bin {one}")[0] == 0
    cipher = view.encrypt_path("binary.bin")
    assert (one / cipher).read_bytes() == b"".join(view.iter_file(view.resolve(cipher)))
    code, _, err = run(reverse_sess, f"export binary.bin {one}")
    assert code != 0 and "already exists" in err[0]


def test_reverse_export_can_be_cancelled_and_leaves_no_partial_file(
    reverse_sess: Session, tmp_path: Path
) -> None:
    io = rio(reverse_sess)
    io.cancel_when = lambda: bool(io.progress_calls)  # Esc once the first bytes are written
    dest = tmp_path / "one"
    dest.mkdir()
    code, _, err = run(reverse_sess, f"export binary.bin {dest}")
    assert code == ExitCode.SIGINT
    assert err == ["cancelled"] and io.progress_calls
    assert os.listdir(dest) == []  # the file cut short was removed


def test_reverse_mount_asks_the_worker_for_a_reverse_read_only_view(
    reverse_sess: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vaultsh.service import mounts

    asked: list[tuple[mounts.MountRequest, bytes]] = []

    def fake_mount(req: mounts.MountRequest, key: bytes) -> MountInfo:
        asked.append((req, key))
        return MountInfo(str(req.source), str(req.mountpoint), "reverse", True, 4242, 0.0)

    monkeypatch.setattr(mounts, "mount", fake_mount)
    code, out, _ = run(reverse_sess, f"mount {tmp_path / 'mnt'}")
    assert code == 0 and "pid 4242" in out[0]
    ((req, key),) = asked
    assert req.reverse and req.read_only and req.source == reverse_sess.cipherdir
    assert key == reverse_sess.master_key
    assert req.options is None and req.excludes == ()


def test_masterkey_goes_to_the_hook_when_a_front_end_has_one(sess: Session) -> None:
    shown: list[str] = []
    rio(sess).secrets = [PASSWORD]
    sess.hooks["masterkey"] = shown.append
    code, out, _ = run(sess, "masterkey")
    assert code == 0 and out == []
    assert shown == [format_master_key(sess.master_key)]


def test_long_option_spellings_the_cli_has_work_in_the_shell(sess: Session) -> None:
    assert run(sess, "mkdir --parents deep/er")[0] == 0
    assert run(sess, "ls --all deep")[1] == ["er"]
    assert run(sess, "rm --recursive deep")[0] == 0
    assert not vault_of(sess).exists("deep")
    code, _, err = run(sess, "decrypt-path")
    assert code == 1 and err == ["usage: decrypt-path [CIPHERPATH...]"]


def test_help_explains_each_argument_and_completion_skips_option_values(sess: Session) -> None:
    _, out, _ = run(sess, "help rm")
    assert out[2:] == [
        "  -r, --recursive  remove directories and their contents",
        "  -f, --force      a missing path is not an error",
    ]
    _, out, _ = run(sess, "help mount")
    assert any(line.split()[:2] == ["--idle", "DURATION"] for line in out), out
    # For completion, the value of --idle is not the mountpoint; a word after a flag is.
    assert _position(COMMANDS["mount"], ["--idle", "10m"]) == 0
    assert _position(COMMANDS["mount"], ["--ro", "/mnt"]) == 1
    assert complete(sess, "mount --idle 10m /") == complete(sess, "mount /") != []
