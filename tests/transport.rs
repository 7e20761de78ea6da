//! Transport tables against independent references: the Thomson closed forms of PHYSICS.md,
//! and for Klein-Nishina losses, composite Gauss-Legendre quadrature of 1/b and kappa/b in
//! ln E, with b built here from the universal function R(u) (not from the library's table).

use crkernels::math::quadrature::gauss_legendre;
use crkernels::physics::klein_nishina::loss_factor;
use crkernels::physics::losses::{EnergyLosses, LossModel};
use crkernels::physics::photon_field::{IsrfPreset, PhotonField};
use crkernels::physics::transport::Transport;

const MYR_S: f64 = 3.15576e13;
const KPC_CM: f64 = 3.0856775814913673e21;
const ME_GEV: f64 = 0.51099895e-3;
const KB_EV: f64 = 8.617333262e-5;
const SIGMA_T: f64 = 6.6524587321e-25;
const C_CM_S: f64 = 2.99792458e10;

fn rel(a: f64, b: f64) -> f64 {
    ((a - b) / b).abs()
}

/// integral_a^b f(E) dE, composite 20-point Gauss-Legendre in ln E with panels of 0.05.
fn integrate(f: &dyn Fn(f64) -> f64, a: f64, b: f64) -> f64 {
    let rule = gauss_legendre(20);
    // ln(b/a) without cancellation when b is close to a.
    let span = ((b - a) / a).ln_1p();
    let panels = ((span / 0.05).ceil() as usize).max(1);
    let h = span / panels as f64;
    let mut sum = 0.0;
    for p in 0..panels {
        let mid = (p as f64 + 0.5) * h;
        for &(x, w) in &rule {
            let e = a * (mid + 0.5 * h * x).exp();
            sum += w * 0.5 * h * e * f(e);
        }
    }
    sum
}

/// b(E) [GeV/s] of the exact Klein-Nishina model, from R(u) and PHYSICS.md's constants.
fn kn_rate(field: &PhotonField, e: f64) -> f64 {
    let thomson = 4.0 / 3.0 * SIGMA_T * C_CM_S * 1e-9 / (ME_GEV * ME_GEV) * e * e;
    let magnetic =
        (field.magnetic_field_ug() * 1e-6).powi(2) / (8.0 * std::f64::consts::PI) * 6.24150907446e11;
    let photons: f64 = field
        .components()
        .iter()
        .map(|c| {
            let u = 4.0 * (e / ME_GEV) * KB_EV * c.temperature_k * 1e-9 / ME_GEV;
            c.energy_density_ev_per_cm3 * loss_factor(u)
        })
        .sum();
    thomson * (photons + magnetic)
}

#[test]
fn thomson_tables_match_the_closed_forms() {
    let b0 = 1.2e-16; // 1/(GeV s)
    let b0_myr = b0 * MYR_S;
    let kappa0 = 3e28;
    let kappa_kpc2_myr = kappa0 * MYR_S / (KPC_CM * KPC_CM);
    let losses = EnergyLosses::thomson(b0).unwrap();
    let (e_min, e_max) = (1.0, 1e7);
    for delta in [0.2, 0.6, 1.0] {
        let tr = Transport::new(&losses, kappa0, delta, 4.0, e_min, e_max).unwrap();
        let mut worst = [0.0f64; 3];
        for i in 0..=60 {
            let e = e_min * (e_max / e_min).powf(i as f64 / 60.0);
            // Ages from tiny to the divergence t* = 1/(b0 E), as long as E0 <= E_max.
            let t_star = 1.0 / (b0_myr * e);
            for &fraction in &[1e-9, 1e-5, 0.01, 0.3, 0.5, 0.9, 0.99, 0.999, 0.9999, 0.99999] {
                let t = fraction * t_star;
                let e0_exact = e / (1.0 - b0_myr * e * t);
                if e0_exact > e_max {
                    assert_eq!(tr.initial_energy(e, t).unwrap(), f64::INFINITY);
                    continue;
                }
                let e0 = tr.initial_energy(e, t).unwrap();
                // Condition number of E0 in t is E0/E: the closed form itself carries it.
                worst[0] = worst[0].max(rel(e0, e0_exact));
                let tau = tr.loss_time(e, e0_exact).unwrap();
                // Closed forms written without cancellation: 1/E - 1/E0 = (E0 - E)/(E E0), and
                // E^(d-1) - E0^(d-1) = -E^(d-1) expm1((d-1) ln(E0/E)).
                let log_ratio = ((e0_exact - e) / e).ln_1p();
                let tau_exact = (e0_exact - e) / (e * e0_exact) / b0_myr;
                worst[1] = worst[1].max(rel(tau, tau_exact));
                let l2 = tr.loss_length2(e, e0_exact).unwrap();
                let l2_exact = if delta == 1.0 {
                    kappa_kpc2_myr / b0_myr * log_ratio
                } else {
                    kappa_kpc2_myr / (b0_myr * (1.0 - delta))
                        * (-e.powf(delta - 1.0) * ((delta - 1.0) * log_ratio).exp_m1())
                };
                worst[2] = worst[2].max(rel(l2, l2_exact));
            }
            // The oldest contributing age: T(E) = (1/E - 1/E_max)/b0.
            let max_age = tr.max_age(e).unwrap();
            if e < e_max {
                assert!(rel(max_age, (1.0 / e - 1.0 / e_max) / b0_myr) < 1e-12, "{e}");
            }
        }
        println!(
            "delta {delta}: worst relative errors E0 {:.2e}, tau {:.2e}, l2 {:.2e}",
            worst[0], worst[1], worst[2]
        );
        assert!(worst.iter().all(|&w| w < 1e-9), "delta {delta}: {worst:?}");
    }
}

#[test]
fn near_equal_energies_keep_their_relative_accuracy() {
    let b0 = 1e-16;
    let losses = EnergyLosses::thomson(b0).unwrap();
    let tr = Transport::new(&losses, 1e28, 0.5, 0.0, 1.0, 1e6).unwrap();
    for &e in &[1.0, 3.7, 1000.0, 1.0 + 1.0 / 8.0, 2.0] {
        for &gap in &[1e-12, 1e-9, 1e-6, 1e-3] {
            let e0 = e * (1.0 + gap);
            let exact = (e0 - e) / (e * e0) / (b0 * MYR_S);
            assert!(rel(tr.loss_time(e, e0).unwrap(), exact) < 1e-12, "{e} {gap}");
        }
    }
}

#[test]
fn klein_nishina_tables_match_independent_quadrature() {
    let field = PhotonField::preset(IsrfPreset::Delahaye2010, 3.0).unwrap();
    let losses = EnergyLosses::new(LossModel::KleinNishina, &field);
    let (kappa0, delta) = (3e28, 0.6);
    let kappa_kpc2_myr = kappa0 * MYR_S / (KPC_CM * KPC_CM);
    let (e_min, e_max) = (1.0, 1e7);
    let tr = Transport::new(&losses, kappa0, delta, 4.0, e_min, e_max).unwrap();
    let inverse_rate_myr = |e: f64| 1.0 / (kn_rate(&field, e) * MYR_S);
    let kappa_over_rate = |e: f64| kappa_kpc2_myr * e.powf(delta) / (kn_rate(&field, e) * MYR_S);
    let mut worst = [0.0f64; 4];
    let (mut worst_e0, mut worst_kappa) = (0.0f64, 0.0f64);
    for i in 0..=14 {
        let e = e_min * (e_max / e_min).powf(i as f64 / 14.5);
        for &ratio in &[1.0 + 1e-6, 1.001, 1.3, 4.0, 100.0, 1e4, 1e6, 9.99e6] {
            let e0 = e * ratio;
            if e0 > e_max {
                continue;
            }
            worst[0] = worst[0].max(rel(tr.loss_time(e, e0).unwrap(), integrate(&inverse_rate_myr, e, e0)));
            worst[1] = worst[1].max(rel(tr.loss_length2(e, e0).unwrap(), integrate(&kappa_over_rate, e, e0)));
            // E0 from the table for the age tau(E, e0) found by quadrature. A relative error
            // r in that age moves E0 by r * kappa, kappa = tau b(E0)/E0 (up to E0/E near the
            // divergence), whatever computes E0; the quadrature and the table agree on tau to
            // 1e-14 (above), so E0 is checked to 1e-9 plus that inherited part.
            let age = integrate(&inverse_rate_myr, e, e0);
            let found = tr.initial_energy(e, age).unwrap();
            let kappa = age / (inverse_rate_myr(e0) * e0);
            let error = rel(found, e0);
            worst_e0 = worst_e0.max(error);
            worst[2] = worst[2].max(error / (1.0 + 1e-14 / 1e-9 * kappa));
            worst_kappa = worst_kappa.max(kappa);
        }
        worst[3] =
            worst[3].max(rel(tr.max_age(e).unwrap(), integrate(&inverse_rate_myr, e, e_max).max(1e-300)));
    }
    println!(
        "KN: worst relative errors tau {:.2e}, l2 {:.2e}, T {:.2e}; E0 {worst_e0:.2e} raw, {:.2e} \
         after the inherited part (largest condition number {worst_kappa:.1e})",
        worst[0], worst[1], worst[3], worst[2]
    );
    assert!(worst.iter().all(|&w| w < 1e-9), "{worst:?}");
}

#[test]
fn klein_nishina_rate_table_matches_direct_evaluation() {
    for preset in IsrfPreset::ALL {
        let field = PhotonField::preset(preset, 3.0).unwrap();
        let losses = EnergyLosses::new(LossModel::KleinNishina, &field);
        let mut worst: f64 = 0.0;
        for i in 0..=4000 {
            let e = 1e-4 * 1e14f64.powf(i as f64 / 4000.0);
            worst = worst.max(rel(losses.rate(e).unwrap(), kn_rate(&field, e)));
        }
        println!("{}: worst relative error of the rate table {worst:.2e}", preset.name());
        assert!(worst < 1e-12, "{}: {worst}", preset.name());
    }
}

#[test]
fn bad_arguments_are_errors() {
    use crkernels::Error;
    let losses = EnergyLosses::thomson(1e-16).unwrap();
    assert!(matches!(Transport::new(&losses, 3e28, 0.5, 4.0, 10.0, 1.0), Err(Error::InvalidArgument(_))));
    assert!(matches!(Transport::new(&losses, 0.0, 0.5, 4.0, 1.0, 10.0), Err(Error::InvalidArgument(_))));
    assert!(matches!(
        Transport::new(&losses, 3e28, f64::NAN, 4.0, 1.0, 10.0),
        Err(Error::InvalidArgument(_))
    ));
    let nothing = EnergyLosses::new(LossModel::KleinNishina, &PhotonField::new(&[], 0.0).unwrap());
    assert!(matches!(Transport::new(&nothing, 3e28, 0.5, 4.0, 1.0, 10.0), Err(Error::InvalidArgument(_))));
    let tr = Transport::new(&losses, 3e28, 0.5, 4.0, 1.0, 10.0).unwrap();
    assert!(matches!(tr.initial_energy(11.0, 1.0), Err(Error::OutOfDomain(_))));
    assert!(matches!(tr.initial_energy(5.0, -1.0), Err(Error::InvalidArgument(_))));
    assert!(matches!(tr.initial_energy(5.0, f64::INFINITY), Err(Error::InvalidArgument(_))));
    assert!(matches!(tr.loss_time(5.0, 4.0), Err(Error::OutOfDomain(_))));
    assert!(matches!(tr.loss_length2(5.0, 11.0), Err(Error::OutOfDomain(_))));
    assert_eq!(tr.loss_length2(5.0, f64::INFINITY).unwrap(), f64::INFINITY);
    let mut out = [0.0; 2];
    let err = tr.initial_energies(&[5.0, f64::NAN], &[1.0, 1.0], &mut out).unwrap_err();
    assert!(err.message().contains("element 1"), "{err}");
    assert_eq!(out, [0.0, 0.0], "nothing written on error");
    assert!(matches!(tr.initial_energies(&[5.0], &[1.0, 1.0], &mut out), Err(Error::InvalidArgument(_))));
}

#[test]
fn unusual_ranges_build_and_invert_consistently() {
    let field = PhotonField::default_field();
    let kn = EnergyLosses::new(LossModel::KleinNishina, &field);
    for (e_min, e_max) in [(1e-3, 1e12), (100.0, 100.001), (1.0, 2.0), (0.5, 7.0e4), (3e5, 1e9)] {
        let tr = Transport::new(&kn, 1e28, 0.33, 0.0, e_min, e_max).unwrap();
        let mut worst: f64 = 0.0;
        for i in 0..=40 {
            let e = e_min * (e_max / e_min).powf(i as f64 / 40.5);
            let oldest = tr.max_age(e).unwrap();
            for fraction in [1e-6, 0.1, 0.5, 0.9, 0.999] {
                let t = fraction * oldest;
                let e0 = tr.initial_energy(e, t).unwrap();
                assert!(e0 >= e && e0 <= e_max, "[{e_min}, {e_max}]: E0({e}, {t}) = {e0}");
                // tau(E, E0(E, t)) = t, up to what doubles allow: an ulp of E0 moves tau by
                // eps E0/(E0 - E) relative (young sources, narrow tables); near
                // E_max a relative error r in T(E) moves E0 by r kappa (kappa = T b(E0)/E0).
                let kappa = oldest / (inverse_rate(&kn, e0) * e0);
                let representable = f64::EPSILON * e0 / (e0 - e);
                let allowed = 4e-12 + 1e-14 * kappa + 2.0 * representable;
                worst = worst.max(rel(tr.loss_time(e, e0).unwrap(), t) / allowed);
            }
            assert_eq!(tr.initial_energy(e, oldest * 1.001 + 1e-300).unwrap(), f64::INFINITY);
        }
        assert!(worst < 1.0, "[{e_min}, {e_max}]: {worst:e} of the allowed error");
    }
}

/// 1/b(E) [Myr/GeV] from the library's rate (the round trip above tests the tables).
fn inverse_rate(losses: &EnergyLosses, e: f64) -> f64 {
    1.0 / (losses.rate(e).unwrap() * MYR_S)
}
