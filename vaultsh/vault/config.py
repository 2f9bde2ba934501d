"""gocryptfs.conf: parse and validate as gocryptfs does, wrap/unwrap the master key, write atomically (§3)."""

from __future__ import annotations

import base64
import binascii
import errno
import json
import math
import os
import stat
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vaultsh import __version__
from vaultsh.crypto.aead import AesGcm, AuthenticationError
from vaultsh.crypto.kdf import hkdf_sha256, scrypt
from vaultsh.vault.conf_names import CONF_NAME as CONF_NAME
from vaultsh.vault.conf_names import DEFAULT_SCRYPT_LOGN as DEFAULT_SCRYPT_LOGN
from vaultsh.vault.conf_names import MAX_PASSWORD_LEN as MAX_PASSWORD_LEN
from vaultsh.vault.conf_names import REVERSE_CONF_NAME as REVERSE_CONF_NAME
from vaultsh.vault.errors import (
    ConfigError,
    ConfigMissingError,
    FIDO2UnsupportedError,
    InitError,
    PasswordIncorrectError,
    ReadPasswordError,
    ScryptParamsError,
    UsageError,
    WriteConfError,
)
from vaultsh.vault.fdio import write_all
from vaultsh.vault.keys import INFO_GCM, LONGNAME_MAX_DEFAULT, MASTER_KEY_LEN, FormatOptions

CURRENT_VERSION = 2
MIN_SCRYPT_LOGN = 10
MAX_SCRYPT_LOGN = 28
MAX_SCRYPT_R = 64
MAX_SCRYPT_P = 16
MAX_CONFIG_SIZE = 1 << 20  # gocryptfs writes well under 1 KiB; FIDO2 data adds a little

# Feature flag strings, spec §3.3.
FLAG_PLAINTEXT_NAMES = "PlaintextNames"
FLAG_DIRIV = "DirIV"
FLAG_EME_NAMES = "EMENames"
FLAG_GCMIV128 = "GCMIV128"
FLAG_LONG_NAMES = "LongNames"
FLAG_LONG_NAME_MAX = "LongNameMax"
FLAG_AESSIV = "AESSIV"
FLAG_RAW64 = "Raw64"
FLAG_HKDF = "HKDF"
FLAG_FIDO2 = "FIDO2"
FLAG_XCHACHA = "XChaCha20Poly1305"
KNOWN_FLAGS = frozenset(
    {
        FLAG_PLAINTEXT_NAMES,
        FLAG_DIRIV,
        FLAG_EME_NAMES,
        FLAG_GCMIV128,
        FLAG_LONG_NAMES,
        FLAG_LONG_NAME_MAX,
        FLAG_AESSIV,
        FLAG_RAW64,
        FLAG_HKDF,
        FLAG_FIDO2,
        FLAG_XCHACHA,
    }
)
_NAME_FLAGS = (FLAG_EME_NAMES, FLAG_DIRIV, FLAG_LONG_NAMES, FLAG_RAW64, FLAG_LONG_NAME_MAX)
_ZERO_AD = struct.pack(">Q", 0)  # block 0, no file ID (§3.5)


@dataclass(frozen=True)
class ScryptParams:
    """The config's ScryptObject: how the password becomes the key that wraps the master key."""

    salt: bytes
    n: int
    r: int
    p: int
    key_len: int

    @property
    def logn(self) -> int:
        return round(math.log2(self.n)) if self.n > 0 else 0

    def problem(self) -> str | None:
        """Why gocryptfs would refuse these parameters, or None (§3.2)."""
        if self.n < 1 << MIN_SCRYPT_LOGN:
            return f"scrypt N={self.n} is below the minimum 1024"
        if self.n & (self.n - 1):
            return f"scrypt N={self.n} is not a power of two"
        # Upper bounds are vaultsh's own: gocryptfs -init writes at most N=2^28, R=8, P=1, and
        # a hand-made config asking for more would make unlocking take days or all memory.
        if self.n > 1 << MAX_SCRYPT_LOGN:
            return f"scrypt N=2^{self.logn} is above the maximum 2^{MAX_SCRYPT_LOGN}"
        if self.r > MAX_SCRYPT_R or self.p > MAX_SCRYPT_P:
            return f"scrypt R={self.r}, P={self.p} are above the maximum {MAX_SCRYPT_R}, {MAX_SCRYPT_P}"
        if self.r < 8:
            return f"scrypt R={self.r} is below the minimum 8"
        if self.p < 1:
            return f"scrypt P={self.p} is below the minimum 1"
        if len(self.salt) < 32:
            return f"scrypt salt has {len(self.salt)} bytes, want at least 32"
        if self.key_len != 32:
            return f"scrypt KeyLen={self.key_len}, want 32"
        return None

    @classmethod
    def new(cls, logn: int = DEFAULT_SCRYPT_LOGN) -> ScryptParams:
        if not MIN_SCRYPT_LOGN <= logn <= MAX_SCRYPT_LOGN:
            raise ScryptParamsError(f"scryptn {logn} is outside 10..{MAX_SCRYPT_LOGN}")
        return cls(salt=os.urandom(32), n=1 << logn, r=8, p=1, key_len=32)


@dataclass(frozen=True)
class ConfFile:
    """The content of a gocryptfs.conf (§3.2); `path` is where it was read from or goes to."""

    creator: str
    encrypted_key: bytes
    scrypt: ScryptParams
    version: int
    feature_flags: tuple[str, ...]
    long_name_max: int = 0
    fido2: dict[str, Any] | None = None
    path: Path | None = field(default=None, compare=False)

    def has(self, flag: str) -> bool:
        return flag in self.feature_flags

    @property
    def options(self) -> FormatOptions:
        plaintext = self.has(FLAG_PLAINTEXT_NAMES)
        return FormatOptions(
            plaintext_names=plaintext,
            deterministic_names=not plaintext and not self.has(FLAG_DIRIV),
            raw64=self.has(FLAG_RAW64),
            hkdf=self.has(FLAG_HKDF),
            aessiv=self.has(FLAG_AESSIV),
            xchacha=self.has(FLAG_XCHACHA),
            longname_max=self.long_name_max or LONGNAME_MAX_DEFAULT,
        )

    # -- master key -------------------------------------------------------------------------

    def _kek(self, password: bytes) -> AesGcm:
        check_password(password)
        problem = self.scrypt.problem()
        if problem:
            raise ScryptParamsError(f"{self._where()}: {problem}")
        s = self.scrypt
        raw = scrypt(password, s.salt, s.n, s.r, s.p, s.key_len)
        # Always AES-GCM, even in SIV and XChaCha vaults (§3.5, pitfall 2).
        if self.has(FLAG_HKDF):
            return AesGcm(hkdf_sha256(raw, INFO_GCM, 32), nonce_size=16)
        return AesGcm(raw, nonce_size=12)

    def decrypt_master_key(self, password: bytes) -> bytes:
        if self.fido2 is not None or self.has(FLAG_FIDO2):
            raise FIDO2UnsupportedError(f"{self._where()}: FIDO2 vaults are not supported")
        kek = self._kek(password)
        try:
            key = kek.open(self.encrypted_key, _ZERO_AD)
        except AuthenticationError:
            raise PasswordIncorrectError("Password incorrect.") from None
        if len(key) != MASTER_KEY_LEN:
            raise ConfigError(f"{self._where()}: master key has {len(key)} bytes, want 32")
        return key

    def with_password(self, master_key: bytes, password: bytes, logn: int | None = None) -> ConfFile:
        """A copy with the master key re-wrapped under `password`, new salt and nonce (§3.6)."""
        params = ScryptParams.new(self.scrypt.logn if logn is None else logn)
        tmp = replace(self, scrypt=params)
        kek = tmp._kek(password)
        return replace(tmp, encrypted_key=kek.seal(master_key, _ZERO_AD))

    def _where(self) -> str:
        return str(self.path) if self.path else CONF_NAME

    # -- serialisation ----------------------------------------------------------------------

    def to_json(self) -> str:
        """JSON exactly as Go's MarshalIndent(cf, "", "\\t") writes it, plus a newline (§3.1)."""
        obj: dict[str, Any] = {
            "Creator": self.creator,
            "EncryptedKey": _b64std(self.encrypted_key),
            "ScryptObject": {
                "Salt": _b64std(self.scrypt.salt),
                "N": self.scrypt.n,
                "R": self.scrypt.r,
                "P": self.scrypt.p,
                "KeyLen": self.scrypt.key_len,
            },
            "Version": self.version,
            "FeatureFlags": list(self.feature_flags),
        }
        if self.fido2:
            obj["FIDO2"] = self.fido2
        if self.long_name_max:
            obj["LongNameMax"] = self.long_name_max
        text = json.dumps(obj, indent="\t", ensure_ascii=False)
        # Go escapes these three for HTML safety; match it byte for byte.
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        return text + "\n"

    def info_lines(self) -> list[str]:
        """The five lines of `gocryptfs -info` (§3.8)."""
        s = self.scrypt
        rows = [
            ("Creator:", self.creator),
            ("FeatureFlags:", " ".join(self.feature_flags)),
            ("EncryptedKey:", f"{len(self.encrypted_key)}B"),
            (
                "ScryptObject:",
                f"Salt={len(s.salt)}B N={s.n} R={s.r} P={s.p} KeyLen={s.key_len}",
            ),
            ("contentEncryption:", self.options.content_encryption),
        ]
        return [f"{label:<19}{value}" for label, value in rows]

    def write(self, path: Path) -> None:
        """Write atomically: `<path>.tmp` with O_EXCL and mode 0400, fsync, rename (§3.1)."""
        tmp = path.with_name(path.name + ".tmp")
        data = self.to_json().encode()
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        except FileExistsError:
            raise WriteConfError(f"{tmp}: a stale temporary config exists; remove it") from None
        except OSError as e:
            raise WriteConfError(f"{tmp}: cannot create: {e.strerror}") from None
        try:
            try:
                write_all(fd, data)  # a write that makes no progress raises, never spins
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise WriteConfError(f"{path}: cannot write config: {e.strerror}") from None
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_password(password: bytes) -> None:
    if not password:
        raise ReadPasswordError("Password is empty")
    if len(password) > MAX_PASSWORD_LEN:
        raise ReadPasswordError(f"Password is longer than {MAX_PASSWORD_LEN} bytes")


def _b64std(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# -- loading --------------------------------------------------------------------------------

_FIELDS = {
    "creator": "Creator",
    "encryptedkey": "EncryptedKey",
    "scryptobject": "ScryptObject",
    "version": "Version",
    "featureflags": "FeatureFlags",
    "fido2": "FIDO2",
    "longnamemax": "LongNameMax",
}
_SCRYPT_FIELDS = {"salt": "Salt", "n": "N", "r": "R", "p": "P", "keylen": "KeyLen"}


class _JsonObject(list):  # type: ignore[type-arg]
    """A JSON object kept as its (key, value) pairs, distinct from a JSON array."""


def _to_python(value: Any) -> Any:
    if isinstance(value, _JsonObject):
        return {k: _to_python(v) for k, v in value}
    if isinstance(value, list):
        return [_to_python(v) for v in value]
    return value


def _fold(pairs: list[tuple[str, Any]], known: dict[str, str]) -> dict[str, Any]:
    """Match keys like Go's encoding/json: case-insensitive, unknown ignored, last one wins."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        name = known.get(key.lower())
        if name is not None:
            out[name] = value
    return out


# The ranges of the Go types gocryptfs unmarshals into: a number outside fails to load (exit
# 11, as gocryptfs 2.3 does for N = 2^63), before any check of what it means.
_GO_INT = (-(1 << 63), (1 << 63) - 1, "64-bit signed integer")
_GO_UINT16 = (0, (1 << 16) - 1, "16-bit unsigned integer")


def _int(where: str, name: str, value: Any, bounds: tuple[int, int, str] = _GO_INT) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigMissingError(f"{where}: field {name} is not an integer")
    low, high, kind = bounds
    if not low <= value <= high:
        raise ConfigMissingError(f"{where}: field {name} is out of range (gocryptfs reads a {kind})")
    return value


def _bytes(where: str, name: str, value: Any) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str):
        raise ConfigMissingError(f"{where}: field {name} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigMissingError(f"{where}: field {name} is not valid base64") from None


def parse_config(raw: bytes, path: Path | None = None) -> ConfFile:
    """Parse and validate config bytes; raises ConfigMissingError or ConfigError (§3)."""
    where = str(path) if path else CONF_NAME
    try:
        top = json.loads(raw.decode("utf-8"), object_pairs_hook=_JsonObject)
    except (ValueError, RecursionError) as e:
        # ValueError covers bad UTF-8, bad JSON and integers too long to convert; deep
        # nesting exhausts the parser's recursion.
        raise ConfigMissingError(f"{where}: not a valid JSON config ({e.__class__.__name__})") from None
    if not isinstance(top, _JsonObject):
        raise ConfigMissingError(f"{where}: not a JSON object")
    fields = _fold(top, _FIELDS)
    creator = fields.get("Creator", "")
    if not isinstance(creator, str):
        raise ConfigMissingError(f"{where}: field Creator is not a string")
    so_pairs = fields.get("ScryptObject")
    if so_pairs is None:
        so_pairs = _JsonObject()
    if not isinstance(so_pairs, _JsonObject):
        raise ConfigMissingError(f"{where}: field ScryptObject is not an object")
    so = _fold(so_pairs, _SCRYPT_FIELDS)
    params = ScryptParams(
        salt=_bytes(where, "Salt", so.get("Salt")),
        n=_int(where, "N", so.get("N", 0)),
        r=_int(where, "R", so.get("R", 0)),
        p=_int(where, "P", so.get("P", 0)),
        key_len=_int(where, "KeyLen", so.get("KeyLen", 0)),
    )
    flags_raw = fields.get("FeatureFlags")
    if flags_raw is None:
        flags: tuple[str, ...] = ()
    elif (
        isinstance(flags_raw, list)
        and not isinstance(flags_raw, _JsonObject)
        and all(isinstance(f, str) for f in flags_raw)
    ):
        flags = tuple(flags_raw)
    else:
        raise ConfigMissingError(f"{where}: field FeatureFlags is not a list of strings")
    fido2_raw = fields.get("FIDO2")
    if fido2_raw is not None and not isinstance(fido2_raw, _JsonObject):
        raise ConfigMissingError(f"{where}: field FIDO2 is not an object")
    fido2 = _to_python(fido2_raw) if fido2_raw else None
    lnm = fields.get("LongNameMax", 0)
    long_name_max = 0 if lnm is None else _int(where, "LongNameMax", lnm)
    if not 0 <= long_name_max <= 255:  # a uint8 in Go: larger values fail to unmarshal
        raise ConfigMissingError(f"{where}: field LongNameMax is out of range")
    conf = ConfFile(
        creator=creator,
        encrypted_key=_bytes(where, "EncryptedKey", fields.get("EncryptedKey")),
        scrypt=params,
        version=_int(where, "Version", fields.get("Version", 0), _GO_UINT16),
        feature_flags=flags,
        long_name_max=long_name_max,
        fido2=fido2,
        path=path,
    )
    validate(conf)
    return conf


def validate(conf: ConfFile) -> None:
    """The refusals of gocryptfs's configfile.Load/Validate, each with exit code 27 (§3.3)."""
    where = str(conf.path) if conf.path else CONF_NAME
    if conf.version != CURRENT_VERSION:
        raise ConfigError(f"{where}: unsupported on-disk format version {conf.version}, want 2")
    for flag in conf.feature_flags:
        if flag not in KNOWN_FLAGS:
            raise ConfigError(f"{where}: unsupported feature flag {flag!r}")
    has = conf.has
    if has(FLAG_XCHACHA) and has(FLAG_AESSIV):
        raise ConfigError(f"{where}: XChaCha20Poly1305 and AESSIV cannot both be set")
    if has(FLAG_AESSIV) and not has(FLAG_GCMIV128):
        raise ConfigError(f"{where}: AESSIV requires GCMIV128")
    if has(FLAG_XCHACHA):
        if not has(FLAG_HKDF):
            raise ConfigError(f"{where}: XChaCha20Poly1305 requires HKDF")
        if has(FLAG_GCMIV128):
            raise ConfigError(f"{where}: XChaCha20Poly1305 conflicts with GCMIV128")
    elif not has(FLAG_GCMIV128):
        raise ConfigError(f"{where}: deprecated filesystem without GCMIV128 (96-bit nonces) is not supported")
    if has(FLAG_PLAINTEXT_NAMES):
        for f in _NAME_FLAGS:
            if has(f):
                raise ConfigError(f"{where}: PlaintextNames conflicts with {f}")
    if has(FLAG_LONG_NAME_MAX) != (conf.long_name_max != 0):
        raise ConfigError(f"{where}: LongNameMax flag and field disagree")
    if conf.long_name_max and conf.long_name_max < 62:
        raise ConfigError(f"{where}: LongNameMax {conf.long_name_max} is below 62")
    problem = conf.scrypt.problem()
    if problem:
        raise ConfigError(f"{where}: {problem}")
    want = 64 if has(FLAG_HKDF) else 60
    if len(conf.encrypted_key) != want:
        raise ConfigError(f"{where}: EncryptedKey has {len(conf.encrypted_key)} bytes, want {want}")


_RECOVER_HINT = "; if the vault lost it, `vaultsh recover` writes a new one from the master key"


def _has_entries(directory: Path) -> bool:
    try:
        with os.scandir(directory) as it:
            return next(it, None) is not None
    except OSError:
        return False


def backup_hint(path: Path) -> str:
    """How to use the `.bak` copy of a config that is missing or broken; "" if there is none."""
    bak = path.with_name(path.name + ".bak")
    if not bak.is_file():
        return ""
    return f"; {bak.name} exists: --config {bak} uses it, or copy it over {path.name}"


def _read_regular(path: Path, limit: int) -> bytes:
    """Up to `limit` bytes of a regular file (a symlink to one is fine); never waits on a FIFO."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory")
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file")
        chunks = []
        while limit > 0 and (chunk := os.read(fd, min(limit, 1 << 16))):
            chunks.append(chunk)
            limit -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def load_config(path: Path) -> ConfFile:
    """Read and validate a config; errors name a `.bak` copy when one exists."""
    try:
        raw = _read_regular(path, MAX_CONFIG_SIZE + 1)
    except FileNotFoundError:
        hint = backup_hint(path) or (_RECOVER_HINT if _has_entries(path.parent) else "")
        what = "config file not found (is this a gocryptfs vault?)"
        raise ConfigMissingError(f"{path}: {what}{hint}") from None
    except IsADirectoryError:
        raise ConfigMissingError(f"{path}: is a directory, not a config file{backup_hint(path)}") from None
    except OSError as e:
        raise ConfigMissingError(f"{path}: cannot read config: {e.strerror}{backup_hint(path)}") from None
    try:
        if len(raw) > MAX_CONFIG_SIZE:
            raise ConfigMissingError(f"{path}: larger than {MAX_CONFIG_SIZE} bytes, not a config file")
        return parse_config(raw, path)
    except (ConfigMissingError, ConfigError) as e:
        hint = backup_hint(path)
        if not hint:
            raise
        raise type(e)(f"{e}{hint}") from None


def init_flags(
    *,
    plaintext_names: bool = False,
    deterministic_names: bool = False,
    aessiv: bool = False,
    xchacha: bool = False,
    longname_max: int = 0,
    raw64: bool = True,
    hkdf: bool = True,
) -> tuple[str, ...]:
    """The feature flags `gocryptfs -init` writes, in its order (§3.3).

    `raw64` and `hkdf` off describe vaults from before gocryptfs 1.3, for rebuilt configs.
    """
    flags = [FLAG_HKDF] if hkdf else []
    flags.append(FLAG_XCHACHA if xchacha else FLAG_GCMIV128)
    if plaintext_names:
        flags.append(FLAG_PLAINTEXT_NAMES)
    else:
        if not deterministic_names:
            flags.append(FLAG_DIRIV)
        if longname_max not in (0, 255):
            flags.append(FLAG_LONG_NAME_MAX)
        flags += [FLAG_EME_NAMES, FLAG_LONG_NAMES]
        if raw64:
            flags.append(FLAG_RAW64)
    if aessiv:
        flags.append(FLAG_AESSIV)
    return tuple(flags)


def new_config(
    master_key: bytes,
    password: bytes,
    *,
    logn: int = DEFAULT_SCRYPT_LOGN,
    plaintext_names: bool = False,
    deterministic_names: bool = False,
    aessiv: bool = False,
    xchacha: bool = False,
    longname_max: int = 0,
    raw64: bool = True,
    hkdf: bool = True,
) -> ConfFile:
    """A fresh config wrapping `master_key`, with the flags `gocryptfs -init` would write."""
    if xchacha and aessiv:
        raise InitError("--xchacha and --aessiv (or --reverse) cannot be combined")
    if longname_max and not 62 <= longname_max <= 255:
        raise InitError(f"--longnamemax {longname_max} is outside 62..255")
    if plaintext_names and longname_max not in (0, 255):
        raise InitError("--longnamemax has no effect with --plaintextnames")
    lnm = 0 if longname_max in (0, 255) or plaintext_names else longname_max
    skeleton = ConfFile(
        creator=f"vaultsh {__version__}",
        encrypted_key=b"",
        scrypt=ScryptParams.new(logn),
        version=CURRENT_VERSION,
        feature_flags=init_flags(
            plaintext_names=plaintext_names,
            deterministic_names=deterministic_names,
            aessiv=aessiv,
            xchacha=xchacha,
            longname_max=lnm,
            raw64=raw64,
            hkdf=hkdf,
        ),
        long_name_max=lnm,
    )
    conf = skeleton.with_password(master_key, password, logn)
    validate(conf)
    return conf


def unlock(
    conf_path: Path,
    *,
    password: bytes | None,
    master_key: bytes | None,
    options: FormatOptions | None,
    missing_ok: bool,
) -> tuple[bytes, FormatOptions, ConfFile | None]:
    """(master key, format options, config) from a password or a master key.

    With a master key and no options, the config's flags are used; with `missing_ok`, a
    missing config then means gocryptfs's defaults (as `gocryptfs -masterkey` mounts, §3.7).
    """
    conf: ConfFile | None = None
    if master_key is None:
        if password is None:
            raise UsageError("a password or a master key is needed")
        conf = load_config(conf_path)
        master_key = conf.decrypt_master_key(password)
    elif options is None:
        try:
            conf = load_config(conf_path)
        except ConfigMissingError:
            if not missing_ok:
                raise
    if len(master_key) != MASTER_KEY_LEN:
        raise UsageError("master key must be 32 bytes")
    if options is None:
        options = conf.options if conf else FormatOptions()
    return master_key, options, conf
