#!/bin/sh
# tests/fuzz/run.sh [SECONDS] - build the libFuzzer targets (clang, ASan+UBSan) in
# build-fuzz and run each for SECONDS (default 60) on a copy of its committed seed corpus
# (tests/fuzz/corpus/<target>, never modified here). Prints executions per target; exits 1
# when any target found a crash (the reproducer is left in build-fuzz/fuzz-out/<target>/).
set -eu
secs=${1:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${TD_FUZZ_BUILD:-$root/build-fuzz}
jobs=$(nproc)

cmake -S "$root" -B "$build" -DTD_FUZZ=ON -DCMAKE_C_COMPILER=clang \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$jobs" --target fuzzers >/dev/null

status=0
summary=""
for drv in "$root"/tests/fuzz/fuzz_*.c; do
	name=$(basename "$drv" .c)
	target=${name#fuzz_}
	out=$build/fuzz-out/$target
	rm -rf "$out"
	mkdir -p "$out/corpus"
	cp "$root/tests/fuzz/corpus/$target"/* "$out/corpus/" 2>/dev/null || true
	dict=""
	[ -f "$root/tests/fuzz/$target.dict" ] && dict="-dict=$root/tests/fuzz/$target.dict"
	echo "== $name: ${secs}s"
	set +e
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		"$build/tests/fuzz/$name" -max_total_time="$secs" -max_len=4096 -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$out/" $dict \
		"$out/corpus" >"$out/log" 2>&1
	rc=$?
	set -e
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/log" | tail -1)
	[ -n "$execs" ] || execs=$(grep -o 'DONE *[0-9]*\|#[0-9]*' "$out/log" | tail -1 | tr -dc 0-9)
	cov=$(grep -o 'cov: [0-9]*' "$out/log" | tail -1 | tr -dc 0-9)
	if [ $rc -ne 0 ]; then
		status=1
		echo "   CRASH (exit $rc); log: $out/log"
		grep -m 5 -E 'ERROR|runtime error|invariant broken|Test unit written' "$out/log" || true
		summary="$summary$name: ${execs:-?} executions, CRASH\n"
	else
		summary="$summary$name: ${execs:-?} executions, coverage ${cov:-?} edges, no crash\n"
	fi
done
printf "\nfuzz summary (%ss per target):\n$summary" "$secs"
exit $status
