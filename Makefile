# Two entry points (see README): `make demo` and `make test`. Each creates or reuses .venv and
# installs the package with its extras from pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test test-fast bench notebooks-clean clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[notebooks,test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/strucspars-viz demo

# Notebooks run headless in quick mode (STRUCSPARS_QUICK=1: small data, few epochs).
test: $(STAMP)
	STRUCSPARS_QUICK=1 MPLBACKEND=Agg $(BIN)/python -m pytest --nbmake --nbmake-timeout=600 tests notebooks

test-fast: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python -m pytest -m "not slow and not browser" tests

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_permutation_round.py
	$(BIN)/python benchmarks/bench_regularizer_overhead.py

clean:
	rm -rf $(VENV) runs test-artifacts .pytest_cache
