//! The shipped model models/secret_single_point.safetensors is what models/README.md says
//! (issue 16, item 5): 19 dimensions, no context, the trainer's settings and metrics in its
//! metadata, and samples whose per-energy medians match an independent simulation of the
//! flagship setup (a fresh ensemble, seed 20240103, neither the training nor the held-out
//! seed), with a finite log-density on simulated spectra.

use std::path::Path;

use crkernels::emulator::{ParallelMade, load_made};
use crkernels::nn::save::f32_tensors_from_safetensors;
use crkernels::parallel::ParallelEnsemble;
use crkernels::physics::ensemble::{Ensemble, EnsembleParams};
use crkernels::physics::green::SourceSpectrum;
use crkernels::physics::losses::{EnergyLosses, LossModel};
use crkernels::physics::photon_field::PhotonField;
use crkernels::physics::sources::SpatialModel;
use crkernels::physics::transport::Transport;

const MODEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/secret_single_point.safetensors");
const N_E: usize = 19;
/// Realisations of the reference simulation.
const N_REFERENCE: usize = 10_000;
/// Seed of the reference simulation (examples/train_emulator.rs trains on 20240101 and
/// evaluates on 20240102).
const REFERENCE_SEED: u64 = 20_240_103;

/// psi = ln(E^3 phi) of the flagship setup (examples/secret_ensemble.rs), [n][19].
fn simulate(n: usize, seed: u64) -> Vec<f32> {
    let energies: Vec<f64> = (0..N_E).map(|i| 10f64.powf(2.4 + 0.1 * i as f64)).collect();
    let losses = EnergyLosses::new(LossModel::KleinNishina, &PhotonField::default_field());
    let transport = Transport::new(&losses, 3e28, 0.6, 4.0, 100.0, 1e7).unwrap();
    let params = EnsembleParams {
        sn_rate_per_myr: 4.55e4,
        t_max_myr: 7.0,
        s_max_kpc: 10.0,
        spatial: SpatialModel::SpiralArms,
        poisson_count: false,
        spectrum: SourceSpectrum::from_energy_erg(1e48, 1.0, 2.2, 1e4).unwrap(),
    };
    let ensemble = Ensemble::new(&transport, &params, &energies).unwrap();
    let mut flux = vec![0.0; n * N_E];
    ParallelEnsemble::generate(&ensemble, seed, 0, n, 0, &mut flux, None).unwrap();
    flux.chunks(N_E)
        .flat_map(|row| row.iter().zip(&energies).map(|(&phi, &e)| (e.powi(3) * phi).ln() as f32))
        .collect()
}

fn medians(psi: &[f32]) -> Vec<f64> {
    (0..N_E)
        .map(|e| {
            let mut column: Vec<f64> = psi.chunks(N_E).map(|r| r[e] as f64).collect();
            column.sort_by(f64::total_cmp);
            let m = column.len() / 2;
            if column.len().is_multiple_of(2) { 0.5 * (column[m - 1] + column[m]) } else { column[m] }
        })
        .collect()
}

#[test]
fn shipped_model_matches_its_card_and_the_simulation() {
    let bytes = std::fs::read(MODEL).expect("models/secret_single_point.safetensors is shipped");
    let (_, metadata) = f32_tensors_from_safetensors(&bytes).unwrap();
    let meta = |key: &str| -> &str {
        metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("no {key}"))
    };
    // The layout and the settings the card states.
    assert_eq!(meta("format"), "crkernels.made.v1");
    assert_eq!(meta("n_dims"), "19");
    assert_eq!(meta("n_context"), "0");
    assert_eq!(meta("n_components"), "10");
    assert_eq!(meta("activation"), "sigmoid");
    assert_eq!(meta("hidden_units"), "200");
    assert_eq!(meta("batch_size"), "50");
    assert_eq!(meta("learning_rate"), "0.001");
    assert_eq!(meta("validation_fraction"), "0.1");
    assert_eq!(meta("n_spectra_train"), "100000");
    assert!(meta("train_seed").starts_with("20240101"));
    assert!(meta("heldout_seed").starts_with("20240102"));
    let energies: Vec<f64> = meta("energies_GeV").split(',').map(|v| v.parse().unwrap()).collect();
    assert_eq!(energies.len(), N_E);
    for (i, e) in energies.iter().enumerate() {
        assert!((e.log10() - (2.4 + 0.1 * i as f64)).abs() < 1e-6, "energy {i}: {e}");
    }
    let heldout_nll: f64 = meta("heldout_nll").parse().unwrap();
    let card = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/models/README.md")).unwrap();
    assert!(card.contains(&format!("{heldout_nll:.4} held-out")), "the card states the file's held-out NLL");

    let made = load_made(Path::new(MODEL), &Default::default()).unwrap();
    assert_eq!(made.n_dims(), N_E);
    assert_eq!(made.n_context(), 0);
    assert_eq!(made.n_components(), 10);

    // An independent reference: a fresh simulation.
    let psi_sim = simulate(N_REFERENCE, REFERENCE_SEED);
    let mut psi_emu = vec![0f32; N_REFERENCE * N_E];
    made.sample_parallel(&[], 12_345, 0, 0, &mut psi_emu).unwrap();
    assert!(psi_emu.iter().all(|v| v.is_finite()));
    let (m_sim, m_emu) = (medians(&psi_sim), medians(&psi_emu));
    for e in 0..N_E {
        assert!(
            (m_emu[e] - m_sim[e]).abs() <= 0.05,
            "energy {:.0} GeV: emulator median {:.4}, simulation {:.4}",
            energies[e],
            m_emu[e],
            m_sim[e]
        );
    }

    // log p is finite on simulated spectra, and its mean agrees with the card's held-out NLL
    // (the standard error of a mean over 1e4 rows is about 0.05 nat).
    let mut log_prob = vec![0f32; N_REFERENCE];
    made.log_prob_parallel(&[], &psi_sim, 0, &mut log_prob).unwrap();
    assert!(log_prob.iter().all(|v| v.is_finite()));
    let nll = -log_prob.iter().map(|&v| v as f64).sum::<f64>() / N_REFERENCE as f64;
    assert!((nll - heldout_nll).abs() < 0.25, "NLL on the fresh simulation {nll:.4}, card {heldout_nll:.4}");
}
