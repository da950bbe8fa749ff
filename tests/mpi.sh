#!/bin/sh
# Data-parallel training over MPI (meson feature mpi), as CI runs it:
#   tests/mpi.sh NABLA MPI_HELPER LIBNABLA_MPI.so INCLUDE_DIR MPI_API
# 1. Equivalence: on an MLP without dropout or batchnorm, 2 processes with
#    global batch 64 end with the weights of 1 process with batch 64, within
#    1e-5 (f32) and 1e-8 (f64) relative to each tensor's largest value: after
#    20 steps (1280 samples), and over whole epochs whose last batch does not
#    split evenly (1001: 41 = 21 + 20; 1025: 1 sample, so process 1 has none).
#    A control shows the comparison can fail (per-process batches of 64).
# 2. The metrics: the train and test lines printed by process 0 (sharded
#    evaluation, reduced) are those of one process; --batch that does not
#    divide fails with one clear message; checkpoints resume on 1 and 2
#    processes, continuing the same training.
# 3. Failure: process 1 killed with SIGKILL mid-training -> mpirun ends within
#    a bounded time (timeout bounds the test, it must not be what ends it), the
#    last checkpoint is intact and resumes on 1 and 2 processes.
# Prints a Criterion-style synthesis line that tests/run.sh counts.
set -u
nabla=$1
helper=$2
lib=$3
inc=$4
api=$5
mpirun="mpirun --allow-run-as-root --oversubscribe -n 2"   # root in CI containers; 2 cores or fewer
# In containers the shared-memory transport's single-copy (CMA, ptrace) may be
# refused: copy through the shared segment instead.
export OMPI_MCA_btl_vader_single_copy_mechanism=none
export OPENBLAS_NUM_THREADS=1
# Under tests/run.sh --asan: OpenMPI's own allocations, kept to the end, are
# suppressed in tests/lsan.supp by its libraries' names; its libraries have no
# frame pointers, so LeakSanitizer must unwind with DWARF to see them.
[ -n "${ASAN_OPTIONS:-}" ] && export ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok: $1"; }
bad() { failed=$((failed + 1)); echo "FAIL: $1"; }
# check NAME COMMAND...: the command must succeed
check() {
  name=$1
  shift
  if "$@" >"$tmp/out" 2>&1; then ok "$name"; else bad "$name"; cat "$tmp/out"; fi
}

# ---- data and models ---------------------------------------------------------
data() {  # DIR TRAIN_SAMPLES: a training set and a 301-sample test set
  mkdir -p "$1/t" && "$helper" data "$1/t" 301 99 && mv "$1/t/x.npy" "$1/xt.npy" &&
    mv "$1/t/t.npy" "$1/tt.npy" && "$helper" data "$1" "$2" 1
}
# tanh, not relu: half a batch's sums round differently from the whole one's,
# and a relu input within rounding of 0 would switch a sample's gradient on or
# off (a different CPU's BLAS kernels could meet one); tanh keeps every
# difference at rounding size.
model() {  # DTYPE OPTIMIZER > yaml
  cat <<EOF
nabla: 1
name: mpi-mlp
seed: 3
dtype: $1
inputs:
  x: [N, 20]
  t: {shape: [N], dtype: i32}
nodes:
  - {name: h1, layer: dense, in: [x], units: 32, activation: tanh}
  - {name: h2, layer: dense, in: [h1], units: 16, activation: tanh}
  - {name: y, layer: dense, in: [h2], units: 4}
  - {name: loss, op: softmax_cross_entropy, in: [y, t]}
outputs: [y]
loss: loss
train:
  data:
    format: npy
    train: {x: x.npy, t: t.npy}
    test: {x: xt.npy, t: tt.npy}
  batch: 64
  epochs: 1
  optimizer: {type: $2, lr: 0.01}
EOF
}
for n in 1280 1001 1025 20000; do data "$tmp/d$n" $n || { echo "cannot make data"; exit 1; }; done
model f32 adam >"$tmp/f32.yaml"
model f64 adam >"$tmp/f64.yaml"
model f32 momentum >"$tmp/f32m.yaml"

one() { "$nabla" train "$@"; }
two() { $mpirun "$nabla" train "$@"; }

# ---- 1. equivalence ------------------------------------------------------------
# SET DTYPE TOLERANCE EPOCHS [MODEL]
equal() {
  set=$1 dt=$2 tol=$3 ep=$4 m=${5:-$2}
  tag="$m-$set-$ep"
  if one "$tmp/$m.yaml" --data "$tmp/d$set" --epochs "$ep" --save "$tmp/one-$tag.st" >"$tmp/one-$tag.out" &&
    two "$tmp/$m.yaml" --data "$tmp/d$set" --epochs "$ep" --save "$tmp/two-$tag.st" >"$tmp/two-$tag.out"; then
    check "$m: 2 processes = 1 process ($set samples, $ep epochs, batch 64) within $tol" \
      "$helper" compare "$tmp/two-$tag.st" "$tmp/one-$tag.st" "$tol"
    cat "$tmp/out"
  else
    bad "$m: training $set samples on 1 and 2 processes"
  fi
}
equal 1280 f32 1e-5 1
equal 1280 f64 1e-8 1
equal 1001 f32 1e-5 1
equal 1001 f64 1e-8 2
equal 1025 f64 1e-8 1
equal 1025 f32 1e-5 2 f32m

# control: 2 processes with a local batch of 64 each (global 128) are not 1 with 64
if two "$tmp/f64.yaml" --data "$tmp/d1280" --batch 128 --save "$tmp/two128.st" >/dev/null; then
  check "control: global batch 128 on 2 processes differs from batch 64 on 1" \
    "$helper" differ "$tmp/two128.st" "$tmp/one-f64-1280-1.st"
else
  bad "control run"
fi

# ---- 2. metrics, errors, resuming ----------------------------------------------------
# the epoch line without samples/s and time: train and test loss and accuracy
line() { grep '^epoch' "$1" | sed 's/ | [0-9,]* samples\/s.*//'; }
for tag in f64-1001-2 f64-1025-1; do
  if [ -n "$(line "$tmp/one-$tag.out")" ] && [ "$(line "$tmp/one-$tag.out")" = "$(line "$tmp/two-$tag.out")" ]; then
    ok "metrics ($tag): $(line "$tmp/two-$tag.out" | tail -n 1)"
  else
    bad "metrics ($tag) differ"; line "$tmp/one-$tag.out"; line "$tmp/two-$tag.out"
  fi
done
# 1268 f64 params and 2 step sums: 10,160 bytes per step
if [ "$(grep -c '^epoch' "$tmp/two-f64-1001-2.out")" = 2 ] && grep -q '^data-parallel: 2 processes x 32' "$tmp/two-f64-1001-2.out" &&
  [ "$(grep -c '^allreduce: 10,160 bytes per process per step, .* over 32 steps' "$tmp/two-f64-1001-2.out")" = 1 ]; then
  ok "process 0 alone prints (one line per epoch, one on the allreduces)"
else
  bad "printing"; cat "$tmp/two-f64-1001-2.out"
fi

two "$tmp/f32.yaml" --data "$tmp/d1280" --batch 63 >"$tmp/out" 2>&1
st=$?
if [ $st -ne 0 ] && [ "$(grep -c 'must be a multiple of 2 (e.g. --batch 64)' "$tmp/out")" = 1 ]; then
  ok "--batch 63 on 2 processes: exit $st, one message"
else
  bad "--batch 63 on 2 processes (exit $st)"; cat "$tmp/out"
fi

# a 2-process checkpoint after epoch 1 resumes on 1 process, and a 1-process one
# on 2 processes: both end where 2 epochs straight through end
resume() {  # FROM_RUNNER TO_RUNNER NAME
  $1 "$tmp/f64.yaml" --data "$tmp/d1001" --epochs 1 --save "$tmp/r-$3.st" >/dev/null &&
    $2 "$tmp/f64.yaml" --data "$tmp/d1001" --epochs 2 --resume "$tmp/r-$3.st" --save "$tmp/r-$3.st" >"$tmp/r-$3.out" &&
    "$helper" compare "$tmp/r-$3.st" "$tmp/one-f64-1001-2.st" 1e-8 && ! grep -q '^epoch 1/' "$tmp/r-$3.out"
}
check "a checkpoint of 2 processes resumes on 1" resume two one 2to1
check "a checkpoint of 1 process resumes on 2" resume one two 1to2

# the C API (tests/mpi_api.c): same params on every rank, --sync-bn's statistics
if $mpirun "$api" "$tmp/d1280" >"$tmp/api.out" 2>&1; then
  ok "the C API (mpi_api)"
else
  bad "the C API (mpi_api)"
fi
grep -E '^(ok|FAIL)' "$tmp/api.out" | sed 's/^/  /'
grep -q '^FAIL' "$tmp/api.out" && cat "$tmp/api.out"

# the library's exports: nb_mpi_* alone, each declared in nabla/mpi.h
nm -D --defined-only "$lib" | awk 'NF == 3 {print $3}' | sort -u >"$tmp/exported"
grep -oE '^NB_API .*\bnb_mpi_[a-z_]+\(' "$inc/mpi.h" | grep -oE 'nb_mpi_[a-z_]+' | sort -u >"$tmp/declared"
if [ -s "$tmp/declared" ] && cmp -s "$tmp/exported" "$tmp/declared"; then
  ok "libnabla-mpi exports nabla/mpi.h: $(tr '\n' ' ' <"$tmp/exported")"
else
  bad "libnabla-mpi exports"; diff "$tmp/exported" "$tmp/declared"
fi

# ---- 3. a process killed ---------------------------------------------------------------
# 20000 samples, many epochs, a checkpoint after each; once one exists, SIGKILL
# process 1 (a child of mpirun whose OMPI_COMM_WORLD_RANK is 1).
ck="$tmp/killed.st"
timeout 120 $mpirun "$nabla" train "$tmp/f32m.yaml" --data "$tmp/d20000" --epochs 100000 --save "$ck" \
  >"$tmp/kill.out" 2>&1 &
job=$!
i=0
while [ ! -f "$ck" ] && [ $i -lt 600 ] && kill -0 $job 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
sleep 0.3
victim=""
for d in /proc/[0-9]*; do  # (no pgrep: procps is not in every CI image)
  case "$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null)" in
    *"train $tmp/f32m.yaml --data $tmp/d20000"*)
      if tr '\0' '\n' <"$d/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1'; then victim=${d#/proc/}; fi ;;
  esac
done
start=$(date +%s)
if [ -n "$victim" ] && [ -f "$ck" ]; then
  kill -9 "$victim"
  wait $job
  st=$?
  took=$(( $(date +%s) - start ))
  if [ $st -ne 0 ] && [ $st -ne 124 ] && [ $took -le 60 ]; then
    ok "process 1 killed: mpirun ended by itself in $took s (exit $st)"
  else
    bad "process 1 killed: exit $st after $took s (124: the timeout ended it)"; tail -n 20 "$tmp/kill.out"
  fi
  e=$("$helper" meta "$ck" epoch)
  check "the last checkpoint (epoch $e) is intact and resumes on 1 process" \
    one "$tmp/f32m.yaml" --data "$tmp/d20000" --epochs $((e + 1)) --resume "$ck" --save "$tmp/k1.st"
  check "... and on 2 processes" \
    two "$tmp/f32m.yaml" --data "$tmp/d20000" --epochs $((e + 1)) --resume "$ck" --save "$tmp/k2.st"
  # How many epochs ran before the kill depends on the machine's speed and
  # load (1 to dozens). The model trains with momentum, not Adam: Adam divides
  # by the gradient's size, so once training has converged it turns f32
  # summation-order noise in tiny gradients into whole steps (8e-5 relative
  # seen at epoch 37, and more on a faster machine), while momentum keeps a
  # difference of order the rounding.
  check "... to the same weights" "$helper" compare "$tmp/k2.st" "$tmp/k1.st" 1e-4
  cat "$tmp/out"
else
  kill $job 2>/dev/null
  wait $job
  bad "no checkpoint or no process 1 to kill (pid '$victim')"; tail -n 20 "$tmp/kill.out"
fi

echo "[====] Synthesis: Tested: $((passed + failed)) | Passing: $passed | Failing: $failed | Crashing: 0"
[ $failed -eq 0 ]
