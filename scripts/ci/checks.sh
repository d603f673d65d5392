#!/usr/bin/env bash
# The checks that need no Molecule stack (make test-checks), in two lanes side by side, each with its time:
#   A. the reference service's tests (test-app: unit, integration, image), then the collection's units (test-units);
#   B. ansible-lint (test-lint), then ansible-test sanity (test-sanity).
# Each is single-threaded Python: on this 2-core machine two lanes take about the time of the longer one. Lane B's
# output goes to a file, printed when both have ended. RAGOPS_CHECKS_SIDE_BY_SIDE=false runs them one after the other.
set -euo pipefail
cd "$(dirname "$0")/../.."

target() {
  local start=$SECONDS rc=0
  make --no-print-directory "$1" || rc=$?
  echo "test-checks: $1 $([[ $rc == 0 ]] && echo passed || echo "FAILED (rc $rc)") in $((SECONDS - start)) s"
  return "$rc"
}

lane_a() { target test-app && target test-units; }
lane_b() { target test-lint && target test-sanity; }

step=$SECONDS
if [[ "${RAGOPS_CHECKS_SIDE_BY_SIDE:-true}" != true ]]; then
  lane_a
  lane_b
  exit 0
fi
log=${TMPDIR:-/tmp}/ragops-checks-lint.log
lane_b >"$log" 2>&1 &
b_pid=$!
a_rc=0
lane_a || a_rc=$?
b_rc=0
wait "$b_pid" || b_rc=$?
echo "test-checks: ---- output of lint and sanity ----"
cat "$log"
echo "test-checks: ---- end of lint and sanity ----"
echo "test-checks: both lanes took $((SECONDS - step)) s"
[[ $a_rc == 0 && $b_rc == 0 ]]
