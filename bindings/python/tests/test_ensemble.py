import numpy as np
import pytest

import crkernels as crk

E = np.logspace(2.4, 4.2, 7)


@pytest.fixture(scope="module")
def setup():
    losses = crk.Losses.preset("kn_exact", "delahaye2010", 3.0)
    tr = crk.Transport(losses, 3e28, 0.6, 4.0, 100.0, 1e7)
    spectrum = crk.SourceSpectrum.from_energy(1e48, 1.0, 2.2, 1e4)
    ens = crk.Ensemble(tr, E, sn_rate_per_Myr=4.55e4, t_max_Myr=7.0, s_max_kpc=10.0, spectrum=spectrum,
                       spatial="spiral_arms")
    yield tr, spectrum, ens
    ens.close()
    tr.close()
    losses.close()


def test_source_spectrum_from_energy_normalisation():
    # W = int_{Emin}^inf E q* E^-gamma dE = q* Emin^(2-gamma)/(gamma-2) GeV, no cut-off
    s = crk.SourceSpectrum.from_energy(1e48, 1.0, 2.2)
    w_gev = 1e48 * 624.150907446
    np.testing.assert_allclose(s.q_star_per_GeV, w_gev * 0.2, rtol=1e-6)
    assert s.gamma == 2.2 and np.isinf(s.cutoff_GeV)


def test_realisation_equals_flux_from_its_sources(setup):
    tr, spectrum, ens = setup
    seed = 2024
    flux = ens.run(seed, 5, 3, n_threads=1)
    assert flux.shape == (3, E.size)
    for i in range(3):
        d, t = ens.sources(seed, 5 + i)
        assert d.size == t.size and d.size > 0
        ref = crk.flux_from_sources(tr, spectrum, d, t, E)
        np.testing.assert_allclose(flux[i], ref, rtol=1e-12)


def test_threads_split_and_generate_agree(setup):
    tr, spectrum, ens = setup
    a = ens.run(7, 0, 6, n_threads=1)
    b = ens.run(7, 0, 6, n_threads=2)
    c = np.vstack([ens.run(7, 0, 2, 1), ens.run(7, 2, 4, 2)])
    g = crk.generate(tr, E, 7, 0, 6, 2, sn_rate_per_Myr=4.55e4, t_max_Myr=7.0, s_max_kpc=10.0,
                     spectrum=spectrum, spatial=crk.ensemble.CRK_SPATIAL_SPIRAL_ARMS)
    assert np.array_equal(a, b) and np.array_equal(a, c) and np.array_equal(a, g)
    assert not np.array_equal(a, ens.run(8, 0, 6, 1))


def test_progress_and_cancel(setup):
    _, _, ens = setup
    calls = []
    ens.run(1, 0, 4, 1, progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1] == (4, 4)
    with pytest.raises(crk.Cancelled) as info:
        ens.run(1, 0, 2000, 1, progress=lambda done, total: True)
    assert info.value.partial.shape == (2000, E.size)


def test_bad_input(setup):
    tr, spectrum, _ = setup
    with pytest.raises(crk.InvalidArgument):
        crk.Ensemble(tr, E, sn_rate_per_Myr=-1.0, t_max_Myr=7.0, s_max_kpc=10.0, spectrum=spectrum)
    with pytest.raises(crk.OutOfDomain):
        crk.Ensemble(tr, [10.0], sn_rate_per_Myr=1.0, t_max_Myr=7.0, s_max_kpc=10.0, spectrum=spectrum)
    with pytest.raises(crk.InvalidArgument):
        crk.flux_from_sources(tr, spectrum, [-1.0], [1.0], E)
    with pytest.raises(crk.InvalidArgument):
        crk.SourceSpectrum.from_energy(-1.0, 1.0, 2.2)


def test_gpu_raises_no_device(setup, no_gpu):
    tr, spectrum, ens = setup
    assert crk.device_count() == 0
    with pytest.raises(crk.NoDevice):
        ens.run_gpu(1, 0, 2, device=0)
    with pytest.raises(crk.NoDevice):
        ens.run_gpu_device(1, 0, 2, 0x1000, device=0)
    with pytest.raises(crk.NullPointer):
        ens.run_gpu_device(1, 0, 2, 0, device=0)
    with pytest.raises(crk.NoDevice):
        crk.generate_gpu(tr, E, 1, 0, 2, 0, sn_rate_per_Myr=4.55e4, t_max_Myr=7.0, s_max_kpc=10.0,
                         spectrum=spectrum)
    with pytest.raises(crk.NoDevice):
        crk.device_info(0)


def test_f32_tier_within_1e_5_of_the_sources_sum(setup):
    tr, spectrum, exact = setup
    with crk.Ensemble(tr, E, sn_rate_per_Myr=4.55e4, t_max_Myr=7.0, s_max_kpc=10.0, spectrum=spectrum,
                      precision="f32") as single:
        flux = single.run(2024, 5, 3, n_threads=2)
        assert np.array_equal(flux, single.run(2024, 5, 3, n_threads=1))
        for i in range(3):
            d, t = single.sources(2024, 5 + i)
            d_exact, t_exact = exact.sources(2024, 5 + i)
            assert np.array_equal(d, d_exact) and np.array_equal(t, t_exact)
            np.testing.assert_allclose(flux[i], crk.flux_from_sources(tr, spectrum, d, t, E), rtol=1e-5)
        # The GPU path runs the f32 tier too (here: no device, or within the tier's 1e-5).
        try:
            np.testing.assert_allclose(single.run_gpu(2024, 5, 3), exact.run(2024, 5, 3), rtol=1e-5)
        except crk.NoDevice:
            pass
    with pytest.raises(ValueError):
        crk.Ensemble(tr, E, sn_rate_per_Myr=1.0, t_max_Myr=7.0, s_max_kpc=10.0, spectrum=spectrum,
                     precision="half")
    with pytest.raises(crk.InvalidArgument, match="CRK_PRECISION_F32"):
        crk.Ensemble(tr, E, sn_rate_per_Myr=1.0, t_max_Myr=7.0, s_max_kpc=10.0, spectrum=spectrum,
                     precision=7)


def test_vector_isa_names_a_set():
    assert crk.vector_isa() in ("baseline", "avx2", "avx512", "neon")
