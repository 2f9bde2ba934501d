"""The `vaultsh` command line: subcommands, the shell and the TUI entry, gocryptfs exit codes."""

# Longer than 600 lines on purpose: the subcommands that need the terminal themselves (init,
# passwd, recover, mount, the shell and the TUI entry, fsck's progress bar) live here beside the
# one place that maps every error to gocryptfs's exit code; the commands that only print run
# through the shared registry (service/commands) and add one line each.

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from vaultsh import __version__
from vaultsh.service import registry, worker_start
from vaultsh.service.passwords import SecretSource, read_interactive, read_passfile
from vaultsh.service.worker_start import StartingWorker
from vaultsh.vault.display import fit_output, safe_text
from vaultsh.vault.errors import CipherDirError, ExitCode, UsageError, VaultError


def _lazy_module(name: str) -> types.ModuleType:
    """Module `name`, executed only when one of its attributes is first read.

    A module already imported is returned as it is: a second copy would have classes of its
    own, so an exception raised by one copy would not match `except` clauses naming the other.
    """
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module named {name!r}", name=name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:
    from vaultsh.service import commands, folders, transfer, vaults
    from vaultsh.service.commands import Session
    from vaultsh.vault.keys import FormatOptions
    from vaultsh.vault.vault import Vault
else:
    # Loaded on first use, so `vaultsh mount` (whose worker start-up the user waits for)
    # does not import the offline commands it never runs. For the same reason the config and
    # key modules (cryptography, hashlib) are imported in the functions that use them.
    commands = _lazy_module("vaultsh.service.commands")
    folders = _lazy_module("vaultsh.service.folders")
    transfer = _lazy_module("vaultsh.service.transfer")
    vaults = _lazy_module("vaultsh.service.vaults")

PROG = "vaultsh"


class _Parser(argparse.ArgumentParser):
    """argparse that exits with gocryptfs's usage code 1 instead of 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {safe_text(message)}", file=sys.stderr)
        raise SystemExit(ExitCode.USAGE)


def _add_secret_options(p: argparse.ArgumentParser, masterkey: bool = True) -> None:
    g = p.add_argument_group("password / master key")
    registry.add_arguments(g, registry.PASSWORD_ARGS)
    if masterkey:
        registry.add_arguments(g, registry.MASTERKEY_ARGS)


def _add_format_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("format (used with a master key when gocryptfs.conf is missing)")
    registry.add_arguments(g, registry.FORMAT_ARGS)


def _add_command(sub: Any, cmd: registry.Command) -> None:
    """A subcommand's parser, all from the command's declaration in the registry."""
    p = sub.add_parser(
        cmd.cli_name, aliases=list(cmd.cli_names[1:]), help=cmd.summary, usage=f"{PROG} {cmd.cli_usage()}"
    )
    registry.add_arguments(p, (*cmd.options, *(a for a in cmd.cli_args if not a.positional)))
    if cmd.cli_vault in ("open", "keys", "password"):
        _add_secret_options(p, masterkey=cmd.cli_vault != "password")
    elif cmd.cli_vault == "config":
        registry.CONFIG_ARG.add_to(p)
    if cmd.cli_vault == "open":
        _add_format_flags(p)
    places = [*cmd.positionals, *(a for a in cmd.cli_args if a.positional)]
    if cmd.cli_vault:
        places.insert(cmd.cipherdir_at, registry.positional("cipherdir", "CIPHERDIR"))
    registry.add_arguments(p, places)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or with `only` just the subcommand of that name (all one
    command line needs: the tables of every subcommand cost `vaultsh mount` ~10 ms)."""
    parser = _Parser(
        prog=PROG,
        description="A terminal shell for gocryptfs vaults. `vaultsh CIPHERDIR` opens the full-screen "
        "interface; the subcommands below work without it.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:  # in the order `vaultsh --help` lists them; aliases come with theirs
        cmd = _DECLARED.get(name)
        if cmd is not None and (only is None or only in (cmd.cli_names or (cmd.cli_name,))):
            _add_command(sub, cmd)
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
    from vaultsh.vault.keys import FormatOptions

    return FormatOptions(
        plaintext_names=args.plaintextnames,
        deterministic_names=args.deterministic_names,
        aessiv=args.aessiv,
        xchacha=args.xchacha,
        longname_max=args.longnamemax or 255,
    )


def _given_config(args: argparse.Namespace) -> Path | None:
    return Path(args.config) if getattr(args, "config", None) else None


def _config_path(args: argparse.Namespace) -> Path:
    return folders.config_path_of(Path(args.cipherdir), _given_config(args))


def _open(args: argparse.Namespace, io: commands.SessionIO) -> Session:
    """A session on CIPHERDIR (a vault, a reverse-mode folder, or a vault without its config)."""
    src = _secrets(args)
    return folders.open_folder(
        Path(args.cipherdir),
        io,
        password=src.read_password,
        master_key=src.read_master_key if src.has_masterkey else None,
        options=_format_options(args) if src.has_masterkey else None,
        config=_given_config(args),
    )


# -- commands -------------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    # A given master key is wrapped under a password from --passfile/--extpass: unlike the
    # other commands, init takes both at once.
    src = SecretSource(passfiles=args.passfile, extpass=args.extpass)
    src.validate()
    key_src = SecretSource(masterkey=args.masterkey, masterkey_file=args.masterkey_file)
    key_src.validate()
    root = Path(args.cipherdir)
    if not root.is_dir():
        # gocryptfs too wants the directory made first (and exits 6 without it)
        if root.exists() or root.is_symlink():
            raise CipherDirError(f"{root}: not a directory")
        raise CipherDirError(f"{root}: no such directory (make it first: mkdir {root})")
    key = key_src.read_master_key() if key_src.has_masterkey else None
    if src.passfiles or src.extpass:
        password = src.read_password()
    else:
        password = read_interactive("Choose a password for protecting your files.\nPassword: ", twice=True)
    created = vaults.create_vault(
        root,
        password,
        vaults.InitOptions(
            plaintext_names=args.plaintextnames,
            deterministic_names=args.deterministic_names,
            aessiv=args.aessiv,
            xchacha=args.xchacha,
            longname_max=args.longnamemax,
            reverse=args.reverse,
            logn=args.scryptn,
        ),
        master_key=key,
    )
    conf, key = created.conf, created.master_key
    _print_master_key(key, quiet=args.quiet)
    if not args.quiet:
        where = "reverse-mode config" if args.reverse else "vault"
        created_in = safe_text(str(root))
        print(
            f"The {where} has been created in {created_in} ({conf.options.content_encryption}).",
            file=sys.stderr,
        )
    return 0


def _print_master_key(key: bytes, quiet: bool) -> None:
    """Print the key on stdout even when it is not a terminal (gocryptfs hides it there)."""
    from vaultsh.vault.keys import format_master_key

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


class _StdIO:
    """The terminal as a SessionIO: stdout for output, stderr for errors and the progress bar.

    Output and errors are made terminal-safe (names are untrusted); with `null`, output is
    the exact bytes of each line, each ended by a NUL, for scripts.
    """

    def __init__(self, show_bar: bool, label: str, *, null: bool = False) -> None:
        self._show_bar = show_bar
        self.label = label
        self._null = null
        self._bar: Any = None
        self._task: Any = None

    def write(self, text: str) -> None:
        if self._null:
            sys.stdout.flush()
            sys.stdout.buffer.write(os.fsencode(text) + b"\0")
            return
        sys.stdout.write(safe_text(text))
        sys.stdout.write("\n")

    def write_bytes(self, data: bytes | memoryview) -> None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)

    def error(self, text: str) -> None:
        print(f"{PROG}: {safe_text(text)}", file=sys.stderr)

    def ask_secret(self, prompt: str) -> bytes:
        return read_interactive(prompt)

    def confirm(self, question: str) -> bool:
        """The one-shot CLI never asks: a script gets the safe answer, and --force says yes."""
        return False

    def progress(self, done: int, total: int) -> None:
        """A rich progress bar on an interactive stderr, for work above 8 MiB only."""
        if self._bar is None:
            if not self._show_bar or total < 8 << 20:
                return
            self._start_bar(total)
        self._bar.update(self._task, completed=done)

    def _start_bar(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(self.label, total=total)

    def cancelled(self) -> bool:
        return False  # Ctrl-C raises KeyboardInterrupt, which main turns into exit 15

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        sys.stdout.flush()


@contextmanager
def _session(args: argparse.Namespace, label: str = "") -> Iterator[Session]:
    """A command session on the terminal, over a vault or a reverse-mode folder's view; the
    progress total is measured only when a bar can show."""
    show_bar = not getattr(args, "no_progress", True) and sys.stderr.isatty()
    io = _StdIO(show_bar, label, null=getattr(args, "null", False))
    session = _open(args, io)
    session.show_progress, session.quiet = show_bar, True
    try:
        yield session
    finally:
        io.close()


def cmd_info(args: argparse.Namespace) -> int:
    try:
        lines = commands.config_info(_config_path(args))
    except VaultError as e:
        print(f"{PROG}: {safe_text(str(e))}", file=sys.stderr)
        return ExitCode.LOAD_CONF
    for line in lines:
        print(safe_text(line))
    return 0


def cmd_masterkey(args: argparse.Namespace) -> int:
    from vaultsh.vault.config import load_config

    src = _secrets(args)
    conf = load_config(_config_path(args))  # fail on a bad config before asking for a password
    print(commands.reveal_master_key(conf, src.read_password()))
    return 0


def cmd_passwd(args: argparse.Namespace) -> int:
    src = _secrets(args)

    def new_password() -> bytes:
        if args.new_passfile:
            return read_passfile(args.new_passfile)
        return read_interactive("New password: ", twice=True)

    bak, _conf = commands.change_password(
        _config_path(args),
        Path(args.cipherdir),
        new_password,
        old_password=None if src.has_masterkey else lambda: src.read_password("Old password: "),
        master_key=src.read_master_key if src.has_masterkey else None,
        logn=args.scryptn,
    )
    print(f"Password changed. The previous config is kept as {safe_text(str(bak))}.", file=sys.stderr)
    return 0


def cmd_recover(args: argparse.Namespace) -> int:
    import json

    from vaultsh.service import recover
    from vaultsh.service.passwords import run_extpass
    from vaultsh.vault.config import ScryptParams
    from vaultsh.vault.keys import parse_master_key

    src = SecretSource(masterkey=args.masterkey, masterkey_file=args.masterkey_file)
    src.validate()
    ScryptParams.new(args.scryptn)  # an impossible --scryptn fails before any secret is read
    root = Path(args.cipherdir)
    if not root.is_dir():
        raise CipherDirError(f"{root}: no such directory")
    if src.has_masterkey:
        key = src.read_master_key()
    else:
        key = parse_master_key(read_interactive("Master key: ").decode("ascii", "replace"))
    choices = recover.Choices.from_args(args)
    view = Path(args.view) if args.view else None
    found = recover.plan(root, key, choices, reverse=args.reverse, view=view)
    written = backup = None
    if not args.json:
        for line in recover.report_lines(found):
            print(line)
    if not args.dry_run:
        if args.new_passfile:
            password = read_passfile(args.new_passfile)
        elif args.new_extpass:
            password = run_extpass([args.new_extpass])
        else:
            password = read_interactive("New password: ", twice=True)
        conf = recover.build_config(found, key, password, args.scryptn)
        backup = recover.write(found, conf)
        written = found.conf_path
    if args.json:
        print(json.dumps(recover.report_json(found, written=written, backup=backup), indent=2))
    elif written is None:
        print(f"Dry run: nothing written; {found.conf_path} would get these settings.")
    else:
        kept = f" The previous config is kept as {backup}." if backup else ""
        print(f"Wrote {written}.{kept}", file=sys.stderr)
    return 0


def _run_shared(args: argparse.Namespace, *, label: str = "", processes: int = 1) -> int:
    """A command the shell has too: its handler (the same code the shell runs) on a session."""
    cmd = _DECLARED[args.command]
    with _session(args, label) as s:
        refused = registry.why_not_here(cmd, s.tree)
        if refused is not None:  # needs what the folder lacks (a reverse-mode folder's)
            raise UsageError(f"{cmd.name}: {refused}")
        s.processes = processes
        return commands.handler_of(cmd)(s, args)


def cmd_export(args: argparse.Namespace) -> int:
    # A second process doubles AES throughput on big files; the CLI has nothing to fear from
    # fork (the progress bar's thread is not touched by the child).
    return _run_shared(args, label="export", processes=min(2, os.cpu_count() or 1))


def cmd_import(args: argparse.Namespace) -> int:
    return _run_shared(args, label="import")


def _paths_arg(args: argparse.Namespace) -> list[str]:
    """Paths from argv, or one per line from stdin (so cipher names starting with '-' work).

    With --null, stdin holds NUL-ended paths, taken as exact bytes (os.fsdecode).
    """
    if args.paths:
        return list(args.paths)
    # A password or key read from stdin took the first line; the paths are the rest.
    if args.null:
        return [os.fsdecode(p) for p in sys.stdin.buffer.read().split(b"\0") if p]
    return [line.rstrip("\n") for line in sys.stdin if line.strip()]


def cmd_decrypt_paths(args: argparse.Namespace) -> int:
    with _session(args) as s:
        return commands.decrypt_paths(s, _paths_arg(args), exact=args.null)


def cmd_encrypt_paths(args: argparse.Namespace) -> int:
    with _session(args) as s:
        return commands.encrypt_paths(s, _paths_arg(args), exact=args.null)


def cmd_mount(args: argparse.Namespace, worker: StartingWorker | None = None) -> int:
    """`vaultsh mount`; `worker` is the one started before the command line was parsed."""
    from vaultsh.service import mounts

    idle = mounts.parse_duration(args.idle) if args.idle is not None else None  # before any prompt
    src = _secrets(args)
    root = Path(args.cipherdir)
    if not root.is_dir():
        raise CipherDirError(f"{root}: no such directory")
    read_key = folders.mount_key(
        root,
        reverse=args.reverse,
        password=src.read_password,
        master_key=src.read_master_key if src.has_masterkey else None,
        options=_format_options(args),
        config=_given_config(args),
    )
    request = mounts.MountRequest(
        source=root.absolute(),
        mountpoint=Path(args.mountpoint).absolute(),
        reverse=args.reverse,
        read_only=args.ro,
        idle=idle,
        excludes=tuple(args.exclude),
        exclude_from=tuple(Path(f) for f in args.exclude_from),
        allow_other=args.allow_other,
        noprealloc=args.noprealloc,
        config=Path(args.config) if args.config else None,
        options=_format_options(args) if src.has_masterkey else None,
        key_proven=not src.has_masterkey,
    )
    # A password goes to the worker, which reads the config, asks for the password and
    # unwraps the key itself: scrypt runs there, and this process never loads the cipher
    # modules. Either secret is read once the worker is starting, so its start-up overlaps
    # the prompt. As gocryptfs: the ready line comes once the filesystem answers, also in
    # --fg mode.
    mounts.mount(
        request,
        read_key if src.has_masterkey else mounts.Password(src.read_password, at_once=bool(src.passfiles)),
        foreground=args.fg,
        on_ready=lambda _info: print("Filesystem mounted and ready.", flush=True),
        worker=worker,
    )
    return 0


def cmd_unmount(args: argparse.Namespace) -> int:
    from vaultsh.service import mounts

    if args.mountpoint is None:
        raise UsageError("unmount: name the mountpoint")
    mounts.unmount(Path(args.mountpoint).absolute())
    return 0


def cmd_mounts(args: argparse.Namespace) -> int:
    for line in commands.mounts_lines():
        print(safe_text(line))
    return 0


def cmd_shell(args: argparse.Namespace) -> int:
    from vaultsh.shell.repl import run_shell

    session = _open(args, _StdIO(False, ""))

    def on_terminal(io: commands.SessionIO) -> Session:
        session.io = io
        return session

    return run_shell(on_terminal)


def cmd_new(args: argparse.Namespace) -> int:
    from vaultsh.tui.wizard import run_new

    return int(run_new(Path(args.directory), args.theme))


@dataclass
class _GivenPassword(SecretSource):
    """A password already known (the demo vault's), offered like one typed in."""

    password: bytes = field(default=b"", repr=False)

    def read_password(self, prompt: str = "Password: ", twice: bool = False) -> bytes:
        return self.password


def cmd_demo(args: argparse.Namespace) -> int:
    from vaultsh.service.demo import make_demo_vault
    from vaultsh.tui.app import demo_greeting, run_tui

    path, password = make_demo_vault(Path(args.dir) if args.dir else None)
    # A demo password guards nothing; showing it lets people try unlocking by hand.
    print(f"Demo vault: {path}")
    print(f"Password:   {password}")
    secrets = _GivenPassword(password=password.encode())
    return int(run_tui(path, secrets, args.theme, greeting=demo_greeting(path, password)))


def cmd_tui(args: argparse.Namespace) -> int:
    root = Path(args.cipherdir)
    if not root.is_dir():
        raise CipherDirError(f"{root}: no such directory")
    from vaultsh.tui.app import run_tui

    return int(run_tui(Path(args.cipherdir), _secrets(args), args.theme))


# The CLI's commands by the name it spells them with (registry.Command.cli_name).
_DECLARED = {c.cli_name: c for c in registry.for_front(registry.CLI).values()}

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "init": cmd_init,
    "info": cmd_info,
    "masterkey": cmd_masterkey,
    "passwd": cmd_passwd,
    "recover": cmd_recover,
    "ls": _run_shared,
    "cat": _run_shared,
    "export": cmd_export,
    "import": cmd_import,
    "mkdir": _run_shared,
    "mv": _run_shared,
    "rm": _run_shared,
    "decrypt-paths": cmd_decrypt_paths,
    "encrypt-paths": cmd_encrypt_paths,
    "mount": cmd_mount,
    "unmount": cmd_unmount,
    "umount": cmd_unmount,
    "mounts": cmd_mounts,
    "shell": cmd_shell,
    "new": cmd_new,
    "demo": cmd_demo,
}

# -- integrity: fsck and sync-conflict copies ------------------------------------------------


class _FsckBar:
    """Objects checked out of the counted total, with an ETA, on an interactive stderr."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._bar.add_task("fsck", total=total)
        self._bar.start()
        self._next = 0

    def __call__(self, counts: Any) -> None:
        done = counts.objects
        if done >= self._next:  # rich's update is not free; a 10,000-file vault needs ~100
            self._bar.update(self._task, completed=done)
            self._next = done + 64

    def close(self) -> None:
        self._bar.stop()


def _open_vault(args: argparse.Namespace, command: str) -> Vault:
    """The vault in CIPHERDIR, for a command that examines its cipher files."""
    from vaultsh.service.commands.checks import cipher_files

    return cipher_files(_open(args, _StdIO(False, "")), command)


def cmd_fsck(args: argparse.Namespace) -> int:
    from vaultsh.service import integrity
    from vaultsh.vault import fsck

    vault = _open_vault(args, "fsck")
    quarantine = Path(args.quarantine) if args.quarantine else None
    bar = None
    if not args.no_progress and sys.stderr.isatty():
        bar = _FsckBar(fsck.measure(vault, args.path).objects)

    def note(text: str) -> None:
        if bar is not None:
            bar.close()  # the walk is over; the summary goes below the findings, not the bar
        print(text, file=sys.stderr)

    try:
        return integrity.report_fsck(
            vault,
            args.path,
            print,
            note,
            as_json=args.json,
            quarantine=quarantine,
            force_decode=args.force_decode,
            progress=bar,
        )
    finally:
        if bar is not None:
            bar.close()


def cmd_conflicts(args: argparse.Namespace) -> int:
    from vaultsh.service import integrity

    return integrity.report_conflicts(
        _open_vault(args, "conflicts"),
        args.path,
        print,
        lambda text: print(f"{PROG}: {text}", file=sys.stderr),
        adopt_all=args.adopt,
        export_to=Path(args.export) if args.export else None,
    )


COMMANDS.update({"fsck": cmd_fsck, "conflicts": cmd_conflicts})


def _first_positional(argv: Sequence[str]) -> str | None:
    """The first word that is no option, skipping the values of the TUI form's options (the
    top level has none), so `vaultsh --passfile pw DIR` still finds DIR."""
    takes_value = {s for a in build_tui_parser()._actions if a.nargs != 0 for s in a.option_strings}
    it = iter(argv)
    for arg in it:
        if arg == "--":
            return next(it, None)
        if arg in takes_value:
            next(it, None)
        elif not arg.startswith("-") or arg == "-":
            return arg
    return None


def _wants_tui(argv: Sequence[str]) -> bool:
    """`vaultsh DIR ...`: a directory (or a path, to report it missing) where a subcommand would be."""
    first = _first_positional(argv)
    return first is not None and first not in COMMANDS and (os.path.isdir(first) or "/" in first)


def build_tui_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        usage=f"{PROG} [--theme NAME] [password options] CIPHERDIR",
        description="Open the vault in CIPHERDIR in the full-screen interface.",
    )
    registry.THEME_ARG.add_to(p)
    _add_secret_options(p)
    p.add_argument("cipherdir")
    return p


def _run_guarded(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command; every failure becomes one line on stderr and a gocryptfs exit code."""
    try:
        return command(args)
    except VaultError as e:
        print(f"{PROG}: {safe_text(str(e))}", file=sys.stderr)
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
        print(f"{PROG}: {safe_text(where)}{e.strerror or e}", file=sys.stderr)
        return ExitCode.OTHER
    except Exception as e:
        # A bug, not bad input: still one line, since a traceback could carry file contents
        # or key material from local state; VAULTSH_DEBUG=1 shows it for a bug report.
        if os.environ.get("VAULTSH_DEBUG"):
            raise
        hint = "VAULTSH_DEBUG=1 shows details"
        print(f"{PROG}: internal error ({type(e).__name__}: {safe_text(str(e))}); {hint}", file=sys.stderr)
        return ExitCode.OTHER


_PATH_COMMANDS = frozenset(
    name
    for c in registry.for_front(registry.CLI).values()
    if c.dashed_paths
    for name in (c.cli_names or (c.name,))
)


def _parse_path_command(parser: argparse.ArgumentParser, arglist: list[str]) -> argparse.Namespace:
    """Parse decrypt-paths/encrypt-paths, where a cipher name may start with '-' (it is in the
    base64 alphabet): a word that is not one of the command's own options is a path, kept in
    the order given, even when argparse would read it as short options (`-h...`, `-0...`).
    Before CIPHERDIR, such a word stays an (unknown) option, for argparse to refuse."""
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    options = subcommands.choices[arglist[0]]._option_string_actions
    words = [arglist[0]]
    dashed: dict[str, str] = {}  # stand-in (NUL never occurs in argv) -> the path
    after_cipherdir = False
    it = iter(arglist[1:])
    for word in it:
        if word == "--":
            words += [word, *it]
            break
        action = options.get(word.split("=", 1)[0])
        if action is not None:
            words.append(word)
            if action.nargs != 0 and "=" not in word:
                words += [v for v in (next(it, None),) if v is not None]  # the option's value
        elif word.startswith("-") and word != "-" and after_cipherdir:
            stand_in = f"\0{len(dashed)}"
            dashed[stand_in] = word
            words.append(stand_in)
        else:
            after_cipherdir = after_cipherdir or not word.startswith("-") or word == "-"
            words.append(word)
    args = parser.parse_args(words)
    args.paths = [dashed.get(p, p) for p in args.paths]
    return args


def main(argv: Sequence[str] | None = None, *, worker: StartingWorker | None = None) -> int:
    """Run one command line; `worker` is a mount worker `python -m vaultsh` started for it
    before this module was even imported (else one is started here for a mount)."""
    arglist = list(sys.argv[1:] if argv is None else argv)
    if worker is None:
        worker = worker_start.prestart(arglist)
    try:
        return _main(arglist, worker)
    finally:
        if worker is not None and worker.start_w >= 0:  # not taken over by a mount
            from vaultsh.service.mounts import abandon_worker

            abandon_worker(worker)


def _main(arglist: list[str], worker: StartingWorker | None) -> int:
    if _wants_tui(arglist):
        return _run_guarded(cmd_tui, build_tui_parser().parse_args(arglist))
    parser = build_parser(arglist[0] if arglist and arglist[0] in COMMANDS else None)
    if arglist and arglist[0] in _PATH_COMMANDS:
        args = _parse_path_command(parser, arglist)
    else:
        args = parser.parse_args(arglist)
    if args.command is None:
        parser.print_help()
        return ExitCode.USAGE
    # In a C or Latin-1 locale a name the terminal cannot show is escaped, never a failure.
    fit_output(sys.stdout, sys.stderr)
    command = COMMANDS[args.command]
    if command is cmd_mount:
        return _run_guarded(lambda a: cmd_mount(a, worker), args)
    return _run_guarded(command, args)
