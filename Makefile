# Two commands on a fresh clone: `make demo` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# On the project's build machines this resolves to a local CPU wheel; elsewhere override it,
# e.g. `make TORCH_SPEC='torch>=2.1' demo`, or install your own torch build first.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed
PYTEST_ARGS ?=
# The demo adds AASIST when its weights are found: in the cache (`antispoof weights fetch aasist`), or in the
# project's reference folder when it sits beside the checkout.
AASIST_WEIGHTS ?= $(wildcard ../shared/reference/aasist/AASIST.pth)
DEMO_ARGS ?= $(if $(AASIST_WEIGHTS),--weights $(AASIST_WEIGHTS))

.PHONY: install demo test lint bench model-cards clean

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

# docs/models/*.md from the cards in lfcc_gmm/cards.py (their numbers: docs/models/measure.py).
model-cards: install
	$(BIN)/python -c "from lfcc_gmm.cards import write_card_files; write_card_files('docs/models')"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
