#!/usr/bin/env bash
# test.sh — set up (scripts/setup.sh), then lint (ruff), type-check (mypy), check the layering
# (lint-imports) and test (pytest, 2 workers). Extra arguments go to pytest. Every step runs;
# the exit code is non-zero if any step failed (pytest's own code if pytest failed).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VAULTSH_VENV:-$REPO/.venv}"
PY="$VENV/bin/python"
cd "$REPO"

bash "$REPO/scripts/setup.sh"

failed=()
step() {
    local name="$1"
    shift
    printf '\n[test] === %s: %s\n' "$name" "$*"
    if "$@"; then
        printf '[test] --- %s: ok\n' "$name"
        return 0
    else
        local rc=$?
        printf '[test] --- %s: FAILED (exit %s)\n' "$name" "$rc"
        failed+=("$name")
        return "$rc"
    fi
}

step ruff "$PY" -m ruff check vaultsh tests bench || true
step ruff-format "$PY" -m ruff format --check vaultsh tests bench || true
step mypy "$PY" -m mypy || true
step imports "$VENV/bin/lint-imports" --no-cache --no-logo || true
pytest_rc=0
step pytest "$PY" -m pytest -n 2 "$@" || pytest_rc=$?

if ((${#failed[@]})); then
    printf '\n[test] FAILED steps: %s\n' "${failed[*]}"
    if ((pytest_rc != 0)); then
        exit "$pytest_rc"
    fi
    exit 1
fi
printf '\n[test] all steps passed\n'
