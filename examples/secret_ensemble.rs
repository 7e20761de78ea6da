//! The flagship job: the SECRET single-point ensemble of cosmic-ray electron spectra
//! (SECRET section 3.2.1; PHYSICS.md, "The stochastic ensemble").
//!
//! R_SN = 4.55e4 / Myr, t_max = 7 Myr, s_max = 10 kpc, the four-arm spiral source model,
//! gamma = 2.2, E_cut = 1e4 GeV, kappa0 = 3e28 cm^2/s, delta = 0.6; 19 energies from 10^2.4 to
//! 10^4.2 GeV; exact Klein-Nishina losses on the default photon field (Delahaye et al. 2010)
//! and 3 microgauss. The paper states neither the halo half-height nor the source energy:
//! z_max = 4 kpc and W = 1e48 erg in electrons above 1 GeV per source are assumptions.
//!
//! cargo run --release --example secret_ensemble [-- realisations [output-prefix]]
//!
//! Prints the median and the 68% and 90% bands of E^3 phi per energy, writes all spectra to
//! <prefix>.npy (float64, shape [realisations, 19], phi in GeV^-1 m^-2 s^-1 sr^-1; energies in
//! <prefix>_energies.npy) and draws the bands to <prefix>.svg (like the paper's figure 2).
//! Then the emulator trained on this setup (models/secret_single_point.safetensors, SECRET
//! section 3.2) draws as many spectra for the same parameters: its bands are printed beside
//! the simulation's, with Delta Q = Q_emulator - Q_simulation of psi = ln(E^3 phi), and drawn
//! as dashed lines in the same figure.

use std::io::Write;
use std::time::Instant;

use crkernels::emulator::{ParallelMade, load_made};
use crkernels::nn::LoadOptions;
use crkernels::parallel::{ParallelEnsemble, Progress};
use crkernels::physics::ensemble::{Ensemble, EnsembleParams};
use crkernels::physics::green::SourceSpectrum;
use crkernels::physics::losses::{EnergyLosses, LossModel};
use crkernels::physics::photon_field::PhotonField;
use crkernels::physics::sources::SpatialModel;
use crkernels::physics::transport::Transport;

const SEED: u64 = 20_240_101;
/// The emulator of this setup, shipped with the library (models/README.md).
const EMULATOR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/secret_single_point.safetensors");
/// Seed of the emulator's samples.
const EMULATOR_SEED: u64 = 7;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n_realisations: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(10_000);
    let prefix = args.next().unwrap_or_else(|| "secret_ensemble".to_string());

    let energies: Vec<f64> = (0..19).map(|i| 10f64.powf(2.4 + 0.1 * i as f64)).collect();
    let losses = EnergyLosses::new(LossModel::KleinNishina, &PhotonField::default_field());
    let transport = Transport::new(&losses, 3e28, 0.6, 4.0, 100.0, 1e7)?;
    let params = EnsembleParams {
        sn_rate_per_myr: 4.55e4,
        t_max_myr: 7.0,
        s_max_kpc: 10.0,
        spatial: SpatialModel::SpiralArms,
        poisson_count: false,
        spectrum: SourceSpectrum::from_energy_erg(1e48, 1.0, 2.2, 1e4)?,
    };
    let start = Instant::now();
    let ensemble = Ensemble::new(&transport, &params, &energies)?;
    println!(
        "SECRET single point: {:.4e} sources per realisation, {:.0} of them younger than {:.3} Myr \
         (the oldest age that contributes at {:.0} GeV); tables built in {:.1} ms",
        ensemble.mean_sources(),
        ensemble.mean_sources() * ensemble.young_age_myr() / params.t_max_myr,
        ensemble.young_age_myr(),
        energies[0],
        start.elapsed().as_secs_f64() * 1e3
    );

    let mut flux = vec![0.0; n_realisations * energies.len()];
    let start = Instant::now();
    let mut last_report = Instant::now();
    let mut report = |p: Progress| {
        if last_report.elapsed().as_secs_f64() > 1.0 || p.done == p.total {
            eprint!(
                "\r{} / {} realisations ({:.0}%)",
                p.done,
                p.total,
                100.0 * p.done as f64 / p.total as f64
            );
            last_report = Instant::now();
        }
        true
    };
    ensemble.generate(SEED, 0, n_realisations, 0, &mut flux, Some(&mut report))?;
    let seconds = start.elapsed().as_secs_f64();
    eprintln!();
    println!(
        "{n_realisations} realisations in {seconds:.2} s ({:.0} realisations/s)\n",
        n_realisations as f64 / seconds
    );

    let bands = quantile_bands(&flux, &energies);

    // The emulator: the same number of spectra for the same parameters (psi = ln(E^3 phi)).
    let made = load_made(std::path::Path::new(EMULATOR), &LoadOptions::default())?;
    let start = Instant::now();
    let mut psi = vec![0.0f32; n_realisations * energies.len()];
    made.sample_parallel(&[], EMULATOR_SEED, 0, 0, &mut psi)?;
    let emulator_seconds = start.elapsed().as_secs_f64();
    let emulated_flux: Vec<f64> = psi
        .chunks(energies.len())
        .flat_map(|row| row.iter().zip(&energies).map(|(&p, e)| f64::from(p).exp() / e.powi(3)))
        .collect();
    let emulated = quantile_bands(&emulated_flux, &energies);
    println!("E^3 phi [GeV^2 m^-2 s^-1 sr^-1]");
    println!("{:>10} {:>11} {:>11} {:>11} {:>11} {:>11}", "E [GeV]", "5%", "16%", "median", "84%", "95%");
    for (e, b) in energies.iter().zip(&bands) {
        println!("{e:>10.1} {:>11.4e} {:>11.4e} {:>11.4e} {:>11.4e} {:>11.4e}", b[0], b[1], b[2], b[3], b[4]);
    }
    println!(
        "\nthe emulator ({}), {n_realisations} spectra in {:.3} s ({:.0} spectra/s): E^3 phi and Delta Q = Q_emulator - Q_simulation of ln(E^3 phi)",
        EMULATOR.rsplit('/').next().unwrap_or(EMULATOR),
        emulator_seconds,
        n_realisations as f64 / emulator_seconds
    );
    println!(
        "{:>10} {:>11} {:>11} {:>11} {:>11} {:>11}   {:>6} {:>6} {:>6} {:>6} {:>6}",
        "E [GeV]", "5%", "16%", "median", "84%", "95%", "dQ5", "dQ16", "dQ50", "dQ84", "dQ95"
    );
    for ((e, b), s) in energies.iter().zip(&emulated).zip(&bands) {
        let dq: Vec<String> = (0..5).map(|k| format!("{:+.3}", (b[k] / s[k]).ln())).collect();
        println!(
            "{e:>10.1} {:>11.4e} {:>11.4e} {:>11.4e} {:>11.4e} {:>11.4e}   {}",
            b[0],
            b[1],
            b[2],
            b[3],
            b[4],
            dq.join(" ")
        );
    }
    let slope = (bands[9][2] / bands[0][2]).ln() / (energies[9] / energies[0]).ln() - 3.0;
    println!("\nmedian spectral index between {:.0} and {:.0} GeV: {slope:.3}", energies[0], energies[9]);

    write_npy(&format!("{prefix}.npy"), &flux, &[n_realisations, energies.len()])?;
    write_npy(&format!("{prefix}_energies.npy"), &energies, &[energies.len()])?;
    std::fs::write(format!("{prefix}.svg"), svg(&energies, &bands, &emulated))?;
    println!("wrote {prefix}.npy, {prefix}_energies.npy and {prefix}.svg");
    Ok(())
}

/// Per energy: the 5, 16, 50, 84 and 95% quantiles of E^3 phi over the realisations.
fn quantile_bands(flux: &[f64], energies: &[f64]) -> Vec<[f64; 5]> {
    let n_e = energies.len();
    (0..n_e)
        .map(|i| {
            let e3 = energies[i].powi(3);
            let mut column: Vec<f64> = flux.chunks(n_e).map(|row| row[i] * e3).collect();
            column.sort_by(f64::total_cmp);
            let q = |p: f64| {
                let x = p * (column.len() - 1) as f64;
                let (lo, frac) = (x.floor() as usize, x - x.floor());
                column[lo] + frac * (column[(lo + 1).min(column.len() - 1)] - column[lo])
            };
            [q(0.05), q(0.16), q(0.5), q(0.84), q(0.95)]
        })
        .collect()
}

/// Writes a little-endian float64 array in NumPy's .npy format (version 1.0).
fn write_npy(path: &str, data: &[f64], shape: &[usize]) -> std::io::Result<()> {
    let shape_text = match shape {
        [n] => format!("({n},)"),
        _ => format!("({})", shape.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Magic (6) + version (2) + length (2) + header + newline: a multiple of 64 bytes.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    file.write_all(b"\x93NUMPY\x01\x00")?;
    file.write_all(&(header.len() as u16).to_le_bytes())?;
    file.write_all(header.as_bytes())?;
    for x in data {
        file.write_all(&x.to_le_bytes())?;
    }
    file.flush()
}

/// The bands as an SVG picture: log-log axes, 90% and 68% bands, the median; the emulator's
/// quantiles as red dashed lines.
fn svg(energies: &[f64], bands: &[[f64; 5]], emulated: &[[f64; 5]]) -> String {
    let (width, height, margin) = (720.0, 480.0, 70.0);
    let (x_lo, x_hi) = (energies[0].log10() - 0.05, energies[energies.len() - 1].log10() + 0.05);
    let y_values: Vec<f64> = bands.iter().flat_map(|b| [b[0], b[4]]).filter(|v| *v > 0.0).collect();
    let y_lo = y_values.iter().cloned().fold(f64::INFINITY, f64::min).log10().floor();
    let y_hi = y_values.iter().cloned().fold(f64::NEG_INFINITY, f64::max).log10().ceil();
    let px = |e: f64| margin + (e.log10() - x_lo) / (x_hi - x_lo) * (width - 2.0 * margin);
    let py =
        |v: f64| height - margin - (v.max(1e-300).log10() - y_lo) / (y_hi - y_lo) * (height - 2.0 * margin);
    let band = |lo: usize, hi: usize| {
        let upper = energies.iter().zip(bands).map(|(&e, b)| format!("{:.1},{:.1}", px(e), py(b[hi])));
        let lower = energies.iter().zip(bands).rev().map(|(&e, b)| format!("{:.1},{:.1}", px(e), py(b[lo])));
        upper.chain(lower).collect::<Vec<_>>().join(" ")
    };
    let median =
        energies.iter().zip(bands).map(|(&e, b)| format!("{:.1},{:.1}", px(e), py(b[2]))).collect::<Vec<_>>();
    let emulator_lines: String = (0..5)
        .map(|k| {
            let points: Vec<String> = energies.iter().zip(emulated).map(|(&e, b)| format!("{:.1},{:.1}", px(e), py(b[k]))).collect();
            format!("<polyline points=\"{}\" fill=\"none\" stroke=\"#d62728\" stroke-width=\"1.5\" stroke-dasharray=\"4,3\"/>\n", points.join(" "))
        })
        .collect();
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"13\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <polygon points=\"{}\" fill=\"#9ecae1\"/>\n<polygon points=\"{}\" fill=\"#3182bd\" fill-opacity=\"0.8\"/>\n\
         <polyline points=\"{}\" fill=\"none\" stroke=\"black\" stroke-width=\"2\" stroke-dasharray=\"6,4\"/>\n",
        band(0, 4),
        band(1, 3),
        median.join(" ")
    ) + &emulator_lines;
    let (x0, x1, y0, y1) = (margin, width - margin, margin, height - margin);
    s += &format!(
        "<rect x=\"{x0}\" y=\"{y0}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"black\"/>\n",
        x1 - x0,
        y1 - y0
    );
    for decade in (y_lo as i32)..=(y_hi as i32) {
        let y = py(10f64.powi(decade));
        s += &format!(
            "<line x1=\"{x0}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"black\"/>\n",
            x0 + 6.0
        );
        s +=
            &format!("<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">1e{decade}</text>\n", x0 - 6.0, y + 4.0);
    }
    for &e in &[300.0, 1000.0, 3000.0, 10000.0] {
        let x = px(e);
        s += &format!(
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{y1}\" y2=\"{}\" stroke=\"black\"/>\n",
            y1 - 6.0
        );
        s += &format!("<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{e}</text>\n", y1 + 18.0);
    }
    s += &format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">E [GeV]</text>\n\
         <text x=\"18\" y=\"{}\" transform=\"rotate(-90 18 {})\" text-anchor=\"middle\">E^3 phi [GeV^2 m^-2 s^-1 sr^-1]</text>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">SECRET single point: simulation (median dashed, 68% and 90% bands), emulator (red: 5, 16, 50, 84, 95%)</text>\n</svg>\n",
        width / 2.0,
        height - 20.0,
        height / 2.0,
        height / 2.0,
        width / 2.0,
        margin - 25.0
    );
    s
}
