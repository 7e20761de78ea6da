"""crkernels.two_sample_test: separated Gaussians reach the Bayes accuracy Phi(delta/2), one
distribution gives 0.5 within 3 standard errors, the same seed gives the same report, bad
input raises."""

import math

import numpy as np
import pytest

import crkernels


def test_defaults_are_the_papers():
    o = crkernels.two_sample_options_default()
    assert o["hidden_units"] == [32] and o["max_epochs"] == 100 and o["learning_rate"] == 1e-3
    assert (o["validation_fraction"], o["test_fraction"], o["batch_size"]) == (0.1, 0.1, 50)


def test_gaussians_and_null():
    rng = np.random.default_rng(1)
    n, d = 10000, 4
    a = rng.standard_normal((n, d))
    b = rng.standard_normal((n, d))
    b[:, 0] += 1.0
    r = crkernels.two_sample_test(a, b, max_epochs=10, test_fraction=0.2, seed=3)
    bayes = 0.5 * math.erfc(-0.5 / math.sqrt(2.0))
    se = math.sqrt(bayes * (1 - bayes) / r["n_test"])
    assert abs(r["test_accuracy"] - bayes) < 3.5 * se, r
    assert r == crkernels.two_sample_test(a, b, max_epochs=10, test_fraction=0.2, seed=3)
    null = crkernels.two_sample_test(a, rng.standard_normal((n, d)), max_epochs=5, seed=3)
    assert abs(null["test_accuracy"] - 0.5) < 3 * null["null_standard_error"], null


def test_bad_input():
    a = np.zeros((500, 2)) + np.arange(2)
    b = np.random.default_rng(0).standard_normal((500, 2))
    with pytest.raises(crkernels.InvalidArgument, match="zero variance"):
        crkernels.two_sample_test(a, a)
    b2 = b.copy()
    b2[3, 1] = np.nan
    with pytest.raises(crkernels.InvalidArgument, match="b row 3 column 1"):
        crkernels.two_sample_test(b, b2)
    with pytest.raises(crkernels.InvalidArgument, match="learning_rate"):
        crkernels.two_sample_test(b, b, learning_rate=0.0)
    with pytest.raises(crkernels.InvalidArgument, match="too few rows"):
        crkernels.two_sample_test(b[:10], b)
    with pytest.raises(ValueError):
        crkernels.two_sample_test(b, b, hidden_units=[4] * 9)
