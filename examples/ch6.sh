#!/usr/bin/env bash
# Chapter 6 of "Deep Learning from Scratch" (Saito), "Training techniques", as
# pictures made with nabla on Fashion-MNIST: optimizers, weight initialisation,
# batch normalisation, overfitting with weight decay and dropout.
#
#   examples/ch6.sh [OUTDIR]        (default OUTDIR: docs/ch6)
#
# The nabla binary is $NABLA, or build/tools/nabla of this source tree. The
# models are examples/ch6/*.yaml; their data is found as every model's is
# (/usr/share/datasets/fashion-mnist from the dataset-fashion-mnist package,
# or --data / $NABLA_DATA). Training logs and activations go to a temporary
# folder, removed at the end; set WORK=DIR to keep them in DIR instead.
# Every run is seeded, so a rerun draws the same pictures.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
nabla=${NABLA:-$root/build/tools/nabla}
out=${1:-docs/ch6}
models=$root/examples/ch6

if [[ ! -x $nabla ]]; then
    echo "ch6.sh: no nabla at $nabla (build it: meson setup build && ninja -C build, or set NABLA)" >&2
    exit 2
fi
mkdir -p "$out"
if [[ -n ${WORK:-} ]]; then
    work=$WORK
    mkdir -p "$work"
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi

# Prints a command.
show() {
    printf '  $'
    printf ' %q' "$@"
    printf '\n'
}

# Prints a command, then runs it.
run() {
    show "$@"
    "$@"
}

# train MODEL LOG [FLAGS...]: trains, keeps the epoch lines in LOG.out, prints the last.
train() {
    local model=$1 log=$2
    shift 2
    local cmd=("$nabla" train "$models/$model.yaml" --log "$work/$log.csv" "$@")
    show "${cmd[@]}"
    "${cmd[@]}" >"$work/$log.out"
    echo "    $(tail -n 1 "$work/$log.out")"
}

section() { printf '\n== %s\n' "$*"; }
start=$SECONDS

# ---------------------------------------------------------------------------
section "1. Optimizers (book 6.1.8, Fig 6-9): 784-100-100-100-100-10 ReLU MLP, He init," \
        "batch 128, 40 epochs on the first 6000 training images (~1900 steps)"
train optimizers opt_sgd      --optimizer sgd      --lr 0.01
train optimizers opt_momentum --optimizer momentum --lr 0.01
train optimizers opt_adagrad  --optimizer adagrad  --lr 0.01
train optimizers opt_adam     --optimizer adam     --lr 0.001
echo "-> $out/optimizers.png"
run "$nabla" plot "$work"/opt_{sgd,momentum,adagrad,adam}.csv --y train_loss \
    --label "SGD (lr 0.01)" --label "Momentum (lr 0.01)" --label "AdaGrad (lr 0.01)" \
    --label "Adam (lr 0.001)" --title "Optimizers: train loss, 5-layer MLP, 6000 images" \
    -o "$out/optimizers.png"

# ---------------------------------------------------------------------------
section "2a. Weight init (book 6.2.2, Fig 6-10/6-11/6-13/6-14): activations of 5 layers" \
        "of 100 units on 1000x100 standard-normal input, no training"
hist() { # NAME TITLE RANGE
    local name=$1 title=$2 range=$3
    run "$nabla" run "$models/init_$name.yaml" -o "$work/init_$name"
    echo "-> $out/init_$name.png"
    run "$nabla" plot --hist "$work/init_$name"/a{1,2,3,4,5}.npy --bins 30 --range "$range" \
        --label "layer 1" --label "layer 2" --label "layer 3" --label "layer 4" --label "layer 5" \
        --title "$title" -o "$out/init_$name.png"
}
hist sigmoid_std1   "Sigmoid, weights std 1: activations pile up at 0 and 1" 0,1
hist sigmoid_std001 "Sigmoid, weights std 0.01: every activation near 0.5" 0,1
hist sigmoid_xavier "Sigmoid, Xavier init (std 1/sqrt(100)): activations spread out" 0,1
# ReLU sets about half of the activations to exactly 0; a range starting just
# above 0 leaves them out (values outside the range are not counted), so the
# histogram shows how the other half is spread (the book clips the y axis).
hist relu_std001    "ReLU, weights std 0.01: activations vanish (exact zeros left out)" 1e-9,1
hist relu_xavier    "ReLU, Xavier init: activations shrink layer by layer (exact zeros left out)" 1e-9,1
hist relu_he        "ReLU, He init (std sqrt(2/100)): the same spread in every layer (exact zeros left out)" 1e-9,1

section "2b. Weight init and learning (book 6.2.4, Fig 6-15): the 5-layer ReLU MLP, SGD lr 0.01," \
        "batch 128, 40 epochs on the first 6000 training images"
train init_loss_std001 init_std001
train init_loss_xavier init_xavier
train init_loss_he     init_he
echo "-> $out/init_loss.png"
run "$nabla" plot "$work"/init_{std001,xavier,he}.csv --y train_loss \
    --label "std 0.01" --label "Xavier" --label "He" \
    --title "Weight init: train loss, 5-layer ReLU MLP, SGD" -o "$out/init_loss.png"

# ---------------------------------------------------------------------------
section "3. Batch norm (book 6.3.2, Fig 6-18/6-19): 784-(100)x5-10 ReLU MLP with and without" \
        "Affine-BatchNorm-ReLU, SGD lr 0.01, batch 100, 30 epochs on the first 1200 images"
train batchnorm_off        bn_off
train batchnorm_on         bn_on
train batchnorm_off_std001 bn_off_std001
train batchnorm_on_std001  bn_on_std001
echo "-> $out/batchnorm.png"
run "$nabla" plot "$work"/bn_{on,off}.csv --y train_acc \
    --label "batch norm" --label "no batch norm" \
    --title "Batch norm, He init: train accuracy, 1200 images" -o "$out/batchnorm.png"
echo "-> $out/batchnorm_std001.png"
run "$nabla" plot "$work"/bn_{on,off}_std001.csv --y train_acc \
    --label "batch norm" --label "no batch norm" \
    --title "Batch norm, init std 0.01: train accuracy, 1200 images" -o "$out/batchnorm_std001.png"

# ---------------------------------------------------------------------------
section "4. Overfitting (book 6.4, Fig 6-20/6-21/6-23): 784-(100)x6-10 ReLU MLP, SGD lr 0.01," \
        "batch 100, 200 epochs on the first 300 images; 'test' is the other 59700"
train overfit              overfit
train overfit_weight_decay overfit_wd
train overfit_dropout      overfit_dropout
echo "-> $out/overfit.png"
run "$nabla" plot "$work/overfit.csv" \
    --title "No regularisation: train vs held-out (300 training images)" -o "$out/overfit.png"
echo "-> $out/overfit_weight_decay.png"
run "$nabla" plot "$work/overfit_wd.csv" \
    --title "Weight decay 0.1: train vs held-out (300 training images)" -o "$out/overfit_weight_decay.png"
echo "-> $out/overfit_dropout.png"
run "$nabla" plot "$work/overfit_dropout.csv" \
    --title "Dropout 0.15: train vs held-out (300 training images)" -o "$out/overfit_dropout.png"
echo "-> $out/overfit_heldout.png"
run "$nabla" plot "$work"/overfit{,_wd,_dropout}.csv --y test_acc \
    --label "none" --label "weight decay 0.1" --label "dropout 0.15" \
    --title "Held-out accuracy (59700 images), 300 training images" -o "$out/overfit_heldout.png"

printf '\ndone in %d s; pictures in %s\n' $((SECONDS - start)) "$out"
