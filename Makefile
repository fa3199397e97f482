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

.PHONY: demo test lint install lock typecheck docs clean system-deps bench bench-scale \
	bench-serve bench-traffic bench-accuracy bench-sequential

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
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
	      || echo "warning: could not install postgresql; the PostgreSQL event-store and tuning tests will be skipped"; \
	  else echo "warning: PostgreSQL not found (apt-get install postgresql); its tests will be skipped"; fi; }

demo: $(STAMP)
	$(BIN)/zenrec quickstart

test: $(STAMP) system-deps
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
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

# ---- benchmarks (benchmarks/README.md lists every script, its question and its page) ----
# Run one target at a time on a quiet machine; each runs its sections one after the other.
# The repository's peers live in benchmarks/.venv-* (setup_peers.sh); zenrec finds them through
# these variables (an installed zenrec reads the same ones).
PEERS := ZENREC_PEER_PYTHON_RECBOLE=$(abspath benchmarks/.venv-recbole/bin/python) \
	ZENREC_PEER_PYTHON_SURPRISE=$(abspath benchmarks/.venv-surprise/bin/python)
GOLDEN_ML1M = $(ZENREC_DATA)/golden/ml-1m-recbole-split
BENCH_REPEATS ?= 5

# Performance and side by side with the peers: perf.md/json (yardstick, EASE vs RecBole, cold
# evaluation, neural defaults), eval_speed.json, classic.md/json, rating.md/json, RecBole neural.
bench: $(STAMP)
	-bash benchmarks/peers/setup_peers.sh recbole surprise >/dev/null
	env -u OPENBLAS_NUM_THREADS $(PEERS) $(BIN)/python benchmarks/perf.py --repeats $(BENCH_REPEATS) --peers
	$(PEERS) $(BIN)/python benchmarks/eval_speed.py --repeats 7
	$(PEERS) $(BIN)/python benchmarks/classic_side_by_side.py --repeats $(BENCH_REPEATS)
	$(PEERS) $(BIN)/python benchmarks/rating_side_by_side.py --repeats 3
	$(PEERS) $(BIN)/python benchmarks/peers/recbole_neural.py --split-dir $(GOLDEN_ML1M)

# Scaling curve (docs/results/scale.md): synthetic logs in /tmp, never in the repository.
SCALE_SIZES ?= 1M 5M 20M
bench-scale: $(STAMP)
	env -u OPENBLAS_NUM_THREADS $(BIN)/python benchmarks/scale.py --sizes $(SCALE_SIZES)

# Serving (docs/results/serving-loadtest.md): the load generator's ceiling, then zenrec serve
# under zenrec loadtest; retrieval on 1M items x 64 dims (JSON beside the load tests).
bench-serve: $(STAMP)
	$(BIN)/python benchmarks/loadgen_ceiling.py --output runs/loadgen_ceiling.json
	bash benchmarks/serve_loadtest.sh
	$(BIN)/zenrec perf retrieval --items 1000000 --dim 64 --queries 300 --m 16 \
	  --ef-construction 40 --ef 64,128,256,512 --json runs/serve-loadtest/retrieval-1m.json

# Traffic (docs/results/traffic.md/json): forecasts, surge detection, autoscaling replays, speed.
bench-traffic: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/traffic_eval.py

# Accuracy grids (docs/results/{recbole-ml1m,recbole-ml100k,msrec-ml100k,surprise-ml100k,
# accuracy}.md): zenrec benchmark on each config, then zenrec report. Hours on 2 cores.
ACCURACY_CONFIGS ?= recbole-ml100k msrec-ml100k surprise-ml100k recbole-ml1m accuracy-ml100k \
	accuracy-ml100k-defaults accuracy-ml100k-peers accuracy-ml1m accuracy-ml1m-peers \
	accuracy-ml1m-ensemble-auto
bench-accuracy: $(STAMP)
	-bash benchmarks/peers/setup_peers.sh recbole surprise >/dev/null
	for c in $(ACCURACY_CONFIGS); do \
	  $(PEERS) $(BIN)/zenrec benchmark benchmarks/$$c.toml --output-dir runs/$$c --quiet \
	    && $(BIN)/zenrec report runs/$$c || exit 1; done

# Sequential, multi-task and CTR models (docs/results/sequential.md).
bench-sequential: $(STAMP)
	-bash benchmarks/peers/setup_peers.sh recbole >/dev/null
	$(PEERS) bash benchmarks/sequential_all.sh runs/sequential

clean:
	rm -rf $(VENV) build dist site src/*.egg-info
