# Set-up is a dependency of every target: the first call creates .venv and installs; later calls install nothing.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.14.1 torchvision==0.29.1
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test tables figures check clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## demo: pretrain PCFRL on the built-in synthetic face world, evaluate expression recognition, store a record
demo: $(STAMP)
	$(BIN)/pcfrl-bench run --method pcfrl --task synth-fer

## test: the test suite (CPU, a few minutes)
test: $(STAMP)
	$(BIN)/python -m pytest

## tables: paper tables from your runs (results/runs; Table 10 also from the committed complexity records)
## and synthetic tables from the committed reference records
RECORDS ?= results/runs
tables: $(STAMP)
	$(BIN)/pcfrl-bench tables --records $(RECORDS) --records results/reference/complexity --preset paper
	$(BIN)/pcfrl-bench tables --variant synthetic --records results/reference --preset quick

## figures: PNGs from the committed reference records and analyses (results/figures)
figures: $(STAMP)
	$(BIN)/pcfrl-bench figures --records results/reference --analysis results/reference/analysis --out results/figures

## check: the regression check of the ci subset (what .ci/run runs after the tests)
check: $(STAMP)
	$(BIN)/pcfrl-bench check --subset ci

clean-venv:
	rm -rf $(VENV)
