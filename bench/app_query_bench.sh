#!/usr/bin/env bash
# Builds the app image for VERSION if needed, then runs the query benchmark against it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=${1:?usage: app_query_bench.sh VERSION [bench options]}
shift
"$ROOT/scripts/host/build-app-image.sh" "$VERSION"
exec "$ROOT/.venv/bin/python" "$ROOT/bench/app_query_bench.py" "$VERSION" "$@"
