# sentsim developer tasks. `make` (or `make help`) lists them.
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STSB ?= ../shared/data/stsb-en

.PHONY: help install lock format lint typecheck imports test test-fast test-slow cov check run eval-grid bench bench-serve bench-ot bench-flow bench-paraphrase bench-analysis hadolint docker-build up smoke

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: ## Create .venv and install the locked dev environment (CPU torch)
	python3 -m venv $(VENV)
	$(BIN)/pip install -r requirements-dev.lock -e .

lock: ## Re-resolve requirements*.lock from pyproject.toml
	$(BIN)/pip-compile -q --strip-extras --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml
	$(BIN)/pip-compile -q --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links --extra dev -o requirements-dev.lock pyproject.toml
	$(BIN)/pip-compile -q --strip-extras --no-emit-index-url --no-emit-find-links --extra milvus -o requirements-milvus.lock pyproject.toml
	@# A local label (torch==2.13.0+cpu, from this machine's wheel folder) exists on no public
	@# index: pin the public version, which every platform's pip resolves.
	sed -i -E 's/^([A-Za-z0-9_.-]+==[^+ ]+)\+[A-Za-z0-9.]+/\1/' requirements*.lock

format: ## Format and autofix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lint: ## ruff check + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: ## mypy --strict on app/
	$(BIN)/mypy

imports: ## The import contract (layers, web-free ML core) with import-linter
	$(BIN)/lint-imports

test: ## All tests (the real-model ones included) with the coverage gate, one worker per core
	$(PY) -m pytest -n auto --dist loadfile --cov=app --cov-fail-under=90

test-fast: ## Tests without the real default model
	$(PY) -m pytest -m "not slow"

test-slow: ## Only the tests that load the real default model
	$(PY) -m pytest -m slow

cov: ## HTML coverage report in htmlcov/
	$(PY) -m pytest --cov=app --cov-report=html

check: lint typecheck imports test ## Everything CI runs

run: ## The main job: serve the REST API on the default model (localhost:8000)
	$(BIN)/sentsim serve

eval-grid: ## The README's STS-B test grid (4 poolings x 5 transforms x fp32/int8)
	$(BIN)/sentsim eval-sts --data $(STSB)/test.tsv \
		--pooling mean --pooling cls --pooling first_last_avg --pooling last2avg \
		--transform none --transform whitening --transform whitening-256 \
		--transform whitening-128 --transform whitening-128:0,0 \
		--precision fp32 --precision int8 --json benchmarks/results/stsb_grid.json

bench: ## Encoder throughput vs sentence-transformers (prints a table, writes JSON)
	$(PY) benchmarks/encode.py

bench-paraphrase: ## SimBERT quality (200 quora-para dev sources) and /paraphrase latency
	$(PY) benchmarks/paraphrase.py --generator models/simbert-quora

bench-analysis: ## Clustering quality (quora-para) and speed (100k docs), explain latency
	$(PY) benchmarks/analysis.py

bench-flow: ## BERT-flow fit time and throughput next to whitening
	$(PY) benchmarks/flow.py

bench-ot: ## WMD/WRD solvers (POT vs linprog vs Sinkhorn) and rerank latency
	$(PY) benchmarks/ot.py

bench-serve: ## sentsim vs infinity-emb over HTTP (wrk, 1/8/32/64 x 1 and 8 x 32), search on 100k documents
	$(PY) benchmarks/serve.py

hadolint: ## Lint the Dockerfile
	$(BIN)/hadolint Dockerfile

docker-build: ## Build the CPU image (needs a Docker engine)
	docker build -t sentsim:latest .

up: ## docker compose up, waiting for the healthcheck
	docker compose up -d --build --wait

smoke: ## /health and one /similarity call against a running server
	curl -sf localhost:8000/health
	curl -sf localhost:8000/similarity -H 'Content-Type: application/json' \
		-d '{"inputs": {"source_sentence": "a cat", "sentences": ["a kitten", "a car"]}}'
