"""Finding a vault's format settings by trial with its master key, for rebuilding a lost config."""

from __future__ import annotations

import contextlib
import os
import stat as stat_mod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from vaultsh.crypto.aead import AuthenticationError
from vaultsh.vault.config import CONF_NAME, REVERSE_CONF_NAME
from vaultsh.vault.content import BLOCK_SIZE, HEADER_LEN, ContentCodec, parse_header
from vaultsh.vault.dirfds import DirFds
from vaultsh.vault.errors import CorruptionError, UsageError
from vaultsh.vault.keys import LONGNAME_MAX_DEFAULT, FormatOptions, Keys
from vaultsh.vault.names import (
    DIRIV_LEN,
    DIRIV_NAME,
    LONGNAME_SUFFIX,
    MAX_NAME_FILE,
    NAME_MAX,
    ZERO_IV,
    NameCodec,
    b64_decode,
    b64_encode,
    is_long_name,
    is_name_file,
    looks_encrypted,
    read_regular,
)

# Bounds on the work: enough evidence to be sure, never a full scan of a huge vault.
MAX_DIRS = 256
MAX_NAMES = 2048
MAX_FILES = 256
MIN_LONGNAME_MAX = 62

CONTENT = "content"
NAMES = "names"
RAW64 = "raw64"
HKDF = "hkdf"
LONGNAME_MAX = "longnamemax"

GCM, SIV, XCHACHA = "AES-GCM-256", "AES-SIV-512", "XChaCha20-Poly1305"
PLAIN, DIRIV, DETERMINISTIC = "plain", "diriv", "deterministic"
_CIPHERS = (GCM, SIV, XCHACHA)
_SYMLINK_AD = bytes(8)  # block 0, no file ID (§7.1)


@dataclass
class Setting:
    """One format setting: the values the files allow (preferred first), and why."""

    name: str
    candidates: tuple[object, ...]
    evidence: str
    # Whether init's default may be taken without asking when the files cannot tell: true
    # for settings every gocryptfs 2.x vault shares, false where a wrong guess shows
    # garbage (content cipher, name mode).
    assumable: bool = False
    bounds: tuple[int, int] | None = None  # for longnamemax: every value in between fits

    def allows(self, value: object) -> bool:
        if self.bounds is not None and isinstance(value, int):
            return self.bounds[0] <= value <= self.bounds[1]
        return value in self.candidates

    @property
    def decided(self) -> bool:
        return len(self.candidates) == 1

    @property
    def value(self) -> object:
        return self.candidates[0]


@dataclass
class Detection:
    """What the files of a cipher dir say about its settings, and whether the key fits."""

    settings: dict[str, Setting]
    key_evidence: str
    key_fits: bool | None  # None: nothing in the folder can tell
    reverse: bool = False
    looks_plain: bool = False  # nothing here is shaped like a vault (a reverse-mode folder?)


# -- collecting evidence ---------------------------------------------------------------------


@dataclass
class _Dir:
    path: Path
    diriv: bytes | None
    names: list[str] = field(default_factory=list)  # full encrypted-name candidates
    long_full: dict[str, str] = field(default_factory=dict)  # hashed disk name -> .name content


@dataclass
class _Sample:
    dirs: list[_Dir] = field(default_factory=list)
    files: list[tuple[bytes, bytes]] = field(default_factory=list)  # (file ID, first block)
    links: list[str] = field(default_factory=list)  # stored symlink targets
    # Names no key can decrypt (.DS_Store, desktop.ini): they never vote against a key, but
    # beside content that opens they show a plaintextnames vault.
    strays: int = 0
    seen_names: int = 0  # entries looked at, for the bound MAX_NAMES


def _read_small(name: str, limit: int, dir_fd: int) -> bytes | None:
    """Up to `limit` bytes of a regular file; None for anything else (no symlink, no FIFO)."""
    try:
        return read_regular(name, limit, dir_fd=dir_fd)
    except OSError:
        return None


def _scan(root: Path) -> _Sample:
    """A bounded breadth-first sample of names, headers, first blocks and symlink targets.

    Every directory is opened relative to its parent's descriptor without following links,
    and everything in it is read relative to its own: a symlink planted in the folder (or a
    directory swapped for one meanwhile) never takes the scan outside it.
    """
    sample = _Sample()
    dirs = DirFds(root)
    try:
        queue = [root]
        while queue and len(sample.dirs) < MAX_DIRS and sample.seen_names < MAX_NAMES:
            d = queue.pop(0)
            try:
                dfd = dirs.open_dir(d)
            except OSError:
                continue
            try:
                _scan_dir(root, d, dfd, sample, queue)
            finally:
                os.close(dfd)
    finally:
        dirs.close()
    return sample


def _scan_dir(root: Path, d: Path, dfd: int, sample: _Sample, queue: list[Path]) -> None:
    """Sample one directory, open as `dfd`; its subdirectories are queued."""
    raw_iv = _read_small(DIRIV_NAME, DIRIV_LEN + 1, dfd)
    diriv = raw_iv if raw_iv is not None and len(raw_iv) == DIRIV_LEN and any(raw_iv) else None
    here = _Dir(d, diriv)
    sample.dirs.append(here)
    try:
        with os.scandir(dfd) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return
    for e in entries:
        name = e.name
        if (d == root and name in (CONF_NAME, REVERSE_CONF_NAME)) or name.startswith(CONF_NAME + "."):
            continue  # the config, its backups and temporary copies
        if name == DIRIV_NAME or is_name_file(name):
            continue
        try:
            mode = e.stat(follow_symlinks=False).st_mode
        except OSError:
            continue
        sample.seen_names += 1
        if sample.seen_names > MAX_NAMES:
            break
        if is_long_name(name):
            full = _read_small(name + LONGNAME_SUFFIX, MAX_NAME_FILE + 1, dfd)
            if full and len(full) <= MAX_NAME_FILE and full.isascii():
                here.long_full[name] = full.decode("ascii")
                here.names.append(full.decode("ascii"))
        elif looks_encrypted(name):
            here.names.append(name)
        else:
            sample.strays += 1
        if stat_mod.S_ISDIR(mode):
            queue.append(d / name)
        elif stat_mod.S_ISLNK(mode) and len(sample.links) < MAX_FILES:
            with contextlib.suppress(OSError):
                sample.links.append(os.readlink(name, dir_fd=dfd))
        elif stat_mod.S_ISREG(mode) and len(sample.files) < MAX_FILES:
            head = _read_small(name, HEADER_LEN + BLOCK_SIZE + 64, dfd)
            if head is None or len(head) <= HEADER_LEN:
                continue  # empty or header-only: nothing authenticated to try
            body = head[HEADER_LEN:]
            if not body[:16].strip(b"\0"):
                continue  # a hole (§5.3, all-zero nonce) reads as zeros under any cipher
            try:
                file_id = parse_header(head, name)
            except CorruptionError:
                file_id = b""  # not a vault file (or a damaged one): fails every cipher
            sample.files.append((file_id, body))


# -- trials ------------------------------------------------------------------------------------


def _options(cipher: str, hkdf: bool, names: str = DIRIV, raw64: bool = True) -> FormatOptions:
    return FormatOptions(
        plaintext_names=names == PLAIN,
        deterministic_names=names == DETERMINISTIC,
        raw64=raw64,
        hkdf=hkdf,
        aessiv=cipher == SIV,
        xchacha=cipher == XCHACHA,
    )


def _content_trials(key: bytes, sample: _Sample) -> dict[tuple[str, bool], tuple[int, int]]:
    """(cipher, hkdf) -> (first blocks that authenticate, symlink targets that do)."""
    out: dict[tuple[str, bool], tuple[int, int]] = {}
    for cipher in _CIPHERS:
        for hkdf in (True, False):
            if cipher == XCHACHA and not hkdf:
                continue
            codec = ContentCodec(Keys(key, _options(cipher, hkdf)).content)
            blocks = 0
            for file_id, body in sample.files:
                if not file_id:
                    continue
                try:
                    codec.decrypt_block(body[: codec.cipher_block], 0, file_id)
                except CorruptionError:
                    continue
                blocks += 1
            links = 0
            for stored in sample.links:
                for raw64 in (True, False):
                    try:
                        codec.aead.open(b64_decode(stored, raw64), _SYMLINK_AD)
                    except (ValueError, AuthenticationError):
                        continue
                    links += 1
                    break
            out[(cipher, hkdf)] = (blocks, links)
    return out


def _name_trials(key: bytes, sample: _Sample) -> dict[tuple[str, bool, bool], int]:
    """(diriv or deterministic, raw64, hkdf) -> names that decrypt (long names: hash checked too)."""
    out: dict[tuple[str, bool, bool], int] = {}
    for mode in (DIRIV, DETERMINISTIC):
        for raw64 in (True, False):
            for hkdf in (True, False):
                opts = _options(GCM, hkdf, mode, raw64)
                codec = NameCodec(Keys(key, opts).eme, opts)
                good = 0
                for d in sample.dirs:
                    iv = d.diriv if mode == DIRIV else ZERO_IV
                    if iv is None or not d.names:
                        continue
                    long_names = set(d.long_full.values())
                    hashed_ok = {full for h, full in d.long_full.items() if codec.hash_long(full) == h}
                    for name, res in zip(d.names, codec.decrypt_many(d.names, iv), strict=True):
                        if isinstance(res, bytes) and (name in hashed_ok or name not in long_names):
                            good += 1
                out[(mode, raw64, hkdf)] = good
    return out


def _encoded_lengths(raw64: bool) -> list[int]:
    """Every length an encrypted name can have on disk before hashing (§6.3, §6.4)."""
    lengths = []
    for blocks in range(1, (NAME_MAX + 16) // 16 + 1):
        lengths.append(len(b64_encode(bytes(16 * blocks), raw64)))
    return lengths


def _longname_setting(sample: _Sample, raw64: bool) -> Setting:
    """Which long-name thresholds (LongNameMax, §6.7) fit the names seen, hashed or not."""
    unhashed = [len(n) for d in sample.dirs for n in d.names if n not in d.long_full.values()]
    hashed = [len(full) for d in sample.dirs for full in d.long_full.values()]
    longest = max(unhashed, default=0)
    shortest_hashed = min(hashed, default=NAME_MAX + 1)
    lo, hi = max(longest, MIN_LONGNAME_MAX), min(shortest_hashed - 1, LONGNAME_MAX_DEFAULT)
    if lo > hi:
        return Setting(
            LONGNAME_MAX,
            (),
            f"no threshold fits: a {longest}-character name is stored whole, "
            f"a {shortest_hashed}-character one hashed",
        )
    # Thresholds between two possible name lengths behave the same: each class starts at
    # `lo` or at a length a name can have; the class holding gocryptfs's default is named by it.
    starts = [lo, *(n for n in _encoded_lengths(raw64) if lo < n <= hi)]
    if hi == LONGNAME_MAX_DEFAULT:
        starts = [LONGNAME_MAX_DEFAULT, *starts[:-1]]
    classes = starts
    seen = f"longest whole name {longest} characters" if unhashed else "no whole names"
    if hashed:
        seen += f", shortest hashed name {shortest_hashed}"
    if len(classes) == 1:
        why = f"names are hashed above {classes[0]} characters ({seen})"
    elif hi == LONGNAME_MAX_DEFAULT:
        why = f"no name long enough to tell ({seen}); gocryptfs's default {LONGNAME_MAX_DEFAULT} assumed"
    else:
        # A hashed name shorter than 256 characters shows a custom limit the names cannot pin.
        why = f"names are hashed above some length from {lo} to {hi} characters ({seen})"
        return Setting(LONGNAME_MAX, tuple(classes), why, bounds=(lo, hi))
    return Setting(LONGNAME_MAX, tuple(classes), why, assumable=True, bounds=(lo, hi))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def detect(cipherdir: Path, master_key: bytes) -> Detection:
    """Try the master key under every format gocryptfs 2.x can open; report what fits.

    Content blocks are authenticated, so one that opens proves both the key and the cipher.
    A wrong key passes the padding check of a name about 1 time in 256, so the name mode is
    the one under which most names decrypt, and must be a majority.
    """
    Keys(master_key, FormatOptions())  # refuses a key of the wrong length
    if not cipherdir.is_dir():
        raise UsageError(f"{cipherdir}: not a directory")
    sample = _scan(cipherdir)
    settings: dict[str, Setting] = {}
    total_blocks, total_links = len(sample.files), len(sample.links)
    content = _content_trials(master_key, sample)
    best_content = max(content.items(), key=lambda kv: kv[1])
    (cipher, c_hkdf), (blocks, links) = best_content
    content_proven = blocks + links > 0
    others = ", ".join(
        f"{c} {sum(v)}" for (c, h), v in content.items() if (c, h) != (cipher, c_hkdf) and h == c_hkdf
    )
    if content_proven:
        parts = []
        if total_blocks:
            parts.append(f"{blocks} of {total_blocks} first blocks authenticate")
        if total_links:
            parts.append(f"{links} of {total_links} symlink targets decrypt")
        settings[CONTENT] = Setting(CONTENT, (cipher,), f"{cipher}: {'; '.join(parts)} (others: {others})")
    elif total_blocks or total_links:
        settings[CONTENT] = Setting(
            CONTENT,
            _CIPHERS,
            f"none of {_plural(total_blocks, 'block')} and {_plural(total_links, 'symlink target')} "
            "authenticate under any cipher",
        )
    else:
        settings[CONTENT] = Setting(CONTENT, _CIPHERS, "no file content to try")

    root_has_diriv = sample.dirs[0].diriv is not None
    name_total = sum(len(d.names) for d in sample.dirs)
    trials = _name_trials(master_key, sample)
    (mode, raw64, n_hkdf), good = max(trials.items(), key=lambda kv: kv[1])
    names_proven = good > 0 and good * 2 > name_total
    if names_proven:
        label = "one IV per directory (gocryptfs.diriv)" if mode == DIRIV else "deterministic (no diriv)"
        settings[NAMES] = Setting(NAMES, (mode,), f"encrypted, {label}: {good} of {name_total} names decrypt")
        same_but_raw = trials.get((mode, not raw64, n_hkdf), 0)
        if same_but_raw >= good:
            settings[RAW64] = Setting(
                RAW64, (True, False), "names read the same padded or not; unpadded assumed", assumable=True
            )
        else:
            spelled = "unpadded base64 (Raw64)" if raw64 else "padded base64"
            settings[RAW64] = Setting(
                RAW64, (raw64,), f"{spelled}: {good} names decrypt, {same_but_raw} the other way"
            )
        settings[LONGNAME_MAX] = _longname_setting(sample, raw64)
    elif content_proven and not root_has_diriv:
        settings[NAMES] = Setting(
            NAMES,
            (PLAIN,),
            f"stored plain: {good} of {name_total + sample.strays} names decrypt, but file content does",
        )
    elif name_total == 0:
        if root_has_diriv:
            settings[NAMES] = Setting(
                NAMES, (DIRIV,), "encrypted, one IV per directory: the root has a diriv"
            )
        else:
            settings[NAMES] = Setting(
                NAMES, (DIRIV, PLAIN, DETERMINISTIC), "no names to try and no gocryptfs.diriv in the root"
            )
        settings[RAW64] = Setting(RAW64, (True, False), "no names to try; unpadded assumed", assumable=True)
        settings[LONGNAME_MAX] = _longname_setting(sample, True)
    else:
        settings[NAMES] = Setting(
            NAMES,
            (DIRIV, PLAIN, DETERMINISTIC),
            f"{good} of {name_total} names decrypt under any name mode",
        )
        settings[RAW64] = Setting(RAW64, (True, False), "no name decrypts; unpadded assumed", assumable=True)
        settings[LONGNAME_MAX] = _longname_setting(sample, True)

    hkdf_votes = set()
    if content_proven:
        hkdf_votes.add(c_hkdf)
    if names_proven:
        hkdf_votes.add(n_hkdf)
    if len(hkdf_votes) == 1:
        hkdf = hkdf_votes.pop()
        why = (
            "HKDF subkeys open the files"
            if hkdf
            else "the master key itself opens the files (no HKDF: a vault from before gocryptfs 1.3)"
        )
        settings[HKDF] = Setting(HKDF, (hkdf,), why)
    elif hkdf_votes:
        settings[HKDF] = Setting(HKDF, (), "content opens with one key derivation, names with the other")
    else:
        settings[HKDF] = Setting(HKDF, (True, False), "nothing to try; HKDF assumed", assumable=True)

    if content_proven:
        key_fits: bool | None = True
        key_evidence = f"{blocks + links} of {total_blocks + total_links} blocks and symlinks authenticate"
    elif names_proven:
        key_fits = True
        key_evidence = f"{good} of {name_total} names decrypt"
    elif total_blocks or total_links or name_total:
        key_fits = False
        tried = [
            f"0 of {_plural(total_blocks, 'block')}" if total_blocks else "",
            f"0 of {_plural(total_links, 'symlink target')}" if total_links else "",
            f"{good} of {_plural(name_total, 'name')}" if name_total else "",
        ]
        key_evidence = "nothing decrypts: " + ", ".join(t for t in tried if t)
    else:
        key_fits = None
        key_evidence = "the folder holds nothing encrypted to try the key on"
    # No file with a gocryptfs header and no diriv: more likely plain files than a vault.
    looks_plain = not root_has_diriv and not any(file_id for file_id, _body in sample.files)
    return Detection(settings, key_evidence, key_fits, looks_plain=looks_plain)


def detect_reverse(plaindir: Path, master_key: bytes) -> Detection:
    """A reverse-mode folder holds only plain files: nothing but the mode itself is known (§9.1)."""
    Keys(master_key, FormatOptions())
    if not plaindir.is_dir():
        raise UsageError(f"{plaindir}: not a directory")
    settings = {
        CONTENT: Setting(CONTENT, (SIV,), f"{SIV}: reverse mode always uses it"),
        NAMES: Setting(
            NAMES, (DIRIV, PLAIN, DETERMINISTIC), "a plain folder holds no encrypted names to try"
        ),
        RAW64: Setting(RAW64, (True, False), "nothing encrypted to try; unpadded assumed", assumable=True),
        HKDF: Setting(HKDF, (True, False), "nothing encrypted to try; HKDF assumed", assumable=True),
        LONGNAME_MAX: Setting(
            LONGNAME_MAX,
            (LONGNAME_MAX_DEFAULT, MIN_LONGNAME_MAX),
            f"nothing encrypted to try; gocryptfs's default {LONGNAME_MAX_DEFAULT} assumed",
            assumable=True,
            bounds=(MIN_LONGNAME_MAX, LONGNAME_MAX_DEFAULT),
        ),
    }
    return Detection(settings, "a plain folder holds nothing encrypted to try the key on", None, reverse=True)


def looks_like_cipherdir(path: Path, sample: int = 64) -> bool:
    """Whether a folder without a config looks like a vault's cipher dir (cheap, names only).

    A root diriv or a long-name file says so; otherwise most names must be base64 of whole
    16-byte blocks, as encrypted names are (§6.3). Plaintext-name vaults are not recognised.
    """
    names = []
    try:
        with os.scandir(path) as it:
            for entry in it:
                if entry.name == DIRIV_NAME or entry.name.startswith("gocryptfs.longname."):
                    return True
                names.append(entry.name)
                if len(names) >= sample:
                    break
    except OSError:
        return False
    shaped = 0
    for name in names:
        for raw64 in (True, False):
            try:
                decoded = b64_decode(name, raw64)
            except ValueError:
                continue
            if decoded and len(decoded) % 16 == 0:
                shaped += 1
                break
    return bool(names) and shaped * 2 > len(names)


def iter_settings(detection: Detection) -> Iterator[Setting]:
    order = (CONTENT, NAMES, RAW64, HKDF, LONGNAME_MAX)
    for name in order:
        if name in detection.settings:
            yield detection.settings[name]
