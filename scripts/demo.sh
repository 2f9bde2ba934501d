#!/usr/bin/env bash
# demo.sh — try vaultsh on a throw-away vault.
#
# Runs scripts/setup.sh, then `vaultsh demo`: a sample vault in a temporary directory, opened
# in the TUI (its password is printed first). Extra arguments go to `vaultsh demo` (e.g.
# --theme vaultsh-light).
#
# With --tour instead: a non-interactive tour of the one-shot CLI. It creates a vault in a
# fresh temporary directory (password "demo-password" in a passfile there, scrypt N = 2^12 so
# it is quick), imports a small sample tree written by this script, and shows info, a
# recursive long listing, a file's content and the translation of one cipher path. The vault
# is left in place for you to play with.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VAULTSH_VENV:-$REPO/.venv}"
PY="$VENV/bin/python"

bash "$REPO/scripts/setup.sh"

if [[ "${1:-}" != "--tour" ]]; then
    exec "$PY" -m vaultsh demo "$@"
fi

DEMO="$(mktemp -d -t vaultsh-demo.XXXXXX)"
VAULT="$DEMO/vault"
PASSFILE="$DEMO/passfile"
SAMPLE="$DEMO/sample"

vaultsh() {
    printf '\n$ vaultsh'
    printf ' %q' "$@"
    printf '\n'
    # Run from the demo directory so only the installed package (or $PYTHONPATH) is used.
    (cd "$DEMO" && "$PY" -m vaultsh "$@")
}

# --- a sample tree -----------------------------------------------------------------------------
mkdir -p "$SAMPLE/日本語" "$SAMPLE/docs/nested/deeper"
printf 'Hello, wörld!\nThis file was encrypted by vaultsh.\n' >"$SAMPLE/héllo wörld.txt"
printf 'こんにちは、世界\n' >"$SAMPLE/日本語/メモ.txt"
printf '# Deeply nested\n\nThree levels down.\n' >"$SAMPLE/docs/nested/deeper/readme.md"
printf 'notes\n' >"$SAMPLE/docs/notes 📝.txt"
ln -s "héllo wörld.txt" "$SAMPLE/link to hello"
chmod 0755 "$SAMPLE/docs"

printf 'demo-password\n' >"$PASSFILE"
chmod 0600 "$PASSFILE"
mkdir "$VAULT"

# --- the tour ------------------------------------------------------------------------------------
vaultsh init --scryptn 12 --passfile "$PASSFILE" "$VAULT"
vaultsh import --passfile "$PASSFILE" "$SAMPLE" "$VAULT" sample
vaultsh info "$VAULT"
vaultsh ls -l -R --passfile "$PASSFILE" "$VAULT"
vaultsh cat --passfile "$PASSFILE" "$VAULT" "sample/héllo wörld.txt"

# One cipher path, taken from the disk: the encrypted "sample" dir and an entry inside it.
first_entry() {
    local dir="$1" name
    for name in "$dir"/*; do
        name="${name##*/}"
        case "$name" in
        gocryptfs.conf | gocryptfs.diriv | gocryptfs.longname.*.name) continue ;;
        esac
        printf '%s' "$name"
        return 0
    done
    return 1
}
top="$(first_entry "$VAULT")"
inner="$(first_entry "$VAULT/$top")"
printf '\nOn disk, the vault holds:\n'
ls -la "$VAULT" "$VAULT/$top"
vaultsh decrypt-paths --passfile "$PASSFILE" "$VAULT" -- "$top/$inner"

cat <<EOF

Demo vault:      $VAULT
Password file:   $PASSFILE   (password: demo-password)
Sample plaintext: $SAMPLE

Try for example:
  $PY -m vaultsh ls -l -R --passfile '$PASSFILE' '$VAULT'
  gocryptfs -passfile '$PASSFILE' '$VAULT' /some/empty/mountpoint
Remove it with:  rm -rf '$DEMO'
EOF
