#!/usr/bin/env bash
# Start (or stop) a throwaway PostgreSQL cluster for the tests, from the Debian server binaries.
#   .ci/postgres.sh start DIR PORT   -> prints the DATABASE_URL of database "huzhu_test"
#   .ci/postgres.sh stop DIR
# As root the cluster runs as the unprivileged "postgres" user (created if missing).
set -euo pipefail
cmd=$1; dir=$2; port=${3:-54329}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bin/initdb" ] || { echo "找不到 PostgreSQL 服务器程序 (/usr/lib/postgresql/*/bin)" >&2; exit 1; }
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$cmd" in
  start)
    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
      useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    fi
    rm -rf "$dir"; mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100" start >/dev/null
    "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres huzhu_test
    echo "postgresql://postgres@127.0.0.1:$port/huzhu_test"
    ;;
  stop)
    [ -d "$dir/data" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
esac
