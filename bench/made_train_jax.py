#!/usr/bin/env python3
"""Plain JAX trainer of a MADE with Gaussian-mixture outputs (MADE-MoG): the speed reference for
crkernels' trainer (issue 16, "Speed") and, with --known, the accuracy reference on a known
distribution (issue 16, "Training").

Model (the one crkernels trains; PHYSICS.md, "MADE with Gaussian-mixture outputs"):
  inputs = context (C values, degrees 1..C: the SECRET ordering) then data (D values; data
  dimension d has degree C + 1 + order[d], order a random permutation); hidden layers of H units
  with degrees drawn uniformly in [1, C + D - 1] ([1, D - 1] without context); masks: input or
  hidden -> hidden where deg(out) >= deg(in), last hidden -> head rows of data dimension d where
  deg(d) > deg(hidden); three heads (logits, means, log sigma), each [D*K, H], row d*K + k;
  loss = mean over rows of -sum_d log sum_k softmax(logit)_k N(x_d; mu, exp(log sigma)).
  Weights are stored dense and multiplied by their 0/1 mask in the forward pass (as nflows and
  every framework MADE do), so masked weights get exactly zero gradient. PyTorch-style init
  (weights and biases uniform in +-1/sqrt(fan_in)); Adam as torch.optim.Adam (lr 1e-3,
  betas 0.9/0.999, eps 1e-8, bias-corrected), written out here (no optax).

One epoch = ONE jit-compiled function: a fresh random permutation of the rows (jax.random), the
rows gathered into [n_batches, B, ...] (the last partial minibatch dropped) and a `jax.lax.scan`
over the minibatches doing forward + backward (jax.value_and_grad) + the Adam step. This is the
fast way to run JAX on a CPU: no Python or dispatch per step.

Throughput mode (default): random standard-normal data (--rows, default 1e5), for each shape x
minibatch x thread count: one warm-up epoch (compiles and runs), then --epochs timed epochs
(block_until_ready around each); rows/s = rows trained per epoch (n_batches * B) / epoch time,
the median and the best epoch reported. Each thread count runs in a fresh subprocess (XLA reads
its flags and sizes its thread pools once per process):
  threads = 1: os.sched_setaffinity(0, {first allowed CPU}) (as taskset -c) before jax is imported,
               and XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1";
  threads = 2: os.sched_setaffinity(0, {first two allowed CPUs}), XLA_FLAGS unset (the default
               multi-threaded Eigen/XLA CPU runtime).
The FLOPs per row are printed for the dense model (what a framework executes: every masked zero
multiplied) and mask-aware (only the unmasked weights): matrix products forward + backward
(multiply-add = 2 flops; the backward pass computes weight gradients for every layer and input
gradients for every layer but the first) plus Adam (12 flops per trainable parameter per step,
divided by B). The element-wise work (sigmoid, log-softmax, Gaussian terms, ~O(H + D K) per row)
is not in the flop count; its transcendental calls per row are printed beside it.

Shapes: secret = SECRET conditional shape (C = 5, D = 19, 1 x 200 sigmoid, K = 10);
        single = single-point shape (C = 0, D = 19, 1 x 200 sigmoid, K = 10).

Known mode (--known): trains the MADE (D = 3, C = 2 with degrees 1..2, one hidden layer of
--known-hidden units, --known-activation, K = 10, minibatch --known-batch, Adam 1e-3, 90/10
train/validation split, early stopping with patience 20, the best-validation model kept) on
5e4 rows from tests/reference/known_density.py's sampler, data and context standardised with the
training split's mean and standard deviation (the Jacobian added back), and reports
NLL(model) - NLL(true) on an independent 5e4-row test set, for each of --seeds.

    python3 -m venv .venv-bench && .venv-bench/bin/pip install -r bench/requirements-train.txt
    .venv-bench/bin/python bench/made_train_jax.py [--shapes secret,single] [--batches 50,512]
        [--threads 1,2] [--epochs 3] [--rows 100000] [--json out.json]
    .venv-bench/bin/python bench/made_train_jax.py --known [--seeds 1,2,3] [--known-hidden 128]
        [--known-activation sigmoid] [--known-batch 64] [--json known.json]

JSON (--json): {"meta": {...}, "results": [{"shape", "n_context", "n_dims", "hidden", "K",
"batch", "threads", "rows_per_epoch", "epoch_seconds": [...], "rows_per_s_median",
"rows_per_s_best", "flops_per_row_dense", "flops_per_row_masked"}, ...]} or, with --known,
{"meta": {...}, "known": [{"seed", "epochs_run", "best_epoch", "test_nll", "true_nll", "gap"},
...]}.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

SHAPES = {
    "secret": dict(n_context=5, n_dims=19, hidden=[200], K=10, activation="sigmoid"),
    "single": dict(n_context=0, n_dims=19, hidden=[200], K=10, activation="sigmoid"),
}
ADAM_FLOPS_PER_PARAM = 12


# ---------------------------------------------------------------------------------------------
# Model (NumPy for degrees, masks and init; JAX for everything that runs per step)


def build_masks(n_context, n_dims, hidden, rng):
    """Degrees and 0/1 masks (float32 NumPy) of the model; rng = numpy Generator."""
    import numpy as np

    ctx_deg = np.arange(1, n_context + 1)
    order = rng.permutation(n_dims)
    data_deg = n_context + 1 + order
    in_deg = np.concatenate([ctx_deg, data_deg])
    hi = n_context + n_dims - 1
    masks, prev = [], in_deg
    for h in hidden:
        deg = rng.integers(1, hi + 1, size=h) if hi >= 1 else np.zeros(h, dtype=np.int64)
        masks.append((deg[:, None] >= prev[None, :]).astype(np.float32))
        prev = deg
    K = None  # heads' mask built by the caller (needs K)
    return in_deg, data_deg, prev, masks, K


def init_model(n_context, n_dims, hidden, K, seed):
    """(params, masks, info): params and masks as dicts of NumPy float32 arrays."""
    import numpy as np

    rng = np.random.default_rng(seed)
    in_deg, data_deg, last_deg, masks, _ = build_masks(n_context, n_dims, hidden, rng)
    head_mask = (np.repeat(data_deg, K)[:, None] > last_deg[None, :]).astype(np.float32)
    params, mask_d = {}, {}
    fan_in = n_context + n_dims
    for i, h in enumerate(hidden):
        bound = 1.0 / math.sqrt(fan_in)
        params[f"w{i}"] = rng.uniform(-bound, bound, size=(h, fan_in)).astype(np.float32)
        params[f"b{i}"] = rng.uniform(-bound, bound, size=(h,)).astype(np.float32)
        mask_d[f"w{i}"] = masks[i]
        fan_in = h
    bound = 1.0 / math.sqrt(fan_in)
    for name in ("logits", "means", "log_scales"):
        params[f"{name}_w"] = rng.uniform(-bound, bound, size=(n_dims * K, fan_in)).astype(np.float32)
        params[f"{name}_b"] = rng.uniform(-bound, bound, size=(n_dims * K,)).astype(np.float32)
        mask_d[f"{name}_w"] = head_mask
    info = dict(in_deg=in_deg, data_deg=data_deg, masks=masks, head_mask=head_mask)
    return params, mask_d, info


def flop_counts(n_context, n_dims, hidden, K, batch, masks, head_mask):
    """FLOPs per row, (dense, mask-aware): matrix products forward + backward + Adam."""
    def count(nnz_layers, nnz_head, n_params):
        fwd = sum(2 * n for n in nnz_layers) + 3 * 2 * nnz_head
        # backward: weight gradients of every product, input gradients of all but the first layer
        bwd = fwd + (fwd - 2 * nnz_layers[0])
        adam = ADAM_FLOPS_PER_PARAM * n_params / batch
        return dict(forward=fwd, backward=bwd, adam=adam, total=fwd + bwd + adam)

    dense_layers = [m.size for m in masks]
    nnz_layers = [int(m.sum()) for m in masks]
    biases = sum(hidden) + 3 * n_dims * K
    dense = count(dense_layers, head_mask.size, sum(dense_layers) + 3 * head_mask.size + biases)
    masked = count(nnz_layers, int(head_mask.sum()),
                   sum(nnz_layers) + 3 * int(head_mask.sum()) + biases)
    transcendental = sum(hidden) + 3 * n_dims * K  # sigmoid per unit; exp(log sigma), exp in
    # log-softmax and in logsumexp per component (logs per dimension not counted)
    return dense, masked, transcendental


def make_functions(n_context, n_dims, hidden, K, activation, masks):
    """Jitted (epoch, nll) functions closed over the masks."""
    import jax
    import jax.numpy as jnp

    act = {"sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, "relu": jax.nn.relu}[activation]
    jmasks = {k: jnp.asarray(v) for k, v in masks.items()}
    n_layers = len(hidden)
    half_log_2pi = 0.5 * math.log(2.0 * math.pi)

    def log_prob(params, ctx, x):
        h = jnp.concatenate([ctx, x], axis=1) if n_context else x
        for i in range(n_layers):
            h = act(h @ (params[f"w{i}"] * jmasks[f"w{i}"]).T + params[f"b{i}"])
        outs = [h @ (params[f"{n}_w"] * jmasks[f"{n}_w"]).T + params[f"{n}_b"]
                for n in ("logits", "means", "log_scales")]
        logits, mu, ls = (o.reshape(-1, n_dims, K) for o in outs)
        log_pi = jax.nn.log_softmax(logits, axis=-1)
        z = (x[:, :, None] - mu) * jnp.exp(-ls)
        comp = log_pi - 0.5 * z * z - ls - half_log_2pi
        return jax.nn.logsumexp(comp, axis=-1).sum(axis=-1)

    def loss(params, ctx, x):
        return -jnp.mean(log_prob(params, ctx, x))

    grad_fn = jax.value_and_grad(loss)
    b1, b2, eps = 0.9, 0.999, 1e-8

    def step(carry, batch):
        params, m, v, t, lr = carry
        ctx, x = batch
        value, g = grad_fn(params, ctx, x)
        t = t + 1.0
        m = jax.tree.map(lambda a, b: b1 * a + (1 - b1) * b, m, g)
        v = jax.tree.map(lambda a, b: b2 * a + (1 - b2) * b * b, v, g)
        c1 = 1.0 - b1 ** t
        c2 = 1.0 - b2 ** t
        step_size = lr / c1
        params = jax.tree.map(
            lambda p, a, b: p - step_size * a / (jnp.sqrt(b / c2) + eps), params, m, v)
        return (params, m, v, t, lr), value

    def epoch(state, ctx, x, key, batch_size: int):
        n = x.shape[0]
        nb = n // batch_size
        perm = jax.random.permutation(key, n)[: nb * batch_size]
        xb = x[perm].reshape(nb, batch_size, n_dims)
        cb = ctx[perm].reshape(nb, batch_size, ctx.shape[1])
        state, losses = jax.lax.scan(step, state, (cb, xb))
        return state, jnp.mean(losses)

    epoch_jit = jax.jit(epoch, static_argnums=(4,))
    nll_jit = jax.jit(lambda params, ctx, x: -jnp.mean(log_prob(params, ctx, x)))
    return epoch_jit, nll_jit


def adam_state(params, lr):
    import jax
    import jax.numpy as jnp

    p = jax.tree.map(jnp.asarray, params)
    z = jax.tree.map(jnp.zeros_like, p)
    return (p, z, jax.tree.map(jnp.zeros_like, p), jnp.float32(0.0), jnp.float32(lr))


# ---------------------------------------------------------------------------------------------
# Throughput


def pin(threads: int):
    """Pin this process to `threads` CPUs and set XLA's flags; before jax is imported."""
    allowed = sorted(os.sched_getaffinity(0))
    if threads > len(allowed):
        raise SystemExit(f"{threads} threads asked, {len(allowed)} CPUs allowed")
    os.sched_setaffinity(0, set(allowed[:threads]))
    if threads == 1:
        os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    else:
        os.environ.pop("XLA_FLAGS", None)
    return allowed[:threads]


def throughput_child(args):
    cpus = pin(args.child_threads)
    import jax
    import jax.numpy as jnp
    import numpy as np

    jax.config.update("jax_platforms", "cpu")
    results = []
    for shape in args.shapes.split(","):
        s = SHAPES[shape]
        params, masks, info = init_model(s["n_context"], s["n_dims"], s["hidden"], s["K"], 0)
        rng = np.random.default_rng(1)
        x = jnp.asarray(rng.standard_normal((args.rows, s["n_dims"]), dtype=np.float32))
        ctx = jnp.asarray(rng.standard_normal((args.rows, s["n_context"]), dtype=np.float32))
        epoch, _ = make_functions(s["n_context"], s["n_dims"], s["hidden"], s["K"],
                                  s["activation"], masks)
        for batch in [int(b) for b in args.batches.split(",")]:
            state = adam_state(params, 1e-3)
            key = jax.random.PRNGKey(0)
            t0 = time.perf_counter()
            key, sub = jax.random.split(key)
            state, loss = epoch(state, ctx, x, sub, batch)
            loss.block_until_ready()
            warm = time.perf_counter() - t0
            times = []
            for _ in range(args.epochs):
                key, sub = jax.random.split(key)
                t0 = time.perf_counter()
                state, loss = epoch(state, ctx, x, sub, batch)
                loss.block_until_ready()
                times.append(time.perf_counter() - t0)
            if not math.isfinite(float(loss)):
                raise SystemExit(f"{shape} B={batch}: loss {float(loss)}")
            rows = (args.rows // batch) * batch
            dense, masked, trans = flop_counts(s["n_context"], s["n_dims"], s["hidden"], s["K"],
                                               batch, info["masks"], info["head_mask"])
            results.append(dict(
                shape=shape, n_context=s["n_context"], n_dims=s["n_dims"], hidden=s["hidden"],
                K=s["K"], activation=s["activation"], batch=batch, threads=args.child_threads,
                cpus=cpus, xla_flags=os.environ.get("XLA_FLAGS", ""), rows_per_epoch=rows,
                warmup_seconds=warm, epoch_seconds=times, final_loss=float(loss),
                rows_per_s_median=rows / sorted(times)[len(times) // 2],
                rows_per_s_best=rows / min(times),
                flops_per_row_dense=dense, flops_per_row_masked=masked,
                transcendental_per_row=trans))
    json.dump(results, sys.stdout)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def meta():
    import jax
    import jaxlib
    import numpy as np

    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    fl = line.split()
                    flags = ",".join(x for x in ("avx2", "fma", "avx512f") if x in fl)
                    break
    except OSError:
        pass
    return dict(jax=jax.__version__, jaxlib=jaxlib.__version__, numpy=np.__version__,
                python=platform.python_version(), cpu=cpu_model(), cpu_flags=flags,
                cpus_allowed=len(os.sched_getaffinity(0)), loadavg=os.getloadavg())


def throughput(args):
    results = []
    for threads in [int(t) for t in args.threads.split(",")]:
        cmd = [sys.executable, os.path.abspath(__file__), "--child-threads", str(threads),
               "--shapes", args.shapes, "--batches", args.batches, "--epochs", str(args.epochs),
               "--rows", str(args.rows)]
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
        results += json.loads(out)
    print(f"JAX MADE-MoG training throughput (rows/s, forward + backward + Adam; "
          f"{args.rows} rows, warm-up epoch then {args.epochs} timed epochs; "
          f"CPU: {cpu_model()})")
    print(f"{'shape':8} {'C':>2} {'D':>3} {'H':>4} {'K':>3} {'batch':>6} {'threads':>7} "
          f"{'rows/s median':>14} {'rows/s best':>12} {'GFLOP/s dense':>14} {'warm-up s':>10}")
    for r in results:
        gf = r["rows_per_s_median"] * r["flops_per_row_dense"]["total"] / 1e9
        print(f"{r['shape']:8} {r['n_context']:>2} {r['n_dims']:>3} {r['hidden'][0]:>4} {r['K']:>3} "
              f"{r['batch']:>6} {r['threads']:>7} {r['rows_per_s_median']:>14.4g} "
              f"{r['rows_per_s_best']:>12.4g} {gf:>14.3g} {r['warmup_seconds']:>10.2f}")
    print("\nFLOPs per row (matrix products forward + backward, multiply-add = 2; Adam "
          f"{ADAM_FLOPS_PER_PARAM} per parameter per step / batch):")
    print(f"{'shape':8} {'batch':>6} {'dense fwd':>10} {'dense bwd':>10} {'dense adam':>10} "
          f"{'dense total':>12} {'masked total':>12} {'masked/dense':>12} {'transc.':>8}")
    seen = set()
    for r in results:
        if (r["shape"], r["batch"]) in seen:
            continue
        seen.add((r["shape"], r["batch"]))
        d, m = r["flops_per_row_dense"], r["flops_per_row_masked"]
        print(f"{r['shape']:8} {r['batch']:>6} {d['forward']:>10.0f} {d['backward']:>10.0f} "
              f"{d['adam']:>10.0f} {d['total']:>12.0f} {m['total']:>12.0f} "
              f"{m['total'] / d['total']:>12.3f} {r['transcendental_per_row']:>8}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(meta=meta(), results=results), f, indent=1)
        print(f"\nwrote {args.json}")


# ---------------------------------------------------------------------------------------------
# Known distribution


def known(args):
    import jax
    import jax.numpy as jnp
    import numpy as np

    jax.config.update("jax_platforms", "cpu")
    sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
    import known_density as kd

    hidden, K, B = [args.known_hidden], 10, args.known_batch
    out = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        c_all, x_all = kd.sample(args.known_rows, 100 + seed)
        c_test, x_test = kd.sample(args.known_rows, 10_000 + seed)
        true_nll = -float(np.mean(kd.log_density(c_test, x_test)))
        rng = np.random.default_rng(seed)
        idx = rng.permutation(len(x_all))
        n_val = int(round(0.1 * len(idx)))
        tr, va = idx[n_val:], idx[:n_val]
        xm, xs = x_all[tr].mean(0), x_all[tr].std(0)
        cm, cs = c_all[tr].mean(0), c_all[tr].std(0)
        log_jac = float(np.sum(np.log(xs)))

        def prep(c, x):
            return (jnp.asarray(((c - cm) / cs).astype(np.float32)),
                    jnp.asarray(((x - xm) / xs).astype(np.float32)))

        c_tr, x_tr = prep(c_all[tr], x_all[tr])
        c_va, x_va = prep(c_all[va], x_all[va])
        c_te, x_te = prep(c_test, x_test)
        params, masks, _ = init_model(2, 3, hidden, K, seed)
        epoch, nll = make_functions(2, 3, hidden, K, args.known_activation, masks)
        state = adam_state(params, args.known_lr)
        key = jax.random.PRNGKey(seed)
        best, best_epoch, best_params, bad = math.inf, 0, state[0], 0
        t0 = time.perf_counter()
        e = 0
        for e in range(1, args.known_max_epochs + 1):
            key, sub = jax.random.split(key)
            state, train_loss = epoch(state, c_tr, x_tr, sub, B)
            v = float(nll(state[0], c_va, x_va))
            if v < best:
                best, best_epoch, best_params, bad = v, e, state[0], 0
            else:
                bad += 1
                if bad >= args.known_patience:
                    break
        secs = time.perf_counter() - t0
        test_nll = float(nll(best_params, c_te, x_te)) + log_jac
        r = dict(seed=seed, epochs_run=e, best_epoch=best_epoch,
                 best_validation_nll=best + log_jac, test_nll=test_nll, true_nll=true_nll,
                 gap=test_nll - true_nll, seconds=secs)
        print(f"seed {seed}: {e} epochs (best {best_epoch}), val NLL {best + log_jac:.4f}, "
              f"test NLL {test_nll:.4f}, true NLL {true_nll:.4f}, gap {test_nll - true_nll:+.4f} "
              f"nats/row ({secs:.0f} s)", flush=True)
        out.append(r)
    gaps = [r["gap"] for r in out]
    print(f"gap over seeds: min {min(gaps):+.4f}, mean {np.mean(gaps):+.4f}, max {max(gaps):+.4f} "
          f"(H = {hidden[0]} {args.known_activation}, K = {K}, B = {B}, lr {args.known_lr}, "
          f"patience {args.known_patience}, {args.known_rows} rows 90/10, test {args.known_rows})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(meta=meta(), settings=dict(
                hidden=hidden, activation=args.known_activation, K=K, batch=B, lr=args.known_lr,
                patience=args.known_patience, rows=args.known_rows), known=out), f, indent=1)
        print(f"wrote {args.json}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="secret,single", help="comma list of: " + ",".join(SHAPES))
    ap.add_argument("--batches", default="50,512")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs after the warm-up epoch")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--json", default=None, help="write the figures to this JSON file")
    ap.add_argument("--known", action="store_true", help="accuracy run on the known distribution")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--known-hidden", type=int, default=128)
    ap.add_argument("--known-activation", default="sigmoid", choices=["sigmoid", "tanh", "relu"])
    ap.add_argument("--known-batch", type=int, default=64)
    ap.add_argument("--known-lr", type=float, default=1e-3)
    ap.add_argument("--known-patience", type=int, default=20)
    ap.add_argument("--known-max-epochs", type=int, default=1000)
    ap.add_argument("--known-rows", type=int, default=50_000)
    ap.add_argument("--child-threads", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_threads:
        throughput_child(args)
    elif args.known:
        known(args)
    else:
        throughput(args)


if __name__ == "__main__":
    main()
