#!/usr/bin/python3
"""Writes shape_only.onnx for tests/test_convert.c: an ONNX model whose only
output is computed when nabla loads it (Shape of a fixed-size input), so the
loaded model has no op node. Run from this folder with Debian's python3-onnx."""
import onnx
from onnx import TensorProto, helper

x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
y = helper.make_tensor_value_info("y", TensorProto.INT64, [2])
g = helper.make_graph([helper.make_node("Shape", ["x"], ["y"], name="shape")], "shape_only", [x], [y])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
onnx.checker.check_model(m)
onnx.save(m, "shape_only.onnx")
