# Two commands: `make run` (install, then the default pipeline) and `make test` (install, then ruff and pytest).
# Both create .venv on first use and are idempotent. GPU users: make run TORCH="torch==2.13.0"
# with the CUDA wheel index of their choice, e.g. PIP_EXTRA_INDEX_URL=... make run TORCH=torch.
PYTHON  ?= python3
VENV    ?= .venv
TORCH   ?= torch==2.13.0
CONFIG  ?= config/config.yaml
CORES   ?= all
PYTEST_ARGS ?=

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test clean gpu-check

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

# CONFIG checked here, in one line: Snakemake reads a --configfile before the workflow starts, and
# reports a missing one with a traceback and an empty one without its name.
CONFIG_PROBLEM = $(shell $(BIN)/python -c 'import sys; from mdshortcut.config import config_file_problem as p; print(p(sys.argv[1]))' "$(CONFIG)")

run: $(STAMP)
	$(if $(CONFIG_PROBLEM),$(error make run: CONFIG=$(CONFIG_PROBLEM)))
	$(BIN)/snakemake all --cores $(CORES) --configfile $(CONFIG)

# the 25 slowest tests end the log: .ci/run calls this, and CI aims at under 20 minutes on 2 cores
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest --durations=25 $(PYTEST_ARGS)

# training's own step and sampling on the accelerator, timed (src/mdshortcut/pipeline/gpu_check.py);
# GPU_CHECK_ARGS="--csv results/reference/bench/gpu.csv" writes the figures
GPU_CHECK_ARGS ?=
gpu-check: $(STAMP)
	$(BIN)/python -m mdshortcut.pipeline.gpu_check --config $(CONFIG) $(GPU_CHECK_ARGS)

clean:
	rm -rf $(VENV) .snakemake
