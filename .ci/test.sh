#!/usr/bin/env bash
# The whole suite: on a throwaway PostgreSQL cluster, then on SQLite. Both must pass.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
echo "== ruff (check + format)"
.venv/bin/ruff check . && .venv/bin/ruff format --check .
pgdir=$(mktemp -d /tmp/huzhu-pg.XXXXXX)
redisdir=$(mktemp -d /tmp/huzhu-redis.XXXXXX)
port=${PGTEST_PORT:-$((54000 + RANDOM % 900))}
trap 'bash .ci/postgres.sh stop "$pgdir"; bash .ci/redis.sh stop "$redisdir"' EXIT
url=$(bash .ci/postgres.sh start "$pgdir" "$port")
redis=$(bash .ci/redis.sh start "$redisdir" "$((port + 1000))")
echo "== PostgreSQL ($url) + Redis ($redis): background jobs on RQ"
# (the browser tests drive `make run`'s own server, on SQLite: they run once, in the second part)
TEST_DATABASE_URL="$url" TEST_REDIS_URL="$redis" $py -m pytest -q -p no:cacheprovider --ignore=tests/browser \
  --cov=rules --cov-branch --cov-report=term-missing:skip-covered --cov-fail-under=100 "$@"
echo "== SQLite, no Redis: everything inline; the browser tests"
TEST_DATABASE_URL="" TEST_REDIS_URL="" $py -m pytest -q -p no:cacheprovider "$@"
