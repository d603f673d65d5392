#!/usr/bin/env bash
# Installs the Debian packages a build/test host needs. Idempotent: skips apt when all are present.
set -euo pipefail

PACKAGES=(docker.io debootstrap redis-server wrk hey curl jq shellcheck)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if ((${#missing[@]})); then
  echo "install-host-packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "install-host-packages: all present"
fi
