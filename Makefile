# The two commands a new user needs (both install what is missing, then build):
#   make demo    runs the demo
#   make test    runs every test (what CI runs)
JOBS ?= 2
BUILD ?= build
CACHE ?= locmem
FULL ?= 0

# What the demo runs: scripts/demo runs slow_function_demo and the CLI; scripts/storefront-demo
# runs the storefront, the slow upstream and the CLI. Nothing else (no test) is built for it.
DEMO_TARGETS = storefront slow_upstream cachekit_cli slow_function_demo

.PHONY: all deps configure build demo demo-build test test-quick bench fuzz-long install format clean

all: build

deps:
	scripts/install-deps

configure: deps
	@echo "configuring $(BUILD)/ (cmake, RelWithDebInfo)"
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: configure
	cmake --build $(BUILD) -j$(JOBS)

# Only the demo's programs, with ninja's progress shown: on a fresh machine this is the wait
# before the demo starts.
demo-build: configure
	@echo "building the storefront, the slow upstream and the CLI in $(BUILD)/ (first run: a few minutes)…"
	@start=$$(date +%s); cmake --build $(BUILD) -j$(JOBS) --target $(DEMO_TARGETS) && \
	  echo "built in $$(($$(date +%s) - start)) s"

# The library tour (a slow function, the CLI), then the storefront story: a slow upstream, a
# locust load test before and after caching, the side-by-side table; then the upstream down
# during the load (stale-if-error) and the expiry boundaries (stale-while-revalidate, the
# refresh worker). CACHE=redis uses a throwaway redis-server (cache in database 2, the workers'
# broker in database 1); FULL=1 runs the lesson's full load (500 users); STEPS=fresh runs only
# the new steps (scripts/storefront-demo lists the knobs).
demo: demo-build
	scripts/demo $(BUILD)
	CACHE=$(CACHE) FULL=$(FULL) scripts/storefront-demo $(BUILD)

test: deps
	JOBS=$(JOBS) scripts/run-tests

# The optimised build's tests only, without the sanitizer builds.
test-quick: deps
	JOBS=$(JOBS) SKIP_SANITIZERS=1 scripts/run-tests

bench: deps
	cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build-release -j$(JOBS) --target locmem_bench redis_bench memcached_bench \
	  sql_bench page_cache_bench page_cache_server
	build-release/bench/locmem_bench --benchmark_min_time=1 --benchmark_repetitions=3 \
	  --benchmark_report_aggregates_only=true
	@echo "Peer comparisons (each starts its own servers; see BENCHMARKS.md):"
	@echo "  bench/redis_compare.sh build-release 5 10 100   # vs redis-benchmark, redis-cli"
	@echo "  bench/run-sql-bench.sh build-release 5 10       # vs pgbench, raw sqlite3"
	@echo "  bench/http/run.sh build-release 5 10            # page-cache hit vs nginx, wrk"
	@echo "  bench/http/hostile.py build-release/bench/http/page_cache_server 100 10  # hostile clients"
	@echo "  bench/http/corpus-vs-nginx.sh                    # robustness corpus vs nginx"
	@echo "  make fuzz-long                                   # request-path fuzzer, 10 minutes"

# The request-path fuzzer (src/server/fuzz) for 10 minutes; the corpus it grows stays in
# build-fuzz/request-corpus. make test runs it for 20 s.
fuzz-long: deps
	CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCACHEKIT_FUZZ=ON -DCACHEKIT_SANITIZE=address -DCACHEKIT_BUILD_TESTS=OFF \
	  -DCACHEKIT_BUILD_BENCH=OFF -DCACHEKIT_BUILD_APPS=OFF >/dev/null
	cmake --build build-fuzz -j$(JOBS) --target request_path_fuzz
	mkdir -p build-fuzz/request-corpus
	build-fuzz/src/server/request_path_fuzz -max_total_time=600 -max_len=8192 \
	  build-fuzz/request-corpus src/server/fuzz/corpus

install: build
	cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX))

format:
	git ls-files -co --exclude-standard -- '*.h' '*.cc' | grep -v '^build' | xargs clang-format -i

clean:
	rm -rf build build-asan build-tsan build-release
