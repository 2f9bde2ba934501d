"""FUSE filesystems over the vault core (pyfuse3 + trio): the only package that imports them."""
