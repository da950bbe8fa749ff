#!/usr/bin/python3
"""Checks what `nabla convert MODEL -o OUT.onnx` writes with the ONNX project's
own checker (onnx.checker, full check: shape inference included), for every
model of examples/models and tests/data/convert/ops.yaml (every op nabla
writes to ONNX). Also converts the PyTorch exports of examples/onnx to YAML
and back to ONNX and checks those. The test suite proves the exported files
compute what the models compute (tests/test_convert.c, by importing them back);
this script is the independent check of the format, for developers (it needs
Debian's python3-onnx; the suite does not).

    /usr/bin/python3 examples/onnx/check_export.py [--nabla build/tools/nabla]

Exit status 0 when every file passes, 1 otherwise (each failure printed).
"""
import argparse
import glob
import os
import subprocess
import sys
import tempfile

import onnx

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def convert(nabla, src, out):
    r = subprocess.run([nabla, "convert", src, "-o", out], capture_output=True, text=True)
    if r.returncode != 0:
        return r.stderr.strip()
    return None


def check(path):
    try:
        onnx.checker.check_model(onnx.load(path), full_check=True)
        return None
    except Exception as e:  # the checker's own exception types vary by version
        return str(e).strip().splitlines()[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nabla", default=os.path.join(ROOT, "build", "tools", "nabla"))
    args = ap.parse_args()
    models = sorted(glob.glob(os.path.join(ROOT, "examples", "models", "*.yaml")))
    models.append(os.path.join(ROOT, "tests", "data", "convert", "ops.yaml"))
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        # the PyTorch exports, through YAML and back to ONNX
        for src in sorted(glob.glob(os.path.join(ROOT, "examples", "onnx", "*.onnx"))):
            name = os.path.basename(src)[:-5]
            yaml = os.path.join(tmp, name + ".from_onnx.yaml")
            err = convert(args.nabla, src, yaml)
            if err:
                print(f"skip {name}.onnx: {err}")
                continue
            models.append(yaml)
        for src in models:
            name = os.path.basename(src)[:-5]
            out = os.path.join(tmp, name + ".onnx")
            err = convert(args.nabla, src, out) or check(out)
            print(f"{'ok  ' if not err else 'FAIL'} {name}" + (f": {err}" if err else ""))
            failed += bool(err)
    print(f"{len(models) - failed} passed, {failed} failed (onnx {onnx.__version__})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
