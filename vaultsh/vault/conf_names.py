"""The config file names and password limits of gocryptfs, importable without loading a cipher (§3)."""

from __future__ import annotations

# Kept apart from vaultsh.vault.config so the command line can parse and check `vaultsh mount`
# and start its worker before cryptography and hashlib are loaded.
CONF_NAME = "gocryptfs.conf"
REVERSE_CONF_NAME = ".gocryptfs.reverse.conf"
DEFAULT_SCRYPT_LOGN = 16
MAX_PASSWORD_LEN = 2048
