#!/usr/bin/python3
"""Writes the small ONNX models of tests/test_onnx.c with onnx.helper, and the
reference output of tiny.onnx computed with numpy (Debian python3-onnx,
python3-numpy; run with /usr/bin/python3 from this folder).

tiny.onnx        x [N, 2, 3] -> x.view(N, -1) as torch.onnx.export writes it
                 (Shape, Gather, Unsqueeze, Concat, Reshape), then Gemm
                 (transB, alpha 0.5, beta 2) and Relu; ONNX names to sanitise
collide.onnx     inputs 'a:b' and 'a_b' (both sanitise to a_b), outputs 'a/b' and
                 'grad.y' (a prefix nabla reserves)
unsupported.onnx a NonMaxSuppression node called 'nms1'
bad_tensor.onnx  an initializer of 10^12 elements without values
attr.onnx        a LeakyRelu with an attribute it does not have
concat_shapes.onnx  a Concat of known values [1, 2] and [3, 5] along axis 0 (the
                 other axes differ: the folding wrote past its output before)
"""
import numpy as np
import onnx
from onnx import TensorProto as T, helper as h, numpy_helper as nh

rng = np.random.default_rng(3)
W = rng.standard_normal((4, 6)).astype(np.float32)
b = rng.standard_normal(4).astype(np.float32)
x = rng.standard_normal((3, 2, 3)).astype(np.float32)

nodes = [
    h.make_node("Shape", ["input:0"], ["/Shape_output_0"], name="/Shape"),
    h.make_node("Constant", [], ["/Constant_output_0"], name="/Constant",
                value=nh.from_array(np.array(0, dtype=np.int64))),
    h.make_node("Gather", ["/Shape_output_0", "/Constant_output_0"], ["/Gather_output_0"], name="/Gather", axis=0),
    h.make_node("Constant", [], ["/axes"], name="/Constant_1", value=nh.from_array(np.array([0], dtype=np.int64))),
    h.make_node("Unsqueeze", ["/Gather_output_0", "/axes"], ["onnx::Concat_7"], name="/Unsqueeze"),
    h.make_node("Constant", [], ["/minus1"], name="/Constant_2", value=nh.from_array(np.array([-1], dtype=np.int64))),
    h.make_node("Concat", ["onnx::Concat_7", "/minus1"], ["/Concat_output_0"], name="/Concat", axis=0),
    h.make_node("Reshape", ["input:0", "/Concat_output_0"], ["/flat/Reshape_output_0"], name="/Reshape"),
    h.make_node("Gemm", ["/flat/Reshape_output_0", "fc.weight", "fc.bias"], ["onnx::Relu_5"], name="/fc/Gemm",
                transB=1, alpha=0.5, beta=2.0),
    h.make_node("Relu", ["onnx::Relu_5"], ["output"], name="/Relu"),
]
g = h.make_graph(nodes, "tiny",
                 [h.make_tensor_value_info("input:0", T.FLOAT, ["N", 2, 3])],
                 [h.make_tensor_value_info("output", T.FLOAT, ["N", 4])],
                 [nh.from_array(W, "fc.weight"), nh.from_array(b, "fc.bias")])
m = h.make_model(g, opset_imports=[h.make_opsetid("", 13)], producer_name="nabla tests")
onnx.checker.check_model(m)
onnx.save(m, "tiny.onnx")
np.save("tiny_x.npy", x)
np.save("tiny_b.npy", b)
np.save("tiny_out.npy", np.maximum(0.5 * x.reshape(3, -1) @ W.T + 2 * b, 0).astype(np.float32))

g = h.make_graph([h.make_node("Add", ["a:b", "a_b"], ["a/b"], name="add"),
                  h.make_node("Neg", ["a/b"], ["grad.y"], name="neg")], "collide",
                 [h.make_tensor_value_info("a:b", T.FLOAT, [2]), h.make_tensor_value_info("a_b", T.FLOAT, [2])],
                 [h.make_tensor_value_info("a/b", T.FLOAT, [2]), h.make_tensor_value_info("grad.y", T.FLOAT, [2])])
m = h.make_model(g, opset_imports=[h.make_opsetid("", 13)])
onnx.checker.check_model(m)
onnx.save(m, "collide.onnx")

g = h.make_graph([h.make_node("NonMaxSuppression", ["boxes", "scores"], ["sel"], name="nms1")], "unsupported",
                 [h.make_tensor_value_info("boxes", T.FLOAT, [1, 4, 4]),
                  h.make_tensor_value_info("scores", T.FLOAT, [1, 1, 4])],
                 [h.make_tensor_value_info("sel", T.INT64, [None, 3])])
m = h.make_model(g, opset_imports=[h.make_opsetid("", 13)])
onnx.checker.check_model(m)
onnx.save(m, "unsupported.onnx")

# an initializer whose shape promises 10^12 elements and holds none: refused
# before anything is allocated
bad = onnx.TensorProto(name="W", data_type=T.FLOAT, dims=[1000000, 1000000])
g = h.make_graph([h.make_node("Add", ["x", "W"], ["y"], name="add")], "bad_tensor",
                 [h.make_tensor_value_info("x", T.FLOAT, [2])],
                 [h.make_tensor_value_info("y", T.FLOAT, [2])], [bad])
onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]), "bad_tensor.onnx")

# an attribute the converter does not read is refused, not ignored
g = h.make_graph([h.make_node("LeakyRelu", ["x"], ["y"], name="r1", alpha=0.1, beta=2.0)], "attr",
                 [h.make_tensor_value_info("x", T.FLOAT, [2])], [h.make_tensor_value_info("y", T.FLOAT, [2])])
onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]), "attr.onnx")

# known values whose non-concat axes differ: refused, not copied past the output
a = nh.from_array(np.zeros((1, 2), np.int64), "a")
b = nh.from_array(np.ones((3, 5), np.int64), "b")
g = h.make_graph([h.make_node("Constant", [], ["ka"], value=a), h.make_node("Constant", [], ["kb"], value=b),
                  h.make_node("Concat", ["ka", "kb"], ["c"], name="cat", axis=0)], "concat_shapes",
                 [], [h.make_tensor_value_info("c", T.INT64, [4, 2])])
onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]), "concat_shapes.onnx")
