"""The `vaultsh` command's entry: `python -m vaultsh` and the installed `vaultsh` script alike."""

import sys

from vaultsh.service.worker_start import prestart


def main() -> int:
    """Run the command line in sys.argv; returns the exit code.

    A mount's worker starts first and imports its modules while the command line's own
    modules load and it parses (see vaultsh.service.worker_start), so both entries come here
    before anything else is imported.
    """
    worker = prestart(sys.argv[1:])
    from vaultsh.cli import main as run_command_line

    return run_command_line(worker=worker)


if __name__ == "__main__":
    raise SystemExit(main())
