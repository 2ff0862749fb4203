# mmtutorial: two commands for a new user (`make lab`, `make test`); `make check` checks a
# setup in minutes; the rest is for authors and instructors. `make help` lists them all.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
# Tests run on every core (up to 4), one torch thread each: two threads per job on two
# cores made training steps 6-13x slower than one.
JOBS ?= $(shell $(PYTHON) -c "import os; print(min(4, os.cpu_count() or 1))")
# Extra arguments for JupyterLab, e.g. make lab LAB_ARGS="--ip 0.0.0.0 --port 8888 --no-browser"
LAB_ARGS ?=

.PHONY: help setup kernel lab run refresh check test lint format classroom site browser clean

help:
	@echo "make lab        set up .venv (first time: ~5 GB, 1-10 min), register the kernel, open JupyterLab"
	@echo "                (remote or classroom server: make lab LAB_ARGS=\"--ip 0.0.0.0 --port 8888 --no-browser\")"
	@echo "make check      check your setup in about 3 minutes: lint, fast unit tests, notebook 00 in smoke mode"
	@echo "make test       the whole suite (11-14 minutes on 2 cores): every test, every notebook once in smoke mode"
	@echo "make run        execute every notebook (default parameters) into build/executed/"
	@echo "make refresh    re-execute every notebook in place so committed outputs are current"
	@echo "make classroom  student edition (stubs) + solutions + exercise lists into build/classroom/"
	@echo "make site       the executed notebooks as a static web site in build/site/ (a small install)"
	@echo "make format     ruff format the package, tests, benchmarks and notebooks"

setup: $(STAMP)

# Reinstall when pyproject.toml or the excluded packages change; the package itself is editable.
$(STAMP): pyproject.toml tools/uv-excludes.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing into $(VENV)/: about 5 GB (PyTorch is most of it), 1-10 minutes the first time."
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	@# uv installs the same pinned packages as pip in a fraction of the time (parallel
	@# downloads and unpacking); it reads PyPI, not pip's config, so where only a mirror set
	@# up for pip can be reached, pip does the install instead. --excludes leaves out what
	@# tools/uv-excludes.txt lists, and says why.
	$(BIN)/uv pip install --excludes tools/uv-excludes.txt --python $(BIN)/python -e '.[dev]' \
		|| $(BIN)/python -m pip install -e '.[dev]'
	@# The .pyc files: without them every new process (each kernel, each sweep point)
	@# compiles torch's sources again wherever PYTHONDONTWRITEBYTECODE is set. Packages'
	@# test folders and transformers' models other than those MiniLM loads are never
	@# imported: a third of the files, skipped (uv's --compile-bytecode compiled them all, in
	@# 40-80 s on this disk-bound machine). A file that fails to compile is compiled on import.
	$(BIN)/python -m compileall -q -j 0 -x '/tests/|/transformers/models/(?!auto/|bert/|encoder_decoder/)' $(VENV)/lib >/dev/null || true
	@# nbgrader (for the tests and instructors) stays out of a learner's JupyterLab menus;
	@# instructors: .venv/bin/jupyter labextension enable @jupyter/nbgrader
	@$(BIN)/jupyter labextension disable --level=sys_prefix @jupyter/nbgrader >/dev/null 2>&1 || true
	@$(BIN)/python -c "import mmtutorial, torch" || { echo "setup failed: see the install output above"; exit 1; }
	@touch $@

kernel: setup
	$(BIN)/python -m ipykernel install --user --name mmtutorial --display-name "Python (mmtutorial)"

# Jupyter refuses to run as root unless told (containers, cloud VMs).
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: kernel
	$(BIN)/jupyter lab notebooks/ $(ROOT_FLAG) $(LAB_ARGS)

run: setup
	$(BIN)/python -m mmtutorial.experiments run $(NOTEBOOKS) --out build/executed

refresh: setup
	$(BIN)/python -m mmtutorial.experiments run $(NOTEBOOKS) --in-place

lint: setup
	$(BIN)/ruff check mmtutorial tests data benchmarks notebooks tools
	$(BIN)/ruff format --check mmtutorial tests data benchmarks notebooks tools

format: setup
	$(BIN)/ruff format mmtutorial tests data benchmarks notebooks tools

# The quick lane: is this setup working? (The whole suite is `make test`.)
check: setup lint
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(JOBS) --dist worksteal -m "not slow and not notebook and not browser"
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest tests/test_notebooks.py -k "smoke_mode and 00_welcome"

classroom: setup
	$(BIN)/python -m mmtutorial.course.classroom

# The site needs only nbconvert: without the full setup it builds from a small environment.
SITE_VENV := .venv-site
site:
	@if [ -f $(STAMP) ]; then $(BIN)/python -m mmtutorial.course.site; else \
	  test -x $(SITE_VENV)/bin/python || $(PYTHON) -m venv $(SITE_VENV); \
	  echo "Installing the site's tools into $(SITE_VENV)/ (about 60 MB; PyTorch is not needed)"; \
	  $(SITE_VENV)/bin/python -m pip install --quiet --no-deps -e . && \
	  $(PYTHON) tools/extra_requirements.py site | xargs $(SITE_VENV)/bin/python -m pip install --quiet && \
	  $(SITE_VENV)/bin/python -m mmtutorial.course.site; fi

# The browser tests (site, JupyterLab) drive Debian's chromium with Playwright (which
# downloads nothing). Checked first, so a missing browser stops `make test` before any test.
browser:
	@$(PYTHON) tools/find_chromium.py --install

test: browser setup lint
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(JOBS) --dist worksteal --durations=30

clean:
	rm -rf build .pytest_cache .ruff_cache $(SITE_VENV)
