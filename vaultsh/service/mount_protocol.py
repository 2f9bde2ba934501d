"""Old import path of vaultsh.mount_protocol, kept so existing imports keep working."""

import sys

from vaultsh import mount_protocol as _moved
from vaultsh.mount_protocol import *  # noqa: F403  # the names, for type checkers and linters
from vaultsh.mount_protocol import _unescape_mountinfo as _unescape_mountinfo  # tests call it

# One module object under both names: patching either one patches the code that runs.
sys.modules[__name__] = _moved
