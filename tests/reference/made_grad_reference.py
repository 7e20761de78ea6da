#!/usr/bin/env python3
"""Independent float64 NumPy reference gradients of the MADE-MoG (issue 16, item 1).

For the reference models of tests/data/made (written by made_reference.py, which this script
imports for its parsers and its float64 log-density), writes `{name}.grad.safetensors`:

  x [n, D] (float32), context [n, C] (float32, when C > 0): the first n rows of the model's
      `.expected` inputs;
  log_prob [n], grad_x [n, D], grad_context [n, C] (float64): log p(x | c) and its gradient
      with respect to x and c in the user's units;
  plain layout only: nll [] = -(1/n) sum log p, and grad.<tensor name> (float64, the file's
      shapes, e.g. grad.hidden.0.weight [H_0, C + D]) = d nll / d tensor, zero outside the
      masks.

Plain layout: analytic back-propagation through PlainMade (dense masked matrices, batched),
checked here against central float64 finite differences of PlainMade.log_prob (every input
entry of a few rows and 40 random parameters). nflows layout: input gradients by central
float64 finite differences of NflowsMade.log_prob (no parameter gradient: its file layout
differs from the compiled layers the Rust gradient reports).

    .venv-ref/bin/python tests/reference/made_grad_reference.py [model names: only those]
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import made_reference as mr  # noqa: E402

N_ROWS = 16
PLAIN = ["plain_h1_sigmoid_k1", "plain_h1_tanh_k3_std_samples", "plain_h2_relu_k10_ctx0_std",
         "plain_h3_tanh_k3_ctxsecret", "plain_h1_sigmoid_k10_ctxsecret_std",
         "plain_h2_sigmoid_k3_ctx0_samples", "plain_unmasked", "plain_f16", "plain_bf16",
         "plain_d1_ctx0", "plain_d1_secret", "plain_d1_noctx", "secret_shape",
         "plain_h2_leaky_relu_k3_ctxsecret_std", "plain_h1_elu_k5_ctx0_std"]
NFLOWS = ["nflows_bare_ctx_bn_2blk_k5", "nflows_mademog_noctx_1blk_k1", "nflows_flow_ctx_2blk_k5",
          "nflows_sbi_ctx_bn_1blk_k1", "nflows_sbi_ctx_2blk_k5", "nflows_d1_noctx_1blk_k3",
          "nflows_d1_ctx_1blk_k3"]


def act_and_derivative(name, a):
    if name == "sigmoid":
        s = 0.5 * (1.0 + np.tanh(0.5 * a))
        return s, s * (1.0 - s)
    if name == "tanh":
        t = np.tanh(a)
        return t, 1.0 - t * t
    if name == "relu":
        return np.maximum(a, 0.0), (a > 0.0).astype(np.float64)
    if name == "leaky_relu":
        return np.where(a > 0.0, a, 0.01 * a), np.where(a > 0.0, 1.0, 0.01)
    if name == "elu":
        e = np.exp(np.minimum(a, 0.0))
        return np.where(a > 0.0, a, np.expm1(np.minimum(a, 0.0))), np.where(a > 0.0, 1.0, e)
    raise ValueError(name)


def plain_backprop(model, act, x, c):
    """Per-row log p, d log p / d x, d log p / d c (user's units) and the gradient of the mean
    NLL with respect to the masked matrices (a list per hidden layer and per head)."""
    xs, cs = model._std(x, c)
    n, C, D, K = xs.shape[0], model.C, model.D, model.K
    hs, pres = [np.concatenate([cs, xs], axis=1) if C else xs], []
    for W, b in model.layers:
        a = hs[-1] @ W.T + b
        pres.append(a)
        hs.append(act_and_derivative(act, a)[0])
    h = hs[-1]
    lg, mu, ls = [(h @ W.T + b).reshape(n, D, K) for W, b in model.heads]
    logpi = mr.log_softmax(lg)
    inv = np.exp(-ls)
    z = (xs[..., None] - mu) * inv
    A = logpi - ls - 0.5 * mr.LOG_2PI - 0.5 * z * z
    lse = mr.logsumexp(A)
    lp = lse.sum(axis=1) - np.log(model.xs).sum()
    w = np.exp(A - lse[..., None])
    pi = np.exp(logpi)
    g_heads = [w - pi, w * z * inv, w * (z * z - 1.0)]
    g_xs = -(w * z * inv).sum(axis=2)
    scale = -1.0 / n
    head_grads = []
    g_h = np.zeros_like(h)
    for (W, _), g in zip(model.heads, g_heads):
        g = g.reshape(n, D * K)
        head_grads.append((scale * (g.T @ h) * (W != 0), scale * g.sum(axis=0)))
        g_h += g @ W
    layer_grads = []
    for i in range(len(model.layers) - 1, -1, -1):
        W, _ = model.layers[i]
        g_a = g_h * act_and_derivative(act, pres[i])[1]
        layer_grads.append((scale * (g_a.T @ hs[i]), scale * g_a.sum(axis=0)))
        g_h = g_a @ W
    layer_grads.reverse()
    g_cs, g_xs = g_h[:, :C], g_xs + g_h[:, C:]
    return lp, g_xs / model.xs, g_cs / model.cs, layer_grads, head_grads


def masks(t, meta):
    """The masks of the hidden layers and the heads, as made_reference.PlainMade derives them."""
    C, D, K = int(meta["n_context"]), int(meta["n_dims"]), int(meta["n_components"])
    deg = np.asarray(t["degrees.input"]).astype(np.int64)
    prev, out, i = deg, [], 0
    while f"hidden.{i}.weight" in t:
        hd = np.asarray(t[f"hidden.{i}.degrees"]).astype(np.int64)
        out.append(hd[:, None] >= prev[None, :])
        prev, i = hd, i + 1
    head = np.repeat(deg[C:], K)[:, None] > prev[None, :]
    return out, head


def fd_inputs(log_prob, x, c, h=1e-5):
    """Central float64 differences of log_prob(x, c) ([n] -> [n]) per input entry."""
    x, c = mr.f64(x), mr.f64(c) if c is not None else None
    gx = np.zeros_like(x)
    for j in range(x.shape[1]):
        step = h * np.maximum(1.0, np.abs(x[:, j]))
        xp, xm = x.copy(), x.copy()
        xp[:, j] += step
        xm[:, j] -= step
        gx[:, j] = (log_prob(xp, c) - log_prob(xm, c)) / (2 * step)
    gc = np.zeros((x.shape[0], 0)) if c is None else np.zeros_like(c)
    for j in range(gc.shape[1]):
        step = h * np.maximum(1.0, np.abs(c[:, j]))
        cp, cm = c.copy(), c.copy()
        cp[:, j] += step
        cm[:, j] -= step
        gc[:, j] = (log_prob(x, cp) - log_prob(x, cm)) / (2 * step)
    return gx, gc


def close(a, b, tol, what):
    err = np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))) if a.size else 0.0
    assert err <= tol, (what, err)
    return err


def plain(name):
    t, meta = mr.read_safetensors(os.path.join(mr.OUT, f"{name}.safetensors"))
    e, _ = mr.read_safetensors(os.path.join(mr.OUT, f"{name}.expected.safetensors"))
    model = mr.PlainMade(t, meta)
    x = np.array(e["x"][:N_ROWS], dtype=np.float32)
    c = np.array(e["context"][:N_ROWS], dtype=np.float32) if model.C else None
    lp, gx, gc, layer_grads, head_grads = plain_backprop(model, meta["activation"], x, c)
    assert np.allclose(lp, model.log_prob(x, c), rtol=1e-12, atol=1e-12), name
    fx, fc = fd_inputs(model.log_prob, x[:4], None if c is None else c[:4])
    err_in = max(close(gx[:4], fx, 1e-6, name + " grad_x"), close(gc[:4], fc, 1e-6, name + " grad_c"))
    hidden_masks, head_mask = masks(t, meta)
    out = {"x": x, "log_prob": lp, "grad_x": gx, "nll": np.array(-lp.mean())}
    if model.C:
        out["context"] = c
        out["grad_context"] = gc
    for i, ((gw, gb), m) in enumerate(zip(layer_grads, hidden_masks)):
        out[f"grad.hidden.{i}.weight"] = gw * m
        out[f"grad.hidden.{i}.bias"] = gb
    for head, (gw, gb) in zip(("logits", "means", "log_scales"), head_grads):
        out[f"grad.output.{head}.weight"] = gw * head_mask
        out[f"grad.output.{head}.bias"] = gb
    # finite differences of the mean NLL in 40 random parameters inside the masks
    rng = np.random.default_rng(16)
    names = sorted(k for k in out if k.startswith("grad."))
    err_p = 0.0
    for _ in range(40):
        key = names[rng.integers(len(names))]
        g = out[key]
        idx = tuple(rng.integers(s) for s in g.shape)
        if key.endswith(".weight") and g[idx] == 0.0:
            continue
        tensor = key[len("grad."):]
        base = mr.f64(t[tensor])
        vals = []
        for sgn in (1.0, -1.0):
            t2 = dict(t)
            p = base.copy()
            step = 1e-6 * max(1.0, abs(p[idx]))
            p[idx] += sgn * step
            t2[tensor] = p
            vals.append(-mr.PlainMade(t2, meta).log_prob(x, c).mean())
        fd = (vals[0] - vals[1]) / (2 * step)
        err_p = max(err_p, close(np.array([g[idx]]), np.array([fd]), 1e-6, f"{name} {key}{idx}"))
    mr.save_safetensors(os.path.join(mr.OUT, f"{name}.grad.safetensors"), out,
                        {"layout": "plain", "rows": str(N_ROWS)})
    print(f"{name}: fd check inputs {err_in:.1e}, parameters {err_p:.1e}")


def nflows(name):
    sd, _ = mr.read_safetensors(os.path.join(mr.OUT, f"{name}.safetensors"))
    e, meta = mr.read_safetensors(os.path.join(mr.OUT, f"{name}.expected.safetensors"))
    model = mr.NflowsMade(sd, prefix=meta["prefix"], sbi_dummy=meta["sbi_dummy_input"] == "true")
    x = np.array(e["x"][:N_ROWS], dtype=np.float32)
    c = np.array(e["context"][:N_ROWS], dtype=np.float32) if "context" in e else None
    lp = model.log_prob(mr.f64(x), None if c is None else mr.f64(c))
    gx, gc = fd_inputs(model.log_prob, x, c)
    # a second step size: the two estimates agree to the FD accuracy
    gx2, gc2 = fd_inputs(model.log_prob, x, c, h=3e-5)
    err = max(close(gx, gx2, 1e-6, name), close(gc, gc2, 1e-6, name))
    out = {"x": x, "log_prob": mr.f64(lp), "grad_x": gx}
    if c is not None:
        out["context"] = c
        out["grad_context"] = gc
    mr.save_safetensors(os.path.join(mr.OUT, f"{name}.grad.safetensors"), out,
                        {"layout": "nflows", "rows": str(N_ROWS)})
    print(f"{name}: two fd steps agree to {err:.1e}")


def main(only=()):
    """Every model's gradient file, or with names only those."""
    for name in PLAIN:
        if not only or name in only:
            plain(name)
    for name in NFLOWS:
        if not only or name in only:
            nflows(name)


if __name__ == "__main__":
    sys.exit(main(tuple(sys.argv[1:])))
