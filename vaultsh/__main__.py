"""Allows `python -m vaultsh`."""

import sys

from vaultsh.service.worker_start import prestart

# A mount's worker starts first and imports its modules while the command line loads and
# parses (see vaultsh.service.worker_start).
_worker = prestart(sys.argv[1:])

from vaultsh.cli import main  # noqa: E402 - after the worker's start on purpose

raise SystemExit(main(worker=_worker))
