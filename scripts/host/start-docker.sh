#!/usr/bin/env bash
# Starts dockerd in the background when no engine answers (no systemd on these hosts), then waits for it.
set -euo pipefail

DOCKERD_LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
WAIT_SECONDS=${DOCKER_WAIT_SECONDS:-60}

if docker info >/dev/null 2>&1; then
  echo "start-docker: engine already running"
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  echo "start-docker: dockerd is not installed; run scripts/host/install-host-packages.sh" >&2
  exit 1
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
  echo "start-docker: starting dockerd (log: $DOCKERD_LOG)"
  nohup dockerd >"$DOCKERD_LOG" 2>&1 &
fi

for ((i = 0; i < WAIT_SECONDS * 2; i++)); do
  if docker info >/dev/null 2>&1; then
    echo "start-docker: engine ready"
    exit 0
  fi
  sleep 0.5
done
echo "start-docker: engine did not answer within ${WAIT_SECONDS}s; last log lines:" >&2
tail -n 20 "$DOCKERD_LOG" >&2 || true
exit 1
