#!/bin/sh
# Entrypoint of a fleet host: SSH host keys, root's authorized_keys from the bind-mounted folder, the inner dockerd
# in the background (log: /var/log/dockerd.log), then sshd in the foreground.
set -eu

log() { printf 'fleet-host: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# --- SSH ------------------------------------------------------------------------------------------------------
# Host keys: generated at the first start (the image carries none), kept across restarts of the container.
ssh-keygen -A >/dev/null

keys="${FLEET_KEYS_DIR:-/etc/ragops-fleet/keys}/authorized_keys"
[ -s "$keys" ] || die "no authorized_keys in ${FLEET_KEYS_DIR:-/etc/ragops-fleet/keys} (bind-mount the keys folder read-only)"
install -d -o root -g root -m 0700 /root/.ssh
install -o root -g root -m 0600 "$keys" /root/.ssh/authorized_keys
# /run is a tmpfs: sshd's privilege separation folder is made at every start.
install -d -o root -g root -m 0755 /run/sshd

# --- inner dockerd --------------------------------------------------------------------------------------------
# overlay2 works only on the named volume; on the container's own (overlay) rootfs it is refused, or falls back to vfs.
mountpoint -q /var/lib/docker || die "/var/lib/docker is not a mount: run the host with a volume on /var/lib/docker"

# Inner containers go under this container's own cgroup (cgroupns host: /proc/self/cgroup shows the full path),
# so pause, stats and removal of the host include them. cgroup v1: the memory controller's line; v2: the 0:: line.
cgroup="$(awk -F: '$2 ~ /(^|,)memory(,|$)/ { print $3; exit }' /proc/self/cgroup)"
[ -n "$cgroup" ] || cgroup="$(awk -F: '$1 == "0" && $2 == "" { print $3; exit }' /proc/self/cgroup)"
case "$cgroup" in
  /?*) ;;
  *) die "cannot find this container's cgroup in /proc/self/cgroup" ;;
esac

set -- --host unix:///var/run/docker.sock \
  --data-root /var/lib/docker \
  --storage-driver overlay2 \
  --cgroup-parent "${cgroup%/}/inner" \
  --dns 127.0.0.11
# Docker's resolver of the host container is 127.0.0.11, which the inner engine drops: without --dns its inner
# containers fall back to a public resolver (8.8.8.8). With it, they fail to resolve, locally.
if [ -n "${FLEET_REGISTRY:-}" ]; then
  set -- "$@" --insecure-registry "$FLEET_REGISTRY"
fi
log "starting dockerd $*"
dockerd "$@" >>/var/log/dockerd.log 2>&1 &

# --- sshd -----------------------------------------------------------------------------------------------------
/usr/sbin/sshd -t
exec /usr/sbin/sshd -D -e
