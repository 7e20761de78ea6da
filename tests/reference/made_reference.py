#!/usr/bin/env python3
"""Independent float64 NumPy reference for the MADE with Gaussian-mixture outputs (MADE-MoG).

Covers the two layouts the Rust loader reads (PHYSICS.md, "MADE with Gaussian-mixture outputs";
SECRET paper section 3.1):

(a) our plain layout `crkernels.made.v1` (spec in NOTES-python.md and below);
(b) the state_dict of nflows' `MixtureOfGaussiansMADE` (nflows/nn/nde/made.py), alone or inside
    `MADEMoG` (nflows/distributions/mixture.py, attribute `_made`), a `Flow` (attribute
    `_distribution`) and sbi's `NFlowsFlow` (attribute `net`; sbi's `MADEMoGWrapper` adds a dummy
    zero input in front of the data, see below);
(c) a slow reference sampler: one full forward pass per data dimension, dimensions drawn in
    increasing degree.

Running it regenerates tests/data/made/ deterministically (fixed NumPy seeds, no torch):

    python3 -m venv .venv-made
    .venv-made/bin/pip install -r tests/reference/requirements-made.txt
    .venv-made/bin/python tests/reference/made_reference.py [case names: only those files]

Plain layout `crkernels.made.v1` (safetensors, row-major, Linear weights [out, in]):
  metadata (strings): format = "crkernels.made.v1", n_context, n_dims, n_components,
                      activation in {sigmoid, tanh, relu, leaky_relu (slope 0.01), elu (alpha 1)}
  degrees.input [C + D] (int32 or int64): context first, then data in the user's order.
      Context degrees lie below every data degree (0 = plain conditioning, or 1..C as in SECRET);
      data degrees are the next D integers, permuted (the autoregressive order).
  hidden.{i}.weight [H_i, in_i], hidden.{i}.bias [H_i], hidden.{i}.degrees [H_i]
      hidden degrees in [lowest context degree (1 without context), highest data degree - 1]
  masks: into a hidden unit where deg(out) >= deg(in); last hidden -> head of data dim d where
      deg(d) > deg(hidden). Masks are derived, never stored.
  output.{logits,means,log_scales}.{weight,bias}: [D*K, H_last], [D*K]; row d*K + k.
      pi = softmax_k(logits), sigma = exp(log_scale)
  optional standardize.x_mean / x_std [D], standardize.context_mean / context_std [C]
  log p(x|c) = sum_d logsumexp_k(log pi_dk + log N(xs_d; mu_dk, sigma_dk)) - sum_d ln x_std[d],
      xs = (x - x_mean) / x_std, cs = (c - context_mean) / context_std.

nflows facts ported here (nflows/nn/nde/made.py, read at commits 208d75f and 4448f77, identical):
  * MaskedLinear registers buffers `mask` (float32) and `degrees` (int64) after `weight`, `bias`;
    forward = F.linear(x, weight * mask, bias): stored weights are NOT pre-masked.
  * input degrees 1..D (no permutation); hidden degrees (random_mask=False):
        arange(H) % max(1, D-1) + min(1, D-1);  hidden mask (out >= in)
  * output degrees tile(arange(1..D), 3K) = each degree repeated 3K times; mask (out > in);
    outputs.reshape(*inputs.shape, K, 3): row d*3K + 3k + j, j = 0 logit, 1 mean, 2 raw std.
  * MADE.forward: t = initial_layer(x); t += context_layer(c) (unmasked nn.Linear); blocks;
    final_layer(t).
  * MaskedResidualBlock.forward: u = t; [bn0]; act; linear_layers[0]; u += context_layer(c);
    [bn1]; act; dropout; linear_layers[1]; return t + u.   BatchNorm1d(eps=1e-3), eval mode uses
    running_mean / running_var: (u - rm) / sqrt(rv + 1e-3) * weight + bias.
  * activation default F.relu (a function: not in the state_dict).
  * log_prob: log_softmax(logits) over k; std = softplus(raw) + epsilon (epsilon = 1e-2, the
    MixtureOfGaussiansMADE default; MADEMoG does not pass epsilon); logsumexp_k(logpi - 0.5 *
    (log(2 pi) + 2 log std + ((x - mu)/std)^2)) summed over d. torch softplus: beta 1,
    threshold 20 (x > 20 -> x).
  * Known bug (nflows PR #85): hidden degrees are >= 1, so the output of data dim 1 (degree 1)
    sees no hidden unit and ignores the context. sbi's MADEMoGWrapper (sbi/utils/nn_utils.py)
    works around it with features + 1 and a zero dummy input in front; its _log_prob drops the
    first dimension's outputs. The `net._distribution._made.` case here follows that.

PyTorch users export with two lines (model = the MixtureOfGaussiansMADE, MADEMoG, Flow or sbi
estimator, in eval mode):
    from safetensors.torch import save_file
    save_file(model.state_dict(), "model.safetensors")
Nothing in the state_dict records the activation (F.relu unless changed) or epsilon (1e-2);
metadata that helps: save_file(model.state_dict(), "model.safetensors",
    metadata={"activation": "relu", "epsilon": "0.01", "sbi_dummy_input": "true"/"false"}).
"""

from __future__ import annotations

import json
import os
import struct
import sys

import ml_dtypes
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "data", "made"))
LOG_2PI = float(np.log(2.0 * np.pi))
FORMAT = "crkernels.made.v1"

# ---------------------------------------------------------------------------------------------
# safetensors reading (own parser: handles F16, BF16 and 0-d tensors without torch)
# ---------------------------------------------------------------------------------------------
_DT = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16,
       "I64": np.int64, "I32": np.int32, "U8": np.uint8, "I8": np.int8}


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
# numerics
# ---------------------------------------------------------------------------------------------
def logsumexp(a, axis=-1):
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return np.squeeze(m, axis) + np.log(np.sum(np.exp(a - m), axis=axis))


def log_softmax(a, axis=-1):
    return a - logsumexp(a, axis)[..., None]


def softplus_torch(a):
    # torch.nn.functional.softplus(beta=1, threshold=20)
    return np.where(a > 20.0, a, np.log1p(np.exp(np.minimum(a, 20.0))))


ACT = {
    "sigmoid": lambda z: 0.5 * (1.0 + np.tanh(0.5 * z)),  # overflow-free logistic
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    # PyTorch's LeakyReLU (negative_slope 0.01) and ELU (alpha 1)
    "leaky_relu": lambda z: np.where(z > 0.0, z, 0.01 * z),
    "elu": lambda z: np.where(z > 0.0, z, np.expm1(np.minimum(z, 0.0))),
}


def mixture_logpdf(x, logpi, mu, log_sigma):
    """x [n, D]; others [n, D, K]; returns [n, D] of log sum_k pi N(x; mu, sigma)."""
    z = (x[..., None] - mu) * np.exp(-log_sigma)
    return logsumexp(logpi - log_sigma - 0.5 * LOG_2PI - 0.5 * z * z, axis=-1)


def draw_mixture(rng, logpi, mu, sigma):
    """logpi, mu, sigma [m, K] -> [m] draws (component by inverse CDF, then Gaussian)."""
    p = np.exp(logpi)
    c = np.cumsum(p, axis=1)
    u = rng.random(p.shape[0])[:, None] * c[:, -1:]
    k = np.minimum((u > c).sum(axis=1), p.shape[1] - 1)
    i = np.arange(p.shape[0])
    return mu[i, k] + sigma[i, k] * rng.standard_normal(p.shape[0])


# ---------------------------------------------------------------------------------------------
# (a) plain layout
# ---------------------------------------------------------------------------------------------
class PlainMade:
    """Parses and validates a crkernels.made.v1 tensor dict; evaluates in float64."""

    def __init__(self, t, meta):
        if meta.get("format") != FORMAT:
            raise ValueError(f"format: expected {FORMAT!r}, got {meta.get('format')!r}")
        C, D, K = int(meta["n_context"]), int(meta["n_dims"]), int(meta["n_components"])
        act = meta["activation"]
        if act not in ACT:
            raise ValueError(f"activation {act!r}")
        if D < 1 or K < 1 or C < 0:
            raise ValueError("sizes")
        deg = np.asarray(t["degrees.input"]).astype(np.int64)
        if deg.shape != (C + D,):
            raise ValueError("shape: degrees.input")
        cdeg, ddeg = deg[:C], deg[C:]
        if C and ddeg.min() <= cdeg.max():
            raise ValueError("degrees: a context degree is not below every data degree")
        lo_d = int(ddeg.min())
        if sorted(ddeg.tolist()) != list(range(lo_d, lo_d + D)):
            raise ValueError("degrees: data degrees are not D consecutive integers")
        if C and cdeg.min() < 0:
            raise ValueError("degrees: negative context degree")
        if not C and lo_d != 1:
            raise ValueError("degrees: data degrees must start at 1 without context")
        if C and not (np.all(cdeg == 0) or sorted(cdeg.tolist()) == list(range(1, C + 1))):
            # PHYSICS.md: 0 for plain conditioning, or 1..C (SECRET); data continue from there.
            raise ValueError("degrees: context degrees must be all 0 or 1..C")
        if C and lo_d != int(cdeg.max()) + 1:
            raise ValueError("degrees: data degrees must follow the context degrees")
        # Hidden degrees in [0, highest data degree]: units outside [lowest context degree (1
        # without context), highest data degree - 1] read no input or feed no output (harmless;
        # the only kind when D = 1 without context).
        lo_h, hi_h = 0, int(ddeg.max())
        self.layers = []
        prev_deg, n_in, i = deg, C + D, 0
        while f"hidden.{i}.weight" in t:
            W, b = f64(t[f"hidden.{i}.weight"]), f64(t[f"hidden.{i}.bias"])
            hd = np.asarray(t[f"hidden.{i}.degrees"]).astype(np.int64)
            H = hd.shape[0]
            if W.shape != (H, n_in) or b.shape != (H,):
                raise ValueError(f"shape: hidden.{i}")
            if hd.min() < lo_h or hd.max() > hi_h:
                raise ValueError(f"degrees: hidden.{i} degrees outside [{lo_h}, {hi_h}]")
            M = (hd[:, None] >= prev_deg[None, :]).astype(np.float64)
            self.layers.append((W * M, b))
            prev_deg, n_in, i = hd, H, i + 1
        if not self.layers:
            raise ValueError("no hidden layer")
        Mo = (np.repeat(ddeg, K)[:, None] > prev_deg[None, :]).astype(np.float64)
        self.heads = []
        for name in ("logits", "means", "log_scales"):
            W, b = f64(t[f"output.{name}.weight"]), f64(t[f"output.{name}.bias"])
            if W.shape != (D * K, n_in) or b.shape != (D * K,):
                raise ValueError(f"shape: output.{name}")
            self.heads.append((W * Mo, b))
        self.xm, self.xs = np.zeros(D), np.ones(D)
        self.cm, self.cs = np.zeros(C), np.ones(C)
        if "standardize.x_mean" in t:
            self.xm, self.xs = f64(t["standardize.x_mean"]), f64(t["standardize.x_std"])
        if "standardize.context_mean" in t:
            self.cm, self.cs = f64(t["standardize.context_mean"]), f64(t["standardize.context_std"])
        if self.xm.shape != (D,) or self.xs.shape != (D,) or self.cm.shape != (C,) \
                or self.cs.shape != (C,):
            raise ValueError("shape: standardize")
        if np.any(self.xs <= 0) or np.any(self.cs <= 0):
            raise ValueError("standardize: non-positive std")
        self.C, self.D, self.K, self.act = C, D, K, ACT[act]
        self.ddeg, self.cdeg = ddeg, cdeg

    def params(self, xs, cs):
        """Standardised inputs -> (log pi, mu, log sigma), each [n, D, K]."""
        h = np.concatenate([cs, xs], axis=1) if self.C else xs
        for W, b in self.layers:
            h = self.act(h @ W.T + b)
        n = h.shape[0]
        lg, mu, ls = [(h @ W.T + b).reshape(n, self.D, self.K) for W, b in self.heads]
        return log_softmax(lg), mu, ls

    def _std(self, x, c):
        xs = (f64(x) - self.xm) / self.xs
        cs = (f64(c) - self.cm) / self.cs if self.C else np.zeros((xs.shape[0], 0))
        return xs, cs

    def log_prob(self, x, c=None):
        xs, cs = self._std(x, c)
        lp, mu, ls = self.params(xs, cs)
        return mixture_logpdf(xs, lp, mu, ls).sum(axis=1) - np.log(self.xs).sum()

    def sample(self, c, rng):
        """c [m, C] (user's space) -> samples [m, D]: D full passes, increasing degree."""
        m = c.shape[0]
        cs = (f64(c) - self.cm) / self.cs if self.C else np.zeros((m, 0))
        xs = np.zeros((m, self.D))
        for d in np.argsort(self.ddeg):
            lp, mu, ls = self.params(xs, cs)
            xs[:, d] = draw_mixture(rng, lp[:, d], mu[:, d], np.exp(ls[:, d]))
        return xs * self.xs + self.xm


def plain_log_prob_naive(t, meta, x, c):
    """Scalar-loop cross-check (explicit degree comparisons, direct sum of pi N)."""
    C, D, K = int(meta["n_context"]), int(meta["n_dims"]), int(meta["n_components"])
    act = ACT[meta["activation"]]
    deg = [int(v) for v in t["degrees.input"]]
    xm = f64(t.get("standardize.x_mean", np.zeros(D)))
    xsd = f64(t.get("standardize.x_std", np.ones(D)))
    cm = f64(t.get("standardize.context_mean", np.zeros(C)))
    csd = f64(t.get("standardize.context_std", np.ones(C)))
    v = [(float(c[j]) - cm[j]) / csd[j] for j in range(C)] + \
        [(float(x[j]) - xm[j]) / xsd[j] for j in range(D)]
    i = 0
    while f"hidden.{i}.weight" in t:
        W, b = f64(t[f"hidden.{i}.weight"]), f64(t[f"hidden.{i}.bias"])
        hd = [int(u) for u in t[f"hidden.{i}.degrees"]]
        v = [float(act(np.float64(b[o] + sum(W[o, j] * v[j] for j in range(len(v))
                                             if hd[o] >= deg[j])))) for o in range(len(hd))]
        deg, i = hd, i + 1
    total = 0.0
    for d in range(D):
        dd = int(t["degrees.input"][C + d])
        out = {}
        for name in ("logits", "means", "log_scales"):
            W, b = f64(t[f"output.{name}.weight"]), f64(t[f"output.{name}.bias"])
            out[name] = [b[d * K + k] + sum(W[d * K + k, j] * v[j] for j in range(len(v))
                                            if dd > deg[j]) for k in range(K)]
        z = np.array(out["logits"])
        pi = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        s = np.exp(np.array(out["log_scales"]))
        xd = (float(x[d]) - xm[d]) / xsd[d]
        p = np.sum(pi * np.exp(-0.5 * ((xd - np.array(out["means"])) / s) ** 2)
                   / (s * np.sqrt(2 * np.pi)))
        total += np.log(p) - np.log(xsd[d])
    return total


def make_plain(rng, *, C, D, K, hidden, act, ctx="none", standardize=False, premask=True,
               deg_dtype=np.int32, unmasked_noise=0.0):
    """Random plain-layout model; returns (tensors (f32), metadata)."""
    cdeg = {"none": np.zeros(0), "zero": np.zeros(C), "secret": np.arange(1, C + 1)}[ctx]
    base = int(cdeg.max()) if C else 0
    perm = np.arange(D)
    if D > 1:
        while np.all(perm == np.arange(D)) or np.all(perm == np.arange(D)[::-1]) and D > 2:
            perm = rng.permutation(D)
    ddeg = base + 1 + perm
    deg = np.concatenate([cdeg, ddeg]).astype(np.int64)
    lo = int(cdeg.min()) if C else 1
    hi = int(ddeg.max()) - 1
    t = {"degrees.input": deg.astype(deg_dtype)}
    prev, n_in = deg, C + D
    for i, H in enumerate(hidden):
        if hi >= lo:
            span = hi - lo + 1
            hd = lo + rng.permutation(np.arange(H) % span)  # every degree present when H >= span
        else:
            # D = 1 without context: [lo, hi] is empty. Degree 0 units read no input (a
            # constant fed to the output), degree 1 units read x and feed no output; both are
            # harmless and the loader accepts them (PHYSICS.md, MADE degrees).
            hd = rng.permutation(np.arange(H) % 2)
        W = rng.standard_normal((H, n_in)) / np.sqrt(n_in) * 1.5
        M = hd[:, None] >= prev[None, :]
        if premask:
            W = W * M
        else:
            W = W * M + unmasked_noise * rng.standard_normal(W.shape) * ~M
        t[f"hidden.{i}.weight"] = W
        t[f"hidden.{i}.bias"] = rng.normal(0, 0.5, H)
        t[f"hidden.{i}.degrees"] = hd.astype(deg_dtype)
        prev, n_in = hd, H
    Mo = np.repeat(ddeg, K)[:, None] > prev[None, :]
    sc = 1.0 / np.sqrt(n_in)
    heads = {
        "logits": (rng.standard_normal((D * K, n_in)) * 2 * sc, rng.normal(0, 1, D * K)),
        "means": (rng.standard_normal((D * K, n_in)) * 2 * sc, rng.normal(0, 1, D * K)),
        "log_scales": (rng.standard_normal((D * K, n_in)) * 0.7 * sc,
                       rng.normal(-1.0, 0.4, D * K)),
    }
    for name, (W, b) in heads.items():
        if premask:
            W = W * Mo
        else:
            W = W * Mo + unmasked_noise * rng.standard_normal(W.shape) * ~Mo
        t[f"output.{name}.weight"] = W
        t[f"output.{name}.bias"] = b
    if standardize:
        t["standardize.x_mean"] = rng.normal(0, 3, D)
        t["standardize.x_std"] = rng.uniform(0.2, 3.0, D)
        if C:
            t["standardize.context_mean"] = rng.normal(0, 3, C)
            t["standardize.context_std"] = rng.uniform(0.2, 3.0, C)
    t = {k: (v.astype(np.float32) if v.dtype.kind == "f" else v) for k, v in t.items()}
    meta = {"format": FORMAT, "n_context": str(C), "n_dims": str(D), "n_components": str(K),
            "activation": act}
    return t, meta


def cast_floats(t, dtype):
    return {k: (v.astype(dtype) if v.dtype.kind == "f" else v) for k, v in t.items()}


# ---------------------------------------------------------------------------------------------
# (b) nflows MixtureOfGaussiansMADE state_dict
# ---------------------------------------------------------------------------------------------
def nflows_hidden_degrees(H, D):
    return np.arange(H) % max(1, D - 1) + min(1, D - 1)


def make_nflows(rng, *, D, C, H, num_blocks, K, use_bn, prefix="", scale_last=1.0):
    """Random trained-looking MixtureOfGaussiansMADE state_dict in torch's key order/dtypes.
    D here is the network's `features` (for sbi: data dims + 1)."""
    sd = {}

    def masked_linear(name, in_deg, out_deg, is_output):
        M = (out_deg[:, None] > in_deg[None, :]) if is_output else \
            (out_deg[:, None] >= in_deg[None, :])
        n_in = in_deg.shape[0]
        sd[name + ".weight"] = rng.standard_normal((out_deg.shape[0], n_in)) / np.sqrt(n_in)
        sd[name + ".bias"] = rng.normal(0, 0.3, out_deg.shape[0])
        sd[name + ".mask"] = M.astype(np.float32)
        sd[name + ".degrees"] = out_deg.astype(np.int64)

    def linear(name, n_in, n_out):
        sd[name + ".weight"] = rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)
        sd[name + ".bias"] = rng.normal(0, 0.3, n_out)

    def bn(name, n):
        sd[name + ".weight"] = 1.0 + rng.normal(0, 0.2, n)
        sd[name + ".bias"] = rng.normal(0, 0.2, n)
        sd[name + ".running_mean"] = rng.normal(0, 0.5, n)
        sd[name + ".running_var"] = rng.uniform(0.3, 2.5, n)
        sd[name + ".num_batches_tracked"] = np.array(int(rng.integers(100, 100000)),
                                                     dtype=np.int64)

    in_deg = np.arange(1, D + 1)
    hd = nflows_hidden_degrees(H, D)
    masked_linear("initial_layer", in_deg, hd, False)
    if C:
        linear("context_layer", C, H)
    for b in range(num_blocks):
        p = f"blocks.{b}."
        if C:
            linear(p + "context_layer", C, H)
        if use_bn:
            bn(p + "batch_norm_layers.0", H)
            bn(p + "batch_norm_layers.1", H)
        masked_linear(p + "linear_layers.0", hd, hd, False)
        masked_linear(p + "linear_layers.1", hd, hd, False)
        sd[p + "linear_layers.1.weight"] *= scale_last
        sd[p + "linear_layers.1.bias"] *= scale_last
    out_deg = np.repeat(np.arange(1, D + 1), 3 * K)          # torchutils.tile
    masked_linear("final_layer", hd, out_deg, True)
    # final-layer rows j = 0 logits, 1 means, 2 raw stds: make raw stds sensible
    W, bb = sd["final_layer.weight"], sd["final_layer.bias"]
    W[2::3] *= 0.3
    bb[2::3] = rng.normal(np.log(np.expm1(0.5)), 0.3, D * K)
    bb[1::3] = rng.normal(0, 1.0, D * K)
    out = {}
    for k, v in sd.items():
        out[prefix + k] = v.astype(np.float32) if v.dtype.kind == "f" else v
    return out


class NflowsMade:
    """Port of MixtureOfGaussiansMADE.forward / log_prob (eval mode)."""

    def __init__(self, sd, prefix="", epsilon=1e-2, activation="relu", sbi_dummy=False):
        g = lambda k: f64(sd[prefix + k])                                         # noqa: E731
        has = lambda k: (prefix + k) in sd                                        # noqa: E731
        self.g, self.has = g, has
        self.H, self.F = sd[prefix + "initial_layer.weight"].shape
        self.K = sd[prefix + "final_layer.weight"].shape[0] // (3 * self.F)
        self.C = sd[prefix + "context_layer.weight"].shape[1] if has("context_layer.weight") else 0
        nb = 0
        while has(f"blocks.{nb}.linear_layers.0.weight"):
            nb += 1
        self.nb, self.eps, self.act = nb, epsilon, ACT[activation]
        self.bn = has("blocks.0.batch_norm_layers.0.running_mean")
        self.sbi = sbi_dummy

    def _ml(self, name, x):
        return x @ (self.g(name + ".weight") * self.g(name + ".mask")).T + self.g(name + ".bias")

    def _lin(self, name, x):
        return x @ self.g(name + ".weight").T + self.g(name + ".bias")

    def _bn(self, name, x):
        g = self.g
        return (x - g(name + ".running_mean")) / np.sqrt(g(name + ".running_var") + 1e-3) \
            * g(name + ".weight") + g(name + ".bias")

    def forward(self, inputs, context):
        t = self._ml("initial_layer", inputs)
        if self.C:
            t = t + self._lin("context_layer", context)
        for b in range(self.nb):
            p = f"blocks.{b}."
            u = t
            if self.bn:
                u = self._bn(p + "batch_norm_layers.0", u)
            u = self.act(u)
            u = self._ml(p + "linear_layers.0", u)
            if self.C:
                u = u + self._lin(p + "context_layer", context)
            if self.bn:
                u = self._bn(p + "batch_norm_layers.1", u)
            u = self.act(u)
            u = self._ml(p + "linear_layers.1", u)
            t = t + u
        return self._ml("final_layer", t)

    def _params(self, full, context):
        o = self.forward(full, context).reshape(full.shape[0], self.F, self.K, 3)
        return log_softmax(o[..., 0]), o[..., 1], softplus_torch(o[..., 2]) + self.eps

    def log_prob(self, x, context=None):
        x = f64(x)
        full = np.concatenate([np.zeros((x.shape[0], 1)), x], 1) if self.sbi else x
        c = f64(context) if self.C else None
        lp, mu, sd = self._params(full, c)
        if self.sbi:
            lp, mu, sd = lp[:, 1:], mu[:, 1:], sd[:, 1:]
        z = (x[..., None] - mu) / sd
        return logsumexp(lp - 0.5 * (LOG_2PI + 2 * np.log(sd) + z * z), -1).sum(-1)

    def sample(self, context, rng, m=None):
        """Slow sampler in feature order (= degree order). For sbi, the dummy is held at 0
        (the density that log_prob defines; sbi's own _sample draws the dummy instead)."""
        m = context.shape[0] if self.C else m
        c = f64(context) if self.C else None
        s = np.zeros((m, self.F))
        for f in range(1 if self.sbi else 0, self.F):
            lp, mu, sd = self._params(s, c)
            s[:, f] = draw_mixture(rng, lp[:, f], mu[:, f], sd[:, f])
        return s[:, 1:] if self.sbi else s


# ---------------------------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------------------------
def check_autoregressive_plain(model, rng):
    n = 4
    xs = rng.standard_normal((n, model.D))
    cs = rng.standard_normal((n, model.C))
    base = model.params(xs, cs)
    for d in range(model.D):
        x2 = xs.copy()
        x2[:, d] += 3.0
        new = model.params(x2, cs)
        for e in range(model.D):
            if model.ddeg[e] <= model.ddeg[d]:
                for a, b in zip(base, new):
                    assert np.array_equal(a[:, e], b[:, e]), "autoregressive property broken"


def tail_rows(rng, model_lp, x_bulk, c_bulk, xm, xs, order, n_tail, param_ok):
    """Rows with one coordinate at +-10/100/1000 sigma (user's space)."""
    xs_rows, cs_rows = [], []
    mults = [10, -10, 100, -100, 1000, -1000, 1000, -30, 300, -1000, 50, -500]
    for j in range(n_tail):
        i = j % x_bulk.shape[0]
        r = x_bulk[i].copy()
        m = mults[j % len(mults)]
        d = int(rng.integers(r.shape[0]))
        r[d] = xm[d] + m * xs[d]
        if not param_ok(r[None], c_bulk[i:i + 1]):
            d = order[-1]                                 # highest degree: feeds nothing
            r = x_bulk[i].copy()
            r[d] = xm[d] + m * xs[d]
        xs_rows.append(r)
        cs_rows.append(c_bulk[i])
    return np.array(xs_rows), np.array(cs_rows)


# ---------------------------------------------------------------------------------------------
# case generation
# ---------------------------------------------------------------------------------------------
WRITTEN = []


_DT_NAME = {np.dtype(v): k for k, v in _DT.items()}


def save_safetensors(path, tensors, meta=None):
    """Deterministic writer (sorted names, sorted metadata; safetensors' own serializer emits
    the metadata map in hash order). 0-d tensors keep shape []. Same format as
    safetensors.numpy.save_file, which remains the documented export path."""
    header, blobs, off = {}, [], 0
    if meta:
        header["__metadata__"] = {k: str(meta[k]) for k in sorted(meta)}
    for k in sorted(tensors):
        a = np.asarray(tensors[k])
        b = np.ascontiguousarray(a).tobytes() if a.ndim else a.tobytes()
        header[k] = {"dtype": _DT_NAME[a.dtype], "shape": list(a.shape),
                     "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def write(name, tensors, meta):
    path = os.path.join(OUT, name)
    save_safetensors(path, tensors, meta)
    WRITTEN.append(name)


def plain_case(name, seed, desc, *, n=64, n_tail=12, samples=0, sample_ctx_rows=1,
               dtype=None, **kw):
    rng = np.random.default_rng(seed)
    t, meta = make_plain(rng, **kw)
    if dtype is not None:
        t = cast_floats(t, dtype)
    write(f"{name}.safetensors", t, meta)
    # reference from the file as stored (rounded weights included)
    t2, meta2 = read_safetensors(os.path.join(OUT, f"{name}.safetensors"))
    model = PlainMade(t2, meta2)
    check_autoregressive_plain(model, rng)
    C = model.C
    nb = n - n_tail
    c_bulk = (model.cm + model.cs * rng.standard_normal((nb, C))).astype(np.float32)
    x_bulk = model.sample(c_bulk, rng).astype(np.float32)

    def ok(xr, cr):
        lp, mu, ls = model.params(*model._std(xr, cr))
        return np.all(np.abs(ls) < 30) and np.all(np.abs(mu) < 1e4)

    order = np.argsort(model.ddeg)
    xt, ct = tail_rows(rng, model.log_prob, x_bulk, c_bulk, model.xm, model.xs, order,
                       n_tail, ok)
    x = np.concatenate([x_bulk, xt.astype(np.float32)]).astype(np.float32)
    c = np.concatenate([c_bulk, ct.astype(np.float32)]).astype(np.float32)
    lp = model.log_prob(x, c)
    assert np.all(np.isfinite(lp)), name
    for r in (0, 1, nb):                                   # scalar-loop cross-check
        naive = plain_log_prob_naive(t2, meta2, x[r], c[r])
        if np.isfinite(naive):
            assert abs(naive - lp[r]) <= 1e-9 * max(1.0, abs(lp[r])), (name, r, naive, lp[r])
    exp = {"x": x, "log_prob": lp.astype(np.float64)}
    if C:
        exp["context"] = c
    if samples:
        crow = (model.cm + model.cs * rng.standard_normal((sample_ctx_rows, C))).astype(
            np.float32)
        sc = np.repeat(crow, samples // sample_ctx_rows, axis=0)
        exp["reference_samples"] = model.sample(sc, rng).astype(np.float32)
        if C:
            exp["sample_context"] = sc
        check_first_marginal(model, sc, exp["reference_samples"], name)
    write(f"{name}.expected.safetensors", exp, {"layout": "plain", "description": desc})
    return model, t, meta


def check_first_marginal(model, sc, samp, name):
    """The lowest-degree dimension is a known mixture: compare sample mean/var with it."""
    d = int(np.argmin(model.ddeg))
    cs = (f64(sc[:1]) - model.cm) / model.cs if model.C else np.zeros((1, 0))
    lp, mu, ls = model.params(np.zeros((1, model.D)), cs)
    p, m, s = np.exp(lp[0, d]), mu[0, d], np.exp(ls[0, d])
    mean = np.sum(p * m)
    var = np.sum(p * (s * s + m * m)) - mean ** 2
    mean_u, sd_u = mean * model.xs[d] + model.xm[d], np.sqrt(var) * model.xs[d]
    if np.all(sc == sc[:1]):
        got = samp[:, d].astype(np.float64)
        z = (got.mean() - mean_u) / (sd_u / np.sqrt(len(got)))
        assert abs(z) < 5, (name, z)
        assert abs(got.std() / sd_u - 1) < 0.05, (name, got.std(), sd_u)


def nflows_case(name, seed, desc, *, D, C, H, num_blocks, K, use_bn, prefix, sbi=False,
                n=64, n_tail=10, samples=0, scale_last=1.0):
    rng = np.random.default_rng(seed)
    F = D + 1 if sbi else D
    sd = make_nflows(rng, D=F, C=C, H=H, num_blocks=num_blocks, K=K, use_bn=use_bn,
                     prefix=prefix, scale_last=scale_last)
    write(f"{name}.safetensors", sd, None)                # torch's save_file writes no metadata
    sd2, _ = read_safetensors(os.path.join(OUT, f"{name}.safetensors"))
    model = NflowsMade(sd2, prefix=prefix, sbi_dummy=sbi)
    nb = n - n_tail
    c_bulk = rng.standard_normal((nb, C)).astype(np.float32)
    x_bulk = model.sample(c_bulk, rng, m=nb).astype(np.float32)
    x_t = x_bulk[:n_tail].copy()
    for j, m in enumerate([10, -10, 100, -100, 1000, -1000, 300, -300, 1000, 30][:n_tail]):
        x_t[j, D - 1 if abs(m) >= 100 else j % D] = m   # huge values in the last dim (relu)
    x = np.concatenate([x_bulk, x_t]).astype(np.float32)
    c = np.concatenate([c_bulk, c_bulk[:n_tail]]).astype(np.float32)
    lp = model.log_prob(x, c)
    assert np.all(np.isfinite(lp)), name
    # autoregressive check on the network itself (stored masks)
    probe = rng.standard_normal((3, F))
    cc = rng.standard_normal((3, C)) if C else None
    o0 = model.forward(probe, cc).reshape(3, F, K, 3)
    for f in range(F):
        p2 = probe.copy()
        p2[:, f] += 2.0
        o1 = model.forward(p2, cc).reshape(3, F, K, 3)
        assert np.array_equal(o0[:, :f + 1], o1[:, :f + 1]), name
    exp = {"x": x, "log_prob": lp}
    if C:
        exp["context"] = c
    if samples:
        crow = rng.standard_normal((1, C)).astype(np.float32)
        sc = np.repeat(crow, samples, 0)
        exp["reference_samples"] = model.sample(sc, rng, m=samples).astype(np.float32)
        if C:
            exp["sample_context"] = sc
    meta = {"layout": "nflows", "description": desc, "prefix": prefix,
            "epsilon": "0.01", "activation": "relu", "sbi_dummy_input": str(sbi).lower()}
    write(f"{name}.expected.safetensors", exp, meta)


def bad_files():
    rng = np.random.default_rng(999)
    t, meta = make_plain(rng, C=2, D=4, K=3, hidden=[12], act="tanh", ctx="secret")
    m = dict(meta, format="crkernels.made.v0")
    write("bad_format.safetensors", t, m)

    t2 = dict(t)
    hd = t2["hidden.0.degrees"].copy()
    hd[3] = t["degrees.input"].max() + 1                  # hidden degree above every data degree
    t2["hidden.0.degrees"] = hd
    write("bad_degrees.safetensors", t2, meta)

    t3 = dict(t)
    deg = t3["degrees.input"].copy()
    deg[1] = deg[2:].max()                                # context degree among data degrees
    t3["degrees.input"] = deg
    write("bad_context_degree.safetensors", t3, meta)

    t4 = dict(t)
    t4["output.means.weight"] = np.zeros((4 * 3, 13), np.float32)   # H_last is 12
    write("bad_shape.safetensors", t4, meta)

    for f, why in [("bad_format", "format"), ("bad_degrees", "degrees"),
                   ("bad_context_degree", "degrees"), ("bad_shape", "shape")]:
        tt, mm = read_safetensors(os.path.join(OUT, f + ".safetensors"))
        try:
            PlainMade(tt, mm)
        except ValueError as e:
            assert str(e).startswith(why), (f, e)
            print(f"  {f}: rejected ({e})")
        else:
            raise AssertionError(f"{f} was accepted")


def main(only=()):
    """Regenerates every file of tests/data/made, or with names only those cases (the other
    files are left as they are)."""
    os.makedirs(OUT, exist_ok=True)
    if not only:
        for f in os.listdir(OUT):
            if f.endswith(".safetensors"):
                os.remove(os.path.join(OUT, f))

    def selected(case):
        def run(name, *args, **kw):
            if not only or name in only:
                case(name, *args, **kw)
        return run

    P = selected(plain_case)
    P("plain_h1_sigmoid_k1", 101, "D=4, no context, 1 hidden layer (16 sigmoid), K=1, "
      "no standardisation, permuted order, pre-masked, int32 degrees",
      C=0, D=4, K=1, hidden=[16], act="sigmoid")
    P("plain_h1_tanh_k3_std_samples", 102, "D=3, no context, 1 hidden (24 tanh), K=3, "
      "standardisation, reference_samples (20000)",
      C=0, D=3, K=3, hidden=[24], act="tanh", standardize=True, samples=20000)
    P("plain_h2_relu_k10_ctx0_std", 103, "D=5, C=3 context degrees 0 (plain conditioning), "
      "2 hidden (32, 32 relu), K=10, standardisation incl. context, int64 degrees",
      C=3, D=5, K=10, hidden=[32, 32], act="relu", ctx="zero", standardize=True,
      deg_dtype=np.int64)
    P("plain_h3_tanh_k3_ctxsecret", 104, "D=6, C=2 SECRET-style context degrees 1..2, "
      "3 hidden (20, 20, 20 tanh), K=3, no standardisation",
      C=2, D=6, K=3, hidden=[20, 20, 20], act="tanh", ctx="secret")
    P("plain_h1_sigmoid_k10_ctxsecret_std", 105, "D=4, C=3 SECRET-style context 1..3, "
      "1 hidden (40 sigmoid), K=10, standardisation of x and context",
      C=3, D=4, K=10, hidden=[40], act="sigmoid", ctx="secret", standardize=True)
    P("plain_h2_sigmoid_k3_ctx0_samples", 106, "D=2, C=2 context degrees 0, 2 hidden (16, 16 "
      "sigmoid), K=3, standardisation, reference_samples (20000, one context row repeated)",
      C=2, D=2, K=3, hidden=[16, 16], act="sigmoid", ctx="zero", standardize=True,
      samples=20000)
    P("plain_unmasked", 107, "D=4, C=2 SECRET-style, 2 hidden (16, 12 tanh), K=3, weights NOT "
      "pre-masked (N(0,1) noise outside the mask: the loader must apply the masks)",
      C=2, D=4, K=3, hidden=[16, 12], act="tanh", ctx="secret", standardize=True,
      premask=False, unmasked_noise=1.0)
    P("plain_f16", 108, "D=4, C=2 context 0, 1 hidden (24 sigmoid), K=3, standardisation; "
      "all float tensors F16; log_prob from the F16 values",
      C=2, D=4, K=3, hidden=[24], act="sigmoid", ctx="zero", standardize=True,
      dtype=np.float16)
    P("plain_bf16", 109, "D=3, C=2 SECRET-style, 2 hidden (16, 16 relu), K=3, standardisation; "
      "all float tensors BF16; log_prob from the BF16 values",
      C=2, D=3, K=3, hidden=[16, 16], act="relu", ctx="secret", standardize=True,
      dtype=ml_dtypes.bfloat16)
    P("plain_d1_ctx0", 110, "D=1, C=2 context degrees 0, 1 hidden (8 tanh; all degree 0), K=3, "
      "standardisation: a conditional 1-D mixture",
      C=2, D=1, K=3, hidden=[8], act="tanh", ctx="zero", standardize=True)
    P("plain_d1_secret", 111, "D=1, C=1 SECRET-style context degree 1, 1 hidden (6 relu), K=10",
      C=1, D=1, K=10, hidden=[6], act="relu", ctx="secret")
    P("plain_d1_noctx", 112, "D=1, no context: a single Gaussian mixture; 1 hidden (6 tanh) "
      "with degrees 0 (constant units) and 1 (units that feed no output), K=4, "
      "standardisation, reference_samples (20000)",
      C=0, D=1, K=4, hidden=[6], act="tanh", standardize=True, samples=20000)
    P("secret_shape", 2024, "SECRET shape: C=5 context degrees 1..5, D=19, 1 hidden (200 "
      "sigmoid), K=10, standardisation, weights ~N(0, 1/sqrt(fan_in))",
      C=5, D=19, K=10, hidden=[200], act="sigmoid", ctx="secret", standardize=True)
    P("plain_h2_leaky_relu_k3_ctxsecret_std", 113, "D=4, C=2 SECRET-style context 1..2, "
      "2 hidden (24, 24 leaky_relu, slope 0.01), K=3, standardisation of x and context",
      C=2, D=4, K=3, hidden=[24, 24], act="leaky_relu", ctx="secret", standardize=True)
    P("plain_h1_elu_k5_ctx0_std", 114, "D=3, C=2 context degrees 0, 1 hidden (32 elu, alpha 1), "
      "K=5, standardisation of x and context",
      C=2, D=3, K=5, hidden=[32], act="elu", ctx="zero", standardize=True)

    N = selected(nflows_case)
    N("nflows_bare_ctx_bn_2blk_k5", 201, "MixtureOfGaussiansMADE state_dict, no prefix; D=4, "
      "C=3, hidden 24, 2 residual blocks, batch norm (eval), K=5",
      D=4, C=3, H=24, num_blocks=2, K=5, use_bn=True, prefix="")
    N("nflows_mademog_noctx_1blk_k1", 202, "MADEMoG (prefix _made.); D=3, no context, hidden 16, "
      "1 residual block, no batch norm, K=1, reference_samples (20000)",
      D=3, C=0, H=16, num_blocks=1, K=1, use_bn=False, prefix="_made.", samples=20000)
    N("nflows_flow_ctx_2blk_k5", 203, "Flow with MADEMoG base (prefix _distribution._made.); "
      "D=5, C=2, hidden 20, 2 residual blocks (last layers ~1e-3 as at init), no batch norm, K=5",
      D=5, C=2, H=20, num_blocks=2, K=5, use_bn=False, prefix="_distribution._made.",
      scale_last=1e-3)
    N("nflows_sbi_ctx_bn_1blk_k1", 204, "sbi NFlowsFlow around MADEMoGWrapper (prefix "
      "net._distribution._made.): features = D + 1 with a zero dummy input first, log_prob over "
      "the D real dims; D=3, C=2, hidden 12, 1 residual block, batch norm, K=1",
      D=3, C=2, H=12, num_blocks=1, K=1, use_bn=True, prefix="net._distribution._made.",
      sbi=True)
    N("nflows_sbi_ctx_2blk_k5", 205, "sbi layout (prefix net._distribution._made., dummy input), "
      "D=2, C=1, hidden 10, 2 residual blocks, no batch norm, K=5",
      D=2, C=1, H=10, num_blocks=2, K=5, use_bn=False, prefix="net._distribution._made.",
      sbi=True)
    N("nflows_d1_noctx_1blk_k3", 206, "MixtureOfGaussiansMADE, no prefix; D=1, no context "
      "(hidden degrees all 0, as nflows makes them), hidden 8, 1 residual block, K=3, "
      "reference_samples (20000)",
      D=1, C=0, H=8, num_blocks=1, K=3, use_bn=False, prefix="", samples=20000)
    N("nflows_d1_ctx_1blk_k3", 207, "MixtureOfGaussiansMADE, no prefix; D=1, C=2, hidden 8, "
      "1 residual block, batch norm, K=3",
      D=1, C=2, H=8, num_blocks=1, K=3, use_bn=True, prefix="")
    if not only:
        bad_files()
    for f in sorted(WRITTEN):                         # the official parser accepts every file
        p = os.path.join(OUT, f)
        with safe_open(p, framework="np") as g:
            keys = set(g.keys())
        if "plain_bf16.safetensors" != f:
            assert set(load_file(p)) == keys
            ours, _ = read_safetensors(p)
            assert all(np.array_equal(v, ours[k]) and v.shape == ours[k].shape
                       for k, v in load_file(p).items()), f
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(WRITTEN)} files to {OUT}, {total / 1e6:.2f} MB")


if __name__ == "__main__":
    sys.exit(main(tuple(sys.argv[1:])))
