#!/usr/bin/env bash
# The whole suite: on a throwaway PostgreSQL cluster (+ Redis) and on SQLite (+ the browser tests),
# the two at once (one per core), each with its own temporary folders. Both must pass.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
echo "== ruff (check + format)"
.venv/bin/ruff check . && .venv/bin/ruff format --check .
work=$(mktemp -d /tmp/huzhu-ci.XXXXXX)
mkdir -p "$work/tmp-pg" "$work/tmp-sqlite" "$work/artifacts-pg"
pgdir=$(mktemp -d /tmp/huzhu-pg.XXXXXX)  # (its own folder: the server runs as another user)
redisdir=$(mktemp -d /tmp/huzhu-redis.XXXXXX)
port=${PGTEST_PORT:-$((54000 + RANDOM % 900))}
trap 'bash .ci/postgres.sh stop "$pgdir"; bash .ci/redis.sh stop "$redisdir"; rm -rf "$work/tmp-pg" "$work/tmp-sqlite"' EXIT
url=$(bash .ci/postgres.sh start "$pgdir" "$port")
redis=$(bash .ci/redis.sh start "$redisdir" "$((port + 1000))")

# (the browser tests drive `make run`'s own server, on SQLite: they run once, in the SQLite part)
TEST_DATABASE_URL="$url" TEST_REDIS_URL="$redis" TEST_ARTIFACTS="$work/artifacts-pg" \
  $py -m pytest -q -p no:cacheprovider --durations=20 --basetemp="$work/tmp-pg" --ignore=tests/browser \
  --cov=rules --cov-branch --cov-report=term-missing:skip-covered --cov-fail-under=100 "$@" >"$work/pg.log" 2>&1 &
pg_pid=$!
TEST_DATABASE_URL="" TEST_REDIS_URL="" \
  $py -m pytest -q -p no:cacheprovider --durations=20 --basetemp="$work/tmp-sqlite" "$@" >"$work/sqlite.log" 2>&1 &
sqlite_pid=$!
pg_rc=0 sqlite_rc=0
wait $pg_pid || pg_rc=$?
wait $sqlite_pid || sqlite_rc=$?
echo "== PostgreSQL ($url) + Redis ($redis): background jobs on RQ — exit $pg_rc"
cat "$work/pg.log"
echo "== SQLite, no Redis: everything inline; the browser tests — exit $sqlite_rc"
cat "$work/sqlite.log"
[ "$pg_rc" -eq 0 ] && [ "$sqlite_rc" -eq 0 ]
