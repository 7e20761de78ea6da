//! Loss rates against closed forms and limits computed here from PHYSICS.md's constants:
//! Thomson, the first-order Klein-Nishina expansion (SECRET eq. 2.4) and the exact rate's
//! Thomson and deep Klein-Nishina limits; and bad input.

use crkernels::Error;
use crkernels::physics::losses::{EnergyLosses, LossModel};
use crkernels::physics::photon_field::{Greybody, IsrfPreset, PhotonField};

const SIGMA_T: f64 = 6.6524587321e-25;
const C_CM_S: f64 = 2.99792458e10;
const ME_GEV: f64 = 0.51099895e-3;
const KB_EV: f64 = 8.617333262e-5;
/// 4 zeta(5) / zeta(4), from zeta(5) = 1.0369277551433699263 and zeta(4) = pi^4/90.
const PLANCK_RATIO: f64 = 4.0 * 1.036_927_755_143_37 * 90.0
    / (std::f64::consts::PI * std::f64::consts::PI * std::f64::consts::PI * std::f64::consts::PI);

fn rel(a: f64, b: f64) -> f64 {
    ((a - b) / b).abs()
}

/// (4/3) sigma_T c gamma^2 U [GeV/s] for U in eV/cm^3.
fn thomson(u_ev_cm3: f64, e: f64) -> f64 {
    4.0 / 3.0 * SIGMA_T * C_CM_S * (e / ME_GEV).powi(2) * u_ev_cm3 * 1e-9
}

fn magnetic(b_ug: f64) -> f64 {
    (b_ug * 1e-6).powi(2) / (8.0 * std::f64::consts::PI) * 6.24150907446e11
}

#[test]
fn thomson_model_is_b0_e2() {
    let field = PhotonField::preset(IsrfPreset::Galprop6p5Kpc, 5.0).unwrap();
    let losses = EnergyLosses::new(LossModel::Thomson, &field);
    let total = 0.261 + 0.5 + 1.0 + magnetic(5.0);
    for e in [1e-2, 1.0, 33.0, 1e4, 1e8] {
        assert!(rel(losses.rate(e).unwrap(), thomson(total, e)) < 1e-14, "{e}");
    }
    let direct = EnergyLosses::thomson(2.5e-16).unwrap();
    assert!(rel(direct.rate(300.0).unwrap(), 2.5e-16 * 9e4) < 1e-15);
}

#[test]
fn expansion_equals_the_closed_form() {
    let field = PhotonField::default_field();
    let losses = EnergyLosses::new(LossModel::KleinNishinaExpansion, &field);
    let closed_form = |e: f64| {
        let gamma = e / ME_GEV;
        let bracketed: f64 = field
            .components()
            .iter()
            .map(|c| {
                let ratio = PLANCK_RATIO * KB_EV * c.temperature_k / (ME_GEV * 1e9);
                c.energy_density_ev_per_cm3 * (1.0 - 6.3 * gamma * ratio)
            })
            .sum();
        thomson(bracketed + magnetic(3.0), e)
    };
    // The 23209 K component's bracket reaches zero at E = m^2 c^4 / (6.3 * 3.832 k T).
    let zero = ME_GEV * ME_GEV * 1e9 / (6.3 * PLANCK_RATIO * KB_EV * 23209.0);
    assert!(rel(losses.max_energy_gev(), zero) < 1e-14);
    for i in 0..=100 {
        let e = 1e-3 * (0.5 * zero / 1e-3).powf(i as f64 / 100.0);
        assert!(rel(losses.rate(e).unwrap(), closed_form(e)) < 1e-14, "{e}");
    }
    assert!(matches!(losses.rate(zero * 1.0001), Err(Error::OutOfDomain(_))));
    assert!(matches!(losses.rate(1e3), Err(Error::OutOfDomain(_))));
}

#[test]
fn exact_rate_reaches_its_limits() {
    // One 5000 K component without magnetic field.
    let t = 5000.0;
    let field = PhotonField::new(&[Greybody::new(t, 1.0)], 0.0).unwrap();
    let losses = EnergyLosses::new(LossModel::KleinNishina, &field);
    let u_of = |e: f64| 4.0 * (e / ME_GEV) * KB_EV * t / (ME_GEV * 1e9);
    // Thomson limit: R = 1 - (63/40)(4 zeta(5)/zeta(4)) u + O(u^2), the u^2 coefficient
    // being (15/pi^4)(441/200) Gamma(6) zeta(6) = 41.45.
    for e in [1e-3, 1e-2, 3e-2] {
        let u = u_of(e);
        let r = losses.rate(e).unwrap() / thomson(1.0, e);
        let series = 1.0 - 63.0 / 40.0 * PLANCK_RATIO * u;
        assert!((r - series).abs() < 45.0 * u * u, "{e}: {r} vs {series}");
    }
    // Deep Klein-Nishina: R -> 45/(4 pi^2 u^2) (ln u - 1.98051), relative corrections
    // of order ln^2(u)/u.
    for e in [1e7, 1e8, 1e9] {
        let u = u_of(e);
        let r = losses.rate(e).unwrap() / thomson(1.0, e);
        let asymptote = 45.0 / (4.0 * std::f64::consts::PI.powi(2) * u * u) * (u.ln() - 1.980_51);
        assert!(rel(r, asymptote) < 0.5 * u.ln().powi(2) / u + 1e-5, "{e}: {r} vs {asymptote}");
    }
    // PHYSICS.md: the expansion reaches zero at u = 0.1657 where the exact ratio is 0.515.
    let e_zero = 0.1657 / u_of(1.0);
    let r = losses.rate(e_zero).unwrap() / thomson(1.0, e_zero);
    assert!((r - 0.515).abs() < 1e-3, "{r}");
}

#[test]
fn bad_energies_are_errors_and_nothing_is_written() {
    let losses = EnergyLosses::new(LossModel::KleinNishina, &PhotonField::default_field());
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert!(matches!(losses.rate(bad), Err(Error::InvalidArgument(_))), "{bad}");
    }
    let mut out = [7.0; 3];
    let err = losses.rates(&[1.0, 2.0, -3.0], &mut out).unwrap_err();
    assert!(err.message().contains("element 2"), "{err}");
    assert_eq!(out, [7.0; 3]);
    assert!(matches!(losses.rates(&[1.0], &mut out), Err(Error::InvalidArgument(_))));
    assert!(losses.rates(&[], &mut []).is_ok());
    assert!(matches!(EnergyLosses::thomson(0.0), Err(Error::InvalidArgument(_))));
    assert!(matches!(EnergyLosses::thomson(f64::NAN), Err(Error::InvalidArgument(_))));
}
