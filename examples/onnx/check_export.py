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

With --backend, also every case of Debian's libonnx-testdata that nabla loads:
the model is converted to YAML and from there back to ONNX, both are run on the
case's inputs (nabla run) and compared with its expected outputs (rtol 1e-3,
atol 1e-5, as tests/test_onnx_backend.c does for the original files).

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
    r = subprocess.run([nabla, "convert", src, "-o", out, "--force"], capture_output=True, text=True)
    if r.returncode != 0:
        return r.stderr.strip()
    return None


def check(path):
    try:
        onnx.checker.check_model(onnx.load(path), full_check=True)
        return None
    except Exception as e:  # the checker's own exception types vary by version
        return str(e).strip().splitlines()[0]


def sanitize(name, taken):
    """nabla's name for an ONNX name (docs/onnx.md, "Names")."""
    base = "".join(c if c.isalnum() and c.isascii() or c in "_.-" else "_" for c in name)
    if base.startswith("grad.") or base.startswith("opt."):
        base = base.replace(".", "_", 1)
    out, k = base, 2
    while out in taken:
        out, k = f"{base}_{k}", k + 1
    taken.add(out)
    return out


def run_case(nabla, model, case_dir, inputs, outputs, tmp):
    """nabla run MODEL on the case's inputs; None when the outputs match."""
    import numpy as np
    from onnx import numpy_helper
    args = [nabla, "run", model, "-o", os.path.join(tmp, "out")]
    for k, name in enumerate(inputs):
        if name is None:
            continue  # an input the outputs do not need (not exported)
        a = numpy_helper.to_array(onnx.load_tensor(os.path.join(case_dir, f"input_{k}.pb")))
        path = os.path.join(tmp, f"in{k}.npy")
        np.save(path, a.astype(np.int32) if a.dtype == bool else a)  # .npy has no nabla bool
        args += ["--in", f"{name}={path}"]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        return r.stderr.strip().splitlines()[0]
    for k, name in enumerate(outputs):
        want = numpy_helper.to_array(onnx.load_tensor(os.path.join(case_dir, f"output_{k}.pb")))
        got = np.load(os.path.join(tmp, "out", name + ".npy"))
        if got.shape != want.shape or not np.allclose(got, want, rtol=1e-3, atol=1e-5, equal_nan=True):
            return f"output {name} differs"
    return None


def backend(nabla, tmp):
    """(passed, failed) over the backend cases nabla loads."""
    passed = failed = 0
    for model in sorted(glob.glob("/usr/share/libonnx-testdata/data/*/*/model.onnx")):
        case = os.path.dirname(model)
        if subprocess.run([nabla, "check", model], capture_output=True).returncode != 0:
            continue
        m = onnx.load(model)
        inits = {t.name for t in m.graph.initializer}
        taken = set()
        inputs = [sanitize(v.name, taken) for v in m.graph.input if v.name not in inits]
        outputs = [sanitize(v.name, set()) for v in m.graph.output]
        yaml, back = os.path.join(tmp, "b.yaml"), os.path.join(tmp, "b.onnx")
        err = convert(nabla, model, yaml)
        if err and ("no op node" in err):
            continue  # outputs computed at load time: nothing for a model file to say
        sets = sorted(glob.glob(os.path.join(case, "test_data_set_*")))
        if run_case(nabla, model, sets[0], inputs, outputs, tmp):
            continue  # the original fails already (tests/test_onnx_backend.c's "error")
        for target in [yaml, back]:
            if not err and target == back:
                err = convert(nabla, yaml, back)
                if err and "unsupported" in err:
                    err = None
                    break  # losses have no ONNX writer
                if not err:  # the export keeps only the inputs the outputs need
                    kept = {v.name for v in onnx.load(back).graph.input}
                    inputs = [n if n in kept else None for n in inputs]
            for s in sets:
                if err:
                    break
                err = run_case(nabla, target, s, inputs, outputs, tmp)
            if err:
                print(f"FAIL {os.path.basename(case)} ({os.path.basename(target)}): {err}")
                break
        failed += bool(err)
        passed += not err
    return passed, failed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nabla", default=os.path.join(ROOT, "build", "tools", "nabla"))
    ap.add_argument("--backend", action="store_true",
                    help="also the ONNX backend tests, through YAML and back (slow)")
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
        if args.backend:
            p, f = backend(args.nabla, tmp)
            print(f"backend cases through YAML and back: {p} passed, {f} failed")
            failed += f
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
