PY ?= python
PIP ?= $(PY) -m pip

.PHONY: install test test-realpath demo lint

install:
	$(PIP) install -q -c constraints.txt -e ".[dev]"

# loadgroup: the real-path tier (one xdist group) shares its trained run on one worker
test: install
	$(PY) -m pytest -q -n 2 --dist loadgroup tests

# only the real-path tier: the README's commands on real paths (a few minutes on 2 cores)
test-realpath: install
	$(PY) -m pytest -q -m realpath tests

demo: install
	$(PY) -m modeling_lorat.cli demo --workdir demo_output

lint:
	ruff check . && ruff format --check .
