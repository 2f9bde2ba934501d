"""Password strength estimates (zxcvbn) for choosing a new vault password."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from zxcvbn import zxcvbn

# Below this many bits of estimated guessing entropy a password gets a warning; it is never
# refused. 64 bits against scrypt at logn 16 is out of reach of offline guessing for years.
WEAK_BITS = 64.0
# zxcvbn's matching is superlinear in the input length and zxcvbn 4.5 refuses more than 72
# characters; the tail adds nothing to a decision made at 64 bits, so only the head is scored.
MAX_SCORED_CHARS = 72

_BITS_PER_LOG10 = math.log2(10)


@dataclass(frozen=True)
class Strength:
    """How hard a password is to guess: estimated bits and zxcvbn's advice."""

    bits: float
    warning: str = ""
    suggestions: list[str] = field(default_factory=list)
    weak: bool = True


def estimate(password: str) -> Strength:
    """Estimate the guessing entropy of `password` in bits (zxcvbn guesses_log10 * log2 10)."""
    if not password:
        return Strength(0.0, "The password is empty.", [], True)
    result = zxcvbn(password[:MAX_SCORED_CHARS])
    bits = float(result["guesses_log10"]) * _BITS_PER_LOG10
    feedback = result.get("feedback") or {}
    warning = str(feedback.get("warning") or "")
    suggestions = [str(s) for s in feedback.get("suggestions") or []]
    weak = bits < WEAK_BITS
    if weak and not warning:
        warning = f"About {bits:.0f} bits of estimated entropy; {WEAK_BITS:.0f} or more is recommended."
    return Strength(bits, warning, suggestions, weak)
