"""The one way tests make a vault: `new_vault`, a new forward vault or reverse-mode folder, unlocked."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, overload

from vaultsh.vault.reverse import ReverseView
from vaultsh.vault.vault import Vault

# gocryptfs's lowest scrypt cost: a test's vault unlocks in milliseconds.
TEST_LOGN = 10
DEFAULT_PASSWORD = b"pw"


class NewVault:
    """The vault factory's type: `new_vault` below, also the conftest fixture of that name."""

    @overload
    def __call__(
        self,
        root: Path,
        password: str | bytes = ...,
        *,
        reverse: Literal[True],
        master_key: bytes | None = ...,
        logn: int = ...,
        **options: Any,
    ) -> ReverseView: ...

    @overload
    def __call__(
        self,
        root: Path,
        password: str | bytes = ...,
        *,
        reverse: Literal[False] = ...,
        master_key: bytes | None = ...,
        logn: int = ...,
        **options: Any,
    ) -> Vault: ...

    def __call__(
        self,
        root: Path,
        password: str | bytes = DEFAULT_PASSWORD,
        *,
        reverse: bool = False,
        master_key: bytes | None = None,
        logn: int = TEST_LOGN,
        **options: Any,
    ) -> Vault | ReverseView:
        """Init a vault in `root` (made if missing) as `gocryptfs -init` would; return it unlocked.

        `password` (a str is taken as UTF-8, as gocryptfs reads a passfile) wraps `master_key`,
        a random key if None; `options` are Vault.init's format flags (plaintext_names, aessiv,
        xchacha, deterministic_names, longname_max). With `reverse`, `root` is a plain folder
        (files may be there before or be added after) and the result its encrypted view. A
        vault keeps directory descriptors: close it (or use it in a `with`) when only other
        processes should use the directory; its key is `vault.keys.master_key`.
        """
        secret = password.encode() if isinstance(password, str) else password
        root.mkdir(parents=True, exist_ok=True)
        _conf, key = Vault.init(root, secret, master_key=master_key, logn=logn, reverse=reverse, **options)
        if reverse:
            return ReverseView.open(root, master_key=key)
        return Vault.open(root, master_key=key)


new_vault = NewVault()
