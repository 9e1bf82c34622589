#!/usr/bin/env bash
# Make PostgreSQL's server binaries available for the operator's tests (`make setup` runs this).
#
# The tests start their own throw-away cluster (initdb + pg_ctl on 127.0.0.1, a free port,
# tests/support/postgres.py) and stop it at the end: no system service is needed or started.
# If initdb is missing and this runs as root with apt-get (CI, a fresh Debian machine), it
# installs Debian's `postgresql` package without creating or starting the packaged `main`
# cluster. Otherwise it only says so: the PostgreSQL tests then skip, naming the reason.
set -euo pipefail

have_server() {
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null
}

if have_server; then
    exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null; then
    echo "ensure-postgres: no PostgreSQL server binaries and not root with apt-get:" \
        "the PostgreSQL tests will be skipped (install Debian's postgresql package to run them)" >&2
    exit 0
fi
started=$(date +%s)
# No `main` cluster: the tests make their own, and nothing should listen on 5432.
mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/zkmeter-no-main.conf
# Do not let the package start services (a container without init, or a machine with one).
policy_rc=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy_rc" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy_rc"
    chmod +x "$policy_rc"
    created_policy=1
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends postgresql >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends postgresql >/dev/null
fi
if [ "$created_policy" = 1 ]; then
    rm -f "$policy_rc"
fi
echo "ensure-postgres: installed Debian's postgresql in $(( $(date +%s) - started )) s" >&2
