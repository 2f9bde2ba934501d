"""`recover` and `passwd` inside a session that was unlocked with the master key."""

from __future__ import annotations

from pathlib import Path

import pytest
from service_harness import RecordingIO, run
from vault_factory import NewVault

from vaultsh.service.commands import Session, keeps_history
from vaultsh.vault.config import load_config
from vaultsh.vault.errors import PasswordIncorrectError
from vaultsh.vault.keys import FormatOptions
from vaultsh.vault.vault import Vault

PASSWORD = b"pw"
NEW = b"brand new secret"


@pytest.fixture
def vault_and_key(tmp_path: Path, new_vault: NewVault) -> tuple[Path, bytes]:
    with new_vault(tmp_path / "cipher", PASSWORD, aessiv=True) as v:
        v.mkdir("docs")
        v.write_file("docs/notes.txt", b"hello vault\n")
        v.symlink("docs/notes.txt", "link")
        return v.cipherdir, v.keys.master_key


def by_key(cdir: Path, key: bytes, options: FormatOptions | None = None) -> Session:
    vault = Vault.open(cdir, master_key=key, options=options)
    return Session(vault, cdir, RecordingIO(), by_master_key=True)


def test_passwd_without_a_config_writes_one(vault_and_key: tuple[Path, bytes]) -> None:
    cdir, key = vault_and_key
    (cdir / "gocryptfs.conf").unlink()
    s = by_key(cdir, key, FormatOptions(aessiv=True))
    assert s.conf is None
    io = s.io
    assert isinstance(io, RecordingIO)
    io.secrets = [NEW, NEW]
    code, out, err = run(s, "passwd")
    assert (code, err) == (0, []), err
    assert io.prompts == ["New password: ", "Repeat: "]  # no old password: there is none
    assert any("AES-SIV-512" in line for line in out)
    assert s.conf is not None and s.conf.options.aessiv
    assert Vault.open(cdir, password=NEW).read_file("docs/notes.txt") == b"hello vault\n"


def test_passwd_by_master_key_needs_no_old_password(vault_and_key: tuple[Path, bytes]) -> None:
    cdir, key = vault_and_key
    s = by_key(cdir, key)
    io = s.io
    assert isinstance(io, RecordingIO)
    io.secrets = [NEW, NEW]
    code, out, err = run(s, "passwd")
    assert (code, err) == (0, []), err
    assert io.prompts == ["New password: ", "Repeat: "]
    assert "gocryptfs.conf.bak" in out[-1]
    assert (cdir / "gocryptfs.conf.bak").exists()
    assert Vault.open(cdir, password=NEW).read_file("docs/notes.txt") == b"hello vault\n"
    with pytest.raises(PasswordIncorrectError):
        Vault.open(cdir, password=PASSWORD)


def test_recover_fixes_a_session_opened_with_wrong_flags(vault_and_key: tuple[Path, bytes]) -> None:
    cdir, key = vault_and_key
    (cdir / "gocryptfs.conf").unlink()
    # gocryptfs's defaults (AES-GCM) are wrong for this AES-SIV vault: files do not open.
    s = by_key(cdir, key)
    assert run(s, "cat docs/notes.txt")[0] != 0
    io = s.io
    assert isinstance(io, RecordingIO)
    code, out, err = run(s, "recover --dry-run")
    assert code == 0 and not (cdir / "gocryptfs.conf").exists()
    assert any("nothing written" in line for line in out)
    assert run(s, "recover --xchacha")[2][0].startswith("--xchacha contradicts")
    io.secrets = [NEW, NEW]
    code, out, err = run(s, "recover")
    assert (code, err) == (0, []), err
    assert out[-1] == f"Wrote {cdir / 'gocryptfs.conf'}."
    assert run(s, "cat docs/notes.txt")[1] == ["hello vault"]
    assert load_config(cdir / "gocryptfs.conf").decrypt_master_key(NEW) == key


def test_recover_mismatched_passwords_write_nothing(vault_and_key: tuple[Path, bytes]) -> None:
    cdir, key = vault_and_key
    (cdir / "gocryptfs.conf").unlink()
    s = by_key(cdir, key)
    io = s.io
    assert isinstance(io, RecordingIO)
    io.secrets = [NEW, b"other"]
    code, _out, err = run(s, "recover")
    assert code == 9 and err == ["Passwords do not match"]
    assert sorted(p.name for p in cdir.iterdir() if p.name.startswith("gocryptfs.conf")) == []


def test_recover_lines_stay_out_of_history() -> None:
    assert not keeps_history("recover --aessiv")
    assert keeps_history("ls")


def test_longnamemax_with_plain_names_is_refused(tmp_path: Path, new_vault: NewVault) -> None:
    cdir = tmp_path / "plain-names"
    with new_vault(cdir, PASSWORD, plaintext_names=True) as v:
        v.write_file("a.txt", b"x" * 100)
        key = v.keys.master_key
    (cdir / "gocryptfs.conf").unlink()
    s = by_key(cdir, key, FormatOptions(plaintext_names=True))
    code, _out, err = run(s, "recover --dry-run --longnamemax 100")
    assert code == 1 and err == ["--longnamemax 100 has no meaning with plain names"]
    code, out, err = run(s, "recover --dry-run")
    assert code == 0 and any("plain (PlaintextNames)" in line for line in out)
