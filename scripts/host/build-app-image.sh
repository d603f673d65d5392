#!/usr/bin/env bash
# Builds the workload's image for one version: ./build-app-image.sh 1.2.0  ->  ragops/rag-service:1.2.0, or for
# another workload ./build-app-image.sh 1.2.0 -e @examples/notes-api/workload.yml  ->  ragops-example/notes-api:1.2.0.
# The builder is the product's (playbooks/images.yml: the base when missing, then ragops.platform.app's image step,
# which prepares and builds the workload's context through ragops.platform.images). An existing tag is kept unless
# FORCE=1, which rebuilds it when the build context changed since it was built.
set -euo pipefail

VERSION=${1:?usage: build-app-image.sh VERSION [ansible-playbook options, e.g. -e @examples/notes-api/workload.yml]}
shift
if [[ ! "$VERSION" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]]; then
  echo "build-app-image: VERSION '$VERSION' is not a valid Docker tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})" >&2
  exit 2
fi
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BASE_IMAGE=${BASE_IMAGE:-ragops/debian-base:bookworm}
# The repository is the workload's (ragops_app.image.repository); APP_IMAGE overrides it. Without options, the
# workload is the reference service, whose repository is known, so a present tag is found without Ansible.
IMAGE=${APP_IMAGE:-}
[[ -n "$IMAGE" || $# -gt 0 ]] || IMAGE=ragops/rag-service

if [[ "${FORCE:-0}" != 1 && -n "$IMAGE" ]] && docker image inspect "$IMAGE:$VERSION" >/dev/null 2>&1; then
  echo "build-app-image: $IMAGE:$VERSION already present"
  exit 0
fi
rebuild=false
[[ "${FORCE:-0}" != 1 ]] || rebuild=true
args=(-e images_source=build -e "images_base_image=$BASE_IMAGE" -e "app_version=$VERSION" -e "app_image_rebuild=$rebuild")
[[ -z "${APP_IMAGE:-}" ]] || args+=(-e "app_image_repository=$APP_IMAGE")
"$ROOT/scripts/host/run-images-playbook.sh" "${args[@]}" "$@"
echo "build-app-image: made the app image of version $VERSION"
