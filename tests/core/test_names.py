"""Name encryption: §12.3 vectors, base64 variants and strictness, padding, long names (§6)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vault_factory import NewVault
from vectors import MALLEABLE, MALLEABLE_GOOD, MALLEABLE_TWIN, OTHER_KEYS, copy_vector

from vaultsh.vault.errors import FsError
from vaultsh.vault.keys import FormatOptions, Keys, parse_master_key
from vaultsh.vault.names import (
    LONGNAME_PREFIX,
    ZERO_IV,
    NameCodec,
    NameError_,
    b64_decode,
    b64_encode,
    check_plain_name,
    is_long_name,
    is_name_file,
    pad16,
    unpad16,
)
from vaultsh.vault.vault import Vault

ZERO_KEY = bytes(32)

# §12.3: gocryptfs -zerokey -deterministic-names (HKDF, Raw64, IV = 16 zero bytes)
FOO = "G1WsclEYEEwWjuEMFzhJkw"
STATUS = "NFl1VPkyQAKkoX7H9g2Hpg"
X200_HASHED = "gocryptfs.longname.-suw1RTPsZGRKifJQ28tIvWLqx0bVC-564I6QaL2MU8"
X200_FULL = (
    "j8Nzi0mbOBEA-IyO0G_r6tnUxORp5kFeCyxMAJy5UdAptmPqj49YHerpTLKK3JRMTWc7P_Ih9LmHY-yhtDCXciDhtWC3prLE1x"
    "Dzd2PH9xzIRW01Pe35VBk9MboMLij7kACZUw3WJqeDUu9eOBT1XE17NlqV4svBOemp7fVqKuasNjRueC13L2MgugglJ4ZkMv4rz"
    "85hdF1Mxb8irm6rZEWJQxa7JfA71mAL_hqYrKqO8sjKqvbMmpYBtSC9_MRyWIeewjX0C0-jncKOL2df6A"
)


def _codec(raw64: bool = True, longname_max: int = 255, key: bytes = ZERO_KEY) -> NameCodec:
    opts = FormatOptions(raw64=raw64, longname_max=longname_max)
    return NameCodec(Keys(key, opts).eme, opts)


# -- §12.3 ---------------------------------------------------------------------------------------


def test_vector_lengths() -> None:
    assert len(X200_FULL) == 278
    assert len(X200_HASHED) == 62


@pytest.mark.parametrize(("plain", "cipher"), [(b"foo", FOO), (b"status.txt", STATUS)])
def test_zerokey_vectors(plain: bytes, cipher: str) -> None:
    c = _codec()
    assert c.encrypt(plain, ZERO_IV) == cipher
    assert c.disk_name(cipher) == cipher
    assert c.decrypt(cipher, ZERO_IV) == plain


def test_zerokey_long_name_vector() -> None:
    c = _codec()
    full = c.encrypt(b"x" * 200, ZERO_IV)
    assert full == X200_FULL
    assert c.hash_long(full) == X200_HASHED
    assert c.disk_name(full) == X200_HASHED
    assert c.decrypt(X200_FULL, ZERO_IV) == b"x" * 200


def test_zerokey_vectors_on_disk(tmp_path: Path, new_vault: NewVault) -> None:
    """A deterministic-names vault with the all-zero key writes exactly gocryptfs's names."""
    root = tmp_path / "v"
    v = new_vault(root, master_key=ZERO_KEY, deterministic_names=True)
    v.write_file("foo", b"1")
    v.mkdir("status.txt")
    v.write_file("x" * 200, b"2")
    on_disk = sorted(os.listdir(root))
    assert on_disk == sorted([FOO, STATUS, X200_HASHED, X200_HASHED + ".name", "gocryptfs.conf"])
    name_file = root / (X200_HASHED + ".name")
    assert name_file.read_bytes() == X200_FULL.encode()
    assert oct(os.stat(name_file).st_mode & 0o777) == oct(0o444)
    # deterministic: the same name gives the same cipher name in every directory
    v.write_file("status.txt/foo", b"3")
    assert (root / STATUS / FOO).is_file()
    assert sorted(e.name for e in v.listdir()) == sorted(["foo", "status.txt", "x" * 200])


# -- base64 --------------------------------------------------------------------------------------


def test_padded_vs_raw() -> None:
    raw = _codec(raw64=True)
    padded = _codec(raw64=False)
    assert padded.encrypt(b"foo", ZERO_IV) == FOO + "=="
    assert padded.decrypt(FOO + "==", ZERO_IV) == b"foo"
    # each mode refuses the other's spelling
    with pytest.raises(NameError_):
        raw.decrypt(FOO + "==", ZERO_IV)
    with pytest.raises(NameError_):
        padded.decrypt(FOO, ZERO_IV)
    # the hash of a long name: 62 chars raw, 63 padded (ending in '=')
    h_raw = raw.hash_long(X200_FULL)
    h_pad = padded.hash_long(X200_FULL)
    assert len(h_raw) == 62 and len(h_pad) == 63
    assert h_pad == h_raw + "="


@pytest.mark.parametrize("n", range(0, 40))
def test_b64_encode_decode(n: int) -> None:
    data = bytes(range(256))[:n]
    r = b64_encode(data, raw=True)
    p = b64_encode(data, raw=False)
    assert "=" not in r
    assert len(p) % 4 == 0 and p.rstrip("=") == r
    assert "+" not in p and "/" not in p
    assert b64_decode(r, raw=True) == data
    assert b64_decode(p, raw=False) == data


@pytest.mark.parametrize(
    ("text", "raw"),
    [
        ("G1WsclEYEEwWjuEMFzhJkx", True),  # non-zero trailing bits
        ("G1WsclEYEEwWjuEMFzhJkw=", False),  # wrong padding
        ("G1WsclEYEEwWjuEMFzhJkw=", True),  # '=' in raw mode
        ("G1WsclEYEEwWjuEMFzhJk+", True),  # standard alphabet
        ("G1WsclEYEEwWjuEMFzhJk/", True),
        ("G1Wscl EYEEwWjuEMFzhJkw", True),  # whitespace
        ("G1WsclEYEEwWjuEMFzhJ\nkw", True),  # LF
        ("G1WsclEYEEwWjuEMFzhJ\rkw", True),  # CR
        ("G1WsclEYEEwWjuEMFzhJkw\n", True),
        ("A", True),  # impossible length
        ("AAAAA", False),
    ],
)
def test_b64_strict_rejections(text: str, raw: bool) -> None:
    with pytest.raises(ValueError):
        b64_decode(text, raw)
    with pytest.raises(NameError_):
        _codec(raw64=raw).decrypt(text, ZERO_IV)


_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=_B64_ALPHABET + "=", max_size=40), raw=st.booleans())
def test_b64_decode_accepts_only_canonical_property(text: str, raw: bool) -> None:
    """Whatever b64_decode accepts re-encodes to exactly the same text (no malleability)."""
    try:
        data = b64_decode(text, raw)
    except ValueError:
        return
    assert b64_encode(data, raw) == text


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=64), raw=st.booleans())
def test_b64_round_trip_property(data: bytes, raw: bool) -> None:
    assert b64_decode(b64_encode(data, raw), raw) == data


def _malleable_vault(tmp_path: Path) -> Vault:
    root = copy_vector(MALLEABLE, tmp_path)
    return Vault.open(root, master_key=parse_master_key(OTHER_KEYS[MALLEABLE]))


def test_malleable_base64_twin_is_rejected(tmp_path: Path) -> None:
    v = _malleable_vault(tmp_path)
    iv = v.dir_iv(v.cipherdir)
    good = v.names.decrypt(MALLEABLE_GOOD, iv)
    assert good
    with pytest.raises(NameError_):
        v.names.decrypt(MALLEABLE_TWIN, iv)
    # both decode to the same bytes with a lax decoder: that is exactly the malleability
    import base64

    assert base64.urlsafe_b64decode(MALLEABLE_TWIN + "==") == base64.urlsafe_b64decode(MALLEABLE_GOOD + "==")
    entries = {e.cipher_name: e for e in v.listdir(include_bad=True)}
    assert entries[MALLEABLE_GOOD].error is None
    assert entries[MALLEABLE_GOOD].name == os.fsdecode(good)
    assert entries[MALLEABLE_TWIN].error is not None
    assert [e.cipher_name for e in v.listdir()] == [MALLEABLE_GOOD]


def test_malleable_cr_lf_twins_are_rejected(tmp_path: Path) -> None:
    v = _malleable_vault(tmp_path)
    iv = v.dir_iv(v.cipherdir)
    twins = ["27AG8t-XZH7G9ou2OSD_z\ng", "27AG8t-XZH7G9ou2OSD_z\rg"]
    for t in twins:
        (v.cipherdir / t).touch()
        with pytest.raises(NameError_):
            v.names.decrypt(t, iv)
    good = [e for e in v.listdir()]
    assert [e.cipher_name for e in good] == [MALLEABLE_GOOD]
    bad = {e.cipher_name for e in v.listdir(include_bad=True) if e.error}
    assert bad == {MALLEABLE_TWIN, *twins}


# -- padding -------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 15, 16, 17, 31, 32, 33, 255])
def test_pad16_lengths(n: int) -> None:
    data = b"a" * n
    padded = pad16(data)
    k = 16 - n % 16
    assert len(padded) == n + k and len(padded) % 16 == 0
    assert padded[n:] == bytes([k]) * k
    assert unpad16(padded) == data


def test_pad16_empty_refused() -> None:
    with pytest.raises(ValueError):
        pad16(b"")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"a" * 15,
        b"a" * 17,
        b"a" * 15 + b"\x00",  # pad byte 0
        b"a" * 15 + b"\x11",  # pad byte > 16
        b"\x10" * 16,  # padding would leave nothing
        b"a" * 16 + b"\x10" * 16 + b"\x20",  # not a multiple
        b"a" * 12 + b"\x03\x04\x04\x04",  # inconsistent padding bytes
        b"a" * 13 + b"\x02\x03\x03",
    ],
)
def test_unpad16_refusals(data: bytes) -> None:
    with pytest.raises(ValueError):
        unpad16(data)


def test_unpad16_full_block_of_padding_after_data() -> None:
    assert unpad16(b"a" * 16 + b"\x10" * 16) == b"a" * 16


# -- validity ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [b"", b".", b"..", b"a/b", b"/", b"a\0b"])
def test_check_plain_name_invalid(name: bytes) -> None:
    with pytest.raises(FsError) as exc:
        check_plain_name(name)
    assert exc.value.errno == errno.EINVAL
    with pytest.raises(FsError):
        _codec().encrypt(name, ZERO_IV)


def test_check_plain_name_length() -> None:
    check_plain_name(b"a" * 255)
    check_plain_name(b"...")
    with pytest.raises(FsError) as exc:
        check_plain_name(b"a" * 256)
    assert exc.value.errno == errno.ENAMETOOLONG


@pytest.mark.parametrize(
    "padded",
    [
        pad16(b"."),
        pad16(b".."),
        pad16(b"a/b"),
        pad16(b"a\0b"),
        b"abc" + bytes(13),  # invalid padding
        b"\x10" * 16,  # decrypts to an empty name
        pad16(b"y" * 256),  # too long
    ],
)
def test_decrypt_refuses_invalid_plaintexts(padded: bytes) -> None:
    c = _codec()
    cipher = b64_encode(c.eme.encrypt(ZERO_IV, padded), raw=True)
    with pytest.raises(NameError_):
        c.decrypt(cipher, ZERO_IV)


def test_decrypt_refuses_non_block_length_and_wrong_iv() -> None:
    c = _codec()
    with pytest.raises(NameError_):
        c.decrypt(b64_encode(bytes(15), raw=True), ZERO_IV)
    with pytest.raises(NameError_):
        c.decrypt("", ZERO_IV)
    # the wrong IV (almost always) breaks the padding; this one is fixed, so it is checked
    with pytest.raises(NameError_):
        c.decrypt(FOO, b"\x01" * 16)


# -- long names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "hashed"), [(1, False), (160, False), (175, False), (176, True), (255, True)])
def test_default_threshold(n: int, hashed: bool) -> None:
    c = _codec()
    full = c.encrypt(b"n" * n, ZERO_IV)
    disk = c.disk_name(full)
    assert (disk != full) is hashed
    assert is_long_name(disk) is hashed
    if n == 175:
        assert len(full) == 235 and disk == full
    if n == 176:
        assert len(full) == 256
    if n == 255:
        assert len(full) == 342
        assert len(_codec(raw64=False).encrypt(b"n" * 255, ZERO_IV)) == 344
    if hashed:
        assert disk.startswith(LONGNAME_PREFIX) and len(disk) == 62
        assert not is_name_file(disk)
        assert is_name_file(disk + ".name")


@pytest.mark.parametrize("raw64", [True, False])
def test_longnamemax_100(raw64: bool) -> None:
    c = _codec(raw64=raw64, longname_max=100)
    full63 = c.encrypt(b"z" * 63, ZERO_IV)
    full64 = c.encrypt(b"z" * 64, ZERO_IV)
    assert c.disk_name(full63) == full63
    assert len(full64) in (107, 108)
    assert c.disk_name(full64) == c.hash_long(full64)


def test_longnames_disabled_never_hashes() -> None:
    opts = FormatOptions(longnames=False)
    c = NameCodec(Keys(ZERO_KEY, opts).eme, opts)
    full = c.encrypt(b"x" * 255, ZERO_IV)
    assert c.disk_name(full) == full


# -- properties -----------------------------------------------------------------------------------

_name_bytes = st.binary(min_size=1, max_size=255).filter(
    lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b"..")
)


@settings(max_examples=150, deadline=None)
@given(name=_name_bytes, iv=st.binary(min_size=16, max_size=16), raw64=st.booleans())
def test_name_round_trip_property(name: bytes, iv: bytes, raw64: bool) -> None:
    c = _codec(raw64=raw64)
    full = c.encrypt(name, iv)
    assert c.decrypt(full, iv) == name
    assert b64_decode(full, raw64) and b64_encode(b64_decode(full, raw64), raw64) == full
    assert len(full) <= 344
    disk = c.disk_name(full)
    assert len(disk) <= 255
    assert (disk == full) == (len(full) <= 255)


@settings(max_examples=60, deadline=None)
@given(name=st.text(min_size=1, max_size=60).filter(lambda s: "/" not in s and "\0" not in s))
def test_unicode_name_round_trip_property(name: str) -> None:
    raw = os.fsencode(name)
    if raw in (b".", b"..") or len(raw) > 255:
        return
    c = _codec()
    assert os.fsdecode(c.decrypt(c.encrypt(raw, ZERO_IV), ZERO_IV)) == name
