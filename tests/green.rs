//! The Green's function and the source summation (crkernels-core/src/physics/green.rs) against
//! independent references: 40-digit mpmath values of Theta, of the source-energy integral and
//! of the flux of sets of sources with Thomson losses in closed form
//! (tests/reference/green_reference.py writes tests/data/green_reference.csv); numerical
//! quadrature done here for q* from W; limits of Theta; the zero contributions; bad input.

use crkernels::Error;
use crkernels::math::quadrature::gauss_legendre;
use crkernels::physics::green::{
    FLUX_PER_DENSITY, SPEED_OF_LIGHT_KPC_PER_MYR, SourceSpectrum, density, density_unchecked,
    flux_from_sources, flux_from_sources_at_heights, halo_factor,
};
use crkernels::physics::losses::EnergyLosses;
use crkernels::physics::transport::Transport;

const ERG_GEV: f64 = 624.150907446;
const KPC_CM: f64 = 3.0856775814913673e21;
const MYR_S: f64 = 3.15576e13;
const C_CM_S: f64 = 2.99792458e10;
const EPS: f64 = f64::EPSILON;
/// The transport table of the reference (green_reference.py: E_TABLE_MIN, E_TOP).
const TABLE: (f64, f64) = (1.0, 1e7);

fn rel(a: f64, b: f64) -> f64 {
    if a == b { 0.0 } else { ((a - b) / b).abs() }
}

/// The records of tests/data/green_reference.csv, by kind, as numbers (inf allowed).
struct Reference {
    records: Vec<(String, Vec<f64>)>,
}

impl Reference {
    fn load() -> Self {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/green_reference.csv");
        let text = std::fs::read_to_string(path).expect("reading the reference csv");
        let records = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let mut fields = l.split(',');
                let kind = fields.next().unwrap().to_string();
                let values =
                    fields.map(|f| f.parse::<f64>().unwrap_or_else(|_| panic!("bad field {f}"))).collect();
                (kind, values)
            })
            .collect();
        Reference { records }
    }

    fn of(&self, kind: &str) -> impl Iterator<Item = &[f64]> {
        self.records.iter().filter(move |(k, _)| k == kind).map(|(_, v)| v.as_slice())
    }
}

/// A flux case of the reference: Thomson transport, spectrum, sources.
struct Case {
    transport: Transport,
    spectrum: SourceSpectrum,
    distance: Vec<f64>,
    age: Vec<f64>,
}

fn cases(reference: &Reference) -> Vec<Case> {
    reference
        .of("case")
        .map(|c| {
            let (id, b0, kappa0, delta, z_max) = (c[0], c[1], c[2], c[3], c[4]);
            let losses = EnergyLosses::thomson(b0).unwrap();
            let transport = Transport::new(&losses, kappa0, delta, z_max, TABLE.0, TABLE.1).unwrap();
            let spectrum = SourceSpectrum { q_star_per_gev: c[5], gamma: c[6], cutoff_gev: c[7] };
            let sources: Vec<&[f64]> = reference.of("source").filter(|s| s[0] == id).collect();
            Case {
                transport,
                spectrum,
                distance: sources.iter().map(|s| s[1]).collect(),
                age: sources.iter().map(|s| s[2]).collect(),
            }
        })
        .collect()
}

#[test]
fn flux_of_source_sets_matches_the_reference() {
    let reference = Reference::load();
    let cases = cases(&reference);
    let mut worst = (0.0f64, 0.0, 0.0);
    let mut count = 0;
    for (id, case) in cases.iter().enumerate() {
        let rows: Vec<&[f64]> = reference.of("flux").filter(|r| r[0] == id as f64).collect();
        let energy: Vec<f64> = rows.iter().map(|r| r[1]).collect();
        let mut flux = vec![f64::NAN; energy.len()];
        flux_from_sources(&case.transport, &case.spectrum, &case.distance, &case.age, &energy, &mut flux)
            .unwrap();
        for (row, &phi) in rows.iter().zip(&flux) {
            let error = rel(phi, row[2]);
            if error > worst.0 {
                worst = (error, id as f64, row[1]);
            }
            count += 1;
        }
    }
    println!(
        "flux: {count} values, worst relative error {:.2e} (case {}, E = {} GeV)",
        worst.0, worst.1, worst.2
    );
    assert!(count >= 40 && worst.0 <= 1e-10, "{worst:?}");
}

#[test]
fn density_at_heights_matches_the_reference() {
    let reference = Reference::load();
    let cases = cases(&reference);
    let mut worst = (0.0f64, vec![]);
    let mut count = 0;
    for row in reference.of("density") {
        let case = &cases[row[0] as usize];
        let (distance, age, z_s, z_o, energy) = (row[1], row[2], row[3], row[4], row[5]);
        let n = density(&case.transport, &case.spectrum, distance, age, z_s, z_o, energy).unwrap();
        let error = rel(n, row[6]);
        if error > worst.0 {
            worst = (error, row.to_vec());
        }
        count += 1;
    }
    println!("density: {count} values, worst relative error {:.2e} at {:?}", worst.0, worst.1);
    assert!(count >= 100 && worst.0 <= 1e-10, "{worst:?}");
}

#[test]
fn halo_factor_matches_the_reference_within_its_conditioning() {
    // Error in units of the conditioning: |error| / (eps (1 + cond)), cond = the sum of
    // |d ln Theta / d ln x| over the inputs (the error of exact arithmetic on rounded inputs).
    let reference = Reference::load();
    let mut worst = (0.0f64, vec![]);
    let mut worst_raw = 0.0f64;
    for row in reference.of("theta") {
        let (l2, z_max, z_s, z_o, value, cond) = (row[0], row[1], row[2], row[3], row[4], row[5]);
        let theta = halo_factor(l2, Some(z_max), z_s, z_o);
        let error = rel(theta, value);
        worst_raw = worst_raw.max(error);
        let scaled = error / (EPS * (1.0 + cond));
        if scaled > worst.0 {
            worst = (scaled, row.to_vec());
        }
    }
    println!("Theta: worst relative error {worst_raw:.2e}; {:.2} eps (1 + cond) at {:?}", worst.0, worst.1);
    assert!(worst.0 <= 4.0, "{worst:?}");
}

#[test]
fn q_star_from_the_energy_matches_the_reference_integral() {
    let reference = Reference::load();
    let w_erg = 1e49;
    let mut worst = (0.0f64, vec![]);
    let mut worst_raw = 0.0f64;
    for row in reference.of("integral") {
        let (gamma, e_min, cutoff, integral, cond) = (row[0], row[1], row[2], row[3], row[4]);
        let spectrum = SourceSpectrum::from_energy_erg(w_erg, e_min, gamma, cutoff).unwrap();
        let error = rel(spectrum.q_star_per_gev * integral, w_erg * ERG_GEV);
        worst_raw = worst_raw.max(error);
        let scaled = error / (EPS * (1.0 + cond));
        if scaled > worst.0 {
            worst = (scaled, row.to_vec());
        }
    }
    println!("q*: worst relative error {worst_raw:.2e}; {:.2} eps (1 + cond) at {:?}", worst.0, worst.1);
    assert!(worst.0 <= 8.0, "{worst:?}");
}

#[test]
fn q_star_from_the_energy_matches_direct_quadrature() {
    // W = integral_{E_min}^inf E Q(E) dE by 20-point Gauss-Legendre panels of 1/16 in
    // u = ln(E/E_min) (Kahan-summed), up to where E Q(E) has fallen by e^-60 or more.
    let rule = gauss_legendre(20);
    let w_erg = 1e48;
    let mut worst = 0.0f64;
    for &gamma in &[1.0, 1.7, 2.0 - 1e-10, 2.0, 2.0 + 1e-7, 2.2, 2.7, 3.0, 4.5] {
        for &e_min in &[0.5, 1.0, 10.0] {
            for &cutoff in &[1.2 * e_min, 30.0 * e_min, 1e4 * e_min] {
                let spectrum = SourceSpectrum::from_energy_erg(w_erg, e_min, gamma, cutoff).unwrap();
                let integrand = |u: f64| {
                    let e = e_min * u.exp();
                    e * e * spectrum.rate(e) // E Q(E) dE/du
                };
                let end = (60.0 * cutoff / e_min).ln() + 1.0;
                let panels = (end * 16.0).ceil() as usize;
                let h = end / panels as f64;
                let (mut sum, mut compensation) = (0.0f64, 0.0f64);
                for p in 0..panels {
                    let mid = (p as f64 + 0.5) * h;
                    for &(x, w) in &rule {
                        let term = w * 0.5 * h * integrand(mid + 0.5 * h * x) - compensation;
                        let t = sum + term;
                        compensation = (t - sum) - term;
                        sum = t;
                    }
                }
                worst = worst.max(rel(sum, w_erg * ERG_GEV));
            }
        }
    }
    println!("q*: worst relative error of W by quadrature {worst:.2e}");
    assert!(worst < 1e-13, "{worst}");
}

#[test]
fn q_star_without_cutoff_is_the_power_law_integral() {
    for &(gamma, e_min) in &[(2.2, 1.0), (2.0 + 1e-6, 3.0), (3.5, 0.1)] {
        let s = SourceSpectrum::from_energy_erg(2e48, e_min, gamma, f64::INFINITY).unwrap();
        let expected = 2e48 * ERG_GEV * (gamma - 2.0) / e_min.powf(2.0 - gamma);
        // (The library's powf may be libm's: a few ulps from std's.)
        assert!(rel(s.q_star_per_gev, expected) < 1e-15, "{gamma}");
        assert!(rel(s.rate(7.0), s.q_star_per_gev * 7f64.powf(-gamma)) < 1e-15);
        let cut = SourceSpectrum { cutoff_gev: 30.0, ..s };
        assert!(rel(cut.rate(7.0), s.rate(7.0) * (-7.0f64 / 30.0).exp()) < 1e-15);
    }
}

#[test]
fn halo_factor_limits() {
    let pi = std::f64::consts::PI;
    // No boundary: the free Gaussian, also as the limit z_max -> infinity.
    for &(l2, z_s, z_o) in &[(0.01f64, 0.0f64, 0.0f64), (0.3, 0.2, -0.5), (4.0, 1.0, 2.5)] {
        let free = (-(z_o - z_s) * (z_o - z_s) / (4.0 * l2)).exp();
        assert!(rel(halo_factor(l2, None, z_s, z_o), free) < 1e-15);
        assert_eq!(halo_factor(l2, Some(0.0), z_s, z_o), halo_factor(l2, None, z_s, z_o));
        assert_eq!(halo_factor(l2, Some(f64::INFINITY), z_s, z_o), halo_factor(l2, None, z_s, z_o));
        let far = halo_factor(l2, Some(1e3), z_s, z_o);
        assert!(rel(far, free) < 1e-15, "{l2} {z_s} {z_o}: {far} {free}");
    }
    // l >> z_max: the first eigenmode, sqrt(4 pi l^2)/z_max exp(-(pi l / 2 z_max)^2) in the
    // plane, up to the third mode, relatively exp(-8 (pi l/2 z_max)^2).
    let z_max = 0.7;
    for &ratio in &[1.5, 3.0, 10.0] {
        let l = ratio * z_max;
        let mode = (4.0 * pi * l * l).sqrt() / z_max * (-(pi * l / (2.0 * z_max)).powi(2)).exp();
        let next = (-8.0 * (pi * l / (2.0 * z_max)).powi(2)).exp();
        assert!(rel(halo_factor(l * l, Some(z_max), 0.0, 0.0), mode) <= next + 1e-13, "{ratio}");
    }
    assert_eq!(halo_factor(f64::INFINITY, Some(1.0), 0.0, 0.0), 0.0);
    assert_eq!(halo_factor(f64::INFINITY, Some(1.0), 0.3, -0.2), 0.0);
    assert_eq!(halo_factor(f64::INFINITY, None, 0.3, -0.2), 1.0);
    // Zero on the boundary, in both representations.
    for &l2 in &[0.01, 0.5, 30.0] {
        assert_eq!(halo_factor(l2, Some(2.0), 2.0, 0.3), 0.0);
        assert_eq!(halo_factor(l2, Some(2.0), -0.3, -2.0), 0.0);
    }
    // The general path at tiny heights equals the plane's.
    for &l2 in &[0.01, 0.2499, 0.25, 0.2501, 3.0] {
        let plane = halo_factor(l2, Some(1.0), 0.0, 0.0);
        assert!(rel(halo_factor(l2, Some(1.0), 1e-200, 0.0), plane) < 4e-16, "{l2}");
        assert!(rel(halo_factor(l2, Some(1.0), 0.0, -1e-200), plane) < 4e-16, "{l2}");
    }
}

fn thomson_transport(kappa0: f64, z_max: f64) -> Transport {
    Transport::new(&EnergyLosses::thomson(1.6e-16).unwrap(), kappa0, 0.6, z_max, TABLE.0, TABLE.1).unwrap()
}

const SPECTRUM: SourceSpectrum = SourceSpectrum { q_star_per_gev: 1e50, gamma: 2.2, cutoff_gev: 1e4 };

#[test]
fn zero_contributions() {
    // c t < s contributes nothing; fast diffusion (1e33 cm^2/s) makes the cut matter.
    let tr = thomson_transport(1e33, 4.0);
    assert!((SPEED_OF_LIGHT_KPC_PER_MYR - 306.601394).abs() < 1e-6);
    let age = 0.01;
    let edge = SPEED_OF_LIGHT_KPC_PER_MYR * age;
    let inside = density(&tr, &SPECTRUM, edge * (1.0 - 1e-12), age, 0.0, 0.0, 100.0).unwrap();
    assert!(inside > 0.0 && inside.is_finite(), "{inside}");
    assert!(density(&tr, &SPECTRUM, edge, age, 0.0, 0.0, 100.0).unwrap() > 0.0);
    assert_eq!(density(&tr, &SPECTRUM, edge * (1.0 + 1e-12), age, 0.0, 0.0, 100.0).unwrap(), 0.0);
    // Age 0, and an age whose E0 exceeds the table (T(E) = (1/E - 1/E_top)/b0).
    assert_eq!(density(&tr, &SPECTRUM, 0.0, 0.0, 0.0, 0.0, 100.0).unwrap(), 0.0);
    // (No cut-off and no boundary, so that the source just inside is not negligible.)
    let uncut = SourceSpectrum { cutoff_gev: f64::INFINITY, ..SPECTRUM };
    let free = thomson_transport(3e28, 0.0);
    let max_age = free.max_age(100.0).unwrap();
    assert!(density_unchecked(&free, &uncut, 0.1, max_age * (1.0 - 1e-9), 0.0, 0.0, 100.0) > 0.0);
    assert_eq!(density_unchecked(&free, &uncut, 0.1, max_age * (1.0 + 1e-9), 0.0, 0.0, 100.0), 0.0);
    // q* = 0.
    let silent = SourceSpectrum { q_star_per_gev: 0.0, ..SPECTRUM };
    assert_eq!(density(&tr, &silent, 0.1, 1.0, 0.0, 0.0, 100.0).unwrap(), 0.0);
    // The flux is c/(4 pi) times the sum of the densities.
    let (distance, ages) = ([0.1, 0.5, 3.0], [0.5, 2.0, 7.0]);
    let mut flux = [0.0];
    flux_from_sources(&tr, &SPECTRUM, &distance, &ages, &[30.0], &mut flux).unwrap();
    let sum: f64 = distance
        .iter()
        .zip(&ages)
        .map(|(&s, &t)| density_unchecked(&tr, &SPECTRUM, s, t, 0.0, 0.0, 30.0))
        .sum();
    assert!(rel(flux[0], FLUX_PER_DENSITY * sum) < 1e-15);
    let factor = C_CM_S * 1e-2 / (4.0 * std::f64::consts::PI) / (KPC_CM * 1e-2).powi(3);
    assert!(rel(FLUX_PER_DENSITY, factor) < 1e-15);
    assert!(rel(SPEED_OF_LIGHT_KPC_PER_MYR, C_CM_S * MYR_S / KPC_CM) < 1e-15);
}

/// Double-double accumulation (TwoSum), independent of the library's compensated sum.
fn exact_sum(values: &[f64]) -> f64 {
    let (mut hi, mut lo) = (0.0f64, 0.0f64);
    for &v in values {
        let s = hi + v;
        let bb = s - hi;
        let err = (hi - (s - bb)) + (v - bb);
        hi = s;
        lo += err;
    }
    hi + lo
}

#[test]
fn sums_over_many_sources_stay_accurate() {
    let tr = thomson_transport(3e28, 4.0);
    let n = 100_000;
    // Identical sources: the flux is n times one source's.
    let mut one = [0.0];
    flux_from_sources(&tr, &SPECTRUM, &[0.3], &[1.0], &[100.0], &mut one).unwrap();
    let mut many = [0.0];
    flux_from_sources(&tr, &SPECTRUM, &vec![0.3; n], &vec![1.0; n], &[100.0], &mut many).unwrap();
    assert!(rel(many[0], one[0] * n as f64) < 2.0 * EPS, "{}", rel(many[0], one[0] * n as f64));
    // Random sources spanning many orders of magnitude, against a double-double sum of the
    // single-source fluxes.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut uniform = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let (distance, age): (Vec<f64>, Vec<f64>) = (0..n).map(|_| (10.0 * uniform(), 5.0 * uniform())).unzip();
    let energy = [10.0, 100.0, 1000.0];
    let mut flux = [0.0; 3];
    flux_from_sources(&tr, &SPECTRUM, &distance, &age, &energy, &mut flux).unwrap();
    for (j, &e) in energy.iter().enumerate() {
        let terms: Vec<f64> = distance
            .iter()
            .zip(&age)
            .map(|(&s, &t)| FLUX_PER_DENSITY * density_unchecked(&tr, &SPECTRUM, s, t, 0.0, 0.0, e))
            .collect();
        let exact = exact_sum(&terms);
        // FLUX_PER_DENSITY applied once or per term: 2 roundings apart.
        assert!(rel(flux[j], exact) < 4.0 * EPS, "{e}: {}", rel(flux[j], exact));
    }
}

#[test]
fn heights_variant_agrees_with_density() {
    let tr = thomson_transport(3e28, 1.0);
    let (distance, age, height) = ([0.2, 1.0, 0.7], [0.3, 2.0, 5.0], [0.5, -0.9, 0.0]);
    let z_o = 0.1;
    let energy = [20.0, 200.0];
    let mut flux = [0.0; 2];
    flux_from_sources_at_heights(&tr, &SPECTRUM, &distance, &age, &height, z_o, &energy, &mut flux).unwrap();
    for (j, &e) in energy.iter().enumerate() {
        let sum: f64 =
            (0..3).map(|i| density(&tr, &SPECTRUM, distance[i], age[i], height[i], z_o, e).unwrap()).sum();
        assert!(rel(flux[j], FLUX_PER_DENSITY * sum) < 1e-15);
    }
    // All heights 0: the plane variant.
    let mut plane = [0.0; 2];
    flux_from_sources(&tr, &SPECTRUM, &distance, &age, &energy, &mut plane).unwrap();
    flux_from_sources_at_heights(&tr, &SPECTRUM, &distance, &age, &[0.0; 3], 0.0, &energy, &mut flux)
        .unwrap();
    assert_eq!(flux, plane);
}

fn message(err: Error) -> (i32, String) {
    (err.status(), err.message().to_string())
}

#[test]
fn bad_input_is_reported_and_nothing_is_written() {
    let tr = thomson_transport(3e28, 4.0);
    let (d, t, e) = ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [10.0, 100.0]);
    let mut flux = [-7.0; 2];
    let call = |spectrum: &SourceSpectrum, d: &[f64], t: &[f64], e: &[f64]| {
        let mut out = vec![-7.0; e.len()];
        let result = flux_from_sources(&tr, spectrum, d, t, e, &mut out);
        assert!(out.iter().all(|&v| v == -7.0), "written on error");
        message(result.unwrap_err())
    };
    let (status, m) = call(&SPECTRUM, &d, &t[..2], &e);
    assert!(status == 2 && m.contains("distance") && m.contains("age"), "{m}");
    let (status, m) = call(&SPECTRUM, &[1.0, f64::NAN, 3.0], &t, &e);
    assert!(status == 2 && m.contains("distance element 1"), "{m}");
    let (status, m) = call(&SPECTRUM, &d, &[1.0, 2.0, -1.0], &e);
    assert!(status == 2 && m.contains("age element 2"), "{m}");
    let (status, m) = call(&SPECTRUM, &d, &[f64::INFINITY, 2.0, 1.0], &e);
    assert!(status == 2 && m.contains("age element 0"), "{m}");
    let (status, m) = call(&SPECTRUM, &d, &t, &[10.0, 1e8]);
    assert!(status == 3 && m.contains("energy element 1"), "{m}");
    let (status, m) = call(&SPECTRUM, &d, &t, &[0.5, 10.0]);
    assert!(status == 3 && m.contains("energy element 0"), "{m}");
    for (bad, name) in [
        (SourceSpectrum { q_star_per_gev: -1.0, ..SPECTRUM }, "q*"),
        (SourceSpectrum { q_star_per_gev: f64::INFINITY, ..SPECTRUM }, "q*"),
        (SourceSpectrum { gamma: f64::NAN, ..SPECTRUM }, "gamma"),
        (SourceSpectrum { cutoff_gev: 0.0, ..SPECTRUM }, "E_cut"),
        (SourceSpectrum { cutoff_gev: f64::NAN, ..SPECTRUM }, "E_cut"),
    ] {
        let (status, m) = call(&bad, &d, &t, &e);
        assert!(status == 2 && m.contains(name), "{m}");
        assert!(bad.validate().is_err());
    }
    // The output length.
    let err = flux_from_sources(&tr, &SPECTRUM, &d, &t, &e, &mut flux[..1]).unwrap_err();
    assert!(err.status() == 2 && err.message().contains("flux"), "{err}");
    // Heights outside the halo, and the checked density.
    let mut out = [-7.0; 2];
    let err = flux_from_sources_at_heights(&tr, &SPECTRUM, &d, &t, &[0.0, 4.5, 0.0], 0.0, &e, &mut out)
        .unwrap_err();
    assert!(err.status() == 3 && err.message().contains("height element 1"), "{err}");
    let err =
        flux_from_sources_at_heights(&tr, &SPECTRUM, &d, &t, &[0.0; 3], -4.1, &e, &mut out).unwrap_err();
    assert!(err.status() == 3 && err.message().contains("observer height"), "{err}");
    assert_eq!(out, [-7.0; 2]);
    let err = density(&tr, &SPECTRUM, 1.0, 1.0, 0.0, f64::NAN, 10.0).unwrap_err();
    assert!(err.status() == 2 && err.message().contains("observer height"), "{err}");
    let err = density(&tr, &SPECTRUM, -1.0, 1.0, 0.0, 0.0, 10.0).unwrap_err();
    assert!(err.status() == 2 && err.message().contains("distance"), "{err}");
    // q* from the energy.
    for (args, status, name) in [
        ((-1.0, 1.0, 2.2, 1e4), 2, "W"),
        ((1e48, 0.0, 2.2, 1e4), 2, "E_min"),
        ((1e48, 1.0, f64::NAN, 1e4), 2, "gamma"),
        ((1e48, 1.0, 2.2, -5.0), 2, "E_cut"),
        ((1e48, 1.0, 2.0, f64::INFINITY), 3, "diverges"),
        ((1e48, 1.0, 1.5, f64::INFINITY), 3, "diverges"),
        ((1e48, 1.0, 150.0, 1e4), 3, "gamma"),
        ((1e48, 1.0, 2.2, 1e-3), 3, "not representable"),
    ] {
        let err = SourceSpectrum::from_energy_erg(args.0, args.1, args.2, args.3).unwrap_err();
        assert!(err.status() == status && err.message().contains(name), "{args:?}: {err}");
    }
}
