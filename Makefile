# Two commands: `make run` serves the demo at http://127.0.0.1:5000; `make test` runs the suite.
VENV   := .venv
PY     := $(VENV)/bin/python
FLASK  := $(VENV)/bin/flask --app app
PORT   ?= 5000
HOST   ?= 127.0.0.1
WORKERS ?= 4
# The venv keeps its bytecode cache even where PYTHONDONTWRITEBYTECODE is set: without it every
# `flask` command below compiles its ~650 imported modules again (several seconds of CPU each).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run serve worker test venv venv-dev lock db system-deps-run system-deps-test clean

# runtime packages only (requirements.txt), every version as pinned in requirements.lock
$(VENV)/.installed: requirements.txt requirements.lock .ci/venv.sh
	bash .ci/venv.sh $(VENV) -c requirements.lock -r requirements.txt
	touch $@

# test, bench and lint tools on top (requirements-dev.txt, pinned in requirements-dev.lock)
$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt requirements-dev.lock
	bash .ci/venv.sh $(VENV) -c requirements.lock -c requirements-dev.lock -r requirements.txt -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

venv-dev: $(VENV)/.installed-dev

# Regenerate the lock files after changing requirements.txt or requirements-dev.txt (needs the index).
lock: venv
	$(VENV)/bin/uv pip compile -q --python $(PY) requirements.txt -o requirements.lock
	$(VENV)/bin/uv pip compile -q --python $(PY) requirements-dev.txt -c requirements.lock -o requirements-dev.lock

system-deps-run:
	@bash .ci/system-deps.sh run

system-deps-test:
	@bash .ci/system-deps.sh test

db: venv
	$(FLASK) db upgrade
	$(FLASK) demo-data --if-empty

run: venv system-deps-run db
	SMS_BACKEND=$${SMS_BACKEND:-console} $(FLASK) run --host 127.0.0.1 --port $(PORT)

# Production: gunicorn, WORKERS processes of create_app(), on PostgreSQL (README: 生产部署).
serve: venv system-deps-run
	@case "$${DATABASE_URL:-}" in postgres*) ;; *) echo "make serve 需要 PostgreSQL 数据库，例如：DATABASE_URL=postgresql://huzhu@127.0.0.1/huzhu make serve" >&2; exit 2;; esac
	$(FLASK) db upgrade
	$(VENV)/bin/gunicorn --config gunicorn.conf.py --bind $(HOST):$(PORT) --workers $(WORKERS)

# Background jobs (big batch files): one RQ worker; run several, on any machine, for more at once.
worker: venv system-deps-run
	@[ -n "$${REDIS_URL:-}" ] || { echo "make worker 需要 Redis：REDIS_URL=redis://127.0.0.1:6379/0 make worker" >&2; exit 2; }
	$(FLASK) worker

test: venv-dev system-deps-test
	bash .ci/test.sh

clean:
	rm -rf $(VENV) instance .pytest_cache
