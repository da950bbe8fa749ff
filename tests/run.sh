#!/usr/bin/env bash
# Builds nabla and runs the whole test suite. Prints "N passed, N failed" as
# its last line (summed from Criterion's per-binary synthesis lines).
#   tests/run.sh                 build dir "build"
#   tests/run.sh --asan          build dir "build-asan", address+undefined sanitizers,
#                                leak checking in every test worker
#   tests/run.sh --tsan          build dir "build-tsan", ThreadSanitizer; builds and runs
#                                the tests that start threads, against a stand-in for
#                                Criterion's runner (tests/tsan/criterion/criterion.h says
#                                why). OpenBLAS is not instrumented: see tests/tsan.supp.
set -uo pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_NUM_THREADS=1
dir=build
setup=()
if [ "${1:-}" = "--asan" ]; then
  dir=build-asan
  setup=(-Db_sanitize=address,undefined -Db_lundef=false)
  export CRITERION_NO_EARLY_EXIT=1   # workers return from main, so LeakSanitizer runs
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23
  export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
fi
only=()
if [ "${1:-}" = "--tsan" ]; then
  dir=build-tsan
  setup=(-Db_sanitize=thread -Db_lundef=false)
  only=(test_threads_tsan test_contract_tsan test_shard_tsan test_threads_train_tsan test_parallel_tsan)
  export TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp:halt_on_error=0:exitcode=66:second_deadlock_stack=1"
fi
if [ ! -f "$dir/build.ninja" ]; then
  meson setup "$dir" "${setup[@]}" >/dev/null || { echo "0 passed, 1 failed"; exit 2; }
fi
targets=()
for t in "${only[@]}"; do targets+=("tests/$t"); done
[ ${#targets[@]} -gt 0 ] && targets+=(tools/nabla)  # test_threads_train runs the tool
if ! ninja -C "$dir" "${targets[@]}" >"$dir/nabla-ninja.log" 2>&1; then
  cat "$dir/nabla-ninja.log"; echo "0 passed, 1 failed"; exit 2
fi
meson test -C "$dir" --no-rebuild --print-errorlogs --num-processes 2 "${only[@]}" >"$dir/nabla-test.log" 2>&1
rc=$?
grep -E "^ *[0-9]+/[0-9]+ " "$dir/nabla-test.log"
[ $rc -ne 0 ] && cat "$dir/nabla-test.log" | tail -n 80
log="$dir/meson-logs/testlog.txt"
read -r tested passing < <(grep -ah "Synthesis: Tested:" "$log" |
  sed -E 's/.*Tested: ([0-9]+) \| Passing: ([0-9]+).*/\1 \2/' |
  awk '{t += $1; p += $2} END {print t + 0, p + 0}')
failed=$((tested - passing))
# Criterion's workers report leaks after the test verdict: count them here.
pat="ERROR: LeakSanitizer\|ERROR: AddressSanitizer\|runtime error:\|WARNING: ThreadSanitizer"
sanitizer=$(grep -ac "$pat" "$log")
if [ "$sanitizer" -gt 0 ]; then
  grep -a -A12 "$pat" "$log" | head -n 60
  failed=$((failed + sanitizer)); passing=$((passing > sanitizer ? passing - sanitizer : 0)); rc=1
fi
[ $rc -ne 0 ] && [ $failed -eq 0 ] && failed=1   # a binary crashed or timed out before its summary
# What failed, compactly, just above the count line (CI shows only the end):
# Criterion's failed tests with their assertion lines, and meson's failed binaries.
if [ $rc -ne 0 ] || [ $failed -ne 0 ]; then
  echo "---- failures ($dir) ----"
  grep -a -B4 "\[FAIL\]" "$log" | grep -a "\[FAIL\]\|\[----\]" | tail -n 24
  grep -a "^FAIL: " "$log" | tail -n 8   # tests/mpi.sh's own checks
  grep -aE "^ *[0-9]+/[0-9]+ .*(FAIL|TIMEOUT|ERROR)" "$dir/nabla-test.log" | tail -n 8
fi
echo "$passing passed, $failed failed"
[ $rc -eq 0 ] && [ $failed -eq 0 ]
