#!/bin/sh
# Runs as root, before nginx.
set -eu
run_dir="${RAGOPS_NGINX_RUN_DIR:-/run/ragops-nginx}"
state_dir="${RAGOPS_NGINX_STATE_DIR:-/var/lib/ragops-nginx/state}"

# A killed nginx leaves its unix socket behind in the bind-mounted run folder, and nginx refuses to
# bind over it ("Address already in use"). Only this container's nginx uses the folder.
rm -f "${run_dir}/admin.sock"

# The workers persist the live color (admin API, atomic rename) in the bind-mounted state folder.
if [ "$(stat -c %U "${state_dir}")" != ragops-nginx ]; then
    chown ragops-nginx:ragops-nginx "${state_dir}" 2>/dev/null \
        || echo "ragops-nginx: cannot hand ${state_dir} to the workers; PUT /live will fail to persist" >&2
fi

exec "$@"
