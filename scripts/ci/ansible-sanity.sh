#!/usr/bin/env bash
# Runs `ansible-test sanity` offline-safe: the collection is copied to ansible_collections/ragops/platform
# (ansible-test needs that path), and the get-pip download is replaced by an ensurepip stand-in.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VENV=${VENV:-$ROOT/.venv}
PYTHON_VERSION=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
PIP_PIN=$("$VENV/bin/python" - <<'PY'
import pathlib, re, ansible_test
src = pathlib.Path(ansible_test.__file__).parent / "_internal/python_requirements.py"
print(re.search(r"pip='([0-9.]+)'", src.read_text()).group(1))
PY
)
CACHE="$HOME/.ansible/test/cache/get_pip_${PIP_PIN//./_}.py"
mkdir -p "$(dirname "$CACHE")"
cp "$ROOT/scripts/ci/get_pip_standin.py" "$CACHE"

WORK=$(mktemp -d /tmp/ragops-sanity.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
DEST="$WORK/ansible_collections/ragops/platform"
mkdir -p "$DEST"
# Only what git tracks (or would track): no virtualenv, wheels, caches or the collections/ symlink.
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard) |
  while IFS= read -r -d '' path; do
    [[ "$path" == collections/* || ! -e "$ROOT/$path" ]] || (cd "$ROOT" && cp --parents -P "$path" "$DEST")
  done
cd "$DEST"
git init -q && git add -A
"$VENV/bin/ansible-test" sanity --python "$PYTHON_VERSION" --color no "$@"
