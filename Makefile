# Two commands matter: `make run` (serve the demo account) and `make test` (everything CI runs).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# `make run` serves the demo values of .env.example until you create a .env.
ENV_FILE := $(if $(wildcard .env),.env,.env.example)

.PHONY: run test check fmt bench

run: $(VENV)/.run-deps
	@WX_DOTENV=$(ENV_FILE) $(BIN)/python -m app info --host $(HOST) --port $(PORT)
	WX_DOTENV=$(ENV_FILE) $(BIN)/gunicorn -c gunicorn.conf.py --bind $(HOST):$(PORT) wsgi:app

test: check
	$(BIN)/python -m pytest

check: $(VENV)/.dev-deps
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

# Figures for choosing a design: cost per push in-process, HTTP throughput beside bare Flask
# and wechatpy, a concurrency sweep (bench/results/sweep.png), a burst of slow conversations,
# slow clients and hung handlers, then the retry figures. 6 to 9 minutes; needs wrk, Redis
# on 127.0.0.1:6379 and nginx (README: Benchmarks).
bench: $(VENV)/.bench-deps
	$(BIN)/python bench/compare.py --pushes 1000 --rounds 3
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/sweep.py
	$(BIN)/python bench/burst.py
	$(BIN)/python bench/slowclients.py
	$(BIN)/python bench/retries.py --skip-late

fmt: $(VENV)/.dev-deps
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-deps: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.bench-deps: $(VENV)/.dev-deps requirements-bench.txt
	$(BIN)/python -m pip install -q -r requirements-bench.txt
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.run-deps
