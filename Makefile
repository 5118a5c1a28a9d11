# Every target installs what it needs first, so each one works as the first command
# on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NETNS  := tests/netns-run
PYTEST := $(BIN)/python -m pytest

.PHONY: install peers test lint bench profile fuzz demo clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

peers:
	sh tests/install-peers.sh

# The whole suite, inside a private network namespace; every benchmark runs once too.
test: install peers
	$(NETNS) $(PYTEST) --benchmark-disable -q

lint: install
	$(BIN)/ruff check mdnsq tests bench fuzz demo
	$(BIN)/ruff format --check mdnsq tests bench fuzz demo
	$(BIN)/mypy --strict mdnsq

bench: install peers
	$(NETNS) $(PYTEST) bench -q --benchmark-only \
		--benchmark-columns=min,median,mean,stddev,rounds --benchmark-sort=name

# A throw-away network (tests/netns-run) with sample services, browsed by the mdnsq command.
demo: install
	$(NETNS) $(BIN)/python demo/run.py

# A long run of the parse_message fuzzer (atheris): one million inputs by default.
# Prints inputs tried, coverage (edges / features), the slowest input and crashes (exit 1 if any).
FUZZ_RUNS ?= 1000000
fuzz: install
	$(BIN)/python fuzz/run.py --runs $(FUZZ_RUNS) --report fuzz/artifacts/last-run.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .benchmarks bench/out

# The receive hot path under memray: per-packet allocations by site, and a flame graph of the
# short-lived (per-packet) allocations in bench/out/receive-flamegraph.html.
profile: install
	$(NETNS) env PYTHONPATH=. $(BIN)/python bench/memray_receive.py
