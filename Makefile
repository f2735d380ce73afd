# MicroLoop: `make demo` shows it working, `make test` runs every test. See README.md.
SHELL := /bin/bash
ROOT := $(abspath .)
CARGO ?= cargo
CC ?= cc
CXX ?= c++
CBINDGEN_VERSION := 0.29.4
TOOLS := $(ROOT)/.tools
LIBDIR := $(ROOT)/native/target/release
CFLAGS_TEST := -std=c11 -Wall -Wextra -Werror -I$(ROOT)/include
LDFLAGS_LIB := -L$(LIBDIR) -lmicroloop -Wl,-rpath,$(LIBDIR)
VALGRIND := valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite

.PHONY: all lib header demo demo-c test test-rust test-header test-c clean

all: lib

lib:
	$(CARGO) build --release --locked --manifest-path native/Cargo.toml -p microloop-ffi -p microloop-hook -p microloop-mcp -p microloop-proxy -p microloop-commands

# cbindgen, pinned: the committed header must be what this version generates.
CBINDGEN := $(shell if cbindgen --version 2>/dev/null | grep -q " $(CBINDGEN_VERSION)$$"; then command -v cbindgen; else echo $(TOOLS)/bin/cbindgen; fi)
$(TOOLS)/bin/cbindgen:
	$(CARGO) install cbindgen --version $(CBINDGEN_VERSION) --locked --root $(TOOLS)

# cbindgen writes constants, types, then functions; header_sections.py lays them out in lib.rs's sections.
header: $(CBINDGEN)
	@mkdir -p build
	$(CBINDGEN) --config native/ffi/cbindgen.toml --crate microloop-ffi --output build/microloop.raw.h native/ffi
	python3 native/ffi/header_sections.py build/microloop.raw.h native/ffi/src/lib.rs > build/microloop.h.new
	mv build/microloop.h.new include/microloop.h

# The story in Python (the CLI from the local virtualenv); `make demo-c` tells it from C.
demo: python
	@$(VENV)/bin/microloop demo

demo-c: lib
	@mkdir -p build
	@$(CC) -std=c11 -O2 -I include examples/c/demo.c $(LDFLAGS_LIB) -o build/demo
	@./build/demo

test: lint test-rust test-header test-c test-c-vectors test-install test-go test-node test-adapters test-python test-proxy test-audit test-agents test-proxy-agents test-replay test-mcp fuzz-smoke test-wheel
	@echo "make test: all suites passed"

test-rust:
	$(CARGO) test --release --locked --manifest-path native/Cargo.toml --workspace

# The header is current, and compiles on its own as C and as C++ (twice included).
test-header: $(CBINDGEN)
	@mkdir -p build
	$(CBINDGEN) --config native/ffi/cbindgen.toml --crate microloop-ffi --output build/microloop.raw.h native/ffi
	python3 native/ffi/header_sections.py build/microloop.raw.h native/ffi/src/lib.rs > build/microloop.h
	diff -u include/microloop.h build/microloop.h || (echo "include/microloop.h is stale: run 'make header'"; exit 1)
	printf '#include "microloop.h"\n#include "microloop.h"\nint main(void){return ML_OK;}\n' > build/header_test.c
	$(CC) -std=c99 -Wall -Wextra -Werror -pedantic -I include build/header_test.c -o build/header_test_c
	$(CXX) -std=c++11 -Wall -Wextra -Werror -pedantic -I include -x c++ build/header_test.c -o build/header_test_cxx
	@echo "header: current, compiles as C and C++"

test-c: lib
	@mkdir -p build
	$(CC) $(CFLAGS_TEST) -pthread tests/c/test_abi.c $(LDFLAGS_LIB) -o build/test_abi
	$(VALGRIND) ./build/test_abi

clean:
	rm -rf build native/target

# --- The same library from C, Go and Node (bindings/, examples/c; bench/RESULTS.md "Go and Node")
.PHONY: install test-c-vectors test-install test-go bench-go test-node bench-node
PREFIX ?= /usr/local
DESTDIR ?=
GO ?= go
ML_VERSION := $(shell sed -n 's/^\#define ML_VERSION_STRING "\(.*\)"/\1/p' include/microloop.h)

# Installs the library (shared and static), the header and microloop.pc under $(PREFIX).
install: lib
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 644 include/microloop.h $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(LIBDIR)/libmicroloop.so $(DESTDIR)$(PREFIX)/lib/
	install -m 644 $(LIBDIR)/libmicroloop.a $(DESTDIR)$(PREFIX)/lib/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(ML_VERSION)|' microloop.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/microloop.pc

# Every shared vector from C, under valgrind (valgrind.supp: one narrow false positive in Rust).
test-c-vectors: lib
	@mkdir -p build
	$(CC) $(CFLAGS_TEST) tests/c/vectors.c tests/c/json.c $(LDFLAGS_LIB) -o build/test_vectors
	$(VALGRIND) --suppressions=tests/c/valgrind.supp ./build/test_vectors tests/vectors

# `make install` into a temporary prefix, then the C agent loop built from it through pkg-config.
test-install: lib
	rm -rf build/prefix build/example-c
	$(MAKE) --no-print-directory install PREFIX=$(ROOT)/build/prefix
	PKG_CONFIG_PATH=$(ROOT)/build/prefix/lib/pkgconfig pkg-config --modversion microloop
	PKG_CONFIG_PATH=$(ROOT)/build/prefix/lib/pkgconfig $(MAKE) --no-print-directory -C examples/c run BUILD=$(ROOT)/build/example-c

# -count=1: go test's cache does not see the library change.
test-go: lib
	cd bindings/go && $(GO) vet ./... && $(GO) test -race -count=1 ./...

bench-go: lib
	cd bindings/go && $(GO) test -run '^$$' -bench . -benchtime 2s -count 1 ./...

# --- Framework adapters (tests/adapters): the real frameworks from PyPI (pinned), driven offline by
# scripted models. CrewAI pins openai<3 and the OpenAI Agents SDK needs openai>=3: two virtualenvs.
.PHONY: test-adapters bench-adapters adapters-install
ADAPTERS_VENV := $(ROOT)/.venv-adapters
CREWAI_VENV := $(ROOT)/.venv-crewai
ADAPTERS_WHEEL_DIR := $(ROOT)/build/adapters-wheel
CREWAI_ENV := CREWAI_DISABLE_TELEMETRY=true CREWAI_DISABLE_TRACKING=true OTEL_SDK_DISABLED=true \
	CREWAI_TRACING_ENABLED=false OPENAI_AGENTS_DISABLE_TRACING=1

$(ADAPTERS_VENV)/.deps: tests/adapters/requirements.txt
	test -x $(ADAPTERS_VENV)/bin/python || python3 -m venv $(ADAPTERS_VENV)
	$(ADAPTERS_VENV)/bin/pip install -q --disable-pip-version-check -r tests/adapters/requirements.txt
	touch $@

$(CREWAI_VENV)/.deps: tests/adapters/requirements-crewai.txt
	test -x $(CREWAI_VENV)/bin/python || python3 -m venv $(CREWAI_VENV)
	$(CREWAI_VENV)/bin/pip install -q --disable-pip-version-check -r tests/adapters/requirements-crewai.txt
	touch $@

# One wheel of the package (linked against the library `make lib` built), installed into both.
adapters-install: lib $(ADAPTERS_VENV)/.deps $(CREWAI_VENV)/.deps
	rm -rf $(ADAPTERS_WHEEL_DIR)
	MICROLOOP_LIB_DIR=$(LIBDIR) $(ADAPTERS_VENV)/bin/pip wheel -q --disable-pip-version-check --no-deps -w $(ADAPTERS_WHEEL_DIR) .
	for v in $(ADAPTERS_VENV) $(CREWAI_VENV); do \
	  $$v/bin/pip install -q --disable-pip-version-check --no-deps --force-reinstall $(ADAPTERS_WHEEL_DIR)/microloop-*.whl || exit 1; done

test-adapters: adapters-install
	cd tests/adapters && env $(CREWAI_ENV) $(ADAPTERS_VENV)/bin/pytest -q -p no:cacheprovider --ignore=test_crewai.py .
	cd tests/adapters && home=$$(mktemp -d) && env $(CREWAI_ENV) HOME=$$home XDG_DATA_HOME=$$home XDG_CONFIG_HOME=$$home \
	  $(CREWAI_VENV)/bin/pytest -q -p no:cacheprovider test_crewai.py; rc=$$?; rm -rf $$home; exit $$rc

bench-adapters: adapters-install
	env $(CREWAI_ENV) $(ADAPTERS_VENV)/bin/pytest -q -p no:cacheprovider bench/bench_adapters.py -k "not crewai" --benchmark-columns=min,median,mean,rounds
	home=$$(mktemp -d) && env $(CREWAI_ENV) HOME=$$home XDG_DATA_HOME=$$home XDG_CONFIG_HOME=$$home \
	  $(CREWAI_VENV)/bin/pytest -q -p no:cacheprovider bench/bench_adapters.py -k crewai --benchmark-columns=min,median,mean,rounds; rc=$$?; rm -rf $$home; exit $$rc

# --- Python: the package in a local virtualenv (.venv), its suite and benchmarks (bench/RESULTS.md "Python")
.PHONY: python test-python bench-python bench-hook python-dist
PYTHON ?= python3
VENV := $(ROOT)/.venv
VENV_PY := $(VENV)/bin/python

# The package, installed editable against the library `make lib` built (no second cargo build).
python: lib
	@$(MAKE) --no-print-directory $(VENV)/.ext

$(VENV)/.deps: requirements-dev.txt
	test -x $(VENV_PY) || $(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(VENV)/.ext: $(VENV)/.deps $(LIBDIR)/libmicroloop.a $(LIBDIR)/libmicroloop.so $(LIBDIR)/microloop-commands include/microloop.h build_ffi.py setup.py pyproject.toml
	MICROLOOP_LIB_DIR=$(LIBDIR) $(VENV_PY) -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps -e .
	touch $@

test-python: python
	$(VENV_PY) -m pytest tests/python -q -p no:cacheprovider

# One coding-agent hook invocation vs. a Python hook script, same run (bench/RESULTS.md "Coding-agent hook").
# The hook pip installs (stripped), in .venv/bin.
bench-hook: python
	$(VENV_PY) bench/hook_bench.py 1000 $(VENV)/bin/microloop-hook

bench-python: python
	$(VENV_PY) -m pytest bench/bench_python.py -q -p no:cacheprovider --benchmark-columns=min,median,mean,ops,rounds

# `python -m build` (sdist, then a wheel built from it with cargo), installed into a fresh virtualenv.
python-dist:
	rm -rf build/dist build/venv-wheel
	$(VENV_PY) -m build --outdir build/dist .
	$(PYTHON) -m venv build/venv-wheel
	build/venv-wheel/bin/pip install -q build/dist/*.whl
	cd build && venv-wheel/bin/python -c "import microloop, os; g = microloop.Guardrail(); print(microloop.__version__, g.check('t', {}).action, os.path.exists(microloop.lib_path()))"
	build/venv-wheel/bin/microloop demo > /dev/null

# --- Lint: clippy (warnings are errors) on the Rust workspace; ruff and mypy on the Python package,
# pinned in requirements-dev.txt and configured in pyproject.toml.
.PHONY: lint
lint: $(VENV)/.deps
	$(CARGO) clippy --locked --manifest-path native/Cargo.toml --workspace --all-targets -- -D warnings
	$(VENV)/bin/ruff check microloop
	$(VENV)/bin/mypy

# --- The LLM-API proxy (native/proxy): run it, test it with the official openai/anthropic clients, load-test it
PROXY_VENV := $(ROOT)/.venv-proxy
PROXY_BIN := $(ROOT)/native/target/release/microloop-proxy
.PHONY: proxy proxy-build test-proxy bench-proxy
proxy-build:
	$(CARGO) build --release --locked --manifest-path native/Cargo.toml -p microloop-proxy

proxy: proxy-build
	$(PROXY_BIN) $(PROXY_ARGS)

$(PROXY_VENV)/.ok: tests/proxy/requirements.txt
	test -x $(PROXY_VENV)/bin/python || python3 -m venv $(PROXY_VENV)
	$(PROXY_VENV)/bin/pip install -q -r tests/proxy/requirements.txt
	touch $@

# pytest exit 5 (nothing collected) is a failure here: these tests must run.
# `microloop replay` (the package in .venv) reads what the proxy logs in shadow mode.
test-proxy: proxy-build $(PROXY_VENV)/.ok python
	MICROLOOP_PROXY_BIN=$(PROXY_BIN) MICROLOOP_CLI=$(VENV)/bin/microloop $(PROXY_VENV)/bin/python -m pytest tests/proxy -q -p no:cacheprovider \
	  --ignore=tests/proxy/test_proxy_agents.py

# The real Claude Code and Codex CLI (tests/agents' pinned install) through the proxy.
.PHONY: test-proxy-agents
test-proxy-agents: proxy-build $(PROXY_VENV)/.ok agents-install
	MICROLOOP_PROXY_BIN=$(PROXY_BIN) MICROLOOP_AGENTS_BIN=$(AGENTS_NPM)/node_modules/.bin \
	  $(PROXY_VENV)/bin/python -m pytest tests/proxy/test_proxy_agents.py -q -p no:cacheprovider

bench-proxy: proxy-build
	SKIP_BUILD=1 bash bench/proxy_load.sh

# The proxy at RATE req/s for MINUTES minutes: RSS, descriptors and p99 per minute (bench/RESULTS.md "Proxy soak").
.PHONY: bench-soak
bench-soak: proxy-build
	SKIP_BUILD=1 nice bash bench/soak.sh $(or $(MINUTES),30) $(or $(RATE),1000)

NPM ?= npm
NODE ?= node
# koffi, pinned by bindings/node/package-lock.json, from npm into bindings/node/node_modules.
bindings/node/node_modules/.package-lock.json: bindings/node/package.json bindings/node/package-lock.json
	cd bindings/node && $(NPM) ci --no-audit --no-fund

test-node: lib bindings/node/node_modules/.package-lock.json
	cd bindings/node && $(NODE) --test test/

bench-node: lib bindings/node/node_modules/.package-lock.json
	cd bindings/node && $(NODE) bench/check.js 500000

# --- The audit log (native/audit): its Rust tests, then a log it wrote read by Go's sumdb/note and
# sumdb/tlog (tests/audit/go, golang.org/x/mod pinned in go.mod/go.sum).
.PHONY: test-audit
AUDIT_FIXTURE := $(ROOT)/build/audit-fixture
test-audit:
	$(CARGO) test --release --locked --manifest-path native/Cargo.toml -p microloop-audit
	$(CARGO) run --release --locked --manifest-path native/Cargo.toml -p microloop-audit --example fixture -- $(AUDIT_FIXTURE) 1000
	cd tests/audit/go && $(GO) vet ./... && MICROLOOP_AUDIT_FIXTURE=$(AUDIT_FIXTURE) $(GO) test -count=1 -v ./...

# --- Coding agents (tests/agents): the real Claude Code, Codex CLI and Gemini CLI, pinned by
# tests/agents/package-lock.json, installed by `npm ci` into .tools/agents (again only when the lock
# changes), each driven offline against a scripted model on loopback, with and without the hook.
.PHONY: agents-install test-agents
AGENTS_NPM := $(TOOLS)/agents

agents-install:
	@if ! cmp -s tests/agents/package-lock.json $(AGENTS_NPM)/installed-lock.json; then \
	  set -e; rm -rf $(AGENTS_NPM); mkdir -p $(AGENTS_NPM); \
	  cp tests/agents/package.json tests/agents/package-lock.json $(AGENTS_NPM)/; \
	  echo "npm ci: the agents' CLIs into $(AGENTS_NPM)"; \
	  cd $(AGENTS_NPM) && $(NPM) ci --no-audit --no-fund --loglevel=error; \
	  cp package-lock.json installed-lock.json; fi

test-agents: python agents-install
	MICROLOOP_AGENTS_BIN=$(AGENTS_NPM)/node_modules/.bin MICROLOOP_HOOK_BIN=$(LIBDIR)/microloop-hook \
	  $(VENV_PY) -m pytest tests/agents -q -p no:cacheprovider

# --- `microloop replay --html` (tests/replay): the report opened in a real headless Chromium (Debian's
# `chromium`, driven over the DevTools protocol on a pipe); the screenshot lands in build/test-artifacts.
# The log formats themselves are tested in tests/python (test-python).
.PHONY: test-replay bench-replay
test-replay: python
	MICROLOOP_ARTIFACTS=$(ROOT)/build/test-artifacts $(VENV_PY) -m pytest tests/replay -q -p no:cacheprovider

bench-replay: python
	$(VENV_PY) bench/bench_replay.py

# --- The MCP relay (tests/mcp): the official Python SDK client and servers (`mcp` on PyPI) and the
# OpenAI Agents SDK in .venv-mcp, the TypeScript SDK client and the reference filesystem server
# (npm, pinned by tests/mcp/package-lock.json), all offline through native/mcp's microloop-mcp.
.PHONY: test-mcp bench-mcp
MCP_VENV := $(ROOT)/.venv-mcp

$(MCP_VENV)/.deps: tests/mcp/requirements.txt
	test -x $(MCP_VENV)/bin/python || $(PYTHON) -m venv $(MCP_VENV)
	$(MCP_VENV)/bin/pip install -q --disable-pip-version-check -r tests/mcp/requirements.txt
	touch $@

tests/mcp/node_modules/.package-lock.json: tests/mcp/package.json tests/mcp/package-lock.json
	cd tests/mcp && $(NPM) ci --no-audit --no-fund

# Added latency per tools/call through the stdio relay vs the same server direct (bench/RESULTS.md "MCP relay").
bench-mcp: lib
	$(CARGO) build --release --locked --manifest-path native/Cargo.toml -p microloop-mcp --examples
	$(LIBDIR)/examples/stdio_bench $(LIBDIR)/microloop-mcp $(LIBDIR)/examples/echo_server $(or $(CALLS),20000)

test-mcp: lib $(MCP_VENV)/.deps tests/mcp/node_modules/.package-lock.json
	cd tests/mcp && OPENAI_AGENTS_DISABLE_TRACING=1 MICROLOOP_MCP=$(LIBDIR)/microloop-mcp \
	  $(MCP_VENV)/bin/pytest -q -p no:cacheprovider .

# --- Fuzzing (native/fuzz, its own workspace): cargo-fuzz, pinned, on the nightly toolchain (libFuzzer,
# AddressSanitizer, debug assertions). `make fuzz FUZZ_S=60` runs every target for FUZZ_S seconds on a
# corpus seeded by native/fuzz/seeds.py (tests/vectors, policies, tests/data; not committed); a crash
# stops it, its input in native/fuzz/artifacts/<target>/ (`make fuzz-repro`). `make fuzz-smoke`, part
# of `make test`, runs each for 60 s (FUZZ_SMOKE_S), so the targets keep building and finding nothing.
# `make miri`: the core's tests under Miri. See bench/RESULTS.md "Fuzzing".
.PHONY: fuzz fuzz-build fuzz-seeds fuzz-smoke fuzz-repro miri
CARGO_FUZZ_VERSION := 0.13.2
CARGO_FUZZ := $(TOOLS)/cargo-fuzz-$(CARGO_FUZZ_VERSION)/bin/cargo-fuzz
FUZZ_TARGETS := ffi_calls policy fingerprint_diff shell_effect proxy_request proxy_response proxy_stream mcp_guard
FUZZ_S ?= 60
FUZZ_DIR := $(ROOT)/native/fuzz
# -timeout: an input that takes 20 s is a hang; -rss_limit_mb: a leak or a blow-up is a crash.
FUZZ_FLAGS ?= -timeout=20 -rss_limit_mb=3072 -max_len=65536 -print_final_stats=1
NIGHTLY := $(CARGO) +nightly

$(CARGO_FUZZ):
	@$(NIGHTLY) --version >/dev/null 2>&1 || { echo "fuzzing needs the nightly toolchain (rustup toolchain install nightly)"; exit 1; }
	$(CARGO) install --locked cargo-fuzz@$(CARGO_FUZZ_VERSION) --root $(TOOLS)/cargo-fuzz-$(CARGO_FUZZ_VERSION)

fuzz-build: $(CARGO_FUZZ)
	cd native && PATH=$(dir $(CARGO_FUZZ)):$$PATH $(NIGHTLY) fuzz build --fuzz-dir fuzz --debug-assertions

fuzz-seeds:
	python3 $(FUZZ_DIR)/seeds.py $(ROOT)

fuzz: fuzz-build fuzz-seeds
	@set -e; mkdir -p $(FUZZ_DIR)/artifacts; cd native; for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz $$t: $(FUZZ_S) s"; \
	  PATH=$(dir $(CARGO_FUZZ)):$$PATH nice -n 10 $(NIGHTLY) fuzz run --fuzz-dir fuzz --debug-assertions $$t \
	    -- -max_total_time=$(FUZZ_S) $(FUZZ_FLAGS) 2>&1 | tee $(FUZZ_DIR)/artifacts/$$t.log | grep -E "^(Done|stat::|==|SUMMARY|thread)" ; \
	  test $${PIPESTATUS[0]} -eq 0 || { echo "fuzz $$t: a crash; see native/fuzz/artifacts/$$t/"; exit 1; }; \
	done; echo "fuzz: every target ran $(FUZZ_S) s without a crash"

fuzz-smoke:
	$(MAKE) --no-print-directory fuzz FUZZ_S=$(or $(FUZZ_SMOKE_S),60)

# Re-runs one crash: make fuzz-repro T=ffi_calls A=native/fuzz/artifacts/ffi_calls/crash-...
fuzz-repro: fuzz-build
	cd native && PATH=$(dir $(CARGO_FUZZ)):$$PATH $(NIGHTLY) fuzz run --fuzz-dir fuzz --debug-assertions $(T) $(abspath $(A))

miri:
	cd native && MIRIFLAGS=-Zmiri-disable-isolation $(NIGHTLY) miri test --manifest-path core/Cargo.toml

# --- Installing without a toolchain (packaging/, docs/packaging.md). `make wheel`: the sdist, then
# manylinux2014 (glibc 2.17) abi3 wheels for x86_64 and aarch64, cross-linked with zig (ziglang from
# PyPI, cargo-zigbuild from crates.io, both pinned, cached under .tools/), checked by auditwheel.
# test-wheel: the wheel in a fresh virtualenv on a PATH without cargo or a C compiler, the npm pack
# with the prebuilt library in an empty project, the Go module on the prebuilt static library.
.PHONY: wheel test-wheel test-wheel-python test-sdist bench-wheel-check test-node-pack go-prebuilt test-go-prebuilt
CARGO_ZIGBUILD_VERSION := 0.24.1
CARGO_ZIGBUILD := $(TOOLS)/cargo-zigbuild-$(CARGO_ZIGBUILD_VERSION)/bin/cargo-zigbuild
WHEEL_VENV := $(TOOLS)/wheel-venv
WHEEL_DIR := $(ROOT)/build/wheelhouse
DIST_X86_64 := $(ROOT)/native/target/x86_64-unknown-linux-gnu/dist

$(CARGO_ZIGBUILD):
	$(CARGO) install cargo-zigbuild --version $(CARGO_ZIGBUILD_VERSION) --locked --root $(TOOLS)/cargo-zigbuild-$(CARGO_ZIGBUILD_VERSION)

$(WHEEL_VENV)/.ok: packaging/requirements.txt
	test -x $(WHEEL_VENV)/bin/python || $(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/pip install -q --disable-pip-version-check -r packaging/requirements.txt
	touch $@

wheel: $(CARGO_ZIGBUILD) $(WHEEL_VENV)/.ok
	CARGO_ZIGBUILD=$(CARGO_ZIGBUILD) WHEEL_PY=$(WHEEL_VENV)/bin/python WHEEL_DIR=$(WHEEL_DIR) bash packaging/wheel.sh

test-wheel: test-wheel-python test-node-pack test-go-prebuilt

test-wheel-python: wheel
	WHEEL_DIR=$(WHEEL_DIR) PYTHON=$(PYTHON) bash tests/wheel/run.sh

# Instructions per ml_check_call / ml_record_result in the library the x86_64 wheel ships (`dist`
# profile, sized down) against `make lib`'s (release), same run (bench/check_so.sh; bench/RESULTS.md "Wheels").
bench-wheel-check: wheel lib
	bash bench/check_so.sh $(DIST_X86_64) $(LIBDIR)

# The sdist built from source with cargo (the dependencies `make lib` compiled are reused). Not in
# `make test`: about 8 min of CPU (bench/RESULTS.md "Wheels").
test-sdist: wheel lib
	WHEEL_DIR=$(WHEEL_DIR) PYTHON=$(PYTHON) bash tests/wheel/sdist.sh

# The npm package with the x86_64 library `make wheel` built (build/wheel-test/node/*.tgz).
test-node-pack: wheel
	MICROLOOP_PREBUILT_LIB=$(DIST_X86_64)/libmicroloop.so bash tests/wheel/node.sh

# The header and the static library into bindings/go (gitignored; a release commits them).
go-prebuilt: wheel
	install -d bindings/go/include bindings/go/lib/linux-amd64
	install -m 644 include/microloop.h bindings/go/include/
	install -m 644 $(DIST_X86_64)/libmicroloop.a bindings/go/lib/linux-amd64/

test-go-prebuilt: go-prebuilt
	GO=$(GO) bash tests/wheel/go.sh
