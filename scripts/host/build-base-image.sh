#!/usr/bin/env bash
# Builds the local Debian base image (no registry needed) with its one builder, the role ragops.platform.images
# (entry point base, through playbooks/images.yml): debootstrap from this host's own apt mirror, the host's apt
# sources and settings, labels. Idempotent: does nothing when the image already exists (FORCE=1 rebuilds).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
IMAGE=${BASE_IMAGE:-ragops/debian-base:bookworm}
SUITE=${BASE_SUITE:-bookworm}
FORCE=${FORCE:-0}

if [[ "$FORCE" != 1 ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "build-base-image: $IMAGE already present"
  exit 0
fi

rebuild=false
[[ "$FORCE" != 1 ]] || rebuild=true
"$ROOT/scripts/host/run-images-playbook.sh" --tags base -e images_source=build \
  -e "images_base_image=$IMAGE" -e "images_base_suite=$SUITE" -e "images_base_rebuild=$rebuild"
echo "build-base-image: built $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE") bytes)"
