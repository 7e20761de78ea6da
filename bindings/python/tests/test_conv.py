import numpy as np
import pytest

import crkernels as crk

RNG = np.random.default_rng(12345)


def conv2d_ref(x, w, b, stride, padding, dilation, groups):
    """Direct-loop float64 conv2d (cross-correlation) with symmetric zero padding."""
    n, c_in, h, wd = x.shape
    c_out, cpg, kh, kw = w.shape
    xp = np.zeros((n, c_in, h + 2 * padding[0], wd + 2 * padding[1]))
    xp[:, :, padding[0] : padding[0] + h, padding[1] : padding[1] + wd] = x
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, c_out, ho, wo))
    opg = c_out // groups
    for i in range(n):
        for o in range(c_out):
            g = o // opg
            for y in range(ho):
                for xx in range(wo):
                    s = 0.0 if b is None else float(b[o])
                    for c in range(cpg):
                        for a in range(kh):
                            for bb in range(kw):
                                s += w[o, c, a, bb] * xp[i, g * cpg + c, y * stride[0] + a * dilation[0],
                                                         xx * stride[1] + bb * dilation[1]]
                    out[i, o, y, xx] = s
    return out


@pytest.mark.parametrize(
    "stride,padding,dilation,groups,bias",
    [((1, 1), (0, 0), (1, 1), 1, True), ((2, 1), (1, 2), (1, 2), 2, False), ((1, 2), (2, 1), (2, 1), 4, True)],
)
def test_conv2d_matches_direct_loop(stride, padding, dilation, groups, bias):
    x = RNG.standard_normal((2, 4, 7, 6)).astype(np.float32)
    w = RNG.standard_normal((4, 4 // groups, 3, 2)).astype(np.float32)
    b = RNG.standard_normal(4).astype(np.float32) if bias else None
    out = crk.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    ref = conv2d_ref(x.astype(np.float64), w.astype(np.float64), b, stride, padding, dilation, groups)
    assert out.dtype == np.float32 and out.shape == ref.shape
    assert out.shape[2:] == crk.conv2d_output_shape(7, 6, 3, 2, stride, padding, dilation)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_conv2d_accepts_non_contiguous_float64_input():
    x = RNG.standard_normal((6, 3, 5, 2))  # float64, transposed below
    w = RNG.standard_normal((2, 3, 2, 2))
    xt = x.transpose(3, 1, 2, 0)  # [2, 3, 5, 6], not contiguous
    out = crk.conv2d(xt, w)
    np.testing.assert_allclose(out, conv2d_ref(xt, w, None, (1, 1), (0, 0), (1, 1), 1), rtol=1e-5, atol=1e-5)


def test_conv1d_matches_conv2d_reference():
    x = RNG.standard_normal((3, 2, 11)).astype(np.float32)
    w = RNG.standard_normal((5, 2, 3)).astype(np.float32)
    b = RNG.standard_normal(5).astype(np.float32)
    out = crk.conv1d(x, w, b, stride=2, padding=1, dilation=2)
    ref = conv2d_ref(x[:, :, None, :].astype(np.float64), w[:, :, None, :].astype(np.float64), b,
                     (1, 2), (0, 1), (1, 2), 1)[:, :, 0, :]
    assert out.shape == ref.shape and out.shape[2] == crk.conv1d_output_length(11, 3, 2, 1, 2)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_threads_give_the_same_numbers_and_name_bad_inputs():
    x = RNG.standard_normal((37, 8, 8, 8)).astype(np.float32)
    w = RNG.standard_normal((16, 8, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(16).astype(np.float32)
    one = crk.conv2d(x, w, b, padding=1)
    ref = conv2d_ref(x[:2].astype(np.float64), w.astype(np.float64), b, (1, 1), (1, 1), (1, 1), 1)
    np.testing.assert_allclose(one[:2], ref, rtol=1e-5, atol=1e-5)
    for threads in (0, 2, 3):
        np.testing.assert_array_equal(crk.conv2d(x, w, b, padding=1, threads=threads), one)
    x1, w1 = x[:, :, 0, :], w[:, :, 0, :]
    np.testing.assert_array_equal(crk.conv1d(x1, w1, b, padding=1, threads=2), crk.conv1d(x1, w1, b, padding=1))
    x[30, 5, 2, 7] = np.nan
    bad = 30 * 8 * 64 + 5 * 64 + 2 * 8 + 7
    with pytest.raises(crk.InvalidArgument, match=rf"input\[{bad}\] is NaN"):
        crk.conv2d(x, w, b, padding=1, threads=2)


def test_pooling():
    x = RNG.standard_normal((2, 3, 6, 4)).astype(np.float32)
    mp = crk.maxpool2d(x, 2)
    np.testing.assert_array_equal(mp, x.reshape(2, 3, 3, 2, 2, 2).max(axis=(3, 5)))
    ap = crk.avgpool2d(x, (2, 2))
    np.testing.assert_allclose(ap, x.reshape(2, 3, 3, 2, 2, 2).mean(axis=(3, 5)), rtol=1e-6, atol=1e-6)
    assert crk.pool2d_output_shape(6, 4, 3, 1, 1) == (6, 4)
    x1 = RNG.standard_normal((2, 3, 8)).astype(np.float32)
    np.testing.assert_array_equal(crk.maxpool1d(x1, 2), x1.reshape(2, 3, 4, 2).max(axis=3))
    np.testing.assert_allclose(crk.avgpool1d(x1, 4), x1.reshape(2, 3, 2, 4).mean(axis=3), rtol=1e-6, atol=1e-6)
    # padding excluded from the divisor
    pad = crk.avgpool1d(np.ones((1, 1, 4), np.float32), 3, stride=1, padding=1, count_include_pad=False)
    np.testing.assert_allclose(pad, np.ones((1, 1, 4)), rtol=1e-6)
    np.testing.assert_allclose(crk.global_avgpool(x), x.mean(axis=(2, 3)), rtol=1e-5, atol=1e-6)


def test_bad_input():
    x = np.ones((1, 2, 4, 4), np.float32)
    w = np.ones((2, 2, 3, 3), np.float32)
    bad = x.copy()
    bad[0, 1, 2, 2] = np.inf
    with pytest.raises(crk.InvalidArgument):
        crk.conv2d(bad, w)
    with pytest.raises(crk.InvalidArgument):
        crk.conv2d(x, np.ones((2, 2, 7, 7), np.float32))  # kernel larger than the input
    with pytest.raises(crk.InvalidArgument):
        crk.conv2d(x, w, stride=0)
    with pytest.raises(crk.InvalidArgument):
        crk.conv2d(np.ones((0, 2, 4, 4), np.float32), w)
    with pytest.raises(crk.InvalidArgument):
        crk.conv2d_output_shape(4, 4, 3, 3, stride=0)
    with pytest.raises(crk.InvalidArgument):
        crk.maxpool2d(x, 2, padding=2)


def test_gpu_raises_no_device(no_gpu):
    x = np.ones((1, 2, 4, 4), np.float32)
    w = np.ones((2, 2, 3, 3), np.float32)
    with pytest.raises(crk.NoDevice):
        crk.conv2d_gpu(x, w, device=0)
    with pytest.raises(crk.NoDevice):
        crk.conv1d_gpu(x[:, :, 0, :], w[:, :, 0, :], device=0)
    for fn in (crk.maxpool2d, crk.avgpool2d):
        with pytest.raises(crk.NoDevice):
            fn(x, 2, device=0)
    for fn in (crk.maxpool1d, crk.avgpool1d):
        with pytest.raises(crk.NoDevice):
            fn(x[:, :, 0, :], 2, device=0)
    with pytest.raises(crk.NoDevice):
        crk.global_avgpool(x, device=0)
    # Device arrays: the device is looked for before any device memory is read.
    with pytest.raises(crk.NoDevice):
        crk.conv2d_gpu_device(0x1000, x.shape, w, out_device=0x2000, device=0)
    with pytest.raises(crk.NoDevice):
        crk.conv1d_gpu_device(0x1000, (1, 2, 4), w[:, :, 0, :], out_device=0x2000, device=0)
    with pytest.raises(crk.NullPointer):
        crk.conv2d_gpu_device(0, x.shape, w, out_device=0x2000, device=0)
