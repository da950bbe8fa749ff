#!/usr/bin/python3
"""Writes tests/bad/: malformed models, .npy, safetensors, .npz and IDX files
(raw and gzip), the few good files they need next to them, and MANIFEST, the
list the Criterion test tests/test_bad_inputs.c reads:

    FILE <TAB> COMMAND <TAB> EXPECTED

FILE is relative to tests/bad; COMMAND is the nabla command line (split at
spaces) that reads it; EXPECTED is a substring of what nabla must print on
stderr, exiting with status 2. In COMMAND and EXPECTED, $FILE stands for the
path of FILE, $DIR for its folder, $BAD for tests/bad and $OUT for a fresh
empty folder. The generated files are committed (CI needs no Python); run
/usr/bin/python3 tests/bad/make.py after changing a case here. Only the
standard library is used, and every byte is fixed (gzip mtime 0, zip dates
1980), so running it again changes nothing."""
import gzip
import io
import json
import os
import shutil
import struct
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
cases = []  # (file, command, expected)


def write(rel, data):
    path = os.path.join(HERE, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def case(rel, data, command, expected):
    write(rel, data)
    cases.append((rel, command, expected))


# ---- YAML models: nabla check ------------------------------------------------

HEAD = "nabla: 1\ninputs:\n  x: [N, 2]\nnodes:\n"


def yaml(name, text, expected):
    case("yaml/" + name + ".yaml", text, "check $FILE", expected)


yaml("empty", "", "$FILE:1:1: the file is empty; a model needs 'nabla: 1', inputs and nodes")
yaml("tab_indent", "nabla: 1\ninputs:\n\tx: [N, 2]\n", "$FILE:3:1: invalid YAML: found character that cannot start any token")
yaml("unclosed_flow", HEAD + "  - {name: y, op: relu, in: [x]\n",
     "$FILE:6:1: invalid YAML: did not find expected ',' or '}' (while parsing a flow mapping at line 5)")
yaml("not_mapping", "- 1\n- 2\n", "$FILE:1:1: a model file must be a mapping; got a list")
yaml("no_version", "inputs:\n  x: [N, 2]\nnodes:\n  - {name: y, op: relu, in: [x]}\n",
     "$FILE:1:1: missing key 'nabla' (the format version: nabla: 1)")
yaml("version2", HEAD.replace("nabla: 1", "nabla: 2") + "  - {name: y, op: relu, in: [x]}\n",
     "$FILE:1:8: unsupported format version 2; this nabla reads version 1")
yaml("unknown_top_key", HEAD + "  - {name: y, op: relu, in: [x]}\noutput: [y]\n",
     "$FILE:6:1: unknown key 'output' (did you mean 'outputs'?)")
yaml("unknown_op", HEAD + "  - {name: y, op: rleu, in: [x]}\n", "$FILE:5:19: unknown op 'rleu' (did you mean 'relu'?)")
yaml("unknown_input", HEAD + "  - {name: y, op: relu, in: [z]}\n", "$FILE:5:30: 'z' is not defined above this node")
yaml("duplicate_node", HEAD + "  - {name: y, op: relu, in: [x]}\n  - {name: y, op: neg, in: [x]}\n",
     "$FILE:6:12: duplicate name 'y' (first defined at line 5)")
yaml("duplicate_key", HEAD + "  - {name: y, op: relu, in: [x], in: [x]}\n", "$FILE:5:34: duplicate key 'in'")
yaml("cycle", HEAD + "  - {name: a, op: add, in: [x, b]}\n  - {name: b, op: relu, in: [a]}\n",
     "$FILE:5:32: 'b' is not defined above this node")
yaml("matmul_shapes", HEAD + "  - {name: y, op: matmul, in: [x, x]}\n",
     "$FILE:5:5: node 'y': matmul needs a [..., M, K] and b [K, N]; x is [N, 2], x is [N, 2]")
yaml("units_negative", HEAD + "  - {name: y, layer: dense, in: [x], units: -3}\n", "$FILE:5:45: 'units' must be >= 1; got -3")
yaml("units_text", HEAD + "  - {name: y, layer: dense, in: [x], units: many}\n", "$FILE:5:45: 'units' must be an integer; got 'many'")
yaml("bad_dtype", "nabla: 1\ndtype: f16\ninputs:\n  x: [N, 2]\nnodes:\n  - {name: y, op: relu, in: [x]}\n",
     "$FILE:2:8: unknown dtype 'f16'")
yaml("negative_dim", "nabla: 1\ninputs:\n  x: [-4, 2]\nnodes:\n  - {name: y, op: relu, in: [x]}\n",
     "$FILE:3:7: a dimension must be a positive integer or a symbol such as N; got '-4'")
yaml("unknown_loss", HEAD + "  - {name: y, op: relu, in: [x]}\nloss: lost\n", "$FILE:6:7: 'lost' is not defined in this model")
yaml("huge_param",
     "nabla: 1\ninputs:\n  x: [N, 2]\nparams:\n  W: {shape: [2, 100000000000], init: zeros}\nnodes:\n"
     "  - {name: y, op: matmul, in: [x, W]}\n",
     "$FILE:5:6: param 'W' needs 800 GB, over the memory limit of")
yaml("conv_pad_overflow",
     "nabla: 1\ninputs:\n  x: [1, 1, 4, 4]\nparams:\n  K: {shape: [1, 1, 3, 3], init: zeros}\nnodes:\n"
     "  - {name: y, op: conv2d, in: [x, K], pad: 2147483646}\n",
     "$FILE:7:5: node 'y': conv2d pad 2147483646 must be <= 1073741824")
yaml("deep_nesting", "nabla: 1\ninputs:\n  x: " + "[" * 200 + "]" * 200 + "\nnodes: []\n", "$FILE:3:68: nesting deeper than 64 levels")
aliases = "a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
for i in range(1, 10):
    aliases += "a%d: &a%d [%s]\n" % (i, i, ", ".join(["*a%d" % (i - 1)] * 10))
yaml("alias_bomb", "nabla: 1\n" + aliases + "inputs:\n  x: [N, 2]\nnodes:\n  - {name: y, op: relu, in: [x]}\n",
     "$FILE:7:45: aliases expand to more than 1000000 values")
yaml("binary_garbage", bytes(range(256)), "$FILE:1:1: invalid YAML: control characters are not allowed")
yaml("control_name", HEAD + "  - {name: \"y\\x01\", op: relu, in: [x]}\n",
     "$FILE:5:12: invalid name 'y\x01': use letters, digits, '_', '.', '-'")

# ---- .npy: nabla run --in x=FILE, a model with input x [N, 2] f32 -------------

write("npy/model.yaml", HEAD + "  - {name: y, op: relu, in: [x]}\noutputs: [y]\n")
NPY_RUN = "run $BAD/npy/model.yaml --in x=$FILE -o $OUT"


def npy_header(header, version=(1, 0), pad=True):
    h = header.encode("latin1")
    if pad:
        total = 10 + len(h) + 1
        h += b" " * ((64 - total % 64) % 64) + b"\n"
    if version[0] == 1:
        return b"\x93NUMPY" + bytes(version) + struct.pack("<H", len(h)) + h
    return b"\x93NUMPY" + bytes(version) + struct.pack("<I", len(h)) + h


def npy(name, data, expected, prefix="$FILE: "):
    case("npy/" + name + ".npy", data, NPY_RUN, prefix + expected)


F4x = struct.pack("<8f", *range(8))
GOOD = "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 2), }"
npy("empty", b"", "empty (0 bytes): not a .npy file")
npy("not_npy", b"PK\x03\x04 this is a zip", "not a .npy file (no \\x93NUMPY magic)")
npy("version9", npy_header(GOOD, (9, 0)) + F4x, ".npy version 9.0 is not supported")
npy("trunc_header_len", b"\x93NUMPY\x01\x00\x76", "truncated in the header length")
npy("trunc_header", npy_header(GOOD)[:30], "truncated in the header (20 of 118 bytes)")
npy("no_colon", npy_header(GOOD.replace("'shape':", "'shape'")) + F4x, "malformed header at byte")
npy("big_endian", npy_header(GOOD.replace("<f4", ">f4")) + F4x, "big-endian arrays ('>f4') are not supported")
npy("object", npy_header(GOOD.replace("<f4", "|O")) + F4x, "object arrays ('|O') are not supported")
npy("uint8", npy_header(GOOD.replace("<f4", "|u1")) + F4x[:8],
    "dtype '|u1' is not supported (only '<f4', '<f8', '<i4', '<i8')")
npy("float16", npy_header(GOOD.replace("<f4", "<f2")) + F4x[:16], "dtype '<f2' is not supported")
npy("fortran", npy_header(GOOD.replace("False", "True")) + F4x, "fortran_order arrays are not supported")
npy("structured", npy_header(GOOD.replace("'<f4'", "[('a', '<f4')]")) + F4x, "structured dtypes are not supported")
npy("unknown_key", npy_header(GOOD.replace("}", "'extra': 1, }")) + F4x, "unknown key 'extra' in the header")
npy("duplicate_key", npy_header(GOOD.replace("}", "'shape': (4, 2), }")) + F4x,
    "key 'shape' appears twice in the header")
npy("no_shape", npy_header("{'descr': '<f4', 'fortran_order': False, }") + F4x, "the header has no key 'shape'")
npy("nine_dims", npy_header(GOOD.replace("(4, 2)", "(1, 1, 1, 1, 1, 1, 1, 4, 2)")) + F4x,
    "the shape has more than 8 dimensions")
npy("short_data", npy_header(GOOD) + F4x[:20], "truncated: the data has 20 bytes, the shape needs 32")
npy("long_data", npy_header(GOOD) + F4x + b"\0\0\0\0", "trailing bytes: the data has 36 bytes, the shape needs 32")
npy("huge_dim", npy_header(GOOD.replace("(4, 2)", "(99999999999999999999999, 2)")) + F4x,
    "a dimension of the shape is too large")
npy("overflow_shape", npy_header(GOOD.replace("(4, 2)", "(4294967296, 4294967296)")) + F4x, "the shape is too large")
npy("huge_shape", npy_header(GOOD.replace("(4, 2)", "(1099511627776, 2)")) + F4x, "truncated: the data has 32 bytes, the shape needs 8796093022208")
npy("i8_inexact", npy_header(GOOD.replace("<f4", "<i8")) + struct.pack("<8q", 0, 1, 2, 3, 4, 5, 6, 2**40 + 1),
    "integer element 7 (1099511627777) is beyond the range where f32 holds every integer exactly (|v| <= 2^24)")
npy("wrong_rank", npy_header(GOOD.replace("(4, 2)", "(8,)")) + F4x,
    "input 'x' is [N, 2] (rank 2) but $FILE has shape (8,)", prefix="")
npy("negative_dim", npy_header(GOOD.replace("(4, 2)", "(4, -2)")) + F4x,
    "malformed header at byte 54: expected a non-negative integer")

# ---- weights: nabla run --weights FILE, params y.W [2, 3] and y.b [3] ---------

write("weights/model.yaml", HEAD + "  - {name: y, layer: dense, in: [x], units: 3}\noutputs: [y]\n")
write("weights/x.npy", npy_header(GOOD) + F4x)
W_RUN = "run $BAD/weights/model.yaml --in x=$BAD/weights/x.npy --weights $FILE -o $OUT"


def st_file(header, data, raw=False):
    h = header if raw else json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h)) + h + data


W6 = struct.pack("<6f", *range(6))
B3 = struct.pack("<3f", 0, 0, 0)


def st_good(**change):
    h = {"y.W": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
         "y.b": {"dtype": "F32", "shape": [3], "data_offsets": [24, 36]}}
    for k, v in change.items():
        h[k.replace("_", ".")] = v
    return h


def st(name, data, expected):
    case("safetensors/" + name + ".safetensors", data, W_RUN, "$FILE: " + expected)


st("empty", b"", "too short (0 bytes) for the 8-byte header length")
st("header_overrun", struct.pack("<Q", 1000) + b"{}", "header length 1000 overruns the file of 10 bytes")
st("huge_header_len", struct.pack("<Q", 2**64 - 1) + b"{}", "header length 18446744073709551615 overruns the file of 10 bytes")
st("not_json", st_file(b"{'y.W': 1}", b"", raw=True), "header is not valid JSON")
st("json_array", st_file([1, 2], b""), "header is not a JSON object")
st("tensor_not_object", st_file({"y.W": 5}, b""), "tensor 'y.W' is not a JSON object")
st("no_dtype", st_file(st_good(y_W={"shape": [2, 3], "data_offsets": [0, 24]}), W6 + B3), "tensor 'y.W' has no 'dtype'")
st("extra_field", st_file(st_good(y_W={"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24], "x": 1}), W6 + B3),
   "tensor 'y.W' has fields other than dtype, shape, data_offsets")
st("dtype_f16", st_file(st_good(y_W={"dtype": "F16", "shape": [2, 3], "data_offsets": [0, 24]}), W6 + B3),
   "tensor 'y.W' has dtype F16, which is not supported (only F32, F64, I32, I64)")
st("dtype_number", st_file(st_good(y_W={"dtype": 32, "shape": [2, 3], "data_offsets": [0, 24]}), W6 + B3),
   "tensor 'y.W': dtype is not a string")
st("shape_string", st_file(st_good(y_W={"dtype": "F32", "shape": "2x3", "data_offsets": [0, 24]}), W6 + B3),
   "tensor 'y.W': shape is not an array")
st("negative_dim", st_file(st_good(y_W={"dtype": "F32", "shape": [-2, 3], "data_offsets": [0, 24]}), W6 + B3),
   "tensor 'y.W': dimension 0 is not a non-negative integer")
st("nine_dims", st_file(st_good(y_W={"dtype": "F32", "shape": [1] * 7 + [2, 3], "data_offsets": [0, 24]}), W6 + B3),
   "tensor 'y.W' has 9 dimensions, more than 8")
st("offsets_reversed", st_file(st_good(y_W={"dtype": "F32", "shape": [2, 3], "data_offsets": [24, 0]}), W6 + B3),
   "tensor 'y.W': data_offsets is not [begin, end] with begin <= end")
st("offsets_overrun", st_file(st_good(y_b={"dtype": "F32", "shape": [3], "data_offsets": [24, 48]}), W6 + B3),
   "tensor 'y.b' data [24, 48) overruns the data section of 36 bytes")
st("size_mismatch", st_file(st_good(y_W={"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 24]}), W6 + B3),
   "tensor 'y.W' has 24 bytes of data, its shape and dtype need 16")
st("overlap", st_file(st_good(y_b={"dtype": "F32", "shape": [3], "data_offsets": [12, 24]}), W6),
   "tensor 'y.b' data [12, 24) overlaps the tensor 'y.W' before it")
st("gap", st_file(st_good(y_b={"dtype": "F32", "shape": [3], "data_offsets": [28, 40]}), W6 + B3 + b"\0" * 4),
   "tensor 'y.b' data [28, 40) leaves a gap of 4 bytes before it")
st("trailing", st_file(st_good(), W6 + B3 + b"\0" * 8), "the tensors cover 36 bytes of the data section of 44 bytes")
st("meta_not_object", st_file(dict(st_good(), __metadata__=[1]), W6 + B3), "__metadata__ is not a JSON object")
st("meta_not_string", st_file(dict(st_good(), __metadata__={"epoch": 3}), W6 + B3),
   "__metadata__ value of 'epoch' is not a string")
st("i64_range", st_file({"y.W": {"dtype": "I64", "shape": [2, 3], "data_offsets": [0, 48]},
                         "y.b": {"dtype": "F32", "shape": [3], "data_offsets": [48, 60]}},
                        struct.pack("<6q", 0, 1, 2, 3, 4, 2**40) + B3),
   "tensor 'y.W': I64 element 5 (1099511627776) is out of the i32 range")
st("missing_param", st_file({"y.W": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
                             "y.bias": {"dtype": "F32", "shape": [3], "data_offsets": [24, 36]}}, W6 + B3),
   "no tensor for param 'y.b' (did you mean 'y.W'?); the file holds 2 tensors: y.W, y.bias")
st("wrong_shape", st_file({"y.W": {"dtype": "F32", "shape": [3, 2], "data_offsets": [0, 24]},
                           "y.b": {"dtype": "F32", "shape": [3], "data_offsets": [24, 36]}}, W6 + B3),
   "param 'y.W' is f32 [2, 3] but the file's tensor is f32 [3, 2]")


# ---- .npz: nabla run --weights FILE.npz --------------------------------------

def npy_bytes(shape, data, descr="<f4"):
    h = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    return npy_header(h) + data


def zip_bytes(members, compress=zipfile.ZIP_STORED, comment=b""):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compress) as z:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = compress
            z.writestr(info, data)
        z.comment = comment
    return buf.getvalue()


GOOD_W = [("y.W.npy", npy_bytes("(2, 3)", W6)), ("y.b.npy", npy_bytes("(3,)", B3))]


def npz(name, data, expected):
    case("npz/" + name + ".npz", data, W_RUN, "$FILE" + expected)


good_npz = zip_bytes(GOOD_W)
npz("empty", b"", ": empty (0 bytes): not a valid .npz (zip) file")
npz("not_zip", b"\x93NUMPY not a zip at all",
    ": not a valid .npz (zip) file: Not a zip archive (no zip directory at its end: truncated, or another format)")
npz("truncated", good_npz[:len(good_npz) // 2],
    ": not a valid .npz (zip) file: Not a zip archive (no zip directory at its end: truncated, or another format)")
npz("not_npy_member", zip_bytes(GOOD_W + [("notes.txt", b"hello")]),
    ": member 'notes.txt' is not a .npy array (an .npz of weights holds NAME.npy members only)")
npz("bad_member", zip_bytes([("y.W.npy", b"garbage"), GOOD_W[1]]), ": member y.W.npy: not a .npy file (no \\x93NUMPY magic)")
npz("member_short", zip_bytes([("y.W.npy", npy_bytes("(2, 3)", W6[:12])), GOOD_W[1]]),
    ": member y.W.npy: truncated: the data has 12 bytes, the shape needs 24")
npz("member_f16", zip_bytes([("y.W.npy", npy_bytes("(2, 3)", W6[:12], "<f2")), GOOD_W[1]]),
    ": member y.W.npy: dtype '<f2' is not supported")
crc = bytearray(good_npz)
crc[good_npz.index(b"\x93NUMPY") + 100] ^= 0xFF  # a byte of y.W's data: the CRC no longer matches
npz("crc_mismatch", bytes(crc), ": member 'y.W.npy' cannot be read: CRC error")
deflated = bytearray(zip_bytes(GOOD_W, zipfile.ZIP_DEFLATED))
deflated[40:48] = b"\xff" * 8  # inside the first member's deflate stream
npz("bad_deflate", bytes(deflated), ": member 'y.W.npy' is corrupt: its data gives 151 bytes, its header says 152")
dup = zip_bytes(GOOD_W).replace(b"y.b.npy", b"y.W.npy")
npz("duplicate_member", dup,
    ": not a valid .npz (zip) file: File already exists (two members have the same name)")
npz("missing_param", zip_bytes(GOOD_W[:1]),
    ": no tensor for param 'y.b' (did you mean 'y.W'?); the file holds 1 tensor: y.W")
npz("wrong_shape", zip_bytes([("y.W.npy", npy_bytes("(3, 2)", W6)), GOOD_W[1]]), ": param 'y.W' is f32 [2, 3] but the file's tensor is f32 [3, 2]")
npz("empty_zip", zip_bytes([]), ": no tensor for param 'y.W'; the file holds 0 tensors")

# ---- IDX: nabla train, data files in the case's folder (--data $DIR) ---------

IDX_MODEL = """nabla: 1
inputs:
  x: [N, 4]
  t: {shape: [N], dtype: i32}
nodes:
  - {name: y, layer: dense, in: [x], units: 3}
  - {name: loss, op: softmax_cross_entropy, in: [y, t]}
loss: loss
train:
  data:
    format: idx
    train: {images: %s, labels: %s}
    feed: {x: images, t: labels}
  batch: 2
  epochs: 1
"""
write("idx/raw.yaml", IDX_MODEL % ("images-idx3-ubyte", "labels-idx1-ubyte"))
write("idx/gz.yaml", IDX_MODEL % ("images-idx3-ubyte.gz", "labels-idx1-ubyte.gz"))


def idx_bytes(dims, data, type_=8, zeros=b"\0\0"):
    return zeros + bytes([type_, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + data


IMAGES = idx_bytes([4, 2, 2], bytes(range(16)))
LABELS = idx_bytes([4], bytes([0, 1, 2, 1]))


def gz(data):
    return gzip.compress(data, mtime=0)


def idx(name, images, labels, bad, expected, compressed=False, prefix="$FILE: "):
    """A folder idx/NAME with an image and a label file; `bad` says which one
    the case is about (the FILE of the manifest)."""
    suffix = ".gz" if compressed else ""
    files = {"images": "images-idx3-ubyte" + suffix, "labels": "labels-idx1-ubyte" + suffix}
    for what, data in (("images", images), ("labels", labels)):
        if what != bad:
            write("idx/%s/%s" % (name, files[what]), gz(data) if compressed else data)
    model = "gz" if compressed else "raw"
    case("idx/%s/%s" % (name, files[bad]), {"images": images, "labels": labels}[bad],
         "train $BAD/idx/%s.yaml --data $DIR --epochs 1" % model, prefix + expected)


idx("empty", b"", LABELS, "images", "not an IDX file: 0 bytes, too short for a header")
idx("short", b"\0\0", LABELS, "images", "not an IDX file: 2 bytes, too short for a header")
idx("magic", b"\x1f\x8c" + IMAGES[2:], LABELS, "images", "not an IDX file: it starts with bytes 0x1f 0x8c, not 0x00 0x00")
idx("float_type", idx_bytes([4, 2, 2], bytes(64), 0x0D), LABELS, "images",
    "IDX element type 0x0d (float) is not supported; nabla reads only 0x08 (unsigned byte)")
idx("zero_dims", idx_bytes([], b""), LABELS, "images", "the IDX header has 0 dimensions; nabla reads 1 to 4")
idx("five_dims", idx_bytes([1, 1, 4, 2, 2], bytes(16)), LABELS, "images", "the IDX header has 5 dimensions; nabla reads 1 to 4")
idx("trunc_sizes", IMAGES[:10], LABELS, "images",
    "truncated in the header: 3 dimensions need 12 bytes of sizes, the file has 6")
idx("zero_dim", idx_bytes([4, 0, 2], b""), LABELS, "images", "dimension 2 of the IDX header (4×0×2) is 0")
idx("trunc_data", IMAGES[:-3], LABELS, "images", "truncated: the header says 4×2×2 = 16 bytes of data, the file has 13")
idx("trailing", IMAGES + b"\0" * 5, LABELS, "images", "trailing data: 5 bytes after the 16 the header says (4×2×2)")
idx("overflow", idx_bytes([0xFFFFFFFF] * 4, b""), LABELS, "images",
    "the IDX header's sizes (4294967295×4294967295×4294967295×4294967295) are too large")
idx("huge", idx_bytes([0xFFFFFFFF, 0x40000000], b""), LABELS, "images",
    "the IDX header's sizes (4294967295×1073741824) need 4.61e+09 GB, over the memory limit of")
idx("labels_2d", IMAGES, idx_bytes([4, 1], bytes(4)), "labels", "labels must be 1-D (one per image), but the file is 4×1")
idx("count_mismatch", IMAGES, idx_bytes([3], bytes(3)), "labels", "4 images, but $FILE has 3 labels", prefix="")
idx("label_range", IMAGES, idx_bytes([4], bytes([0, 1, 7, 1])), "labels", "sample 2 has label 7; the model has 3 classes")
idx("label_signed", IMAGES, idx_bytes([4], bytes(4), 0x09), "labels",
    "IDX element type 0x09 (signed byte) is not supported")

idx("gz_empty", b"", LABELS, "images", "not an IDX file: 0 bytes, too short for a header", compressed=True)
idx("gz_magic", gz(b"\x01\x02" + IMAGES[2:]), LABELS, "images", "not an IDX file: it starts with bytes 0x01 0x02",
    compressed=True)
cut = gz(IMAGES)
idx("gz_cut", cut[:len(cut) - 12], LABELS, "images",
    "truncated: the header says 4×2×2 = 16 bytes of data, the file has 13", compressed=True)
bad_crc = bytearray(gz(IMAGES))
bad_crc[-8] ^= 0xFF
idx("gz_crc", bytes(bad_crc), LABELS, "images", "corrupt gzip data: incorrect data check", compressed=True)
bad_stream = bytearray(gz(IMAGES))
bad_stream[10] = 0xFF  # the first deflate block header: an invalid block type
idx("gz_stream", bytes(bad_stream), LABELS, "images", "corrupt gzip data: invalid block type", compressed=True)
idx("gz_trunc_data", gz(IMAGES[:-4]), LABELS, "images", "truncated: the header says 4×2×2 = 16 bytes of data, the file has 12",
    compressed=True)
idx("gz_trailing", gz(IMAGES + b"\0"), LABELS, "images", "trailing data: 1 bytes after the 16 the header says (4×2×2)", compressed=True)
idx("gz_count", IMAGES, gz(idx_bytes([5], bytes(5))), "labels", "4 images, but $FILE has 5 labels",
    compressed=True, prefix="")

# ---- checkpoints: nabla train --resume FILE (the IDX model, data next to it) ----

write("checkpoint/model.yaml", IDX_MODEL % ("images-idx3-ubyte", "labels-idx1-ubyte"))
write("checkpoint/images-idx3-ubyte", IMAGES)
write("checkpoint/labels-idx1-ubyte", LABELS)
CK_RUN = "train $BAD/checkpoint/model.yaml --resume $FILE --epochs 3"
CK_META = {"format": "nabla-checkpoint-1", "epoch": "1", "batch": "0", "loss_sum": "0", "samples": "0",
           "correct": "0", "seed": "0", "seconds": "0"}


def checkpoint(drop=(), step=1.0, **meta):
    """A checkpoint of the model after one epoch, as nabla train --save writes
    it (params, Adam's state), with metadata `meta` changed, Adam's step
    count `step` and the tensors `drop` left out."""
    tensors = [("y.W", "F32", [4, 3]), ("y.b", "F32", [3]), ("opt.step", "F64", []),
               ("opt.y.W.m", "F32", [4, 3]), ("opt.y.W.v", "F32", [4, 3]), ("opt.y.b.m", "F32", [3]),
               ("opt.y.b.v", "F32", [3])]
    header, data = {"__metadata__": {k: v for k, v in dict(CK_META, **meta).items() if v is not None}}, b""
    for name, dtype, shape in tensors:
        if name in drop:
            continue
        n = 8 if dtype == "F64" else 4 * (shape[0] * (shape[1] if len(shape) > 1 else 1))
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + n]}
        data += struct.pack("<d", step) if dtype == "F64" else bytes(n)
    return st_file(header, data)


write("checkpoint/good.safetensors", checkpoint())  # resumes (the fuzzer's seed)


def ck(name, data, expected):
    case("checkpoint/" + name + ".safetensors", data, CK_RUN, expected)


ck("weights_only", checkpoint(format=None), "$FILE: not a nabla checkpoint (no format 'nabla-checkpoint-1' in its metadata)")
ck("other_format", checkpoint(format="nabla-checkpoint-2"), "$FILE: not a nabla checkpoint")
ck("no_epoch", checkpoint(epoch=None), "$FILE: the checkpoint has no 'epoch' in its metadata")
ck("epoch_text", checkpoint(epoch="one"), "$FILE: the checkpoint's 'epoch' is 'one', not a whole number from 0 to 2^53")
ck("epoch_huge", checkpoint(epoch="1e300"), "$FILE: the checkpoint's 'epoch' is '1e300', not a whole number from 0 to 2^53")
ck("epoch_negative", checkpoint(epoch="-1"), "$FILE: the checkpoint's 'epoch' is '-1', not a whole number from 0 to 2^53")
ck("batch_fraction", checkpoint(batch="0.5"), "$FILE: the checkpoint's 'batch' is '0.5', not a whole number from 0 to 2^53")
ck("batch_past_end", checkpoint(batch="1000"),
   "trainer: resumed after batch 1000 of epoch 2, but an epoch of these 4 samples has 2 batches of 2 "
   "(another dataset or batch size than the checkpoint's?)")
ck("loss_nan", checkpoint(loss_sum="nan"), "$FILE: the checkpoint's 'loss_sum' is 'nan', not a finite number >= 0")
ck("samples_huge", checkpoint(samples="99999999999999999999"),
   "$FILE: the checkpoint's 'samples' is '99999999999999999999', not a whole number from 0 to 2^53")
ck("no_adam_state", checkpoint(drop=("opt.y.W.v",)), "$FILE: no tensor for param 'opt.y.W.v'")
ck("step_huge", checkpoint(step=1.86599e+261),
   "$FILE: the checkpoint's optimizer step count 'opt.step' is 1.86599e+261, not a whole number from 0 to 2^53")
ck("step_nan", checkpoint(step=float("nan")), "$FILE: the checkpoint's optimizer step count 'opt.step' is nan")
ck("step_negative", checkpoint(step=-3.0), "$FILE: the checkpoint's optimizer step count 'opt.step' is -3")
ck("step_fraction", checkpoint(step=2.5), "$FILE: the checkpoint's optimizer step count 'opt.step' is 2.5")
ck("truncated", checkpoint()[:-5], "$FILE: tensor 'opt.y.b.v' data [176, 188) overruns the data section of 183 bytes")

# ---- training logs: nabla plot FILE (the CSV of nabla train --log) ----------

LOG_HEAD = "epoch,train_loss,train_acc,test_loss,test_acc,samples_per_s,elapsed_s"
PLOT = "plot $FILE -o $OUT.svg"


def log(name, text, expected):
    case("log/" + name + ".csv", text, PLOT, expected)


log("empty", "", "$FILE:1: empty file; a training log starts with the line " + LOG_HEAD)
log("not_log", "epoch,loss\n1,0.5\n", "$FILE:1: not a training log: the first line must be " + LOG_HEAD)
log("header_only", LOG_HEAD + "\n", "$FILE: no epochs (only the header line)")
log("three_fields", LOG_HEAD + "\n1,0.5,0.9\n", "$FILE:2: 3 fields, expected 7 (" + LOG_HEAD + ")")
log("not_number", LOG_HEAD + "\n1,0.5,0.9,,,,\n2,abc,0.9,,,,\n", "$FILE:3: train_loss: 'abc' is not a number")
log("epoch_empty", LOG_HEAD + "\n,0.5,0.9,,,,\n", "$FILE:2: epoch is empty")
log("epoch_inf", LOG_HEAD + "\ninf,0.5,0.9,,,,\n", "$FILE:2: epoch is inf")
log("accuracy_above_1", LOG_HEAD + "\n1,0.5,1.5,,,,\n", "$FILE:2: train_acc is 1.5; accuracies are fractions in [0, 1]")
log("nul_byte", LOG_HEAD + "\n1,0.5\0,0.9,,,,\n", "$FILE:2: a NUL byte in the line")
log("empty_line", LOG_HEAD + "\n1,0.5,0.9,,,,\n\n2,0.4,0.9,,,,\n", "$FILE:3: empty line")
log("no_values", LOG_HEAD + "\n1,nan,nan,nan,nan,nan,nan\n", "the log has no loss values to plot")

# ---- the manifest -----------------------------------------------------------

with open(os.path.join(HERE, "MANIFEST"), "w") as f:
    f.write("# Written by make.py (edit the cases there): FILE<TAB>COMMAND<TAB>EXPECTED on stderr, exit 2.\n")
    for rel, command, expected in cases:
        f.write("%s\t%s\t%s\n" % (rel, command, expected))
print(len(cases), "cases")
