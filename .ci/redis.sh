#!/usr/bin/env bash
# Start (or stop) a throwaway Redis for the tests, from Debian's redis-server (like .ci/postgres.sh).
#   .ci/redis.sh start DIR PORT   -> prints the REDIS_URL
#   .ci/redis.sh stop DIR
set -euo pipefail
cmd=$1; dir=$2; port=${3:-56379}
case "$cmd" in
  start)
    command -v redis-server >/dev/null || { echo "找不到 redis-server（apt-get install redis-server）" >&2; exit 1; }
    rm -rf "$dir"; mkdir -p "$dir"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
      --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null
    for _ in $(seq 50); do
      redis-cli -p "$port" ping >/dev/null 2>&1 && break
      sleep 0.1
    done
    redis-cli -p "$port" ping >/dev/null
    echo "redis://127.0.0.1:$port/0"
    ;;
  stop)
    [ -f "$dir/redis.pid" ] && kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
    rm -rf "$dir"
    ;;
esac
