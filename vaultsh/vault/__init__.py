"""The gocryptfs on-disk format as a synchronous library: config, keys, names, content, vault."""
