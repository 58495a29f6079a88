# The two commands a new user needs (both install what is missing, then build):
#   make demo    runs the demo
#   make test    runs every test (what CI runs)
JOBS ?= 2
BUILD ?= build

.PHONY: all deps build demo test test-quick bench install format clean

all: build

deps:
	scripts/install-deps

build: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

demo: build
	scripts/demo $(BUILD)

test: deps
	JOBS=$(JOBS) scripts/run-tests

# The optimised build's tests only, without the sanitizer builds.
test-quick: deps
	JOBS=$(JOBS) SKIP_SANITIZERS=1 scripts/run-tests

bench: deps
	cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build-release -j$(JOBS) --target locmem_bench
	build-release/bench/locmem_bench --benchmark_min_time=1 --benchmark_repetitions=3 \
	  --benchmark_report_aggregates_only=true

install: build
	cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX))

format:
	git ls-files -co --exclude-standard -- '*.h' '*.cc' | grep -v '^build' | xargs clang-format -i

clean:
	rm -rf build build-asan build-tsan build-release
