"""A logging formatter that shows untrusted names in log lines escaped, as on a terminal."""

from __future__ import annotations

import logging
from typing import Any

from vaultsh.vault.display import safe_text


class SafeLogFormatter(logging.Formatter):
    """A logging formatter whose lines show untrusted names escaped (`safe_text`), line by line
    for tracebacks, so a log read on a terminal cannot carry escape sequences."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return safe_text(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        return "\n".join(map(safe_text, super().formatException(ei).split("\n")))
