#!/usr/bin/env bash
# Removes the containers started by service-up.sh. The Redis data volume is kept unless PURGE=1.
set -euo pipefail
docker rm -f ragops-dev-app ragops-dev-redis >/dev/null 2>&1 || true
docker network rm ragops-dev >/dev/null 2>&1 || true
if [[ "${PURGE:-0}" == 1 ]]; then
  docker volume rm ragops-dev-redis-data >/dev/null 2>&1 || true
  echo "service-down: removed containers and the Redis data volume"
else
  echo "service-down: removed containers (Redis data volume ragops-dev-redis-data kept; PURGE=1 removes it)"
fi
