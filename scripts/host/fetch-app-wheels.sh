#!/usr/bin/env bash
# Downloads the app's Python dependencies as wheels for the image's Python (Debian 12: CPython 3.11.2),
# because pip inside containers cannot reach an index here. Idempotent: pip skips wheels already present.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WHEELS=${APP_WHEELS_DIR:-$ROOT/app/wheels}
PIP=${PIP:-$ROOT/.venv/bin/pip}
[[ -x "$PIP" ]] || PIP="python3 -m pip"
ARCH=$(uname -m)

mapfile -t deps < <(python3 - "$ROOT/app/pyproject.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as fh:
    project = tomllib.load(fh)
for dep in project["project"]["dependencies"] + project["build-system"]["requires"]:
    print(dep)
PY
)

platforms=()
for tag in manylinux_2_36 manylinux_2_34 manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux2014 manylinux2010 manylinux1; do
  platforms+=(--platform "${tag}_${ARCH}")
done

# pip evaluates environment markers against the interpreter running it, not --python-version, so
# redis's `async-timeout; python_full_version < "3.11.3"` (true for Debian's 3.11.2) is asked for explicitly.
mkdir -p "$WHEELS"
$PIP download --quiet --disable-pip-version-check --only-binary=:all: \
  --python-version 3.11 --implementation cp --abi cp311 "${platforms[@]}" \
  -c "$ROOT/requirements/constraints.txt" -d "$WHEELS" "${deps[@]}" setuptools wheel async-timeout
echo "fetch-app-wheels: $(find "$WHEELS" -mindepth 1 -maxdepth 1 | wc -l) wheels in $WHEELS"
