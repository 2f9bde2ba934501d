"""The info panel: plain previews (text or hex), cipher x-rays (header, blocks, name parts), diagnoses."""

from __future__ import annotations

import io
import os
import stat as stat_mod
from collections.abc import Callable
from pathlib import Path

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from vaultsh.tui import palette
from vaultsh.tui.entries import CONF_BACKUP_NAME, ROLE_BAD, ROLE_CONF, ROLE_DIRIV, ROLE_SIDECAR, Entry
from vaultsh.tui.panes import human_size, short_time
from vaultsh.tui.safety import as_text
from vaultsh.vault.config import load_config, parse_config
from vaultsh.vault.conflicts import conflict_original
from vaultsh.vault.content import HEADER_LEN, ContentCodec
from vaultsh.vault.display import quote_name, safe_text
from vaultsh.vault.errors import VaultError
from vaultsh.vault.keys import FormatOptions
from vaultsh.vault.names import DIRIV_LEN, DIRIV_NAME, LONGNAME_PREFIX, b64_decode, why_unreadable
from vaultsh.vault.reverse import ReverseView
from vaultsh.vault.vault import Vault

PREVIEW_BYTES = 4096
HEX_PREVIEW_BYTES = 512
XRAY_BLOCKS = 4  # blocks listed one by one, as gocryptfs-xray prints them (§11.6)

_RMDIR_LEFTOVER = DIRIV_NAME + ".rmdir."


def _kv(table: Table, key: str, value: str | Text) -> None:
    # Values carry names, link targets and errors that embed them: never raw on the terminal,
    # and never markup (a str cell of a Rich table is read as markup: "[draft] x" lost "[draft]").
    text = as_text(value.plain, str(value.style)) if isinstance(value, Text) else as_text(value)
    table.add_row(as_text(key, "bold"), text)


def _table() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    return table


def _mode(mode: int) -> str:
    return f"{stat_mod.filemode(mode)} ({stat_mod.S_IMODE(mode):04o})"


def hex_lines(data: bytes, start: int = 0) -> list[str]:
    """A classic hex dump: offset, 16 bytes in hex, the printable ASCII ones (others as '.')."""
    lines = []
    for off in range(0, len(data), 16):
        chunk = data[off : off + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{start + off:08x}  {hexes:<47}  {text}")
    return lines


def _hex_dump(data: bytes) -> Text:
    return Text("\n".join(hex_lines(data)), style="dim" if not data else "")


def looks_like_text(data: bytes) -> str | None:
    """The data as text if it decodes as UTF-8 without control bytes (a cut last char is fine)."""
    if b"\0" in data:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(data) - 3:
            return None
        text = data[: e.start].decode("utf-8")
    if any(ord(c) < 32 and c not in "\t\n\r\f" for c in text):
        return None
    return text


# -- plain side ------------------------------------------------------------------------------


def describe_plain(vault: Vault, plain_path: str, cdir: Path, entry: Entry) -> RenderableType:
    """What the plain pane's selection is: facts, then a preview of its first bytes."""
    table = _table()
    cpath = cdir / entry.cipher_name
    _kv(table, "Path", quote_name("/" + plain_path))
    try:
        st = vault.stat_cipher(cpath, plain_path)
    except VaultError as e:
        _kv(table, "Error", Text(str(e), style=palette.style("error", bold=True)))
        return table
    kind = {"file": "file", "dir": "directory", "symlink": "symbolic link"}.get(st.kind, "special file")
    _kv(table, "Kind", kind)
    if st.kind == "file":
        human = f" ({human_size(st.size)})" if st.size >= 1000 else ""
        _kv(table, "Size", f"{st.size:,} bytes{human}, {st.cipher_size:,} on disk")
    _kv(table, "Modified", short_time(st.mtime_ns))
    _kv(table, "Mode", _mode(st.mode))
    _kv(table, "On disk", quote_name(entry.cipher_name) + (" (long name, §6.7)" if entry.long_name else ""))
    parts: list[RenderableType] = [table]
    if st.kind == "symlink":
        try:
            _kv(table, "Target", quote_name(vault.readlink_cipher(cpath, plain_path)))
        except VaultError as e:
            _kv(table, "Target", Text(str(e), style=palette.style("error")))
    elif st.kind == "file":
        parts.append(Text(""))
        parts.append(_preview(vault, cpath, plain_path))
    return Group(*parts)


def _preview(vault: Vault, cpath: Path, plain_path: str) -> RenderableType:
    try:
        with vault.open_cipher_file(cpath, plain_path) as f:
            data = f.read(0, PREVIEW_BYTES)
    except VaultError as e:
        return Text(safe_text(f"Cannot decrypt: {e}"), style=palette.style("error", bold=True))
    return _preview_data(data)


def _preview_data(data: bytes) -> RenderableType:
    if not data:
        return Text("(empty file)", style="dim")
    text = looks_like_text(data)
    if text is not None:
        # A text file may still hold C1 controls or bidi overrides: escaped, line by line.
        lines = text.replace("\r\n", "\n").expandtabs(4).split("\n")
        return Text("\n".join(map(safe_text, lines)), no_wrap=False)
    return Group(Text("binary, first bytes:", style="dim"), _hex_dump(data[:HEX_PREVIEW_BYTES]))


# -- cipher side -----------------------------------------------------------------------------


def describe_cipher(vault: Vault, cdir: Path, entry: Entry) -> RenderableType:
    """The x-ray of a name on disk: what gocryptfs stores there and how it is built."""
    if entry.role == ROLE_BAD:
        return diagnose_bad(vault, cdir, entry)
    table = _table()
    cpath = cdir / entry.cipher_name
    _kv(table, "On disk", quote_name(entry.cipher_name))
    parts: list[RenderableType] = [table]
    if entry.role == ROLE_DIRIV:
        _kv(table, "Role", "directory IV: the EME tweak for every name in this directory (§6.5)")
        _kv(table, "IV", _read_hex(vault, cpath, DIRIV_LEN + 1))
        return table
    if entry.role == ROLE_SIDECAR:
        _kv(table, "Role", "long-name sidecar: the full encrypted name of a hashed entry (§6.7)")
        _kv(table, "Names", entry.owner_name or "")
        try:
            full = vault.read_long_name(cdir, entry.owner_name or "")
            _kv(table, "Content", f"{len(full)} base64 characters")
        except VaultError as e:
            _kv(table, "Content", Text(str(e), style=palette.style("error")))
        return table
    if entry.role == ROLE_CONF:
        if entry.cipher_name == CONF_BACKUP_NAME:
            _kv(table, "Role", "the previous vault config, kept by a password change (§3)")
        else:
            _kv(table, "Role", "vault config: scrypt parameters, wrapped master key, feature flags (§3)")
        try:
            for line in load_config(cpath).info_lines():
                key, _, value = line.partition(":")
                _kv(table, key, value.strip())
        except VaultError as e:
            _kv(table, "Error", Text(str(e), style=palette.style("error")))
        return table
    _name_parts(vault, cdir, entry, table)
    if entry.kind == "file":
        parts.append(Text(""))
        parts.append(xray_file(vault, cpath))
    elif entry.kind == "dir" and vault.options.diriv:
        _kv(table, "Own IV", _read_hex(vault, cpath / DIRIV_NAME, DIRIV_LEN + 1) + "  (its gocryptfs.diriv)")
    elif entry.kind == "symlink":
        try:
            stored = vault.stored_link_target(cpath)
            _kv(table, "Target", f"{len(stored)} chars: AEAD-sealed target, base64 (§7.1)")
        except OSError as e:
            _kv(table, "Target", Text(e.strerror or str(e), style=palette.style("error")))
    return Group(*parts)


def _read_hex(vault: Vault, path: Path, limit: int) -> str:
    try:
        return vault.read_cipher_head(path, limit).hex() or "(empty)"
    except OSError as e:
        return f"unreadable: {why_unreadable(e)}"


def _name_parts(vault: Vault, cdir: Path, entry: Entry, table: Table) -> None:
    if vault.options.plaintext_names or not entry.long_name:
        full = entry.cipher_name
    else:
        try:
            full = vault.read_long_name(cdir, entry.cipher_name)
        except VaultError as e:
            _kv(table, "Long name", Text(str(e), style=palette.style("error")))
            return
    _name_rows(vault.options, entry, full, lambda: _read_hex(vault, cdir / DIRIV_NAME, DIRIV_LEN + 1), table)


def _name_rows(
    options: FormatOptions, entry: Entry, full: str, dir_iv: Callable[[], str], table: Table
) -> None:
    """How an encrypted name is built: long-name hash, base64, EME blocks, the dir IV (§6)."""
    if options.plaintext_names:
        _kv(table, "Name", "stored in the clear (plaintextnames vault)")
        return
    if entry.long_name:
        digest = entry.cipher_name[len(LONGNAME_PREFIX) :]
        _kv(table, "Long name", f"hash {digest} = B64(SHA-256(full name)); full name in {entry.sidecar_name}")
    encoding = "unpadded URL-safe base64" if options.raw64 else "padded URL-safe base64"
    try:
        raw_len = len(b64_decode(full, options.raw64))
        blocks = raw_len // 16
        _kv(
            table,
            "Name",
            f"{len(full)} chars of {encoding} → {raw_len} bytes ({blocks} EME block{'s' * (blocks != 1)})",
        )
    except ValueError:
        _kv(table, "Name", f"{len(full)} chars ({encoding})")
    _kv(table, "Plain", entry.plain_name or "")
    if options.diriv:
        _kv(table, "Dir IV", dir_iv())
    else:
        _kv(table, "Dir IV", "none: deterministic names use an all-zero IV (§6.6)")


def xray_file(vault: Vault, cpath: Path) -> RenderableType:
    """Header, block geometry and the first blocks of a cipher file, like gocryptfs-xray (§5.1, §11.6)."""
    codec = vault.content
    try:
        size = vault.lstat_cipher(cpath).st_size
        head = vault.read_cipher_head(cpath, HEADER_LEN + XRAY_BLOCKS * codec.cipher_block)
    except OSError as e:
        return Text(f"unreadable: {why_unreadable(e)}", style=palette.style("error"))
    return xray_content(codec, vault.options, size, head)


def xray_content(
    codec: ContentCodec, options: FormatOptions, size: int, head: bytes, where: str = "on disk"
) -> Table:
    """The x-ray table of a cipher file of `size` bytes whose first bytes are `head`."""
    table = _table()
    cipher_name = options.content_encryption
    if size == 0:
        _kv(table, "Content", "empty file: no header, no blocks (§5.1)")
        return table
    if size < HEADER_LEN:
        _kv(
            table,
            "Header",
            Text(f"incomplete: {size} bytes, want {HEADER_LEN}", style=palette.style("error")),
        )
        return table
    version = int.from_bytes(head[:2], "big")
    _kv(table, "Header", f"version {version}, file ID {head[2:HEADER_LEN].hex()}")
    plain = codec.cipher_to_plain_size(size)
    body = size - HEADER_LEN
    blocks = -(-body // codec.cipher_block)
    _kv(
        table,
        "Content",
        f"{cipher_name}, {blocks} block{'s' * (blocks != 1)} of ≤ 4096 + {codec.overhead} bytes",
    )
    _kv(
        table,
        "Overhead",
        f"{size - plain:,} bytes = {HEADER_LEN} header + {blocks} × {codec.overhead} (nonce + tag); "
        f"{size:,} {where} for {plain:,} plain",
    )
    nonce_len = codec.aead.nonce_size
    siv = options.aessiv
    for i in range(min(blocks, XRAY_BLOCKS)):
        start = HEADER_LEN + i * codec.cipher_block
        block = head[start : start + codec.cipher_block]
        if not block:
            break
        nonce = block[:nonce_len]
        tag = block[nonce_len : nonce_len + 16] if siv else block[-16:]
        _kv(table, f"Block {i}", f"IV {nonce.hex()}  tag {tag.hex()}  @{start} len {len(block)}")
    if blocks > XRAY_BLOCKS:
        _kv(table, "…", f"{blocks - XRAY_BLOCKS} more blocks")
    return table


def diagnose_bad(vault: Vault, cdir: Path, entry: Entry) -> RenderableType:
    """Why a name on disk is not a vault object, and what it probably is."""
    table = _table()
    _kv(table, "On disk", quote_name(entry.cipher_name))
    _kv(table, "Problem", Text(entry.error or "does not decrypt", style=palette.style("error", bold=True)))
    name = entry.cipher_name
    original = conflict_original(name)
    if original is not None:
        _kv(
            table,
            "Looks like",
            "a sync-conflict copy: a sync tool renamed it, so the name no longer decrypts",
        )
        try:
            plain = vault.decrypt_entry(cdir, original)
            _kv(table, "Copy of", Text(f"{plain}  (cipher name {original})", style="bold"))
            _kv(
                table,
                "Content",
                "still encrypted with this vault's key; rename it on disk to a free cipher name, or "
                "compare it with the original after export",
            )
        except VaultError:
            _kv(table, "Copy of", f"{original} (which does not decrypt either)")
    elif name.startswith(_RMDIR_LEFTOVER):
        _kv(table, "Looks like", "a leftover of an interrupted rmdir (§8.3); safe to delete")
    elif name.startswith(LONGNAME_PREFIX):
        _kv(table, "Looks like", "a long-name entry whose .name sidecar is missing or damaged (§6.7)")
    elif name.startswith("."):
        _kv(table, "Looks like", "a hidden file placed here by another program, not by the vault")
    else:
        _kv(
            table,
            "Looks like",
            "a stray file (not written through the vault), a name damaged on disk, or a name "
            "from a different vault or directory",
        )
    _kv(table, "Hidden", "gocryptfs hides this entry from the mounted view (§6.8); vaultsh shows it")
    if entry.kind == "file":
        _kv(table, "Size", f"{entry.cipher_size:,} bytes on disk")
    return table


# -- reverse mode: the plain files and their encrypted view (§9) -------------------------------


def describe_view_plain(view: ReverseView, plain_path: str, entry: Entry) -> RenderableType:
    """A plain file of a reverse-mode folder: facts, its name in the view, its first bytes."""
    table = _table()
    _kv(table, "Path", quote_name("/" + plain_path))
    try:
        st = view.lstat_plain(plain_path)
    except OSError as e:
        _kv(table, "Error", Text(e.strerror or str(e), style=palette.style("error", bold=True)))
        return table
    kind = {"file": "file", "dir": "directory", "symlink": "symbolic link"}.get(entry.kind, "special file")
    _kv(table, "Kind", kind)
    if stat_mod.S_ISREG(st.st_mode):
        human = f" ({human_size(st.st_size)})" if st.st_size >= 1000 else ""
        in_view = view.content.plain_to_cipher_size(st.st_size)
        _kv(table, "Size", f"{st.st_size:,} bytes{human}, {in_view:,} in the encrypted view")
    _kv(table, "Modified", short_time(st.st_mtime_ns))
    _kv(table, "Mode", _mode(st.st_mode))
    _kv(table, "In view", quote_name(entry.cipher_name) + (" (long name, §6.7)" if entry.long_name else ""))
    parts: list[RenderableType] = [table]
    if stat_mod.S_ISLNK(st.st_mode):
        try:
            _kv(table, "Target", quote_name(view.readlink_plain(plain_path)))
        except OSError as e:
            _kv(table, "Target", Text(e.strerror or str(e), style=palette.style("error")))
    elif stat_mod.S_ISREG(st.st_mode):
        parts.append(Text(""))
        try:
            fd = view.open_plain(plain_path)
            try:
                parts.append(_preview_data(os.pread(fd, PREVIEW_BYTES, 0)))
            finally:
                os.close(fd)
        except OSError as e:
            parts.append(
                Text(safe_text(f"Cannot read: {e.strerror or e}"), style=palette.style("error", bold=True))
            )
    return Group(*parts)


def describe_view_cipher(view: ReverseView, cipher_dir: str, entry: Entry) -> RenderableType:
    """The x-ray of an entry of the encrypted view, computed from the plain file (§9.2, §9.3)."""
    ve = entry.view_entry
    table = _table()
    _kv(table, "In view", quote_name(entry.cipher_name))
    if ve is None:
        return table
    if entry.role == ROLE_DIRIV:
        _kv(table, "Role", 'directory IV, derived: SHA-256(path ‖ 0 ‖ "DIRIV")[0:16] (§9.2); virtual file')
        _kv(table, "IV", (ve.data or b"").hex())
        return table
    if entry.role == ROLE_SIDECAR:
        _kv(table, "Role", "virtual long-name sidecar: the full encrypted name of a hashed entry (§6.7)")
        _kv(table, "Names", entry.owner_name or "")
        _kv(table, "Content", f"{len(ve.data or b'')} base64 characters")
        return table
    if entry.role == ROLE_CONF:
        _kv(table, "Role", "the folder's .gocryptfs.reverse.conf, shown as gocryptfs.conf (§9.3)")
        try:
            for line in parse_config(ve.data or b"").info_lines():
                key, _, value = line.partition(":")
                _kv(table, key, value.strip())
        except VaultError as e:
            _kv(table, "Error", Text(str(e), style=palette.style("error")))
        return table
    _, full = view.encrypt_name(cipher_dir, entry.plain_name or "")
    _name_rows(view.options, entry, full, lambda: view.dir_iv(cipher_dir).hex() + "  (derived, §9.2)", table)
    parts: list[RenderableType] = [table]
    try:
        if entry.kind == "file":
            size = view.cipher_size(ve)
            head = view.read(ve, 0, HEADER_LEN + XRAY_BLOCKS * view.content.cipher_block)
            _kv(table, "IVs", "file ID and block 0 nonce derived from the path: FILEID, BLOCK0IV (§9.2)")
            parts.append(Text(""))
            parts.append(xray_content(view.content, view.options, size, head, "in the view"))
        elif entry.kind == "dir" and view.options.diriv:
            _kv(table, "Own IV", view.dir_iv(ve.cipher_path).hex() + "  (its gocryptfs.diriv)")
        elif entry.kind == "symlink":
            stored = view.readlink(ve)
            _kv(table, "Target", f"{len(stored)} chars: AES-SIV-sealed target, base64 (§7.1, §9.2)")
    except OSError as e:
        _kv(table, "Error", Text(e.strerror or str(e), style=palette.style("error")))
    return Group(*parts)


class InfoPanel(VerticalScroll):
    """The scrolling panel under the panes showing the selection's preview or x-ray."""

    body: RenderableType = ""

    def compose(self) -> ComposeResult:
        yield Static(id="info-body")

    def show(self, title: str, body: RenderableType) -> None:
        self.border_title = as_text(title)  # a name is never read as markup
        self.body = body
        self.query_one("#info-body", Static).update(body)
        self.scroll_home(animate=False)

    def plain_text(self, width: int = 120) -> str:
        """What the panel shows, as text (for tests and for copying)."""
        console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
        console.print(self.body)
        return console.export_text()
