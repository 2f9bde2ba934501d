"""Allows `python -m vaultsh`."""

from vaultsh.cli import main

raise SystemExit(main())
