# mmtutorial: two commands for a new user (`make lab`, `make test`); the rest for authors.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
# Tests run on every core, one torch thread each (two threads per job on two cores made
# training steps 6-13x slower than one).
JOBS ?= $(shell $(PYTHON) -c "import os; print(min(4, os.cpu_count() or 1))")

.PHONY: help setup kernel lab run refresh test lint classroom site browser clean

help:
	@echo "make lab      set up .venv, register the Jupyter kernel, open JupyterLab on notebooks/"
	@echo "make test     set up, then lint + unit tests + every notebook once in smoke mode (all checks)"
	@echo "make run      set up, then execute every notebook (default parameters) into build/executed/"
	@echo "make refresh  re-execute every notebook in place so committed outputs are current"
	@echo "make classroom  student edition (stubs) + solutions + exercise lists into build/classroom/"
	@echo "make site     the executed notebooks as a static web site in build/site/"

setup: $(STAMP)

# Reinstall when pyproject.toml changes; the package itself is editable.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

kernel: setup
	$(BIN)/python -m ipykernel install --user --name mmtutorial --display-name "Python (mmtutorial)"

# Jupyter refuses to run as root unless told (containers, cloud VMs).
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: kernel
	$(BIN)/jupyter lab notebooks/ $(ROOT_FLAG)

run: setup
	$(BIN)/python -m mmtutorial.experiments run $(NOTEBOOKS) --out build/executed

refresh: setup
	$(BIN)/python -m mmtutorial.experiments run $(NOTEBOOKS) --in-place

lint: setup
	$(BIN)/ruff check mmtutorial tests data benchmarks notebooks

classroom: setup
	$(BIN)/python -m mmtutorial.classroom

site: setup
	$(BIN)/python -m mmtutorial.site

# The site's browser test needs Debian's chromium (Playwright drives it; nothing is downloaded by Playwright).
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || [ -n "$$MMTUTORIAL_CHROMIUM" ] || \
	  { echo "installing chromium for the site's browser test"; \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 || \
	    { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }; }

test: setup lint browser
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(JOBS)

clean:
	rm -rf build .pytest_cache .ruff_cache
