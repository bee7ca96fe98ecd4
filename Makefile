# Set-up is a dependency of every target: the first call creates .venv and installs; later calls install nothing.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.14.1 torchvision==0.29.1
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test tables figures check reference clean-venv

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
## and synthetic tables from the committed reference records (what a bare `pcfrl-bench tables` does)
tables: $(STAMP)
	$(BIN)/pcfrl-bench tables

## figures: PNGs from the committed reference records and analyses (results/figures)
figures: $(STAMP)
	$(BIN)/pcfrl-bench figures --records results/reference --analysis results/reference/analysis --figures-dir results/figures

## check: the regression check of the ci subset (what .ci/run runs after the tests)
check: $(STAMP)
	$(BIN)/pcfrl-bench check --subset ci

## reference: (re)create the committed reference records in results/reference with the commands that made them
## (cells already stored with the same config are skipped, REFERENCE_FLAGS=--rerun runs them again; analyses and
## Table 10 records are made when missing; about 2 hours from scratch on 2 CPU cores). Then `make tables figures`.
SYNTH_TASKS := synth-fer,synth-fr,synth-au,synth-posecls,synth-hpe
REFERENCE_FLAGS ?=
GRID := $(BIN)/pcfrl-bench --threads 1 grid --preset quick --seeds 0,1,2 --jobs 2 $(REFERENCE_FLAGS)
SWEEP := $(GRID) --methods pcfrl --tasks $(SYNTH_TASKS)
REFERENCE_FILES := results/reference/analysis/pcl-synth-fer-quick-seed0.npz results/reference/analysis/pcfrl-synth-fer-quick-seed0.npz \
	results/reference/complexity/pcfrl/quick-seed0.json results/reference/complexity/pcfrl/paper-seed0.json
reference: $(STAMP) $(REFERENCE_FILES)
	$(GRID) --methods simclr,moco,pcl,pcfrl,random-init --tasks $(SYNTH_TASKS) --out results/reference
	$(GRID) --methods simclr-calib-cos,simclr-calib-npa,pcl-calib-cos,pcl-npa-elim,pcfrl-ns-mean --tasks $(SYNTH_TASKS) --out results/reference
	$(GRID) --methods pcfrl-top1,pcfrl-top2,pcfrl-top5,pcfrl-sim-cos,pcfrl-sim-attn,pcfrl-sim-npa --tasks $(SYNTH_TASKS) --out results/reference
	$(GRID) --methods simclr,simclr-calib-npa,random-init --tasks digits --out results/reference
	for a in 1 5 20; do $(SWEEP) --out results/reference/sweeps/alpha=$$a --set method.calib_face.alpha=$$a --set method.calib_pose.alpha=$$a || exit 1; done
	for t in 10 100 1000; do $(SWEEP) --out results/reference/sweeps/T=$$t --set method.calib_face.threshold=$$t --set method.calib_pose.threshold=$$t || exit 1; done
	for b in 0.5 1; do $(SWEEP) --out results/reference/sweeps/beta_pose=$$b --set method.calib_pose.beta=$$b || exit 1; done
	for b in 0.2 2; do $(SWEEP) --out results/reference/sweeps/beta_face=$$b --set method.calib_face.beta=$$b || exit 1; done

# checkpoint analyses and Table 10 measurements: made when missing (delete a file to make it again)
results/reference/analysis/%-synth-fer-quick-seed0.npz: | $(STAMP)
	$(BIN)/pcfrl-bench --threads 1 analyze -m $* -t synth-fer --preset quick --analysis-dir results/reference/analysis
results/reference/complexity/pcfrl/quick-seed0.json: | $(STAMP)
	$(BIN)/pcfrl-bench --threads 1 complexity --task synth-fer --preset quick --repeats 20 --out results/reference
results/reference/complexity/pcfrl/paper-seed0.json: | $(STAMP)
	$(BIN)/pcfrl-bench --threads 2 complexity --repeats 2 --out results/reference

clean-venv:
	rm -rf $(VENV)
