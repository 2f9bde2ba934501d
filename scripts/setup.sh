#!/usr/bin/env bash
# setup.sh — make this machine ready to develop and test vaultsh. Idempotent.
#
#  1. System packages (Debian): gocryptfs, fusermount3 (fuse3), pkg-config and the libfuse3
#     headers (libfuse3-dev, needed to build pyfuse3), tmux, and rsync (the reverse-mount
#     tests back a view up with it). apt-get runs only if one is missing
#     and we are root; otherwise the missing ones are listed and we carry on.
#  2. The virtualenv at $VAULTSH_VENV (default <repo>/.venv): created if missing, pip upgraded,
#     then `pip install -e '.[dev]'`, then `pip install -e '.[dev,fuse]'` (optional: a failure
#     there only prints a warning, FUSE support is an extra).
#
# The pip steps are skipped when pyproject.toml and setup.py have not changed since the last successful run
# (a stamp file in the venv); VAULTSH_SETUP_FORCE=1 forces them.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VAULTSH_VENV:-$REPO/.venv}"

log() { printf '[setup] %s\n' "$*"; }
warn() { printf '[setup] WARNING: %s\n' "$*" >&2; }

# --- 1. system packages -----------------------------------------------------------------------

missing=()
command -v gocryptfs >/dev/null 2>&1 || missing+=("gocryptfs")
command -v gocryptfs-xray >/dev/null 2>&1 || missing+=("gocryptfs-xray")
command -v fusermount3 >/dev/null 2>&1 || missing+=("fusermount3")
command -v tmux >/dev/null 2>&1 || missing+=("tmux")
command -v rsync >/dev/null 2>&1 || missing+=("rsync")
if ! command -v pkg-config >/dev/null 2>&1; then
    missing+=("pkg-config" "libfuse3-dev")
elif ! pkg-config --exists fuse3; then
    missing+=("libfuse3-dev")
fi

if ((${#missing[@]} == 0)); then
    log "system packages present: gocryptfs, fusermount3, pkg-config, libfuse3-dev, tmux, rsync"
elif [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "missing: ${missing[*]} -> installing with apt-get"
    log "+ apt-get update"
    apt-get -q update
    log "+ apt-get install -y gocryptfs fuse3 libfuse3-dev pkg-config tmux rsync"
    DEBIAN_FRONTEND=noninteractive apt-get -q install -y gocryptfs fuse3 libfuse3-dev pkg-config tmux rsync
else
    warn "missing: ${missing[*]} (not root or no apt-get: not installing; the gocryptfs interop tests will skip)"
fi
if [[ ! -e /dev/fuse ]]; then
    warn "/dev/fuse does not exist: FUSE mounts (and the gocryptfs interop tests) cannot run here"
fi

# --- 2. virtualenv ----------------------------------------------------------------------------

if [[ ! -x "$VENV/bin/python" ]]; then
    log "+ python3 -m venv $VENV"
    python3 -m venv "$VENV"
else
    log "virtualenv present: $VENV"
fi
PY="$VENV/bin/python"
STAMP="$VENV/.vaultsh-setup-stamp"
want_stamp="$(cat "$REPO/pyproject.toml" "$REPO/setup.py" - <<<"$("$PY" -VV)" | sha256sum | cut -d' ' -f1)"

if [[ "${VAULTSH_SETUP_FORCE:-}" != 1 && -f "$STAMP" && "$(cat "$STAMP")" == "$want_stamp" ]] \
    && "$PY" -c 'import vaultsh' >/dev/null 2>&1; then
    log "python packages up to date (pyproject.toml unchanged; VAULTSH_SETUP_FORCE=1 to redo)"
    exit 0
fi

cd "$REPO"
log "+ pip install --upgrade pip"
"$PY" -m pip install -q --upgrade pip
log "+ pip install -e '.[dev]'"
"$PY" -m pip install -q -e '.[dev]'

fuse_log="$(mktemp -t vaultsh-pip-fuse.XXXXXX)"
log "+ pip install -e '.[dev,fuse]'"
if "$PY" -m pip install -q -e '.[dev,fuse]' >"$fuse_log" 2>&1; then
    log "FUSE extra installed (pyfuse3)"
    rm -f "$fuse_log"
else
    warn "could not install the optional FUSE extra (pyfuse3; needs libfuse3-dev + pkg-config), continuing without it; pip output: $fuse_log"
fi

printf '%s\n' "$want_stamp" >"$STAMP"
log "done: $VENV"
