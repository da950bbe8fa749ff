#!/usr/bin/python3
"""Exports small PyTorch models to ONNX with torch.onnx.export, for nabla's
ONNX importer (issue 12) to be tested against PyTorch without torch at test
time. For each model NAME it writes, next to this script (or into --out):

    NAME.onnx      the model: input "x" with a free batch axis "N", output "y"
    NAME.x.npy     an input batch (float32, batch 2)
    NAME.y.npy     PyTorch's output for it (float32)

and checks each .onnx with onnx.checker (full check, shape inference included).

Models (seeded, so a rerun writes the same numbers):
  mlp              examples/models/mnist_mlp.yaml's layers: dense+relu, dense+relu,
                   dense on x [N, 784] (Gemm, Relu)
  simple_convnet   examples/models/simple_convnet.yaml's layers: conv 5x5 + relu,
                   max-pool 2, x.view(x.size(0), -1), dense+relu, dense on
                   x [N, 1, 28, 28] (Conv, MaxPool, Shape/Gather/Unsqueeze/Concat/Reshape)
  gelu_layernorm   a transformer MLP block on x [N, 4, 16]:
                   y = x + fc2(gelu(fc1(layernorm(x)))), opset 13 (LayerNorm and GELU
                   written out: ReduceMean, Pow, Sqrt, Erf, ...)
  gelu_layernorm17 the same block at opset 17 (one LayerNormalization node)
  pool_pad         padded conv, avg_pool2d with padding (count_include_pad=True,
                   exported as Pad + AveragePool), avg_pool2d(count_include_pad=False)
                   and an asymmetric F.pad on x [N, 2, 6, 6]

The hidden widths are narrower than the YAML models' (mlp 784-32-64-10 instead of
784-128-256-10, the convnet 6 filters and 32 units instead of 30 and 100) so that
the committed files stay small (the full ones are 0.5 and 1.7 MB of weights);
layers, ops and input shapes are the YAML models'. --full exports the full widths
(into --out; do not commit those).

Run with Debian's Python, which has python3-torch and python3-onnx:
    /usr/bin/python3 examples/onnx/export.py [--out DIR] [--full]
"""
import argparse
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

OPSET = 13
BATCH = 2


class MLP(nn.Module):
    """mnist_mlp.yaml: fc1 (relu), fc2 (relu), y."""

    def __init__(self, h1, h2):
        super().__init__()
        self.fc1 = nn.Linear(784, h1)
        self.fc2 = nn.Linear(h1, h2)
        self.out = nn.Linear(h2, 10)

    def forward(self, x):
        return self.out(F.relu(self.fc2(F.relu(self.fc1(x)))))


class SimpleConvNet(nn.Module):
    """simple_convnet.yaml: c1 (conv 5x5, relu), p1 (max-pool 2), f1 (flatten), fc1 (relu), y."""

    def __init__(self, filters, units):
        super().__init__()
        self.c1 = nn.Conv2d(1, filters, 5)
        self.fc1 = nn.Linear(filters * 12 * 12, units)
        self.out = nn.Linear(units, 10)

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.c1(x)), 2)
        h = h.view(h.size(0), -1)  # exported as Shape -> Gather -> Unsqueeze -> Concat -> Reshape
        return self.out(F.relu(self.fc1(h)))


class GeluLayerNorm(nn.Module):
    """Pre-norm transformer MLP block: x + fc2(gelu(fc1(layernorm(x))))."""

    def __init__(self, d=16, hidden=32):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, hidden)
        self.fc2 = nn.Linear(hidden, d)

    def forward(self, x):
        return x + self.fc2(F.gelu(self.fc1(self.norm(x))))


class PoolPad(nn.Module):
    """What ONNX import maps onto nabla's pad op and count_include_pad."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.avg_in = nn.AvgPool2d(3, stride=1, padding=1)  # count_include_pad=True: Pad + AveragePool
        self.avg_ex = nn.AvgPool2d(2, stride=2, padding=1, count_include_pad=False)

    def forward(self, x):
        h = self.avg_in(F.relu(self.conv(x)))                # [N, 3, 6, 6]
        h = F.pad(h, (0, 1, 2, 1), value=0.5)                # W: 0 left, 1 right; H: 2 top, 1 bottom
        return self.avg_ex(h)                                # [N, 3, 5, 4]


def models(full):
    """(name, seed, a maker of the module, input shape without the batch, opset) per model."""
    return [
        ("mlp", 1, lambda: MLP(128, 256) if full else MLP(32, 64), (784,), OPSET),
        ("simple_convnet", 2, lambda: SimpleConvNet(30, 100) if full else SimpleConvNet(6, 32),
         (1, 28, 28), OPSET),
        ("gelu_layernorm", 3, GeluLayerNorm, (4, 16), OPSET),
        ("gelu_layernorm17", 3, GeluLayerNorm, (4, 16), 17),
        ("pool_pad", 4, PoolPad, (2, 6, 6), OPSET),
    ]


def export(name, seed, make, shape, opset, out):
    torch.manual_seed(seed)
    model = make().eval()
    gen = torch.Generator().manual_seed(100 + seed)
    x = torch.rand((BATCH,) + shape, generator=gen) * 2 - 1
    with torch.no_grad():
        y = model(x)
    path = os.path.join(out, name + ".onnx")
    torch.onnx.export(model, (x,), path, opset_version=opset, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}},
                      do_constant_folding=True)
    onnx.checker.check_model(path, full_check=True)
    np.save(os.path.join(out, name + ".x.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(out, name + ".y.npy"), y.numpy().astype(np.float32))
    ops = sorted({n.op_type for n in onnx.load(path).graph.node})
    print(f"{name}: opset {opset}, x {list(x.shape)}, y {list(y.shape)}, "
          f"{os.path.getsize(path)} bytes; ops {' '.join(ops)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)),
                    help="folder for the files (default: this script's)")
    ap.add_argument("--full", action="store_true",
                    help="the YAML models' full widths (large files; do not commit)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    for m in models(args.full):
        export(*m, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
