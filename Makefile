# tenantd - the commands a user runs. CMake does the building underneath.
#   make deps   install the Debian packages the build, the database and the tests need
#   make        build build/tenantd
#   make run    start tenantd with an embedded PostgreSQL under ./var
#   make test   unit + integration tests, a 60 s run of each fuzz target, then the tests
#               again under ASan/UBSan

DEPS := build-essential cmake pkg-config clang libclang-rt-14-dev \
	libmicrohttpd-dev libpq-dev postgresql-15 postgresql-contrib \
	libjansson-dev libjwt-dev libsodium-dev libcmocka-dev libcurl4-openssl-dev \
	pgbouncer pgbackrest wrk valgrind chromium nodejs strace
JOBS ?= $(shell nproc)

.PHONY: all deps console-deps build run test test-asan memcheck clean format bench bench-syscalls bench-groupcommit bench-migrate bench-transfer bench-restore fuzz fuzz-smoke soak

all: build

deps:
	@missing=$$(for p in $(DEPS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build/CMakeCache.txt: | deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: deps build/CMakeCache.txt console-deps
	cmake --build build -j $(JOBS)

# playwright-core for the console's browser test (Chromium itself is Debian's, in DEPS);
# Debian's nodejs comes without npm, NodeSource's with it.
console-deps: tests/console/node_modules/.package-lock.json

tests/console/node_modules/.package-lock.json: tests/console/package-lock.json | deps
	@command -v npm >/dev/null || { SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends npm; }
	cd tests/console && npm ci --no-audit --no-fund --loglevel=error

run: build
	./build/tenantd serve $(if $(REPLICA),--replica $(REPLICA))

test: build
	cd build && ctest --output-on-failure -j 1
	$(MAKE) fuzz-smoke
	$(MAKE) test-asan

test-asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DTD_ASAN=ON >/dev/null
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j 1

memcheck: build
	cd build && TENANTD_VALGRIND=1 ctest --output-on-failure -j 1 -L integration

bench: deps
	bench/run.sh

bench-syscalls: build
	SYSCALL_BIN=$(CURDIR)/build/tenantd python3 bench/syscalls.py

bench-groupcommit: build
	BENCH_BIN=$(CURDIR)/build/tenantd python3 bench/groupcommit.py

bench-migrate: build
	bench/migrate.sh

bench-transfer: build
	bench/transfer.sh

# restore time of one tenant beside ~1 GiB of other data, and the write-path cost of archiving
bench-restore: build
	BENCH_BIN=$(CURDIR)/build/tenantd python3 bench/restore.py

fuzz: deps
	tests/fuzz/run.sh 600

fuzz-smoke: deps
	tests/fuzz/run.sh 60

soak: build
	tests/soak.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan
