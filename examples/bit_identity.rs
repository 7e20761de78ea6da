//! Exact bits of results that a data set depends on, one value a line in hex, so that two
//! platforms can be compared byte for byte (scripts/test-aarch64.sh runs it natively on x86-64
//! and under qemu-aarch64 and compares the outputs; README.md, "aarch64").
//!
//! cargo run --release --example bit_identity [-- output-file]
//!
//! Prints (or writes to the file): 64 realisations of the flagship ensemble (the SECRET single
//! point of examples/secret_ensemble.rs, same seed) at its 19 energies; the exact Klein-Nishina
//! and Thomson loss rates at those energies, and the first-order Klein-Nishina ones at 0.5 to
//! 4.5 GeV; loss times, loss lengths and initial energies of the transport tables; Philox
//! uniform, normal, exponential, Poisson and binomial draws; 64 samples of the shipped emulator
//! (models/secret_single_point.safetensors) and their log-densities; and the outputs of the
//! two-branch detector network (conv1d, conv2d, pooling, dense; tests/data/conv) on 16
//! synthetic events; and the math facade's functions at 4096 points each. Lines are `<quantity> <index> <hex bits>`.
//!
//! Every value is the same on every instruction set (`CRKERNELS_ISA`) and on x86-64 and
//! aarch64 alike, the f32 network values included (every set fuses the same multiply-adds in
//! the same order).

use std::fmt::Write as _;

use crkernels::emulator::{ParallelMade, load_made};
use crkernels::math;
use crkernels::network::{ParallelNetwork, load_network};
use crkernels::nn::LoadOptions;
use crkernels::parallel::ParallelEnsemble;
use crkernels::physics::ensemble::{Ensemble, EnsembleParams};
use crkernels::physics::green::SourceSpectrum;
use crkernels::physics::losses::{EnergyLosses, LossModel};
use crkernels::physics::photon_field::PhotonField;
use crkernels::physics::sources::SpatialModel;
use crkernels::physics::transport::Transport;
use crkernels::rng::Stream;

#[path = "common/sd_network.rs"]
mod sd_network;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn push64(out: &mut String, name: &str, values: &[f64]) {
    for (i, v) in values.iter().enumerate() {
        writeln!(out, "{name} {i} {:016x}", v.to_bits()).unwrap();
    }
}

fn push32(out: &mut String, name: &str, values: &[f32]) {
    for (i, v) in values.iter().enumerate() {
        writeln!(out, "{name} {i} {:08x}", v.to_bits()).unwrap();
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut out = String::new();

    // The flagship: examples/secret_ensemble.rs's setup and seed, 64 realisations.
    let energies: Vec<f64> = (0..19).map(|i| math::powf(10.0, 2.4 + 0.1 * i as f64)).collect();
    let field = PhotonField::default_field();
    let losses = EnergyLosses::new(LossModel::KleinNishina, &field);
    let transport = Transport::new(&losses, 3e28, 0.6, 4.0, 100.0, 1e7)?;
    let params = EnsembleParams {
        sn_rate_per_myr: 4.55e4,
        t_max_myr: 7.0,
        s_max_kpc: 10.0,
        spatial: SpatialModel::SpiralArms,
        poisson_count: false,
        spectrum: SourceSpectrum::from_energy_erg(1e48, 1.0, 2.2, 1e4)?,
    };
    let ensemble = Ensemble::new(&transport, &params, &energies)?;
    let mut flux = vec![0.0; 64 * energies.len()];
    ensemble.generate(20_240_101, 0, 64, 0, &mut flux, None)?;
    push64(&mut out, "flagship_flux", &flux);

    // Loss rates of the three models at the flagship's energies.
    let mut rates = vec![0.0; energies.len()];
    losses.rates(&energies, &mut rates)?;
    push64(&mut out, "loss_rate_kn", &rates);
    EnergyLosses::new(LossModel::Thomson, &field).rates(&energies, &mut rates)?;
    push64(&mut out, "loss_rate_thomson", &rates);
    // The first-order expansion holds below ~5 GeV on this field: 0.5 to 4.5 GeV.
    let low: Vec<f64> = (0..19).map(|i| math::powf(10.0, -0.3 + 0.05 * i as f64)).collect();
    EnergyLosses::new(LossModel::KleinNishinaExpansion, &field).rates(&low, &mut rates)?;
    push64(&mut out, "loss_rate_kn1", &rates);

    // Transport look-ups: loss times from 16 TeV, loss lengths, initial energies after 0.1 Myr.
    let times: Vec<f64> = energies.iter().map(|&e| transport.loss_time(e, 1.6e4).unwrap_or(-1.0)).collect();
    push64(&mut out, "loss_time", &times);
    let lengths: Vec<f64> =
        energies.iter().map(|&e| transport.loss_length2(e, 1.6e4).unwrap_or(-1.0)).collect();
    push64(&mut out, "loss_length2", &lengths);
    let initial: Vec<f64> =
        energies.iter().map(|&e| transport.initial_energy(e, 0.1).unwrap_or(-1.0)).collect();
    push64(&mut out, "initial_energy", &initial);

    // Philox draws.
    let mut stream = Stream::new(42, 7);
    let draws: Vec<f64> = (0..64)
        .flat_map(|i| {
            [
                stream.uniform(),
                stream.normal(),
                stream.exponential(),
                stream.poisson(0.5 + 3.7 * i as f64) as f64,
                stream.binomial(100, 0.013 * i as f64) as f64,
            ]
        })
        .collect();
    push64(&mut out, "philox", &draws);

    // The shipped emulator: 64 samples and their log-densities.
    let made = load_made(
        &std::path::Path::new(ROOT).join("models/secret_single_point.safetensors"),
        &LoadOptions::default(),
    )?;
    let mut psi = vec![0.0f32; 64 * made.n_dims()];
    made.sample_parallel(&[], 7, 0, 0, &mut psi)?;
    push32(&mut out, "made_sample", &psi);
    let mut log_prob = vec![0.0f32; 64];
    made.log_prob_parallel(&[], &psi, 0, &mut log_prob)?;
    push32(&mut out, "made_log_prob", &log_prob);

    // The two-branch detector network: conv1d, conv2d, pooling, dense.
    let net =
        load_network(&std::path::Path::new(ROOT).join("tests/data/conv/net_sd_two_branch.safetensors"))?;
    let (traces, grid, features) = sd_network::synthetic_events(16, 7);
    let mut output = vec![0.0f32; 16 * net.output_size()];
    net.run_parallel(&[&traces, &grid, &features], 16, 0, &mut output)?;
    push32(&mut out, "network", &output);

    // The math facade itself, 4096 points a function over its working ranges (glibc gives
    // different last bits here on aarch64 and x86-64, and on x86-64 with and without FMA).
    let t: Vec<f64> = (0..4096).map(|i| (i as f64 + 0.5) / 4096.0).collect();
    let map = |f: &dyn Fn(f64) -> f64| -> Vec<f64> { t.iter().map(|&u| f(u)).collect() };
    push64(&mut out, "exp", &map(&|u| math::exp(-50.0 + 100.0 * u)));
    push64(&mut out, "ln", &map(&|u| math::ln(math::exp(-40.0 + 80.0 * u))));
    push64(&mut out, "powf", &map(&|u| math::powf(0.1 + 1e3 * u, -3.0 + 6.0 * u)));
    push64(&mut out, "ln_1p", &map(&|u| math::ln_1p(-0.9 + 10.0 * u)));
    push64(&mut out, "exp_m1", &map(&|u| math::exp_m1(-5.0 + 10.0 * u)));
    push64(&mut out, "log10", &map(&|u| math::log10(1e-5 + 1e5 * u)));
    push64(&mut out, "cos", &map(&|u| math::cos(-100.0 + 200.0 * u)));
    push64(&mut out, "hypot", &map(&|u| math::hypot(u, 1.0 - u * u)));
    push64(&mut out, "erfc", &map(&|u| math::erfc(-6.0 + 12.0 * u)));
    let tanh: Vec<f32> = t.iter().map(|&u| math::tanh_f32((-5.0 + 10.0 * u) as f32)).collect();
    push32(&mut out, "tanh_f32", &tanh);

    match std::env::args().nth(1) {
        Some(path) => std::fs::write(path, out)?,
        None => print!("{out}"),
    }
    Ok(())
}
