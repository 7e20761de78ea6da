//! Force-field solar modulation against the independent mpmath implementation
//! (tests/reference/modulation_reference.py), closed-form limits and energy conservation.

mod fit_support;

use crkernels::physics::modulation::ModulationPotential;
use crkernels::physics::particle::Particle;
use fit_support::Table;

fn rel(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs()
}

#[test]
fn matches_the_python_reference() {
    let table = Table::read("modulation.csv");
    let mut worst: f64 = 0.0;
    for r in 0..table.rows.len() {
        let particle =
            Particle::new(table.get(r, "A") as u32, table.get(r, "Z") as i32, table.get(r, "m")).unwrap();
        let potential = ModulationPotential {
            phi0_gv: table.get(r, "Phi0"),
            phi1_positive_gv: table.get(r, "Phi1p"),
            phi1_negative_gv: table.get(r, "Phi1m"),
        };
        let t = table.get(r, "T");
        let point = potential.map_unchecked(&particle, t);
        let e = [
            rel(particle.rigidity_gv(t), table.get(r, "R")),
            rel(particle.beta(t), table.get(r, "beta")),
            rel(point.interstellar_kinetic_gev, table.get(r, "T_IS")),
            rel(point.flux_factor, table.get(r, "jacobian")),
        ];
        let phi = table.get(r, "Phi");
        let e_phi = if phi == 0.0 { point.potential_gv.abs() } else { rel(point.potential_gv, phi) };
        // The batch form with an interstellar T^-2.7 tabulated on a fine grid (exact in log-log).
        let grid = [1e-3, 1e5];
        let lis = [1e-3f64.powf(-2.7), 1e5f64.powf(-2.7)];
        let mut flux = [0.0];
        potential.modulate(&particle, &grid, &lis, &[t], &mut flux).unwrap();
        let e_flux = rel(flux[0], table.get(r, "flux_TOA"));
        worst = worst.max(e.iter().copied().fold(e_phi.max(e_flux), f64::max));
    }
    println!("worst relative difference from mpmath: {worst:.2e}");
    assert!(worst < 1e-12, "{worst:e}");
}

#[test]
fn energy_conservation_and_liouville() {
    let potential = ModulationPotential { phi0_gv: 0.4, phi1_positive_gv: 0.8, phi1_negative_gv: 0.2 };
    for particle in [
        Particle::proton(),
        Particle::antiproton(),
        Particle::electron(),
        Particle::positron(),
        Particle::nucleus(4, 2).unwrap(),
        Particle::nucleus(12, 6).unwrap(),
    ] {
        let (a, m) = (particle.mass_number() as f64, particle.nucleon_mass_gev());
        let z = particle.charge().unsigned_abs() as f64;
        for k in 0..40 {
            let t = 10f64.powf(-2.0 + 0.15 * k as f64);
            let point = potential.map_unchecked(&particle, t);
            // Total energy of the nucleus: E_IS - E = |Z| e Phi (each side from its own T).
            let (e_toa, e_is) = (a * (t + m), a * (point.interstellar_kinetic_gev + m));
            assert!(((e_is - e_toa) - z * point.potential_gv).abs() <= 1e-12 * e_is, "{particle:?} T = {t}");
            // flux / p^2 is conserved: the factor is p_TOA^2 / p_IS^2 in the total-energy form.
            let big_m = a * m;
            let factor = (e_toa * e_toa - big_m * big_m) / (e_is * e_is - big_m * big_m);
            assert!(rel(point.flux_factor, factor) < 1e-9, "{particle:?} T = {t}");
        }
    }
}

#[test]
fn closed_form_limits() {
    let p = Particle::proton();
    // Constant potential: T_IS = T + Phi for protons, T + Phi/2 for He-4.
    let phi = ModulationPotential::constant(0.6);
    assert!(rel(phi.map_unchecked(&p, 2.0).interstellar_kinetic_gev, 2.6) < 1e-15);
    let he = Particle::nucleus(4, 2).unwrap();
    assert!(rel(phi.map_unchecked(&he, 2.0).interstellar_kinetic_gev, 2.3) < 1e-15);
    // High energy: the factor tends to (T / (T + Phi))^2, and the drift term vanishes like R^-1.
    let t = 1e6;
    assert!(rel(phi.map_unchecked(&p, t).flux_factor, (t / (t + 0.6)).powi(2)) < 1e-9);
    let cholis = ModulationPotential { phi0_gv: 0.3, phi1_positive_gv: 1.0, phi1_negative_gv: 0.0 };
    assert!((cholis.potential_gv(&p, 1e4) - 0.3 - 0.5 / 1e4).abs() < 1e-7);
    // Negative charges see Phi1-.
    assert_eq!(cholis.potential_gv(&Particle::electron(), 5.0), 0.3);
}

#[test]
fn bad_input_is_an_error() {
    let p = Particle::proton();
    let mut out = [0.0; 2];
    let mut factor = [0.0; 2];
    let nan = ModulationPotential { phi0_gv: f64::NAN, ..Default::default() };
    assert!(nan.map(&p, &[1.0, 2.0], &mut out, &mut factor).is_err());
    let ok = ModulationPotential::constant(0.5);
    assert!(ok.map(&p, &[1.0, -2.0], &mut out, &mut factor).is_err());
    assert!(ok.map(&p, &[1.0], &mut out, &mut factor).is_err());
    // A negative potential larger than the energy.
    assert!(ModulationPotential::constant(-5.0).map(&p, &[1.0, 2.0], &mut out, &mut factor).is_err());
}
