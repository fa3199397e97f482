PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export ZENREC_DATA ?= $(abspath ../shared/data)
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: demo test lint install clean system-deps bench bench-scale

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

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
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
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
	rm -rf $(VENV) build dist src/*.egg-info
