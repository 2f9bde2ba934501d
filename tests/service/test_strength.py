"""Password strength estimates: zxcvbn bits, the 64-bit warning line, long input."""

from __future__ import annotations

import math

from zxcvbn import zxcvbn

from vaultsh.service.strength import MAX_SCORED_CHARS, WEAK_BITS, estimate


def test_empty_password_is_weak_with_zero_bits() -> None:
    s = estimate("")
    assert s.bits == 0.0
    assert s.weak
    assert s.warning


def test_bits_are_zxcvbn_guesses_log10_times_log2_10() -> None:
    for password in ("hunter2", "Tr0ub4dor&3", "correct horse battery staple"):
        expected = float(zxcvbn(password)["guesses_log10"]) * math.log2(10)
        assert estimate(password).bits == expected


def test_common_password_is_weak_and_says_why() -> None:
    s = estimate("password1")
    assert s.weak
    assert s.bits < 20
    assert "common" in s.warning.lower()
    assert s.suggestions  # zxcvbn's advice is passed through


def test_weak_without_zxcvbn_warning_still_gets_one() -> None:
    # Random-looking but short: zxcvbn has no pattern to name, yet it is below 64 bits.
    s = estimate("qX7#kP2")
    assert s.weak
    assert s.warning
    assert f"{WEAK_BITS:.0f}" in s.warning


def test_long_random_password_is_not_weak() -> None:
    s = estimate("vT9!qLw2#Zr8@pXk4$mN7&")
    assert s.bits >= WEAK_BITS
    assert not s.weak
    assert s.warning == ""


def test_more_words_more_bits() -> None:
    words = ["glacier", "umbrella", "quantum", "saffron", "tundra", "violin"]
    bits = [estimate(" ".join(words[:n])).bits for n in range(1, len(words) + 1)]
    assert bits == sorted(bits)
    assert bits[-1] > bits[0] + 40
    assert estimate(" ".join(words)).weak is False


def test_only_the_head_of_very_long_input_is_scored() -> None:
    head = "Seven quiet otters juggle 42 copper kettles beneath a violet lighthouse at dawn"
    long_input = head + "a" * 50_000  # zxcvbn itself refuses input this long
    assert len(head) > MAX_SCORED_CHARS
    long_estimate = estimate(long_input)
    assert long_estimate.bits == estimate(head[:MAX_SCORED_CHARS]).bits
    assert not long_estimate.weak
