#!/usr/bin/python3
"""References for tests/test_ops_conv2.c (issue 9: grouped, dilated and
asymmetric conv2d, pools with [h, w] attributes, global_avg_pool2d, matmul
with 1-D operands), computed once with PyTorch 1.13 in float64:

    /usr/bin/python3 tests/ref_convops/make_refs.py

For each case NAME it writes the inputs (NAME.x.npy, NAME.w.npy, NAME.b.npy
or NAME.a.npy, NAME.b.npy), the weights R of the loss sum(y * R) (NAME.R.npy),
the output NAME.y.npy and the gradients NAME.gx.npy, NAME.gw.npy, NAME.gb.npy
(NAME.ga.npy, NAME.gb.npy for matmul). Inputs come from a seeded NumPy
generator, so running it again gives the same files."""
import os
import numpy as np
import torch
import torch.nn.functional as F

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.RandomState(9)


def save(name, key, arr):
    np.save(os.path.join(here, f"{name}.{key}.npy"), np.asarray(arr, dtype=np.float64))


def leaf(shape):
    return torch.tensor(rng.uniform(-1, 1, shape), dtype=torch.float64, requires_grad=True)


def finish(name, y, inputs):
    R = torch.tensor(rng.uniform(-1, 1, tuple(y.shape)), dtype=torch.float64)
    (y * R).sum().backward()
    save(name, "R", R.numpy())
    save(name, "y", y.detach().numpy())
    for key, t in inputs.items():
        save(name, key, t.detach().numpy())
        save(name, "g" + key, t.grad.numpy())


def conv(name, xs, ws, bias, **kw):
    x, w = leaf(xs), leaf(ws)
    b = leaf((ws[0],)) if bias else None
    y = F.conv2d(x, w, b, **kw)
    finish(name, y, {"x": x, "w": w, **({"b": b} if bias else {})})


def pool(name, fn, xs, **kw):
    x = leaf(xs)
    finish(name, fn(x, **kw), {"x": x})


def matmul(name, as_, bs):
    a, b = leaf(as_), leaf(bs)
    finish(name, torch.matmul(a, b), {"a": a, "b": b})


conv("conv_groups2", (2, 4, 5, 5), (6, 2, 3, 3), True, padding=1, groups=2)
conv("conv_depthwise", (2, 3, 6, 6), (3, 1, 3, 3), True, stride=2, padding=1, groups=3)
conv("conv_depth_mult", (1, 2, 5, 5), (4, 1, 2, 2), False, groups=2)
conv("conv_dilation2", (2, 2, 8, 8), (3, 2, 3, 3), True, dilation=2, padding=2)
conv("conv_asym", (1, 3, 7, 9), (4, 3, 3, 2), True, stride=(2, 1), padding=(1, 0), dilation=(1, 2))
conv("conv_mixed", (2, 4, 6, 7), (2, 2, 2, 3), False, stride=(1, 2), padding=(0, 1), dilation=2, groups=2)
pool("max_asym", F.max_pool2d, (2, 2, 6, 7), kernel_size=(3, 2), stride=(1, 2), padding=(1, 0))
pool("avg_asym", F.avg_pool2d, (2, 2, 6, 7), kernel_size=(2, 2), stride=(2, 1))
pool("avg_asym_pad", F.avg_pool2d, (2, 2, 6, 7), kernel_size=(3, 2), stride=(1, 2), padding=(1, 0))
pool("global_avg", F.adaptive_avg_pool2d, (2, 3, 4, 5), output_size=1)
matmul("mm_vv", (3,), (3,))
matmul("mm_vm", (3,), (3, 4))
matmul("mm_mv", (2, 3), (3,))
matmul("mm_v_batched", (3,), (2, 3, 4))
matmul("mm_batched_v", (2, 1, 3, 4), (4,))

# Second order through max_pool2d: with L = sum(R * max_pool2d(x)^2) and its
# gradient G = dL/dx, H = sum(S * G); dH/dx (PyTorch's double backward) goes
# through the gradient of max_pool2d's backward (a gather at each window's
# maximum). Overlapping, padded, asymmetric windows.
x = leaf((2, 2, 5, 6))
y = F.max_pool2d(x, kernel_size=(3, 2), stride=(1, 2), padding=(1, 0))
R = torch.tensor(rng.uniform(-1, 1, tuple(y.shape)), dtype=torch.float64)
S = torch.tensor(rng.uniform(-1, 1, tuple(x.shape)), dtype=torch.float64)
(G,) = torch.autograd.grad((R * y * y).sum(), x, create_graph=True)
(dH,) = torch.autograd.grad((S * G).sum(), x)
for key, t in {"x": x, "R": R, "S": S, "G": G, "dH": dH}.items():
    save("max_second", key, t.detach().numpy())
