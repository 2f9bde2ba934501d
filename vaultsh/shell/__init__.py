"""The interactive vault shell (`vaultsh shell CIPHERDIR`)."""
