"""Creating vaults: what `vaultsh init` does, shared by the CLI and the TUI's new-vault wizard."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from vaultsh.vault.config import CONF_NAME, DEFAULT_SCRYPT_LOGN, REVERSE_CONF_NAME, ConfFile
from vaultsh.vault.errors import CipherDirError
from vaultsh.vault.vault import Vault


@dataclass(frozen=True)
class InitOptions:
    """The choices of `gocryptfs -init` (§8.1, §9.1); `longname_max` 0 means gocryptfs's 255."""

    plaintext_names: bool = False
    deterministic_names: bool = False
    aessiv: bool = False
    xchacha: bool = False
    longname_max: int = 0
    reverse: bool = False
    logn: int = DEFAULT_SCRYPT_LOGN


@dataclass(frozen=True)
class CreatedVault:
    """A freshly initialised vault; `master_key` is the only way in without the password."""

    path: Path
    conf: ConfFile
    master_key: bytes = field(repr=False)
    reverse: bool = False

    @property
    def config_path(self) -> Path:
        return self.path / (REVERSE_CONF_NAME if self.reverse else CONF_NAME)


def create_vault(
    cipherdir: str | os.PathLike[str],
    password: bytes,
    options: InitOptions,
    *,
    master_key: bytes | None = None,
    create_dir: bool = False,
) -> CreatedVault:
    """Initialise a vault in `cipherdir` like `vaultsh init` / `gocryptfs -init`.

    A forward vault needs an empty directory; a reverse one is a config beside the plain files
    (AES-SIV, §9.1). With `create_dir`, a missing directory is made first and removed again if
    the init fails, so a failed or refused init leaves nothing behind.
    """
    root = Path(cipherdir)
    made = False
    if create_dir and not os.path.lexists(root):
        try:
            root.mkdir(parents=True, mode=0o700)
        except OSError as e:
            raise CipherDirError(f"{root}: cannot create directory: {e.strerror}") from None
        made = True
    try:
        conf, key = Vault.init(
            root,
            password,
            master_key=master_key,
            logn=options.logn,
            plaintext_names=options.plaintext_names,
            deterministic_names=options.deterministic_names,
            aessiv=options.aessiv,
            xchacha=options.xchacha,
            longname_max=options.longname_max,
            reverse=options.reverse,
        )
    except BaseException:
        if made:
            with contextlib.suppress(OSError):
                root.rmdir()
        raise
    return CreatedVault(root, conf, key, options.reverse)
