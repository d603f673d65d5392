#!/usr/bin/env bash
# Builds the app image for one version: ./build-app-image.sh 1.2.0  ->  ragops/rag-service:1.2.0
# Idempotent: an existing tag is kept unless FORCE=1.
set -euo pipefail

VERSION=${1:?usage: build-app-image.sh VERSION}
if [[ ! "$VERSION" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]]; then
  echo "build-app-image: VERSION '$VERSION' is not a valid Docker tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})" >&2
  exit 2
fi
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
IMAGE=${APP_IMAGE:-ragops/rag-service}
BASE_IMAGE=${BASE_IMAGE:-ragops/debian-base:bookworm}

if [[ "${FORCE:-0}" != 1 ]] && docker image inspect "$IMAGE:$VERSION" >/dev/null 2>&1; then
  echo "build-app-image: $IMAGE:$VERSION already present"
  exit 0
fi
FORCE=0 "$ROOT/scripts/host/build-base-image.sh"
"$ROOT/scripts/host/fetch-app-wheels.sh"
docker build --quiet --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "VERSION=$VERSION" \
  -t "$IMAGE:$VERSION" -f "$ROOT/app/Dockerfile" "$ROOT/app" >/dev/null
echo "build-app-image: built $IMAGE:$VERSION ($(docker image inspect -f '{{.Size}}' "$IMAGE:$VERSION") bytes)"
