# The README's commands, and the steps behind them.
#
#   make figures   set up .venv, then regenerate every figure in quick mode (CPU, built-in models)
#   make test      set up .venv, then run the test suite
#   make lab       set up .venv, then open the notebooks in JupyterLab (kernel "Python 3 (codexlab)")
#
# Everything the project needs is installed from pyproject.toml; nothing is assumed on the
# machine beyond Python >= 3.10 with venv (and, for the browser test only, Debian's chromium:
# .ci/run installs it).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.codexlab-installed
MODE   ?= quick
# make lab: consent to running model-written code in the project's sandbox (1 = given).
ALLOW_CODE_EXEC ?= 1
LAB_ARGS ?=

# The git clean filter for notebooks: what git stores (and `git diff` compares) is the
# notebook without outputs, execution counts, widget state or language_info, cell ids kept;
# so running and saving a notebook in JupyterLab leaves `git diff` and `make test` clean.
NBSTRIP_ARGS := --keep-id --extra-keys metadata.language_info

.PHONY: figures test venv lint lab notebook-filter

venv: $(STAMP) notebook-filter

# PYTHONWARNINGS=ignore: setuptools' editable install prints a warning box about folders
# named like the package taking precedence on import; here that folder *is* the package.
$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "codexlab needs Python >= 3.10")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -e '.[notebooks,sandbox,dev,ray]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (codexlab)" >/dev/null
	touch $(STAMP)

# The tests of the openai sampling backend run a real OpenAI-compatible server (llama.cpp)
# on loopback. pip compiles llama-cpp-python from source (a C++ compiler; about 7 minutes on
# 2 cores, once: pip caches the wheel), so only `make test` installs the serve extra.
SERVE_STAMP := $(VENV)/.codexlab-serve-installed
$(SERVE_STAMP): $(STAMP)
	@echo "make: installing the serve extra (compiles llama.cpp once, a few minutes)"
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -e '.[serve]'
	touch $(SERVE_STAMP)

# Idempotent and cheap, so every target that may save notebooks runs it (outside a git
# checkout it does nothing).
notebook-filter: $(STAMP)
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
	  git config filter.nbstripout.clean "'$(abspath $(BIN))/python' -m nbstripout $(NBSTRIP_ARGS)" && \
	  git config filter.nbstripout.smudge cat && \
	  git config diff.ipynb.textconv "'$(abspath $(BIN))/python' -m nbstripout -t $(NBSTRIP_ARGS)"; \
	fi

# The main job: sample + execute with the built-in models, then run every notebook.
# Executing model-written code needs consent; this target gives it explicitly.
figures: venv
	CODEXLAB_ALLOW_CODE_EXEC=1 $(BIN)/codexlab figures --mode $(MODE)

test: venv $(SERVE_STAMP)
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check codexlab tests benchmarks

# JupyterLab from the project's venv, on the tour. The kernel inherits this environment,
# so consent reaches it here (ALLOW_CODE_EXEC=0 withholds it).
lab: venv
	@if [ "$(ALLOW_CODE_EXEC)" = 1 ]; then \
	  echo "make lab: CODEXLAB_ALLOW_CODE_EXEC=1 is set for this JupyterLab: its notebooks may run"; \
	  echo "  model-written code in the project's sandbox (README: The sandbox; SECURITY.md)."; \
	  echo "  'make lab ALLOW_CODE_EXEC=0' starts it without that consent."; \
	else \
	  echo "make lab: started without consent: notebooks show stored results, run no code."; \
	fi
	@echo "make lab: kernel 'Python 3 (codexlab)'; stop with Ctrl-C."
	CODEXLAB_ALLOW_CODE_EXEC=$(filter 1,$(ALLOW_CODE_EXEC)) $(BIN)/jupyter lab \
	  $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS) notebooks/00_tour.ipynb
