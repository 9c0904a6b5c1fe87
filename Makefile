PY ?= python
PIP ?= $(PY) -m pip

.PHONY: install test demo lint

install:
	$(PIP) install -q -c constraints.txt -e ".[dev]"

test: install
	$(PY) -m pytest -q -n 2 tests

demo: install
	$(PY) -m modeling_lorat.cli demo --workdir demo_output

lint:
	ruff check . && ruff format --check .
