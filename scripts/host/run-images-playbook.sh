#!/usr/bin/env bash
# Runs playbooks/images.yml on this machine (inventories/local) with the checkout's .venv: the host scripts build
# images through the roles, like site.yml and deploy.yml do. Arguments go to ansible-playbook (--tags, -e ...).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PLAYBOOK=$ROOT/.venv/bin/ansible-playbook
if [[ ! -x "$PLAYBOOK" ]]; then
  echo "run-images-playbook: $PLAYBOOK is missing; run make setup (scripts/host/setup-python.sh)" >&2
  exit 1
fi
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH" ANSIBLE_CONFIG="$ROOT/ansible.cfg" ANSIBLE_COLLECTIONS_PATH="$ROOT/collections"
exec "$PLAYBOOK" -i inventories/local/hosts.yml playbooks/images.yml "$@"
