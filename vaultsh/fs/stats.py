"""Live counters of one mount (open files, bytes, errors, last use), reported by the worker."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field


@dataclass
class MountStats:
    """Counters a filesystem updates per request; plain ints so updates cost next to nothing."""

    open_files: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    errors: int = 0
    requests: int = 0
    # monotonic time of the last request, for --idle (gocryptfs counts any access as use)
    last_use: float = field(default_factory=time.monotonic)

    def touch(self) -> None:
        self.requests += 1
        self.last_use = time.monotonic()

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)
