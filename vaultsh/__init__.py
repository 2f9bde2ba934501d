"""vaultsh: a terminal shell for gocryptfs-compatible encrypted vaults."""

__version__ = "0.1.0"
