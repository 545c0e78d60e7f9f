# sentsim developer tasks. `make` (or `make help`) lists them.
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STSB ?= ../shared/data/stsb-en

.PHONY: help install lock format lint typecheck test test-fast test-slow cov check run eval-grid bench hadolint

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: ## Create .venv and install the locked dev environment (CPU torch)
	python3 -m venv $(VENV)
	$(BIN)/pip install -r requirements-dev.lock -e .

lock: ## Re-resolve requirements*.lock from pyproject.toml
	$(BIN)/pip-compile -q --strip-extras --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml
	$(BIN)/pip-compile -q --strip-extras --no-emit-index-url --no-emit-find-links --extra dev -o requirements-dev.lock pyproject.toml

format: ## Format and autofix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lint: ## ruff check + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: ## mypy --strict on app/
	$(BIN)/mypy

test: ## All tests (the real-model ones included) with the coverage gate
	$(PY) -m pytest --cov=app --cov-fail-under=90

test-fast: ## Tests without the real default model
	$(PY) -m pytest -m "not slow"

test-slow: ## Only the tests that load the real default model
	$(PY) -m pytest -m slow

cov: ## HTML coverage report in htmlcov/
	$(PY) -m pytest --cov=app --cov-report=html

check: lint typecheck test ## Everything CI runs

run: ## The main job: eval-sts on the bundled sample with the default model
	$(BIN)/sentsim eval-sts --data tests/data/stsb_test_300.tsv

eval-grid: ## The README's STS-B test grid (4 poolings x 5 transforms x fp32/int8)
	$(BIN)/sentsim eval-sts --data $(STSB)/test.tsv \
		--pooling mean --pooling cls --pooling first_last_avg --pooling last2avg \
		--transform none --transform whitening --transform whitening-256 \
		--transform whitening-128 --transform whitening-128:0,0 \
		--precision fp32 --precision int8 --json benchmarks/results/stsb_grid.json

bench: ## Encoder throughput vs sentence-transformers (prints a table, writes JSON)
	$(PY) benchmarks/encode.py
