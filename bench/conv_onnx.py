#!/usr/bin/env python3
"""onnxruntime speed anchor for the convolution kernels and the network runner.

Times onnxruntime (CPU execution provider, MLAS) with intra_op_num_threads = 1 and 2 on the seed
002 shapes (air-shower detector data):

  conv1d   input [256, 2, 256], 32 filters of width 5, 'same' (padding 2), bias
  conv2d   input [256, 32, 8, 8], 64 filters 3x3, 'same' (padding 1), bias
  network  tests/data/conv/net_sd_two_branch.safetensors on a batch of 256 events

best of several repeats (each repeat runs enough calls to last >= --min-time seconds; the
repeats of onnxruntime and crkernels interleaved, so that both see the same load), printing
the time per call, GFLOP/s (2 x multiply-adds of the conv and dense layers) and the largest
difference of onnxruntime from the float64 NumPy reference (tests/reference/conv_reference.py).

If target/release/libcrkernels.so (or --lib PATH) exports crk_conv1d_f32 / crk_conv2d_f32 (and
their _threads variants for more than one thread) / crk_network_load / crk_network_run, they are
timed in the same process through ctypes on the same data and thread counts, checked against the reference, and the ratios are printed; otherwise that
part is skipped. Re-run after `cargo build --release`:

    python3 -m venv .venv-conv && .venv-conv/bin/pip install -r bench/requirements-conv.txt
    .venv-conv/bin/python bench/conv_onnx.py [--repeats 7] [--min-time 0.05] [--threads 1 2]

On a shared, loaded machine, `--repeats 100 --min-time 0.001 --gap 0.03` (the best of single
calls, each after 30 ms of sleep) is steadier than long windows.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import shutil
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
import conv_reference as ref  # noqa: E402

NET = os.path.join(ROOT, "tests", "data", "conv", "net_sd_two_branch.safetensors")
LIB = os.path.join(ROOT, "target", "release", "libcrkernels.so")
SYMBOLS = ("crk_conv1d_f32", "crk_conv2d_f32", "crk_network_load", "crk_network_run")


def best_times(fns, repeats, min_time, gap=0.0):
    """Best time per call of each function, the repeats interleaved (one window of each in
    turn, >= min_time seconds each, after `gap` seconds of sleep), so that a change in the load
    of a shared machine reaches every function alike."""
    inner = []
    for fn in fns:
        fn()                                               # warm-up (and first-call setup)
        t0 = time.perf_counter()
        fn()
        inner.append(max(1, int(min_time / max(time.perf_counter() - t0, 1e-7))))
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for j, fn in enumerate(fns):
            if gap > 0:
                time.sleep(gap)
            t0 = time.perf_counter()
            for _ in range(inner[j]):
                fn()
            best[j] = min(best[j], (time.perf_counter() - t0) / inner[j])
    return best


def rel_err(y, ref_y):
    return float(np.max(np.abs(np.asarray(y, np.float64) - ref_y)) / max(1.0, np.max(np.abs(ref_y))))


# ---------------------------------------------------------------------------------------------
# the crkernels C ABI through ctypes (optional)
# ---------------------------------------------------------------------------------------------
class ConvParams(ctypes.Structure):
    _fields_ = [("stride", ctypes.c_size_t * 2), ("padding", ctypes.c_size_t * 2),
                ("dilation", ctypes.c_size_t * 2), ("groups", ctypes.c_size_t)]


def exported(path):
    """Names among SYMBOLS that the shared library exports (nm -D; ctypes as a fallback)."""
    if not os.path.exists(path):
        return set()
    if shutil.which("nm"):
        out = subprocess.run(["nm", "-D", "--defined-only", path], capture_output=True, text=True).stdout
        names = {line.split()[-1] for line in out.splitlines() if line.strip()}
        return {s for s in SYMBOLS if s in names}
    lib = ctypes.CDLL(path)
    return {s for s in SYMBOLS if hasattr(lib, s)}


class Crk:
    def __init__(self, path, symbols):
        self.lib = lib = ctypes.CDLL(path)
        self.symbols = symbols
        P = ctypes.POINTER
        f32p, sz = P(ctypes.c_float), ctypes.c_size_t
        if hasattr(lib, "crk_last_error_message"):
            lib.crk_last_error_message.restype = ctypes.c_char_p
            lib.crk_last_error_message.argtypes = []
        if "crk_conv2d_f32" in symbols:
            lib.crk_conv2d_f32.restype = ctypes.c_int32
            lib.crk_conv2d_f32.argtypes = [f32p, sz, sz, sz, sz, f32p, f32p, sz, sz, sz,
                                           P(ConvParams), f32p]
        if "crk_conv1d_f32" in symbols:
            lib.crk_conv1d_f32.restype = ctypes.c_int32
            lib.crk_conv1d_f32.argtypes = [f32p, sz, sz, sz, f32p, f32p, sz, sz, P(ConvParams), f32p]
        for name in ("crk_conv2d_f32", "crk_conv1d_f32"):
            if name in symbols:
                threaded = getattr(lib, name + "_threads")
                threaded.restype = ctypes.c_int32
                threaded.argtypes = getattr(lib, name).argtypes[:-1] + [sz, f32p]
        if {"crk_network_load", "crk_network_run"} <= symbols:
            lib.crk_network_load.restype = ctypes.c_int32
            lib.crk_network_load.argtypes = [ctypes.c_char_p, P(ctypes.c_void_p)]
            lib.crk_network_run.restype = ctypes.c_int32
            lib.crk_network_run.argtypes = [ctypes.c_void_p, P(f32p), sz, sz, sz, f32p, sz]
            if hasattr(lib, "crk_network_free"):
                lib.crk_network_free.restype = None
                lib.crk_network_free.argtypes = [ctypes.c_void_p]

    def check(self, status, what):
        if status != 0:
            msg = (self.lib.crk_last_error_message()
                   if hasattr(self.lib, "crk_last_error_message") else None)
            raise RuntimeError(f"{what}: status {status}: {msg.decode() if msg else '?'}")

    @staticmethod
    def ptr(a):
        return a.ctypes.data_as(ctypes.POINTER(ctypes.c_float))

    def conv_fn(self, x, w, b, stride, pad, dilation, groups, out, threads=1):
        """Symmetric padding only (the C struct has one value per axis); conv1d uses index 1.
        One thread: crk_conv2d_f32 / crk_conv1d_f32; more: their _threads variants."""
        d = x.ndim - 2
        cp = ConvParams()
        for j in range(d):
            k = 2 - d + j
            cp.stride[k], cp.padding[k], cp.dilation[k] = stride[j], pad[j], dilation[j]
        for k in range(2 - d):
            cp.stride[k], cp.padding[k], cp.dilation[k] = 1, 0, 1
        cp.groups = groups
        px, pw, pb, po = self.ptr(x), self.ptr(w), self.ptr(b) if b is not None else None, self.ptr(out)
        threaded = () if threads == 1 else (threads,)
        if d == 2:
            n, c, h, wd = x.shape
            args = (px, n, c, h, wd, pw, pb, w.shape[0], w.shape[2], w.shape[3], ctypes.byref(cp), *threaded, po)
            fn = self.lib.crk_conv2d_f32 if threads == 1 else self.lib.crk_conv2d_f32_threads
        else:
            n, c, L = x.shape
            args = (px, n, c, L, pw, pb, w.shape[0], w.shape[2], ctypes.byref(cp), *threaded, po)
            fn = self.lib.crk_conv1d_f32 if threads == 1 else self.lib.crk_conv1d_f32_threads

        def run():
            self.check(fn(*args), fn.__name__)
        return run

    def network(self, path):
        h = ctypes.c_void_p()
        self.check(self.lib.crk_network_load(path.encode(), ctypes.byref(h)), "crk_network_load")
        return h

    def network_fn(self, h, inputs, batch, threads, out):
        arr = (ctypes.POINTER(ctypes.c_float) * len(inputs))(*[self.ptr(a) for a in inputs])

        def run():
            self.check(self.lib.crk_network_run(h, arr, len(inputs), batch, threads, self.ptr(out),
                                                out.size), "crk_network_run")
        return run


# ---------------------------------------------------------------------------------------------
def machine():
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{cpu}; {os.cpu_count()} logical CPUs; Python {platform.python_version()}, "
            f"NumPy {np.__version__}, onnxruntime {ort.__version__}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--min-time", type=float, default=0.05, help="seconds per repeat (at least)")
    ap.add_argument("--gap", type=float, default=0.0,
                    help="seconds of sleep before each timed window (lets onnxruntime's spinning "
                         "workers go idle before crkernels runs, and the reverse)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--lib", default=LIB)
    ap.add_argument("--only", nargs="+", choices=["conv1d", "conv2d", "network"],
                    default=["conv1d", "conv2d", "network"])
    a = ap.parse_args()
    B = a.batch
    rng = np.random.default_rng(2024)
    print(machine())
    syms = exported(a.lib)
    crk = Crk(a.lib, syms) if syms else None
    print(f"crkernels: {a.lib}: " + (", ".join(sorted(syms)) if syms else
                                      "not built or no conv symbols exported: onnxruntime only"))

    # ---- the benchmark cases: (name, onnx model, feeds, reference output, flops, crk runner)
    cases = []
    if "conv1d" in a.only:
        x = rng.standard_normal((B, 2, 256)).astype(np.float32)
        w = (rng.standard_normal((32, 2, 5)) / np.sqrt(10)).astype(np.float32)
        b = rng.uniform(-0.5, 0.5, 32).astype(np.float32)
        P = dict(stride=[1], padding=[[2, 2]], dilation=[1], groups=1)
        y = ref.conv(x, w, b, **P)
        crk_fn = None
        if crk and "crk_conv1d_f32" in syms:
            out = np.empty(y.shape, np.float32)
            crk_fn = (lambda t, x=x, w=w, b=b, out=out: crk.conv_fn(x, w, b, [1], [2], [1], 1, out, t), out)
        cases.append(("conv1d [256,2,256] 32x5 same", ref.onnx_kernel("conv1d", x.shape, y.shape, w, b, P),
                      {"input": x}, y, 2 * y.size * 2 * 5, crk_fn))
    if "conv2d" in a.only:
        x = rng.standard_normal((B, 32, 8, 8)).astype(np.float32)
        w = (rng.standard_normal((64, 32, 3, 3)) / np.sqrt(288)).astype(np.float32)
        b = rng.uniform(-0.5, 0.5, 64).astype(np.float32)
        P = dict(stride=[1, 1], padding=[[1, 1], [1, 1]], dilation=[1, 1], groups=1)
        y = ref.conv(x, w, b, **P)
        crk_fn = None
        if crk and "crk_conv2d_f32" in syms:
            out = np.empty(y.shape, np.float32)
            crk_fn = (lambda t, x=x, w=w, b=b, out=out: crk.conv_fn(x, w, b, [1, 1], [1, 1], [1, 1], 1, out, t),
                      out)
        cases.append(("conv2d [256,32,8,8] 64x3x3 same", ref.onnx_kernel("conv2d", x.shape, y.shape, w, b, P),
                      {"input": x}, y, 2 * y.size * 32 * 9, crk_fn))
    if "network" in a.only:
        net = ref.load_network(NET)
        feeds = {n: rng.standard_normal([B] + s).astype(np.float32) for n, s in net.inputs}
        y = net.run(feeds)
        crk_fn = None
        if crk and {"crk_network_load", "crk_network_run"} <= syms:
            h = crk.network(NET)
            ins = [np.ascontiguousarray(feeds[n]) for n, _ in net.inputs]
            out = np.empty(y.shape, np.float32)
            crk_fn = (lambda t, h=h, ins=ins, out=out: crk.network_fn(h, ins, B, t, out), out)
        cases.append((f"network sd_two_branch, batch {B}", ref.onnx_network(net), feeds, y,
                      ref.network_flops(net, B), crk_fn))

    rows = []
    print(f"\nbest of {a.repeats} repeats (>= {a.min_time} s each); GFLOP/s = 2 x MACs / time")
    print(f"{'case':36s} {'thr':>3s} {'ORT ms':>9s} {'GFLOP/s':>8s} {'ORT err':>8s}"
          + (f" {'crk ms':>9s} {'GFLOP/s':>8s} {'crk err':>8s} {'crk/ORT':>7s}" if crk else ""))
    for name, model, feeds, y, flops, crk_fn in cases:
        for t in a.threads:
            sess = ref.ort_session(model, threads=t)
            yo = sess.run(None, feeds)[0]
            e_ort = rel_err(yo, y)
            ort_fn = lambda: sess.run(None, feeds)  # noqa: E731
            crk_run, crk_error = None, None
            if crk_fn is not None:
                make, out = crk_fn
                try:
                    crk_run = make(t)
                    crk_run()
                except RuntimeError as ex:
                    crk_error = ex
            if crk_run is not None:
                t_ort, t_crk = best_times([ort_fn, crk_run], a.repeats, a.min_time, a.gap)
            else:
                t_ort = best_times([ort_fn], a.repeats, a.min_time, a.gap)[0]
            line = f"{name:36s} {t:3d} {t_ort * 1e3:9.3f} {flops / t_ort / 1e9:8.2f} {e_ort:8.1e}"
            if e_ort > 1e-4:
                line += "  MISMATCH"
            row = dict(case=name, threads=t, ort_s=t_ort, ort_gflops=flops / t_ort / 1e9, ort_err=e_ort)
            if crk_error is not None:
                line += f"   crk failed: {crk_error}"
            elif crk_run is not None:
                e_crk = rel_err(out, y)
                line += (f" {t_crk * 1e3:9.3f} {flops / t_crk / 1e9:8.2f} {e_crk:8.1e}"
                         f" {t_crk / t_ort:7.2f}" + ("  MISMATCH" if e_crk > 1e-4 else ""))
                row.update(crk_s=t_crk, crk_gflops=flops / t_crk / 1e9, crk_err=e_crk,
                           ratio=t_crk / t_ort)
            print(line, flush=True)
            rows.append(row)
    if crk:
        print("\ncrk/ORT = crkernels time / onnxruntime time (below 1: crkernels faster)")
    return rows


if __name__ == "__main__":
    main()
