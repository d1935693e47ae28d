# Two commands on a fresh machine: `make demo` and `make test` (`make lint` checks style and import layering).
# Both create (or reuse) the project-local virtualenv .venv, installing torch 2.13.0 (CPU wheel)
# FIRST and then the locked set with torch constrained, so pip can never pull a CUDA build.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.lethe-installed
export HF_HUB_OFFLINE := 1
export ZENML_ANALYTICS_OPT_IN := false

.PHONY: demo test test-slow test-heavy lint venv lock clean-venv world

demo: $(STAMP)
	$(BIN)/lethe demo

# The default suite leaves out the tests marked slow (about 15 min on 2 cores); CI runs both.
test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m "slow and not heavy"

# Tests too long for CI next to the rest (the end-to-end release test: about 25 min on 2 cores).
test-heavy: $(STAMP)
	$(BIN)/python -m pytest -m heavy

# ruff ([tool.ruff]) and the import contracts ([tool.importlinter]) in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

venv: $(STAMP)

$(STAMP): requirements/lock.txt requirements/constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q torch==2.13.0
	$(BIN)/pip install --disable-pip-version-check -q -r requirements/lock.txt -c requirements/constraints.txt
	$(BIN)/pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Rebuild the toy world from fixed seeds (about 1.5 h on 2 CPU cores; resumes if interrupted).
world: $(STAMP)
	$(BIN)/lethe world build

# Re-resolve the top-level requirements and rewrite the lock (torch stays pinned by constraints).
lock: $(STAMP)
	$(BIN)/pip install -q -r requirements/base.txt -c requirements/constraints.txt
	$(BIN)/pip freeze --exclude-editable | grep -v '^torch==' > requirements/lock.txt

clean-venv:
	rm -rf $(VENV)
