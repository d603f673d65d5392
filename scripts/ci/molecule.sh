#!/usr/bin/env bash
# Every Molecule scenario (make test-molecule), each with the time it took, in the order this machine's one Docker
# engine allows, two side by side where nothing is shared:
#   1. default, alone: on a fresh machine its converge builds every image the others start from (the fleet pushes
#      them to its hosts), and its checks list every ragops-* container of the engine;
#   2. fleet beside anyapp: the fleet's stack runs in its hosts' own engines (Docker-in-Docker), on its own ports
#      (127.0.0.1:18080...) with its own test registry (ragops-fleet-registry, 127.0.0.1:5001); anyapp runs on this
#      engine's ragops-* stack. The fleet's output goes to a file, printed when both have ended;
#   3. faults, alone: it restarts this machine's Docker engine (pkill dockerd stops the fleet hosts' engines too).
# RAGOPS_MOLECULE_SIDE_BY_SIDE=false runs step 2 one after the other (to measure what running side by side costs).
set -euo pipefail
cd "$(dirname "$0")/../.."

ORDER=(default fleet anyapp faults)
mapfile -t found < <(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -n1 basename | sort)
if [[ "$(printf '%s\n' "${ORDER[@]}" | sort)" != "$(printf '%s\n' "${found[@]}")" ]]; then
  echo "test-molecule: the scenarios are ${found[*]}, but scripts/ci/molecule.sh runs ${ORDER[*]}: place the new one" >&2
  exit 2
fi

scenario() {
  local start=$SECONDS rc=0
  molecule test -s "$1" || rc=$?
  echo "test-molecule: scenario $1 $([[ $rc == 0 ]] && echo passed || echo "FAILED (rc $rc)") in $((SECONDS - start)) s"
  return "$rc"
}

scenario default

side_log=${TMPDIR:-/tmp}/ragops-molecule-fleet.log
step=$SECONDS
if [[ "${RAGOPS_MOLECULE_SIDE_BY_SIDE:-true}" == true ]]; then
  echo "test-molecule: fleet runs beside anyapp; its output: $side_log (printed below when both end)"
  scenario fleet >"$side_log" 2>&1 &
  fleet_pid=$!
  anyapp_rc=0
  scenario anyapp || anyapp_rc=$?
  fleet_rc=0
  wait "$fleet_pid" || fleet_rc=$?
  echo "test-molecule: ---- output of the fleet scenario ----"
  cat "$side_log"
  echo "test-molecule: ---- end of the fleet scenario ----"
  echo "test-molecule: fleet beside anyapp took $((SECONDS - step)) s"
  [[ $anyapp_rc == 0 && $fleet_rc == 0 ]]
else
  scenario fleet
  scenario anyapp
fi

scenario faults
