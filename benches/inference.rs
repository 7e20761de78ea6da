//! Parameter inference (crkernels::inference) at the SECRET size: C = 5 parameters (table 1's
//! box), D = 19 energies, two hidden layers of 512 sigmoid units, K = 10, SECRET context
//! degrees, random weights (PyTorch's default initialisation through the trainer's
//! `TrainModel`), one spectrum drawn from the model at the box's centre.
//!
//! - `grad_tile_8_rows`: one tile of the gradient kernel (`Made::log_prob_grad_rows`, 8 rows,
//!   gradients w.r.t. context and x), the unit every step of the optimiser and sampler costs;
//! - `maximum_likelihood`: the default 256-start screen and 8 L-BFGS refinements;
//! - `sample_posterior`: HMC with the default 8 chains x (500 warm-up + 500 kept) iterations;
//! - `sample_posterior_sigma`: the same with measurement errors (24 variables: theta and the
//!   latent x_true).
//!
//! The likelihood is made informative by scaling the random model (context weights x20, mean
//! head x8, scales e^-2.5): posterior sd 0.11 to 0.22 of the box widths, not a flat prior.
//!
//! cargo bench --bench inference
//!
//! One run on a 2-core AMD EPYC with AVX2 and no AVX-512 (shared, load about 3), one thread:
//! a tile 1.33 ms; maximum likelihood 105 ms; HMC 13.1 s (10 899 tiles: 1.2 ms each), with
//! sigma 15.4 s (13 258 tiles). Tiles are the load-independent measure: the shared
//! trajectory-length uniform cut them from 15 268 and 17 034 (independent draws per chain).

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use crkernels::inference::{FitOptions, FitProblem, maximum_likelihood, sample_posterior};
use crkernels::nn::made::{LayerSpec, Standardize};
use crkernels::nn::made_train::{Architecture, DataOrder, TrainModel};
use crkernels::nn::{Activation, Made};

const LOWER: [f64; 5] = [0.5, 3.5, 1.8, 0.2, 1.0];
const UPPER: [f64; 5] = [3.0, 5.5, 2.6, 1.0, 9.0];

fn secret_size_model() -> Made {
    let arch = Architecture {
        n_context: 5,
        secret_context: true,
        n_dims: 19,
        hidden_units: vec![512, 512],
        n_components: 10,
        activation: Activation::Sigmoid,
        order: DataOrder::Random,
    };
    let standardize = Standardize {
        x_mean: vec![0.0; 19],
        x_std: vec![1.0; 19],
        context_mean: LOWER.iter().zip(&UPPER).map(|(l, u)| 0.5 * (l + u)).collect(),
        context_std: LOWER.iter().zip(&UPPER).map(|(l, u)| (u - l) / 12f64.sqrt()).collect(),
    };
    let model = TrainModel::new(arch, standardize, 7).expect("the architecture");
    // An untrained network hardly depends on its context: larger context weights, mean head
    // and smaller scales make the likelihood informative, as a trained emulator's is.
    let mut spec = model.to_spec();
    if let LayerSpec::Dense { context_weight: Some(w), .. } = &mut spec.layers[0] {
        w.iter_mut().for_each(|w| *w *= 20.0);
    }
    spec.heads.means.0.iter_mut().for_each(|w| *w *= 8.0);
    spec.heads.scales.1.iter_mut().for_each(|b| *b -= 2.5);
    Made::new(spec).expect("the model")
}

fn bench_inference(c: &mut Criterion) {
    let made = secret_size_model();
    let theta: Vec<f32> = LOWER.iter().zip(&UPPER).map(|(l, u)| (0.5 * (l + u)) as f32).collect();
    let mut x = vec![0.0f32; 19];
    made.sample(&theta, 3, 0, &mut x).unwrap();
    let observed: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let sigma: Vec<f64> = vec![0.05; 19];
    let problem = FitProblem::new(&made, &observed, None, &LOWER, &UPPER).unwrap();
    let noisy = FitProblem::new(&made, &observed, Some(&sigma), &LOWER, &UPPER).unwrap();
    let options = FitOptions { n_threads: 1, ..FitOptions::default() };

    // The figures behind the timings, once.
    let ml = maximum_likelihood(&problem, &options).unwrap();
    let post = sample_posterior(&problem, &options, &ml.theta).unwrap();
    eprintln!(
        "maximum likelihood: {} rows evaluated; HMC: {} tiles, {:?} gradient evaluations per chain, acceptance {:.3}, max R-hat {:.3}, min bulk ESS {:.0}",
        ml.n_evaluations,
        post.n_tiles,
        post.gradient_evaluations,
        post.accept_rate.iter().sum::<f64>() / post.n_chains as f64,
        post.max_r_hat(),
        post.summary.iter().map(|s| s.ess_bulk).fold(f64::INFINITY, f64::min)
    );
    eprintln!(
        "maximum {:?} (at an edge: {:?}); posterior sd / box width {:?}",
        ml.theta,
        ml.at_boundary,
        post.summary
            .iter()
            .zip(LOWER.iter().zip(&UPPER))
            .map(|(s, (l, u))| s.sd / (u - l))
            .collect::<Vec<_>>()
    );
    let post_sigma = sample_posterior(&noisy, &options, &ml.theta).unwrap();
    eprintln!(
        "with sigma: {} tiles, {:?} gradient evaluations per chain, acceptance {:.3}, max R-hat {:.3}",
        post_sigma.n_tiles,
        post_sigma.gradient_evaluations,
        post_sigma.accept_rate.iter().sum::<f64>() / post_sigma.n_chains as f64,
        post_sigma.max_r_hat()
    );

    let mut group = c.benchmark_group("inference_secret_size");
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(5));
    let mut work = made.grad_workspace();
    let context: Vec<f32> = (0..8).flat_map(|_| theta.iter().copied()).collect();
    let xs: Vec<f32> = (0..8).flat_map(|_| x.iter().copied()).collect();
    let (mut lp, mut gc, mut gx) = (vec![0.0f64; 8], vec![0.0f32; 40], vec![0.0f32; 152]);
    group.bench_function("grad_tile_8_rows", |b| {
        b.iter(|| {
            made.log_prob_grad_rows(
                &mut work,
                &context,
                &xs,
                0,
                8,
                Some(&mut lp),
                Some(&mut gc),
                Some(&mut gx),
            )
        })
    });
    group
        .bench_function("maximum_likelihood", |b| b.iter(|| maximum_likelihood(&problem, &options).unwrap()));
    group.bench_function("sample_posterior", |b| {
        b.iter(|| sample_posterior(&problem, &options, &ml.theta).unwrap())
    });
    group.bench_function("sample_posterior_sigma", |b| {
        b.iter(|| sample_posterior(&noisy, &options, &ml.theta).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench_inference);
criterion_main!(benches);
