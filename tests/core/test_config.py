"""gocryptfs.conf: unwrap vectors (§12.1), example configs (§13), validation, writing (§3)."""

from __future__ import annotations

import base64
import json
import os
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from vectors import (
    BROKEN_FS,
    CLI_LEGACY_CONF,
    CONFIG_TEST_DIR,
    OTHER_KEYS,
    PASSWORD,
    SUPPORTED_VAULTS,
    UNSUPPORTED_VAULTS,
    copy_vector,
    vector_path,
)

from vaultsh.crypto.aead import AesGcm
from vaultsh.crypto.kdf import hkdf_sha256, scrypt
from vaultsh.vault.config import (
    ConfFile,
    ScryptParams,
    init_flags,
    load_config,
    new_config,
    parse_config,
)
from vaultsh.vault.errors import (
    ConfigError,
    ConfigMissingError,
    MasterKeyError,
    PasswordIncorrectError,
    VaultError,
    WriteConfError,
)
from vaultsh.vault.keys import INFO_GCM, FormatOptions, format_master_key, parse_master_key
from vaultsh.vault.vault import Vault

LOGN = 10


def _conf_path(vault: str) -> Path:
    return vector_path(f"tests/example_filesystems/{vault}/gocryptfs.conf")


def _raw(relpath: str) -> bytes:
    return vector_path(relpath).read_bytes()


# -- §12.1 unwrap --------------------------------------------------------------------------------


def test_unwrap_v13_step_by_step() -> None:
    conf = load_config(_conf_path("v1.3"))
    s = conf.scrypt
    assert (s.n, s.r, s.p, s.key_len, len(s.salt)) == (1024, 8, 1, 32, 32)
    kek_raw = scrypt(PASSWORD, s.salt, s.n, s.r, s.p, s.key_len)
    assert kek_raw.hex() == "1875042c25d17565976db93ca1797c6491a2e1c977fbd8859f963e64eb367729"
    kek = hkdf_sha256(kek_raw, INFO_GCM, 32)
    assert kek.hex() == "040f2714c2919f9dcca10afd4fbdf8cc2a38327b004c7b6841d967df7915b89a"
    assert len(conf.encrypted_key) == 64
    assert conf.encrypted_key[:16].hex() == "58684a7c2bd5fcb059770a56cf716cfb"
    master = AesGcm(kek, nonce_size=16).open(conf.encrypted_key, bytes(8))
    assert master.hex() == "fd890dab86bf61cfec5ad460ad3ed01f9c52d5462a31783da56b088d3d05232e"
    assert conf.decrypt_master_key(PASSWORD) == master


def test_unwrap_v09_legacy_step_by_step() -> None:
    conf = load_config(_conf_path("v0.9"))
    s = conf.scrypt
    kek_raw = scrypt(PASSWORD, s.salt, s.n, s.r, s.p, s.key_len)
    assert kek_raw.hex() == "a73ca210d0fe9c9d39a03963a504ea1dbcdbf1d1d6831469190876e88a1732af"
    assert len(conf.encrypted_key) == 60
    master = AesGcm(kek_raw, nonce_size=12).open(conf.encrypted_key, bytes(8))
    assert master.hex() == "1cafe3f4bc3164662214c47cecd89bf34e078fe4f5faeea78b7cab02884f5e1c"
    assert conf.decrypt_master_key(PASSWORD) == master


# -- every example config ----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SUPPORTED_VAULTS))
def test_supported_example_config_master_key(name: str) -> None:
    v = SUPPORTED_VAULTS[name]
    conf = load_config(_conf_path(name))
    assert conf.version == 2
    assert conf.feature_flags == v.flags
    assert conf.decrypt_master_key(PASSWORD) == parse_master_key(v.master_key)


@pytest.mark.parametrize(
    "relpath",
    [
        "gocryptfs-xray/xray_tests/aesgcm_fs/gocryptfs.conf",
        "gocryptfs-xray/xray_tests/aessiv_fs/gocryptfs.conf",
        "tests/fsck/malleable_base64/gocryptfs.conf",
        "tests/hkdf_sanity/broken_content/gocryptfs.conf",
        "tests/hkdf_sanity/broken_names/gocryptfs.conf",
        "tests/fsck/broken_fs_v1.4/gocryptfs.conf",
        CLI_LEGACY_CONF,
    ],
)
def test_other_configs_master_key(relpath: str) -> None:
    key_of = relpath if relpath == CLI_LEGACY_CONF else str(Path(relpath).parent)
    conf = load_config(vector_path(relpath))
    assert conf.decrypt_master_key(PASSWORD) == parse_master_key(OTHER_KEYS[key_of])
    if relpath == CLI_LEGACY_CONF:
        assert len(conf.encrypted_key) == 60
        assert not conf.has("HKDF")


@pytest.mark.parametrize("name", list(UNSUPPORTED_VAULTS))
def test_unsupported_example_config_rejected(name: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(_conf_path(name))
    assert exc.value.exit_code == 27


@pytest.mark.parametrize("name", list(UNSUPPORTED_VAULTS))
def test_unsupported_example_vault_open_rejected(name: str) -> None:
    with pytest.raises(VaultError) as exc:
        Vault.open(_conf_path(name).parent, password=PASSWORD)
    assert exc.value.exit_code == 27


def _unvalidated(raw: bytes) -> ConfFile:
    """Build a ConfFile without validation (to check the key of a refused config)."""
    d = json.loads(raw)
    so = d["ScryptObject"]
    return ConfFile(
        creator=d.get("Creator", ""),
        encrypted_key=base64.b64decode(d["EncryptedKey"]),
        scrypt=ScryptParams(base64.b64decode(so["Salt"]), so["N"], so["R"], so["P"], so["KeyLen"]),
        version=d["Version"],
        feature_flags=tuple(d.get("FeatureFlags") or ()),
    )


@pytest.mark.parametrize("name", ["v0.4", "v0.6"])
def test_unsupported_configs_still_unwrap(name: str) -> None:
    """INDEX.md: the v0.4 key unwraps; refusal is about the format, not the password."""
    conf = _unvalidated(_conf_path(name).read_bytes())
    assert conf.decrypt_master_key(PASSWORD).hex() == UNSUPPORTED_VAULTS[name]


# configs that gocryptfs >= v1.3 wrote: re-serialising gives the file byte for byte
GO_WRITTEN = [
    "tests/example_filesystems/v1.3/gocryptfs.conf",
    "tests/example_filesystems/v2.2-deterministic-names/gocryptfs.conf",
    "tests/example_filesystems/v2.2-xchacha/gocryptfs.conf",
    "tests/example_filesystems/v2.2-xchacha-deterministic-names/gocryptfs.conf",
    "tests/example_filesystems/v1.3-reverse/.gocryptfs.reverse.conf",
    "gocryptfs-xray/xray_tests/aesgcm_fs/gocryptfs.conf",
    "gocryptfs-xray/xray_tests/aessiv_fs/gocryptfs.conf",
    "tests/fsck/broken_fs_v1.4/gocryptfs.conf",
    "tests/fsck/malleable_base64/gocryptfs.conf",
]


@pytest.mark.parametrize("relpath", GO_WRITTEN)
def test_to_json_reproduces_go_output(relpath: str) -> None:
    raw = _raw(relpath)
    assert parse_config(raw).to_json().encode() == raw


def test_options_from_flags() -> None:
    def opts(name: str) -> FormatOptions:
        return load_config(_conf_path(name)).options

    o = opts("v0.7")
    assert (o.raw64, o.hkdf, o.aessiv, o.xchacha, o.plaintext_names, o.diriv) == (
        False,
        False,
        False,
        False,
        False,
        True,
    )
    assert opts("v0.7-plaintextnames").plaintext_names
    assert not opts("v0.7-plaintextnames").diriv
    assert opts("v1.1-aessiv").aessiv and not opts("v1.1-aessiv").hkdf
    o = opts("v1.3")
    assert o.raw64 and o.hkdf and o.diriv and o.longname_max == 255
    o = opts("v2.2-deterministic-names")
    assert o.deterministic_names and not o.diriv
    o = opts("v2.2-xchacha")
    assert o.xchacha and o.content_encryption == "XChaCha20-Poly1305"


# -- internal/configfile/config_test ------------------------------------------------------------


@pytest.mark.parametrize("name", ["v1.conf", "StrangeFeature.conf"])
def test_config_test_rejected(name: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(vector_path(f"{CONFIG_TEST_DIR}/{name}"))
    assert exc.value.exit_code == 27


@pytest.mark.parametrize("name", ["v2.conf", "PlaintextNames.conf"])
def test_config_test_accepted(name: str) -> None:
    conf = load_config(vector_path(f"{CONFIG_TEST_DIR}/{name}"))
    assert conf.version == 2
    assert conf.has("GCMIV128")
    assert len(conf.decrypt_master_key(PASSWORD)) == 32
    if name == "PlaintextNames.conf":
        assert conf.options.plaintext_names


# -- errors --------------------------------------------------------------------------------------


def test_wrong_password() -> None:
    conf = load_config(_conf_path("v1.3"))
    with pytest.raises(PasswordIncorrectError) as exc:
        conf.decrypt_master_key(b"wrong")
    assert exc.value.exit_code == 12


def test_wrong_password_legacy() -> None:
    conf = load_config(_conf_path("v0.9"))
    with pytest.raises(PasswordIncorrectError) as exc:
        conf.decrypt_master_key(b"test\n")
    assert exc.value.exit_code == 12


def test_empty_and_oversized_password(tmp_path: Path) -> None:
    conf = load_config(_conf_path("v1.3"))
    for pw in (b"", b"p" * 2049):
        with pytest.raises(VaultError) as exc:
            conf.decrypt_master_key(pw)
        assert exc.value.exit_code == 9
    with pytest.raises(VaultError) as exc2:
        Vault.init(tmp_path, b"", logn=LOGN)
    assert exc2.value.exit_code == 9
    assert os.listdir(tmp_path) == []


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigMissingError) as exc:
        load_config(tmp_path / "gocryptfs.conf")
    assert exc.value.exit_code == 11
    with pytest.raises(VaultError) as exc2:
        Vault.open(tmp_path, password=PASSWORD)
    assert exc2.value.exit_code == 11


@pytest.mark.parametrize(
    "raw",
    [b"", b"garbage", b"{not json", b'"string"', b"\xff\xfe{}", b'{"Version": "2"}', b'{"Creator": 5}'],
)
def test_garbage_json(raw: bytes, tmp_path: Path) -> None:
    with pytest.raises(ConfigMissingError) as exc:
        parse_config(raw)
    assert exc.value.exit_code == 11
    p = tmp_path / "gocryptfs.conf"
    p.write_bytes(raw)
    with pytest.raises(VaultError) as exc2:
        load_config(p)
    assert exc2.value.exit_code == 11


@pytest.mark.parametrize(
    "raw",
    [
        b"[]",
        b"[1, 2]",
        b'[["Version", 2]]',
        b'{"ScryptObject": [1, 2]}',
        b'{"ScryptObject": [["N", 1024]], "Version": 2}',
        b'{"FeatureFlags": {}, "Version": 2}',
    ],
)
def test_json_arrays_are_not_objects(raw: bytes) -> None:
    """Go's json.Unmarshal refuses an array where the struct wants an object (and vice versa):
    a load error (exit 11), not a config that validates or crashes."""
    with pytest.raises(ConfigMissingError) as exc:
        parse_config(raw)
    assert exc.value.exit_code == 11


def _v13_dict() -> dict[str, Any]:
    config: dict[str, Any] = json.loads(_raw("tests/example_filesystems/v1.3/gocryptfs.conf"))
    return config


def _dump(d: dict[str, Any]) -> bytes:
    return json.dumps(d, indent="\t").encode()


def test_case_insensitive_field_names() -> None:
    d = _v13_dict()
    so = d["ScryptObject"]
    mangled = {
        "creator": d["Creator"],
        "ENCRYPTEDKEY": d["EncryptedKey"],
        "scryptObject": {
            "salt": so["Salt"],
            "n": so["N"],
            "r": so["R"],
            "p": so["P"],
            "keylen": so["KeyLen"],
        },
        "VERSION": d["Version"],
        "featureflags": d["FeatureFlags"],
    }
    conf = parse_config(_dump(mangled))
    assert conf == parse_config(_dump(d))
    assert conf.decrypt_master_key(PASSWORD) == parse_master_key(SUPPORTED_VAULTS["v1.3"].master_key)


def test_unknown_fields_ignored() -> None:
    d = _v13_dict()
    d["SomethingNew"] = {"nested": [1, 2, 3]}
    d["ScryptObject"]["Extra"] = "x"
    assert parse_config(_dump(d)) == parse_config(_dump(_v13_dict()))


def _mutate(fn: Any) -> bytes:
    d = _v13_dict()
    fn(d)
    return _dump(d)


def _drop_gcmiv128(d: dict[str, Any]) -> None:
    d["FeatureFlags"].remove("GCMIV128")


def _xchacha_and_aessiv(d: dict[str, Any]) -> None:
    d["FeatureFlags"] += ["XChaCha20Poly1305", "AESSIV"]


def _version3(d: dict[str, Any]) -> None:
    d["Version"] = 3


def _n512(d: dict[str, Any]) -> None:
    d["ScryptObject"]["N"] = 512


def _salt16(d: dict[str, Any]) -> None:
    d["ScryptObject"]["Salt"] = base64.b64encode(bytes(range(16))).decode()


def _lnm_flag_without_field(d: dict[str, Any]) -> None:
    d["FeatureFlags"].append("LongNameMax")


def _lnm_field_without_flag(d: dict[str, Any]) -> None:
    d["LongNameMax"] = 100


def _lnm_too_small(d: dict[str, Any]) -> None:
    d["FeatureFlags"].append("LongNameMax")
    d["LongNameMax"] = 61


def _plaintext_with_diriv(d: dict[str, Any]) -> None:
    d["FeatureFlags"].append("PlaintextNames")


def _aessiv_without_gcmiv128(d: dict[str, Any]) -> None:
    d["FeatureFlags"].remove("GCMIV128")
    d["FeatureFlags"].append("AESSIV")


def _xchacha_with_gcmiv128(d: dict[str, Any]) -> None:
    d["FeatureFlags"].append("XChaCha20Poly1305")


def _xchacha_without_hkdf(d: dict[str, Any]) -> None:
    d["FeatureFlags"] = ["XChaCha20Poly1305", "DirIV", "EMENames", "LongNames", "Raw64"]


def _unknown_flag(d: dict[str, Any]) -> None:
    d["FeatureFlags"].append("StrangeFeatureFlag")


def _keylen64(d: dict[str, Any]) -> None:
    d["ScryptObject"]["KeyLen"] = 64


def _r4(d: dict[str, Any]) -> None:
    d["ScryptObject"]["R"] = 4


def _p0(d: dict[str, Any]) -> None:
    d["ScryptObject"]["P"] = 0


def _version_missing(d: dict[str, Any]) -> None:
    del d["Version"]


MUTATIONS = [
    _drop_gcmiv128,
    _xchacha_and_aessiv,
    _version3,
    _n512,
    _salt16,
    _lnm_flag_without_field,
    _lnm_field_without_flag,
    _lnm_too_small,
    _plaintext_with_diriv,
    _aessiv_without_gcmiv128,
    _xchacha_with_gcmiv128,
    _xchacha_without_hkdf,
    _unknown_flag,
    _keylen64,
    _r4,
    _p0,
    _version_missing,
]


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda f: f.__name__.lstrip("_"))
def test_mutated_config_rejected_27(mutation: Any) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(_mutate(mutation))
    assert exc.value.exit_code == 27


def test_valid_longnamemax_accepted() -> None:
    def add(d: dict[str, Any]) -> None:
        d["FeatureFlags"].append("LongNameMax")
        d["LongNameMax"] = 100

    conf = parse_config(_mutate(add))
    assert conf.long_name_max == 100
    assert conf.options.longname_max == 100


def test_null_feature_flags_is_rejected_as_deprecated() -> None:
    def null(d: dict[str, Any]) -> None:
        d["FeatureFlags"] = None

    with pytest.raises(ConfigError) as exc:
        parse_config(_mutate(null))
    assert exc.value.exit_code == 27


# -- master key text ---------------------------------------------------------------------------


def test_parse_and_format_master_key() -> None:
    grouped = SUPPORTED_VAULTS["v1.3"].master_key
    key = parse_master_key(grouped)
    assert key.hex() == grouped.replace("-", "")
    assert format_master_key(key) == grouped
    assert parse_master_key(grouped.upper()) == key
    assert parse_master_key(grouped.replace("-", "")) == key
    for bad in ["", "xyz", grouped[:-2], grouped + "00", "0" * 63]:
        with pytest.raises(MasterKeyError) as exc:
            parse_master_key(bad)
        assert exc.value.exit_code == 14


# -- new configs ---------------------------------------------------------------------------------


def test_new_config_round_trip() -> None:
    key = os.urandom(32)
    conf = new_config(key, b"pw", logn=LOGN)
    text = conf.to_json()
    again = parse_config(text.encode())
    assert again == conf
    assert again.creator == conf.creator and again.creator
    assert again.scrypt.n == 1024 and again.scrypt.r == 8 and again.scrypt.p == 1
    assert again.scrypt.key_len == 32 and len(again.scrypt.salt) == 32
    assert len(again.encrypted_key) == 64
    assert again.decrypt_master_key(b"pw") == key


def test_new_config_json_layout() -> None:
    conf = new_config(os.urandom(32), b"pw", logn=LOGN, longname_max=100, aessiv=True)
    text = conf.to_json()
    assert text.endswith("}\n") and not text.endswith("\n\n")
    lines = text.splitlines()
    assert lines[0] == "{"
    assert lines[1].startswith('\t"Creator": ')
    for line in lines[1:-1]:
        stripped = line.lstrip("\t")
        assert not stripped.startswith(" "), line
        assert len(line) > len(stripped)
    assert '\t\t"Salt": ' in text  # nested object indented with two tabs
    pairs = json.loads(text, object_pairs_hook=lambda p: p)
    assert [k for k, _ in pairs] == [
        "Creator",
        "EncryptedKey",
        "ScryptObject",
        "Version",
        "FeatureFlags",
        "LongNameMax",
    ]
    scrypt_obj = dict(pairs)["ScryptObject"]
    assert [k for k, _ in scrypt_obj] == ["Salt", "N", "R", "P", "KeyLen"]
    assert dict(pairs)["LongNameMax"] == 100
    # standard base64 with padding for byte fields
    ek = dict(pairs)["EncryptedKey"]
    assert len(ek) == 88 and base64.b64decode(ek, validate=True) == conf.encrypted_key


def test_to_json_escapes_html_like_go() -> None:
    """Go's encoding/json escapes <, > and & inside strings (HTML-safe by default)."""
    conf = replace(new_config(os.urandom(32), b"pw", logn=LOGN), creator="a<b>&cé")
    text = conf.to_json()
    assert '\t"Creator": "a\\u003cb\\u003e\\u0026cé",\n' in text
    assert parse_config(text.encode()).creator == conf.creator


def test_to_json_escapes_line_separators_like_go() -> None:
    """Go's encoding/json always writes U+2028 and U+2029 as \\u2028 and \\u2029."""
    conf = replace(new_config(os.urandom(32), b"pw", logn=LOGN), creator="x\u2028y\u2029z")
    text = conf.to_json()
    assert '\t"Creator": "x\\u2028y\\u2029z",\n' in text
    assert parse_config(text.encode()).creator == conf.creator


def test_new_config_default_has_no_longnamemax_field() -> None:
    text = new_config(os.urandom(32), b"pw", logn=LOGN).to_json()
    keys = [k for k, _ in json.loads(text, object_pairs_hook=lambda p: p)]
    assert keys == ["Creator", "EncryptedKey", "ScryptObject", "Version", "FeatureFlags"]
    text255 = new_config(os.urandom(32), b"pw", logn=LOGN, longname_max=255).to_json()
    assert "LongNameMax" not in text255


def test_init_flags_spec_examples() -> None:
    assert init_flags() == ("HKDF", "GCMIV128", "DirIV", "EMENames", "LongNames", "Raw64")
    assert init_flags(aessiv=True) == (
        "HKDF",
        "GCMIV128",
        "DirIV",
        "EMENames",
        "LongNames",
        "Raw64",
        "AESSIV",
    )
    assert init_flags(xchacha=True, plaintext_names=True) == (
        "HKDF",
        "XChaCha20Poly1305",
        "PlaintextNames",
    )
    assert init_flags(aessiv=True, longname_max=100) == (
        "HKDF",
        "GCMIV128",
        "DirIV",
        "LongNameMax",
        "EMENames",
        "LongNames",
        "Raw64",
        "AESSIV",
    )
    assert init_flags(deterministic_names=True) == (
        "HKDF",
        "GCMIV128",
        "EMENames",
        "LongNames",
        "Raw64",
    )
    assert init_flags(xchacha=True) == (
        "HKDF",
        "XChaCha20Poly1305",
        "DirIV",
        "EMENames",
        "LongNames",
        "Raw64",
    )
    assert init_flags(longname_max=255) == init_flags()


def test_new_config_reverse_longnamemax_100() -> None:
    conf = new_config(os.urandom(32), b"pw", logn=LOGN, aessiv=True, longname_max=100)
    assert conf.feature_flags == init_flags(aessiv=True, longname_max=100)
    assert conf.long_name_max == 100


def test_new_config_refusals() -> None:
    with pytest.raises(VaultError):
        new_config(os.urandom(32), b"pw", logn=LOGN, aessiv=True, xchacha=True)
    with pytest.raises(VaultError):
        new_config(os.urandom(32), b"pw", logn=LOGN, longname_max=61)
    with pytest.raises(VaultError):
        new_config(os.urandom(32), b"pw", logn=9)


def test_with_password() -> None:
    key = os.urandom(32)
    conf = new_config(key, b"old", logn=LOGN, deterministic_names=True, longname_max=80)
    conf2 = conf.with_password(key, b"new")
    assert conf2.feature_flags == conf.feature_flags
    assert conf2.creator == conf.creator
    assert conf2.long_name_max == 80
    assert conf2.version == 2
    assert conf2.scrypt.n == conf.scrypt.n == 1024
    assert conf2.scrypt.salt != conf.scrypt.salt
    assert conf2.encrypted_key[:16] != conf.encrypted_key[:16]
    assert conf2.decrypt_master_key(b"new") == key
    with pytest.raises(PasswordIncorrectError):
        conf2.decrypt_master_key(b"old")
    conf3 = conf.with_password(key, b"new", logn=11)
    assert conf3.scrypt.n == 2048


def test_with_password_on_legacy_example_keeps_creator_and_flags() -> None:
    conf = load_config(_conf_path("v1.3"))
    key = conf.decrypt_master_key(PASSWORD)
    conf2 = conf.with_password(key, b"other")
    assert conf2.creator == "gocryptfs v1.2.1-23-gd78a8d1-dirty"
    assert conf2.feature_flags == conf.feature_flags
    assert conf2.scrypt.salt != conf.scrypt.salt
    assert parse_config(conf2.to_json().encode()).decrypt_master_key(b"other") == key


def test_write_mode_0400_and_atomic(tmp_path: Path) -> None:
    key = os.urandom(32)
    conf = new_config(key, b"pw", logn=LOGN)
    path = tmp_path / "gocryptfs.conf"
    conf.write(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o400
    assert path.read_text() == conf.to_json()
    assert not (tmp_path / "gocryptfs.conf.tmp").exists()
    # rewriting (as -passwd does) replaces the read-only file
    conf2 = conf.with_password(key, b"pw2")
    conf2.write(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o400
    assert load_config(path).decrypt_master_key(b"pw2") == key


def test_write_refuses_stale_tmp(tmp_path: Path) -> None:
    conf = new_config(os.urandom(32), b"pw", logn=LOGN)
    path = tmp_path / "gocryptfs.conf"
    conf.write(path)
    before = path.read_bytes()
    (tmp_path / "gocryptfs.conf.tmp").write_text("stale")
    with pytest.raises(WriteConfError) as exc:
        conf.with_password(os.urandom(32), b"x").write(path)
    assert exc.value.exit_code == 24
    assert path.read_bytes() == before
    assert (tmp_path / "gocryptfs.conf.tmp").read_text() == "stale"


def test_info_lines_v13() -> None:
    conf = load_config(_conf_path("v1.3"))
    assert conf.info_lines() == [
        "Creator:           gocryptfs v1.2.1-23-gd78a8d1-dirty",
        "FeatureFlags:      GCMIV128 DirIV EMENames LongNames Raw64 HKDF",
        "EncryptedKey:      64B",
        "ScryptObject:      Salt=32B N=1024 R=8 P=1 KeyLen=32",
        "contentEncryption: AES-GCM-256",
    ]


@pytest.mark.parametrize(
    ("relpath", "enc", "key_len"),
    [
        ("tests/example_filesystems/v1.1-aessiv/gocryptfs.conf", "AES-SIV-512", "60B"),
        ("tests/example_filesystems/v2.2-xchacha/gocryptfs.conf", "XChaCha20-Poly1305", "64B"),
        (f"{BROKEN_FS}/gocryptfs.conf", "AES-GCM-256", "64B"),
    ],
)
def test_info_lines_columns(relpath: str, enc: str, key_len: str) -> None:
    lines = load_config(vector_path(relpath)).info_lines()
    assert len(lines) == 5
    labels = ["Creator:", "FeatureFlags:", "EncryptedKey:", "ScryptObject:", "contentEncryption:"]
    for line, label in zip(lines, labels, strict=True):
        assert line.startswith(label)
        assert line[19 - 1] == " " and line[19] != " "
        assert line[:19].rstrip() == label
    assert lines[2] == f"EncryptedKey:      {key_len}"
    assert lines[4] == f"contentEncryption: {enc}"


def test_copied_config_loads_from_tmp(tmp_path: Path) -> None:
    p = copy_vector("tests/example_filesystems/v1.3/gocryptfs.conf", tmp_path)
    conf = load_config(p)
    assert conf.path == p
