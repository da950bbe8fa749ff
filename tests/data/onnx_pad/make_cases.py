#!/usr/bin/python3
"""Writes the cases of tests/test_onnx_pad.c, laid out as the ONNX backend
tests are (CASE/model.onnx, CASE/test_data_set_0/{input,output}_K.pb), with
onnx.helper; the expected outputs are computed with torch 1.13 (F.pad, then
the convolution or pool unpadded) and numpy. Run with /usr/bin/python3 from
this folder.

pad_v2_attr           Pad opset 2: pads attribute (one negative: crops), value 1.5
pad_v11_input         Pad opset 11: pads an int64 initializer, value a Constant
pad_v11_no_value      Pad opset 11: no value input (zeros)
pad_v18_axes          Pad opset 18: pads for the axes input [-1, 1] only
conv_asym             Conv with pads [0, 1, 2, 1], stride 2
conv1d_asym           1-D Conv with pads [2, 0]
convtranspose_asym    ConvTranspose with pads [1, 0, 0, 2], stride 2, output_padding 1
maxpool_asym          MaxPool with pads [1, 0, 0, 1] on negative inputs (-inf padding)
maxpool_big_pads      MaxPool kernel 3, pads 2 (beyond half the kernel)
avgpool_asym_include  AveragePool count_include_pad=1, pads [1, 0, 0, 1]
avgpool_sym_exclude   AveragePool count_include_pad=0 (ONNX's default), pads 1, stride 2
avgpool_asym_exclude  AveragePool count_include_pad=0, pads [0, 1, 1, 0]: unsupported
pad_reflect           Pad mode reflect: unsupported
"""
import os
import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto as T, helper as h, numpy_helper as nh

rng = np.random.default_rng(12)


def save(name, nodes, x, y, inits=(), opset=13, check=True):
    g = h.make_graph(nodes, name, [h.make_tensor_value_info("x", T.FLOAT, list(x.shape))],
                     [h.make_tensor_value_info("y", T.FLOAT, list(y.shape) if y is not None else None)],
                     list(inits))
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)], producer_name="nabla tests")
    if check:
        onnx.checker.check_model(m)
    os.makedirs(name + "/test_data_set_0", exist_ok=True)
    onnx.save(m, name + "/model.onnx")
    with open(name + "/test_data_set_0/input_0.pb", "wb") as f:
        f.write(nh.from_array(x, "x").SerializeToString())
    if y is not None:
        with open(name + "/test_data_set_0/output_0.pb", "wb") as f:
            f.write(nh.from_array(y.astype(np.float32), "y").SerializeToString())


def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def t(a):
    return torch.from_numpy(a)


# Pad: F.pad takes (last before, last after, second-to-last before, ...)
x = randn(2, 3, 4)
y = F.pad(t(x), (1, 2, -1, 0, 0, 1), value=1.5).numpy()
save("pad_v2_attr", [h.make_node("Pad", ["x"], ["y"], pads=[0, -1, 1, 1, 0, 2], value=1.5)], x, y, opset=2)

x = randn(1, 2, 3, 3)
y = F.pad(t(x), (2, 0, 1, 1), value=-0.5).numpy()
save("pad_v11_input", [h.make_node("Constant", [], ["v"], value=nh.from_array(np.array(-0.5, np.float32))),
                       h.make_node("Pad", ["x", "p", "v"], ["y"], mode="constant")], x, y,
     [nh.from_array(np.array([0, 0, 1, 2, 0, 0, 1, 0], np.int64), "p")], opset=11)
y = F.pad(t(x), (2, 0, 1, 1)).numpy()
save("pad_v11_no_value", [h.make_node("Pad", ["x", "p"], ["y"])], x, y,
     [nh.from_array(np.array([0, 0, 1, 2, 0, 0, 1, 0], np.int64), "p")], opset=11)

x = randn(2, 3, 4)
y = F.pad(t(x), (0, 3, 1, 0)).numpy()  # axis -1: 0 before, 3 after; axis 1: 1 before
save("pad_v18_axes", [h.make_node("Pad", ["x", "p", "", "a"], ["y"])], x, y,
     [nh.from_array(np.array([0, 1, 3, 0], np.int64), "p"), nh.from_array(np.array([-1, 1], np.int64), "a")],
     opset=18, check=False)  # onnx 1.12's checker knows opsets up to 17

# Conv: ONNX pads are [top, left, bottom, right]
x, w, b = randn(2, 3, 7, 6), randn(4, 3, 3, 3), randn(4)
y = F.conv2d(F.pad(t(x), (1, 1, 0, 2)), t(w), t(b), stride=2).numpy()
save("conv_asym", [h.make_node("Conv", ["x", "w", "b"], ["y"], pads=[0, 1, 2, 1], strides=[2, 2],
                               kernel_shape=[3, 3])], x, y, [nh.from_array(w, "w"), nh.from_array(b, "b")])
x, w = randn(1, 2, 5), randn(3, 2, 3)
y = F.conv1d(F.pad(t(x), (2, 0)), t(w)).numpy()
save("conv1d_asym", [h.make_node("Conv", ["x", "w"], ["y"], pads=[2, 0])], x, y, [nh.from_array(w, "w")])

x, w, b = randn(1, 2, 3, 4), randn(2, 3, 3, 3), randn(3)
y = F.conv_transpose2d(t(x), t(w), t(b), stride=2, output_padding=1)[:, :, 1:, :-2].numpy()
save("convtranspose_asym", [h.make_node("ConvTranspose", ["x", "w", "b"], ["y"], pads=[1, 0, 0, 2],
                                        strides=[2, 2], output_padding=[1, 1])], x, y,
     [nh.from_array(w, "w"), nh.from_array(b, "b")])

# pools
x = -np.abs(randn(1, 2, 5, 5)) - 1  # all negative: zero padding would win the max
y = F.max_pool2d(F.pad(t(x), (0, 1, 1, 0), value=-np.inf), 2).numpy()
save("maxpool_asym", [h.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2],
                                  pads=[1, 0, 0, 1])], x, y)
x = -np.abs(randn(1, 1, 5, 5))
y = F.max_pool2d(F.pad(t(x), (2, 2, 2, 2), value=-np.inf), 3, stride=1).numpy()
save("maxpool_big_pads", [h.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], pads=[2, 2, 2, 2])], x, y)
x = randn(2, 2, 5, 4)
y = F.avg_pool2d(F.pad(t(x), (0, 1, 1, 0)), 2).numpy()
save("avgpool_asym_include", [h.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2],
                                          pads=[1, 0, 0, 1], count_include_pad=1)], x, y)
x = randn(1, 3, 6, 5)
y = F.avg_pool2d(t(x), 3, stride=2, padding=1, count_include_pad=False).numpy()
save("avgpool_sym_exclude", [h.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                                         pads=[1, 1, 1, 1])], x, y)
x = randn(1, 1, 4, 4)
save("avgpool_asym_exclude", [h.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2],
                                          pads=[0, 1, 1, 0])], x, None, check=False)
save("pad_reflect", [h.make_node("Pad", ["x", "p"], ["y"], mode="reflect")], x, None,
     [nh.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "p")], opset=13, check=False)
