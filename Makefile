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
# The demo always has AASIST: the official weights are bundled with the package. AASIST_WEIGHTS picks others
# (a file, or a name such as aasist-l; see `antispoof weights list`).
AASIST_WEIGHTS ?=
DEMO_ARGS ?= $(if $(AASIST_WEIGHTS),--weights $(AASIST_WEIGHTS))

.PHONY: install codec-libs demo test lint bench model-cards onnx-check clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[rawnet,dev]"
	@$(MAKE) --no-print-directory codec-libs
	touch $(STAMP)

# The AMR-WB and Speex codec conditions call the reference libraries, which PyAV's wheels lack; the package says
# which are missing (lfcc_gmm/lossy_codecs.py). Run as root where apt-get exists (Debian/Ubuntu), this installs
# them, refreshing the package lists only when the first try fails; when it cannot (no network, not root, no apt),
# a note says what to install and nothing fails: those conditions are refused, saying why, and their tests skip.
MISSING_CODEC_LIBS ?= $(BIN)/python -c "from lfcc_gmm.lossy_codecs import missing_system_packages as m; print(*m())"
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	-o DPkg::Lock::Timeout=120

codec-libs:
	@missing="$$($(MISSING_CODEC_LIBS))"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    { $(APT_INSTALL) $$missing || { apt-get update -qq && $(APT_INSTALL) $$missing; }; } >/dev/null 2>&1 \
	        && echo "installed $$missing (AMR-WB and Speex codec conditions)" && exit 0; \
	    echo "note: apt-get could not install $$missing (no network or package lists?); the AMR-WB and Speex" \
	         "codec conditions stay unavailable until they are installed (then: make codec-libs)" >&2; \
	else \
	    echo "note: $$missing not installed: the AMR-WB and Speex codec conditions need them" \
	         "(Debian/Ubuntu, as root: apt-get install $$missing; elsewhere your system's libvo-amrwbenc and" \
	         "libspeex)" >&2; \
	fi

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
