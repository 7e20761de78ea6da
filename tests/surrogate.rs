//! The ridge surrogate step against the scikit-learn / mpmath reference
//! (tests/reference/surrogate_reference.py; formats in NOTES-python6.md).

mod fit_support;

use crkernels::ffi::surrogate::{
    CRK_WEIGHTS_DISTANCE, CRK_WEIGHTS_EXPONENTIAL, CRK_WEIGHTS_NONE, crk_surrogate,
    crk_surrogate_coefficients, crk_surrogate_fit, crk_surrogate_fit_threads, crk_surrogate_free,
    crk_surrogate_options,
};
use crkernels::math::linalg::Exec;
use crkernels::math::simd::VectorIsa;
use crkernels::stats::surrogate::{Surrogate, SurrogateOptions, Weighting, polynomial_feature_count};
use fit_support::{Table, key_values, parse};

fn relative(got: f64, want: f64, scale: f64) -> f64 {
    (got - want).abs() / scale.abs().max(f64::MIN_POSITIVE)
}

fn check_data_set(name: &str) {
    let config = key_values(&format!("surrogate_{name}_config.csv"));
    let result = key_values(&format!("surrogate_{name}_result.csv"));
    let floats = |m: &std::collections::HashMap<String, Vec<String>>, k: &str| -> Vec<f64> {
        m[k].iter().map(|s| parse(s)).collect()
    };
    let p = floats(&config, "p")[0] as usize;
    let points = Table::read(&format!("surrogate_{name}_points.csv"));
    let n = points.rows.len();
    let mut x = Vec::with_capacity(n * p);
    for row in &points.rows {
        x.extend(row[..p].iter().map(|s| parse(s)));
    }
    let y = points.floats("y");
    let degrees: Vec<usize> = floats(&config, "degree").iter().map(|&d| d as usize).collect();
    let alphas = floats(&config, "alpha");
    let weighting = match config["scheme"][0].as_str() {
        "none" => Weighting::None,
        "distance" => Weighting::Distance,
        "exponential" => Weighting::Exponential,
        other => panic!("unknown scheme {other}"),
    };
    let start = floats(&config, "start")[0] as usize;
    let options = SurrogateOptions { weighting, start: Some(start), degrees: &degrees, alphas: &alphas };
    let surrogate = Surrogate::fit(&x, p, &y, &options).unwrap();
    // The same bits on any thread count and every instruction set this CPU has: the checks
    // below hold for all of them.
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let mut others: Vec<(String, Surrogate)> = [1, 2, 3]
        .iter()
        .map(|&t| (format!("{t} threads"), Surrogate::fit_threads(&x, p, &y, &options, t).unwrap()))
        .collect();
    for isa in VectorIsa::available() {
        let exec = Exec::with_isa(isa, 2).unwrap();
        others.push((isa.name().to_string(), Surrogate::fit_with(&x, p, &y, &options, exec).unwrap()));
    }
    for (what, other) in &others {
        assert_eq!((other.degree(), other.alpha()), (surrogate.degree(), surrogate.alpha()), "{name} {what}");
        assert_eq!(bits(other.coefficients()), bits(surrogate.coefficients()), "{name} {what}");
        assert_eq!(bits(other.validation_scores()), bits(surrogate.validation_scores()), "{name} {what}");
    }
    // And through the C ABI.
    let c_options = crk_surrogate_options {
        weighting: match weighting {
            Weighting::None => CRK_WEIGHTS_NONE,
            Weighting::Distance => CRK_WEIGHTS_DISTANCE,
            _ => CRK_WEIGHTS_EXPONENTIAL,
        },
        custom_weights: std::ptr::null(),
        start_index: start as i64,
        degrees: degrees.as_ptr(),
        n_degrees: degrees.len(),
        alphas: alphas.as_ptr(),
        n_alphas: alphas.len(),
    };
    for threads in [None, Some(1), Some(2)] {
        let mut handle: *mut crk_surrogate = std::ptr::null_mut();
        let mut coefficients = vec![0.0; surrogate.coefficients().len()];
        let mut count = 0;
        // SAFETY: x holds n * p values, y n; the options' arrays their counts; the outputs are
        // writable and hold their capacities.
        unsafe {
            let status = match threads {
                None => crk_surrogate_fit(x.as_ptr(), n, p, y.as_ptr(), &c_options, &mut handle),
                Some(t) => {
                    crk_surrogate_fit_threads(x.as_ptr(), n, p, y.as_ptr(), &c_options, t, &mut handle)
                }
            };
            assert_eq!(status, 0, "{name} {threads:?}");
            let status =
                crk_surrogate_coefficients(handle, coefficients.as_mut_ptr(), coefficients.len(), &mut count);
            assert_eq!(status, 0, "{name} {threads:?}");
            crk_surrogate_free(handle);
        }
        assert_eq!(
            bits(&coefficients),
            bits(surrogate.coefficients()),
            "{name}: C ABI on {threads:?} threads"
        );
    }
    if name != "p6_distance_start" {
        // The default start is the lowest NLL, as in these sets.
        let default = SurrogateOptions { start: None, ..options };
        assert_eq!(Surrogate::fit(&x, p, &y, &default).unwrap().start_index(), start);
    }
    assert_eq!(surrogate.degree(), floats(&result, "chosen_degree")[0] as usize, "{name}");
    assert_eq!(surrogate.alpha(), floats(&result, "chosen_alpha")[0], "{name}");

    // Validation MSEs of every candidate.
    let mse = Table::read(&format!("surrogate_{name}_mse.csv"));
    for row in 0..mse.rows.len() {
        let d = degrees.iter().position(|&v| v as f64 == mse.get(row, "degree")).unwrap();
        let a = alphas.iter().position(|&v| v == mse.get(row, "alpha")).unwrap();
        let got = surrogate.validation_scores()[d * alphas.len() + a];
        let want = mse.get(row, "mse");
        assert!(relative(got, want, want) < 1e-8, "{name} mse row {row}: {got} vs {want}");
    }

    // Coefficients (exact reference), relative to the largest.
    let coef = Table::read(&format!("surrogate_{name}_coef.csv")).floats("coef");
    let scale = coef.iter().fold(0.0f64, |m, c| m.max(c.abs()));
    assert_eq!(surrogate.coefficients().len(), coef.len());
    let worst =
        surrogate.coefficients().iter().zip(&coef).map(|(g, w)| relative(*g, *w, scale)).fold(0.0, f64::max);
    println!("{name}: coefficients {worst:.1e}");
    assert!(worst < 1e-8, "{name}: coefficients {worst:e}");

    // Scaler and start.
    let (mean, std) = surrogate.scaler();
    for (j, (&m, &s)) in mean.iter().zip(std).enumerate() {
        assert!(relative(m, floats(&result, "mean")[j], floats(&result, "mean")[j]) < 1e-13);
        assert!(relative(s, floats(&result, "std")[j], floats(&result, "std")[j]) < 1e-12);
    }

    // The step.
    let step = surrogate.step(floats(&config, "delta_max")[0]).unwrap();
    let t_star = floats(&result, "t_star")[0];
    assert!(relative(step.distance, t_star, t_star) < 1e-8, "{name}: t* {} vs {t_star}", step.distance);
    for (k, &c) in floats(&result, "line_coef").iter().enumerate() {
        assert!(
            (step.line_coefficients[k] - c).abs() < 1e-8 * (c.abs() + 1e-3),
            "{name}: line coefficient {k}"
        );
    }
    for (j, &want) in floats(&result, "x_new").iter().enumerate() {
        let spread = std[j];
        assert!(
            (step.point[j] - want).abs() < 1e-8 * want.abs().max(spread),
            "{name}: x_new[{j}] {} vs {want}",
            step.point[j]
        );
    }
    let pred = floats(&result, "pred_nll")[0];
    assert!(relative(step.predicted_nll, pred, pred) < 1e-8, "{name}: predicted NLL");

    // Predictions at the reference's query points.
    let queries = Table::read(&format!("surrogate_{name}_pred.csv"));
    let mut qx = Vec::new();
    for row in &queries.rows {
        qx.extend(row[..p].iter().map(|s| parse(s)));
    }
    let mut predicted = vec![0.0; queries.rows.len()];
    surrogate.predict(&qx, &mut predicted).unwrap();
    for (got, want) in predicted.iter().zip(queries.floats("pred")) {
        assert!(relative(*got, want, want) < 1e-8, "{name}: prediction {got} vs {want}");
    }

    // The analytic gradient at the start point is y_std g / std (chain rule), and at another
    // point it matches central differences of the predictions.
    let x_start: Vec<f64> = x[start * p..(start + 1) * p].to_vec();
    let mut gradient = vec![0.0; p];
    surrogate.gradient(&x_start, &mut gradient).unwrap();
    let y_std = floats(&result, "y_std")[0];
    for j in 0..p {
        let want = y_std * floats(&result, "grad")[j] / std[j];
        assert!((gradient[j] - want).abs() < 1e-8 * want.abs().max(1e-8 / std[j]), "{name}: gradient {j}");
    }
}

#[test]
fn matches_the_reference_data_sets() {
    for name in [
        "p3_none",
        "p3_distance",
        "p3_exponential",
        "p5_none",
        "p5_distance",
        "p5_exponential",
        "p6_distance_start",
        "p18_d2_distance",
    ] {
        check_data_set(name);
    }
}

#[test]
fn feature_count_of_the_talk() {
    // Seed 000: "1329 for 18 parameters and 3rd degree".
    assert_eq!(polynomial_feature_count(18, 3).unwrap(), 1329);
    assert_eq!(polynomial_feature_count(18, 1).unwrap(), 18);
    assert_eq!(polynomial_feature_count(1, 5).unwrap(), 5);
}

fn small_problem(n: usize) -> (Vec<f64>, Vec<f64>) {
    let x: Vec<f64> = (0..n * 2).map(|k| ((k * 7919) % 101) as f64 / 101.0).collect();
    let y: Vec<f64> = x.chunks(2).map(|v| 3.0 + (v[0] - 0.3).powi(2) + 2.0 * (v[1] - 0.6).powi(2)).collect();
    (x, y)
}

#[test]
fn bad_input_is_an_error() {
    let (x, y) = small_problem(50);
    let degrees = [1, 2];
    let alphas = [1e-3, 1.0];
    let ok =
        SurrogateOptions { weighting: Weighting::Distance, start: None, degrees: &degrees, alphas: &alphas };
    assert!(Surrogate::fit(&x, 2, &y, &ok).is_ok());
    // Fewer points than features.
    let high = [6];
    let err = Surrogate::fit(&x[..40], 2, &y[..20], &SurrogateOptions { degrees: &high, ..ok }).unwrap_err();
    assert!(err.message().contains("fewer evaluated points"), "{err}");
    // Singular weights.
    let zeros = vec![0.0; 50];
    let err = Surrogate::fit(&x, 2, &y, &SurrogateOptions { weighting: Weighting::Custom(&zeros), ..ok })
        .unwrap_err();
    assert!(err.message().contains("singular weights"), "{err}");
    // NaN parameter, zero spread, bad alpha, bad start, bad step.
    let mut nan = x.clone();
    nan[3] = f64::NAN;
    assert!(Surrogate::fit(&nan, 2, &y, &ok).is_err());
    let mut flat = x.clone();
    for v in flat.iter_mut().skip(1).step_by(2) {
        *v = 1.0;
    }
    assert!(Surrogate::fit(&flat, 2, &y, &ok).unwrap_err().message().contains("parameter 1"));
    assert!(Surrogate::fit(&x, 2, &y, &SurrogateOptions { alphas: &[0.0], ..ok }).is_err());
    assert!(Surrogate::fit(&x, 2, &y, &SurrogateOptions { start: Some(50), ..ok }).is_err());
    assert!(Surrogate::fit(&x, 2, &y, &ok).unwrap().step(0.0).is_err());
}
