//! The SECRET grid (crkernels::secret) against table 1 as PHYSICS.md states it: the points of
//! table 1 and of the offset grid, the grid's t_max against the oldest age that contributes at
//! its lowest energy, the domain checks and the realisation index.

use std::collections::BTreeSet;

use crkernels::secret::{
    self, GRID_T_MAX_MYR, GridPoint, GridSettings, MAX_POINTS, MAX_REALISATIONS_PER_POINT, PARAMETER_NAMES,
};

/// Table 1 (PHYSICS.md) as exact fractions: value k of axis j is (offset + k) / scale, with the
/// number of values. R_SN 0.5..3.0 step 0.5; log10 E_cut 3.5..5.5 step 0.25; gamma 1.8..2.6
/// step 0.2; delta 0.2..1.0 step 0.2; kappa0 1..9 step 2 (written (1 + 2k) / 1 below).
const AXES: [(f64, f64, f64, usize); 5] = [
    // (offset, factor, scale, count): value k = (offset + factor k) / scale
    (1.0, 1.0, 2.0, 6),
    (14.0, 1.0, 4.0, 9),
    (9.0, 1.0, 5.0, 5),
    (1.0, 1.0, 5.0, 5),
    (1.0, 2.0, 1.0, 5),
];

fn axis_value(j: usize, k: f64) -> f64 {
    let (offset, factor, scale, _) = AXES[j];
    (offset + factor * k) / scale
}

/// The index k of `value` on axis j (a multiple of 1/2 for a cell centre), when it is within
/// 1e-12 of one.
fn axis_index(j: usize, value: f64, halves: bool) -> Option<i64> {
    let (offset, factor, scale, _) = AXES[j];
    let k = (value * scale - offset) / factor;
    let k2 = if halves { (2.0 * k).round() } else { 2.0 * k.round() };
    let back = axis_value(j, k2 / 2.0);
    ((value - back).abs() <= 1e-12).then_some(k2 as i64)
}

#[test]
fn table1_points_are_the_6750_points_of_table_1_kappa0_fastest() {
    let points = secret::table1_points();
    assert_eq!(points.len(), 6 * 9 * 5 * 5 * 5);
    assert_eq!(points.len(), 6750);
    let mut seen = BTreeSet::new();
    for (i, p) in points.iter().enumerate() {
        let values = p.to_array();
        let index: Vec<i64> = values
            .iter()
            .enumerate()
            .map(|(j, &v)| {
                axis_index(j, v, false).unwrap_or_else(|| {
                    panic!("point {i}: {} = {v} is not on table 1's axis", PARAMETER_NAMES[j])
                }) / 2
            })
            .collect();
        for (j, &k) in index.iter().enumerate() {
            assert!(k >= 0 && (k as usize) < AXES[j].3, "point {i}: {} index {k}", PARAMETER_NAMES[j]);
        }
        // R_SN slowest, kappa0 fastest.
        let flat = index.iter().zip(AXES).fold(0i64, |acc, (&k, axis)| acc * axis.3 as i64 + k);
        assert_eq!(flat, i as i64, "point {i} {values:?} is out of order");
        assert!(seen.insert(index), "point {i} {values:?} repeats");
        p.validate().expect("table 1 is inside the domain");
    }
    assert_eq!(seen.len(), 6750);
    // The corners, exactly.
    assert_eq!(points[0].to_array(), [0.5, 3.5, 1.8, 0.2, 1.0]);
    let last = points[6749].to_array();
    for (a, b) in last.iter().zip([3.0, 5.5, 2.6, 1.0, 9.0]) {
        assert!((a - b).abs() <= 1e-12, "{last:?}");
    }
}

#[test]
fn offset_points_are_the_2560_centres_of_table_1s_cells() {
    let points = secret::offset_points();
    assert_eq!(points.len(), 5 * 8 * 4 * 4 * 4);
    assert_eq!(points.len(), 2560);
    let mut cells = BTreeSet::new();
    for (i, p) in points.iter().enumerate() {
        let values = p.to_array();
        let mut cell = Vec::new();
        for (j, &v) in values.iter().enumerate() {
            let k2 = axis_index(j, v, true).unwrap_or_else(|| {
                panic!("point {i}: {} = {v} is not a half-step of table 1", PARAMETER_NAMES[j])
            });
            assert!(k2 % 2 == 1, "point {i}: {} = {v} is a grid value, not a centre", PARAMETER_NAMES[j]);
            let lower = (k2 - 1) / 2;
            assert!(
                lower >= 0 && (lower as usize) + 1 < AXES[j].3,
                "point {i}: {} = {v} outside table 1",
                PARAMETER_NAMES[j]
            );
            // Halfway between the two neighbouring grid values.
            let (a, b) = (axis_value(j, lower as f64), axis_value(j, lower as f64 + 1.0));
            assert!(
                (v - 0.5 * (a + b)).abs() <= 1e-12,
                "point {i}: {} = {v} vs ({a} + {b}) / 2",
                PARAMETER_NAMES[j]
            );
            cell.push(lower);
        }
        assert!(cells.insert(cell), "point {i} {values:?}: a cell twice");
        p.validate().expect("the offset grid is inside the domain");
    }
    assert_eq!(cells.len(), 2560, "every cell once");
}

/// 32 corners of table 1, its centre and a few points between.
fn spread_points() -> Vec<[f64; 5]> {
    let mut points = Vec::new();
    for corner in 0..32u32 {
        points.push(core::array::from_fn(|j| {
            let high = corner >> j & 1 == 1;
            axis_value(j, if high { (AXES[j].3 - 1) as f64 } else { 0.0 })
        }));
    }
    points.push(core::array::from_fn(|j| axis_value(j, (AXES[j].3 - 1) as f64 / 2.0)));
    points.push([0.5, 5.5, 1.8, 1.0, 1.0]);
    points.push([3.0, 3.5, 2.6, 0.2, 9.0]);
    points.push([1.5, 4.25, 2.0, 0.4, 7.0]);
    points
}

#[test]
fn every_source_old_enough_to_contribute_at_10_to_the_1_5_gev_is_inside_t_max() {
    let grid = GridSettings::default();
    assert_eq!(grid.t_max_myr, GRID_T_MAX_MYR);
    let losses = grid.losses().expect("losses");
    // With a t_max far above any loss time, T_young is the oldest age that contributes at the
    // lowest energy (the transport does not depend on t_max).
    let open = GridSettings { t_max_myr: 1000.0, ..grid.clone() };
    let mut oldest = 0.0f64;
    for p in spread_points() {
        let point = GridPoint::from_array(p);
        let reach = open.ensemble(&losses, &point).expect("ensemble").young_age_myr();
        assert!(reach > 0.0 && reach < 1000.0, "{p:?}: T_young {reach}");
        assert!(
            reach < GRID_T_MAX_MYR,
            "{p:?}: sources up to {reach} Myr old contribute at 10^1.5 GeV, t_max is {GRID_T_MAX_MYR}"
        );
        let young = grid.ensemble(&losses, &point).expect("ensemble").young_age_myr();
        assert_eq!(young, reach, "{p:?}: the grid's ensemble draws every contributing source");
        assert!(young <= GRID_T_MAX_MYR);
        oldest = oldest.max(reach);
    }
    eprintln!("oldest contributing age over the sampled points: {oldest:.3} Myr (t_max {GRID_T_MAX_MYR})");
}

#[test]
// The check compares Transport::max_age at the lowest energy with t_max (the ensemble's own
// young_age_myr is min(that, t_max), so it cannot tell).
fn a_t_max_below_the_oldest_contributing_age_is_refused() {
    let settings = GridSettings { t_max_myr: 1.0, ..GridSettings::default() };
    let losses = settings.losses().expect("losses");
    let point = GridPoint::from_array([0.5, 3.5, 1.8, 0.2, 1.0]);
    let error = match settings.ensemble(&losses, &point) {
        Ok(ensemble) => panic!(
            "t_max = 1 Myr accepted (T_young {} Myr): sources up to {} Myr old contribute at 10^1.5 GeV",
            ensemble.young_age_myr(),
            GridSettings { t_max_myr: 1000.0, ..settings.clone() }
                .ensemble(&losses, &point)
                .expect("ensemble")
                .young_age_myr()
        ),
        Err(error) => error,
    };
    assert!(error.to_string().contains("t_max"), "{error}");
}

#[test]
fn validate_refuses_nan_negative_and_out_of_domain_values_by_name() {
    let good = [1.0, 4.0, 2.2, 0.6, 5.0];
    GridPoint::from_array(good).validate().expect("a table 1 point");
    // Per parameter: values outside the domain (PHYSICS.md's table-1 units).
    let bad: [&[f64]; 5] = [
        &[0.0, -0.5, 100.5, 1e3],
        &[1.49, 6.51, -4.0, 10.0],
        &[0.99, 4.01, 7.0, -2.2],
        &[0.0, -0.6, 1.51],
        &[0.0, -1.0, 100.5],
    ];
    for (j, values) in bad.iter().enumerate() {
        for &v in values.iter().chain(&[f64::NAN, f64::INFINITY, f64::NEG_INFINITY]) {
            let mut p = good;
            p[j] = v;
            let error =
                GridPoint::from_array(p).validate().expect_err(&format!("{} = {v}", PARAMETER_NAMES[j]));
            let message = error.to_string();
            assert!(message.contains(PARAMETER_NAMES[j]), "{} = {v}: {message}", PARAMETER_NAMES[j]);
            for (other, name) in PARAMETER_NAMES.iter().enumerate() {
                if other != j && !PARAMETER_NAMES[j].contains(name) {
                    assert!(
                        !message.contains(name),
                        "{} = {v}: names {name} too: {message}",
                        PARAMETER_NAMES[j]
                    );
                }
            }
        }
    }
    // The stated closed ends are inside.
    for (j, v) in [(1, 1.5), (1, 6.5), (2, 1.0), (2, 4.0), (3, 1.5), (0, 100.0), (4, 100.0)] {
        let mut p = good;
        p[j] = v;
        GridPoint::from_array(p).validate().unwrap_or_else(|e| panic!("{} = {v}: {e}", PARAMETER_NAMES[j]));
    }
}

#[test]
fn realisation_index_is_p_times_2_to_the_32_plus_r_below_2_to_the_32() {
    assert_eq!(MAX_POINTS, 1u64 << 32);
    assert_eq!(MAX_REALISATIONS_PER_POINT, 1u64 << 32);
    assert_eq!(secret::realisation_index(0, 0).unwrap(), 0);
    assert_eq!(secret::realisation_index(1, 0).unwrap(), 4_294_967_296);
    assert_eq!(secret::realisation_index(6749, 9999).unwrap(), 6749 * 4_294_967_296 + 9999);
    assert_eq!(secret::realisation_index(0, 4_294_967_295).unwrap(), 4_294_967_295);
    assert_eq!(secret::realisation_index(4_294_967_295, 4_294_967_295).unwrap(), u64::MAX);
    for (p, r) in [(0, 1u64 << 32), (1u64 << 32, 0), (1, u64::MAX), (u64::MAX, 0)] {
        let error = secret::realisation_index(p, r).expect_err("2^32 is out");
        assert!(error.to_string().contains("2^32"), "{error}");
    }
}

#[test]
fn psi_is_ln_e_cubed_phi_in_f32() {
    let energies = [2.0, 10.0, 1000.0];
    let flux = [0.125, 1e-3, 0.0, 1.0 / 8.0, 2e-3, 1e-9];
    let mut psi = [0.0f32; 6];
    secret::psi_from_flux(&energies, &flux, &mut psi);
    assert_eq!(psi[0], 0.0);
    assert_eq!(psi[1], 0.0);
    assert_eq!(psi[2], f32::NEG_INFINITY, "no flux: -inf");
    assert_eq!(psi[3], 0.0);
    assert_eq!(psi[4], 2f64.ln() as f32);
    assert!((f64::from(psi[5]) - 0.0).abs() <= 1e-6, "{}", psi[5]);
    // The grid's energies are 19, from 10^1.5 to 10^4.5 GeV.
    let e = secret::grid_energies_gev();
    assert_eq!(e.len(), 19);
    assert!((e[0] / 31.622776601683793 - 1.0).abs() <= 2e-15);
    assert!((e[18] / 31622.776601683792 - 1.0).abs() <= 2e-15);
}
