#!/usr/bin/env python3
"""High-precision reference for the Green's function of crkernels-core/src/physics/green.rs.

Independent of the library: Thomson losses b = b0 E^2 in closed form, the halo factor Theta by
its image sum in arbitrary precision, the source-energy integral by mpmath's incomplete gamma
function and by quadrature. PHYSICS.md ("Transport and loss-time integrals", "Green's function
and a single source", "Constants and units") gives the formulas:

    E0  = E / (1 - b0 E t)            (0 where b0 E t >= 1 or E0 > E_top = 1e7 GeV)
    l^2 = kappa0 / (b0 (1 - delta)) (E^(delta-1) - E0^(delta-1))   (kappa0/b0 ln(E0/E) at delta = 1)
    n   = Q(E0) (E0/E)^2 (4 pi l^2)^(-3/2) exp(-s^2 / (4 l^2)) Theta,  Q(E) = q* E^-gamma exp(-E/E_cut)
    Theta = sum_n (-1)^n exp(-(z_o - z_n)^2 / (4 l^2)),  z_n = 2 n z_max + (-1)^n z_s
    phi = c/(4 pi) sum_i n_i,  zero for c t < s (causal cut) and for t = 0.

Theta is summed over all images whose terms exceed 10^-(dps+10), and each value is recomputed
at rising precision (50, 80, 110, ... digits) until two agree to 1e-32: the image sum at l >>
z_max cancels (Theta ~ exp(-(pi l / 2 z_max)^2) from terms of order 1), which the extra digits
absorb. `check` confirms the image sums against the eigenfunction series (the same Theta by the
Poisson summation formula) and the incomplete-gamma integrals against mpmath quadrature.

Subcommands:
  check  cross-checks of the two Theta series and of the two energy integrals (about 15 s);
  csv    writes tests/data/green_reference.csv (about 30 s on 2 cores);
  all    both.

Run from the repository root:
    python3 -m venv .venv-ref
    .venv-ref/bin/pip install -r tests/reference/requirements.txt
    .venv-ref/bin/python tests/reference/green_reference.py all

The csv has one record per line, the kind first (inputs as shortest round-trip doubles, values
with 25 significant digits; lines starting with # are comments):
  theta,l2_kpc2,z_max_kpc,z_s_kpc,z_o_kpc,Theta,cond        (z_max 0: no boundary)
  integral,gamma,e_min_gev,cutoff_gev,I,cond                 (I = int_{E_min}^inf E^(1-gamma) e^(-E/E_cut) dE)
  case,id,b0_per_gev_per_s,kappa0_cm2_per_s,delta,z_max_kpc,q_star_per_gev,gamma,cutoff_gev
  source,id,distance_kpc,age_myr
  flux,id,energy_gev,phi                                     (GeV^-1 m^-2 s^-1 sr^-1, all sources of case id)
  density,id,distance_kpc,age_myr,z_s_kpc,z_o_kpc,energy_gev,n
                                    (GeV^-1 kpc^-3, with case id's transport and spectrum)
cond is the condition number of the value in its inputs, sum |d ln value / d ln input| (for
gamma, |gamma d ln I / d gamma|): double-precision inputs alone move the value by cond ulps.
"""

import math
import multiprocessing
import os
import random
import sys

import mpmath as mp

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CSV_PATH = os.path.join(REPO_ROOT, "tests", "data", "green_reference.csv")

mp.mp.dps = 50

# PHYSICS.md, "Constants and units".
C_CM_PER_S = mp.mpf("2.99792458e10")
KPC_CM = mp.mpf("3.0856775814913673e21")
MYR_S = mp.mpf("3.15576e13")
ERG_GEV = mp.mpf("624.150907446")
C_KPC_PER_MYR = C_CM_PER_S * MYR_S / KPC_CM
FLUX_PER_DENSITY = (C_CM_PER_S / 100) / (4 * mp.pi) / (KPC_CM / 100) ** 3

# The transport table of the Rust test: E in [1, 1e7] GeV; E0 above E_TOP contributes nothing.
E_TABLE_MIN = 1.0
E_TOP = 1e7


# ---------------------------------------------------------------------------------------------
# Theta
# ---------------------------------------------------------------------------------------------


def theta_images(l2, z_max, z_s, z_o):
    """The image sum at the current precision, over every image whose term exceeds 10^-(dps+10)."""
    l2, z_s, z_o = mp.mpf(l2), mp.mpf(z_s), mp.mpf(z_o)
    if z_max == 0:
        return mp.exp(-((z_o - z_s) ** 2) / (4 * l2))
    h = mp.mpf(z_max)
    # |z_o - z_n| >= 2 |n| h - 2 h; stop where that term is below 10^-(dps+10).
    reach = mp.sqrt(4 * l2 * (mp.mp.dps + 10) * mp.log(10))
    n_max = int(mp.ceil((reach + 2 * h) / (2 * h))) + 1
    total = mp.mpf(0)
    for n in range(-n_max, n_max + 1):
        z_n = 2 * n * h + (-1) ** n * z_s
        total += (-1) ** n * mp.exp(-((z_o - z_n) ** 2) / (4 * l2))
    return total


def theta_eigenmodes(l2, z_max, z_s, z_o):
    """sqrt(4 pi l^2)/h sum_k exp(-(k pi l/2h)^2) sin(k pi (h - z_s)/2h) sin(k pi (h - z_o)/2h)."""
    l2, h, z_s, z_o = mp.mpf(l2), mp.mpf(z_max), mp.mpf(z_s), mp.mpf(z_o)
    l = mp.sqrt(l2)
    k_max = int(mp.ceil(2 * h / (mp.pi * l) * mp.sqrt((mp.mp.dps + 10) * mp.log(10)))) + 2
    total = mp.mpf(0)
    for k in range(1, k_max + 1):
        total += (
            mp.exp(-((k * mp.pi * l / (2 * h)) ** 2))
            * mp.sin(k * mp.pi * (h - z_s) / (2 * h))
            * mp.sin(k * mp.pi * (h - z_o) / (2 * h))
        )
    return mp.sqrt(4 * mp.pi * l2) / h * total


def stable(function, *args, digits=32):
    """function(*args) at rising precision until two successive values agree to 10^-digits."""
    dps = 50
    with mp.workdps(dps):
        previous = function(*args)
    while True:
        dps += 30
        with mp.workdps(dps):
            value = function(*args)
            if value == previous or (value != 0 and abs((value - previous) / value) < mp.mpf(10) ** -digits):
                return +value
            previous = value
        if dps > 3000:
            raise ValueError("no stable value for %s%s" % (function.__name__, args))


def theta(l2, z_max, z_s, z_o, digits=32):
    return stable(theta_images, l2, z_max, z_s, z_o, digits=digits)


def log_condition(function, inputs, scale_free=()):
    """sum over inputs i of |d ln f / d ln x_i| (|x_i d ln f / d x_i|), by central differences
    with relative step 1e-12 on values good to 1e-45."""
    with mp.workdps(70):
        total = mp.mpf(0)
        for i, x in enumerate(inputs):
            if x == 0 or i in scale_free:
                continue
            step = mp.mpf(x) * mp.mpf("1e-12")
            up = list(inputs)
            down = list(inputs)
            up[i] = mp.mpf(x) + step
            down[i] = mp.mpf(x) - step
            derivative = (mp.log(abs(function(*up))) - mp.log(abs(function(*down)))) / (2 * step)
            total += abs(mp.mpf(x) * derivative)
    return total


def theta_condition(l2, z_max, z_s, z_o):
    no_boundary = (1,) if z_max == 0 else ()
    return log_condition(lambda *a: theta(*a, digits=50), (l2, z_max, z_s, z_o), scale_free=no_boundary)


# ---------------------------------------------------------------------------------------------
# Energy integral of the source spectrum
# ---------------------------------------------------------------------------------------------


def energy_integral(gamma, e_min, cutoff):
    """int_{E_min}^inf E^(1-gamma) exp(-E/E_cut) dE = E_cut^(2-gamma) Gamma(2-gamma, E_min/E_cut)."""
    gamma, e_min = mp.mpf(gamma), mp.mpf(e_min)
    if cutoff == math.inf:
        return e_min ** (2 - gamma) / (gamma - 2)
    cutoff = mp.mpf(cutoff)
    return cutoff ** (2 - gamma) * mp.gammainc(2 - gamma, e_min / cutoff)


def energy_integral_quad(gamma, e_min, cutoff):
    """The same integral by tanh-sinh quadrature in u = ln(E/E_min), split where the integrand turns."""
    gamma, e_min = mp.mpf(gamma), mp.mpf(e_min)
    x = e_min / mp.mpf(cutoff)

    def integrand(u):
        return mp.exp((2 - gamma) * u - x * mp.exp(u))

    # The integrand turns down near u = ln(1/x); beyond turn + 12, x e^u > 1.6e5 leaves
    # nothing (mpmath would overflow evaluating it further out).
    turn = max(mp.log(1 / x), 1) if x < 1 else mp.mpf(1)
    points = [0, turn / 4, turn / 2, turn, turn + 1, turn + 3, turn + 6, turn + 12]
    return e_min ** (2 - gamma) * mp.quad(integrand, points)


def integral_reference(gamma, e_min, cutoff):
    value = stable(energy_integral, gamma, e_min, cutoff)
    cond = log_condition(lambda g, e, c: stable(energy_integral, g, e, c, digits=50), (gamma, e_min, cutoff),
                         scale_free=(2,) if cutoff == math.inf else ())
    return value, cond


# ---------------------------------------------------------------------------------------------
# Thomson transport and the density of one source
# ---------------------------------------------------------------------------------------------


def density(case, distance, age, z_s, z_o, energy):
    """n(E) [GeV^-1 kpc^-3] of one source with Thomson losses (module docstring)."""
    b0 = mp.mpf(case["b0"]) * MYR_S  # 1/(GeV Myr)
    kappa0 = mp.mpf(case["kappa0"]) * MYR_S / KPC_CM**2  # kpc^2/Myr
    delta = mp.mpf(case["delta"])
    e, t, s = mp.mpf(energy), mp.mpf(age), mp.mpf(distance)
    if t == 0 or C_KPC_PER_MYR * t < s:
        return mp.mpf(0)
    loss = b0 * e * t
    if loss >= 1:
        return mp.mpf(0)
    e0 = e / (1 - loss)
    if e0 > E_TOP:
        return mp.mpf(0)
    if delta == 1:
        l2 = kappa0 / b0 * mp.log(e0 / e)
    else:
        l2 = kappa0 / (b0 * (1 - delta)) * (e ** (delta - 1) - e0 ** (delta - 1))
    q = mp.mpf(case["q_star"]) * e0 ** (-mp.mpf(case["gamma"]))
    if case["cutoff"] != math.inf:
        q *= mp.exp(-e0 / mp.mpf(case["cutoff"]))
    spread = 4 * mp.pi * l2
    gaussian = spread ** mp.mpf(-1.5) * mp.exp(-(s**2) / (4 * l2))
    return q * (e0 / e) ** 2 * gaussian * theta(l2, case["z_max"], z_s, z_o)


def flux(case, energy):
    with mp.workdps(50):
        sources = zip(case["distances"], case["ages"])
        total = mp.fsum(density(case, s, t, 0.0, 0.0, energy) for s, t in sources)
        return FLUX_PER_DENSITY * total


# ---------------------------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------------------------

# b0 of about 1.6 eV/cm^3 of photons and field; kappa0 3e28 cm^2/s unless stated.
B0 = 1.6e-16
FLUX_ENERGIES = [10.0, 31.622776601683793, 100.0, 316.22776601683796, 1000.0, 3162.2776601683795, 10000.0]
SOURCES_PER_CASE = 150
T_MAX_MYR = 8.0


def flux_cases():
    """Halo sizes from l >> z_max to l << z_max, several indices and cut-offs."""
    settings = [
        # z_max, delta, kappa0, gamma, E_cut, q*
        (0.5, 0.6, 3e28, 2.2, 1e4, 1e50),
        (1.0, 1.0, 3e28, 2.0, 1e3, 3e49),
        (4.0, 0.6, 3e28, 2.5, math.inf, 1e51),
        (10.0, 0.33, 1e29, 2.2, 1e5, 1e50),
        (0.0, 0.6, 3e28, 2.2, 1e4, 1e50),
        (4.0, 0.6, 9e28, 1.8, 3e3, 2e48),
    ]
    rng = random.Random(20240611)
    cases = []
    for i, (z_max, delta, kappa0, gamma, cutoff, q_star) in enumerate(settings):
        distances = [rng.uniform(0.0, 10.0) for _ in range(SOURCES_PER_CASE)]
        # Ages denser at young ages, so that the highest energies (T(1e4 GeV) = 0.02 Myr) see
        # some sources; two ages exactly 0 and two sources outside the light cone.
        ages = [T_MAX_MYR * rng.random() ** 3 for _ in range(SOURCES_PER_CASE)]
        ages[0] = 0.0
        ages[1] = 0.0
        ages[2] = distances[2] / float(C_KPC_PER_MYR) * 0.5
        ages[3] = distances[3] / float(C_KPC_PER_MYR) * 0.999
        cases.append(dict(id=i, b0=B0, kappa0=kappa0, delta=delta, z_max=z_max, q_star=q_star, gamma=gamma,
                          cutoff=cutoff, distances=distances, ages=ages))
    return cases


def density_points(case, count, seed):
    """Single sources with heights, for the case's transport and spectrum."""
    rng = random.Random(seed)
    points = []
    h = case["z_max"] if case["z_max"] > 0 else 3.0
    for j in range(count):
        energy = 10 ** rng.uniform(1, 4)
        # Ages up to the one where E0 reaches E_top, so that every point contributes.
        t_top = (1 / energy - 1 / E_TOP) / (case["b0"] * float(MYR_S))
        age = t_top * rng.random() ** 2
        distance = rng.uniform(0.0, 2.0)
        if j % 4 == 0:
            z_s, z_o = rng.uniform(-h, h), rng.uniform(-h, h)
        elif j % 4 == 1:
            z_s, z_o = h * (1 - 10 ** rng.uniform(-6, -1)), h * (1 - 10 ** rng.uniform(-6, -1))
        elif j % 4 == 2:
            z_s, z_o = -h * (1 - 10 ** rng.uniform(-3, -1)), rng.uniform(-h, h)
        else:
            z_s, z_o = rng.uniform(-0.1, 0.1), 0.0
        points.append((distance, age, z_s, z_o, energy))
    return points


def theta_points():
    """(l2, z_max, z_s, z_o) across the switch at l = z_max/2, near boundaries, and without one."""
    rng = random.Random(7)
    ratios = [0.01, 0.05, 0.1, 0.3, 0.45, 0.49, 0.4999999, 0.5, 0.5000001, 0.51, 0.55, 0.7, 1.0, 2.0, 5.0, 10.0]
    points = []
    for h in [0.5, 1.0, 4.0, 10.0]:
        for ratio in ratios:
            l2 = (ratio * h) ** 2
            heights = [
                (0.0, 0.0),
                (rng.uniform(-h, h), rng.uniform(-h, h)),
                (rng.uniform(-h, h), 0.0),
                (h * (1 - 1e-3), h * (1 - 1e-3)),
                (-h * (1 - 1e-6), -h * (1 - 2e-6)),
                (h * (1 - 1e-2), -h * (1 - 0.5)),
                (h * 0.9, -h * 0.9),
                (h * (1 - 1e-5), -h * (1 - 2e-5)),
            ]
            points += [(l2, h, z_s, z_o) for z_s, z_o in heights]
    for l2 in [1e-4, 0.01, 1.0, 100.0]:
        points += [(l2, 0.0, 0.0, 0.0), (l2, 0.0, 0.3, -0.2)]
    return points


def integral_points():
    gammas = [-3.0, -1.0, 0.0, 0.3, 0.5, 1.0, 1.2, 1.5, 1.8, 2 - 1e-6, 2 - 1e-12, 2.0, 2 + 1e-9, 2.2, 2.5,
              3 - 1e-8, 3.0, 3.5, 4.0, 5.5, 7.0]
    points = []
    for gamma in gammas:
        for e_min in [1.0, 3.0]:
            for x in [1e-8, 1e-4, 0.01, 0.3, 0.99, 1.0, 1.01, 1.7, 5.0, 30.0]:
                points.append((gamma, e_min, e_min / x))
            if gamma > 2:
                points.append((gamma, e_min, math.inf))
    return points


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


def relative_difference(a, b):
    return abs(a - b) / abs(b) if b != 0 else abs(a)


def check():
    worst = mp.mpf(0)
    for l2, h, z_s, z_o in theta_points():
        if h == 0 or math.sqrt(l2) < 0.04 * h:
            continue  # the eigenfunction series needs ~1/l terms
        images = theta(l2, h, z_s, z_o)
        modes = stable(theta_eigenmodes, l2, h, z_s, z_o)
        worst = max(worst, relative_difference(modes, images))
    print("Theta: image sum against eigenfunction series, worst relative difference %s" % mp.nstr(worst, 3))
    assert worst < 1e-30
    worst = mp.mpf(0)
    for gamma, e_min, cutoff in integral_points():
        if cutoff == math.inf:
            continue
        with mp.workdps(40):
            quad = energy_integral_quad(gamma, e_min, cutoff)
        exact = stable(energy_integral, gamma, e_min, cutoff)
        worst = max(worst, relative_difference(quad, exact))
    print("energy integral: gammainc against quadrature, worst relative difference %s" % mp.nstr(worst, 3))
    assert worst < 1e-25


def theta_row(point):
    l2, h, z_s, z_o = point
    return "theta,%r,%r,%r,%r,%s,%s" % (l2, h, z_s, z_o, mp.nstr(theta(*point), 25),
                                        mp.nstr(theta_condition(*point), 4))


def integral_row(point):
    gamma, e_min, cutoff = point
    value, cond = integral_reference(*point)
    return "integral,%r,%r,%r,%s,%s" % (gamma, e_min, cutoff, mp.nstr(value, 25), mp.nstr(cond, 4))


def case_rows(case):
    parameters = [case[k] for k in ("b0", "kappa0", "delta", "z_max", "q_star", "gamma", "cutoff")]
    rows = ["case,%d,%r,%r,%r,%r,%r,%r,%r" % (case["id"], *parameters)]
    rows += ["source,%d,%r,%r" % (case["id"], s, t) for s, t in zip(case["distances"], case["ages"])]
    rows += ["flux,%d,%r,%s" % (case["id"], e, mp.nstr(flux(case, e), 25)) for e in FLUX_ENERGIES]
    for distance, age, z_s, z_o, energy in density_points(case, 24, 100 + case["id"]):
        with mp.workdps(50):
            n = density(case, distance, age, z_s, z_o, energy)
        inputs = (case["id"], distance, age, z_s, z_o, energy)
        rows.append("density,%d,%r,%r,%r,%r,%r,%s" % (*inputs, mp.nstr(n, 25)))
    return rows


def write_csv():
    with multiprocessing.Pool() as pool:
        theta_rows = pool.map(theta_row, theta_points())
        integral_rows = pool.map(integral_row, integral_points())
        case_blocks = pool.map(case_rows, flux_cases())
    header = [
        "# Reference values for tests/green.rs, written by tests/reference/green_reference.py csv",
        "# (record layouts in that script's docstring). Thomson losses; transport table [%r, %r] GeV."
        % (E_TABLE_MIN, E_TOP),
    ]
    lines = header + theta_rows + integral_rows + [row for block in case_blocks for row in block]
    with open(CSV_PATH, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %d records to %s" % (len(lines) - len(header), CSV_PATH))


def main():
    commands = {"check": [check], "csv": [write_csv], "all": [check, write_csv]}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit("usage: green_reference.py {check|csv|all}")
    for command in commands[sys.argv[1]]:
        command()


if __name__ == "__main__":
    main()
