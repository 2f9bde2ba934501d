"""Fuzzing what fsck decodes (names, headers, blocks, whole cipher files): typed errors only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vault_factory import NewVault
from vectors import PASSWORD

from vaultsh.vault import fsck
from vaultsh.vault.conflicts import candidates, find_origin
from vaultsh.vault.content import BLOCK_SIZE, FILE_ID_LEN, HEADER_LEN, ContentCodec, parse_header
from vaultsh.vault.errors import CorruptionError
from vaultsh.vault.keys import FormatOptions, Keys
from vaultsh.vault.names import DIRIV_NAME, LONGNAME_SUFFIX, NameCodec, NameError_
from vaultsh.vault.vault import Vault

KEY = bytes(range(32))
OPTIONS = {
    "aes-gcm": FormatOptions(),
    "aes-siv": FormatOptions(aessiv=True),
    "xchacha": FormatOptions(xchacha=True),
}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def codec(kind: str) -> ContentCodec:
    return ContentCodec(Keys(KEY, OPTIONS[kind]).content)


@FUZZ
@given(names=st.lists(st.text(max_size=400), min_size=1, max_size=8), iv=st.binary(min_size=16, max_size=16))
def test_names_decrypt_or_name_a_typed_error(names: list[str], iv: bytes) -> None:
    options = FormatOptions()
    names_codec = NameCodec(Keys(KEY, options).eme, options)
    for result in names_codec.decrypt_many(names, iv):
        assert isinstance(result, bytes | NameError_)
        if isinstance(result, bytes):
            assert result and b"/" not in result and b"\0" not in result and len(result) <= 255


@FUZZ
@given(raw=st.binary(max_size=40))
def test_headers_parse_or_raise_corruption(raw: bytes) -> None:
    try:
        file_id = parse_header(raw, "fuzz")
    except CorruptionError:
        return
    assert len(file_id) == FILE_ID_LEN and len(raw) >= HEADER_LEN


@FUZZ
@given(
    kind=st.sampled_from(sorted(OPTIONS)),
    data=st.binary(max_size=3 * (BLOCK_SIZE + 40)),
    first=st.integers(0, 2**40),
    file_id=st.binary(min_size=16, max_size=16),
)
def test_blocks_decrypt_only_with_typed_errors(kind: str, data: bytes, first: int, file_id: bytes) -> None:
    c = codec(kind)
    out = bytearray(-(-len(data) // c.cipher_block) * BLOCK_SIZE + BLOCK_SIZE)
    try:
        c.decrypt_into(data, first, file_id, out)
    except CorruptionError:
        pass
    else:
        assert not any(data)  # random bytes never authenticate; only nothing, or holes, decrypt
    bad: list[int] = []
    n = c.decrypt_into_salvaging(data, first, file_id, out, lambda b, _why: bad.append(b))
    blocks = -(-len(data) // c.cipher_block)
    assert n <= len(out)
    assert all(first <= b < first + blocks for b in bad)


@FUZZ
@given(name=st.text(max_size=300), beside=st.sets(st.text(max_size=40), max_size=4))
def test_conflict_names_never_fail(name: str, beside: set[str]) -> None:
    for origin in candidates(name):
        assert origin.original != "" and origin.tool
    found = find_origin(name, beside)
    assert found is None or (found.original in beside and found.original != name)


@pytest.fixture(scope="module")
def fuzz_vault(tmp_path_factory: pytest.TempPathFactory, new_vault: NewVault) -> Vault:
    v = new_vault(tmp_path_factory.mktemp("fuzz") / "cipher", PASSWORD)
    v.mkdir("d")
    v.write_file("d/file", b"x" * 10_000)
    v.write_file("d/" + "n" * 200, b"long")
    return v


@FUZZ
@given(
    content=st.binary(max_size=9000),
    diriv=st.binary(max_size=20),
    sidecar=st.binary(max_size=400),
)
def test_checker_on_random_cipher_files_gives_findings_only(
    fuzz_vault: Vault, content: bytes, diriv: bytes, sidecar: bytes
) -> None:
    v = fuzz_vault
    cdir = v.cipher_path("d")
    disk = {p.name for p in cdir.iterdir()}
    long_name = next(n for n in disk if n.startswith("gocryptfs.longname.") and not n.endswith(".name"))
    plain_file = next(n for n in disk if not n.startswith("gocryptfs."))
    originals = {n: (cdir / n).read_bytes() for n in (DIRIV_NAME, long_name + LONGNAME_SUFFIX, plain_file)}
    try:
        for name, data in (
            (plain_file, content),
            (DIRIV_NAME, diriv),
            (long_name + LONGNAME_SUFFIX, sidecar),
        ):
            os.chmod(cdir / name, 0o644)
            (cdir / name).write_bytes(data)
        findings = list(fsck.check(v))
        assert all(isinstance(f, fsck.Finding) and f.cipher_path for f in findings)
    finally:
        for name, data in originals.items():
            Path(cdir / name).write_bytes(data)
    assert list(fsck.check(v)) == []
