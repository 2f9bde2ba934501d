"""X-rays of names on the cipher side as facts: what is stored (or served) there, how it is built (§5-§9)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal, NamedTuple

from vaultsh.vault.cipher_entries import (
    CONF_BACKUP_NAME,
    ROLE_BAD,
    ROLE_CONF,
    ROLE_DIRIV,
    ROLE_SIDECAR,
    CipherEntry,
)
from vaultsh.vault.config import load_config
from vaultsh.vault.conflicts import conflict_original
from vaultsh.vault.content import HEADER_LEN, ContentCodec
from vaultsh.vault.display import quote_name
from vaultsh.vault.errors import VaultError
from vaultsh.vault.keys import FormatOptions
from vaultsh.vault.names import DIRIV_LEN, DIRIV_NAME, LONGNAME_PREFIX, b64_decode, why_unreadable
from vaultsh.vault.vault import Vault

XRAY_BLOCKS = 4  # blocks listed one by one, as gocryptfs-xray prints them (§11.6)

_RMDIR_LEFTOVER = DIRIV_NAME + ".rmdir."

# How a fact reads: plain, a problem, a serious problem, or a finding to stand out.
Tone = Literal["", "error", "alarm", "strong"]


class Fact(NamedTuple):
    """One line of an x-ray: a short key and what is found (names quoted as `quote_name` does)."""

    key: str
    value: str
    tone: Tone = ""


# An x-ray: groups of facts, shown with a blank line between them (the name, then the content).
XRay = list[list[Fact]]


# -- a vault: what is stored on disk ------------------------------------------------------------


def vault_xray(vault: Vault, cdir: Path, entry: CipherEntry) -> XRay:
    """The x-ray of a name in the cipher directory `cdir`: what gocryptfs stores there."""
    if entry.role == ROLE_BAD:
        return [diagnose_bad(vault, cdir, entry)]
    facts = [Fact("On disk", quote_name(entry.cipher_name))]
    cpath = cdir / entry.cipher_name
    if entry.role == ROLE_DIRIV:
        facts.append(Fact("Role", "directory IV: the EME tweak for every name in this directory (§6.5)"))
        facts.append(Fact("IV", _read_hex(vault, cpath, DIRIV_LEN + 1)))
        return [facts]
    if entry.role == ROLE_SIDECAR:
        facts.append(Fact("Role", "long-name sidecar: the full encrypted name of a hashed entry (§6.7)"))
        facts.append(Fact("Names", entry.owner_name or ""))
        try:
            full = vault.read_long_name(cdir, entry.owner_name or "")
            facts.append(Fact("Content", f"{len(full)} base64 characters"))
        except VaultError as e:
            facts.append(Fact("Content", str(e), "error"))
        return [facts]
    if entry.role == ROLE_CONF:
        if entry.cipher_name == CONF_BACKUP_NAME:
            facts.append(Fact("Role", "the previous vault config, kept by a password change (§3)"))
        else:
            facts.append(
                Fact("Role", "vault config: scrypt parameters, wrapped master key, feature flags (§3)")
            )
        try:
            facts += config_facts(load_config(cpath).info_lines())
        except VaultError as e:
            facts.append(Fact("Error", str(e), "error"))
        return [facts]
    _vault_name_facts(vault, cdir, entry, facts)
    if entry.kind == "file":
        return [facts, _vault_file_facts(vault, cpath)]
    if entry.kind == "dir" and vault.options.diriv:
        facts.append(
            Fact("Own IV", _read_hex(vault, cpath / DIRIV_NAME, DIRIV_LEN + 1) + "  (its gocryptfs.diriv)")
        )
    elif entry.kind == "symlink":
        try:
            stored = vault.stored_link_target(cpath)
            facts.append(Fact("Target", f"{len(stored)} chars: AEAD-sealed target, base64 (§7.1)"))
        except OSError as e:
            facts.append(Fact("Target", e.strerror or str(e), "error"))
    return [facts]


def config_facts(info_lines: list[str]) -> list[Fact]:
    out = []
    for line in info_lines:
        key, _, value = line.partition(":")
        out.append(Fact(key, value.strip()))
    return out


def _read_hex(vault: Vault, path: Path, limit: int) -> str:
    try:
        return vault.read_cipher_head(path, limit).hex() or "(empty)"
    except OSError as e:
        return f"unreadable: {why_unreadable(e)}"


def _vault_name_facts(vault: Vault, cdir: Path, entry: CipherEntry, facts: list[Fact]) -> None:
    if vault.options.plaintext_names or not entry.long_name:
        full = entry.cipher_name
    else:
        try:
            full = vault.read_long_name(cdir, entry.cipher_name)
        except VaultError as e:
            facts.append(Fact("Long name", str(e), "error"))
            return
    iv = lambda: _read_hex(vault, cdir / DIRIV_NAME, DIRIV_LEN + 1)  # noqa: E731
    facts += name_facts(vault.options, entry, full, iv)


def _vault_file_facts(vault: Vault, cpath: Path) -> list[Fact]:
    codec = vault.content
    try:
        size = vault.lstat_cipher(cpath).st_size
        head = vault.read_cipher_head(cpath, HEADER_LEN + XRAY_BLOCKS * codec.cipher_block)
    except OSError as e:
        return [Fact("Content", f"unreadable: {why_unreadable(e)}", "error")]
    return content_facts(codec, vault.options, size, head)


def diagnose_bad(vault: Vault, cdir: Path, entry: CipherEntry) -> list[Fact]:
    """Why a name on disk is not a vault object, and what it probably is."""
    facts = [
        Fact("On disk", quote_name(entry.cipher_name)),
        Fact("Problem", entry.error or "does not decrypt", "alarm"),
    ]
    name = entry.cipher_name
    original = conflict_original(name)
    if original is not None:
        facts.append(
            Fact("Looks like", "a sync-conflict copy: a sync tool renamed it, so the name no longer decrypts")
        )
        try:
            plain = vault.decrypt_entry(cdir, original)
            facts.append(Fact("Copy of", f"{quote_name(plain)}  (cipher name {original})", "strong"))
            facts.append(
                Fact(
                    "Content",
                    "still encrypted with this vault's key; rename it on disk to a free cipher name, "
                    "or compare it with the original after export",
                )
            )
        except VaultError:
            facts.append(Fact("Copy of", f"{original} (which does not decrypt either)"))
    elif name.startswith(_RMDIR_LEFTOVER):
        facts.append(Fact("Looks like", "a leftover of an interrupted rmdir (§8.3); safe to delete"))
    elif name.startswith(LONGNAME_PREFIX):
        facts.append(Fact("Looks like", "a long-name entry whose .name sidecar is missing or damaged (§6.7)"))
    elif name.startswith("."):
        facts.append(Fact("Looks like", "a hidden file placed here by another program, not by the vault"))
    else:
        facts.append(
            Fact(
                "Looks like",
                "a stray file (not written through the vault), a name damaged on disk, or a name "
                "from a different vault or directory",
            )
        )
    facts.append(Fact("Hidden", "gocryptfs hides this entry from the mounted view (§6.8); vaultsh shows it"))
    if entry.kind == "file":
        facts.append(Fact("Size", f"{entry.cipher_size:,} bytes on disk"))
    return facts


# -- both: how a name and a file's content are built ------------------------------------------


def name_facts(
    options: FormatOptions, entry: CipherEntry, full: str, dir_iv: Callable[[], str]
) -> list[Fact]:
    """How an encrypted name is built: long-name hash, base64, EME blocks, the dir IV (§6)."""
    if options.plaintext_names:
        return [Fact("Name", "stored in the clear (plaintextnames vault)")]
    facts = []
    if entry.long_name:
        digest = entry.cipher_name[len(LONGNAME_PREFIX) :]
        facts.append(
            Fact("Long name", f"hash {digest} = B64(SHA-256(full name)); full name in {entry.sidecar_name}")
        )
    encoding = "unpadded URL-safe base64" if options.raw64 else "padded URL-safe base64"
    try:
        raw_len = len(b64_decode(full, options.raw64))
        blocks = raw_len // 16
        facts.append(
            Fact(
                "Name",
                f"{len(full)} chars of {encoding} → {raw_len} bytes "
                f"({blocks} EME block{'s' * (blocks != 1)})",
            )
        )
    except ValueError:
        facts.append(Fact("Name", f"{len(full)} chars ({encoding})"))
    facts.append(Fact("Plain", quote_name(entry.plain_name or "")))
    if options.diriv:
        facts.append(Fact("Dir IV", dir_iv()))
    else:
        facts.append(Fact("Dir IV", "none: deterministic names use an all-zero IV (§6.6)"))
    return facts


def content_facts(
    codec: ContentCodec, options: FormatOptions, size: int, head: bytes, where: str = "on disk"
) -> list[Fact]:
    """Header, block geometry and the first blocks of a cipher file of `size` bytes whose
    first bytes are `head`, like gocryptfs-xray (§5.1, §11.6)."""
    if size == 0:
        return [Fact("Content", "empty file: no header, no blocks (§5.1)")]
    if size < HEADER_LEN:
        return [Fact("Header", f"incomplete: {size} bytes, want {HEADER_LEN}", "error")]
    version = int.from_bytes(head[:2], "big")
    facts = [Fact("Header", f"version {version}, file ID {head[2:HEADER_LEN].hex()}")]
    plain = codec.cipher_to_plain_size(size)
    blocks = -(-(size - HEADER_LEN) // codec.cipher_block)
    facts.append(
        Fact(
            "Content",
            f"{options.content_encryption}, {blocks} block{'s' * (blocks != 1)} "
            f"of ≤ 4096 + {codec.overhead} bytes",
        )
    )
    facts.append(
        Fact(
            "Overhead",
            f"{size - plain:,} bytes = {HEADER_LEN} header + {blocks} × {codec.overhead} (nonce + tag); "
            f"{size:,} {where} for {plain:,} plain",
        )
    )
    nonce_len = codec.aead.nonce_size
    for i in range(min(blocks, XRAY_BLOCKS)):
        start = HEADER_LEN + i * codec.cipher_block
        block = head[start : start + codec.cipher_block]
        if not block:
            break
        nonce = block[:nonce_len]
        tag = block[nonce_len : nonce_len + 16] if options.aessiv else block[-16:]
        facts.append(Fact(f"Block {i}", f"IV {nonce.hex()}  tag {tag.hex()}  @{start} len {len(block)}"))
    if blocks > XRAY_BLOCKS:
        facts.append(Fact("…", f"{blocks - XRAY_BLOCKS} more blocks"))
    return facts
