import glob
import os

import numpy as np
import pytest

import crkernels as crk
from conftest import MADE_DATA
from safetensors_np import read

CASES = sorted(
    os.path.basename(p)[: -len(".expected.safetensors")]
    for p in glob.glob(os.path.join(MADE_DATA, "*.expected.safetensors"))
)


def load(name):
    expected, meta = read(os.path.join(MADE_DATA, name + ".expected.safetensors"))
    kwargs = {}
    if "activation" in meta:
        kwargs["activation"] = meta["activation"]
    if "epsilon" in meta:
        kwargs["epsilon"] = float(meta["epsilon"])
    if "sbi_dummy_input" in meta:
        kwargs["sbi_dummy_input"] = meta["sbi_dummy_input"] == "true"
    return crk.Made(os.path.join(MADE_DATA, name + ".safetensors"), **kwargs), expected


def test_reference_cases_present():
    assert len(CASES) >= 10


@pytest.mark.parametrize("name", CASES)
def test_log_prob_matches_float64_reference(name):
    made, expected = load(name)
    with made:
        x = expected["x"].astype(np.float32)
        context = expected["context"].astype(np.float32) if "context" in expected else None
        ref = expected["log_prob"]
        assert made.n_dims == x.shape[1]
        assert made.n_context == (0 if context is None else context.shape[1])
        one = made.log_prob(x, context, n_threads=1)
        two = made.log_prob(x, context, n_threads=2)
        assert one.dtype == np.float32 and one.shape == ref.shape
        assert np.array_equal(one, two)
        err = np.abs(one.astype(np.float64) - ref) / np.maximum(np.abs(ref), 1.0)
        assert err.max() <= 1e-5, f"{name}: worst scaled error {err.max():.2e}"


@pytest.mark.parametrize("name", ["plain_h1_sigmoid_k10_ctxsecret_std", "plain_d1_noctx",
                                  "nflows_bare_ctx_bn_2blk_k5"])
def test_log_prob_grad_matches_float64_reference(name):
    made, _ = load(name)
    ref, _ = read(os.path.join(MADE_DATA, name + ".grad.safetensors"))
    with made:
        x = ref["x"].astype(np.float32)
        context = ref["context"].astype(np.float32) if "context" in ref else None
        lp, gc, gx = made.log_prob_grad(x, context, n_threads=2)
        assert np.array_equal(lp, made.log_prob(x, context, n_threads=1))
        assert gx.shape == x.shape and gc.shape == (x.shape[0], made.n_context)
        _, gc1, gx1 = made.log_prob_grad(x, context, n_threads=1)
        assert np.array_equal(gx, gx1) and np.array_equal(gc, gc1)
        for ours, key in ((gx, "grad_x"), (gc, "grad_context")):
            if key in ref:
                err = np.abs(ours - ref[key]) / np.maximum(np.abs(ref[key]), 1.0)
                assert err.max() <= 1e-4, f"{name} {key}: {err.max():.2e}"
        bad = x.copy()
        bad[0, 0] = np.nan
        with pytest.raises(crk.InvalidArgument):
            made.log_prob_grad(bad, context)


def test_load_from_bytes_equals_file():
    name = "plain_h1_sigmoid_k10_ctxsecret_std"
    made, expected = load(name)
    with open(os.path.join(MADE_DATA, name + ".safetensors"), "rb") as f:
        other = crk.Made.from_bytes(f.read())
    with made, other:
        assert other.dims == made.dims
        x, c = expected["x"], expected["context"]
        assert np.array_equal(made.log_prob(x, c), other.log_prob(x, c))


@pytest.mark.parametrize("name", ["plain_h2_leaky_relu_k3_ctxsecret_std", "plain_h1_elu_k5_ctx0_std", "secret_shape"])
def test_save_and_load_gives_the_same_model(name, tmp_path):
    made, expected = load(name)
    path = tmp_path / "saved.safetensors"
    with made:
        made.save(path)
        with crk.Made(path) as again:
            x, c = expected["x"], expected.get("context")
            assert again.dims == made.dims
            assert np.array_equal(again.log_prob(x, c), made.log_prob(x, c))
            n = 50
            sc = None if c is None else np.repeat(c[:1], n, axis=0)
            assert np.array_equal(again.sample(n=n, context=sc, seed=3), made.sample(n=n, context=sc, seed=3))
        tensors, meta = read(str(path))
        assert meta["format"] == "crkernels.made.v1"
        with pytest.raises(crk.Io):
            made.save(tmp_path)
    nflows, _ = load("nflows_sbi_ctx_2blk_k5")
    with nflows, pytest.raises(crk.InvalidArgument):
        nflows.save(tmp_path / "nflows.safetensors")


def test_sample_and_sample_given():
    made, expected = load("plain_h2_sigmoid_k3_ctx0_samples")
    with made:
        c = np.repeat(expected["context"][:1], 500, axis=0)
        s1 = made.sample(context=c, seed=3, n_threads=1)
        s2 = made.sample(context=c, seed=3, n_threads=2)
        assert s1.shape == (500, made.n_dims) and s1.dtype == np.float32
        assert np.array_equal(s1, s2) and np.isfinite(s1).all()
        assert not np.array_equal(s1, made.sample(context=c, seed=4))
        order = made.order()
        assert sorted(order.tolist()) == list(range(made.n_dims))
        x = s1.copy()
        x[:, order[0]] = 0.25
        g = made.sample_given(x, [order[0]], context=c, seed=9)
        assert np.all(g[:, order[0]] == np.float32(0.25))
        assert np.array_equal(x[:, order[0]], np.full(500, 0.25, np.float32))  # input untouched
        if made.n_dims > 1:
            assert not np.array_equal(g[:, order[1]], x[:, order[1]])


def test_sample_split_by_first_row_equals_one_call():
    # Row r of the sample with seed s is drawn from the Philox stream (s, r): 5000 rows in one
    # call equal calls of 1234 and 3766 rows with first_row 0 and 1234 (crk_made_sample_from),
    # for sample and sample_given, and whatever the thread count.
    made, expected = load("plain_h1_sigmoid_k10_ctxsecret_std")
    with made:
        c = np.resize(expected["context"], (5000, made.n_context)).astype(np.float32)
        whole = made.sample(context=c, seed=11, n_threads=1)
        assert np.array_equal(whole, made.sample(context=c, seed=11, n_threads=3))
        head = made.sample(context=c[:1234], seed=11, n_threads=2)
        tail = made.sample(context=c[1234:], seed=11, n_threads=2, first_row=1234)
        assert np.array_equal(np.concatenate([head, tail]), whole)
        assert not np.array_equal(tail, made.sample(context=c[1234:], seed=11))
        order = made.order()
        x = whole.copy()
        x[:, order[0]] = 0.5
        given = made.sample_given(x, [order[0]], context=c, seed=5)
        parts = [made.sample_given(x[a:b], [order[0]], context=c[a:b], seed=5, first_row=a)
                 for a, b in ((0, 1234), (1234, 5000))]
        assert np.array_equal(np.concatenate(parts), given)
        with pytest.raises(crk.InvalidArgument, match="overflow"):
            made.sample(context=c[:100], seed=11, first_row=2**64 - 10)
        for bad in (-1, 2**64):
            with pytest.raises(crk.InvalidArgument, match="first_row"):
                made.sample(context=c[:100], seed=11, first_row=bad)


def test_sample_without_context():
    made, _ = load("plain_h1_tanh_k3_std_samples")
    with made:
        assert made.n_context == 0
        s = made.sample(100, seed=1)
        assert s.shape == (100, 3)


def test_bad_input_and_files():
    with pytest.raises(crk.Io):
        crk.Made(os.path.join(MADE_DATA, "does_not_exist.safetensors"))
    for bad in ("bad_format", "bad_shape", "bad_degrees", "bad_context_degree"):
        with pytest.raises(crk.Format):
            crk.Made(os.path.join(MADE_DATA, bad + ".safetensors"))
    with pytest.raises(crk.Format):
        crk.Made.from_bytes(b"not a safetensors file")
    made, expected = load("plain_h1_sigmoid_k10_ctxsecret_std")
    with made:
        x = expected["x"].copy()
        x[3, 1] = np.nan
        with pytest.raises(crk.InvalidArgument):
            made.log_prob(x, expected["context"])
        with pytest.raises(crk.InvalidArgument):
            made.log_prob(np.zeros((0, made.n_dims)), np.zeros((0, made.n_context)))
        with pytest.raises(crk.InvalidArgument):
            made.sample_given(expected["x"], [made.order()[-1]], expected["context"])
        with pytest.raises(crk.InvalidArgument):
            made.log_prob(expected["x"])  # context missing
        with pytest.raises(crk.InvalidArgument):
            made.log_prob(expected["x"], expected["context"][:5])


def test_gpu_raises_no_device(no_gpu):
    made, expected = load("plain_h1_sigmoid_k10_ctxsecret_std")
    with made:
        x, c = expected["x"], expected["context"]
        with pytest.raises(crk.NoDevice):
            made.log_prob_gpu(x, c, device=0)
        with pytest.raises(crk.NoDevice):
            made.log_prob_gpu_device(0x1000, len(x), 0x2000, context_device=0x3000, device=0)
        with pytest.raises(crk.NoDevice):
            made.sample_gpu_device(len(x), 0x2000, context_device=0x3000, seed=1, device=0)
        with pytest.raises(crk.NoDevice):
            made.sample_gpu(context=c, seed=1, device=0)
        with pytest.raises(crk.NoDevice):
            made.sample_given_gpu(x, [made.order()[0]], c, seed=1, device=0)
        with pytest.raises(crk.NoDevice):
            made.sample_gpu(context=c, seed=1, device=0, first_row=7)
        with pytest.raises(crk.NoDevice):
            made.sample_given_gpu(x, [made.order()[0]], c, seed=1, device=0, first_row=7)
        with pytest.raises(crk.NoDevice):
            made.sample_gpu_device(len(x), 0x2000, context_device=0x3000, seed=1, device=0, first_row=7)


def test_workspace_bytes_follows_the_documented_formula():
    # crk_made_workspace_bytes: 4 x 16 (sum over buffers of (C + units) + 3 D K)
    # + 8 (4 K + 16 K) + 8 x layers; this model: C = 3, D = 4, K = 10, one hidden layer of 40.
    made, _ = load("plain_h1_sigmoid_k10_ctxsecret_std")
    with made:
        c, d, k, h = 3, 4, 10, 40
        assert made.dims == (c, d, k)
        assert made.workspace_bytes == 4 * 16 * ((c + d) + (c + h) + 3 * d * k) + 8 * (4 * k + 16 * k) + 8
