"""The `vaultsh` command line: offline subcommands over the vault core, gocryptfs exit codes."""

from __future__ import annotations

import argparse
import os
import stat as stat_mod
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from vaultsh import __version__
from vaultsh.service import transfer
from vaultsh.service.passwords import SecretSource, read_interactive, read_passfile, warn
from vaultsh.vault.config import CONF_NAME, DEFAULT_SCRYPT_LOGN, REVERSE_CONF_NAME, ConfFile, load_config
from vaultsh.vault.errors import (
    CipherDirError,
    ExitCode,
    InitError,
    MasterKeyError,
    UsageError,
    VaultError,
    WriteConfError,
)
from vaultsh.vault.keys import FormatOptions, format_master_key
from vaultsh.vault.vault import PlainStat, Vault

PROG = "vaultsh"


class _Parser(argparse.ArgumentParser):
    """argparse that exits with gocryptfs's usage code 1 instead of 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(ExitCode.USAGE)


def _add_secret_options(p: argparse.ArgumentParser, masterkey: bool = True) -> None:
    g = p.add_argument_group("password / master key")
    g.add_argument(
        "--passfile", action="append", default=[], metavar="FILE", help="read the password from FILE"
    )
    g.add_argument(
        "--extpass", action="append", default=[], metavar="CMD", help="run CMD, use its first line"
    )
    g.add_argument("--config", metavar="FILE", help="use FILE instead of CIPHERDIR/gocryptfs.conf")
    if masterkey:
        g.add_argument("--masterkey", metavar="KEY", help="unlock with the master key (KEY, or - for stdin)")
        g.add_argument("--masterkey-file", metavar="FILE", help="read the master key from FILE")


def _add_format_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("format (used with a master key when gocryptfs.conf is missing)")
    g.add_argument("--plaintextnames", action="store_true", help="do not encrypt file names")
    g.add_argument("--aessiv", action="store_true", help="AES-SIV content encryption")
    g.add_argument("--xchacha", action="store_true", help="XChaCha20-Poly1305 content encryption")
    g.add_argument(
        "--deterministic-names", action="store_true", help="no gocryptfs.diriv; same name, same cipher"
    )
    g.add_argument("--longnamemax", type=int, default=0, metavar="N", help="hash names longer than N")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="A terminal shell for gocryptfs vaults (offline commands; no FUSE needed).",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("init", help="create a new vault in an empty directory")
    _add_format_flags(p)
    p.add_argument("--scryptn", type=int, default=DEFAULT_SCRYPT_LOGN, metavar="N", help="scrypt cost 2^N")
    p.add_argument("--reverse", action="store_true", help="init a plain dir for reverse mode (AES-SIV)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the master key")
    _add_secret_options(p)
    p.add_argument("cipherdir")

    p = sub.add_parser("info", help="show the config summary (no password needed)")
    p.add_argument("--config", metavar="FILE")
    p.add_argument("cipherdir")

    p = sub.add_parser("masterkey", help="print the master key (needs the password)")
    _add_secret_options(p, masterkey=False)
    p.add_argument("cipherdir")

    p = sub.add_parser("passwd", help="change the password (keeps gocryptfs.conf.bak)")
    _add_secret_options(p)
    p.add_argument("--new-passfile", metavar="FILE", help="read the new password from FILE")
    p.add_argument("--scryptn", type=int, metavar="N", help="new scrypt cost 2^N (default: keep)")
    p.add_argument("cipherdir")

    p = sub.add_parser("ls", help="list plain names and sizes")
    p.add_argument("-l", dest="long", action="store_true", help="long format")
    p.add_argument("-R", dest="recursive", action="store_true", help="recurse into directories")
    p.add_argument("-a", "--all", action="store_true", help="also show undecryptable entries")
    p.add_argument("--cipher", action="store_true", help="show each entry's cipher name too")
    _add_secret_options(p)
    _add_format_flags(p)
    p.add_argument("cipherdir")
    p.add_argument("path", nargs="?", default="")

    p = sub.add_parser("cat", help="decrypt a file to stdout")
    _add_secret_options(p)
    _add_format_flags(p)
    p.add_argument("cipherdir")
    p.add_argument("path")

    p = sub.add_parser("export", help="decrypt a file or tree to DEST")
    _add_secret_options(p)
    _add_format_flags(p)
    p.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    p.add_argument("cipherdir")
    p.add_argument("path", help="plain path in the vault ('/' for everything)")
    p.add_argument("dest")

    p = sub.add_parser("import", help="encrypt a file or tree into the vault at PATH")
    _add_secret_options(p)
    _add_format_flags(p)
    p.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    p.add_argument("src")
    p.add_argument("cipherdir")
    p.add_argument("path", help="plain destination path in the vault")

    for name, what in (("decrypt-paths", "cipher path -> plain path"), ("encrypt-paths", "plain -> cipher")):
        p = sub.add_parser(name, help=what)
        _add_secret_options(p)
        _add_format_flags(p)
        p.add_argument("cipherdir")
        p.add_argument(
            "paths",
            nargs="*",
            metavar="PATH",
            help="paths (none: read them from stdin, one per line); put -- before names starting with -",
        )
    return parser


# -- helpers --------------------------------------------------------------------------------


def _secrets(args: argparse.Namespace) -> SecretSource:
    src = SecretSource(
        passfiles=args.passfile,
        extpass=args.extpass,
        masterkey=getattr(args, "masterkey", None),
        masterkey_file=getattr(args, "masterkey_file", None),
    )
    src.validate()
    return src


def _format_options(args: argparse.Namespace) -> FormatOptions | None:
    """Options from flags, only when any was given (they matter only without a config)."""
    given = args.plaintextnames or args.aessiv or args.xchacha or args.deterministic_names or args.longnamemax
    if not given:
        return None
    return FormatOptions(
        plaintext_names=args.plaintextnames,
        deterministic_names=args.deterministic_names,
        aessiv=args.aessiv,
        xchacha=args.xchacha,
        longname_max=args.longnamemax or 255,
    )


def _config_path(args: argparse.Namespace) -> Path:
    if getattr(args, "config", None):
        return Path(args.config)
    root = Path(args.cipherdir)
    forward = root / CONF_NAME
    reverse = root / REVERSE_CONF_NAME
    if not forward.exists() and reverse.exists():
        return reverse
    return forward


def _open_vault(args: argparse.Namespace) -> Vault:
    src = _secrets(args)
    root = Path(args.cipherdir)
    if not root.is_dir():
        raise CipherDirError(f"{root}: no such directory")
    conf_path = _config_path(args)
    if conf_path.name == REVERSE_CONF_NAME:
        raise UsageError(
            f"{root}: is a reverse-mode plain directory; its files are already plain "
            "(mount it with --reverse to see the encrypted view)"
        )
    if src.has_masterkey:
        return Vault.open(
            root, master_key=src.read_master_key(), options=_format_options(args), config_path=conf_path
        )
    conf = load_config(conf_path)  # fail on a bad config before asking for a password
    password = src.read_password()
    return Vault(root, conf.decrypt_master_key(password), conf.options, conf)


@contextmanager
def _progress(
    measure: Callable[[], int], label: str, enabled: bool
) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar on an interactive stderr for work above 8 MiB, else nothing.

    `measure` sizes the work; it only runs when a bar could be shown, since it walks the tree.
    """
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    total = measure()
    if total < 8 << 20:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _report(report: transfer.TransferReport, verb: str) -> int:
    for path, why in report.skipped:
        warn(f"skipped {path}: {why}")
    for path, why in report.failed:
        print(f"{PROG}: {verb} failed for {path}: {why}", file=sys.stderr)
    if report.failed:
        print(
            f"{PROG}: {len(report.failed)} entries failed, {report.files} files {verb}ed",
            file=sys.stderr,
        )
        return ExitCode.FSCK_ERRORS
    return 0


# -- commands -------------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    src = _secrets(args)
    root = Path(args.cipherdir)
    if not root.is_dir():
        raise CipherDirError(f"{root}: not a directory")
    key = src.read_master_key() if src.has_masterkey else None
    if src.passfiles or src.extpass:
        password = src.read_password()
    else:
        password = read_interactive("Choose a password for protecting your files.\nPassword: ", twice=True)
    conf, key = Vault.init(
        root,
        password,
        master_key=key,
        logn=args.scryptn,
        plaintext_names=args.plaintextnames,
        deterministic_names=args.deterministic_names,
        aessiv=args.aessiv,
        xchacha=args.xchacha,
        longname_max=args.longnamemax,
        reverse=args.reverse,
    )
    _print_master_key(key, quiet=args.quiet)
    if not args.quiet:
        where = "reverse-mode config" if args.reverse else "vault"
        print(f"The {where} has been created in {root} ({conf.options.content_encryption}).", file=sys.stderr)
    return 0


def _print_master_key(key: bytes, quiet: bool) -> None:
    """Print the key on stdout even when it is not a terminal (gocryptfs hides it there)."""
    grouped = format_master_key(key)
    if quiet or not sys.stdout.isatty():
        # One line, so scripts and front-ends can capture it; the advice goes to stderr.
        print(grouped)
        if not quiet:
            print(
                "This is the master key: keep it on paper in a safe place. It is the only way in "
                "if the password or gocryptfs.conf is lost.",
                file=sys.stderr,
            )
        return
    dim, reset = ("", "") if os.environ.get("NO_COLOR") else ("\033[2m", "\033[0m")
    half = len(grouped) // 2 + 1
    print("\nYour master key is:\n")
    print(f"    {dim}{grouped[:half]}{reset}")
    print(f"    {dim}{grouped[half:]}{reset}\n")
    print(
        "If the gocryptfs.conf file becomes corrupted or you forget your password, the master\n"
        "key is the only way to recover your files. Print it on paper and keep it in a safe\n"
        "place, away from the vault.\n"
    )


def cmd_info(args: argparse.Namespace) -> int:
    try:
        conf = load_config(_config_path(args))
    except VaultError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return ExitCode.LOAD_CONF
    for line in conf.info_lines():
        print(line)
    return 0


def cmd_masterkey(args: argparse.Namespace) -> int:
    src = _secrets(args)
    conf = load_config(_config_path(args))
    key = conf.decrypt_master_key(src.read_password())
    print(format_master_key(key))
    return 0


def cmd_passwd(args: argparse.Namespace) -> int:
    src = _secrets(args)
    conf_path = _config_path(args)
    conf = load_config(conf_path)
    if conf.fido2 is not None:
        raise UsageError(f"{conf_path}: passwd is not supported on FIDO2 vaults")
    if src.has_masterkey:
        key = src.read_master_key()
        # Prove the key belongs to this vault before re-wrapping it: a wrong key would
        # otherwise replace a working config with one that opens nothing.
        if conf_path.name != REVERSE_CONF_NAME:  # a reverse dir holds no ciphertext to try
            _check_key_fits(conf, key, Path(args.cipherdir))
    else:
        key = conf.decrypt_master_key(src.read_password("Old password: "))
    if args.new_passfile:
        new_password = read_passfile(args.new_passfile)
    else:
        new_password = read_interactive("New password: ", twice=True)
    new_conf = conf.with_password(key, new_password, args.scryptn)
    bak = conf_path.with_name(conf_path.name + ".bak")
    if src.has_masterkey:
        # Like gocryptfs: hard-link the old config to .bak first, never overwrite a .bak (§3.6).
        try:
            os.link(conf_path, bak)
        except FileExistsError:
            raise InitError(f"{bak}: already exists; move it away first") from None
        except OSError as e:
            raise WriteConfError(f"{bak}: cannot create backup: {e.strerror}") from None
    else:
        tmp_bak = bak.with_name(bak.name + ".tmp")
        try:
            tmp_bak.unlink(missing_ok=True)
            os.link(conf_path, tmp_bak)
            os.replace(tmp_bak, bak)
        except OSError as e:
            raise WriteConfError(f"{bak}: cannot create backup: {e.strerror}") from None
    new_conf.write(conf_path)
    print(f"Password changed. The previous config is kept as {bak}.", file=sys.stderr)
    return 0


def _check_key_fits(conf: ConfFile, key: bytes, root: Path) -> None:
    """Refuse a master key that decrypts nothing in the vault (when there is something to try)."""
    vault = Vault(root, key, conf.options, conf)
    if conf.options.plaintext_names:
        candidates = [p for p in root.iterdir() if p.is_file() and not p.name.startswith("gocryptfs.")]
        for p in candidates[:8]:
            rel = p.name
            try:
                vault.read_file(rel, 0, 1)
                return
            except VaultError:
                continue
        if candidates:
            raise MasterKeyError("the master key does not decrypt this vault's names or files")
        return
    entries = vault.listdir("", include_bad=True)
    if entries and all(e.error for e in entries):
        raise MasterKeyError("the master key does not decrypt this vault's names or files")


def _ls_line(vault: Vault, cpath: Path, name: str, st: PlainStat | None, cipher: str | None) -> str:
    """One `ls` line; with a stat it is the long format."""
    suffix = f"  [{cipher}]" if cipher else ""
    if st is None:
        return f"{name}{suffix}"
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(st.mtime_ns / 1e9))
    shown = name
    if stat_mod.S_ISLNK(st.mode):
        try:
            shown = f"{name} -> {vault.readlink_cipher(cpath, name)}"
        except VaultError as e:
            shown = f"{name} -> ?({e})"
    return f"{stat_mod.filemode(st.mode)} {st.nlink:>3} {st.size:>12} {when} {shown}{suffix}"


def cmd_ls(args: argparse.Namespace) -> int:
    vault = _open_vault(args)
    path = args.path.strip("/")
    cpath = vault.cipher_path(path)
    st = vault.stat_cipher(cpath, path or "/")
    if not stat_mod.S_ISDIR(st.mode):
        print(_ls_line(vault, cpath, path, st if args.long else None, None))
        return 0
    status = 0
    todo = [(path, cpath)]
    first = True
    while todo:
        d, cdir = todo.pop(0)
        try:
            listing = vault.list_cipher_dir(cdir, include_bad=args.all, where=d or "/")
        except VaultError as err:
            print(f"{PROG}: {d or '/'}: {err}", file=sys.stderr)
            status = ExitCode.FSCK_ERRORS
            continue
        lines = []
        if args.recursive:
            lines.append(f"{'' if first else chr(10)}{d or '/'}:")
        first = False
        subdirs = []
        for e in sorted(listing, key=lambda e: e.name):
            child = f"{d}/{e.name}" if d else e.name
            ccpath = cdir / e.cipher_name
            if e.error:
                lines.append(f"?{e.cipher_name}  (undecryptable: {e.error})")
                continue
            est = None
            if args.long:
                try:
                    est = vault.stat_cipher(ccpath, child)
                except VaultError as err:
                    print(f"{PROG}: {child}: {err}", file=sys.stderr)
                    continue
            lines.append(_ls_line(vault, ccpath, e.name, est, e.cipher_name if args.cipher else None))
            if e.is_dir:
                subdirs.append((child, ccpath))
        if lines:
            sys.stdout.write("\n".join(lines) + "\n")  # one write: listings can be 100,000 lines
        if args.recursive:
            todo[0:0] = subdirs
    return status


def cmd_cat(args: argparse.Namespace) -> int:
    vault = _open_vault(args)
    out = sys.stdout.buffer
    for chunk in vault.iter_file(args.path.strip("/")):
        out.write(chunk)
    out.flush()
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    vault = _open_vault(args)
    path = args.path.strip("/")
    measure = lambda: transfer.plain_tree_size(vault, path)  # noqa: E731
    with _progress(measure, "export", not args.no_progress) as progress:
        # A second process doubles AES throughput on big files; the CLI has nothing to fear
        # from fork (the progress bar's thread is not touched by the child).
        processes = min(2, os.cpu_count() or 1)
        report = transfer.export(vault, path, args.dest, progress=progress, processes=processes)
    return _report(report, "export")


def cmd_import(args: argparse.Namespace) -> int:
    vault = _open_vault(args)
    measure = lambda: transfer.source_size(Path(args.src))  # noqa: E731
    with _progress(measure, "import", not args.no_progress) as progress:
        report = transfer.import_(vault, args.src, args.path.strip("/"), progress=progress)
    return _report(report, "import")


def _paths_arg(args: argparse.Namespace) -> list[str]:
    """Paths from argv, or one per line from stdin (so cipher names starting with '-' work)."""
    if args.paths:
        return list(args.paths)
    # A password or key read from stdin took the first line; the paths are the rest.
    return [line.rstrip("\n") for line in sys.stdin if line.strip()]


def cmd_decrypt_paths(args: argparse.Namespace) -> int:
    vault = _open_vault(args)
    status = 0
    for p in _paths_arg(args):
        try:
            print(vault.decrypt_cipher_path(p))
        except VaultError as e:
            print(f"{PROG}: {p}: {e}", file=sys.stderr)
            status = ExitCode.USAGE
    return status


def cmd_encrypt_paths(args: argparse.Namespace) -> int:
    vault = _open_vault(args)
    status = 0
    for p in _paths_arg(args):
        try:
            print(vault.cipher_path(p).relative_to(vault.cipherdir).as_posix())
        except VaultError as e:
            print(f"{PROG}: {p}: {e}", file=sys.stderr)
            status = ExitCode.USAGE
    return status


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "init": cmd_init,
    "info": cmd_info,
    "masterkey": cmd_masterkey,
    "passwd": cmd_passwd,
    "ls": cmd_ls,
    "cat": cmd_cat,
    "export": cmd_export,
    "import": cmd_import,
    "decrypt-paths": cmd_decrypt_paths,
    "encrypt-paths": cmd_encrypt_paths,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return ExitCode.USAGE
    try:
        return COMMANDS[args.command](args)
    except VaultError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return int(e.exit_code)
    except transfer.Cancelled:
        print(f"{PROG}: cancelled", file=sys.stderr)
        return ExitCode.SIGINT
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return ExitCode.SIGINT
    except BrokenPipeError:
        # `vaultsh cat big | head`: the reader went away; not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        print(f"{PROG}: {where}{e.strerror or e}", file=sys.stderr)
        return ExitCode.OTHER
    except Exception as e:
        # A bug, not bad input: still one line, since a traceback could carry file contents
        # or key material from local state; VAULTSH_DEBUG=1 shows it for a bug report.
        if os.environ.get("VAULTSH_DEBUG"):
            raise
        hint = "VAULTSH_DEBUG=1 shows details"
        print(f"{PROG}: internal error ({type(e).__name__}: {e}); {hint}", file=sys.stderr)
        return ExitCode.OTHER
