//! Diffusion coefficient and injection spectrum: the log-space batch kernels against the
//! seed's product of powers evaluated directly, asymptotic indices, conversions.

use crkernels::physics::particle::Particle;
use crkernels::physics::propagation::{DiffusionParams, InjectionParams};

fn diffusion() -> DiffusionParams {
    DiffusionParams {
        d0_cm2_per_s: 4.2e28,
        radial_scale_kpc: 6.0,
        vertical_scale_kpc: 3.5,
        delta_low: -0.3,
        break_low_gv: 6.0,
        softness_low: 0.12,
        delta: 0.55,
        break_high_gv: 450.0,
        softness_high: 0.2,
        delta_high: 0.0001,
    }
}

fn direct(p: &DiffusionParams, r: f64, z: f64, rig: f64) -> f64 {
    p.d0_cm2_per_s
        * ((r - 2.0) / p.radial_scale_kpc).exp().max(1.0)
        * ((z.abs() - 0.15) / p.vertical_scale_kpc).exp().max(1.0)
        * (rig / 4.0).powf(p.delta_low)
        * (1.0 + (rig / p.break_low_gv).powf((p.delta - p.delta_low) / p.softness_low)).powf(p.softness_low)
        * (1.0 + (rig / p.break_high_gv).powf((p.delta - p.delta_high) / p.softness_high))
            .powf(-p.softness_high)
}

#[test]
fn batch_kernel_matches_the_direct_formula() {
    let p = diffusion();
    let n = 3001;
    let r: Vec<f64> = (0..n).map(|i| 20.0 * (i % 37) as f64 / 36.0).collect();
    let z: Vec<f64> = (0..n).map(|i| -5.0 + 10.0 * (i % 41) as f64 / 40.0).collect();
    let rig: Vec<f64> = (0..n).map(|i| 10f64.powf(-1.0 + 7.0 * i as f64 / (n - 1) as f64)).collect();
    let mut out = vec![0.0; n];
    p.coefficients(&r, &z, &rig, &mut out).unwrap();
    let worst = (0..n).map(|i| (out[i] / direct(&p, r[i], z[i], rig[i]) - 1.0).abs()).fold(0.0, f64::max);
    assert!(worst < 1e-13, "{worst:e}");
    // The rigidity dependence alone is D in the central zone.
    let mut alone = vec![0.0; n];
    p.rigidity_dependence(&rig, &mut alone).unwrap();
    for i in (0..n).step_by(97) {
        assert!((alone[i] / direct(&p, 0.0, 0.0, rig[i]) - 1.0).abs() < 1e-13);
    }
}

#[test]
fn asymptotic_indices() {
    let p = diffusion();
    let slope = |a: f64, b: f64| {
        let mut d = [0.0; 2];
        p.rigidity_dependence(&[a, b], &mut d).unwrap();
        (d[1] / d[0]).ln() / (b / a).ln()
    };
    assert!((slope(1e-3, 2e-3) - p.delta_low).abs() < 1e-6);
    assert!((slope(40.0, 60.0) - p.delta).abs() < 2e-3);
    assert!((slope(1e9, 2e9) - p.delta_high).abs() < 1e-6);
    // Sharp breaks do not overflow in log space.
    let sharp = DiffusionParams { softness_low: 1e-4, softness_high: 1e-4, ..p };
    let mut d = [0.0; 3];
    sharp.rigidity_dependence(&[1.0, 6.0, 1e6], &mut d).unwrap();
    assert!(d.iter().all(|v| v.is_finite() && *v > 0.0), "{d:?}");
}

#[test]
fn electron_kappa_uses_the_momentum() {
    let p = diffusion();
    let e = [1.0, 10.0, 1000.0];
    let mut kappa = [0.0; 3];
    p.electron_kappa(8.5, 0.0, &e, &mut kappa).unwrap();
    for (k, &energy) in kappa.iter().zip(&e) {
        let m = 0.510_998_95e-3;
        let want = direct(&p, 8.5, 0.0, (energy * energy - m * m).sqrt());
        assert!((k / want - 1.0).abs() < 1e-13);
    }
    assert!(p.electron_kappa(8.5, 0.0, &[1e-4], &mut kappa[..1]).is_err());
}

#[test]
fn injection_forms_and_jacobian() {
    let q = InjectionParams {
        q0: 2.0,
        gamma_low: 2.35,
        break_gv: 300.0,
        softness: 0.1,
        gamma_high: 2.1,
        cutoff_gv: 5e4,
    };
    let rig = [1.0, 300.0, 1e4, 1e6];
    let mut out = [0.0; 4];
    q.per_rigidity(&rig, &mut out).unwrap();
    for (o, &r) in out.iter().zip(&rig) {
        let x: f64 = r / 300.0;
        let want = 2.0 * x.powf(-2.35) * (1.0 + x.powf((2.1 - 2.35) / 0.1)).powf(-0.1) * (-r / 5e4).exp();
        assert!((o / want - 1.0).abs() < 1e-13, "{r}");
    }
    // Per kinetic energy per nucleon: Q(R(T)) dR/dT.
    let he = Particle::nucleus(4, 2).unwrap();
    let t = [0.5, 50.0];
    let mut per_t = [0.0; 2];
    q.per_kinetic_energy(&he, &t, &mut per_t).unwrap();
    for (v, &ti) in per_t.iter().zip(&t) {
        let mut qr = [0.0];
        q.per_rigidity(&[he.rigidity_gv(ti)], &mut qr).unwrap();
        let h = 1e-6 * ti;
        let jac = (he.rigidity_gv(ti + h) - he.rigidity_gv(ti - h)) / (2.0 * h);
        assert!((v / (qr[0] * jac) - 1.0).abs() < 1e-8);
    }
    assert!(InjectionParams { softness: 0.0, ..q }.per_rigidity(&rig, &mut out).is_err());
    assert!(q.per_rigidity(&[0.0, 1.0, 1.0, 1.0], &mut out).is_err());
}

#[test]
fn bad_parameters_are_errors() {
    let mut out = [0.0];
    let mut bad = |p: DiffusionParams| p.coefficients(&[1.0], &[0.0], &[1.0], &mut out).is_err();
    assert!(bad(DiffusionParams { softness_high: 0.0, ..diffusion() }));
    assert!(bad(DiffusionParams { delta: f64::NAN, ..diffusion() }));
    assert!(bad(DiffusionParams { d0_cm2_per_s: -1.0, ..diffusion() }));
    assert!(diffusion().coefficients(&[1.0], &[0.0], &[-1.0], &mut out).is_err());
    assert!(diffusion().coefficients(&[-1.0], &[0.0], &[1.0], &mut out).is_err());
    assert!(diffusion().coefficients(&[1.0, 2.0], &[0.0], &[1.0], &mut out).is_err());
}
