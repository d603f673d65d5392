#!/usr/bin/env bash
# Builds the app image for one version: ./build-app-image.sh 1.2.0  ->  ragops/rag-service:1.2.0
# The builder is the product's (playbooks/images.yml: the base when missing, then ragops.platform.app's image step,
# which fetches the wheels and builds through ragops.platform.images). An existing tag is kept unless FORCE=1,
# which rebuilds it when app/ or its wheels changed since it was built.
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
rebuild=false
[[ "${FORCE:-0}" != 1 ]] || rebuild=true
"$ROOT/scripts/host/run-images-playbook.sh" -e images_source=build -e "images_base_image=$BASE_IMAGE" \
  -e "app_image_build_repository=$IMAGE" -e "app_version=$VERSION" -e "app_image_rebuild=$rebuild"
echo "build-app-image: built $IMAGE:$VERSION ($(docker image inspect -f '{{.Size}}' "$IMAGE:$VERSION") bytes)"
