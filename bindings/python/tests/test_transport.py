import numpy as np
import pytest

import crkernels as crk

MYR_S = 3.15576e13
KPC_CM = 3.0856775814913673e21
B0 = 1.2e-16  # 1/(GeV s)
KAPPA0 = 3e28  # cm^2/s
DELTA = 0.6
EMIN, EMAX = 1.0, 1e6


@pytest.fixture(scope="module")
def transport():
    losses = crk.Losses.thomson(B0)
    tr = crk.Transport(losses, KAPPA0, DELTA, 0.0, EMIN, EMAX)
    yield tr
    tr.close()
    losses.close()


def tau_myr(e, e0):
    return (1.0 / B0) * (1.0 / e - 1.0 / e0) / MYR_S


def test_loss_time_thomson_closed_form(transport):
    e = np.array([1.0, 10.0, 100.0, 1e3, 1e4])
    e0 = e * np.array([1.5, 10.0, 3.0, 100.0, 1.01])
    np.testing.assert_allclose(transport.loss_time(e, e0), tau_myr(e, e0), rtol=1e-6)


def test_loss_length_thomson_closed_form(transport):
    e = np.array([2.0, 30.0, 500.0])
    e0 = e * 20
    # L = int_E^E0 kappa/b dE' = kappa0 / (b0 (1 - delta)) (E^(delta-1) - E0^(delta-1)) [cm^2]
    l2 = KAPPA0 / (B0 * (1 - DELTA)) * (e ** (DELTA - 1) - e0 ** (DELTA - 1)) / KPC_CM**2
    np.testing.assert_allclose(transport.loss_length2(e, e0), l2, rtol=1e-6)
    np.testing.assert_allclose(transport.loss_length(e, e0), np.sqrt(l2), rtol=1e-6)


def test_initial_energy_and_max_age(transport):
    e = np.array([10.0, 100.0, 1000.0])
    t = np.array([0.1, 0.5, 0.2])  # Myr
    e0 = 1.0 / (1.0 / e - B0 * t * MYR_S)
    np.testing.assert_allclose(transport.initial_energy(e, t), e0, rtol=1e-6)
    np.testing.assert_allclose(transport.max_age(e), tau_myr(e, EMAX), rtol=1e-6)
    # older than T(E): no solution below E_max
    assert np.isinf(transport.initial_energy([1000.0], [1e3])[0])
    # broadcasting
    assert transport.initial_energy(e, 0.1).shape == (3,)


def test_bad_input(transport):
    with pytest.raises(crk.OutOfDomain):
        transport.loss_time([100.0], [10.0])  # E0 < E
    with pytest.raises(crk.OutOfDomain):
        transport.max_age([1e9])  # above the table
    with pytest.raises(crk.InvalidArgument):
        transport.initial_energy([10.0], [-1.0])
    with crk.Losses.thomson(B0) as losses:
        with pytest.raises(crk.InvalidArgument):
            crk.Transport(losses, -1.0, DELTA, 0.0, EMIN, EMAX)
        with pytest.raises(crk.InvalidArgument):
            crk.Transport(losses, KAPPA0, DELTA, 0.0, 10.0, 1.0)
