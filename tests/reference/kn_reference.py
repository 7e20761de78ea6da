#!/usr/bin/env python3
"""High-precision reference for the universal Klein-Nishina loss function R(u).

For an isotropic greybody of temperature T the ultra-relativistic inverse-Compton loss rate of
an electron of Lorentz factor gamma is (4/3) sigma_T c gamma^2 U R(u), u = 4 gamma k_B T / m_e c^2,

    R(u)    = (15/pi^4) integral_0^inf x^3/(e^x - 1) f_KN(u x) dx,
    f_KN(b) = (9/b^3) [(b/2 + 6 + 6/b) ln(1+b) - (11 b^3/12 + 6 b^2 + 9 b + 4)/(1+b)^2
                       - 2 + 2 Li2(-b)]

(shared/PHYSICS.md, "Facts about the Klein-Nishina loss rate"). f_KN is the Blumenthal & Gould
(1970) eq. 2.48 kernel integrated over the scattered photon, normalised to f_KN(0) = 1.

Subcommands:
  check-kernel  f_KN in closed form against direct quadrature of the B&G kernel,
                f_KN(G) = 9 integral_0^1 q F(q,G)/(1+G q)^3 dq, at G = 0 and 1e-3 .. 1e6;
                also the Taylor series and the large-b expansion used below.
  check-r       R(u) by the trapezoid rule in ln x (the method of the other subcommands)
                against adaptive tanh-sinh quadrature in x, and against a finer trapezoid step;
                the small-u series and the two-term large-u asymptote against R.
  csv           writes tests/data/kn_loss_factor_reference.csv (u,R; 25 significant digits).
  coefficients  writes crkernels-core/src/physics/kn_loss_factor_coefficients.rs and reports the error of the
                double-precision evaluation (emulated here exactly as in klein_nishina.rs)
                against the points of the csv (run csv first).
  all           all four, in that order.

Run from the repository root (about 30 s for `all` on 2 cores):
    python3 -m venv .venv-ref
    .venv-ref/bin/pip install -r tests/reference/requirements.txt
    .venv-ref/bin/python tests/reference/kn_reference.py all

Method for R. With x = e^y the integral is a convolution in y,
    R(e^t) = (15/pi^4) integral W(y) f_KN(e^(t+y)) dy,  W(y) = x^4/(e^x - 1),
whose integrand is analytic in the strip |Im y| < pi/2 and decays exponentially at both ends,
so the trapezoid rule with step h converges like exp(-pi^2/h): h = 1/10 gives about 1e-43. With
the nodes y = m h - t, f_KN is needed only at b = e^(m h), which is cached and shared by all u.
f_KN uses its Taylor series (exact rational coefficients) below b = 1/8 and the closed form
with 40 guard bits above. `check-r` confirms >= 35 correct digits.

Large-u form. The Mellin transform of f_KN has a double pole at s = 2 and a triple pole at s = 3
(from f_KN ~ (9/b^2)(ln b/2 - 11/12) + (9/b^3)(-ln^2 b + 6 ln b - 17/3 - pi^2/3) + O(ln b/b^4)),
that of the Planck weight, Gamma(4-s) zeta(4-s), a pole at s = 3. Their residues give
    R(u) = A (ln u - C)/u^2 + (q3 ln^3 u + q2 ln^2 u + q1 ln u + q0)/u^3 + O(ln^2 u/u^4),
A = 45/(4 pi^2), C = 11/6 - (1 - gamma_E) - zeta'(2)/zeta(2); the q_k are computed below.
"""

import math
import multiprocessing
import os
import sys
from fractions import Fraction

import mpmath as mp

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CSV_PATH = os.path.join(REPO_ROOT, "tests", "data", "kn_loss_factor_reference.csv")
RUST_PATH = os.path.join(REPO_ROOT, "crkernels-core", "src", "physics", "kn_loss_factor_coefficients.rs")

WORKING_DPS = 45
mp.mp.dps = WORKING_DPS

# ---------------------------------------------------------------------------------------------
# The kernel f_KN(b)
# ---------------------------------------------------------------------------------------------


def kernel_taylor_coefficients(count):
    """Exact Taylor coefficients a_n of f_KN(b) = sum a_n b^n, n < count, as Fractions.

    f_KN = 9 B(b)/b^3 with B the bracket of the closed form; B's series follows from those of
    ln(1+b), Li2(-b) and 1/(1+b)^2, and its terms b^0 .. b^2 cancel exactly (checked).
    """
    top = count + 3
    log1p = [Fraction(0)] + [Fraction((-1) ** (k + 1), k) for k in range(1, top + 2)]
    dilog = [Fraction(0)] + [Fraction((-1) ** k, k * k) for k in range(1, top + 2)]
    inverse_square = [Fraction((-1) ** m * (m + 1)) for m in range(top + 1)]
    numerator = [Fraction(4), Fraction(9), Fraction(6), Fraction(11, 12)]
    bracket = []
    for n in range(top):
        term = 6 * log1p[n] + 6 * log1p[n + 1] + 2 * dilog[n]
        if n >= 1:
            term += Fraction(1, 2) * log1p[n - 1]
        if n == 0:
            term -= 2
        term -= sum(numerator[j] * inverse_square[n - j] for j in range(4) if n >= j)
        bracket.append(term)
    assert bracket[:3] == [0, 0, 0], bracket[:3]
    return [9 * bracket[n + 3] for n in range(count)]


KERNEL_TAYLOR = kernel_taylor_coefficients(90)
KERNEL_TAYLOR_MP = [mp.mpf(a.numerator) / a.denominator for a in KERNEL_TAYLOR]
KERNEL_SERIES_LIMIT = mp.mpf(1) / 8


def kernel_closed_form(b):
    """f_KN(b) from the closed form, at the working precision plus 40 guard bits."""
    with mp.extraprec(40):
        b = mp.mpf(b)
        bracket = (
            (b / 2 + 6 + 6 / b) * mp.log1p(b)
            - (11 * b**3 / 12 + 6 * b**2 + 9 * b + 4) / (1 + b) ** 2
            - 2
            + 2 * mp.polylog(2, -b)
        )
        value = 9 * bracket / b**3
    return +value


def kernel_series(b):
    """f_KN(b) from its Taylor series (radius 1); used for b < 1/8."""
    total = mp.mpf(0)
    power = mp.mpf(1)
    for coefficient in KERNEL_TAYLOR_MP:
        total += coefficient * power
        power *= b
        if power < mp.eps * 1e-6:
            return total
    raise ValueError("series not converged at b = %s" % b)


def kernel(b):
    """f_KN(b) to the working precision."""
    return kernel_series(b) if b < KERNEL_SERIES_LIMIT else kernel_closed_form(b)


def kernel_blumenthal_gould(gamma_e):
    """f_KN by quadrature of the B&G (1970) eq. 2.48 kernel over q = E1/(Gamma_e (gamma m c^2 - E1)):
    9 integral_0^1 q F(q, G)/(1 + G q)^3 dq,
    F = 2 q ln q + (1+2q)(1-q) + (G q)^2 (1-q)/(2(1+G q))."""
    g = mp.mpf(gamma_e)

    def integrand(q):
        if q == 0:
            return mp.mpf(0)
        gq = g * q
        bg = 2 * q * mp.log(q) + (1 + 2 * q) * (1 - q) + gq**2 * (1 - q) / (2 * (1 + gq))
        return q * bg / (1 + gq) ** 3

    # The integrand changes shape at q ~ 1/G: break there, on a geometric ladder.
    points = [mp.mpf(0)]
    if g > 1:
        q = 1 / (100 * g)
        while q < 1:
            points.append(q)
            q *= 10
    points.append(mp.mpf(1))
    scale = (1 + g) ** 2 / (1 + mp.log1p(g))  # mp.quad's tolerance is absolute
    return 9 * mp.quad(lambda q: scale * integrand(q), points) / scale


# Large-b expansion: f_KN = f2 + f3 + O(ln b / b^4), L = ln b.
KERNEL_F3_CONSTANT = -mp.mpf(17) / 3 - mp.pi**2 / 3


def kernel_leading_terms(b):
    """f2 + f3 = (9/b^2)(L/2 - 11/12) + (9/b^3)(-L^2 + 6 L - 17/3 - pi^2/3)."""
    big_l = mp.log(b)
    return 9 / b**2 * (big_l / 2 - mp.mpf(11) / 12) + 9 / b**3 * (
        -(big_l**2) + 6 * big_l + KERNEL_F3_CONSTANT
    )


def kernel_large_b_remainder(b):
    """f_KN - f2 - f3, O(ln b/b^4), computed without cancellation from the closed form
    rewritten in z = 1/b (ln(1+b) = L + ln(1+z), Li2(-b) = -pi^2/6 - L^2/2 - Li2(-z))."""
    with mp.extraprec(40 + int(1.5 * mp.log(b + 2))):  # the bracket cancels to O(ln b/b)
        b = mp.mpf(b)
        z = 1 / b
        big_l = mp.log(b)
        log1p_z = mp.log1p(z)
        bracket = (
            log1p_z / (2 * z)
            + 6 * log1p_z
            + 6 * z * big_l
            + 6 * z * log1p_z
            - (mp.mpf(25) / 6 + mp.mpf(97) / 12 * z + 4 * z**2) / (1 + z) ** 2
            - 2 * mp.polylog(2, -z)
            + mp.mpf(11) / 3
        )
        value = 9 * z**3 * bracket
    return +value


# ---------------------------------------------------------------------------------------------
# R(u)
# ---------------------------------------------------------------------------------------------

THOMSON_NORMALISATION = 15 / mp.pi**4
TRAPEZOID_STEP = mp.mpf(1) / 10
_kernel_on_grid = {}


def kernel_at_grid_point(m, step):
    """f_KN(e^(m step)), cached."""
    key = (m, step)
    value = _kernel_on_grid.get(key)
    if value is None:
        value = kernel(mp.exp(m * step))
        _kernel_on_grid[key] = value
    return value


def loss_factor_at_log(t, step=TRAPEZOID_STEP):
    """R(e^t) by the trapezoid rule in y = ln x on the nodes y = m step - t."""
    t = mp.mpf(t)
    first_up = int(mp.floor(t / step)) + 1
    # Upper end: x^4 e^-x < 1e-60 past x = 200 (the terms fall like e^-x).
    last_up = int(mp.ceil((t + mp.log(200)) / step))
    total = mp.mpf(0)
    for m in range(first_up, last_up + 1):
        x = mp.exp(m * step - t)
        total += x**4 / mp.expm1(x) * kernel_at_grid_point(m, step)
    # Lower end: once x < 1 the terms fall at least like e^(y), so stop when negligible.
    m = first_up - 1
    while True:
        x = mp.exp(m * step - t)
        term = x**4 / mp.expm1(x) * kernel_at_grid_point(m, step)
        total += term
        if x < 1 and term < total * mp.eps * 1e-4:
            break
        m -= 1
    return THOMSON_NORMALISATION * step * total


def loss_factor(u):
    """R(u) for u > 0 (mpf or exact float)."""
    return loss_factor_at_log(mp.log(mp.mpf(u)))


def loss_factor_adaptive(u, dps):
    """R(u) by mpmath's adaptive tanh-sinh quadrature in x (independent check of the above)."""
    with mp.workdps(dps):
        u = mp.mpf(u)
        scale = (1 + u) ** 2 / (1 + mp.log1p(u))  # mp.quad's tolerance is absolute
        points = [mp.mpf(0)]
        x = 1 / (100 * u)
        while x < 1:
            points.append(x)
            x *= 10
        points += [mp.mpf(1), mp.mpf(4), mp.mpf(12), mp.mpf(30), mp.inf]

        def integrand(x):
            return scale * x**3 / mp.expm1(x) * kernel(u * x)

        return THOMSON_NORMALISATION * mp.quad(integrand, sorted(set(points))) / scale


def loss_factor_many(values_of_t):
    """R(e^t) for a list of t, on all cores."""
    with multiprocessing.Pool() as pool:
        return pool.map(loss_factor_at_log, values_of_t, chunksize=8)


# ---------------------------------------------------------------------------------------------
# Small-u series and large-u asymptote
# ---------------------------------------------------------------------------------------------


def small_u_series_coefficients(count):
    """c_n of R = sum c_n u^n (asymptotic): c_n = (15/pi^4) a_n Gamma(n+4) zeta(n+4)."""
    return [
        THOMSON_NORMALISATION * KERNEL_TAYLOR_MP[n] * mp.gamma(n + 4) * mp.zeta(n + 4)
        for n in range(count)
    ]


PLANCK_MEAN_ENERGY_RATIO = 4 * mp.zeta(5) / mp.zeta(4)
LARGE_U_SLOPE = 45 / (4 * mp.pi**2)
LARGE_U_OFFSET = mp.mpf(11) / 6 - (1 - mp.euler) - mp.zeta(2, derivative=1) / mp.zeta(2)


def series_product(a, b, order):
    return [sum(a[j] * b[k - j] for j in range(k + 1)) for k in range(order + 1)]


def large_u_correction_coefficients():
    """[q0, q1, q2, q3] of the u^-3 term: minus (15/pi^4) times the residue at s = 3 of
    u^-s Ftilde(s) Gamma(4-s) zeta(4-s), Ftilde the Mellin transform of f_KN.

    With e = s - 3: Ftilde = 18/e^3 + 54/e^2 - 9 c0/e + K0 + O(e) (c0 = -17/3 - pi^2/3),
    Gamma(1-e) zeta(1-e) = Y(e)/e with Y = Gamma(1-e) (-1 + sum gamma_n e^(n+1)/n!), and
    K0 = int_0^1 b^2 f db + int_1^inf b^2 (f - f2 - f3) db + [int_1^inf b^(s-1) f2 db]_(s=3),
    the last = 9 (1/2 + 11/12). The residue is u^-3 (18 p3 + 54 p2 - 9 c0 p1 + K0 p0) with
    p_k(t) the e^k coefficient of e^(-e t) Y(e)."""
    order = 3
    # ln Gamma(1-e) = gamma_E e + sum_{k>=2} zeta(k) e^k / k.
    log_gamma = [mp.mpf(0), +mp.euler] + [mp.zeta(k) / k for k in range(2, order + 1)]
    gamma_series = [mp.mpf(1)] + [mp.mpf(0)] * order
    power = [mp.mpf(1)] + [mp.mpf(0)] * order
    for j in range(1, order + 1):  # exp of a series without constant term
        power = series_product(power, log_gamma, order)
        gamma_series = [g + p / mp.factorial(j) for g, p in zip(gamma_series, power)]
    zeta_times_e = [mp.mpf(-1)] + [mp.stieltjes(n) / mp.factorial(n) for n in range(order)]
    y = series_product(gamma_series, zeta_times_e, order)
    # p_k(t) = sum_j y_(k-j) (-t)^j / j!, as coefficient lists in t.
    p = [[y[k - j] * (-1) ** j / mp.factorial(j) for j in range(k + 1)] for k in range(order + 1)]
    k0 = (
        mp.quad(lambda b: b**2 * kernel(b), [0, KERNEL_SERIES_LIMIT, 1])
        # In y = ln b; the integrand falls like y e^-y: negligible (1e-49) past y = 120.
        + mp.quad(lambda y: mp.exp(3 * y) * kernel_large_b_remainder(mp.exp(y)), [0, 2, 8, 30, 120])
        + 9 * (mp.mpf(1) / 2 + mp.mpf(11) / 12)
    )
    weights = {3: mp.mpf(18), 2: mp.mpf(54), 1: -9 * KERNEL_F3_CONSTANT, 0: k0}
    residue = [mp.mpf(0)] * (order + 1)
    for k, weight in weights.items():
        for j, coefficient in enumerate(p[k]):
            residue[j] += weight * coefficient
    return [-THOMSON_NORMALISATION * r for r in residue]


def large_u_asymptote(u, correction):
    """The two-term large-u form (correction = [q0..q3]), or the leading term alone (None)."""
    u = mp.mpf(u)
    t = mp.log(u)
    value = LARGE_U_SLOPE * (t - LARGE_U_OFFSET) / u**2
    if correction is not None:
        value += mp.polyval(correction[::-1], t) / u**3
    return value


# ---------------------------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------------------------


def relative_difference(a, b):
    return abs(a / b - 1)


def check_kernel():
    print("f_KN: closed form against the B&G eq. 2.48 kernel integrated over q")
    normalisation = kernel_blumenthal_gould(0)
    print("  G = 0: 9 int q F(q,0) dq = %s (exactly 9 * 1/9 = 1)" % mp.nstr(normalisation, 30))
    assert relative_difference(normalisation, 1) < mp.mpf("1e-35")
    worst = mp.mpf(0)
    for g in ["1e-3", "1e-2", "0.1", "0.5", "1", "3", "10", "100", "1e3", "1e4", "1e5", "1e6"]:
        g = mp.mpf(g)
        with mp.workdps(WORKING_DPS + 20):  # the closed form cancels like b^3 at small b
            closed = kernel_closed_form(g)
        integrated = kernel_blumenthal_gould(g)
        difference = relative_difference(closed, integrated)
        worst = max(worst, difference)
        line = "  G = %-6s closed form %s  B&G %s  rel. diff %s" % (
            mp.nstr(g, 3),
            mp.nstr(closed, 28),
            mp.nstr(integrated, 28),
            mp.nstr(difference, 2),
        )
        if g < KERNEL_SERIES_LIMIT:
            line += "  series: %s" % mp.nstr(relative_difference(kernel_series(g), closed), 2)
        print(line)
    print("  worst relative difference: %s" % mp.nstr(worst, 2))
    assert worst < mp.mpf("1e-30")
    print("  Taylor a_0..a_3 = %s (PHYSICS.md: 1, -63/40, 441/200, -101/35)" % KERNEL_TAYLOR[:4])
    assert KERNEL_TAYLOR[:4] == [1, Fraction(-63, 40), Fraction(441, 200), Fraction(-101, 35)]
    worst = max(
        relative_difference(kernel_leading_terms(b) + kernel_large_b_remainder(b), kernel(b))
        for b in [mp.mpf(2) ** k for k in range(-1, 80, 3)]
    )
    print("  large-b split f2 + f3 + remainder against the closed form: %s" % mp.nstr(worst, 2))
    assert worst < mp.mpf("1e-35")
    for b in [mp.mpf(10) ** k for k in (4, 8, 16)]:
        ratio = kernel_large_b_remainder(b) * b**4 / mp.log(b)
        print("    b = %s: (f - f2 - f3) b^4 / ln b = %s" % (mp.nstr(b, 3), mp.nstr(ratio, 8)))


def check_r():
    print("R(u): trapezoid in ln x (h = 1/10) against adaptive tanh-sinh and h = 1/13")
    worst = mp.mpf(0)
    for u in ["1e-6", "1e-3", "0.1", "1", "10", "1e3", "1e6", "1e12", "1e20"]:
        u = mp.mpf(u)
        value = loss_factor(u)
        adaptive = loss_factor_adaptive(u, WORKING_DPS + 10)
        finer = loss_factor_at_log(mp.log(u), mp.mpf(1) / 13)
        worst = max(worst, relative_difference(value, adaptive), relative_difference(value, finer))
        print(
            "  u = %-6s R = %s  vs adaptive %s  vs h = 1/13 %s"
            % (
                mp.nstr(u, 3),
                mp.nstr(value, 36),
                mp.nstr(relative_difference(value, adaptive), 2),
                mp.nstr(relative_difference(value, finer), 2),
            )
        )
    print("  worst: %s" % mp.nstr(worst, 2))
    assert worst < mp.mpf("1e-35")
    series = small_u_series_coefficients(12)
    first_order = -mp.mpf(63) / 40 * PLANCK_MEAN_ENERGY_RATIO
    print("  c_1 = %s = -(63/40) 4 zeta(5)/zeta(4)" % mp.nstr(series[1], 25))
    assert relative_difference(series[1], first_order) < mp.mpf("1e-40")
    for u in ["1e-4", "1e-3"]:
        u = mp.mpf(u)
        partial = mp.polyval(series[:9][::-1], u)
        print(
            "  u = %s: series to u^8 vs R: %s"
            % (mp.nstr(u, 2), mp.nstr(relative_difference(partial, loss_factor(u)), 3))
        )
    correction = large_u_correction_coefficients()
    print("  large u: A = %s, C = %s" % (mp.nstr(LARGE_U_SLOPE, 25), mp.nstr(LARGE_U_OFFSET, 25)))
    print("  q0..q3 = %s" % [mp.nstr(q, 20) for q in correction])
    for exponent in (6, 8, 10, 12, 14, 16, 20):
        u = mp.mpf(10) ** exponent
        value = loss_factor(u)
        print(
            "  u = 1e%-2d  leading term: %s   two terms: %s"
            % (
                exponent,
                mp.nstr(relative_difference(large_u_asymptote(u, None), value), 3),
                mp.nstr(relative_difference(large_u_asymptote(u, correction), value), 3),
            )
        )


def csv_points():
    """Exactly representable u: 301 log-spaced from 1e-6 to 1e4, then to 1e10 and 1e16."""
    exponents = [-6 + k / 30 for k in range(301)]
    exponents += [4 + k / 10 for k in range(1, 61)]
    exponents += [10 + k / 4 for k in range(1, 25)]
    return [float(10**e) for e in exponents]


def write_csv():
    points = csv_points()
    values = loss_factor_many([mp.log(mp.mpf(u)) for u in points])
    os.makedirs(os.path.dirname(CSV_PATH), exist_ok=True)
    with open(CSV_PATH, "w") as out:
        out.write("u,R\n")
        for u, value in zip(points, values):
            out.write("%r,%s\n" % (u, mp.nstr(value, 25, min_fixed=1, max_fixed=0)))
    print("wrote %d rows to %s" % (len(points), os.path.relpath(CSV_PATH, REPO_ROOT)))


# The fit. klein_nishina.rs reads these from the generated file; its docs and the seams of
# tests/kn_loss_factor.rs quote them.
FIT_T_START = -7  # ln of the small-u limit; below it the series
FIT_INTERVAL_WIDTH = Fraction(1, 2)  # in t = ln u; dyadic, so the interval centres are exact
FIT_INTERVALS = 70  # up to t = 28, u = 1.45e12; above it the two-term asymptote
FIT_DEGREE = 11
SMALL_U_SERIES_TERMS = 9  # c_0 .. c_8: the last term is 2e-17 and the first omitted 2e-19


def chebyshev_lobatto_to_monomial(values):
    """Monomial coefficients (in s on [-1, 1]) of the polynomial interpolating values at the
    Chebyshev-Lobatto points s_j = cos(pi j / n)."""
    n = len(values) - 1
    chebyshev = []
    for k in range(n + 1):
        total = sum(
            (mp.mpf(1) / 2 if j in (0, n) else 1) * values[j] * mp.cospi(mp.mpf(j * k) / n)
            for j in range(n + 1)
        )
        chebyshev.append(total * (1 if k in (0, n) else 2) / n)
    basis = [[mp.mpf(1)], [mp.mpf(0), mp.mpf(1)]]  # T_0, T_1 as monomial coefficients
    while len(basis) <= n:  # T_(k+1) = 2 s T_k - T_(k-1)
        twice_shifted = [mp.mpf(0)] + [2 * c for c in basis[-1]]
        for i, c in enumerate(basis[-2]):
            twice_shifted[i] -= c
        basis.append(twice_shifted)
    monomial = [mp.mpf(0)] * (n + 1)
    for coefficient, chebyshev_polynomial in zip(chebyshev, basis):
        for i, c in enumerate(chebyshev_polynomial):
            monomial[i] += coefficient * c
    return monomial


def interval_centre(k):
    return FIT_T_START + (k + Fraction(1, 2)) * FIT_INTERVAL_WIDTH


def emulate_loss_factor(u, small_series, table, correction):
    """The double-precision evaluation of klein_nishina.rs, operation for operation."""
    small_limit = math.exp(FIT_T_START)
    large_limit = math.exp(FIT_T_START + FIT_INTERVALS * FIT_INTERVAL_WIDTH)
    if u < small_limit:
        return polynomial(small_series, u)
    t = math.log(u)
    if u >= large_limit:
        inverse_u = 1.0 / u
        leading = float(LARGE_U_SLOPE) * (t - float(LARGE_U_OFFSET))
        return (leading + polynomial(correction, t) * inverse_u) * inverse_u * inverse_u
    position = (t - FIT_T_START) * float(1 / FIT_INTERVAL_WIDTH)
    index = min(max(int(position), 0), FIT_INTERVALS - 1)
    s = (t - float(interval_centre(index))) * float(2 / FIT_INTERVAL_WIDTH)
    return polynomial(table[index], s)


def polynomial(coefficients, x):
    """sum coefficients[k] x^k as the even and odd parts in x^2, each by Horner, as in klein_nishina.rs."""
    x2 = x * x
    even = 0.0
    for c in coefficients[::2][::-1]:
        even = even * x2 + c
    odd = 0.0
    for c in coefficients[1::2][::-1]:
        odd = odd * x2 + c
    return even + x * odd


def rust_float(x):
    text = repr(float(x))
    return text if ("e" in text or "." in text) else text + ".0"


def write_coefficients():
    n = FIT_DEGREE
    half_width = FIT_INTERVAL_WIDTH / 2
    nodes = []
    for k in range(FIT_INTERVALS):
        centre = mp.mpf(interval_centre(k).numerator) / interval_centre(k).denominator
        for j in range(n + 1):
            nodes.append(centre + mp.mpf(half_width.numerator) / half_width.denominator * mp.cospi(mp.mpf(j) / n))
    print("R at %d fit nodes ..." % len(nodes))
    values = loss_factor_many(nodes)
    table = []
    for k in range(FIT_INTERVALS):
        monomial = chebyshev_lobatto_to_monomial(values[k * (n + 1) : (k + 1) * (n + 1)])
        table.append([float(c) for c in monomial])
    small_series = [float(c) for c in small_u_series_coefficients(SMALL_U_SERIES_TERMS)]
    correction = [float(q) for q in large_u_correction_coefficients()]

    # Error of the double-precision evaluation against the csv, and at the seams.
    with open(CSV_PATH) as source:
        rows = [line.strip().split(",") for line in source.readlines()[1:]]
    worst, worst_u = 0.0, None
    for u_text, r_text in rows:
        u = float(u_text)
        error = float(relative_difference(mp.mpf(emulate_loss_factor(u, small_series, table, correction)), mp.mpf(r_text)))
        if error > worst:
            worst, worst_u = error, u
    print("max relative error against the csv: %.3g at u = %.6g" % (worst, worst_u))
    seams = []
    for k in range(1, FIT_INTERVALS):
        left = polynomial(table[k - 1], 1.0)
        right = polynomial(table[k], -1.0)
        seams.append(abs(left / right - 1))
    print("interval seams: max relative jump %.3g" % max(seams))
    small_limit = math.exp(FIT_T_START)
    print(
        "small-u seam: series %.17g, fit %.17g"
        % (polynomial(small_series, small_limit), polynomial(table[0], -1.0))
    )
    large_limit = math.exp(FIT_T_START + FIT_INTERVALS * FIT_INTERVAL_WIDTH)
    print(
        "large-u seam: fit %.17g, asymptote %.17g"
        % (
            polynomial(table[-1], 1.0),
            emulate_loss_factor(large_limit, small_series, table, correction),
        )
    )

    lines = [
        "// @generated by tests/reference/kn_reference.py; do not edit. Regenerate from the",
        "// repository root with",
        "//     .venv-ref/bin/python tests/reference/kn_reference.py coefficients",
        "// (see the script's docstring for the virtual environment). Used by klein_nishina.rs.",
        "",
        "/// Coefficients c_0..c_%d of the small-u series R(u) = sum c_n u^n (asymptotic),"
        % (SMALL_U_SERIES_TERMS - 1),
        "/// c_n = (15/pi^4) a_n Gamma(n+4) zeta(n+4), a_n the Taylor coefficients of f_KN.",
        "/// Used below `SMALL_U_LIMIT`, where the first omitted term is below 3e-19.",
        "#[rustfmt::skip]",
        "pub(crate) const SMALL_U_SERIES: [f64; %d] = [" % SMALL_U_SERIES_TERMS,
    ]
    lines += ["    %s," % rust_float(c) for c in small_series]
    lines += [
        "];",
        "",
        "/// e^FIT_T_START: the series is used below, the fit above.",
        "pub(crate) const SMALL_U_LIMIT: f64 = %s;" % rust_float(math.exp(FIT_T_START)),
        "",
        "/// e^(FIT_T_START + FIT_INTERVALS FIT_INTERVAL_WIDTH): the fit is used below, the",
        "/// large-u asymptote above.",
        "pub(crate) const LARGE_U_LIMIT: f64 = %s;"
        % rust_float(math.exp(FIT_T_START + FIT_INTERVALS * FIT_INTERVAL_WIDTH)),
        "",
        "/// Start of the fit in t = ln u.",
        "pub(crate) const FIT_T_START: f64 = %s;" % rust_float(FIT_T_START),
        "",
        "/// Width of each fit interval in t = ln u (dyadic: the interval centres are exact).",
        "pub(crate) const FIT_INTERVAL_WIDTH: f64 = %s;" % rust_float(FIT_INTERVAL_WIDTH),
        "",
        "/// Number of fit intervals.",
        "pub(crate) const FIT_INTERVALS: usize = %d;" % FIT_INTERVALS,
        "",
        "/// Per interval k, the monomial coefficients (constant first) in",
        "/// s = (t - t_k) / (FIT_INTERVAL_WIDTH / 2) in [-1, 1], t_k = FIT_T_START + (k + 1/2)",
        "/// FIT_INTERVAL_WIDTH, of the degree-%d polynomial interpolating R(e^t) at the" % n,
        "/// Chebyshev-Lobatto points (which include both ends: the intervals meet continuously).",
        "#[rustfmt::skip]",
        "pub(crate) const FIT_COEFFICIENTS: [[f64; %d]; %d] = [" % (n + 1, FIT_INTERVALS),
    ]
    for k, row in enumerate(table):
        lines.append(
            "    // t in [%s, %s]"
            % (float(interval_centre(k) - half_width), float(interval_centre(k) + half_width))
        )
        lines.append("    [")
        for i in range(0, n + 1, 3):
            lines.append("        " + " ".join(rust_float(c) + "," for c in row[i : i + 3]))
        lines.append("    ],")
    lines += [
        "];",
        "",
        "/// A = 45/(4 pi^2) of the large-u limit R -> A (ln u - C)/u^2.",
        "pub(crate) const LARGE_U_SLOPE: f64 = %s;" % rust_float(LARGE_U_SLOPE),
        "",
        "/// C = 11/6 - (1 - gamma_E) - zeta'(2)/zeta(2) of the large-u limit.",
        "pub(crate) const LARGE_U_OFFSET: f64 = %s;" % rust_float(LARGE_U_OFFSET),
        "",
        "/// q_0..q_3 of the next large-u term, (q_0 + q_1 ln u + q_2 ln^2 u + q_3 ln^3 u)/u^3",
        "/// (the residue at s = 3 of the Mellin representation; see the script).",
        "#[rustfmt::skip]",
        "pub(crate) const LARGE_U_CORRECTION: [f64; 4] = [",
    ]
    lines += ["    %s," % rust_float(q) for q in correction]
    lines += ["];", ""]
    with open(RUST_PATH, "w") as out:
        out.write("\n".join(lines))
    print("wrote %s" % os.path.relpath(RUST_PATH, REPO_ROOT))
    print("PLANCK_MEAN_ENERGY_RATIO = 4 zeta(5)/zeta(4) = %s" % mp.nstr(PLANCK_MEAN_ENERGY_RATIO, 25))


def main():
    commands = {
        "check-kernel": [check_kernel],
        "check-r": [check_r],
        "csv": [write_csv],
        "coefficients": [write_coefficients],
        "all": [check_kernel, check_r, write_csv, write_coefficients],
    }
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit("usage: kn_reference.py {%s}" % ",".join(commands))
    for command in commands[sys.argv[1]]:
        command()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
