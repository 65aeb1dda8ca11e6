# Two commands: `make run` serves the demo at http://127.0.0.1:5000; `make test` runs the suite.
VENV   := .venv
PY     := $(VENV)/bin/python
FLASK  := $(VENV)/bin/flask --app app
PORT   ?= 5000
# uv installs the locked wheels in parallel (pip alone spends ~30 s of CPU on the same ~55 wheels);
# it is itself a wheel from the package index, so `make run` still needs only Python.
UV_PIN := uv==0.13.9

.PHONY: run test venv venv-dev lock db system-deps-run system-deps-test clean

# install REQS… with LOCKS as constraints: uv when it could be installed, else pip
define install
	@if [ -x $(VENV)/bin/uv ]; then \
	  $(VENV)/bin/uv pip install -q --python $(PY) $(addprefix -c ,$(2)) $(addprefix -r ,$(1)); \
	else \
	  $(VENV)/bin/pip install -q $(addprefix -c ,$(2)) $(addprefix -r ,$(1)); \
	fi
endef

$(PY):
	python3 -m venv $(VENV)

$(VENV)/bin/uv: | $(PY)
	-$(VENV)/bin/pip install -q --disable-pip-version-check $(UV_PIN)

# runtime packages only (requirements.txt), every version as pinned in requirements.lock
$(VENV)/.installed: requirements.txt requirements.lock | $(VENV)/bin/uv
	$(call install,requirements.txt,requirements.lock)
	touch $@

# test, bench and lint tools on top (requirements-dev.txt, pinned in requirements-dev.lock)
$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt requirements-dev.lock
	$(call install,requirements.txt requirements-dev.txt,requirements.lock requirements-dev.lock)
	touch $@

venv: $(VENV)/.installed

venv-dev: $(VENV)/.installed-dev

# Regenerate the lock files after changing requirements.txt or requirements-dev.txt (needs the index).
lock: $(VENV)/bin/uv
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

test: venv-dev system-deps-test
	bash .ci/test.sh

clean:
	rm -rf $(VENV) instance .pytest_cache
