import numpy as np
import pytest

import crkernels as crk

SIGMA_T = 6.6524587321e-25  # cm^2
C_CM_S = 2.99792458e10
ME_GEV = 0.51099895e-3
ERG_GEV = 624.150907446  # GeV per erg


def thomson_b0(u_photons_ev_cm3, b_ug):
    """b0 [1/(GeV s)] = (4/3) sigma_T c (U_rad + U_B) / (m_e c^2)^2, U in GeV/cm^3."""
    u_b = (b_ug * 1e-6) ** 2 / (8 * np.pi) * ERG_GEV  # GeV/cm^3
    return 4.0 / 3.0 * SIGMA_T * C_CM_S * (u_photons_ev_cm3 * 1e-9 + u_b) / ME_GEV**2


def test_thomson_from_coefficient_is_b0_e2():
    b0 = 1.3e-16
    e = np.logspace(-1, 5, 41)
    with crk.Losses.thomson(b0) as losses:
        np.testing.assert_allclose(losses.rate(e), b0 * e**2, rtol=1e-14)


def test_thomson_model_matches_closed_form():
    fields = [(2.725, 0.26), (40.0, 0.3), (4000.0, 0.6)]
    b_ug = 3.0
    e = np.logspace(0, 5, 21)
    b0 = thomson_b0(sum(u for _, u in fields), b_ug)
    with crk.Losses("thomson", fields, b_ug) as losses:
        np.testing.assert_allclose(losses.rate(e), b0 * e**2, rtol=1e-6)


def test_preset_thomson_equals_explicit_components():
    comps = crk.isrf_preset_components("delahaye2010")
    assert comps.ndim == 2 and comps.shape[1] == 2 and len(comps) >= 1
    e = np.logspace(1, 4, 7)
    with crk.Losses.preset("thomson", "delahaye2010", 3.0) as a, crk.Losses("thomson", comps, 3.0) as b:
        np.testing.assert_allclose(a.rate(e), b.rate(e), rtol=1e-12)
        np.testing.assert_allclose(a.rate(e), thomson_b0(comps[:, 1].sum(), 3.0) * e**2, rtol=1e-6)


def test_klein_nishina_below_thomson_and_shape_kept():
    e = np.logspace(1, 5, 12).reshape(3, 4)
    with crk.Losses.preset("kn_exact", "delahaye2010", 3.0) as kn, crk.Losses.preset("thomson", "delahaye2010", 3.0) as th:
        r = kn.rate(e)
        assert r.shape == e.shape and r.dtype == np.float64
        assert np.all(r > 0) and np.all(r < th.rate(e))
        # the Thomson limit at low energy
        np.testing.assert_allclose(kn.rate([1e-2]), th.rate([1e-2]), rtol=1e-2)


def test_bad_input_raises():
    with crk.Losses.thomson(1e-16) as losses:
        with pytest.raises(crk.InvalidArgument, match="element 1"):
            losses.rate([1.0, -2.0])
        with pytest.raises(crk.InvalidArgument):
            losses.rate([np.nan])
    with pytest.raises(crk.InvalidArgument):
        crk.Losses.thomson(-1.0)
    with pytest.raises(crk.InvalidArgument):
        crk.Losses.preset(0, 99, 3.0)
    with pytest.raises(crk.InvalidArgument):
        crk.Losses("thomson", [(-5.0, 1.0)], 0.0)
    with pytest.raises(crk.InvalidArgument):
        crk.isrf_preset_components(42)


def test_closed_handle_raises_null_pointer():
    losses = crk.Losses.thomson(1e-16)
    losses.close()
    losses.close()  # idempotent
    with pytest.raises(crk.NullPointer):
        losses.rate([1.0])


def test_errors_are_subclasses():
    for cls in (crk.NullPointer, crk.InvalidArgument, crk.OutOfDomain, crk.Io, crk.Format, crk.NoDevice,
                crk.Device, crk.Cancelled, crk.Panic):
        assert issubclass(cls, crk.Error)
