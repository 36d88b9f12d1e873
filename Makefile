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
# The demo always has AASIST: the official weights are bundled with the package. AASIST_WEIGHTS picks others
# (a file, or a name such as aasist-l; see `antispoof weights list`).
AASIST_WEIGHTS ?=
DEMO_ARGS ?= $(if $(AASIST_WEIGHTS),--weights $(AASIST_WEIGHTS))

.PHONY: install codec-libs browser demo test lint bench notebook docs model-cards onnx-check clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[rawnet,serve,dev]"
	@$(MAKE) --no-print-directory codec-libs browser
	touch $(STAMP)

# System packages some features need, installed with apt-get as root where it exists (Debian/Ubuntu), refreshing the
# package lists only when the first try fails; when it cannot (no network, not root, no apt), a note says what to
# install and nothing fails: the features say what they miss and their tests skip.
# $(call apt-packages,COMMAND PRINTING THE MISSING PACKAGES,WHAT NEEDS THEM,WHAT TO INSTALL ELSEWHERE)
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	-o DPkg::Lock::Timeout=120
define apt-packages
	@missing="$$($(1))"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    { $(APT_INSTALL) $$missing || { apt-get update -qq && $(APT_INSTALL) $$missing; }; } >/dev/null 2>&1 \
	        && echo "installed $$missing ($(2))" && exit 0; \
	    echo "note: apt-get could not install $$missing (no network or package lists?); $(2) stay unavailable" \
	         "until they are installed (then: make $@)" >&2; \
	else \
	    echo "note: $$missing not installed: $(2) need them (Debian/Ubuntu, as root: apt-get install $$missing;" \
	         "elsewhere $(3))" >&2; \
	fi
endef

# The AMR-WB and Speex codec conditions call the reference libraries, which PyAV's wheels lack; the package says
# which are missing (lfcc_gmm/lossy_codecs.py). Without them those conditions are refused, saying why.
MISSING_CODEC_LIBS ?= $(BIN)/python -c "from lfcc_gmm.lossy_codecs import missing_system_packages as m; print(*m())"

codec-libs:
	$(call apt-packages,$(MISSING_CODEC_LIBS),the AMR-WB and Speex codec conditions,your system's libvo-amrwbenc and libspeex)

# The tests of `antispoof serve`'s web page drive a real headless Chromium through chromedriver (selenium); the
# browser is never downloaded at run time.
MISSING_BROWSER ?= for p in chromium:chromium chromedriver:chromium-driver; do \
	command -v $${p%%:*} >/dev/null 2>&1 || printf '%s ' $${p\#*:}; done

browser:
	$(call apt-packages,$(MISSING_BROWSER),the web page tests of antispoof serve,Chromium and its chromedriver)

demo: install
	$(BIN)/antispoof demo $(DEMO_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[rawnet,serve,dev,bench]"
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
# The torch-free route, proved in an environment of its own: the package with its [onnx] extra and no torch scores a
# clip with the bundled AASIST graph. Not part of `make test`: creating the environment took 2 min 44 s on the shared
# 2-core build machine (tests/test_onnx_scorers.py blocks torch from import in the test environment instead).
ONNX_VENV ?= .venv-onnx

onnx-check:
	$(PYTHON) -m venv $(ONNX_VENV)
	$(ONNX_VENV)/bin/python -m pip install --quiet -e ".[onnx]"
	@if $(ONNX_VENV)/bin/python -c "import torch" 2>/dev/null; then echo "torch is installed in $(ONNX_VENV)" >&2; exit 1; fi
	$(ONNX_VENV)/bin/antispoof score --scorer aasist-onnx --format json data/demo/flac/DEMO_E_0001.flac

# docs/models/*.md from the cards in lfcc_gmm/cards.py (their numbers: docs/models/measure.py).
model-cards: install
	$(BIN)/python -c "from lfcc_gmm.cards import write_card_files; write_card_files('docs/models')"

clean:
	rm -rf $(VENV) $(ONNX_VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
