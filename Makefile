# Set-up is a dependency of every target: the first call creates .venv and installs; later calls install nothing.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.14.1 torchvision==0.29.1
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo demo-reference readme test tables figures curves check reference sweeps claims docs clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## demo: pretrain PCFRL on the built-in synthetic face world (preset demo, one thread: the same numbers on any
## machine with this torch build), evaluate expression recognition, store a record, and place it beside the
## task's floors, ceiling, reference PCFRL runs and the paper's number (the committed records of `demo-reference`)
DEMO_METHOD := pcfrl
DEMO_TASK := synth-fer
demo: $(STAMP)
	$(BIN)/pcfrl-bench --threads 1 run --method $(DEMO_METHOD) --task $(DEMO_TASK) --preset demo --reference results/reference

## demo-reference: (re)make the demo's reference records (floors, ceiling, the demo method; preset demo, 3 seeds; cells
## stored with today's config are skipped, so after a change of the world or the preset it re-runs what changed),
## then the README's demo table and registry facts, and the figures (the demo preset's calibration figure).
demo-reference: $(STAMP)
	$(BIN)/pcfrl-bench --threads 1 grid --preset demo --jobs 2 --methods $(DEMO_METHOD),supervised,random-init,raw-pixels \
		--tasks $(DEMO_TASK) --seeds 0,1,2 --out results/reference $(REFERENCE_FLAGS)
	$(BIN)/pcfrl-bench standing results/reference/$(DEMO_TASK)/$(DEMO_METHOD)/demo-seed0.json --reference results/reference \
		--readme README.md
	$(BIN)/pcfrl-bench list --readme README.md
	$(MAKE) figures

## readme: the README's registry facts (counts of methods, tasks and presets; what each preset trains)
readme: $(STAMP)
	$(BIN)/pcfrl-bench list --readme README.md

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

## curves: learning curves of simclr, pcl and pcfrl on four synthetic tasks at the reference preset: one pretraining
## per method keeping its trunk every CURVES_EVERY epochs, each kept trunk evaluated by every task's protocol, floors
## and ceiling from results/reference. Points in results/reference/curves (stored ones are skipped), the figure in
## results/figures/learning_curves_$(CURVES_PRESET).png. A cached pretraining made without snapshots stops it with
## the epochs it lacks: CURVES_FLAGS=--restart pretrains the methods again keeping them (later calls reuse those).
CURVES_PRESET ?= quick
CURVES_EVERY ?= 2
CURVES_FLAGS ?=
curves: $(STAMP)
	$(BIN)/pcfrl-bench --threads 1 curves --methods simclr,pcl,pcfrl --tasks synth-fer,synth-fr,synth-au,synth-hpe \
		--preset $(CURVES_PRESET) --every $(CURVES_EVERY) --curves-dir results/reference/curves \
		--figure results/figures/learning_curves_$(CURVES_PRESET).png --reference results/reference $(CURVES_FLAGS)

## check: the regression check of the ci subset (what .ci/run runs after the tests)
check: $(STAMP)
	$(BIN)/pcfrl-bench check --subset ci

## reference: (re)create the committed reference records in results/reference with the commands that made them
## (cells already stored with the same config are skipped, REFERENCE_FLAGS=--rerun runs them again; analyses and
## Table 10 records are made when missing). Core rows (methods, floors, ceiling) 5 seeds, Table 5-9 variants 3 seeds.
## Then `make tables figures claims`.
SYNTH_TASKS := synth-fer,synth-fr,synth-au,synth-posecls,synth-hpe
CORE := simclr,moco,pcl,pcfrl,supervised,random-init,raw-pixels
VARIANTS := pcfrl-sim-cos,pcfrl-top1,pcfrl-top2,pcfrl-top5,pcl-npa-elim,simclr-calib-npa,simclr-calib-cos,pcl-calib-cos,pcfrl-sim-attn,pcfrl-sim-npa,pcfrl-ns-sum
REFERENCE_FLAGS ?=
GRID := $(BIN)/pcfrl-bench --threads 1 grid --preset quick --jobs 2 $(REFERENCE_FLAGS)
C2_ANALYSES := $(foreach s,1 2 3 4,results/reference/analysis/pcfrl-synth-fer-quick-seed$(s).json)
REFERENCE_FILES := results/reference/analysis/pcl-synth-fer-quick-seed0.npz results/reference/analysis/pcfrl-synth-fer-quick-seed0.npz \
	$(C2_ANALYSES) results/reference/complexity/pcfrl/quick-seed0.json results/reference/complexity/pcfrl/paper-seed0.json
reference: $(STAMP) $(REFERENCE_FILES)
	$(GRID) --methods $(CORE) --tasks $(SYNTH_TASKS) --seeds 0,1,2 --out results/reference
	$(GRID) --methods pcfrl-sim-cos,pcfrl-top1,pcfrl-top2,pcfrl-top5,pcl-npa-elim,simclr-calib-npa --tasks $(SYNTH_TASKS) --seeds 0,1,2 --out results/reference
	$(GRID) --methods simclr,simclr-calib-npa,supervised,random-init,raw-pixels --tasks digits --seeds 0,1,2 --out results/reference
	$(GRID) --methods $(CORE) --tasks $(SYNTH_TASKS) --seeds 3,4 --out results/reference
	$(GRID) --methods $(VARIANTS) --tasks $(SYNTH_TASKS) --seeds 0,1,2 --out results/reference

## sweeps: the paper's parameter sweeps (Fig. 6a alpha, Fig. 6b beta, Fig. 7c T) with PCFRL, seed 0, on synth-fer and
## synth-fr; the registry record is the default point. Records go to results/reference/sweeps/<key>=<value>/.
SWEEP = $(BIN)/pcfrl-bench --threads 1 grid --preset quick --methods pcfrl --tasks synth-fer,synth-fr --seeds 0 $(REFERENCE_FLAGS)
SWEEP_POINTS := alpha=1 alpha=5 alpha=20 beta_pose=0.5 beta_pose=1 beta_face=0.2 beta_face=0.5 T=0.5 T=2 T=5
sweep_sets = $(if $(filter alpha,$(1)),--set method.calib_face.alpha=$(2) --set method.calib_pose.alpha=$(2),$(if \
	$(filter T,$(1)),--set method.calib_face.threshold=$(2) --set method.calib_pose.threshold=$(2),--set \
	method.calib_$(subst beta_,,$(1)).beta=$(2)))
sweeps: $(STAMP)
	$(foreach p,$(SWEEP_POINTS),$(SWEEP) $(call sweep_sets,$(word 1,$(subst =, ,$(p))),$(word 2,$(subst =, ,$(p)))) \
		--out results/reference/sweeps/$(p) &&) true

## docs: docs/options.md, the option tables generated from the schema (a test fails when it is stale)
docs: $(STAMP)
	$(BIN)/python -m pcfrl_bench.schema.options > docs/options.md

## claims: results/CLAIMS.md and the README's results section from the reference records
claims: $(STAMP)
	$(BIN)/pcfrl-bench claims --records results/reference --readme README.md

# checkpoint analyses and Table 10 measurements: made when missing (delete a file to make it again)
results/reference/analysis/%-synth-fer-quick-seed0.npz: | $(STAMP)
	$(BIN)/pcfrl-bench --threads 1 analyze -m $* -t synth-fer --preset quick --analysis-dir results/reference/analysis
# claim C2 (NPA vs cosine on the same checkpoints): the numbers of PCFRL's other seeds, without figure arrays
results/reference/analysis/pcfrl-synth-fer-quick-seed%.json: | $(STAMP)
	$(BIN)/pcfrl-bench --threads 1 analyze -m pcfrl -t synth-fer --preset quick --seed $* --summary-only --analysis-dir results/reference/analysis
results/reference/complexity/pcfrl/quick-seed0.json: | $(STAMP)
	$(BIN)/pcfrl-bench --threads 1 complexity --task synth-fer --preset quick --repeats 20 --out results/reference
results/reference/complexity/pcfrl/paper-seed0.json: | $(STAMP)
	$(BIN)/pcfrl-bench --threads 2 complexity --repeats 2 --out results/reference

clean-venv:
	rm -rf $(VENV)
