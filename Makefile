# The two commands: `make demo` (set up, build the demo capture, reconstruct it, show it)
# and `make test` (set up, run the whole test suite). Both start from nothing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test setup system-deps lint bench clean

setup: system-deps $(STAMP)

system-deps:
	@bash packaging/install-system-deps.sh

$(STAMP): pyproject.toml setup.py reconstruction/encoding/_hashgrid_cpu.c
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch is pinned to the CPU build that ships as a local wheel; see README for CUDA.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

demo: setup
	$(VENV)/bin/recon demo

test: setup
	$(VENV)/bin/lint-imports
	xvfb-run -a -s "-screen 0 1280x1024x24" $(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check reconstruction render app tests benchmarks

bench: setup
	@for b in benchmarks/*.py; do $(PY) $$b; done

clean:
	rm -rf $(VENV) .pytest_cache
