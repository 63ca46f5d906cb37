# Two commands matter: `make run` (serve the demo account) and `make test` (everything CI runs).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# `make run` serves the demo values of .env.example until you create a .env.
ENV_FILE := $(if $(wildcard .env),.env,.env.example)
# The project's own files for ruff (Python, and the Python blocks of the READMEs). Handler
# modules of yours and their tests beside .env are yours: `make check` and `make fmt` leave
# them alone.
SOURCES := app tests examples bench deploy config.py wsgi.py gunicorn.conf.py README*.md

.PHONY: run test check lint fmt bench drill fuzz

run: $(VENV)/.run-deps
	@WX_DOTENV=$(ENV_FILE) $(BIN)/python -m app info --host $(HOST) --port $(PORT)
	WX_DOTENV=$(ENV_FILE) $(BIN)/gunicorn -c gunicorn.conf.py --bind $(HOST):$(PORT) wsgi:app

test: check
	$(BIN)/python -m pytest

check: lint
	$(BIN)/mypy

lint: $(VENV)/.dev-deps
	$(BIN)/ruff format --check $(SOURCES)
	$(BIN)/ruff check $(SOURCES)

# Figures for choosing a design: cost per push in-process, HTTP throughput beside bare Flask
# and wechatpy, what the shared store and the handler threads cost of it, a concurrency sweep
# (bench/results/sweep.png), a burst of slow conversations, slow clients and hung handlers,
# then the retry figures. 8 to 11 minutes; needs wrk, Redis
# on 127.0.0.1:6379 and nginx (README: Benchmarks).
bench: $(VENV)/.bench-deps
	$(BIN)/python bench/compare.py --pushes 1000 --rounds 3
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/breakdown.py
	$(BIN)/python bench/sweep.py
	$(BIN)/python bench/burst.py
	$(BIN)/python bench/slowclients.py
	$(BIN)/python bench/outbox.py
	$(BIN)/python bench/retries.py --skip-late

# Kills, reloads and store outages under WeChat's retries (about 7 minutes); not in `make test`.
drill: $(VENV)/.dev-deps
	$(BIN)/python bench/drill.py

# A million hostile pushes through the app in process, on every core; exits 1 on any fault.
FUZZ_CASES ?= 1000000
fuzz: $(VENV)/.dev-deps
	$(BIN)/python bench/fuzz.py --cases $(FUZZ_CASES)

fmt: $(VENV)/.dev-deps
	$(BIN)/ruff format $(SOURCES)
	$(BIN)/ruff check --fix $(SOURCES)

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
