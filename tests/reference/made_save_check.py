#!/usr/bin/env python3
"""Checks files written by crkernels' MADE saver (crk_made_save, crkernels::emulator::save_made)
with the official `safetensors` package: each saved file must hold the same model as the
original file it was loaded from.

    .venv-ref/bin/python tests/reference/made_save_check.py ORIGINAL SAVED [ORIGINAL SAVED ...]

(the venv of made_reference.py: tests/reference/requirements-made.txt). tests/made_save.rs
runs it on every plain model of tests/data/made. For each pair:

  * the saved file opens with safetensors.safe_open and safetensors.numpy.load_file (the
    official parser, not made_reference.py's reader, which reads the original: it handles
    BF16);
  * metadata format, n_context, n_dims, n_components, activation equal the original's;
  * the same tensor names, except that a standardisation pair that is the identity (means 0,
    standard deviations 1) may be left out; the same shapes; degrees equal; every float
    tensor equals the original's as stored (F16/BF16 widened exactly) with the masks applied:
    the saver writes zeros outside the masks, so a file with weights there (plain_unmasked)
    compares its masked weights;
  * made_reference.PlainMade of the saved file gives the original's log-densities exactly on a
    few random rows.
"""

from __future__ import annotations

import os
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import made_reference as mr  # noqa: E402

KEYS = ("format", "n_context", "n_dims", "n_components", "activation")


def masked(t, meta):
    """The original's float tensors as float64, with the masks applied to the weights."""
    model = mr.PlainMade(t, meta)
    out = {k: mr.f64(v) for k, v in t.items() if np.asarray(v).dtype.kind not in "iu"}
    for i, (w, _) in enumerate(model.layers):
        out[f"hidden.{i}.weight"] = w
    for name, (w, _) in zip(("logits", "means", "log_scales"), model.heads):
        out[f"output.{name}.weight"] = w
    return out, model


def check(original, saved):
    t, meta = mr.read_safetensors(original)
    with safe_open(saved, framework="np") as f:
        saved_meta = f.metadata()
        keys = set(f.keys())
    s = load_file(saved)
    assert set(s) == keys, saved
    for k in KEYS:
        assert saved_meta.get(k) == meta.get(k), (saved, k, saved_meta.get(k), meta.get(k))
    expected, model = masked(t, meta)
    missing = set(t) - keys
    for pair in (("standardize.x_mean", "standardize.x_std"),
                 ("standardize.context_mean", "standardize.context_std")):
        if pair[0] in missing:
            assert pair[1] in missing, (saved, pair)
            assert np.all(mr.f64(t[pair[0]]) == 0) and np.all(mr.f64(t[pair[1]]) == 1), (saved, pair)
            missing -= set(pair)
    assert not missing and keys <= set(t), (saved, missing, keys - set(t))
    for k in keys:
        a = s[k]
        assert a.shape == np.asarray(t[k]).shape, (saved, k, a.shape)
        if a.dtype.kind == "f":
            assert a.dtype == np.float32, (saved, k, a.dtype)
            assert np.array_equal(mr.f64(a), expected[k]), (saved, k)
        else:
            assert np.array_equal(a.astype(np.int64), np.asarray(t[k]).astype(np.int64)), (saved, k)
    back = mr.PlainMade(s, saved_meta)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, model.D)) * model.xs + model.xm
    c = rng.standard_normal((8, model.C)) * model.cs + model.cm
    assert np.array_equal(back.log_prob(x, c), model.log_prob(x, c)), saved
    return len(keys)


def main(args):
    if len(args) % 2 or not args:
        print(__doc__, file=sys.stderr)
        return 2
    for original, saved in zip(args[::2], args[1::2]):
        n = check(original, saved)
        print(f"{os.path.basename(original)}: saved copy has the same {n} tensors")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
