"""The one way tests make a vault: `new_vault`, a new forward vault or reverse-mode folder, unlocked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vaultsh.vault.reverse import ReverseView
from vaultsh.vault.vault import Vault

# gocryptfs's lowest scrypt cost: a test's vault unlocks in milliseconds.
TEST_LOGN = 10
DEFAULT_PASSWORD = b"pw"

# Every format the tests run against, by name: the keyword arguments of new_vault (Vault.init).
FORMAT_OPTIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "plaintextnames": {"plaintext_names": True},
    "deterministic": {"deterministic_names": True},
    "aessiv": {"aessiv": True},
    "xchacha": {"xchacha": True},
    "longnamemax62": {"longname_max": 62},
}


class NewVault:
    """The vault factory's type: `new_vault` below, also the conftest fixture of that name.

    `password` (a str is taken as UTF-8, as gocryptfs reads a passfile) wraps `master_key`, a
    random key if None; `options` are Vault.init's format flags (plaintext_names, aessiv,
    xchacha, deterministic_names, longname_max). The directory is made if missing.
    """

    def __call__(
        self,
        root: Path,
        password: str | bytes = DEFAULT_PASSWORD,
        *,
        master_key: bytes | None = None,
        logn: int = TEST_LOGN,
        **options: Any,
    ) -> Vault:
        """A new forward vault in `root`, as `gocryptfs -init` makes it, unlocked.

        It keeps directory descriptors: close it (or use it in a `with`) when only other
        processes should use the directory. Its key is `vault.keys.master_key`.
        """
        key = _init(root, password, master_key, logn, reverse=False, **options)
        return Vault.open(root, master_key=key)

    def reverse_folder(
        self,
        root: Path,
        password: str | bytes = DEFAULT_PASSWORD,
        *,
        master_key: bytes | None = None,
        logn: int = TEST_LOGN,
        **options: Any,
    ) -> ReverseView:
        """`root` made a reverse-mode folder (`gocryptfs -init -reverse`); its encrypted view.

        Plain files may be there before or be added after.
        """
        key = _init(root, password, master_key, logn, reverse=True, **options)
        return ReverseView.open(root, master_key=key)


def _init(
    root: Path, password: str | bytes, master_key: bytes | None, logn: int, *, reverse: bool, **options: Any
) -> bytes:
    secret = password.encode() if isinstance(password, str) else password
    root.mkdir(parents=True, exist_ok=True)
    _conf, key = Vault.init(root, secret, master_key=master_key, logn=logn, reverse=reverse, **options)
    return key


new_vault = NewVault()
