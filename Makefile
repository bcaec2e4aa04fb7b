# ProFace Lab. `make demo` sets everything up and runs the demo; `make test` runs the linter and the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help install serve bench-serving reproduce leaderboard-demo demo demo-detection demo-detection-papers notebooks test test-budget test-slow test-ddp test-all lint format sweep-demo bench bench-metrics bench-data bench-face bench-cost bench-dpp bench-attacks clean clean-runs

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps facenet-pytorch==2.6.0
	$(PY) -m pip install --quiet --no-deps grad-cam==1.5.7
	$(PY) -m pip install --quiet --no-deps torchattacks==3.5.1
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the pinned stack (works offline from the package index)

demo: $(STAMP) ## train a recognizer on SyntheticFaces, evaluate the obfuscation baselines, print the table
	$(PY) -m src.demo

demo-detection: $(STAMP) ## synthetic deepfake videos -> preprocess -> train a small detector -> within / cross-manipulation / cross-dataset AUC
	$(PY) -m src.papers.detection_baselines.demo

demo-detection-papers: $(STAMP) ## the detection demo, then every detection paper's demo on the same data, one table of all
	$(PY) -m src.papers.detection_baselines.demo --all

PAPER ?=
TABLE ?= demo
reproduce: $(STAMP) ## reproduce a paper's table: make reproduce PAPER=<paper> [TABLE=demo|paper] (python -m src.reproduce --list)
	@test -n "$(PAPER)" || { echo "name a paper: make reproduce PAPER=<paper> [TABLE=demo|paper]; the tables: $(PY) -m src.reproduce --list"; exit 2; }
	$(PY) -m src.reproduce $(PAPER) --table $(TABLE)

leaderboard-demo: $(STAMP) ## every privacy method on one panel (SyntheticFaces, demo checkpoints trained first): reports/leaderboard.{md,csv,html}
	$(PY) -m src.leaderboard --panel demo

notebooks: $(STAMP) ## execute the analysis notebooks on runs/ in a Jupyter kernel; executed copies in reports/notebooks/
	$(PY) -m ipykernel install --sys-prefix --name proface-lab --display-name "ProFace Lab (.venv)" >/dev/null
	$(PY) scripts/run_notebooks.py --runs $${PROFACE_RUNS:-$(CURDIR)/runs}

lint: $(STAMP) ## ruff lint + format check + the import-layer contracts (.importlinter)
	$(VENV)/bin/ruff check src tests notebooks scripts benchmarks
	$(VENV)/bin/ruff format --check src tests notebooks scripts benchmarks
	$(VENV)/bin/lint-imports --no-cache

format: $(STAMP) ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix src tests notebooks scripts benchmarks
	$(VENV)/bin/ruff format src tests notebooks scripts benchmarks

TEST_REPORT := .test-reports/junit.xml

test: lint ## lint, then every test not marked slow, on every core (includes 2-process CPU DDP tests)
	$(PY) -m pytest -m "not slow" -q -n auto --durations=15 --junitxml=$(TEST_REPORT)

test-budget: $(STAMP) ## time per paper / test file / whole run of the last `make test`, against the budgets
	$(PY) scripts/test_budget.py $(TEST_REPORT)

test-slow: $(STAMP) ## the slow tests only
	$(PY) -m pytest -m slow -q -n auto --durations=15

test-ddp: $(STAMP) ## the DDP tests only
	$(PY) -m pytest -m ddp -q

test-all: lint ## every test
	$(PY) -m pytest -q

sweep-demo: $(STAMP) ## run the example sweep (4 short demo trainings)
	$(PY) -m src.sweep experiments/sweeps/demo_recognizer_lr.yaml trainer.max_epochs=2

bench: bench-metrics bench-data bench-face bench-cost bench-dpp bench-attacks bench-serving ## every speed/memory benchmark (prints ratios; not a test)

bench-metrics: $(STAMP) ## metrics suite vs torchmetrics; retrieval vs a bare matrix product
	$(PY) -m benchmarks.bench_metrics

bench-data: $(STAMP) ## JPEG loading vs torchvision; FF++ preprocessing frames/s at 480p/720p; SBI pipeline vs a GPU step
	$(PY) -m benchmarks.bench_data
	$(PY) -m benchmarks.bench_sbi_pipeline

bench-face: $(STAMP) ## dlib ResNet port vs dlib per-face speed
	$(PY) -m benchmarks.bench_dlib

bench-cost: $(STAMP) ## every paper's cost entries: params, FLOPs and ms per image
	$(PY) -m benchmarks.bench_costs

bench-attacks: $(STAMP) ## PGD-10 / FGSM images/s through the attack suite vs plain torchattacks (target ratio >= 1.0)
	$(PY) -m benchmarks.bench_attacks

bench-dpp: $(STAMP) ## spherical DP samplers of the identity perturbator: draws/s at d = 512 (target >= 1e5)
	$(PY) -m benchmarks.bench_dp_samplers

bench-serving: $(STAMP) ## the web portal under 1, 4 and 16 concurrent clients on 127.0.0.1: p50/p95 latency, errors, 503s
	$(PY) -m benchmarks.bench_serving

serve: $(STAMP) ## the web portal on http://127.0.0.1:8000 with every method and every checkpoint found under runs/
	$(PY) -m src.serving.portal --runs $${PROFACE_RUNS:-$(CURDIR)/runs}

clean: ## remove caches
	rm -rf .pytest_cache .ruff_cache
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +

clean-runs: ## delete every local run record (runs/)
	rm -rf runs
