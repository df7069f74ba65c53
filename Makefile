# Two entry points for a fresh machine with Python 3.11 and make: `make render` (the offline
# render of the dev stack) and `make test`. Both install uv, then the locked dependencies.

PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/uv/bin/uv
VENV := .venv
BIN := $(VENV)/bin
STACK ?= dev

.PHONY: all deps tools render diff test lint workflows renovate docs bench mutation clean

all: deps

# uv comes from PyPI, pinned, into a folder of its own. pip --target never touches the
# interpreter's own packages, so PEP 668's guard has nothing to protect here.
$(UV):
	PIP_BREAK_SYSTEM_PACKAGES=1 $(PYTHON) -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
		--target .tools/uv uv==$(UV_VERSION)

# Always synced: `pulumi up` syncs .venv to the runtime dependencies alone, and this puts
# the development group back (a no-op, ~0.1 s, when nothing changed).
deps: $(UV)
	$(UV) sync --locked --group dev --quiet

# The real tools the tests judge the output with: istioctl of each Istio minor, helm, a
# kube-apiserver with etcd, and Pulumi's own stack-config loader. Each is taken from PATH at
# its pinned version, else from the machine's cache, else built with go (scripts/tools.py).
tools: deps
	$(BIN)/python scripts/tools.py ensure

render: deps
	$(BIN)/bookinfo-mesh render --stack $(STACK)

diff: deps
	$(BIN)/bookinfo-mesh diff --stack $(STACK) $(ARGS)

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check --quiet .

# The GitHub workflows: no medium or high security finding, and valid against GitHub's schema.
workflows: deps
	$(BIN)/zizmor --offline --min-severity medium --no-progress .github/workflows
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

# renovate.json: Renovate's own validator where npm is (cached outside the checkout), else
# Renovate's JSON schema.
renovate: deps
	$(BIN)/python scripts/check_renovate.py

# Bytecode of what the suite imports is kept even where PYTHONDONTWRITEBYTECODE is set: each
# worker and each CLI subprocess would compile the same SDK modules again. (uv compiles none
# at install: all 8,050 files of the locked packages took 22 s, and a run imports a few.)
test: lint workflows renovate tools
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -q -n auto --dist loadgroup

# Rewrites every output sample in README.md and docs/ from the command it shows.
docs: deps
	$(BIN)/python scripts/docs.py

bench: deps
	$(BIN)/python scripts/benchmark.py

# Not part of `make test`: plants small bugs and checks the tests catch them (see README).
# From scratch each time: mutmut's incremental rerun keeps results of tests that have changed
# since (`.venv/bin/mutmut run` is that quicker, staler loop).
mutation: deps
	rm -rf mutants
	$(BIN)/python scripts/mutation.py

clean:
	rm -rf $(VENV) .tools out mutants
