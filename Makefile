# crmlab: the README's two commands are `make report` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CORE   := $(VENV)/.core-installed
TESTD  := $(VENV)/.test-installed
WEEK   ?=
PARAMS ?= params/weekly.yaml

.PHONY: setup report report-all test test-fast lab bench calibration clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Core install: what `make report` needs.
$(CORE): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# Test install adds pytest and the optional Spark backend (PySpark needs a Java runtime; .ci/run installs one).
$(TESTD): $(CORE)
	$(BIN)/pip install -q -e ".[test,spark]"
	touch $@

setup: $(CORE)

report: $(CORE)
	$(BIN)/python -m crmlab report weekly --params $(PARAMS) $(if $(WEEK),--week $(WEEK),)

# Also the analysts' notebooks (cohort_rfm, funnel, experiment_readout).
report-all: $(CORE)
	$(BIN)/python -m crmlab report all --params params/analysis.yaml $(if $(WEEK),--week $(WEEK),)

test: $(TESTD)
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-fast: $(TESTD)
	$(BIN)/python -m pytest -q -m "not spark and not slow and not browser"

lab: $(CORE)
	$(BIN)/pip install -q -e ".[lab]"
	$(BIN)/python -m ipykernel install --user --name crmlab --display-name "Python (crmlab)"
	$(BIN)/jupyter lab notebooks/

# Benchmarks into bench/results.md: every operation beside hand-written SQL and the whole weekly
# report (process tree) at 1M, 10M and 100M events. Data go to $CRMLAB_BENCH_DATA, else bench/data
# (100M events: about 1.6 GB of Parquet, generated once). One scale: make bench BENCH_ARGS="--scales 10M".
bench: $(TESTD)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# Seeded calibration grid of the default comparisons: writes docs/calibration.md (about 3 min).
calibration: $(TESTD)
	$(BIN)/python -m bench.calibration

clean:
	rm -rf $(VENV) reports/*/ reports/index.html bench/data
