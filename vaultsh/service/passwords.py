"""Reading passwords and master keys from files, commands, the terminal or stdin (spec §11.1)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from vaultsh.vault.conf_names import MAX_PASSWORD_LEN
from vaultsh.vault.display import safe_text
from vaultsh.vault.errors import MasterKeyError, ReadPasswordError, UsageError

# The modules for running --extpass, prompting and parsing a master key are imported where
# they are used: `vaultsh mount` reads its secret only once its worker is starting.


def warn(message: str) -> None:
    print(f"vaultsh: warning: {safe_text(message)}", file=sys.stderr)


@dataclass
class SecretSource:
    """Where the (old) password or the master key comes from, as given on the command line."""

    passfiles: Sequence[str] = field(default_factory=list)
    extpass: Sequence[str] = field(default_factory=list)
    masterkey: str | None = None  # a key, or "-" for stdin
    masterkey_file: str | None = None

    def validate(self) -> None:
        if self.passfiles and self.extpass:
            raise UsageError("--passfile and --extpass cannot be combined")
        if self.masterkey is not None and self.masterkey_file is not None:
            raise UsageError("--masterkey and --masterkey-file cannot be combined")
        if self.has_masterkey and (self.passfiles or self.extpass):
            raise UsageError("--masterkey cannot be combined with --passfile or --extpass")

    @property
    def has_masterkey(self) -> bool:
        return self.masterkey is not None or self.masterkey_file is not None

    def read_password(self, prompt: str = "Password: ", twice: bool = False) -> bytes:
        """The password from --passfile, --extpass, the terminal, or one line of stdin."""
        if self.passfiles:
            return _check(b"".join(read_passfile(p) for p in self.passfiles))
        if self.extpass:
            return _check(run_extpass(self.extpass))
        return read_interactive(prompt, twice=twice)

    def read_master_key(self) -> bytes:
        from vaultsh.vault.keys import parse_master_key

        if self.masterkey_file is not None:
            try:
                with open(self.masterkey_file, encoding="ascii", errors="replace") as f:
                    text = f.readline()
            except OSError as e:
                raise MasterKeyError(f"{self.masterkey_file}: cannot read master key: {e.strerror}") from None
            return parse_master_key(text)
        if self.masterkey == "-":
            # The byte stream, not the text layer: that would read ahead into what follows
            # (NUL-separated paths of decrypt-paths -0, say).
            return parse_master_key(sys.stdin.buffer.readline().decode(errors="replace"))
        if self.masterkey is not None:
            warn("a master key on the command line is visible to other users in `ps`; use --masterkey-file")
            return parse_master_key(self.masterkey)
        raise UsageError("no master key given")


def _check(password: bytes) -> bytes:
    if not password:
        raise ReadPasswordError("Password is empty")
    if len(password) > MAX_PASSWORD_LEN:
        raise ReadPasswordError(f"Password is longer than {MAX_PASSWORD_LEN} bytes")
    return password


def read_passfile(path: str) -> bytes:
    """The first line of a password file; an empty first line is fatal, more lines a warning."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_PASSWORD_LEN + 2)
            more = f.read(1)
    except OSError as e:
        raise ReadPasswordError(f"{path}: cannot read password file: {e.strerror}") from None
    line, sep, rest = data.partition(b"\n")
    if not sep and len(line) > MAX_PASSWORD_LEN:
        raise ReadPasswordError(f"{path}: password is longer than {MAX_PASSWORD_LEN} bytes")
    if not line:
        raise ReadPasswordError(f"{path}: password file has an empty first line")
    if rest or more:
        warn(f"{path}: only the first line of the password file is used")
    return line


def run_extpass(command: Sequence[str]) -> bytes:
    """Run the --extpass program (split on spaces when given as one string), take its first line."""
    import shlex
    import subprocess

    argv = list(command)
    if len(argv) == 1:
        argv = shlex.split(argv[0])
    if not argv:
        raise ReadPasswordError("--extpass command is empty")
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, check=False)
    except OSError as e:
        raise ReadPasswordError(f"--extpass {argv[0]}: cannot run: {e.strerror}") from None
    if proc.returncode != 0:
        raise ReadPasswordError(f"--extpass {argv[0]}: exited with status {proc.returncode}")
    return proc.stdout.split(b"\n", 1)[0]


def _tty_available() -> bool:
    try:
        fd = os.open("/dev/tty", os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return sys.stdin.isatty()


def read_interactive(prompt: str, twice: bool = False) -> bytes:
    """Prompt on the terminal without echo; without a terminal, read one line from stdin."""
    if _tty_available():
        import getpass

        first = getpass.getpass(prompt).encode()
        _check(first)
        if twice:
            again = getpass.getpass("Repeat: ").encode()
            if again != first:
                raise ReadPasswordError("Passwords do not match")
        return first
    line = sys.stdin.buffer.readline()
    if line.endswith(b"\n"):
        line = line[:-1]
    return _check(line)
