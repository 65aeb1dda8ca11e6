# Two commands: `make run` serves the demo at http://127.0.0.1:5000; `make test` runs the suite.
VENV   := .venv
PY     := $(VENV)/bin/python
FLASK  := $(VENV)/bin/flask --app app
PORT   ?= 5000

.PHONY: run test venv db system-deps-run system-deps-test clean

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

venv: $(VENV)/.installed

system-deps-run:
	@bash .ci/system-deps.sh run

system-deps-test:
	@bash .ci/system-deps.sh test

db: venv
	$(FLASK) db upgrade
	$(FLASK) demo-data --if-empty

run: venv system-deps-run db
	SMS_BACKEND=$${SMS_BACKEND:-console} $(FLASK) run --host 127.0.0.1 --port $(PORT)

test: venv system-deps-test
	bash .ci/test.sh

clean:
	rm -rf $(VENV) instance .pytest_cache
