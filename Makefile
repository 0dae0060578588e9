# The two commands: `make run` (everything, in the foreground) and `make test`.
SHELL := bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test test-fast test-workflow lint venv test-tools demo bench clean

run: venv
	@scripts/ensure-temporal-cli.sh >/dev/null
	$(BIN)/python -m devtools.run

test: venv test-tools lint
	$(BIN)/pytest

# The rules, the statement, the client file, the clock, the layering and the replay of
# every recorded history: no server, seconds. `make test` runs these and everything else.
test-fast: venv
	@TIMEFORMAT='fast tier: %Rs'; time $(BIN)/pytest tests/unit tests/replay -q

# Every branch of the process on Temporal's time-skipping server, activities stubbed by
# name (tests/workflow): weeks of calendar in seconds.
test-workflow: venv
	@TIMEFORMAT='workflow tier: %Rs'; time $(BIN)/pytest tests/workflow -q

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $@

test-tools:
	@scripts/ensure-temporal-cli.sh >/dev/null
	@scripts/ensure-test-server.sh >/dev/null
	@scripts/ensure-compose-schema.sh >/dev/null
	@scripts/ensure-chromium.sh >/dev/null
	@scripts/ensure-minio.sh >/dev/null
	@scripts/ensure-temporal-server.sh >/dev/null
	@scripts/ensure-temporal-ui.sh >/dev/null

# Not part of `make test`: minutes of load on the whole machine.
# `make bench` runs the whole benchmark (about 45 minutes on 2 cores); BENCH_ARGS narrows
# it, e.g. make bench BENCH_ARGS="--n 100 --reps 1 --open 500 --portal-seconds 0".
bench: venv
	@scripts/ensure-temporal-cli.sh >/dev/null
	$(BIN)/python -m pip install -q -e ".[dev,bench]"
	$(BIN)/python -m bench.run $(BENCH_ARGS)

demo: venv
	$(BIN)/python -m devtools.demo

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# The message fuzzer's deep run (issue 20): 3,000 generated signals and updates against a
# real worker process (make test runs 500). Prints how many examples ran and how long.
.PHONY: fuzz-deep
fuzz-deep: venv
	@TIMEFORMAT='fuzz-deep: %Rs in all'; time FUZZ_EXAMPLES=3000 \
		$(BIN)/pytest tests/integration/test_message_fuzz.py -q -s -p no:cacheprovider

# A real Temporal cluster on PostgreSQL, without Docker (docs/cluster.md): PostgreSQL, the
# schema and namespace through deploy/temporal/*.sh as compose runs them, two server hosts
# and the Web UI, until Ctrl-C; CLUSTER_ARGS e.g. "--keep --log-level info". The first run
# builds the server once into the cache (about 7 minutes on 2 cores).
.PHONY: cluster test-cluster
cluster: venv
	@scripts/ensure-temporal-cli.sh >/dev/null
	@scripts/ensure-temporal-server.sh >/dev/null
	@scripts/ensure-temporal-ui.sh >/dev/null
	$(BIN)/python -m devtools.cluster $(CLUSTER_ARGS)

# The cluster tier (tests/cluster) alone; `make test` runs it after the rest.
test-cluster: venv
	@scripts/ensure-temporal-cli.sh >/dev/null
	@scripts/ensure-temporal-server.sh >/dev/null
	@TIMEFORMAT='cluster tier: %Rs'; time $(BIN)/pytest tests/cluster -q
