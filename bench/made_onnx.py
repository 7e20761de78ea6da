#!/usr/bin/env python3
"""onnxruntime speed anchor for the MADE-MoG kernels (plain layout crkernels.made.v1).

Reads tests/data/made/secret_shape.safetensors (SECRET shape: 5 context inputs with degrees 1..5,
19 data dimensions, one hidden layer of 200 sigmoid units, K = 10, standardisation), builds two
float32 ONNX graphs with the onnx helper API and times them on the CPU:

  (a) log_prob for a batch: standardise, Concat, MatMul/Add/Sigmoid, one MatMul for the three
      heads, log-softmax and the Gaussian log-density with ReduceLogSumExp, ReduceSum;
  (b) one network pass giving the mixture parameters (log pi, mu, sigma) from the standardised
      x and the user's-space context (standardised inside the graph). Sampling is what every
      public MADE implementation does: D full passes per sample, the Python loop drawing the
      dimension of degree d from the outputs of pass d (NumPy draws, timed with the passes).

Masks are folded into the constant weights (as a loader would). Threads: intra_op_num_threads =
1 and 2. The ONNX log_prob is checked against the float64 NumPy reference
(tests/reference/made_reference.py). If target/release/libcrkernels.so (or --lib PATH) exports crk_made_log_prob /
crk_made_sample they are timed in the same process through ctypes, on the same batch and thread
counts, and the ratios against onnxruntime are printed (cargo build --release first).

    python3 -m venv .venv-made && .venv-made/bin/pip install -r bench/requirements-made.txt
    .venv-made/bin/python bench/made_onnx.py [--n 10000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import subprocess
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
from made_reference import PlainMade, read_safetensors  # noqa: E402

MODEL = os.path.join(ROOT, "tests", "data", "made", "secret_shape.safetensors")


def folded(model: PlainMade):
    """Masked weights, transposed for MatMul, float32."""
    if len(model.layers) != 1:
        raise SystemExit("the ONNX graph here has one hidden layer (the SECRET shape)")
    W0, b0 = model.layers[0]
    heads = np.concatenate([W for W, _ in model.heads], axis=0)          # [3DK, H], (h, d, k)
    hb = np.concatenate([b for _, b in model.heads])
    f = lambda a: np.ascontiguousarray(a, dtype=np.float32)              # noqa: E731
    return dict(W0T=f(W0.T), b0=f(b0), WhT=f(heads.T), bh=f(hb),
                xm=f(model.xm), xinv=f(1.0 / model.xs), cm=f(model.cm), cinv=f(1.0 / model.cs))


def const(name, a):
    return numpy_helper.from_array(np.asarray(a), name)


def build_graphs(model: PlainMade):
    C, D, K = model.C, model.D, model.K
    w = folded(model)
    inits = [const(k, v) for k, v in w.items()]
    inits += [const("shape_heads", np.array([-1, 3, D, K], np.int64)),
              const("shape_x", np.array([-1, D, 1], np.int64)),
              const("i0", np.array(0, np.int64)), const("i1", np.array(1, np.int64)),
              const("i2", np.array(2, np.int64)),
              const("half", np.array(-0.5, np.float32)),
              const("lognorm", np.array(-0.5 * np.log(2 * np.pi), np.float32)),
              const("logdet", np.array(-np.log(model.xs).sum(), np.float32)),
              const("ax12", np.array([1], np.int64))]
    N = helper.make_node
    hidden_nodes = [
        N("Sub", ["context", "cm"], ["c0"]), N("Mul", ["c0", "cinv"], ["cs"]),
        N("Concat", ["cs", "xs"], ["inp"], axis=1),
        N("MatMul", ["inp", "W0T"], ["a0"]), N("Add", ["a0", "b0"], ["a1"]),
        N("Sigmoid", ["a1"], ["h"]),
        N("MatMul", ["h", "WhT"], ["o0"]), N("Add", ["o0", "bh"], ["o1"]),
        N("Reshape", ["o1", "shape_heads"], ["o"]),
        N("Gather", ["o", "i0"], ["logits"], axis=1),
        N("Gather", ["o", "i1"], ["mu"], axis=1),
        N("Gather", ["o", "i2"], ["ls"], axis=1),
        N("ReduceLogSumExp", ["logits"], ["lse"], axes=[2], keepdims=1),
        N("Sub", ["logits", "lse"], ["logpi"]),
    ]
    f32 = TensorProto.FLOAT
    ctx_in = helper.make_tensor_value_info("context", f32, ["N", C])

    # (a) log_prob
    nodes_a = [N("Sub", ["x", "xm"], ["x0"]), N("Mul", ["x0", "xinv"], ["xs"])] + hidden_nodes + [
        N("Reshape", ["xs", "shape_x"], ["x3"]),
        N("Sub", ["x3", "mu"], ["dx"]),
        N("Neg", ["ls"], ["nls"]), N("Exp", ["nls"], ["isig"]),
        N("Mul", ["dx", "isig"], ["z"]), N("Mul", ["z", "z"], ["z2"]),
        N("Mul", ["z2", "half"], ["q"]),
        N("Sub", ["logpi", "ls"], ["t0"]), N("Add", ["t0", "q"], ["t1"]),
        N("Add", ["t1", "lognorm"], ["comp"]),
        N("ReduceLogSumExp", ["comp"], ["lpd"], axes=[2], keepdims=0),      # [N, D]
        N("ReduceSum", ["lpd", "ax12"], ["lp0"], keepdims=0),               # [N]
        N("Add", ["lp0", "logdet"], ["log_prob"]),
    ]
    ga = helper.make_graph(nodes_a, "made_log_prob",
                           [helper.make_tensor_value_info("x", f32, ["N", D]), ctx_in],
                           [helper.make_tensor_value_info("log_prob", f32, ["N"])], inits)
    # (b) one pass: standardised x in, mixture parameters out
    nodes_b = hidden_nodes + [N("Exp", ["ls"], ["sigma"])]
    gb = helper.make_graph(nodes_b, "made_params",
                           [helper.make_tensor_value_info("xs", f32, ["N", D]), ctx_in],
                           [helper.make_tensor_value_info(n, f32, ["N", D, K])
                            for n in ("logpi", "mu", "sigma")],
                           [i for i in inits if i.name not in ("xm", "xinv", "shape_x",
                                                               "half", "lognorm", "logdet",
                                                               "ax12")])
    out = []
    for g in (ga, gb):
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        onnx.checker.check_model(m)
        out.append(m.SerializeToString())
    return out


def session(model_bytes, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def best_of(fn, repeats):
    fn()                                                      # warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts)


def sample_onnx(sess, model, cs_rows, rng):
    """D passes, drawing the dimension of degree d from pass d (standardised space)."""
    m = cs_rows.shape[0]
    xs = np.zeros((m, model.D), np.float32)
    idx = np.arange(m)
    for d in np.argsort(model.ddeg):
        logpi, mu, sigma = sess.run(None, {"xs": xs, "context": cs_rows})
        p = np.exp(logpi[:, d])
        u = rng.random(m)[:, None]
        k = np.minimum((u > np.cumsum(p, axis=1)).sum(1), model.K - 1)
        xs[:, d] = mu[idx, d, k] + sigma[idx, d, k] * rng.standard_normal(m, dtype=np.float32)
    return xs                                                 # standardised space


def crk_symbols(so):
    if not os.path.exists(so):
        return so, None
    try:
        out = subprocess.run(["nm", "-D", "--defined-only", so], capture_output=True,
                             text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return so, None
    return so, sorted({ln.split()[-1] for ln in out.splitlines()
                       if ln.split() and ln.split()[-1].startswith("crk_made")})


def crk_open(so):
    """Loads the shared library and the benchmark model through the C ABI (crk_made_load)."""
    lib = ctypes.CDLL(so)
    c_size, c_float_p = ctypes.c_size_t, ctypes.POINTER(ctypes.c_float)
    lib.crk_made_load.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.crk_made_log_prob.argtypes = [ctypes.c_void_p, c_float_p, c_float_p, c_size, c_size,
                                      c_float_p]
    lib.crk_made_sample.argtypes = [ctypes.c_void_p, c_float_p, c_size, ctypes.c_uint64, c_size,
                                    c_float_p]
    lib.crk_made_free.argtypes = [ctypes.c_void_p]
    lib.crk_last_error_message.restype = ctypes.c_char_p
    handle = ctypes.c_void_p()
    if lib.crk_made_load(MODEL.encode(), ctypes.byref(handle)) != 0:
        raise RuntimeError(lib.crk_last_error_message().decode())
    return lib, handle


def _floats(a):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_float))


def crk_log_prob(lib, handle, ctx, x, threads, out):
    status = lib.crk_made_log_prob(handle, _floats(ctx), _floats(x), len(x), threads, _floats(out))
    if status != 0:
        raise RuntimeError(lib.crk_last_error_message().decode())


def crk_sample(lib, handle, ctx, seed, threads, out):
    status = lib.crk_made_sample(handle, _floats(ctx), len(ctx), seed, threads, _floats(out))
    if status != 0:
        raise RuntimeError(lib.crk_last_error_message().decode())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sample-repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--lib", default=os.path.join(ROOT, "target", "release", "libcrkernels.so"),
                    help="the crkernels shared library (another CARGO_TARGET_DIR's build)")
    args = ap.parse_args()

    t, meta = read_safetensors(MODEL)
    model = PlainMade(t, meta)
    g_lp, g_par = build_graphs(model)
    print(f"model: {os.path.relpath(MODEL, ROOT)}  C={model.C} D={model.D} "
          f"H={[W.shape[0] for W, _ in model.layers]} K={model.K}")
    print(f"onnxruntime {ort.__version__}, onnx {onnx.__version__}, numpy {np.__version__}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs")

    # inputs: draws from the model with random contexts (float64 reference sampler)
    rng = np.random.default_rng(7)
    n = args.n
    ctx = (model.cm + model.cs * rng.standard_normal((n, model.C))).astype(np.float32)
    x = model.sample(ctx, rng).astype(np.float32)

    # accuracy vs the float64 reference
    ref = model.log_prob(x, ctx)
    exp, _ = read_safetensors(MODEL.replace(".safetensors", ".expected.safetensors"))
    s1 = session(g_lp, 1)
    got = s1.run(None, {"x": x, "context": ctx})[0].astype(np.float64)
    got_e = s1.run(None, {"x": exp["x"], "context": exp["context"]})[0].astype(np.float64)
    d_bulk = np.abs(got - ref)
    d_exp = np.abs(got_e - exp["log_prob"])
    print(f"log_prob check, batch of {n} model draws: max |ORT f32 - NumPy f64| = "
          f"{d_bulk.max():.3e} (log_prob in [{ref.min():.1f}, {ref.max():.1f}])")
    print(f"log_prob check, 64 expected rows incl. 12 tail rows (down to "
          f"{exp['log_prob'].min():.3g}): max abs {d_exp.max():.3e}, "
          f"max rel {(d_exp / np.maximum(1, np.abs(exp['log_prob']))).max():.3e}")

    one_ctx = np.repeat(ctx[:1], n, axis=0)          # graphs take the context in user's space
    print(f"\n{'what':44s} {'threads':>7s} {'best s':>9s} {'spectra/s':>12s}")
    results = {}
    for th in args.threads:
        sl, sp = session(g_lp, th), session(g_par, th)
        tl = best_of(lambda: sl.run(None, {"x": x, "context": ctx}), args.repeats)
        results[("log_prob", th)] = n / tl
        print(f"{'log_prob (batch ' + str(n) + ')':44s} {th:7d} {tl:9.4f} {n / tl:12.4g}")
        xs0 = np.zeros((n, model.D), np.float32)
        tp = best_of(lambda: sp.run(None, {"xs": xs0, "context": one_ctx}), args.repeats)
        print(f"{'one forward pass (params, batch ' + str(n) + ')':44s} {th:7d} {tp:9.4f} "
              f"{n / tp:12.4g}")
        srng = np.random.default_rng(11)
        ts = best_of(lambda: sample_onnx(sp, model, one_ctx, srng),
                     args.sample_repeats)
        results[("sample", th)] = n / ts
        print(f"{'sample: ' + str(model.D) + ' passes + NumPy draws (' + str(n) + ')':44s} "
              f"{th:7d} {ts:9.4f} {n / ts:12.4g}")

    # sanity of the ONNX sampler: first-degree marginal vs the reference sampler
    srng = np.random.default_rng(12)
    xs_onnx = sample_onnx(session(g_par, 1), model, one_ctx, srng)
    xs_ref = (model.sample(np.repeat(ctx[:1], n, 0), np.random.default_rng(13)) - model.xm) \
        / model.xs
    zdiff = (xs_onnx.mean(0) - xs_ref.mean(0)) / np.sqrt(
        (xs_onnx.var(0) + xs_ref.var(0)) / n)
    print(f"\nONNX sampler vs NumPy reference sampler, per-dim mean difference: "
          f"max |z| = {np.abs(zdiff).max():.2f} over {model.D} dims")

    so, syms = crk_symbols(args.lib)
    if syms is None or not {"crk_made_log_prob", "crk_made_sample"} <= set(syms):
        print(f"\ncrkernels: {os.path.relpath(so, ROOT)} not built, or without crk_made_log_prob /"
              f" crk_made_sample: skipped (cargo build --release first)")
        return 0
    lib, handle = crk_open(so)
    try:
        got = np.empty(n, np.float32)
        crk_log_prob(lib, handle, ctx, x, 1, got)
        print(f"\ncrkernels log_prob vs NumPy f64, the same {n} rows: max abs "
              f"{np.abs(got.astype(np.float64) - ref).max():.3e}")
        print(f"\n{'what (same process, same batch)':44s} {'threads':>7s} {'spectra/s':>12s} "
              f"{'vs ORT':>8s}")
        out_x = np.empty((n, model.D), np.float32)
        for th in args.threads:
            tl = best_of(lambda: crk_log_prob(lib, handle, ctx, x, th, got), args.repeats)
            print(f"{'crkernels log_prob':44s} {th:7d} {n / tl:12.4g} "
                  f"{n / tl / results[('log_prob', th)]:7.1f}x")
            ts = best_of(lambda: crk_sample(lib, handle, one_ctx, 1, th, out_x), args.repeats)
            print(f"{'crkernels sample (one pass per sample)':44s} {th:7d} {n / ts:12.4g} "
                  f"{n / ts / results[('sample', th)]:7.1f}x")
    finally:
        lib.crk_made_free(handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
