import itertools

import numpy as np
import pytest

import crkernels as crk


def problem(n=400, p=4, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2.0, 2.0, (n, p)) * np.array([1.0, 10.0, 0.1, 3.0])[:p] + 5.0
    z = (x - 5.0) / np.array([1.0, 10.0, 0.1, 3.0])[:p]
    y = 40.0 + 0.5 * np.sum((z - 0.3) ** 2 * (1.0 + 0.2 * np.arange(p)), axis=1) + 0.05 * z[:, 0] ** 3
    return x, y


def features(z, degree):
    """scikit-learn's PolynomialFeatures(degree, include_bias=False) order."""
    cols = []
    for d in range(1, degree + 1):
        for combo in itertools.combinations_with_replacement(range(z.shape[1]), d):
            cols.append(np.prod(z[:, list(combo)], axis=1))
    return np.stack(cols, axis=1)


def ridge_reference(x, y, degree, alpha):
    """The documented algorithm with unit weights, refit on all points, in NumPy."""
    start = int(np.argmin(y))
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    zp = z - z[start]
    yp = (y - y[start]) / y.std()
    phi = features(zp, degree)
    return np.linalg.solve(phi.T @ phi + alpha * np.eye(phi.shape[1]), phi.T @ yp)


def test_surrogate_matches_numpy_and_any_thread_count():
    x, y = problem()
    alphas = [1e-6, 1e-3, 1e-1]
    fits = [crk.Surrogate(x, y, degrees=(1, 2), alphas=alphas, weighting="none", n_threads=t) for t in (1, 2, 0, None)]
    s = fits[0]
    assert s.n_features == crk.polynomial_feature_count(4, s.degree)
    beta = ridge_reference(x, y, s.degree, s.alpha)
    np.testing.assert_allclose(s.coefficients, beta, rtol=0, atol=1e-8 * np.abs(beta).max())
    for other in fits[1:]:
        assert other.coefficients.tobytes() == s.coefficients.tobytes()
        assert other.validation_scores.tobytes() == s.validation_scores.tobytes()
    assert s.validation_scores.shape == (2 * len(alphas),)
    point, step = s.propose_step(1.0)
    assert point.shape == (4,) and step["distance"] > 0
    np.testing.assert_allclose(s.predict(point), step["predicted_nll"], rtol=1e-9)
    assert s.gradient(x[s.start_index]).shape == (4,)
    for f in fits:
        f.close()


def test_surrogate_errors():
    x, y = problem(n=50)
    with pytest.raises(crk.InvalidArgument):
        crk.Surrogate(x, y, degrees=(11,), alphas=[1e-3])
    with pytest.raises(ValueError):
        crk.Surrogate(x, y, weighting="bogus")
