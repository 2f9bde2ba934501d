"""Fuzzing the config parser and the master-key text: only typed errors, no runaway work."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vaultsh.vault.config as config_mod
from vaultsh.vault.config import load_config, new_config, parse_config
from vaultsh.vault.errors import ConfigError, MasterKeyError, VaultError
from vaultsh.vault.keys import parse_master_key

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
# Keys the parser knows, in any letter case (Go matches them case-insensitively).
field_names = st.sampled_from(
    ["Creator", "EncryptedKey", "ScryptObject", "Version", "FeatureFlags", "FIDO2", "LongNameMax"]
).flatmap(lambda k: st.sampled_from([k, k.lower(), k.upper()]))
scrypt_fields = st.sampled_from(["Salt", "N", "R", "P", "KeyLen", "n"])
scrypt_objects = st.dictionaries(scrypt_fields, json_values, max_size=6)


# Made once, before the fixture below forbids scrypt.
VALID = new_config(bytes(range(32)), b"pw", logn=10)


def _valid_dict() -> dict[str, Any]:
    data = json.loads(VALID.to_json())
    assert isinstance(data, dict)
    return data


@pytest.fixture(autouse=True)
def no_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsing must never derive a key; the fuzzed configs are never unlocked."""

    def refuse(*_args: object) -> bytes:
        raise AssertionError("scrypt ran while parsing")

    monkeypatch.setattr(config_mod, "scrypt", refuse)


def _parse_or_typed_error(raw: bytes) -> None:
    try:
        parse_config(raw)
    except VaultError as e:
        message = str(e)
        assert message and "\n" not in message, repr(message)


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes(raw: bytes) -> None:
    _parse_or_typed_error(raw)


@FUZZ
@given(st.dictionaries(field_names, json_values, max_size=7))
def test_arbitrary_fields(fields: dict[str, Any]) -> None:
    _parse_or_typed_error(json.dumps(fields).encode())


@FUZZ
@given(field_names, json_values, scrypt_objects)
def test_one_field_of_a_valid_config_replaced(name: str, value: Any, scrypt: dict[str, Any]) -> None:
    data = _valid_dict()
    data[name] = value
    _parse_or_typed_error(json.dumps(data).encode())
    data = _valid_dict()
    data["ScryptObject"].update(scrypt)
    _parse_or_typed_error(json.dumps(data).encode())


@FUZZ
@given(st.integers(min_value=0, max_value=4096), st.sampled_from(["[", '{"a":']))
def test_deep_nesting_and_huge_numbers(depth: int, opener: str) -> None:
    _parse_or_typed_error((opener * depth * 100).encode())
    _parse_or_typed_error(b'{"Version": ' + b"9" * (depth * 10 + 1) + b"}")


@pytest.mark.parametrize(("logn", "r", "p"), [(40, 8, 1), (29, 8, 1), (16, 1 << 20, 1), (16, 8, 1 << 20)])
def test_scrypt_cost_beyond_gocryptfs_is_refused_before_any_work(logn: int, r: int, p: int) -> None:
    data = _valid_dict()
    data["ScryptObject"].update(N=1 << logn, R=r, P=p)
    with pytest.raises(ConfigError, match="above the maximum"):
        parse_config(json.dumps(data).encode())


def test_refused_scrypt_cost_also_stops_unlocking() -> None:
    huge = config_mod.ScryptParams(VALID.scrypt.salt, 1 << 40, 8, 1, 32)
    with pytest.raises(VaultError, match="above the maximum"):
        dataclasses.replace(VALID, scrypt=huge).decrypt_master_key(b"pw")


def test_oversized_and_special_config_files(tmp_path: Path) -> None:
    big = tmp_path / "big.conf"
    big.write_bytes(b" " * (config_mod.MAX_CONFIG_SIZE + 10))
    with pytest.raises(VaultError, match="larger than"):
        load_config(big)
    fifo = tmp_path / "fifo.conf"
    os.mkfifo(fifo)
    with pytest.raises(VaultError, match="not a regular file"):
        load_config(fifo)  # returns at once: nothing waits for a writer


@FUZZ
@given(st.text(max_size=200))
def test_master_key_text(text: str) -> None:
    try:
        key = parse_master_key(text)
    except MasterKeyError as e:
        assert "\n" not in str(e)
        return
    assert len(key) == 32


@FUZZ
@given(st.binary(min_size=32, max_size=32), st.sampled_from(["-", "", " "]), st.booleans())
def test_master_key_spellings(key: bytes, sep: str, upper: bool) -> None:
    hexed = key.hex().upper() if upper else key.hex()
    text = sep.join(hexed[i : i + 8] for i in range(0, 64, 8))
    if sep == " ":
        with pytest.raises(MasterKeyError):
            parse_master_key(text)
    else:
        assert parse_master_key(f"  {text}\n") == key


def test_valid_config_still_parses() -> None:
    data = _valid_dict()
    conf = parse_config(json.dumps(data).encode())
    assert conf.scrypt.n == 1024
    assert base64.b64decode(data["EncryptedKey"]) == conf.encrypted_key
