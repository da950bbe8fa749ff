#!/usr/bin/python3
"""PyTorch references for tests/test_hvp.c and tests/test_hvp_maxpool.c.

Run once from the repository root with Debian's Python (numpy, torch 1.13):
    /usr/bin/python3 tests/hvp/make_refs.py
It writes tests/hvp/CASE/ref/*.npy (and CASE/mask.npy); the tests read those
and never need Python.

Each case is a model file, a batch, a mode and a direction v. Every value
(inputs, params, running statistics, v) comes from `hashed` below, a formula
the C test computes bit for bit (integer arithmetic, then an exact division by
2^32), so no weights need storing. The references, in float64:
    loss, grad.NAME = d loss / d NAME, hv.NAME = d (sum_k grad_k . v_k) / d NAME
for every trainable param NAME, by torch.autograd.grad(create_graph=True).
A tensor of more than 4096 elements is stored sampled: elements 0, s, 2s, ...
with s = ceil(numel / 4096) (simple_convnet's fc1.W).

Training mode: batchnorm uses the batch's statistics (differentiated through,
as PyTorch does); the dropout mask is nabla's (ops/dropout.c): element i of
dropout node `stream` is dropped when nb_random_uniform(key, i) < rate with
key = nb_random_key(seed, step, stream), reproduced here with splitmix64 and
stored as CASE/mask.npy (1 kept, 0 dropped); the torch model multiplies by
mask / (1 - rate). The C test checks that nabla's mask is this one.
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(os.path.abspath(__file__))
MASK64 = (1 << 64) - 1
SAMPLE = 4096


def fnv1a(name):
    h = 0x811C9DC5
    for c in name.encode():
        h = ((h ^ c) * 0x01000193) & 0xFFFFFFFF
    return h


def unit(name, n):
    """n values in [-1, 1): ((i + 1) * 0x9E3779B1 + fnv1a(name) * 0x85EBCA77) mod 2^32 / 2^31 - 1"""
    i = np.arange(n, dtype=np.uint64)
    k = np.uint64(fnv1a(name))
    h = ((i + np.uint64(1)) * np.uint64(0x9E3779B1) + k * np.uint64(0x85EBCA77)) & np.uint64(0xFFFFFFFF)
    return h.astype(np.float64) / 2.0**31 - 1.0


def hashed(name, shape):
    """A param's value: unit * 1/sqrt(fan in) (fan in: dims after the first for
    rank >= 3, the first dim for rank 2) or unit / 2 for vectors."""
    n = int(np.prod(shape))
    if len(shape) >= 3:
        scale = 1 / np.sqrt(n // shape[0])
    elif len(shape) == 2:
        scale = 1 / np.sqrt(shape[0])
    else:
        scale = 0.5
    return (unit(name, n) * scale).reshape(shape)


def running(name, shape):
    """running_mean: unit / 5; running_var: 1 + unit / 2"""
    u = unit(name, int(np.prod(shape))).reshape(shape)
    return 1 + u / 2 if name.endswith("running_var") else u / 5


def labels(n):
    return np.array([(3 * i + 1) % 10 for i in range(n)], dtype=np.int64)


def mix64(z):
    z = (z + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def dropout_mask(seed, step, stream, n, rate):
    key = mix64(mix64(mix64(seed) ^ step) ^ stream)
    keep = [(mix64((key + i * 0x9E3779B97F4A7C15) & MASK64) >> 11) * 2.0**-53 >= rate for i in range(n)]
    return np.array(keep, dtype=np.float64)


# ---- the models, as model-format.md defines them ----

def bn_dropout(p, x, t, training, mask, pool):
    c1 = F.conv2d(x, p["c1.W"])
    bn1 = F.batch_norm(c1, p["bn1.running_mean"].clone(), p["bn1.running_var"].clone(),
                       p["bn1.gamma"], p["bn1.beta"], training=training, eps=1e-5)
    p1 = pool(F.relu(bn1), 2)
    h = p1.flatten(1) @ p["h.W"]
    bn2 = F.batch_norm(h, p["bn2.running_mean"].clone(), p["bn2.running_var"].clone(),
                       p["g2"], p["b2"], training=training, eps=1e-5)
    d2 = F.relu(bn2)
    if training:
        d2 = d2 * torch.tensor(mask).reshape(d2.shape) / (1 - 0.25)
    y = d2 @ p["y.W"] + p["y.b"]
    return F.cross_entropy(y, t)


def simple_convnet(p, x, t, training, mask, pool):
    c1 = F.relu(F.conv2d(x, p["c1.W"], p["c1.b"]))
    f1 = F.max_pool2d(c1, 2).flatten(1)
    fc1 = F.relu(f1 @ p["fc1.W"] + p["fc1.b"])
    return F.cross_entropy(fc1 @ p["y.W"] + p["y.b"], t)


BN_PARAMS = {"c1.W": (4, 1, 3, 3), "bn1.gamma": (4,), "bn1.beta": (4,), "h.W": (100, 16),
             "g2": (16,), "b2": (16,), "y.W": (16, 10), "y.b": (10,)}
BN_STATE = {"bn1.running_mean": (4,), "bn1.running_var": (4,), "bn2.running_mean": (16,),
            "bn2.running_var": (16,)}
CONV_PARAMS = {"c1.W": (30, 1, 5, 5), "c1.b": (30,), "fc1.W": (4320, 100), "fc1.b": (100,),
               "y.W": (100, 10), "y.b": (10,)}

# name, model function, pool, params, state, x shape, training
# Training runs use seed 11, step 0, and the dropout node d2 (node id 20).
SEED, STREAM, RATE = 11, 20, 0.25
CASES = [
    ("bn_dropout_avg_eval", bn_dropout, F.avg_pool2d, BN_PARAMS, BN_STATE, (4, 1, 12, 12), False),
    ("bn_dropout_avg_train", bn_dropout, F.avg_pool2d, BN_PARAMS, BN_STATE, (4, 1, 12, 12), True),
    ("bn_dropout_eval", bn_dropout, F.max_pool2d, BN_PARAMS, BN_STATE, (4, 1, 12, 12), False),
    ("bn_dropout_train", bn_dropout, F.max_pool2d, BN_PARAMS, BN_STATE, (4, 1, 12, 12), True),
    ("simple_convnet", simple_convnet, F.max_pool2d, CONV_PARAMS, {}, (2, 1, 28, 28), False),
]


def sampled(a):
    flat = a.reshape(-1)
    return flat[:: -(-flat.size // SAMPLE)] if flat.size > SAMPLE else flat


def make(case):
    name, model, pool, params, state, xshape, training = case
    out = os.path.join(HERE, name, "ref")
    os.makedirs(out, exist_ok=True)
    p = {k: torch.tensor(hashed(k, s), requires_grad=True) for k, s in params.items()}
    p.update({k: torch.tensor(running(k, s)) for k, s in state.items()})
    v = {k: torch.tensor(unit("v." + k, int(np.prod(s))).reshape(s)) for k, s in params.items()}
    x = torch.tensor(unit("x", int(np.prod(xshape))).reshape(xshape))
    t = torch.tensor(labels(xshape[0]))
    mask = None
    if training:
        mask = dropout_mask(SEED, 0, STREAM, xshape[0] * 16, RATE)
        np.save(os.path.join(HERE, name, "mask.npy"), mask.reshape(xshape[0], 16))
    loss = model(p, x, t, training, mask, pool)
    trainable = [p[k] for k in params]
    grads = torch.autograd.grad(loss, trainable, create_graph=True)
    gv = sum((g * v[k]).sum() for g, k in zip(grads, params))
    hv = torch.autograd.grad(gv, trainable)
    np.save(os.path.join(out, "loss.npy"), loss.detach().numpy())
    for k, g, h in zip(params, grads, hv):
        np.save(os.path.join(out, "grad." + k + ".npy"), sampled(g.detach().numpy()))
        np.save(os.path.join(out, "hv." + k + ".npy"), sampled(h.numpy()))
    print(name, "loss", float(loss), "|hv|", float(sum((h * h).sum() for h in hv)) ** 0.5)


if __name__ == "__main__":
    for c in CASES:
        make(c)
