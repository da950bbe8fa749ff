#!/usr/bin/env bash
# Builds every libFuzzer target with clang (-fsanitize=fuzzer,address,undefined)
# into build-fuzz/, seeds a corpus per target from the repository's files and
# runs each target for SECONDS (default 60), JOBS targets at a time (default:
# the number of CPUs). Prints, per target, the executions and whether it found
# a crash; exits 1 if any did (the crash files stay in build-fuzz/crashes/).
#   fuzz/run.sh [SECONDS]          e.g. fuzz/run.sh 1800 for the 30 minutes of issue 11
#   FUZZ_JOBS=1 fuzz/run.sh 60     one target at a time
#   FUZZ_TARGETS="idx npz" fuzz/run.sh   some targets only
#   FUZZ_DIR=build-fuzz2 fuzz/run.sh     another build folder
# Corpora grow in build-fuzz/corpus/TARGET across runs; each run is seeded
# again from the repository, so deleting build-fuzz/ loses only what the
# fuzzer found on its own.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
jobs=${FUZZ_JOBS:-$(nproc)}
targets=(${FUZZ_TARGETS:-model npy safetensors npz idx idx_gz checkpoint onnx})
dir=${FUZZ_DIR:-build-fuzz}
CC=${CC_FUZZ:-clang}

build() {
  if [ ! -f "$dir/build.ninja" ]; then
    CC=$CC meson setup "$dir" -Db_sanitize=address,undefined -Db_lundef=false -Dtests=false \
      -Dwerror=false -Dmpi=disabled -Dc_args=-fsanitize=fuzzer-no-link >"$TMPDIR/nabla-fuzz-setup.log" 2>&1 ||
      { cat "$TMPDIR/nabla-fuzz-setup.log"; return 1; }
  fi
  ninja -C "$dir" libnabla.a >"$dir/ninja.log" 2>&1 || { cat "$dir/ninja.log"; return 1; }
  local libs
  libs=$(pkg-config --libs openblas yaml-0.1 libcgraph libgvc jansson zlib libzip libprotobuf-c) || return 1
  for t in "${targets[@]}"; do
    local src=fuzz/${t}_fuzz.c flags=()
    [ "$t" = idx_gz ] && { src=fuzz/idx_fuzz.c; flags=(-DFUZZ_GZ); }
    $CC -g -O1 -fsanitize=fuzzer,address,undefined "${flags[@]}" -Iinclude -Isrc -I"$dir/include" -I"$dir/graph/onnx" -Ifuzz "$src" \
      "$dir/libnabla.a" $libs -lm -lpthread -o "$dir/${t}_fuzz" || return 1
  done
}

# The repository's files a target reads: its seeds.
seeds() {
  case $1 in
    model) ls examples/models/*.yaml tests/conformance/*.yaml tests/bad/yaml/*.yaml ;;
    npy) find tests/conformance tests/bad/npy -name '*.npy' ;;
    safetensors) find tests/conformance tests/bad/safetensors -name '*.safetensors' ;;
    npz) find tests/data tests/bad/npz -name '*.npz' ;;
    idx) find tests/bad/idx -type f ! -name '*.yaml' ! -name '*.safetensors' ;;
    idx_gz) find tests/bad/idx -type f ! -name '*.gz' ! -name '*.yaml' ! -name '*.safetensors' ;;
    checkpoint) find tests/bad/checkpoint -name '*.safetensors' ;;
    onnx) find tests/data/onnx tests/data/onnx_pad examples/onnx -name '*.onnx' ;;
  esac 2>/dev/null
}

dict() {
  [ -f "fuzz/$1.dict" ] && echo "-dict=fuzz/$1.dict"
}

# Runs target $1 for $secs seconds; its log goes to $dir/logs/$1.log.
run_one() {
  local t=$1 corpus=$dir/corpus/$1
  mkdir -p "$corpus" "$dir/crashes/$t" "$dir/logs"
  seeds "$t" | while read -r f; do cp "$f" "$corpus/seed-$(echo "$f" | tr / _)"; done
  # -rss_limit_mb: an input that makes nabla take more than 2 GB is a finding too.
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$dir/${t}_fuzz" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$dir/crashes/$t/" $(dict "$t") "$corpus" >"$dir/logs/$t.log" 2>&1
  echo $? >"$dir/logs/$t.rc"
}

export TMPDIR=${TMPDIR:-/tmp}
build || { echo "fuzz: build failed"; exit 2; }
running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
done
wait
failed=0
for t in "${targets[@]}"; do
  rc=$(cat "$dir/logs/$t.rc")
  execs=$(grep -a "stat::number_of_executed_units" "$dir/logs/$t.log" | awk '{print $2}')
  crashes=$(ls "$dir/crashes/$t" | wc -l)
  if [ "$rc" -ne 0 ]; then
    failed=1
    echo "$t: ${execs:-?} execs in ${secs} s: CRASH (exit $rc), see $dir/logs/$t.log and $dir/crashes/$t/"
    grep -a -m3 "ERROR:\|runtime error\|Test unit written" "$dir/logs/$t.log" | sed 's/^/  /'
  else
    earlier=""
    [ "$crashes" -gt 0 ] && earlier=" ($crashes crash files of earlier runs in $dir/crashes/$t/)"
    echo "$t: ${execs:-?} execs in ${secs} s: no crash$earlier"
  fi
done
exit $failed
