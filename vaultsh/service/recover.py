"""`recover`: a new gocryptfs.conf for a vault whose config is lost, from its master key."""

from __future__ import annotations

import os
from argparse import Namespace
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaultsh.vault import detect
from vaultsh.vault.config import (
    CONF_NAME,
    DEFAULT_SCRYPT_LOGN,
    REVERSE_CONF_NAME,
    ConfFile,
    load_config,
    new_config,
)
from vaultsh.vault.errors import MasterKeyError, ReadPasswordError, UsageError, WriteConfError
from vaultsh.vault.keys import LONGNAME_MAX_DEFAULT, FormatOptions
from vaultsh.vault.vault import Vault

if TYPE_CHECKING:
    from vaultsh.service.commands import Session


@dataclass(frozen=True)
class Choices:
    """What the person said about the settings: init's flags, and `defaults` for the rest."""

    plaintext_names: bool = False
    deterministic_names: bool = False
    aessiv: bool = False
    xchacha: bool = False
    longname_max: int = 0
    defaults: bool = False

    @classmethod
    def from_args(cls, a: Namespace) -> Choices:
        """The choices `recover` was given, as vaultsh.service.registry declares its flags."""
        return cls(
            plaintext_names=a.plaintextnames,
            deterministic_names=a.deterministic_names,
            aessiv=a.aessiv,
            xchacha=a.xchacha,
            longname_max=a.longnamemax,
            defaults=a.defaults,
        )

    def stated(self) -> dict[str, tuple[object, str]]:
        """setting -> (value, the flag that says so)."""
        out: dict[str, tuple[object, str]] = {}
        if self.aessiv and self.xchacha:
            raise UsageError("--aessiv and --xchacha cannot be combined")
        if self.plaintext_names and self.deterministic_names:
            raise UsageError("--plaintextnames and --deterministic-names cannot be combined")
        if self.aessiv:
            out[detect.CONTENT] = (detect.SIV, "--aessiv")
        if self.xchacha:
            out[detect.CONTENT] = (detect.XCHACHA, "--xchacha")
        if self.plaintext_names:
            out[detect.NAMES] = (detect.PLAIN, "--plaintextnames")
        if self.deterministic_names:
            out[detect.NAMES] = (detect.DETERMINISTIC, "--deterministic-names")
        if self.longname_max:
            if not detect.MIN_LONGNAME_MAX <= self.longname_max <= LONGNAME_MAX_DEFAULT:
                raise UsageError(f"--longnamemax {self.longname_max} is outside 62..255")
            out[detect.LONGNAME_MAX] = (self.longname_max, f"--longnamemax {self.longname_max}")
        return out


# init's choice where the files cannot tell and --defaults is given.
_INIT_DEFAULTS: dict[str, object] = {
    detect.CONTENT: detect.GCM,
    detect.NAMES: detect.DIRIV,
    detect.RAW64: True,
    detect.HKDF: True,
    detect.LONGNAME_MAX: LONGNAME_MAX_DEFAULT,
}

_FLAG_HINT = {
    detect.CONTENT: "--aessiv, --xchacha",
    detect.NAMES: "--plaintextnames, --deterministic-names",
    detect.LONGNAME_MAX: "--longnamemax N",
}


@dataclass
class Plan:
    """The settings a recovered config gets, each with where it came from."""

    cipherdir: Path
    detection: detect.Detection
    values: dict[str, object]
    sources: dict[str, str]  # "found", "assumed", "default" or the flag that set it
    reverse: bool = False

    @property
    def conf_path(self) -> Path:
        return self.cipherdir / (REVERSE_CONF_NAME if self.reverse else CONF_NAME)

    @property
    def options(self) -> FormatOptions:
        v = self.values
        return FormatOptions(
            plaintext_names=v[detect.NAMES] == detect.PLAIN,
            deterministic_names=v[detect.NAMES] == detect.DETERMINISTIC,
            raw64=bool(v[detect.RAW64]),
            hkdf=bool(v[detect.HKDF]),
            aessiv=v[detect.CONTENT] == detect.SIV,
            xchacha=v[detect.CONTENT] == detect.XCHACHA,
            longname_max=int(str(v[detect.LONGNAME_MAX])),
        )


def _settle(detection: detect.Detection, choices: Choices) -> tuple[dict[str, object], dict[str, str]]:
    """Each setting's value: the evidence, a flag agreeing with it, or an allowed default."""
    stated = choices.stated()
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    open_questions = []
    for setting in detect.iter_settings(detection):
        name = setting.name
        if name in stated:
            value, flag = stated[name]
            if not setting.allows(value):
                raise UsageError(f"{flag} contradicts what the files show: {setting.evidence}")
            values[name], sources[name] = value, flag
        elif not setting.candidates:
            raise UsageError(f"{name}: the files disagree with each other ({setting.evidence})")
        elif setting.decided:
            values[name], sources[name] = setting.value, "found"
        elif setting.assumable or choices.defaults:
            preferred = _INIT_DEFAULTS[name]
            values[name] = preferred if setting.allows(preferred) else setting.value
            sources[name] = "assumed" if setting.assumable else "--defaults"
        else:
            open_questions.append(setting)
    # Plaintext names need no name settings.
    if values.get(detect.NAMES) == detect.PLAIN:
        if detect.LONGNAME_MAX in stated:
            raise UsageError(f"{stated[detect.LONGNAME_MAX][1]} has no meaning with plain names")
        values[detect.RAW64], sources[detect.RAW64] = False, "found"
        values[detect.LONGNAME_MAX], sources[detect.LONGNAME_MAX] = LONGNAME_MAX_DEFAULT, "found"
    if values.get(detect.CONTENT) == detect.XCHACHA and values.get(detect.HKDF) is False:
        raise UsageError("XChaCha20-Poly1305 needs HKDF, but the files show a vault without it")
    if open_questions:
        what = "; ".join(f"{s.name}: {s.evidence} (settle with {_FLAG_HINT[s.name]})" for s in open_questions)
        raise UsageError(f"the files cannot decide {what}; or --defaults takes init's defaults")
    return values, sources


def _detect_view(view: Path, master_key: bytes) -> detect.Detection:
    """Settings of a reverse-mode folder from a copy of its encrypted view (a backup, say)."""
    detection = detect.detect(view, master_key)
    if detection.key_fits is False:
        raise MasterKeyError(f"{view}: the master key fits nothing in this view: {detection.key_evidence}")
    content = detection.settings[detect.CONTENT]
    if not content.allows(detect.SIV):
        raise UsageError(f"{view}: not a reverse-mode view, which is always AES-SIV: {content.evidence}")
    if not content.decided:
        content.candidates, content.evidence = (detect.SIV,), f"{detect.SIV}: reverse mode always uses it"
    detection.reverse = True
    return detection


def plan(
    cipherdir: Path, master_key: bytes, choices: Choices, *, reverse: bool = False, view: Path | None = None
) -> Plan:
    """Detect the settings and settle them; MasterKeyError (14) when the key fits nothing.

    A reverse-mode folder holds only plain files; `view`, a copy of its encrypted view, gives
    the evidence instead.
    """
    root = Path(cipherdir)
    if view is not None and not reverse:
        raise UsageError("--view is for reverse-mode folders (with --reverse)")
    if view is not None:
        detection = _detect_view(Path(view), master_key)
    elif reverse:
        detection = detect.detect_reverse(root, master_key)
    else:
        detection = detect.detect(root, master_key)
        if detection.key_fits is False:
            hint = "; a plain folder for reverse mode needs --reverse" if detection.looks_plain else ""
            raise MasterKeyError(f"{root}: the master key fits nothing here: {detection.key_evidence}{hint}")
    values, sources = _settle(detection, choices)
    result = Plan(root, detection, values, sources, reverse=reverse)
    # The check every other master-key command makes, now under the settled options.
    if (
        not reverse
        and detection.key_fits
        and Vault(root, master_key, result.options, None).key_fits() is False
    ):
        raise MasterKeyError(f"{root}: the master key does not decrypt this vault's names or files")
    return result


def build_config(recovery: Plan, master_key: bytes, password: bytes, logn: int | None = None) -> ConfFile:
    """The new config, wrapping the key under `password` with the settled flags."""
    o = recovery.options
    return new_config(
        master_key,
        password,
        logn=DEFAULT_SCRYPT_LOGN if logn is None else logn,
        plaintext_names=o.plaintext_names,
        deterministic_names=o.deterministic_names,
        aessiv=o.aessiv,
        xchacha=o.xchacha,
        longname_max=0 if o.plaintext_names else o.longname_max,
        raw64=o.raw64,
        hkdf=o.hkdf,
    )


def keep_backup(conf_path: Path) -> Path | None:
    """Hard-link an existing config to the first free `.bak`, `.bak.1`, ... name; None if none.

    A link, not a copy: the config stays in place until the new one replaces it, so a crash
    at any point leaves a config that opens (§3.1).
    """
    if not os.path.lexists(conf_path):
        return None
    if conf_path.is_dir() and not conf_path.is_symlink():
        raise WriteConfError(f"{conf_path}: is a directory; move it away first")
    for n in range(1000):
        bak = conf_path.with_name(conf_path.name + (".bak" if n == 0 else f".bak.{n}"))
        try:
            os.link(conf_path, bak, follow_symlinks=False)
        except FileExistsError:
            continue
        except OSError as e:
            raise WriteConfError(f"{bak}: cannot keep the old config: {e.strerror}") from None
        return bak
    raise WriteConfError(f"{conf_path}: no free .bak name up to .bak.999; clean some up first")


def write(recovery: Plan, conf: ConfFile) -> Path | None:
    """Write the config (atomically, after keeping any existing one); returns the backup."""
    bak = keep_backup(recovery.conf_path)
    conf.write(recovery.conf_path)
    return bak


_LABELS = {
    detect.CONTENT: "Content",
    detect.NAMES: "Names",
    detect.RAW64: "Base64",
    detect.HKDF: "Key derivation",
    detect.LONGNAME_MAX: "Long names",
}


def _shown(name: str, value: object) -> str:
    if name == detect.NAMES:
        return {
            detect.PLAIN: "plain (PlaintextNames)",
            detect.DIRIV: "encrypted, DirIV",
            detect.DETERMINISTIC: "encrypted, deterministic",
        }[str(value)]
    if name == detect.RAW64:
        return "unpadded (Raw64)" if value else "padded"
    if name == detect.HKDF:
        return "HKDF" if value else "legacy (master key)"
    if name == detect.LONGNAME_MAX:
        return f"hashed above {value} characters"
    return str(value)


def report_lines(recovery: Plan) -> list[str]:
    """What was found, why, and what the config will say."""
    lines = [f"{'Vault:':<16}{recovery.cipherdir}" + ("  (reverse mode)" if recovery.reverse else "")]
    lines.append(f"{'Master key:':<16}" + _key_status(recovery.detection))
    for setting in detect.iter_settings(recovery.detection):
        name = setting.name
        if name not in recovery.values:
            continue
        source = recovery.sources[name]
        how = "" if source == "found" else f" [{source}]"
        lines.append(f"{_LABELS[name] + ':':<16}{_shown(name, recovery.values[name])}{how}")
        if name != detect.NAMES or recovery.values[name] != detect.PLAIN or source == "found":
            lines.append(f"{'':<16}  {setting.evidence}")
    return lines


def _key_status(detection: detect.Detection) -> str:
    if detection.key_fits:
        return f"fits ({detection.key_evidence})"
    return f"cannot be checked: {detection.key_evidence}"


def feature_flags(recovery: Plan) -> tuple[tuple[str, ...], int]:
    """The feature flags and LongNameMax the config will carry (built with a throwaway key)."""
    conf = build_config(recovery, bytes(32), b"-", logn=10)
    return conf.feature_flags, conf.long_name_max


def report_json(recovery: Plan, *, written: Path | None, backup: Path | None) -> dict[str, Any]:
    flags, lnm = feature_flags(recovery)
    d = recovery.detection
    return {
        "cipherdir": str(recovery.cipherdir),
        "mode": "reverse" if recovery.reverse else "forward",
        "key_fits": d.key_fits,
        "key_evidence": d.key_evidence,
        "settings": {
            s.name: {
                "value": recovery.values.get(s.name),
                "source": recovery.sources.get(s.name),
                "evidence": s.evidence,
                "candidates": list(s.candidates),
            }
            for s in detect.iter_settings(d)
        },
        "feature_flags": list(flags),
        "long_name_max": lnm,
        "config": str(recovery.conf_path),
        "written": str(written) if written else None,
        "backup": str(backup) if backup else None,
    }


def in_session(session: Session, choices: Choices, *, dry_run: bool = False) -> int:
    """`recover` inside an unlocked session: the session's master key, a new password asked twice.

    The session then uses the written config and the settings found, which may differ from
    the ones it was opened with (a master key without a config opens with flags or defaults).
    """
    io = session.io
    key = session.master_key
    found = plan(session.cipherdir, key, choices, reverse=session.reverse is not None)
    for line in report_lines(found):
        io.write(line)
    if dry_run:
        io.write(f"Dry run: nothing written; {found.conf_path} would get these settings.")
        return 0
    password = io.ask_secret("New password: ")
    if io.ask_secret("Repeat: ") != password:
        raise ReadPasswordError("Passwords do not match")
    backup = write(found, build_config(found, key, password))
    conf = load_config(found.conf_path)
    if session.reverse is None:
        session.folder = Vault(session.cipherdir, key, found.options, conf)
    else:
        session.conf = conf
    session.config_path = None
    kept = f" The previous config is kept as {backup}." if backup else ""
    io.write(f"Wrote {found.conf_path}.{kept}")
    return 0
