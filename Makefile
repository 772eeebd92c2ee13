# apt-book: the two commands of the README are `make book` and `make test`.
# Each sets up .venv on first use (torch first, alone: it must take the CPU wheel), then does its job.
# Re-running is quick: the venv is rebuilt only when pyproject.toml changes.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH_PIN := $(shell sed -n 's/^ *"\(torch==[^"]*\)",*$$/\1/p' pyproject.toml)
# PyTorch's CPU wheel index: on Linux, PyPI's torch is a CUDA build of several GB. Only torch comes from there
# (--no-deps); its pure-Python dependencies come with the rest from pip's own index in the next step. Where that
# index is out of reach, pip retries it a few times (warnings, ~10 s) and takes the wheel from the other sources it
# is configured with. `make book TORCH_INDEX=` uses pip's own index for torch too (e.g. a venv on a CUDA machine).
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
PROFILE ?= cpu
DEVICE ?= cpu
# glibc's default allocator makes QM9's large per-edge tensors 2-3x slower and unstable (TOOLCHAIN.md); the
# same values as apt/allocator.py, which gives them to `python -m apt`, scripts/execute_notebooks.py and Ray
# workers; exported here for pytest's own processes. APT_KEEP_ALLOCATOR=1 keeps glibc's defaults (less memory).
ifneq ($(APT_KEEP_ALLOCATOR),1)
export MALLOC_MMAP_MAX_ := 0
export MALLOC_TRIM_THRESHOLD_ := 100000000000
endif

.PHONY: setup book notebooks test results clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(if $(TORCH_INDEX),--no-deps --index-url $(TORCH_INDEX)) "$(TORCH_PIN)"
	$(PY) -m pip install --quiet -e ".[book,test]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# Execute every notebook of _toc.yml with papermill (profile $(PROFILE)), then build the HTML book with
# warnings as errors. Executed notebooks are written beside their .py sources (git-ignored).
book: $(STAMP)
	$(PY) scripts/execute_notebooks.py --profile $(PROFILE) --device $(DEVICE)
	$(VENV)/bin/jupyter-book build . -W -n --keep-going
	@echo "Book built: $(CURDIR)/_build/html/index.html"

# The test suite: unit, property, golden-value and end-to-end tests, then nbval over every notebook
# executed with the smoke profile (into _build/smoke-notebooks, which plain pytest never collects).
# nbval re-executes each notebook and compares its outputs with the papermill run's.
# Smoke records go to a fresh folder each time, so the notebooks always exercise training, never stale records.
test: $(STAMP)
	rm -rf _build/smoke-notebooks _build/smoke-results
	$(PY) scripts/execute_notebooks.py --profile smoke --out _build/smoke-notebooks --results-dir _build/smoke-results
	$(PY) -m pytest tests _build/smoke-notebooks --nbval -p no:cacheprovider

# Compute every committed `cpu` record that is missing (delete results/cpu first to recompute them all):
# the book's grids, APT ablations and SGD control (apt/grids.py; hours on 2 cores), then the runs the chapters train themselves.
# QM9 first, each run in a fresh process: one long process would keep QM9's heap growth (README, Memory); the
# rest in one process (a fresh one costs ~6 s per run to start).
results: $(STAMP)
	$(PY) -m apt grid --profile cpu --benchmarks qm9 --process-per-run
	$(PY) -m apt grid --profile cpu
	$(PY) scripts/execute_notebooks.py --profile cpu --out _build/results-notebooks

clean:
	rm -rf _build notebooks/*.ipynb
