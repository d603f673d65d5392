#!/usr/bin/env bash
# Brings up the reference service alone (Redis + one app container) on 127.0.0.1:${RAG_DEV_PORT:-8000}.
# Idempotent: images and Redis are reused; the app container is replaced when the version changes.
set -euo pipefail

VERSION=${1:?usage: service-up.sh VERSION}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PORT=${RAG_DEV_PORT:-8000}
NET=ragops-dev
REDIS=ragops-dev-redis
APP=ragops-dev-app
SECRET_FILE="$ROOT/.secrets/dev-redis-password"

"$ROOT/scripts/host/build-base-image.sh"
"$ROOT/scripts/host/build-app-image.sh" "$VERSION"
docker image inspect ragops/redis:local >/dev/null 2>&1 ||
  docker build --quiet -t ragops/redis:local "$ROOT/roles/redis/files/image" >/dev/null

if [[ ! -s "$SECRET_FILE" ]]; then
  install -d -m 0700 "$(dirname "$SECRET_FILE")"
  (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$SECRET_FILE")
fi
PASSWORD=$(cat "$SECRET_FILE")

docker network inspect "$NET" >/dev/null 2>&1 || docker network create "$NET" >/dev/null
if [[ "$(docker inspect -f '{{.State.Running}}' "$REDIS" 2>/dev/null)" != true ]]; then
  docker rm -f "$REDIS" >/dev/null 2>&1 || true
  docker run -d --name "$REDIS" --network "$NET" -v ragops-dev-redis-data:/data \
    --env REDISCLI_AUTH="$PASSWORD" \
    --health-cmd 'redis-cli ping | grep -q PONG' --health-interval 5s \
    ragops/redis:local redis-server --dir /data --appendonly yes --requirepass "$PASSWORD" >/dev/null
fi

if [[ "$(docker inspect -f '{{.Config.Image}}' "$APP" 2>/dev/null)" != "ragops/rag-service:$VERSION" ]]; then
  docker rm -f "$APP" >/dev/null 2>&1 || true
  docker run -d --name "$APP" --network "$NET" -p "127.0.0.1:$PORT:8000" --read-only --tmpfs /tmp \
    --env RAG_REDIS_URL="redis://:$PASSWORD@$REDIS:6379/0" --env RAG_COLOR=blue \
    "ragops/rag-service:$VERSION" >/dev/null
fi

for ((i = 0; i < 120; i++)); do
  if [[ "$(docker inspect -f '{{.State.Health.Status}}' "$APP")" == healthy ]]; then
    echo "service-up: ragops/rag-service:$VERSION is healthy on http://127.0.0.1:$PORT"
    exit 0
  fi
  sleep 0.5
done
echo "service-up: the app did not turn healthy within 60 s; its last log lines:" >&2
docker logs --tail 30 "$APP" >&2
exit 1
