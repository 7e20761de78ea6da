//! The MADE emulator from Rust: load a trained model (either file layout), evaluate the
//! log-likelihood of a batch of spectra at many parameter points, and draw spectra.
//!
//! cargo run --release --example made_emulator [-- model.safetensors [threads]]
//!
//! Without arguments it loads tests/data/made/secret_shape.safetensors, a random model of the
//! SECRET shape (5 parameters, 19 energy bins, 200 sigmoid hidden units, K = 10). A PyTorch
//! user exports a trained nflows MixtureOfGaussiansMADE / MADEMoG with
//!
//!     from safetensors.torch import save_file
//!     save_file(model.state_dict(), "model.safetensors")

use std::path::PathBuf;
use std::time::Instant;

use crkernels::emulator::{ParallelMade, load_made};
use crkernels::nn::LoadOptions;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/made/secret_shape.safetensors"),
        PathBuf::from,
    );
    let threads: usize = args.next().map_or(Ok(0), |t| t.parse())?;
    let made = load_made(&path, &LoadOptions::default())?;
    let (c, d) = (made.n_context(), made.n_dims());
    println!(
        "{}: {c} context inputs, {d} dimensions, {} components; order {:?}",
        path.display(),
        made.n_components(),
        made.order()
    );

    // 100 000 parameter points around the centre of the (standardised) parameter space.
    let n = 100_000;
    let context: Vec<f32> = (0..n * c).map(|i| ((i * 7919 % 2001) as f32 / 1000.0) - 1.0).collect();

    let start = Instant::now();
    let mut spectra = vec![0.0f32; n * d];
    made.sample_parallel(&context, 42, 0, threads, &mut spectra)?;
    let sample_time = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let mut log_prob = vec![0.0f32; n];
    made.log_prob_parallel(&context, &spectra, threads, &mut log_prob)?;
    let log_prob_time = start.elapsed().as_secs_f64();

    let mean = log_prob.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
    println!("sampled {n} spectra in {sample_time:.3} s ({:.0} per second)", n as f64 / sample_time);
    println!(
        "log-densities of {n} spectra in {log_prob_time:.3} s ({:.0} per second)",
        n as f64 / log_prob_time
    );
    println!("mean log p(x | parameters) of the samples: {mean:.4}");
    println!("first spectrum: {:?}", &spectra[..d]);

    // Conditional sampling: keep the first three dimensions of the order, redraw the rest.
    let given: Vec<usize> = made.order()[..3.min(d)].to_vec();
    let mut redrawn = spectra[..10 * d].to_vec();
    made.sample_given_parallel(&context[..10 * c], &given, 7, 0, threads, &mut redrawn)?;
    println!("first spectrum with dimensions {given:?} kept: {:?}", &redrawn[..d]);
    Ok(())
}
