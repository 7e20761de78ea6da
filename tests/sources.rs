//! Spatial distributions of the sources against independent computations: closed forms for the
//! uniform disc; for Case & Bhattacharya (1998), quadrature in the other order (the density of
//! s as an azimuthal integral around the Sun, then integrated over s) and a Monte Carlo of
//! galactocentric positions; for the four-arm model, a Monte Carlo that builds each source as
//! FGK06 do (radius, arm, angle correction, blur). Fixed seeds: the tests are deterministic.

use crkernels::Error;
use crkernels::math::quadrature::gauss_legendre;
use crkernels::physics::sources::{S_MAX_LIMIT_KPC, SpatialDistribution, SpatialModel};
use std::f64::consts::PI;

mod isa_support;

// The model parameters, transcribed here from the papers (not taken from the library).
const R_SUN: f64 = 7.9;
const CB_R0: f64 = 17.2;
const CB_THETA0: f64 = 0.08;
const CB_BETA: f64 = 0.13;
/// FGK06 table 2: (k [rad], r0 [kpc], theta0 [rad]) for Norma, Carina-Sagittarius, Perseus,
/// Crux-Scutum.
const ARMS: [(f64, f64, f64); 4] =
    [(4.25, 3.48, 1.57), (4.25, 3.48, 4.71), (4.89, 4.90, 4.09), (4.89, 4.90, 0.95)];

fn cb_edge() -> f64 {
    CB_R0 * (1.0 - CB_THETA0 / PI)
}

fn cb_density(r: f64) -> f64 {
    if r < cb_edge() { (PI * r / CB_R0 + CB_THETA0).sin() * (-CB_BETA * r).exp() } else { 0.0 }
}

/// SplitMix64 with uniforms in (0, 1) and Box-Muller normals.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }
    fn normal(&mut self) -> f64 {
        (-2.0 * self.uniform().ln()).sqrt() * (2.0 * PI * self.uniform()).cos()
    }
    /// A galactocentric radius with density proportional to r f(r) (rejection).
    fn cb_radius(&mut self) -> f64 {
        let bound = 7.0; // max of r f(r) is about 4.5
        loop {
            let r = cb_edge() * self.uniform();
            if bound * self.uniform() < r * cb_density(r) {
                return r;
            }
        }
    }
}

fn integrate(a: f64, b: f64, rule: &[(f64, f64)], mut f: impl FnMut(f64) -> f64) -> f64 {
    let (m, h) = (0.5 * (a + b), 0.5 * (b - a));
    rule.iter().map(|&(x, w)| w * f(m + h * x)).sum::<f64>() * h
}

/// Composite rule over [a, b] in `pieces` equal parts.
fn integrate_composite(
    a: f64,
    b: f64,
    pieces: usize,
    rule: &[(f64, f64)],
    mut f: impl FnMut(f64) -> f64,
) -> f64 {
    (0..pieces)
        .map(|i| {
            let x0 = a + (b - a) * i as f64 / pieces as f64;
            let x1 = a + (b - a) * (i + 1) as f64 / pieces as f64;
            integrate(x0, x1, rule, &mut f)
        })
        .sum()
}

/// P(s' < s) for CB98 the other way round: p(s) = s * integral over the azimuth phi about the
/// Sun of f(r(s, phi)), split where the circle leaves the disc (f has a kink there), then
/// integrated over s, split at the distances where p(s) is not smooth.
fn cb_cdf_independent(s: f64) -> f64 {
    let rule = gauss_legendre(24);
    let edge = cb_edge();
    let total = 2.0 * PI * integrate_composite(0.0, edge, 16, &rule, |r| r * cb_density(r));
    let density_of_s = |t: f64| {
        // phi from the direction of the Galactic centre: r^2 = rs^2 + t^2 - 2 rs t cos(phi).
        let radius = |phi: f64| (R_SUN * R_SUN + t * t - 2.0 * R_SUN * t * phi.cos()).max(0.0).sqrt();
        let cos_edge = (R_SUN * R_SUN + t * t - edge * edge) / (2.0 * R_SUN * t);
        let phi_edge = if cos_edge >= 1.0 {
            0.0
        } else if cos_edge <= -1.0 {
            PI
        } else {
            cos_edge.acos()
        };
        let near = integrate_composite(0.0, phi_edge, 8, &rule, |phi| cb_density(radius(phi)));
        2.0 * t * near
    };
    let mut breaks = vec![0.0, s];
    for b in [edge - R_SUN, R_SUN] {
        if b < s {
            breaks.push(b);
        }
    }
    breaks.sort_by(f64::total_cmp);
    let mut sum = 0.0;
    for w in breaks.windows(2) {
        sum += integrate_composite(w[0], w[1], 64, &rule, density_of_s);
    }
    sum / total
}

/// Kolmogorov-Smirnov statistic of `samples` against `cdf`.
fn ks_one_sample(samples: &mut [f64], cdf: impl Fn(f64) -> f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    let n = samples.len() as f64;
    samples
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = cdf(x);
            (f - i as f64 / n).max((i + 1) as f64 / n - f)
        })
        .fold(0.0, f64::max)
}

/// Two-sample Kolmogorov-Smirnov statistic.
fn ks_two_sample(a: &mut [f64], b: &mut [f64]) -> f64 {
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / na - j as f64 / nb).abs());
    }
    d
}

#[test]
fn uniform_disc_is_exact() {
    for s_max in [0.5, 10.0, 100.0] {
        let d = SpatialDistribution::new(SpatialModel::UniformDisc, s_max).unwrap();
        assert_eq!(d.fraction_within(), 1.0);
        assert_eq!(d.model(), SpatialModel::UniformDisc);
        assert_eq!(d.s_max_kpc(), s_max);
        for i in 0..=1000 {
            let u = i as f64 / 1000.0;
            let s = s_max * u;
            assert!((d.cdf(s) - u * u).abs() <= 1e-15, "{s}");
            assert!((d.sample(u) - s_max * u.sqrt()).abs() <= 1e-15 * s_max, "{u}");
        }
        assert_eq!(d.cdf(-1.0), 0.0);
        assert_eq!(d.cdf(2.0 * s_max), 1.0);
    }
}

#[test]
fn bad_s_max_is_rejected() {
    for model in [SpatialModel::UniformDisc, SpatialModel::RadialCaseBhattacharya, SpatialModel::SpiralArms] {
        for s_max in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0] {
            let err = SpatialDistribution::new(model, s_max).unwrap_err();
            assert_eq!(err.status(), 2, "{model:?} {s_max}: {err}");
        }
    }
    for model in [SpatialModel::RadialCaseBhattacharya, SpatialModel::SpiralArms] {
        assert!(SpatialDistribution::new(model, S_MAX_LIMIT_KPC + 0.1).is_err());
        assert!(SpatialDistribution::new(model, S_MAX_LIMIT_KPC).is_ok());
        assert!(SpatialDistribution::new(model, 1e-3).is_ok());
    }
    assert!(SpatialDistribution::new(SpatialModel::UniformDisc, 1e3).is_ok());
}

#[test]
fn cb98_matches_quadrature_in_the_other_order() {
    // The reference loses some digits where the circle about the Sun passes close to the
    // Galactic centre (s near r_sun), where f(|x|) has a cone.
    let mut worst: f64 = 0.0;
    for s_max in [2.0, 8.0, 10.0, 24.0] {
        let d = SpatialDistribution::new(SpatialModel::RadialCaseBhattacharya, s_max).unwrap();
        let fraction = cb_cdf_independent(s_max);
        assert!(
            (d.fraction_within() - fraction).abs() < 1e-9,
            "{s_max}: {} vs {fraction}",
            d.fraction_within()
        );
        worst = worst.max((d.fraction_within() - fraction).abs());
        for i in 1..40 {
            let s = s_max * i as f64 / 40.0;
            let expected = cb_cdf_independent(s) / fraction;
            assert!((d.cdf(s) - expected).abs() < 1e-9, "{s_max} {s}: {} vs {expected}", d.cdf(s));
            worst = worst.max((d.cdf(s) - expected).abs());
        }
    }
    println!("CB98 against the other quadrature: worst difference {worst:.1e}");
    let d = SpatialDistribution::new(SpatialModel::RadialCaseBhattacharya, 10.0).unwrap();
    println!("CB98: P(s < 10 kpc) = {:.6}", d.fraction_within());
}

/// Positions of the whole Galaxy, distances from the Sun; the kept fraction and KS against the
/// library's CDF and against its draws.
fn check_against_monte_carlo(model: SpatialModel, s_max: f64, distances: &[f64], seed: u64) {
    let d = SpatialDistribution::new(model, s_max).unwrap();
    let mut kept: Vec<f64> = distances.iter().copied().filter(|&s| s < s_max).collect();
    let n = distances.len() as f64;
    let p = d.fraction_within();
    let sigma = (p * (1.0 - p) / n).sqrt();
    let observed = kept.len() as f64 / n;
    assert!((observed - p).abs() < 5.0 * sigma, "{model:?} {s_max}: fraction {observed} vs {p} +- {sigma}");
    let m = kept.len() as f64;
    let ks = ks_one_sample(&mut kept, |s| d.cdf(s));
    // 1.95 / sqrt(n): the 0.1% critical value.
    assert!(ks * m.sqrt() < 1.95, "{model:?} {s_max}: KS {ks} over {m} sources");
    let mut rng = Rng(seed);
    let mut drawn: Vec<f64> = (0..kept.len()).map(|_| d.sample(rng.uniform())).collect();
    let ks2 = ks_two_sample(&mut kept, &mut drawn);
    assert!(ks2 * (m / 2.0).sqrt() < 1.95, "{model:?} {s_max}: two-sample KS {ks2}");
    println!("{model:?} s_max = {s_max}: P = {p:.5} (MC {observed:.5}), KS sqrt(n) = {:.3}", ks * m.sqrt());
}

#[test]
fn cb98_matches_monte_carlo() {
    let mut rng = Rng(0x5eed_cb98);
    let distances: Vec<f64> = (0..400_000)
        .map(|_| {
            let r = rng.cb_radius();
            let phi = 2.0 * PI * rng.uniform();
            (r * r + R_SUN * R_SUN - 2.0 * r * R_SUN * phi.cos()).max(0.0).sqrt()
        })
        .collect();
    check_against_monte_carlo(SpatialModel::RadialCaseBhattacharya, 10.0, &distances, 1);
    check_against_monte_carlo(SpatialModel::RadialCaseBhattacharya, 2.0, &distances, 2);
}

/// One source of the four-arm model, built as FGK06 section 3.2.1 do: distance from the Sun at
/// (0, r_sun).
fn spiral_source(rng: &mut Rng) -> f64 {
    let r = rng.cb_radius();
    let (k, r0, theta0) = ARMS[(rng.next_u64() >> 62) as usize];
    let theta = k * (r / r0).ln() + theta0 + 2.0 * PI * rng.uniform() * (-0.35 * r).exp();
    let blur = (0.07 * r * rng.normal()).abs();
    let direction = 2.0 * PI * rng.uniform();
    let x = r * theta.cos() + blur * direction.cos();
    let y = r * theta.sin() + blur * direction.sin();
    (x * x + (y - R_SUN) * (y - R_SUN)).sqrt()
}

#[test]
fn spiral_reproduces_the_secret_fraction() {
    let d = SpatialDistribution::new(SpatialModel::SpiralArms, 10.0).unwrap();
    println!("spiral arms: P(s < 10 kpc) = {:.6}", d.fraction_within());
    assert!((d.fraction_within() - 0.44).abs() < 0.02);
}

#[test]
fn spiral_matches_monte_carlo() {
    let mut rng = Rng(0x5eed_a4a5);
    let distances: Vec<f64> = (0..1_000_000).map(|_| spiral_source(&mut rng)).collect();
    check_against_monte_carlo(SpatialModel::SpiralArms, 10.0, &distances, 3);
    check_against_monte_carlo(SpatialModel::SpiralArms, 2.0, &distances, 4);
    check_against_monte_carlo(SpatialModel::SpiralArms, 24.0, &distances, 5);
}

#[test]
fn draws_invert_the_cdf() {
    for model in [SpatialModel::RadialCaseBhattacharya, SpatialModel::SpiralArms] {
        for s_max in [0.3, 1.0, 10.0, 17.0, 24.0] {
            let d = SpatialDistribution::new(model, s_max).unwrap();
            let mut worst: f64 = 0.0;
            for i in 0..=2000 {
                let s = s_max * i as f64 / 2000.0;
                worst = worst.max((d.sample(d.cdf(s)) - s).abs());
            }
            assert!(worst < 1e-9, "{model:?} {s_max}: round trip off by {worst} kpc");
            // Monotone, from 0 to s_max.
            assert!(d.sample(0.0).abs() < 1e-12 * s_max);
            assert!((d.sample(1.0) - s_max).abs() < 1e-11 * s_max);
            let mut previous = 0.0;
            for i in 0..=100_000 {
                let s = d.sample(i as f64 / 100_000.0);
                assert!(s >= previous, "{model:?} {s_max}: not monotone at u = {}", i as f64 / 1e5);
                previous = s;
            }
        }
    }
}

#[test]
#[ignore]
fn timing() {
    use std::time::Instant;
    for model in [SpatialModel::UniformDisc, SpatialModel::RadialCaseBhattacharya, SpatialModel::SpiralArms] {
        let t = Instant::now();
        let d = SpatialDistribution::new(model, 10.0).unwrap();
        let build = t.elapsed();
        let mut rng = Rng(7);
        let u: Vec<f64> = (0..1_000_000).map(|_| rng.uniform()).collect();
        let t = Instant::now();
        let mut sum = 0.0;
        for _ in 0..20 {
            for &x in &u {
                sum += d.sample(x);
            }
        }
        let per = t.elapsed().as_secs_f64() / 2e7 * 1e9;
        println!("{model:?}: construction {build:?}, {per:.2} ns per sample ({sum:e})");
    }
}

/// At each join of the inverse table, in the window between the guide's rounded right end and
/// the exact one (where the one-step rule takes the piece to the right), the draw is the right
/// piece's value, and the left piece's value at the same point agrees with it to 2e-11 s_max
/// (each is within 1e-11 s_max of the exact inverse): the rounding costs no accuracy.
#[test]
fn draws_at_piece_joins_are_continuous() {
    for model in [SpatialModel::RadialCaseBhattacharya, SpatialModel::SpiralArms] {
        for s_max in [1.0, 10.0, 24.0] {
            let d = SpatialDistribution::new(model, s_max).unwrap();
            let t = d.sampler_tables();
            // (A table whose guide cells hold more pieces searches exactly: no window.)
            if !t.single_step {
                assert!(s_max > 10.0, "{model:?} {s_max}: the SECRET setup's table is single-step");
                continue;
            }
            // Piece i at w, by the recipe of SamplerTables.
            let piece_at = |i: usize, w: f64| {
                let x = (w - t.center[i]) * t.inv_half_width[i];
                let c = &t.coefficients[i];
                let (x2, low) = (x * x, (c[0] + c[1] * x));
                let low = low + (c[2] + c[3] * x) * x2;
                let high = (c[4] + c[5] * x) + (c[6] + c[7] * x) * x2;
                (low + high * (x2 * x2)).clamp(0.0, s_max)
            };
            let mut windows = 0;
            for (&first, &rounded) in t.guide.iter().zip(&t.guide_right) {
                let (i, right) = (first as usize, t.right[first as usize]);
                assert!(rounded <= right && right - rounded < 2f64.powi(-36) * right);
                if rounded == right || i + 1 == t.right.len() {
                    continue;
                }
                let u = (0.5 * (rounded + right)).powi(2);
                let w = u.sqrt();
                if !(w > rounded && w <= right) {
                    continue;
                }
                let drawn = d.sample(u);
                assert_eq!(drawn.to_bits(), piece_at(i + 1, w).to_bits(), "{model:?} {s_max}: w = {w}");
                let gap = (drawn - piece_at(i, w)).abs();
                assert!(gap < 2e-11 * s_max, "{model:?} {s_max}: the pieces differ by {gap} kpc at w = {w}");
                windows += 1;
            }
            assert!(windows > 10, "{model:?} {s_max}: {windows} windows");
        }
    }
}

/// The batch sampler gives the bits of the one-at-a-time sampler, for every model, including
/// the ends of the unit interval and NaN; mismatched lengths are an error.
#[test]
fn batch_sampling_matches_single_draws() {
    let uniforms: Vec<f64> = (0..=4000)
        .map(|i| i as f64 / 4000.0)
        .chain([1e-300, 1e-17, 1.0 - 1e-16, -0.5, 1.5, f64::NAN])
        .collect();
    for model in [SpatialModel::UniformDisc, SpatialModel::RadialCaseBhattacharya, SpatialModel::SpiralArms] {
        for s_max in [0.5, 3.0, 10.0, 24.0] {
            let distribution = SpatialDistribution::new(model, s_max).unwrap();
            let mut batch = vec![0.0; uniforms.len()];
            distribution.sample_each(&uniforms, &mut batch).unwrap();
            for (&u, &s) in uniforms.iter().zip(&batch) {
                assert_eq!(s.to_bits(), distribution.sample(u).to_bits(), "{model:?} s_max {s_max} u {u}");
            }
            let mut short = vec![0.0; 3];
            assert!(matches!(
                distribution.sample_each(&uniforms, &mut short),
                Err(Error::InvalidArgument(_))
            ));
        }
    }
}

/// The equivalence and accuracy tests above, again under every instruction set this CPU has
/// (`CRKERNELS_ISA`, one child process each).
#[test]
fn equivalence_tests_pass_under_every_instruction_set() {
    isa_support::rerun_under_every_isa(&[
        "batch_sampling_matches_single_draws",
        "draws_invert_the_cdf",
        "spiral_matches_monte_carlo",
    ]);
}

#[test]
fn the_selected_set_is_the_requested_one() {
    isa_support::assert_selected_set_is_requested();
}
