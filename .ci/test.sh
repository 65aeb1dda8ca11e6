#!/usr/bin/env bash
# The whole suite: on a throwaway PostgreSQL cluster, then on SQLite. Both must pass.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
echo "== ruff (check + format)"
.venv/bin/ruff check . && .venv/bin/ruff format --check .
pgdir=$(mktemp -d /tmp/huzhu-pg.XXXXXX)
port=${PGTEST_PORT:-$((54000 + RANDOM % 900))}
trap 'bash .ci/postgres.sh stop "$pgdir"' EXIT
url=$(bash .ci/postgres.sh start "$pgdir" "$port")
echo "== PostgreSQL ($url)"
TEST_DATABASE_URL="$url" $py -m pytest -q -p no:cacheprovider \
  --cov=rules --cov-branch --cov-report=term-missing:skip-covered --cov-fail-under=100 "$@"
echo "== SQLite"
TEST_DATABASE_URL="" $py -m pytest -q -p no:cacheprovider "$@"
