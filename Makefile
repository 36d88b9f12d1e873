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

.PHONY: install demo test lint bench clean

install: $(STAMP)

# The AMR-WB and Speex codec conditions call the reference libraries, which PyAV's wheels lack: on Debian/Ubuntu
# as root they are installed here; elsewhere install libvo-amrwbenc and libspeex yourself (their tests skip).
CODEC_LIBS := libvo-amrwbenc0 libspeex1

$(STAMP): setup.cfg pyproject.toml
	@if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	    ! { ldconfig -p | grep -q libvo-amrwbenc.so && ldconfig -p | grep -q libspeex.so; }; then \
	    apt-get install -y -qq --no-install-recommends $(CODEC_LIBS) >/dev/null 2>&1 || \
	    { apt-get update -qq && apt-get install -y -qq --no-install-recommends $(CODEC_LIBS); } || \
	    echo "note: could not install $(CODEC_LIBS); the AMR-WB and Speex conditions will be unavailable"; \
	fi
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

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
