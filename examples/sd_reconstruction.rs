//! The SD-reconstruction-style network of seed 002 (1-D convolutions along detector time
//! traces, 2-D convolutions over the 8 x 8 detector grid, extra detector features, dense
//! layers) with random weights, run on a batch of synthetic air-shower events.
//!
//! cargo run --release --example sd_reconstruction [-- N_EVENTS [NETWORK.safetensors]]
//!
//! Without a file the network of examples/common/sd_network.rs is built in memory (random
//! weights); a file must have inputs `traces` [2, 256], `grid` [4, 8, 8], `features` [3]
//! (tests/data/conv/net_sd_two_branch.safetensors does).

use std::time::Instant;

use crkernels::network::{ParallelNetwork, load_network};
use crkernels::nn::Network;

#[path = "common/sd_network.rs"]
mod sd_network;

fn main() -> Result<(), crkernels::Error> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let net = match args.get(2) {
        Some(path) => load_network(std::path::Path::new(path))?,
        None => Network::from_safetensors(&sd_network::network_file(2024))?,
    };
    for input in net.inputs() {
        println!("input {:<9} per event {:?}", input.name, input.shape);
    }
    println!(
        "{} layers run (batch norms folded), {:.2} MFLOP per event",
        net.step_count(),
        2e-6 * net.macs_per_sample() as f64
    );

    let (traces, grid, features) = sd_network::synthetic_events(n, 7);
    let mut output = vec![0.0f32; n * net.output_size()];
    let start = Instant::now();
    net.run_parallel(&[&traces, &grid, &features], n, 0, &mut output)?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{n} events in {:.2} ms ({:.1} us per event, {:.1} GFLOP/s, all cores)",
        seconds * 1e3,
        seconds * 1e6 / n as f64,
        2e-9 * net.macs_per_sample() as f64 * n as f64 / seconds
    );
    let mut single = vec![0.0f32; n * net.output_size()];
    net.run_parallel(&[&traces, &grid, &features], n, 1, &mut single)?;
    assert_eq!(output, single, "results must not depend on the thread count");
    for (event, y) in output.chunks(net.output_size()).take(5).enumerate() {
        println!("event {event}: output {y:?}");
    }
    Ok(())
}
