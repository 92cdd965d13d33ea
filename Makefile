# Two entry points, both idempotent: `make quickstart` and `make test`.
# Set-up creates .venv in the repository and installs the pinned stack plus vlkd (editable).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.vlkd-installed
CONSTRAINTS := requirements/constraints.txt
PYTEST_ARGS ?=

.PHONY: setup quickstart test test-fast clean-venv

setup: $(STAMP)

# Re-run the install only when the pins or the package metadata change.
$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade -c $(CONSTRAINTS) pip setuptools wheel
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) --no-build-isolation -e ".[dev]"
	$(PY) -c "import vlkd, mmdet.models, mmseg.models, open_clip, transformers; print('vlkd', vlkd.__version__, 'ready')"
	touch $(STAMP)

quickstart: setup
	$(PY) tools/quickstart.py

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
