# Two commands on a fresh clone: `make demo` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# On the project's build machines this resolves to a local CPU wheel; elsewhere override it,
# e.g. `make TORCH_SPEC='torch>=2.1' demo`, or install your own torch build first.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed
NOTEBOOK_STAMP := $(VENV)/.notebook-installed
PYTEST_ARGS ?=
# The demo adds AASIST when its weights are found: in the cache (`antispoof weights fetch aasist`), or in the
# project's reference folder when it sits beside the checkout.
AASIST_WEIGHTS ?= $(wildcard ../shared/reference/aasist/AASIST.pth)
DEMO_ARGS ?= $(if $(AASIST_WEIGHTS),--weights $(AASIST_WEIGHTS))

.PHONY: install demo test lint bench notebook docs clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[rawnet,dev]"
	touch $(STAMP)

demo: install
	$(BIN)/antispoof demo $(DEMO_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[rawnet,dev,bench]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/run_all.py

$(NOTEBOOK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[rawnet,dev,notebook]"
	touch $(NOTEBOOK_STAMP)

# JupyterLab on the teaching notebooks (notebooks/); the kernel is this virtual environment's Python.
notebook: $(NOTEBOOK_STAMP)
	$(BIN)/jupyter lab notebooks

# Execute every notebook headless and render it to docs/notebooks/ (Markdown + PNG); a test fails when a rendered
# copy is older than its notebook.
docs: $(NOTEBOOK_STAMP)
	$(BIN)/python docs/render_notebooks.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
