"""Every command declared once (name, arguments, help, completion, front ends) for the CLI and the shell."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vaultsh.vault.conf_names import DEFAULT_SCRYPT_LOGN
from vaultsh.vault.errors import UsageError

if TYPE_CHECKING:
    from vaultsh.vault.tree import Tree

# This module holds data and parsing only: the CLI builds its argparse parser from it without
# loading the command implementations (vaultsh.service.commands), which `vaultsh mount` never
# needs, and the shell parses typed words with the same declarations.

SHELL = "shell"
CLI = "cli"
BOTH = frozenset({SHELL, CLI})


@dataclass(frozen=True)
class Arg:
    """One argument: an option when its first name starts with '-', else a positional.

    An option with `value` None is a flag; otherwise it takes a value of that type (`repeat`:
    each use appends one). A positional's `nargs` is argparse's: None, "?", "*" or "+".
    """

    names: tuple[str, ...]
    help: str = ""
    metavar: str | None = None
    nargs: str | None = None
    value: type[str] | type[int] | None = None
    default: object = None
    repeat: bool = False
    dest_name: str | None = None

    @property
    def positional(self) -> bool:
        return not self.names[0].startswith("-")

    @property
    def dest(self) -> str:
        """The attribute the parsed value goes to, chosen as argparse chooses it."""
        if self.dest_name:
            return self.dest_name
        if self.positional:
            return self.names[0]
        name = next((n for n in self.names if n.startswith("--")), self.names[0])
        return name.lstrip("-").replace("-", "_")

    @property
    def initial(self) -> object:
        """The value when the argument is not given."""
        if self.repeat or self.nargs in ("*", "+"):
            return []
        if not self.positional and self.value is None:
            return False
        return self.default

    def usage(self) -> str:
        if not self.positional:
            shown = f"{self.names[0]} {self.metavar}" if self.value is not None else self.names[0]
            return f"[{shown}]"
        meta = self.metavar or self.names[0].upper()
        return {"?": f"[{meta}]", "*": f"[{meta}...]", "+": f"{meta}..."}.get(self.nargs or "", meta)

    def add_to(self, parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
        """Add this argument to an argparse parser (the CLI)."""
        if self.positional:
            if self.nargs == "?":
                parser.add_argument(
                    self.dest, nargs="?", default=self.default, metavar=self.metavar, help=self.help or None
                )
            else:
                parser.add_argument(self.dest, nargs=self.nargs, metavar=self.metavar, help=self.help or None)
        elif self.value is None:
            parser.add_argument(*self.names, dest=self.dest, action="store_true", help=self.help or None)
        else:
            parser.add_argument(
                *self.names,
                dest=self.dest,
                type=self.value,
                metavar=self.metavar,
                help=self.help or None,
                action="append" if self.repeat else "store",
                default=[] if self.repeat else self.default,
            )


def flag(*names: str, help: str = "", dest: str | None = None) -> Arg:
    return Arg(names, help, dest_name=dest)


def option(
    *names: str,
    metavar: str,
    help: str = "",
    value: type[str] | type[int] = str,
    default: object = None,
    repeat: bool = False,
) -> Arg:
    return Arg(names, help, metavar, value=value, default=default, repeat=repeat)


def positional(
    name: str, metavar: str | None = None, *, nargs: str | None = None, help: str = "", default: object = None
) -> Arg:
    return Arg((name,), help, metavar or name.upper(), nargs, default=default)


def add_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, args: Iterable[Arg]) -> None:
    for arg in args:
        arg.add_to(parser)


# -- the options of opening a vault from the command line (the shell has it open already) ---

CONFIG_ARG = option("--config", metavar="FILE", help="use FILE instead of CIPHERDIR/gocryptfs.conf")
PASSWORD_ARGS = (
    option("--passfile", metavar="FILE", help="read the password from FILE", repeat=True),
    option("--extpass", metavar="CMD", help="run CMD, use its first line", repeat=True),
    CONFIG_ARG,
)
MASTERKEY_ARGS = (
    option("--masterkey", metavar="KEY", help="the master key (KEY, or - for stdin)"),
    option("--masterkey-file", metavar="FILE", help="read the master key from FILE"),
)
FORMAT_ARGS = (
    flag("--plaintextnames", help="do not encrypt file names"),
    flag("--aessiv", help="AES-SIV content encryption"),
    flag("--xchacha", help="XChaCha20-Poly1305 content encryption"),
    flag("--deterministic-names", help="no gocryptfs.diriv; same name, same cipher"),
    option("--longnamemax", metavar="N", value=int, default=0, help="hash names longer than N"),
)

# What a CLI command takes to reach its folder, besides its own arguments:
#   "open"      password or master key, format flags (used without a config), CIPHERDIR
#   "keys"      password or master key, CIPHERDIR
#   "password"  password only (no master key), CIPHERDIR
#   "config"    --config, CIPHERDIR
#   "dir"       CIPHERDIR only
#   ""          nothing (the command needs no vault)
VAULT_KINDS = ("open", "keys", "password", "config", "dir", "")


def vault_usage(kind: str) -> list[str]:
    """The CLI usage words of a vault kind, CIPHERDIR excepted."""
    return {
        "open": ["[password options]", "[format options]"],
        "keys": ["[password options]"],
        "password": ["[password options]"],
        "config": ["[--config FILE]"],
    }.get(kind, [])


@dataclass(frozen=True)
class Command:
    """One command as both front ends know it.

    `handler` is "module:function" in vaultsh.service.commands, called by the shell with the
    session and the parsed arguments; CLI-only commands have none (cli.py runs them).
    `completes` is one of "plain-path", "plain-dir", "local-path", "command" or "none"; a
    command whose positional arguments differ lists one kind per position separated by
    spaces, the last kind applying to any further arguments ("plain-path local-path").
    `cli_args` are options the shell has no use for: a one-shot process's (a progress bar on
    stderr, paths on stdin, staying in the foreground, JSON for a script) and what the shell
    settled when it opened the vault (forward or reverse, the master key) or asks for itself
    (a new password); `cli_names` the CLI's spelling first, then its aliases.
    `secret`, `writes` and `examines_cipher_files` are capabilities the shell checks before
    running a line; the last two are what a command needs of the open folder (see
    `why_not_here`).
    `dashed_paths`: a word that is not exactly one of its options is a path, even when it
    starts with '-' (cipher names are base64url, whose alphabet has '-').
    """

    name: str
    summary: str
    args: tuple[Arg, ...] = ()
    aliases: tuple[str, ...] = ()
    handler: str = ""
    completes: str = "none"
    fronts: frozenset[str] = BOTH
    cli_names: tuple[str, ...] = ()
    cli_args: tuple[Arg, ...] = ()
    cli_vault: str = "open"
    cipherdir_at: int = 0  # CIPHERDIR's place among the CLI's positional arguments
    secret: bool = False  # deals in secrets: its lines never enter a shell history
    writes: bool = False  # writes into a vault's tree: needs Tree.writable
    examines_cipher_files: bool = False  # examines the stored cipher files: needs Tree.cipher_files
    dashed_paths: bool = False

    def __post_init__(self) -> None:
        assert self.cli_vault in VAULT_KINDS, self.cli_vault

    @property
    def options(self) -> tuple[Arg, ...]:
        return tuple(a for a in self.args if not a.positional)

    @property
    def positionals(self) -> tuple[Arg, ...]:
        return tuple(a for a in self.args if a.positional)

    @property
    def usage(self) -> str:
        """The shell's usage line; the CLI's (`cli_usage`) is this with its own additions."""
        return " ".join([self.name, *(a.usage() for a in self.args)])

    @property
    def cli_name(self) -> str:
        return (self.cli_names or (self.name,))[0]

    def cli_usage(self) -> str:
        words = [a.usage() for a in (*self.options, *self.cli_args) if not a.positional]
        words += vault_usage(self.cli_vault)
        places = [a.usage() for a in (*self.positionals, *(a for a in self.cli_args if a.positional))]
        if self.cli_vault:
            places.insert(self.cipherdir_at, "CIPHERDIR")
        return " ".join([self.cli_name, *words, *places])

    def completion_kind(self, position: int) -> str:
        kinds = self.completes.split()
        return kinds[min(position, len(kinds) - 1)] if kinds else "none"

    def parse(self, words: Sequence[str]) -> argparse.Namespace:
        """Parse words typed in the shell: getopt-like, short flags combine (-la), '--' ends
        the options; a one-line UsageError (with the usage) for anything else."""
        by_name = {n: a for a in self.options for n in a.names}
        out = argparse.Namespace(**{a.dest: a.initial for a in self.args})
        given: list[str] = []
        it = iter(words)
        for word in it:
            if word == "--":
                given.extend(it)
                break
            if self.dashed_paths and word.partition("=")[0] not in by_name:
                given.append(word)
            elif word.startswith("--") and len(word) > 2:
                name, eq, value = word.partition("=")
                arg = by_name.get(name)
                if arg is None or (eq and arg.value is None):
                    raise UsageError(f"unknown option {name}; usage: {self.usage}")
                if arg.value is None:
                    setattr(out, arg.dest, True)
                    continue
                if not eq:
                    value = next(it, "")
                    if not value:
                        raise UsageError(f"{name} needs a value; usage: {self.usage}")
                self._store(out, arg, name, value)
            elif word.startswith("-") and len(word) > 1:
                for i, letter in enumerate(word[1:], start=1):
                    arg = by_name.get(f"-{letter}")
                    if arg is None:
                        raise UsageError(f"unknown option -{letter}; usage: {self.usage}")
                    if arg.value is None:
                        setattr(out, arg.dest, True)
                        continue
                    value = word[i + 1 :] or next(it, "")
                    if not value:
                        raise UsageError(f"-{letter} needs a value; usage: {self.usage}")
                    self._store(out, arg, f"-{letter}", value)
                    break
            else:
                given.append(word)
        self._place(out, given)
        return out

    def _store(self, out: argparse.Namespace, arg: Arg, name: str, text: str) -> None:
        try:
            value = arg.value(text) if arg.value is not None else text
        except ValueError:
            raise UsageError(f"{name} {text!r} is not a number") from None
        if arg.repeat:
            getattr(out, arg.dest).append(value)
        else:
            setattr(out, arg.dest, value)

    def _place(self, out: argparse.Namespace, given: list[str]) -> None:
        """Share the positional words out among the positional arguments, as argparse does."""
        slots = self.positionals
        needed = [0 if a.nargs in ("?", "*") else 1 for a in slots]
        open_ended = any(a.nargs in ("*", "+") for a in slots)
        if len(given) < sum(needed) or (not open_ended and len(given) > len(slots)):
            raise UsageError(f"usage: {self.usage}")
        rest = list(given)
        for i, arg in enumerate(slots):
            later = sum(needed[i + 1 :])
            spare = len(rest) - later
            if arg.nargs in ("*", "+"):
                take = spare
                setattr(out, arg.dest, rest[:take])
            else:
                take = 1 if arg.nargs is None or spare > 0 else 0
                if take:
                    setattr(out, arg.dest, rest[0])
            rest = rest[take:]


def _no_progress() -> Arg:
    return flag("--no-progress", help="never show a progress bar")


def _paths_from_stdin(meta: str) -> tuple[Arg, ...]:
    return (
        positional("paths", meta, nargs="*", help="paths (none, in the CLI: read from stdin, one per line)"),
    )


_NULL = flag(
    "-0",
    "--null",
    help="exact bytes for scripts: stdin paths and output paths each end in a NUL, not a newline",
)
_SCRYPTN = option("--scryptn", metavar="N", value=int, default=DEFAULT_SCRYPT_LOGN, help="scrypt cost 2^N")
THEME_ARG = option("--theme", metavar="NAME", help="colour theme")

_TABLE = (
    Command("init", "create a new vault in an empty directory", (
        *FORMAT_ARGS, _SCRYPTN,
        flag("--reverse", help="init a plain dir for reverse mode (AES-SIV)"),
        flag("-q", "--quiet", help="print only the master key"),
    ), fronts=frozenset({CLI}), cli_vault="keys"),
    Command("ls", "list a directory (-l long, -a undecryptable too, -R recursive)", (
        flag("-l", dest="long", help="long format"),
        flag("-a", "--all", help="also show undecryptable entries"),
        flag("-R", dest="recursive", help="recurse into directories"),
        flag("--cipher", help="show each entry's cipher name too"),
        positional("path", "PATH", nargs="?", default=""),
    ), ("dir",), "listing:run_ls", "plain-path"),
    Command("cd", "change the current vault directory", (positional("path", "PATH", nargs="?", default="/"),),
            handler="listing:run_cd", completes="plain-dir", fronts=frozenset({SHELL})),
    Command("pwd", "show the current vault directory", handler="listing:run_pwd", fronts=frozenset({SHELL})),
    Command("cat", "show a file's decrypted text", (
        flag("--force-decode", help="give damaged blocks as zeros (exit 26)"),
        positional("paths", "PATH", nargs="+"),
    ), handler="listing:run_cat", completes="plain-path"),
    Command("export", "decrypt a file or tree to a local path", (
        flag("--force-decode", help="write damaged blocks as zeros (exit 26)"),
        positional("path", "PATH", help="plain path in the vault ('/' for everything)"),
        positional("dest", "DEST"),
    ), ("get",), "transfers:run_export", "plain-path local-path", cli_args=(_no_progress(),)),
    Command("import", "encrypt a local file or tree into the vault", (
        positional("src", "SRC"),
        positional("path", "PATH", nargs="?", help="plain destination (default: the current dir)"),
    ), ("put",), "transfers:run_import", "local-path plain-path", cli_args=(_no_progress(),), cipherdir_at=1,
            writes=True),
    Command("mkdir", "make directories (-p: with parents)", (
        flag("-p", "--parents", help="make parents too; no error if present"),
        positional("paths", "PATH", nargs="+"),
    ), handler="tree:run_mkdir", completes="plain-dir", writes=True),
    Command("mv", "move or rename (asks before replacing; -f replaces)", (
        flag("-f", "--force", help="replace an existing file or symlink at DST"),
        positional("src", "SRC"),
        positional("dst", "DST"),
    ), ("rename",), "tree:run_mv", "plain-path", writes=True),
    Command("rm", "remove files (-r: directories with their contents)", (
        flag("-r", "--recursive", help="remove directories and their contents"),
        flag("-f", "--force", help="a missing path is not an error"),
        positional("paths", "PATH", nargs="+"),
    ), handler="tree:run_rm", completes="plain-path", writes=True),
    Command("decrypt-path", "plain path of a cipher path", _paths_from_stdin("CIPHERPATH"),
            ("decrypt-paths",), "names:run_decrypt_path", cli_names=("decrypt-paths",), cli_args=(_NULL,),
            dashed_paths=True),
    Command("encrypt-path", "cipher path of a plain path", _paths_from_stdin("PLAINPATH"),
            ("encrypt-paths",), "names:run_encrypt_path", "plain-path",
            cli_names=("encrypt-paths",), cli_args=(_NULL,), dashed_paths=True),
    Command("info", "show the vault's config summary (no password needed)", handler="keys:run_info",
            cli_vault="config"),
    Command("mount", "mount the vault with FUSE (the CLI's --reverse: a plain dir's encrypted view)", (
        flag("--ro", help="mount read-only"),
        option("--idle", metavar="DURATION", help="unmount after DURATION without use (30s, 10m, 1h)"),
        positional("mountpoint", "MOUNTPOINT"),
    ), handler="mounting:run_mount", completes="local-path", cli_args=(
        flag("--reverse", help="CIPHERDIR is a plain dir; show it encrypted"),
        option("--exclude", metavar="PATTERN", help="hide PATTERN (reverse)", repeat=True),
        option("--exclude-from", metavar="FILE", help="hide the patterns in FILE", repeat=True),
        flag("--allow-other", help="let other users see the mount"),
        flag("--noprealloc", help="do not reserve disk space before each write (as gocryptfs -noprealloc)"),
        flag("--fg", help="stay in the foreground until unmounted"),
    )),
    Command("unmount", "unmount a mount (default, in the shell: this vault's)",
            (positional("mountpoint", "MOUNTPOINT", nargs="?"),), ("umount",), "mounting:run_unmount",
            "local-path", cli_names=("unmount", "umount"), cli_vault=""),
    Command("mounts", "list running mounts with their counters", handler="mounting:run_mounts", cli_vault=""),
    Command("passwd", "change the vault password (keeps gocryptfs.conf.bak)", (
        option("--new-passfile", metavar="FILE", help="read the new password from FILE"),
        option("--scryptn", metavar="N", value=int, help="new scrypt cost 2^N (default: keep)"),
    ), handler="keys:run_passwd", cli_vault="keys", secret=True),
    Command("recover", "write a new config from the master key (settings found by trial)", (
        *FORMAT_ARGS,
        flag("--defaults", help="init's defaults for what the files cannot tell"),
        flag("--dry-run", help="show what would be written; write nothing"),
    ), handler="keys:run_recover", cli_vault="dir", secret=True, cli_args=(
        flag("--reverse", help="CIPHERDIR is a plain dir (reverse mode)"),
        option("--view", metavar="DIR", help="with --reverse: a copy of the encrypted view, as evidence"),
        *MASTERKEY_ARGS,
        option("--new-passfile", metavar="FILE", help="read the new password from FILE"),
        option("--new-extpass", metavar="CMD", help="run CMD, use its first line as the new password"),
        _SCRYPTN,
        flag("--json", help="print the detection as JSON"),
    )),
    Command("masterkey", "show the master key (asks the password again)", handler="keys:run_masterkey",
            cli_vault="password", secret=True),
    Command("fsck", "check names, dirivs, headers, blocks, symlinks and xattrs (exit 26: damage)", (
        flag("--json", help="one JSON record per finding on stdout"),
        option("--quarantine", metavar="DIR", help="move damaged items to DIR (outside the vault)"),
        flag("--force-decode",
             help="with --quarantine: put back a copy of each damaged file, zeros in its bad blocks"),
        positional("path", "PATH", nargs="?", default="", help="plain path of a subtree to check"),
    ), handler="checks:run_fsck", completes="plain-dir", cli_args=(_no_progress(),),
            examines_cipher_files=True),
    Command("conflicts", "list sync-conflict copies, compare them; keep (--adopt) or --export them", (
        flag("--adopt", help="keep each copy under a new plain name, "
             "e.g. 'report (conflict 2026-01-02).txt', and remove it"),
        option("--export", metavar="DIR", help="decrypt each copy into DIR, under its plain directory"),
        positional("path", "PATH", nargs="?", default="", help="plain path of a subtree"),
    ), handler="checks:run_conflicts", completes="plain-dir", examines_cipher_files=True),
    Command("shell", "an interactive shell over the decrypted vault", fronts=frozenset({CLI})),
    Command("new", "create a vault with the full-screen wizard",
            (THEME_ARG, positional("directory", "DIRECTORY")), fronts=frozenset({CLI}), cli_vault=""),
    Command("demo", "open a freshly made demo vault in the full-screen interface", (
        THEME_ARG,
        option("--dir", metavar="DIR", help="make the demo vault in DIR (default: a new temp one)"),
    ), fronts=frozenset({CLI}), cli_vault=""),
    Command("theme", "switch the colour theme (no name: list them)", (positional("name", "NAME", nargs="?"),),
            handler="meta:run_theme", fronts=frozenset({SHELL})),
    Command("help", "list commands, or explain one", (positional("command", "COMMAND", nargs="?"),), ("?",),
            "meta:run_help", "command", fronts=frozenset({SHELL})),
    Command("exit", "leave the session", (), ("quit",), "meta:run_exit", fronts=frozenset({SHELL})),
)  # fmt: skip

REGISTRY: dict[str, Command] = {c.name: c for c in _TABLE}


def for_front(front: str) -> dict[str, Command]:
    """The commands one front end has, in the registry's order."""
    return {name: c for name, c in REGISTRY.items() if front in c.fronts}


# -- which commands apply to the open folder -----------------------------------------------
# A command declares what it needs of the folder (`writes`, `examines_cipher_files`), a Tree
# what it has (`writable`, `cipher_files`); a reverse-mode folder is the one kind that lacks
# either, so the reasons speak of it.


def read_only_reason(plaindir: Path) -> str:
    """Why a command that writes into the tree has no meaning on a reverse-mode folder."""
    return (
        "the encrypted view of a reverse-mode folder is read-only; "
        f"change the plain files in {plaindir} instead"
    )


def no_cipher_files_reason(plaindir: Path) -> str:
    """Why a command that examines stored cipher files has no meaning on a reverse-mode folder."""
    return (
        f"{plaindir} is a reverse-mode folder: its files are plain, and its encrypted view is "
        "computed from them, so there are no cipher files to check"
    )


def why_not_here(cmd: Command, tree: Tree) -> str | None:
    """Why `cmd` does not apply to the folder `tree` is open on, or None when it does."""
    if cmd.writes and not tree.writable:
        return read_only_reason(tree.root)
    if cmd.examines_cipher_files and not tree.cipher_files:
        return no_cipher_files_reason(tree.root)
    return None


def applicable(commands: dict[str, Command], tree: Tree) -> dict[str, Command]:
    """The commands of `commands` that apply to the folder `tree` is open on, in their order."""
    return {name: c for name, c in commands.items() if why_not_here(c, tree) is None}
