#!/usr/bin/env python3
"""Independent float64 NumPy reference for the convolution / pooling / network kernels.

Written from the definitions (seed 002: CNNs for air-shower detector data; PyTorch / ONNX / Keras
conventions for the layouts), not from any Rust code. Everything is computed in float64 from the
float32 (or F16 / BF16) values that are stored in the test files.

Definitions used (NCHW, batch first, channels first):

  conv (any number of spatial axes d = 1, 2), weight [c_out, c_in/groups, k_1, .., k_d]:
      xp = x zero-padded by [before_i, after_i] on spatial axis i
      o_i = floor((in_i + before_i + after_i - dilation_i*(k_i - 1) - 1) / stride_i) + 1  (>= 1)
      y[n, co, p] = bias[co] + sum_{ci < c_in/groups} sum_{q} xp[n, g*c_in/groups + ci,
                          p_i*stride_i + q_i*dilation_i] * w[co, ci, q],   g = co // (c_out/groups)
  max pooling: max over the window of the real (unpadded) cells; padded cells are ignored
      (every window must hold at least one real cell);
  average pooling: sum of the real cells divided by prod(kernel) (count_include_pad = true:
      padded cells count as zeros) or by the number of real cells (count_include_pad = false);
  global average pooling: mean over all spatial axes -> [N, C];
  dense (pytorch layout): y = x W^T + b with W [out, in];
  relu, leaky_relu(alpha): x >= 0 ? x : alpha x, elu(alpha): x > 0 ? x : alpha (e^x - 1),
  sigmoid, tanh, softmax over the last axis (max subtracted first);
  batchnorm (inference): gamma (x - mean) / sqrt(var + eps) + beta, per channel (axis 1);
  flatten: channels-first (C, H, W) order, or channels-last (H, W, C) for the keras layout;
  concat: flat inputs joined in order along the feature axis.
  Keras padding rule: 'valid' = 0; 'same': total = max((ceil(in/stride) - 1)*stride
      + (k - 1)*dilation + 1 - in, 0), before = total // 2, after = total - before;
      'causal' (1D): before = dilation*(k - 1), after = 0.

Running this script regenerates tests/data/conv/ deterministically (fixed seeds):

    python3 -m venv .venv-conv && .venv-conv/bin/pip install -r tests/reference/requirements-conv.txt
    .venv-conv/bin/python tests/reference/conv_reference.py            # write the files
    .venv-conv/bin/python tests/reference/conv_reference.py --check    # re-read and verify them

The network files also carry `output_onnx`, onnxruntime (CPU, 1 thread) running the same network
as an ONNX graph built here with the onnx helper API: an anchor from an unrelated implementation.
Every kernel case is also checked against a one-node ONNX graph and every conv case against a
scalar-loop implementation when the script runs (nothing of those checks is stored).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import math
import os
import struct
import sys

import ml_dtypes
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "data", "conv"))
FORMAT = "crkernels.network.v1"

# ---------------------------------------------------------------------------------------------
# safetensors (own deterministic writer and reader: sorted keys, F16 / BF16, no torch)
# ---------------------------------------------------------------------------------------------
_DT = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16,
       "I64": np.int64, "I32": np.int32, "U8": np.uint8, "I8": np.int8}
_DT_NAME = {np.dtype(v): k for k, v in _DT.items()}


def save_safetensors(path, tensors, meta=None):
    """8-byte little-endian header length, JSON header (sorted keys, "__metadata__" first, all
    metadata values strings), then the tensors' little-endian bytes in name order."""
    header, blobs, off = {}, [], 0
    if meta:
        header["__metadata__"] = {k: str(meta[k]) for k in sorted(meta)}
    for k in sorted(tensors):
        a = np.ascontiguousarray(tensors[k])
        b = a.tobytes()
        header[k] = {"dtype": _DT_NAME[a.dtype], "shape": list(a.shape),
                     "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + n
    out = {}
    for k, v in header.items():
        b, e = v["data_offsets"]
        out[k] = np.frombuffer(raw[base + b:base + e], dtype=_DT[v["dtype"]]).reshape(v["shape"])
    return out, meta


def f64(a):
    return np.asarray(a).astype(np.float64)


# ---------------------------------------------------------------------------------------------
# padding rules
# ---------------------------------------------------------------------------------------------
def keras_same(n_in, k, stride, dilation):
    total = max((math.ceil(n_in / stride) - 1) * stride + (k - 1) * dilation + 1 - n_in, 0)
    return [total // 2, total - total // 2]


def resolve_padding(spec, sizes, kernel, stride, dilation):
    """spec: 'same' | 'valid' | 'causal' | [b, a] (1D) | [[b, a], ...] -> [[b, a] per axis]."""
    d = len(sizes)
    if isinstance(spec, str):
        if spec == "valid":
            return [[0, 0] for _ in range(d)]
        if spec == "same":
            return [keras_same(sizes[i], kernel[i], stride[i], dilation[i]) for i in range(d)]
        if spec == "causal":
            if d != 1:
                raise ValueError("causal padding is 1D only")
            return [[dilation[0] * (kernel[0] - 1), 0]]
        raise ValueError(f"unknown padding {spec!r}")
    if d == 1 and len(spec) == 2 and all(isinstance(v, int) for v in spec):
        return [list(spec)]
    return [list(p) for p in spec]


def out_size(n_in, pad, k, stride, dilation):
    o = (n_in + pad[0] + pad[1] - dilation * (k - 1) - 1) // stride + 1
    if o < 1:
        raise ValueError("window larger than the padded input")
    return o


# ---------------------------------------------------------------------------------------------
# kernels (float64, any number of spatial axes)
# ---------------------------------------------------------------------------------------------
def conv(x, w, b=None, stride=None, padding=None, dilation=None, groups=1):
    """x [N, C_in, *S], w [C_out, C_in/groups, *K], padding [[before, after]] per spatial axis."""
    x, w = f64(x), f64(w)
    d = x.ndim - 2
    stride = list(stride or [1] * d)
    dilation = list(dilation or [1] * d)
    padding = [list(p) for p in (padding or [[0, 0]] * d)]
    N, C = x.shape[:2]
    Co, Cig = w.shape[:2]
    K = w.shape[2:]
    if C % groups or Co % groups or Cig != C // groups:
        raise ValueError("channels do not match groups")
    cog = Co // groups
    xp = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in padding])
    O = [out_size(x.shape[2 + i], padding[i], K[i], stride[i], dilation[i]) for i in range(d)]
    y = np.zeros((N, Co, *O))
    for g in range(groups):
        xg = xp[:, g * Cig:(g + 1) * Cig]
        wg = w[g * cog:(g + 1) * cog]
        for q in itertools.product(*[range(k) for k in K]):
            sl = tuple(slice(q[i] * dilation[i], q[i] * dilation[i] + (O[i] - 1) * stride[i] + 1,
                             stride[i]) for i in range(d))
            patch = xg[(slice(None), slice(None)) + sl]               # [N, Cig, *O]
            y[:, g * cog:(g + 1) * cog] += np.einsum("nc...,oc->no...", patch,
                                                     wg[(slice(None), slice(None)) + q])
    if b is not None:
        y += f64(b).reshape((1, Co) + (1,) * d)
    return y


def conv_naive(x, w, b, stride, padding, dilation, groups):
    """Scalar loops straight from the definition (slow; used to check `conv` on the cases)."""
    x, w = f64(x), f64(w)
    d = x.ndim - 2
    N, C = x.shape[:2]
    Co, Cig = w.shape[:2]
    K = w.shape[2:]
    S = x.shape[2:]
    O = [out_size(S[i], padding[i], K[i], stride[i], dilation[i]) for i in range(d)]
    y = np.zeros((N, Co, *O))
    cog = Co // groups
    for co in range(Co):
        g = co // cog
        for p in itertools.product(*[range(o) for o in O]):
            acc = np.zeros(N) if b is None else np.full(N, float(b[co]))
            for ci in range(Cig):
                for q in itertools.product(*[range(k) for k in K]):
                    pos = [p[i] * stride[i] + q[i] * dilation[i] - padding[i][0] for i in range(d)]
                    if all(0 <= pos[i] < S[i] for i in range(d)):
                        acc += x[(slice(None), g * Cig + ci) + tuple(pos)] * w[(co, ci) + q]
            y[(slice(None), co) + p] = acc
    return y


def pool(x, kind, kernel, stride=None, padding=None, count_include_pad=False):
    """kind 'max' | 'avg'; x [N, C, *S]."""
    x = f64(x)
    d = x.ndim - 2
    stride = list(stride or kernel)
    padding = [list(p) for p in (padding or [[0, 0]] * d)]
    pw = [(0, 0), (0, 0)] + [tuple(p) for p in padding]
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, pw, constant_values=fill)
    real = np.pad(np.ones(x.shape[2:]), pw[2:])                       # 1 on real cells
    O = [out_size(x.shape[2 + i], padding[i], kernel[i], stride[i], 1) for i in range(d)]
    acc = np.full(x.shape[:2] + tuple(O), fill)
    cnt = np.zeros(O)
    for q in itertools.product(*[range(k) for k in kernel]):
        sl = tuple(slice(q[i], q[i] + (O[i] - 1) * stride[i] + 1, stride[i]) for i in range(d))
        patch = xp[(slice(None), slice(None)) + sl]
        acc = np.maximum(acc, patch) if kind == "max" else acc + patch
        cnt += real[sl]
    if np.any(cnt == 0):
        raise ValueError("a pooling window lies entirely in the padding")
    if kind == "max":
        return acc
    return acc / (float(np.prod(kernel)) if count_include_pad else cnt)


def global_avgpool(x):
    x = f64(x)
    return x.reshape(x.shape[0], x.shape[1], -1).mean(axis=2)


def dense(x, w, b=None):
    """pytorch layout: w [out, in]."""
    y = f64(x) @ f64(w).T
    return y if b is None else y + f64(b)


def relu(x):
    return np.where(x > 0, x, 0.0)


def leaky_relu(x, alpha=0.01):
    return np.where(x >= 0, x, alpha * x)


def elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))            # = 1 / (1 + e^-x), no overflow


def softmax(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def batchnorm(x, gamma, beta, mean, var, eps=1e-5):
    sh = (1, -1) + (1,) * (x.ndim - 2)
    return (f64(gamma).reshape(sh) * (f64(x) - f64(mean).reshape(sh))
            / np.sqrt(f64(var).reshape(sh) + eps) + f64(beta).reshape(sh))


def flatten(x, channels_last=False):
    if channels_last and x.ndim > 2:
        x = np.moveaxis(x, 1, -1)
    return x.reshape(x.shape[0], -1)


def concat(xs):
    return np.concatenate([flatten(x) for x in xs], axis=1)


# ---------------------------------------------------------------------------------------------
# network format crkernels.network.v1: interpreter (from the file) with shape inference
# ---------------------------------------------------------------------------------------------
def _as_list(v, d):
    return list(v) if isinstance(v, (list, tuple)) else [v] * d


class Network:
    """Parsed crkernels.network.v1 file; weights kept in canonical pytorch layout, float64."""

    def __init__(self, tensors, meta):
        if meta.get("format") != FORMAT:
            raise ValueError(f"format is {meta.get('format')!r}, not {FORMAT}")
        self.layout = meta.get("layout", "pytorch")
        if self.layout not in ("pytorch", "keras"):
            raise ValueError(f"unknown layout {self.layout!r}")
        spec = json.loads(meta["network"])
        self.inputs = [(i["name"], list(i["shape"])) for i in spec["inputs"]]
        self.layers = copy.deepcopy(spec["layers"])
        self.tensors = tensors
        self.params = []            # per layer: dict of float64 arrays (canonical layout)
        self.shapes = []            # per layer: per-sample output shape
        shapes = {name: s for name, s in self.inputs}
        for i, L in enumerate(self.layers):
            src = self._sources(i, L)
            ins = [shapes[s] if isinstance(s, str) else self.shapes[s] for s in src]
            p, shape = self._prepare(i, L, ins)
            self.params.append(p)
            self.shapes.append(shape)
        if len(self.shapes[-1]) != 1:
            raise ValueError("the last layer's output is not flat")

    def _sources(self, i, L):
        if L["type"] == "concat":
            src = L["inputs"]
        elif "input" in L:
            src = [L["input"]]
        else:
            src = [i - 1 if i > 0 else self.inputs[0][0]]
        for s in src:
            if isinstance(s, int) and not 0 <= s < i:
                raise ValueError(f"layer {i}: input {s} is not an earlier layer")
            if isinstance(s, str) and s not in dict(self.inputs):
                raise ValueError(f"layer {i}: unknown input {s!r}")
        return src

    def _t(self, i, name, shape):
        key = f"layers.{i}.{name}"
        if key not in self.tensors:
            raise ValueError(f"missing tensor {key}")
        a = self.tensors[key]
        if list(a.shape) != list(shape):
            raise ValueError(f"{key} has shape {list(a.shape)}, expected {list(shape)}")
        return f64(a)

    def _prepare(self, i, L, ins):
        t = L["type"]
        keras = self.layout == "keras"
        s = ins[0]
        if t in ("conv1d", "conv2d"):
            d = 1 if t == "conv1d" else 2
            if len(s) != d + 1:
                raise ValueError(f"layer {i}: {t} needs a [C, ...] input with {d} spatial axes")
            C, S = s[0], s[1:]
            Co, g = L["out_channels"], L.get("groups", 1)
            K = _as_list(L["kernel"], d)
            st = _as_list(L.get("stride", 1), d)
            dil = _as_list(L.get("dilation", 1), d)
            if C % g or Co % g:
                raise ValueError(f"layer {i}: channels not divisible by groups")
            if keras:
                w = self._t(i, "weight", K + [C // g, Co])
                w = np.transpose(w, (d + 1, d) + tuple(range(d)))       # -> [Co, Cig, *K]
            else:
                w = self._t(i, "weight", [Co, C // g] + K)
            b = self._t(i, "bias", [Co]) if L.get("bias", True) else None
            pad = resolve_padding(L.get("padding", "valid"), S, K, st, dil)
            O = [out_size(S[j], pad[j], K[j], st[j], dil[j]) for j in range(d)]
            return dict(w=w, b=b, stride=st, padding=pad, dilation=dil, groups=g), [Co] + O
        if t == "dense":
            if len(s) != 1:
                raise ValueError(f"layer {i}: dense needs a flat input")
            n_in, n_out = s[0], L["out_features"]
            w = self._t(i, "weight", [n_in, n_out]).T if keras else self._t(i, "weight", [n_out, n_in])
            b = self._t(i, "bias", [n_out]) if L.get("bias", True) else None
            return dict(w=w, b=b), [n_out]
        if t == "batchnorm":
            C = s[0]
            return dict(gamma=self._t(i, "weight", [C]), beta=self._t(i, "bias", [C]),
                        mean=self._t(i, "running_mean", [C]), var=self._t(i, "running_var", [C]),
                        eps=float(L.get("eps", 1e-5))), list(s)
        if t in ("relu", "leaky_relu", "elu", "sigmoid", "tanh"):
            return {}, list(s)
        if t == "softmax":
            if len(s) != 1:
                raise ValueError(f"layer {i}: softmax needs a flat input")
            return {}, list(s)
        if t in ("maxpool1d", "avgpool1d", "maxpool2d", "avgpool2d"):
            d = int(t[-2])
            if len(s) != d + 1:
                raise ValueError(f"layer {i}: {t} needs {d} spatial axes")
            K = _as_list(L["kernel"], d)
            st = _as_list(L.get("stride", K), d)
            pad = resolve_padding(L.get("padding", "valid"), s[1:], K, st, [1] * d)
            O = [out_size(s[1 + j], pad[j], K[j], st[j], 1) for j in range(d)]
            return dict(kernel=K, stride=st, padding=pad,
                        count_include_pad=bool(L.get("count_include_pad", False))), [s[0]] + O
        if t == "global_avgpool":
            return {}, [s[0]]
        if t == "flatten":
            return {}, [int(np.prod(s))]
        if t == "concat":
            if any(len(v) != 1 for v in ins):
                raise ValueError(f"layer {i}: concat needs flat inputs")
            return {}, [sum(v[0] for v in ins)]
        raise ValueError(f"layer {i}: unknown type {t!r}")

    def run(self, inputs):
        """inputs: dict name -> [batch, *shape] arrays; returns the float64 output [batch, n]."""
        vals = {name: f64(inputs[name]) for name, _ in self.inputs}
        outs = []
        for i, (L, p) in enumerate(zip(self.layers, self.params)):
            src = self._sources(i, L)
            xs = [vals[s] if isinstance(s, str) else outs[s] for s in src]
            x, t = xs[0], L["type"]
            if t in ("conv1d", "conv2d"):
                y = conv(x, p["w"], p["b"], p["stride"], p["padding"], p["dilation"], p["groups"])
            elif t == "dense":
                y = dense(x, p["w"], p["b"])
            elif t == "batchnorm":
                y = batchnorm(x, p["gamma"], p["beta"], p["mean"], p["var"], p["eps"])
            elif t == "relu":
                y = relu(x)
            elif t == "leaky_relu":
                y = leaky_relu(x, float(L.get("alpha", 0.01)))
            elif t == "elu":
                y = elu(x, float(L.get("alpha", 1.0)))
            elif t == "sigmoid":
                y = sigmoid(x)
            elif t == "tanh":
                y = np.tanh(x)
            elif t == "softmax":
                y = softmax(x)
            elif t.startswith("maxpool") or t.startswith("avgpool"):
                y = pool(x, t[:3], p["kernel"], p["stride"], p["padding"], p["count_include_pad"])
            elif t == "global_avgpool":
                y = global_avgpool(x)
            elif t == "flatten":
                y = flatten(x, channels_last=self.layout == "keras")
            elif t == "concat":
                y = concat(xs)
            outs.append(y)
        return outs[-1]


def load_network(path):
    return Network(*read_safetensors(path))


def network_flops(net, batch=1):
    """2 * multiply-adds of the conv and dense layers for `batch` samples."""
    macs = 0
    for L, p, shape in zip(net.layers, net.params, net.shapes):
        if L["type"] in ("conv1d", "conv2d"):
            w = p["w"]
            macs += int(np.prod(shape)) * int(np.prod(w.shape[1:]))
        elif L["type"] == "dense":
            macs += int(np.prod(p["w"].shape))
    return 2 * macs * batch


# ---------------------------------------------------------------------------------------------
# ONNX anchor (onnx helper API; run with onnxruntime)
# ---------------------------------------------------------------------------------------------
def _onnx():
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    return onnx, TensorProto, helper, numpy_helper


def _pads(padding):
    return [p[0] for p in padding] + [p[1] for p in padding]


def onnx_network(net, opset=17):
    """The network as a float32 ONNX graph (inputs [batch, *shape], output 'output')."""
    onnx, TensorProto, helper, numpy_helper = _onnx()
    N = helper.make_node
    nodes, inits = [], []

    def const(name, a):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(a, dtype=np.float32), name))
        return name

    names = []
    for i, (L, p) in enumerate(zip(net.layers, net.params)):
        src = net._sources(i, L)
        xs = [s if isinstance(s, str) else names[s] for s in src]
        x, t, y = xs[0], L["type"], f"l{i}"
        if t in ("conv1d", "conv2d"):
            ins = [x, const(f"w{i}", p["w"])] + ([const(f"b{i}", p["b"])] if p["b"] is not None else [])
            nodes.append(N("Conv", ins, [y], kernel_shape=list(p["w"].shape[2:]),
                           strides=p["stride"], dilations=p["dilation"], group=p["groups"],
                           pads=_pads(p["padding"])))
        elif t == "dense":
            if p["b"] is not None:
                nodes.append(N("Gemm", [x, const(f"w{i}", p["w"]), const(f"b{i}", p["b"])], [y],
                               transB=1))
            else:
                nodes.append(N("MatMul", [x, const(f"w{i}", p["w"].T)], [y]))
        elif t == "batchnorm":
            nodes.append(N("BatchNormalization",
                           [x, const(f"g{i}", p["gamma"]), const(f"b{i}", p["beta"]),
                            const(f"m{i}", p["mean"]), const(f"v{i}", p["var"])], [y],
                           epsilon=p["eps"]))
        elif t == "relu":
            nodes.append(N("Relu", [x], [y]))
        elif t == "leaky_relu":
            nodes.append(N("LeakyRelu", [x], [y], alpha=float(L.get("alpha", 0.01))))
        elif t == "elu":
            nodes.append(N("Elu", [x], [y], alpha=float(L.get("alpha", 1.0))))
        elif t == "sigmoid":
            nodes.append(N("Sigmoid", [x], [y]))
        elif t == "tanh":
            nodes.append(N("Tanh", [x], [y]))
        elif t == "softmax":
            nodes.append(N("Softmax", [x], [y], axis=-1))
        elif t.startswith("maxpool"):
            nodes.append(N("MaxPool", [x], [y], kernel_shape=p["kernel"], strides=p["stride"],
                           pads=_pads(p["padding"])))
        elif t.startswith("avgpool"):
            nodes.append(N("AveragePool", [x], [y], kernel_shape=p["kernel"], strides=p["stride"],
                           pads=_pads(p["padding"]), count_include_pad=int(p["count_include_pad"])))
        elif t == "global_avgpool":
            nodes.append(N("GlobalAveragePool", [x], [y + "g"]))
            nodes.append(N("Flatten", [y + "g"], [y], axis=1))
        elif t == "flatten":
            rank = len(net.shapes[src[0]] if isinstance(src[0], int) else dict(net.inputs)[src[0]]) + 1
            if net.layout == "keras" and rank > 2:
                nodes.append(N("Transpose", [x], [y + "t"], perm=[0] + list(range(2, rank)) + [1]))
                x = y + "t"
            nodes.append(N("Flatten", [x], [y], axis=1))
        elif t == "concat":
            nodes.append(N("Concat", xs, [y], axis=1))
        names.append(y)
    nodes.append(N("Identity", [names[-1]], ["output"]))
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch"] + s) for n, s in net.inputs]
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", net.shapes[-1][0]])]
    graph = helper.make_graph(nodes, "crkernels_network", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="crkernels-conv-reference")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def ort_session(model, threads=1):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def onnx_kernel(op, x_shape, y_shape, w=None, b=None, params=None, opset=17):
    """One-node ONNX graph for a kernel case (input 'input', output 'output')."""
    onnx, TensorProto, helper, numpy_helper = _onnx()
    N = helper.make_node
    inits = []
    P = params or {}
    if op in ("conv1d", "conv2d"):
        inits.append(numpy_helper.from_array(np.asarray(w, np.float32), "W"))
        ins = ["input", "W"]
        if b is not None:
            inits.append(numpy_helper.from_array(np.asarray(b, np.float32), "B"))
            ins.append("B")
        nodes = [N("Conv", ins, ["output"], kernel_shape=list(w.shape[2:]), strides=P["stride"],
                   dilations=P["dilation"], group=P["groups"], pads=_pads(P["padding"]))]
    elif op.startswith("maxpool"):
        nodes = [N("MaxPool", ["input"], ["output"], kernel_shape=P["kernel"], strides=P["stride"],
                   pads=_pads(P["padding"]))]
    elif op.startswith("avgpool"):
        nodes = [N("AveragePool", ["input"], ["output"], kernel_shape=P["kernel"],
                   strides=P["stride"], pads=_pads(P["padding"]),
                   count_include_pad=int(P["count_include_pad"]))]
    elif op == "global_avgpool":
        nodes = [N("GlobalAveragePool", ["input"], ["g"]), N("Flatten", ["g"], ["output"], axis=1)]
    else:
        raise ValueError(op)
    graph = helper.make_graph(
        nodes, op, [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, list(y_shape))], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# ---------------------------------------------------------------------------------------------
# kernel cases
# ---------------------------------------------------------------------------------------------
WRITTEN = []


def write(name, tensors, meta):
    save_safetensors(os.path.join(OUT, name), tensors, meta)
    WRITTEN.append(name)


def conv_case(name, seed, desc, *, n, c_in, size, c_out, kernel, stride=None, padding=None,
              dilation=None, groups=1, bias=True, wdtype=np.float32):
    rng = np.random.default_rng(seed)
    d = len(size)
    stride = stride or [1] * d
    dilation = dilation or [1] * d
    padding = padding or [[0, 0]] * d
    x = rng.standard_normal((n, c_in) + tuple(size)).astype(np.float32)
    fan_in = c_in // groups * int(np.prod(kernel))
    w = (rng.standard_normal((c_out, c_in // groups) + tuple(kernel)) / np.sqrt(fan_in))
    w = w.astype(np.float32).astype(wdtype)
    b = rng.uniform(-0.5, 0.5, c_out).astype(np.float32) if bias else None
    y = conv(x, w, b, stride, padding, dilation, groups)
    params = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    op = f"conv{d}d"
    # checks: scalar loops (on a few output channels / samples) and a one-node ONNX graph
    nn = min(n, 2)
    ref = conv_naive(x[:nn], w, b, stride, padding, dilation, groups)
    assert np.allclose(ref, y[:nn], rtol=1e-12, atol=1e-12), name
    _check_ort(name, op, x, f64(w), b, params, y)
    t = {"input": x, "weight": w, "expected": y}
    if b is not None:
        t["bias"] = b
    write(f"{name}.safetensors", t, {"op": op, "params": json.dumps(params, sort_keys=True),
                                    "description": desc})
    return y


def pool_case(name, seed, desc, *, op, n, c, size, kernel=None, stride=None, padding=None,
              count_include_pad=None, shift=0.0):
    rng = np.random.default_rng(seed)
    d = len(size)
    x = (rng.standard_normal((n, c) + tuple(size)) + shift).astype(np.float32)
    if op == "global_avgpool":
        params = {}
        y = global_avgpool(x)
    else:
        padding = padding or [[0, 0]] * d
        stride = stride or list(kernel)
        params = dict(kernel=kernel, stride=stride, padding=padding)
        if op.startswith("avgpool"):
            params["count_include_pad"] = bool(count_include_pad)
        y = pool(x, op[:3], kernel, stride, padding, bool(count_include_pad))
    _check_ort(name, op, x, None, None, params, y)
    write(f"{name}.safetensors", {"input": x, "expected": y},
          {"op": op, "params": json.dumps(params, sort_keys=True), "description": desc})
    return y


def _check_ort(name, op, x, w, b, params, y):
    try:
        sess = ort_session(onnx_kernel(op, x.shape, y.shape, w, b, params))
    except ImportError:
        return
    yo = sess.run(None, {"input": x})[0]
    err = np.max(np.abs(yo - y)) / max(1.0, np.max(np.abs(y)))
    assert yo.shape == y.shape and err < 1e-5, (name, yo.shape, y.shape, err)
    CHECKS.append((name, float(err)))


CHECKS = []


def kernel_cases():
    C = conv_case
    # ---- conv2d
    C("conv2d_3x3_same", 201, "3x3, padding 1 on all sides, bias",
      n=2, c_in=4, size=[8, 8], c_out=8, kernel=[3, 3], padding=[[1, 1], [1, 1]])
    C("conv2d_seed_32to64", 202, "seed shape: 32 -> 64 channels, 8x8 grid, 3x3 same",
      n=3, c_in=32, size=[8, 8], c_out=64, kernel=[3, 3], padding=[[1, 1], [1, 1]])
    C("conv2d_stride2", 203, "stride 2 both axes, padding 1, odd sizes",
      n=3, c_in=3, size=[9, 7], c_out=5, kernel=[3, 3], stride=[2, 2], padding=[[1, 1], [1, 1]])
    C("conv2d_stride_1x3_asympad", 204, "stride [1, 3], kernel 2x4, asymmetric padding",
      n=2, c_in=3, size=[7, 10], c_out=4, kernel=[2, 4], stride=[1, 3], padding=[[0, 2], [1, 0]])
    C("conv2d_dilation_2x3", 205, "dilation [2, 3], asymmetric padding",
      n=2, c_in=2, size=[11, 12], c_out=3, kernel=[3, 3], dilation=[2, 3], padding=[[2, 2], [0, 3]])
    C("conv2d_groups3", 206, "groups 3 (6 -> 9 channels), kernel 3x2",
      n=2, c_in=6, size=[6, 7], c_out=9, kernel=[3, 2], groups=3, padding=[[1, 1], [0, 1]])
    C("conv2d_depthwise", 207, "depthwise: 8 -> 8 channels, groups 8, 3x3 same",
      n=4, c_in=8, size=[8, 8], c_out=8, kernel=[3, 3], groups=8, padding=[[1, 1], [1, 1]])
    C("conv2d_depthwise_mult2_s2_d2", 208, "depthwise multiplier 2 (4 -> 8, groups 4), stride 2, dilation 2",
      n=2, c_in=4, size=[9, 9], c_out=8, kernel=[3, 3], groups=4, stride=[2, 2], dilation=[2, 2],
      padding=[[2, 1], [1, 2]])
    C("conv2d_kernel_full", 209, "kernel 5x5 exactly as large as the padded 4x4 input: output 1x1",
      n=3, c_in=2, size=[4, 4], c_out=3, kernel=[5, 5], padding=[[1, 0], [0, 1]])
    C("conv2d_1x1_nobias", 210, "1x1 kernel, 16 -> 24 channels, no bias",
      n=2, c_in=16, size=[5, 6], c_out=24, kernel=[1, 1], bias=False)
    C("conv2d_cin1_batch64", 211, "c_in = 1, batch 64, 4x4 grid, 2x2 valid",
      n=64, c_in=1, size=[4, 4], c_out=4, kernel=[2, 2])
    C("conv2d_cin2_batch64_same", 212, "c_in = 2, batch 64, 8x8 grid, 3x3 same, bias",
      n=64, c_in=2, size=[8, 8], c_out=4, kernel=[3, 3], padding=[[1, 1], [1, 1]])
    C("conv2d_1xk_nobias", 213, "kernel 1x5 on a 1-row input, stride [1, 2], no bias",
      n=2, c_in=3, size=[1, 20], c_out=4, kernel=[1, 5], stride=[1, 2], padding=[[0, 0], [2, 2]],
      bias=False)
    C("conv2d_weight_f16", 214, "F16 weight (expected from the rounded F16 values)",
      n=2, c_in=4, size=[6, 6], c_out=6, kernel=[3, 3], padding=[[1, 1], [1, 1]], wdtype=np.float16)
    # ---- conv1d
    C("conv1d_seed_same", 101, "seed shape: 2 -> 32 channels, trace of 256 samples, width 5 same",
      n=2, c_in=2, size=[256], c_out=32, kernel=[5], padding=[[2, 2]])
    C("conv1d_causal_s2_d2", 102, "causal padding [4, 0] for k 3 dilation 2, stride 2",
      n=2, c_in=3, size=[128], c_out=4, kernel=[3], stride=[2], dilation=[2], padding=[[4, 0]])
    C("conv1d_depthwise", 103, "depthwise: 6 -> 6 channels, groups 6, width 7, padding 3",
      n=3, c_in=6, size=[40], c_out=6, kernel=[7], groups=6, padding=[[3, 3]])
    C("conv1d_groups2_s3_asympad", 104, "groups 2 (4 -> 6), stride 3, padding [0, 3]",
      n=2, c_in=4, size=[31], c_out=6, kernel=[4], groups=2, stride=[3], padding=[[0, 3]])
    C("conv1d_cin1_batch64", 105, "c_in = 1, batch 64, 128 samples, width 9 valid",
      n=64, c_in=1, size=[128], c_out=4, kernel=[9])
    C("conv1d_kernel_full", 106, "kernel 13 exactly as large as the padded input (10 + 1 + 2): output 1",
      n=2, c_in=2, size=[10], c_out=3, kernel=[13], padding=[[1, 2]])
    C("conv1d_1x1_32to64_nobias", 107, "1x1 kernel, 32 -> 64 channels, no bias",
      n=2, c_in=32, size=[24], c_out=64, kernel=[1], bias=False)
    C("conv1d_weight_bf16", 108, "BF16 weight (expected from the rounded BF16 values), dilation 3",
      n=2, c_in=2, size=[64], c_out=8, kernel=[5], dilation=[3], padding=[[6, 6]],
      wdtype=ml_dtypes.bfloat16)
    # ---- pooling
    P = pool_case
    P("maxpool2d_2x2", 301, "2x2 stride 2, no padding", op="maxpool2d",
      n=2, c=4, size=[8, 8], kernel=[2, 2])
    P("maxpool2d_3x3_pad_asym", 302, "3x3, stride [2, 1], padding [[1, 0], [1, 1]]; all inputs "
      "negative, so a padded cell counted as 0 would show", op="maxpool2d",
      n=2, c=3, size=[7, 6], kernel=[3, 3], stride=[2, 1], padding=[[1, 0], [1, 1]], shift=-5.0)
    P("maxpool1d_pad", 303, "kernel 3, stride 2, padding [1, 1]; all inputs negative",
      op="maxpool1d", n=2, c=3, size=[17], kernel=[3], stride=[2], padding=[[1, 1]], shift=-5.0)
    P("avgpool2d_pad_include", 304, "3x3 stride 2 padding 1, count_include_pad = true",
      op="avgpool2d", n=2, c=3, size=[7, 8], kernel=[3, 3], stride=[2, 2],
      padding=[[1, 1], [1, 1]], count_include_pad=True, shift=1.0)
    P("avgpool2d_pad_exclude", 305, "3x3 stride [2, 3], padding [[0, 1], [1, 0]], count_include_pad = false",
      op="avgpool2d", n=2, c=3, size=[7, 8], kernel=[3, 3], stride=[2, 3],
      padding=[[0, 1], [1, 0]], count_include_pad=False, shift=1.0)
    P("avgpool1d_pad_include", 306, "kernel 4 stride 3 padding [2, 1], count_include_pad = true",
      op="avgpool1d", n=2, c=2, size=[20], kernel=[4], stride=[3], padding=[[2, 1]],
      count_include_pad=True, shift=1.0)
    P("avgpool1d_pad_exclude", 307, "kernel 4 stride 3 padding [2, 1], count_include_pad = false",
      op="avgpool1d", n=2, c=2, size=[20], kernel=[4], stride=[3], padding=[[2, 1]],
      count_include_pad=False, shift=1.0)
    P("global_avgpool2d", 308, "global average pooling over an 8x8 grid -> [N, C]",
      op="global_avgpool", n=3, c=5, size=[8, 8])
    P("global_avgpool1d", 309, "global average pooling over a 64-sample trace -> [N, C]",
      op="global_avgpool", n=3, c=4, size=[64])


# ---------------------------------------------------------------------------------------------
# network cases
# ---------------------------------------------------------------------------------------------
BATCH = 16


def _init_params(rng, spec, wdtype=np.float32):
    """Random weights (pytorch layout, float32 then `wdtype`) for a network spec, found by
    running the shape inference on placeholder tensors."""
    shapes = {n["name"]: n["shape"] for n in spec["inputs"]}
    tensors = {}
    layer_shapes = []
    for i, L in enumerate(spec["layers"]):
        t = L["type"]
        if t == "concat":
            ins = [shapes[s] if isinstance(s, str) else layer_shapes[s] for s in L["inputs"]]
        else:
            s = L.get("input", i - 1 if i > 0 else spec["inputs"][0]["name"])
            ins = [shapes[s] if isinstance(s, str) else layer_shapes[s]]
        s = ins[0]
        if t in ("conv1d", "conv2d"):
            d = 1 if t == "conv1d" else 2
            K = _as_list(L["kernel"], d)
            g, Co = L.get("groups", 1), L["out_channels"]
            fan = s[0] // g * int(np.prod(K))
            tensors[f"layers.{i}.weight"] = rng.standard_normal([Co, s[0] // g] + K) * np.sqrt(2.0 / fan)
            if L.get("bias", True):
                tensors[f"layers.{i}.bias"] = rng.uniform(-0.2, 0.2, Co)
        elif t == "dense":
            Co = L["out_features"]
            tensors[f"layers.{i}.weight"] = rng.standard_normal([Co, s[0]]) * np.sqrt(1.0 / s[0])
            if L.get("bias", True):
                tensors[f"layers.{i}.bias"] = rng.uniform(-0.2, 0.2, Co)
        elif t == "batchnorm":
            C = s[0]
            tensors[f"layers.{i}.weight"] = rng.uniform(0.5, 1.5, C)
            tensors[f"layers.{i}.bias"] = rng.normal(0.0, 0.2, C)
            tensors[f"layers.{i}.running_mean"] = rng.normal(0.0, 0.3, C)
            tensors[f"layers.{i}.running_var"] = rng.uniform(0.3, 2.0, C)
        layer_shapes = _shapes_so_far(spec, i, tensors)
    return {k: np.asarray(v, np.float32).astype(wdtype) for k, v in tensors.items()}


def _shapes_so_far(spec, i, tensors):
    sub = dict(spec, layers=spec["layers"][:i + 1])
    n = Network.__new__(Network)
    # shape inference of the first i+1 layers (the last one may be non-flat here)
    n.layout = "pytorch"
    n.inputs = [(x["name"], list(x["shape"])) for x in sub["inputs"]]
    n.layers = sub["layers"]
    n.tensors = tensors
    n.shapes, n.params = [], []
    shapes = dict(n.inputs)
    for j, L in enumerate(n.layers):
        src = n._sources(j, L)
        ins = [shapes[s] if isinstance(s, str) else n.shapes[s] for s in src]
        p, sh = n._prepare(j, L, ins)
        n.params.append(p)
        n.shapes.append(sh)
    return n.shapes


def to_keras(spec, tensors):
    """pytorch-layout tensors -> keras layout (HWIO kernels, [in, out] dense) of the same
    network; the dense layer fed by a flatten gets its input rows permuted from (C, H, W) to
    (H, W, C) order so that the keras network computes the same function."""
    shapes = _shapes_so_far(spec, len(spec["layers"]) - 1, tensors)
    # which dense weights see a flattened conv output, and at which offset of their input
    out = {}
    for i, L in enumerate(spec["layers"]):
        w = tensors.get(f"layers.{i}.weight")
        if L["type"] == "conv2d":
            out[f"layers.{i}.weight"] = np.ascontiguousarray(np.transpose(w, (2, 3, 1, 0)))
        elif L["type"] == "conv1d":
            out[f"layers.{i}.weight"] = np.ascontiguousarray(np.transpose(w, (2, 1, 0)))
        elif L["type"] == "dense":
            # permutation of the input features: keras index -> pytorch index
            src = L.get("input", i - 1)
            perm = _keras_perm(spec, shapes, src)
            out[f"layers.{i}.weight"] = np.ascontiguousarray(w[:, perm].T)
    for k, v in tensors.items():
        out.setdefault(k, v)
    return out


def _keras_perm(spec, shapes, src):
    """For the flat output of `src` (layer index or input name): array p with
    keras-order feature j = pytorch-order feature p[j]."""
    inputs = {x["name"]: x["shape"] for x in spec["inputs"]}
    if isinstance(src, str):
        return np.arange(int(np.prod(inputs[src])))
    L = spec["layers"][src]
    if L["type"] == "flatten":
        s = L.get("input", src - 1)
        shp = inputs[s] if isinstance(s, str) else shapes[s]
        idx = np.arange(int(np.prod(shp))).reshape(shp)
        return np.moveaxis(idx, 0, -1).reshape(-1)            # (C, H, W) -> (H, W, C)
    if L["type"] == "concat":
        parts, off = [], 0
        for s in L["inputs"]:
            p = _keras_perm(spec, shapes, s)
            parts.append(p + off)
            off += len(p)
        return np.concatenate(parts)
    return np.arange(int(np.prod(shapes[src])))


SD_TWO_BRANCH = {
    "inputs": [{"name": "traces", "shape": [2, 256]}, {"name": "grid", "shape": [4, 8, 8]},
               {"name": "features", "shape": [3]}],
    "layers": [
        {"type": "conv1d", "input": "traces", "out_channels": 32, "kernel": 5, "stride": 1,
         "padding": "same", "dilation": 1, "groups": 1, "bias": True},                      # 0
        {"type": "relu"},                                                                    # 1
        {"type": "maxpool1d", "kernel": 2, "stride": 2, "padding": [0, 0]},                  # 2
        {"type": "conv1d", "out_channels": 32, "kernel": 5, "stride": 1, "padding": "valid",
         "dilation": 1, "groups": 1, "bias": True},                                          # 3
        {"type": "batchnorm", "eps": 1e-5},                                                  # 4
        {"type": "relu"},                                                                    # 5
        {"type": "global_avgpool"},                                                          # 6
        {"type": "conv2d", "input": "grid", "out_channels": 32, "kernel": [3, 3],
         "stride": [1, 1], "padding": "same", "dilation": [1, 1], "groups": 1, "bias": True},  # 7
        {"type": "relu"},                                                                    # 8
        {"type": "conv2d", "out_channels": 64, "kernel": [3, 3], "stride": [1, 1],
         "padding": "same", "dilation": [1, 1], "groups": 1, "bias": True},                  # 9
        {"type": "batchnorm", "eps": 1e-3},                                                  # 10
        {"type": "elu", "alpha": 1.0},                                                       # 11
        {"type": "maxpool2d", "kernel": [2, 2], "stride": [2, 2], "padding": [[0, 0], [0, 0]]},  # 12
        {"type": "flatten"},                                                                 # 13
        {"type": "concat", "inputs": [6, 13, "features"]},                                   # 14
        {"type": "dense", "out_features": 64, "bias": True},                                 # 15
        {"type": "relu"},                                                                    # 16
        {"type": "dense", "out_features": 16, "bias": True},                                 # 17
        {"type": "tanh"},                                                                    # 18
        {"type": "dense", "out_features": 2, "bias": True},                                  # 19
    ],
}

SMALL_MIXED = {
    "inputs": [{"name": "grid", "shape": [3, 8, 8]}, {"name": "traces", "shape": [2, 64]}],
    "layers": [
        {"type": "conv2d", "out_channels": 6, "kernel": [3, 3], "stride": [2, 1],
         "padding": [[1, 0], [1, 1]], "dilation": [1, 2], "groups": 1, "bias": True},        # 0 -> [6, 4, 6]
        {"type": "leaky_relu", "alpha": 0.1},                                                # 1
        {"type": "conv2d", "out_channels": 6, "kernel": [3, 3], "stride": [1, 1],
         "padding": "same", "dilation": [1, 1], "groups": 6, "bias": False},                 # 2 depthwise
        {"type": "sigmoid"},                                                                 # 3
        {"type": "avgpool2d", "kernel": [2, 2], "stride": [2, 2], "padding": [[1, 1], [0, 0]],
         "count_include_pad": True},                                                         # 4 -> [6, 3, 3]
        {"type": "flatten"},                                                                 # 5 -> 54
        {"type": "conv1d", "input": "traces", "out_channels": 4, "kernel": 3, "stride": 1,
         "padding": "causal", "dilation": 2, "groups": 1, "bias": True},                     # 6 -> [4, 64]
        {"type": "leaky_relu", "alpha": 0.01},                                               # 7
        {"type": "conv1d", "out_channels": 8, "kernel": 5, "stride": 2, "padding": "same",
         "dilation": 1, "groups": 4, "bias": True},                                          # 8 -> [8, 32]
        {"type": "avgpool1d", "kernel": 3, "stride": 2, "padding": [1, 1],
         "count_include_pad": True},                                                         # 9 -> [8, 16]
        {"type": "flatten"},                                                                 # 10 -> 128
        {"type": "concat", "inputs": [5, 10]},                                               # 11 -> 182
        {"type": "dense", "out_features": 12, "bias": False},                                # 12
        {"type": "leaky_relu", "alpha": 0.2},                                                # 13
        {"type": "dense", "out_features": 5, "bias": True},                                  # 14
        {"type": "softmax"},                                                                 # 15
    ],
}

SMALL_F16 = {
    "inputs": [{"name": "traces", "shape": [2, 128]}, {"name": "grid", "shape": [2, 4, 4]},
               {"name": "features", "shape": [3]}],
    "layers": [
        {"type": "conv1d", "out_channels": 16, "kernel": 5, "stride": 1, "padding": "same",
         "dilation": 1, "groups": 1, "bias": True},                                          # 0
        {"type": "batchnorm", "eps": 1e-5},                                                  # 1
        {"type": "relu"},                                                                    # 2
        {"type": "maxpool1d", "kernel": 4, "stride": 4, "padding": [0, 0]},                  # 3 -> [16, 32]
        {"type": "conv1d", "out_channels": 16, "kernel": 3, "stride": 1, "padding": [1, 1],
         "dilation": 1, "groups": 16, "bias": True},                                         # 4 depthwise
        {"type": "elu", "alpha": 0.5},                                                       # 5
        {"type": "avgpool1d", "kernel": 3, "stride": 2, "padding": [1, 0],
         "count_include_pad": False},                                                        # 6 -> [16, 16]
        {"type": "global_avgpool"},                                                          # 7 -> 16
        {"type": "conv2d", "input": "grid", "out_channels": 8, "kernel": [2, 2],
         "stride": [1, 1], "padding": "valid", "dilation": [1, 1], "groups": 1, "bias": True},  # 8 -> [8, 3, 3]
        {"type": "tanh"},                                                                    # 9
        {"type": "flatten"},                                                                 # 10 -> 72
        {"type": "concat", "inputs": ["features", 7, 10]},                                   # 11 -> 91
        {"type": "dense", "out_features": 24, "bias": True},                                 # 12
        {"type": "sigmoid"},                                                                 # 13
        {"type": "dense", "out_features": 3, "bias": True},                                  # 14
    ],
}


def _inputs(rng, spec, batch=BATCH):
    return {x["name"]: rng.standard_normal([batch] + x["shape"]).astype(np.float32)
            for x in spec["inputs"]}


def net_case(name, spec, tensors, inputs, desc, layout="pytorch"):
    meta = {"format": FORMAT, "network": json.dumps(spec), "description": desc}
    if layout != "pytorch":
        meta["layout"] = layout
    write(f"net_{name}.safetensors", tensors, meta)
    net = load_network(os.path.join(OUT, f"net_{name}.safetensors"))   # from the file
    out = net.run(inputs)
    exp = {f"input.{k}": v for k, v in inputs.items()}
    exp["output"] = out
    try:
        sess = ort_session(onnx_network(net))
        yo = sess.run(["output"], inputs)[0]
        err = float(np.max(np.abs(yo - out)))
        assert err < 1e-4 * max(1.0, float(np.max(np.abs(out)))), (name, err)
        exp["output_onnx"] = yo.astype(np.float32)
        CHECKS.append((f"net_{name}", err))
    except ImportError:
        print("onnx / onnxruntime not installed: output_onnx left out", file=sys.stderr)
    write(f"net_{name}.expected.safetensors", exp, {"description": desc})
    return out


def network_cases():
    rng = np.random.default_rng(500)
    tens = _init_params(rng, SD_TWO_BRANCH)
    inp = _inputs(np.random.default_rng(501), SD_TWO_BRANCH)
    out_a = net_case("sd_two_branch", SD_TWO_BRANCH, tens, inp,
                     "seed 002 SD-reconstruction style network, pytorch layout")
    out_b = net_case("sd_two_branch_keras", SD_TWO_BRANCH, to_keras(SD_TWO_BRANCH, tens), inp,
                     "net_sd_two_branch in keras layout (HWIO / WIO kernels, [in, out] dense, "
                     "NHWC flatten; dense 15 rows permuted): same inputs, same output", "keras")
    assert np.allclose(out_a, out_b, rtol=1e-12, atol=1e-12)
    net_case("small_mixed", SMALL_MIXED, _init_params(np.random.default_rng(510), SMALL_MIXED),
             _inputs(np.random.default_rng(511), SMALL_MIXED),
             "strides, dilation, asymmetric padding, depthwise conv2d (groups = channels, no bias), "
             "grouped conv1d 'same' with stride 2, causal conv1d, leaky_relu, sigmoid, avgpool "
             "count_include_pad true, dense without bias, softmax")
    net_case("small_f16", SMALL_F16,
             _init_params(np.random.default_rng(520), SMALL_F16, wdtype=np.float16),
             _inputs(np.random.default_rng(521), SMALL_F16),
             "all weight tensors F16 (batchnorm parameters too); output from the F16 values")
    bad_networks(tens)


def bad_networks(tens):
    """Small invalid files: each must be rejected at load time with an error."""
    spec = {"inputs": [{"name": "traces", "shape": [2, 32]}, {"name": "features", "shape": [3]}],
            "layers": [
                {"type": "conv1d", "out_channels": 4, "kernel": 3, "padding": "same"},     # 0 -> [4, 32]
                {"type": "relu"},                                                         # 1
                {"type": "maxpool1d", "kernel": 2, "stride": 2, "padding": [0, 0]},       # 2 -> [4, 16]
                {"type": "flatten"},                                                      # 3 -> 64
                {"type": "concat", "inputs": [3, "features"]},                            # 4 -> 67
                {"type": "dense", "out_features": 2}]}                                    # 5
    rng = np.random.default_rng(530)
    t = _init_params(rng, spec)
    meta = {"format": FORMAT, "network": json.dumps(spec)}
    Network(t, meta)                                      # the good version loads
    m = dict(t)
    del m["layers.5.bias"]
    write("bad_net_missing_tensor.safetensors", m, dict(meta, description=
          "layers.5.bias is missing (dense with bias true)"))
    m = dict(t)
    m["layers.5.weight"] = t["layers.5.weight"][:, :66].copy()
    write("bad_net_shape_mismatch.safetensors", m, dict(meta, description=
          "layers.5.weight is [2, 66]; the dense input is 64 + 3 = 67 features"))
    write("bad_net_format.safetensors", t, dict(meta, format="crkernels.network.v2", description=
          "format metadata is crkernels.network.v2, not crkernels.network.v1"))
    for f in ("bad_net_missing_tensor", "bad_net_shape_mismatch", "bad_net_format"):
        try:
            load_network(os.path.join(OUT, f + ".safetensors"))
        except (ValueError, KeyError) as e:
            print(f"  {f}: rejected ({e})")
        else:
            raise AssertionError(f"{f} was accepted")


# ---------------------------------------------------------------------------------------------
def check_files():
    """Re-read every case and recompute it from the stored values."""
    n = 0
    for f in sorted(os.listdir(OUT)):
        if not f.endswith(".safetensors") or f.startswith("bad_") or f.endswith(".expected.safetensors"):
            continue
        path = os.path.join(OUT, f)
        if f.startswith("net_"):
            net = load_network(path)
            exp, _ = read_safetensors(path.replace(".safetensors", ".expected.safetensors"))
            ins = {k[6:]: v for k, v in exp.items() if k.startswith("input.")}
            y = net.run(ins)
            assert np.array_equal(y, exp["output"]) or np.allclose(y, exp["output"], rtol=1e-13, atol=1e-13), f
        else:
            t, meta = read_safetensors(path)
            P = json.loads(meta["params"])
            op = meta["op"]
            if op.startswith("conv"):
                y = conv(t["input"], t["weight"], t.get("bias"), P["stride"], P["padding"],
                         P["dilation"], P["groups"])
            elif op == "global_avgpool":
                y = global_avgpool(t["input"])
            else:
                y = pool(t["input"], op[:3], P["kernel"], P["stride"], P["padding"],
                         P.get("count_include_pad", False))
            assert np.allclose(y, t["expected"], rtol=1e-13, atol=1e-13), f
        n += 1
    print(f"checked {n} cases in {OUT}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="re-read and verify the files only")
    a = ap.parse_args()
    if a.check:
        check_files()
        return
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".safetensors"):
            os.remove(os.path.join(OUT, f))
    kernel_cases()
    network_cases()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in WRITTEN)
    for name, err in CHECKS:
        print(f"  {name:36s} max |onnxruntime - reference| = {err:.2e}")
    print(f"wrote {len(WRITTEN)} files ({total / 1e6:.2f} MB) to {OUT}")


if __name__ == "__main__":
    main()
