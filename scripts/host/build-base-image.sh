#!/usr/bin/env bash
# Builds the local Debian base image (no registry needed): debootstrap from this host's own apt mirror,
# then `docker import`. Idempotent: does nothing when the image already exists (FORCE=1 rebuilds).
set -euo pipefail

IMAGE=${BASE_IMAGE:-ragops/debian-base:bookworm}
SUITE=${BASE_SUITE:-bookworm}
FORCE=${FORCE:-0}

if [[ "$FORCE" != 1 ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "build-base-image: $IMAGE already present"
  exit 0
fi

# The mirror is read from this machine's apt configuration at run time, never written in the repo.
apt_mirror() {
  local uri=""
  if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources)
  fi
  if [[ -z "$uri" && -f /etc/apt/sources.list ]]; then
    uri=$(awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) {print $i; exit}}' /etc/apt/sources.list)
  fi
  [[ -n "$uri" ]] || { echo "build-base-image: no apt mirror found in /etc/apt" >&2; return 1; }
  echo "$uri"
}

MIRROR=$(apt_mirror)
ROOTFS=$(mktemp -d /tmp/ragops-rootfs.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT

echo "build-base-image: debootstrap $SUITE from the host's apt mirror"
debootstrap --variant=minbase --include=python3,ca-certificates "$SUITE" "$ROOTFS" "$MIRROR" >/dev/null

# Give the image the host's apt sources and settings so `apt-get` inside builds uses the same mirror.
rm -f "$ROOTFS/etc/apt/sources.list"
mkdir -p "$ROOTFS/etc/apt/sources.list.d" "$ROOTFS/etc/apt/apt.conf.d"
if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
  cp /etc/apt/sources.list.d/*.sources "$ROOTFS/etc/apt/sources.list.d/"
else
  cp /etc/apt/sources.list "$ROOTFS/etc/apt/sources.list"
fi
for conf in /etc/apt/apt.conf.d/*; do
  case "$(basename "$conf")" in
    *packagekit* | *appstream* | *postgresql*) ;;
    *) cp "$conf" "$ROOTFS/etc/apt/apt.conf.d/" ;;
  esac
done
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/archives/*.deb

tar -C "$ROOTFS" -c . | docker import -c 'CMD ["bash"]' - "$IMAGE" >/dev/null
echo "build-base-image: built $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE") bytes)"
