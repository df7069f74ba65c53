# Two entry points for a fresh machine: `make render` (the offline render of the dev
# stack) and `make test`. Both create the virtualenv and install pinned dependencies.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SCHEMAS := tools/istio-schemas
STACK ?= dev

.PHONY: deps render diff test lint bench clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(SCHEMAS)/node_modules/.installed: $(SCHEMAS)/package.json $(SCHEMAS)/package-lock.json
	npm ci --prefix $(SCHEMAS) --no-audit --no-fund --loglevel=error
	node $(SCHEMAS)/validate.mjs --warm
	touch $@

deps: $(VENV)/.installed $(SCHEMAS)/node_modules/.installed

render: deps
	$(PY) -m stacks render --stack $(STACK)

diff: deps
	$(PY) -m stacks diff --stack $(STACK) $(ARGS)

lint: $(VENV)/.installed
	$(PY) -m ruff check .

test: deps lint
	$(PY) -m pytest -q

bench: deps
	$(PY) scripts/benchmark.py

clean:
	rm -rf $(VENV) $(SCHEMAS)/node_modules out
