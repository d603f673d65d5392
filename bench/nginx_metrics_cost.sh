#!/usr/bin/env bash
# The cost of nginx's traffic metrics on the hot path (per color and per peer: six incr() a request), on a running
# stack (make up): wrk through nginx for DURATION seconds with the same connections, with the metrics on, off
# (nginx_traffic_metrics_enabled=false, applied by site.yml --tags nginx, a reload), and on again; prints
# requests/s and p95 of each run, for a path nginx proxies to the live color (/health) and for one nginx answers
# itself (an unknown path: its 404, counted too). Leaves the metrics on.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
URL=${URL:-http://127.0.0.1:8080}
export PATH="$ROOT/.venv/bin:$PATH" ANSIBLE_CONFIG="$ROOT/ansible.cfg" ANSIBLE_COLLECTIONS_PATH="$ROOT/collections"
command -v wrk >/dev/null || { echo "nginx_metrics_cost: wrk is missing (apt-get install wrk)" >&2; exit 1; }

REPORT=$(mktemp)
trap 'rm -f "$REPORT"' EXIT
cat > "$REPORT" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("%.1f %.2f %d %d\n", summary.requests / (summary.duration / 1e6),
                         latency:percentile(95) / 1000, summary.errors.status, summary.errors.connect
                         + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA

ADMIN_SOCKET=${ADMIN_SOCKET:-/opt/ragops/nginx/run/admin.sock}
nginx_metrics() {
  (cd "$ROOT" && ansible-playbook site.yml --tags nginx -e "nginx_traffic_metrics_enabled=$1" >/dev/null 2>&1)
  # Proof that the setting took: nginx's /metrics answers 200 with the metrics on, 404 without.
  local expected=404 got
  [[ $1 != true ]] || expected=200
  got=$(python3 - "$ADMIN_SOCKET" <<'PY'
import http.client, socket, sys
class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(sys.argv[1])
connection = Unix("nginx", timeout=5)
connection.request("GET", "/metrics")
print(connection.getresponse().status)
PY
)
  [[ "$got" == "$expected" ]] || { echo "nginx_metrics_cost: /metrics answers $got, not $expected" >&2; exit 1; }
}

measure() {
  local label=$1 path=$2
  # wrk's own summary goes to stdout before the report line: keep the last line only.
  read -r rate p95 non2xx socket_errors < <(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s "$REPORT" "$URL$path" | tail -1)
  printf '%-13s %-10s %10s req/s   p95 %7s ms   non-2xx/3xx %6s   socket errors %s\n' \
    "$label" "$path" "$rate" "$p95" "$non2xx" "$socket_errors"
}

echo "nginx traffic metrics, cost on the hot path (wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $URL)"
for state in on off on; do
  nginx_metrics "$([[ $state == on ]] && echo true || echo false)"
  measure "metrics $state" /health
  measure "metrics $state" /ragops-bench-404
done
