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

BENCHMARKS := lf_apply_speed label_model_accuracy label_model_robustness label_model_speed \
	embeddings_speed vector_index_speed end_model gap_filling consensus_crowd review_loop \
	job_incremental job_faults

# Every benchmark, one after the other (about two hours on 2 cores); figures go in benchmarks/RESULTS.md.
bench: $(STAMP)
	for b in $(BENCHMARKS); do $(BIN)/python -m benchmarks.$$b || exit 1; done

clean:
	rm -rf $(VENV) $(LS_VENV) out
