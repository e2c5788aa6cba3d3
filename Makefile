# Two commands for a newcomer:  `make demo` runs the default experiment, `make test` runs the tests.
# Both create .venv and install the project on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The shared real data beside the project (tests and CI never download).
SHARED_DATA := $(abspath ../shared/data)
export SCRATCHNN_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)/mnist),$(SHARED_DATA),)
export CUDA_VISIBLE_DEVICES ?=
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test test-slow bench bench-quick report ui

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,torch,harness]"
	$(PY) -m pip uninstall -y -q hydra-optuna-sweeper 2>/dev/null || true  # replaced by hydra_plugins/scratchnn_optuna
	touch $@

demo: $(VENV)/.installed
	$(PY) -m experiments.train $(ARGS)

test: $(VENV)/.installed
	SCRATCHNN_OFFLINE=1 $(PY) -m pytest $(ARGS)

test-slow: $(VENV)/.installed
	SCRATCHNN_OFFLINE=1 $(PY) -m pytest -m slow $(ARGS)

bench: $(VENV)/.installed  # every framework against the GEMM floor (docs/benchmarks.md)
	$(PY) -m benchmarks.bench $(ARGS)

bench-quick: $(VENV)/.installed
	$(PY) -m benchmarks.bench --quick $(ARGS)

report: $(VENV)/.installed  # e.g. make report ARGS="--experiment sweep-grid"
	$(PY) -m compare.report $(ARGS)

ui: $(VENV)/.installed  # the MLflow UI on the default store: open http://127.0.0.1:5000
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db
