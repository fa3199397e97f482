PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TORCH := torch==2.13.0
# What a fresh install resolved to (`make lock` refreshes it); `make install` installs exactly that.
LOCK := requirements.lock
LOCK_VENV := build/lock-venv
export ZENREC_DATA ?= $(abspath ../shared/data)
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: demo test lint install lock typecheck docs clean system-deps bench bench-scale

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/pip install --quiet -c $(LOCK) $(TORCH)
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Re-resolve every dependency in a fresh venv (no lock) and write what it got to $(LOCK).
# Run after changing dependencies in pyproject.toml; commit the new lock with that change.
lock:
	rm -rf $(LOCK_VENV)
	$(PY) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/pip install --quiet $(TORCH)
	$(LOCK_VENV)/bin/pip install --quiet -e '.[dev]'
	{ echo "# What 'pip install $(TORCH) -e .[dev]' resolved to on $$(date -u +%Y-%m-%d) (Python $$($(LOCK_VENV)/bin/python -c 'import sys; print(sys.version.split()[0])'))."; \
	  echo "# Used as pip constraints by 'make install/test/demo'. Regenerate with 'make lock'."; \
	  echo "# Local version labels (torch's +cpu/+cu12x build tags) are dropped so any build of a version matches."; \
	  $(LOCK_VENV)/bin/pip freeze --exclude-editable | grep -v '^zenrec' | sed -E 's/^([A-Za-z0-9_.-]+==[^+ ]+)\+[A-Za-z0-9.]+/\1/'; \
	} > $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK)
	rm -rf $(LOCK_VENV)
	@echo "wrote $(LOCK): $$(grep -vc '^#' $(LOCK)) pinned packages"

# Headless Chromium renders the HTML reports in the report tests (Debian's package).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; the HTML report browser test will be skipped"; \
	  else echo "warning: chromium not found (apt-get install chromium); the HTML report browser test will be skipped"; fi; }

demo: $(STAMP)
	$(BIN)/zenrec quickstart

test: $(STAMP) system-deps
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(MAKE) --no-print-directory docs
	$(BIN)/python -m pytest -q

# Static types of src/ (settings in pyproject.toml [tool.mypy]).
typecheck: $(STAMP)
	$(BIN)/mypy

# The documentation site (docs/ + an API reference from the docstrings) in site/; warnings fail.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/ruff format --check src tests benchmarks

# Performance suite (docs/results/perf.md + perf.json): yardstick, EASE vs RecBole, cold
# evaluation, neural defaults. One section at a time under the shared benchmark lock, so no
# section holds it long; RecBole runs from benchmarks/.venv-recbole (setup_peers.sh) when present.
BENCH_REPEATS ?= 5
bench: $(STAMP)
	-bash benchmarks/peers/setup_peers.sh recbole
	for s in yardstick ease ease_peer cold neural; do \
	  env -u OPENBLAS_NUM_THREADS flock /tmp/zenrec-bench.lock $(BIN)/python benchmarks/perf.py \
	    --only $$s --repeats $(BENCH_REPEATS) --peers || exit 1; done

# Scaling curve (docs/results/scale.md): synthetic logs in /tmp, never in the repository.
SCALE_SIZES ?= 1M 5M 20M
bench-scale: $(STAMP)
	env -u OPENBLAS_NUM_THREADS flock /tmp/zenrec-bench.lock $(BIN)/python benchmarks/scale.py --sizes $(SCALE_SIZES)

clean:
	rm -rf $(VENV) build dist site src/*.egg-info
