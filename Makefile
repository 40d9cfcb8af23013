# The two commands of the README, and the steps behind them.
#
#   make figures   set up .venv, then regenerate every figure in quick mode (CPU, built-in models)
#   make test      set up .venv, then run the test suite
#
# Everything the project needs is installed from pyproject.toml; nothing is assumed on the
# machine beyond Python >= 3.10 with venv.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.codexlab-installed
MODE   ?= quick

.PHONY: figures test venv lint paper clean-results

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "codexlab needs Python >= 3.10")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[notebooks,sandbox,dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (codexlab)" >/dev/null
	touch $(STAMP)

# The main job: sample + execute with the built-in models, then run every notebook.
# Executing model-written code needs consent; this target gives it explicitly.
figures: $(STAMP)
	CODEXLAB_ALLOW_CODE_EXEC=1 $(BIN)/codexlab figures --mode $(MODE)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check codexlab tests benchmarks
