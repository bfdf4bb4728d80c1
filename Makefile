# Two entry points (see README): `make demo` and `make test`. Each creates or reuses .venv and
# installs the package with its extras from pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test test-fast bench site notebooks student clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[notebooks,test,deploy,docs]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/strucspars-viz demo

# Tests, the package's doctests, and every notebook executed once headless in quick mode
# (STRUCSPARS_QUICK=1: small data, few epochs) against its time budget (tests/test_notebooks_run.py).
test: $(STAMP)
	STRUCSPARS_QUICK=1 MPLBACKEND=Agg $(BIN)/python -m pytest --doctest-modules strucspars_viz tests

test-fast: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python -m pytest -m "not slow and not browser and not notebook" tests

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_permutation_round.py
	$(BIN)/python benchmarks/bench_regularizer_overhead.py
	$(BIN)/python benchmarks/bench_deploy_speed.py

# Static site from the executed notebooks (offline: MathJax bundled, nothing fetched) -> build/site/
site: $(STAMP)
	$(BIN)/python scripts/build_site.py

# Execute every notebook (quick mode; `ARGS=--full` for full mode) and check the time budgets.
notebooks: $(STAMP)
	$(BIN)/python scripts/run_notebooks.py $(ARGS)

# Student copies (solutions removed) in notebooks/student/, after checking every stored solution.
student: $(STAMP)
	$(BIN)/python scripts/build_student_notebooks.py --check
	$(BIN)/python scripts/build_student_notebooks.py

clean:
	rm -rf $(VENV) runs test-artifacts .pytest_cache build
