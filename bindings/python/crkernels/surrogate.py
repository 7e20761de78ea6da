"""The ridge-regression surrogate of a likelihood and its gradient step (crk_surrogate_*).

Points x in the caller's units, NLL values y; the algorithm of seed 000 (standard scaling,
shift to the start point, polynomial features, weighted ridge, 90/10 choice of degree and
alpha with validation indices i % 10 == 9, refit on all points), as documented in
crkernels::stats::surrogate.
"""

import ctypes

import numpy as np

from . import _native
from ._native import _lib, check, crk_surrogate_info, crk_surrogate_options, crk_surrogate_step, dptr, f64

WEIGHTINGS = {"none": 0, "distance": 1, "exponential": 2, "custom": 3}


def polynomial_feature_count(n_params, degree):
    """C(n_params + degree, degree) - 1: the features of total degree 1..degree
    (crk_polynomial_feature_count)."""
    out = ctypes.c_size_t()
    check(_lib.crk_polynomial_feature_count(int(n_params), int(degree), ctypes.byref(out)),
          "crk_polynomial_feature_count")
    return out.value


class Surrogate(_native.Handle):
    """A fitted surrogate of the NLL values `nll` (n) at the points `x` (n x p)
    (crk_surrogate_fit, or crk_surrogate_fit_threads where `n_threads` is given): candidate
    `degrees` and `alphas`, `weighting` one of "none", "distance", "exponential" or "custom"
    (then `custom_weights`, n values >= 0), `start` the start point's index (None: the lowest
    NLL), on `n_threads` threads (None or 0: all cores; the result is the same, bit for bit,
    on any number). Release with close() or a ``with`` block.
    """

    _free = _lib.crk_surrogate_free

    def __init__(self, x, nll, degrees=(1, 2, 3), alphas=tuple(np.logspace(-6, 2, 10)),
                 weighting="distance", start=None, custom_weights=None, n_threads=None):
        x = f64(x)
        if x.ndim != 2:
            raise ValueError(f"x must be 2-D (points x parameters), got shape {x.shape}")
        y = f64(nll).ravel()
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {sorted(WEIGHTINGS)}, got {weighting!r}")
        degrees = np.ascontiguousarray(degrees, dtype=np.uintp)
        alphas = f64(alphas).ravel()
        weights = None if custom_weights is None else f64(custom_weights).ravel()
        options = crk_surrogate_options(
            weighting=WEIGHTINGS[weighting],
            custom_weights=None if weights is None else dptr(weights),
            start_index=-1 if start is None else int(start),
            degrees=degrees.ctypes.data_as(_native._Z),
            n_degrees=degrees.size,
            alphas=dptr(alphas),
            n_alphas=alphas.size,
        )
        out = ctypes.c_void_p()
        args = (dptr(x), x.shape[0], x.shape[1], dptr(y), ctypes.byref(options))
        if n_threads is None:
            check(_lib.crk_surrogate_fit(*args, ctypes.byref(out)), "crk_surrogate_fit")
        else:
            check(_lib.crk_surrogate_fit_threads(*args, int(n_threads), ctypes.byref(out)),
                  "crk_surrogate_fit_threads")
        super().__init__(out.value)
        info = crk_surrogate_info()
        check(_lib.crk_surrogate_get_info(self, ctypes.byref(info)), "crk_surrogate_get_info")
        self.n_params, self.degree, self.alpha = info.n_params, info.degree, info.alpha
        self.n_features, self.start_index = info.n_features, info.start_index

    def _array(self, fn, name):
        n = ctypes.c_size_t()
        check(fn(self, None, 0, ctypes.byref(n)), name)
        out = np.empty(n.value, dtype=np.float64)
        check(fn(self, dptr(out), out.size, ctypes.byref(n)), name)
        return out

    @property
    def coefficients(self):
        """The ridge coefficients (scaled units, scikit-learn's PolynomialFeatures order)
        (crk_surrogate_coefficients)."""
        return self._array(_lib.crk_surrogate_coefficients, "crk_surrogate_coefficients")

    @property
    def validation_scores(self):
        """Validation mean squared errors, [degree index][alpha index] as given
        (crk_surrogate_validation_scores)."""
        return self._array(_lib.crk_surrogate_validation_scores, "crk_surrogate_validation_scores")

    def predict(self, x):
        """The surrogate's NLL at the points x (m x p, or one point of p) (crk_surrogate_predict)."""
        x = f64(x)
        points = x.reshape(-1, self.n_params)
        out = np.empty(points.shape[0], dtype=np.float64)
        check(_lib.crk_surrogate_predict(self, dptr(points), points.shape[0], dptr(out)), "crk_surrogate_predict")
        return out if x.ndim > 1 else out[0]

    def gradient(self, x):
        """dNLL/dx at one point x (p values) (crk_surrogate_gradient)."""
        x = f64(x).ravel()
        out = np.empty(self.n_params, dtype=np.float64)
        check(_lib.crk_surrogate_gradient(self, dptr(x), dptr(out)), "crk_surrogate_gradient")
        return out

    def propose_step(self, max_distance):
        """The gradient step from the start point, at most `max_distance` (scaled units):
        (new point, dict of distance, gradient_norm, predicted_nll, zero_gradient,
        at_max_distance) (crk_surrogate_propose_step)."""
        point = np.empty(self.n_params, dtype=np.float64)
        step = crk_surrogate_step()
        check(_lib.crk_surrogate_propose_step(self, float(max_distance), dptr(point), ctypes.byref(step)),
              "crk_surrogate_propose_step")
        return point, {
            "distance": step.distance,
            "gradient_norm": step.gradient_norm,
            "predicted_nll": step.predicted_nll,
            "zero_gradient": bool(step.zero_gradient),
            "at_max_distance": bool(step.at_max_distance),
        }
