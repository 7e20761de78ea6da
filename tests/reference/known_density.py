#!/usr/bin/env python3
"""A known conditional, non-Gaussian, heavy-tailed distribution with an exact log-density, for
testing MADE-MoG trainers (issue 16, "Training" accuracy): train on samples, compare the model's
NLL on an independent test set with the true NLL computed here.

Context c = (c1, c2) ~ uniform on [-1, 1]^2 (the test conditions on it: only log p(x | c) is
scored). Data x = (x1, x2, x3), drawn in that order:

  x1 | c       ~ Student-t, nu = 4 degrees of freedom (heavy tails: only moments < 4 exist),
                 location m1 = 0.5 c1 + 0.3 sin(pi c2), scale s1 = 0.5 exp(0.3 c2 - 0.2 c1)
  x2 | x1, c   ~ Normal, mean m2 = 1.2 tanh(2 x1) + 0.4 c2 (nonlinear, saturating in x1),
                 standard deviation s2 = 0.25 exp(0.4 c1)
  x3 | x1,x2,c ~ shifted log-normal (right-skewed): x3 = a3 + exp(mu3 + s3 Z), Z ~ N(0, 1),
                 shift a3 = 0.5 x2 - 1, mu3 = 0.25 tanh(x1) - 0.2 c2, s3 = 0.4 + 0.15 c1

log p(x | c) = log t_4((x1 - m1) / s1) - ln s1 + log N(x2; m2, s2^2)
               + [x3 > a3] (-ln y - ln s3 - ln sqrt(2 pi) - (ln y - mu3)^2 / (2 s3^2)), y = x3 - a3
(-inf where x3 <= a3). The same formulas are in tests/train_support/mod.rs (Rust sampler and
density); this file computes the density with scipy.stats (t, norm, lognorm), an independent
implementation, and samples with NumPy's generator (t via standard_t).

    python3 -m venv .venv-bench && .venv-bench/bin/pip install -r bench/requirements-train.txt
    .venv-bench/bin/python tests/reference/known_density.py --fixture
        writes tests/data/train/known_density_points.json: 400 points (c, x) with their exact
        log-density (scipy.stats), and a Monte Carlo estimate of E[log p(x | c)] over the joint
        distribution (c uniform) from 1e7 NumPy samples, with its standard error, which the
        Rust sampler's own estimate must match.
    .venv-bench/bin/python tests/reference/known_density.py --entropy [--n 10000000]
        prints that Monte Carlo estimate only.

The module also exports sample(n, seed) -> (c [n,2], x [n,3]) and log_density(c, x) -> [n], which
bench/made_train_jax.py --known uses.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
from scipy import stats

NU = 4.0
N_CONTEXT = 2
N_DIMS = 3


def params(c: np.ndarray, x: np.ndarray | None = None):
    """The conditional parameters for rows c [n,2] (and x [n,3] for the later factors)."""
    c1, c2 = c[:, 0], c[:, 1]
    m1 = 0.5 * c1 + 0.3 * np.sin(np.pi * c2)
    s1 = 0.5 * np.exp(0.3 * c2 - 0.2 * c1)
    s2 = 0.25 * np.exp(0.4 * c1)
    s3 = 0.4 + 0.15 * c1
    out = {"m1": m1, "s1": s1, "s2": s2, "s3": s3}
    if x is not None:
        out["m2"] = 1.2 * np.tanh(2.0 * x[:, 0]) + 0.4 * c2
        out["a3"] = 0.5 * x[:, 1] - 1.0
        out["mu3"] = 0.25 * np.tanh(x[:, 0]) - 0.2 * c2
    return out


def sample(n: int, seed: int):
    """n draws of (c, x) from the joint distribution (c uniform on [-1,1]^2), float64."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(-1.0, 1.0, size=(n, N_CONTEXT))
    p = params(c)
    x = np.empty((n, N_DIMS))
    x[:, 0] = p["m1"] + p["s1"] * rng.standard_t(NU, size=n)
    x[:, 1] = 1.2 * np.tanh(2.0 * x[:, 0]) + 0.4 * c[:, 1] + p["s2"] * rng.standard_normal(n)
    mu3 = 0.25 * np.tanh(x[:, 0]) - 0.2 * c[:, 1]
    x[:, 2] = 0.5 * x[:, 1] - 1.0 + np.exp(mu3 + p["s3"] * rng.standard_normal(n))
    return c, x


def log_density_factors(c: np.ndarray, x: np.ndarray) -> np.ndarray:
    """[n, 3]: log p(x1 | c), log p(x2 | x1, c), log p(x3 | x1, x2, c), with scipy.stats."""
    p = params(c, x)
    f1 = stats.t.logpdf(x[:, 0], df=NU, loc=p["m1"], scale=p["s1"])
    f2 = stats.norm.logpdf(x[:, 1], loc=p["m2"], scale=p["s2"])
    f3 = stats.lognorm.logpdf(x[:, 2], s=p["s3"], loc=p["a3"], scale=np.exp(p["mu3"]))
    return np.stack([f1, f2, f3], axis=1)


def log_density(c: np.ndarray, x: np.ndarray) -> np.ndarray:
    """log p(x | c) per row (nats)."""
    return log_density_factors(c, x).sum(axis=1)


def mc_mean_log_density(n: int, seed: int):
    """E[log p(x | c)] over the joint distribution: mean and standard error from n samples."""
    total, total2, done, chunk = 0.0, 0.0, 0, 500_000
    k = 0
    while done < n:
        m = min(chunk, n - done)
        c, x = sample(m, seed + 1000 * k)
        lp = log_density(c, x)
        total += lp.sum()
        total2 += (lp * lp).sum()
        done += m
        k += 1
    mean = total / n
    var = total2 / n - mean * mean
    return mean, float(np.sqrt(var / n))


def fixture_points(seed: int = 16):
    """400 points: 300 typical draws, 100 off the typical set (far tails of x1 and x2, x3 just
    above its shift and far above it, contexts at the corners)."""
    rng = np.random.default_rng(seed)
    c, x = sample(300, seed)
    c_off = rng.uniform(-1.0, 1.0, size=(100, 2))
    c_off[:8] = [[-1, -1], [-1, 1], [1, -1], [1, 1], [0, 0], [1, 0], [0, -1], [-1, 0]]
    x_off = np.empty((100, 3))
    x_off[:, 0] = rng.choice([-1.0, 1.0], 100) * 10.0 ** rng.uniform(-3, 2, 100)
    x_off[:, 1] = rng.normal(0, 3, 100)
    a3 = 0.5 * x_off[:, 1] - 1.0
    x_off[:, 2] = a3 + 10.0 ** rng.uniform(-1.3, 1.3, 100)
    return np.concatenate([c, c_off]), np.concatenate([x, x_off])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixture", action="store_true", help="write tests/data/train/known_density_points.json")
    ap.add_argument("--entropy", action="store_true", help="print the Monte Carlo E[log p(x | c)]")
    ap.add_argument("--n", type=int, default=10_000_000, help="Monte Carlo sample size")
    args = ap.parse_args()
    if not (args.fixture or args.entropy):
        ap.print_help()
        return
    mean, se = mc_mean_log_density(args.n, 2024)
    print(f"E[log p(x | c)] = {mean:.6f} +- {se:.6f} (n = {args.n}, NumPy sampler, scipy density)")
    if args.fixture:
        c, x = fixture_points()
        f = log_density_factors(c, x)
        assert np.all(np.isfinite(f))
        root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
        out = os.path.join(root, "tests", "data", "train", "known_density_points.json")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        doc = {
            "source": "tests/reference/known_density.py --fixture (scipy.stats t, norm, lognorm)",
            "nu": NU,
            "mc_mean_log_density": {"n": args.n, "mean": mean, "stderr": se},
            "points": [
                {"c": [float(v) for v in c[i]], "x": [float(v) for v in x[i]],
                 "factors": [float(v) for v in f[i]], "log_density": float(f[i].sum())}
                for i in range(len(c))
            ],
        }
        with open(out, "w") as fh:
            # one point per line
            points = doc.pop("points")
            text = json.dumps(doc, indent=1)[:-2]
            text += ',\n "points": [\n' + ",\n".join(json.dumps(q) for q in points) + "\n ]\n}\n"
            fh.write(text)
        print(f"wrote {out} ({len(c)} points)")


if __name__ == "__main__":
    main()
