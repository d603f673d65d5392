#!/usr/bin/env bash
# Creates .venv with every pinned Python tool (requirements/constraints.txt) and the app in editable mode.
# Idempotent: reinstalls only when the requirement files change.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VENV=${VENV:-$ROOT/.venv}
STAMP="$VENV/.ragops-requirements.sha256"
want=$(cat "$ROOT/requirements/dev.in" "$ROOT/requirements/constraints.txt" "$ROOT/app/pyproject.toml" | sha256sum | cut -d' ' -f1)

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  echo "setup-python: $VENV up to date"
  exit 0
fi
[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check \
  -r "$ROOT/requirements/dev.in" -c "$ROOT/requirements/constraints.txt" 2> >(grep -v "^WARNING: Location" >&2)
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps -e "$ROOT/app" \
  2> >(grep -v "^WARNING: Location" >&2)
echo "$want" >"$STAMP"
echo "setup-python: installed into $VENV"
