#!/usr/bin/env bash
# Real database peers for the SQL and ClickHouse pull-source tests (connectors/tests/pull_databases.rs,
# engine/server/tests/pull_sql.rs): PostgreSQL (initdb, pg_ctl), MariaDB (mariadb-install-db,
# mariadbd) and ClickHouse (Debian's clickhouse-server, 18.16 on bookworm). The tests start their
# own servers in temp dirs on free ports and stop them; nothing here starts a service.
# Idempotent: installs only what is missing, one line per install. MongoDB has no server package
# in Debian's repositories (and PyPI's helpers download binaries at run time), so there is none.
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ] || need+=(clickhouse-server)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  for pkg in "${need[@]}"; do
    echo "installing test peer: $pkg"
    # clickhouse-server may be missing from a mirror: the ClickHouse tests then say they skip.
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null \
      || { [ "$pkg" = clickhouse-server ] && echo "clickhouse-server is not installable here; the ClickHouse tests will skip"; }
  done
fi
