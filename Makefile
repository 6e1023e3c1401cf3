# The two commands a new user needs: `make demo` and `make test`.
# Both build .venv on first use: torch's CPU build first, then the project pinned by constraints.txt.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Label Studio (a Django app with its own pins) lives in a venv of its own; the test suite starts
# it on 127.0.0.1 for the review round-trip test.
LS_VENV := .venv-label-studio
LS_STAMP := $(LS_VENV)/.installed

.PHONY: demo test lint format bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

$(LS_STAMP): constraints-label-studio.txt
	$(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/pip install --quiet --upgrade pip
	$(LS_VENV)/bin/pip install --quiet -c constraints-label-studio.txt label-studio
	touch $(LS_STAMP)

demo: $(STAMP)
	$(BIN)/enrich demo --output out/demo

test: $(STAMP) $(LS_STAMP) lint
	ENRICH_LABEL_STUDIO_BIN=$(CURDIR)/$(LS_VENV)/bin/label-studio $(BIN)/python -m pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) $(LS_VENV) out
