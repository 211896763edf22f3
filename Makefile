# modalbridge — every target creates/reuses .venv and installs what it needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONHASHSEED := 0

.PHONY: install demo test test-fast test-all bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch 2.14.1 + torchvision 0.29.1 come from local disk through pip's constraint file
	$(BIN)/pip install -q "torch>=2.4,<2.15" "torchvision>=0.19,<0.30"
	$(BIN)/pip install -q -e ".[test]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/modalbridge demo

test: $(STAMP)
	$(BIN)/python -m pytest -q --durations=15 tests

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q --durations=15 -m "not slow and not e2e" tests

test-all: $(STAMP)
	$(BIN)/python -m pytest -q --durations=15 -m "" tests

bench: $(STAMP)
	$(BIN)/modalbridge bench all

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks studies

clean:
	rm -rf runs .pytest_cache
