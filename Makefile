# The two commands a new user needs (both install what is missing, then build):
#   make demo    runs the demo
#   make test    runs every test (what CI runs)
JOBS ?= 2
BUILD ?= build
CACHE ?= locmem
FULL ?= 0

.PHONY: all deps build demo test test-quick bench install format clean

all: build

deps:
	scripts/install-deps

build: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

# The library tour (a slow function, the CLI), then the storefront story: a slow upstream, a
# locust load test before and after caching, the side-by-side table. CACHE=redis uses a
# throwaway redis-server (database 2); FULL=1 runs the lesson's full load (500 users).
demo: build
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

install: build
	cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX))

format:
	git ls-files -co --exclude-standard -- '*.h' '*.cc' | grep -v '^build' | xargs clang-format -i

clean:
	rm -rf build build-asan build-tsan build-release
