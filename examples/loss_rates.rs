//! The main job for now: electron energy-loss rates and loss times for the default photon
//! field (Delahaye et al. 2010 ISRF + 3 microgauss), and the transport look-ups of the SECRET
//! setup (kappa0 = 3e28 cm^2/s, delta = 0.6, z_max = 4 kpc).
//!
//! cargo run --release --example loss_rates

use crkernels::physics::losses::{EnergyLosses, LossModel};
use crkernels::physics::photon_field::PhotonField;
use crkernels::physics::transport::Transport;

fn main() -> Result<(), crkernels::Error> {
    let field = PhotonField::default_field();
    let thomson = EnergyLosses::new(LossModel::Thomson, &field);
    let expansion = EnergyLosses::new(LossModel::KleinNishinaExpansion, &field);
    let exact = EnergyLosses::new(LossModel::KleinNishina, &field);

    println!("Default photon field (Delahaye et al. 2010) + {} microgauss:", field.magnetic_field_ug());
    for c in field.components() {
        println!("  T = {:>8.2} K   U = {:.4} eV/cm^3", c.temperature_k, c.energy_density_ev_per_cm3);
    }
    println!("\nLoss rate b(E) [GeV/s] and loss time E/b(E) [Myr]:");
    println!(
        "{:>10} {:>13} {:>13} {:>13} {:>10} {:>12}",
        "E [GeV]", "Thomson", "KN expansion", "KN exact", "exact/Th", "E/b [Myr]"
    );
    for k in 0..=14 {
        let e = 10f64.powf(k as f64 * 0.5);
        let b_thomson = thomson.rate(e)?;
        let b_exact = exact.rate(e)?;
        let b_expansion = match expansion.rate(e) {
            Ok(b) => format!("{b:13.4e}"),
            Err(_) => format!("{:>13}", "(bracket<=0)"),
        };
        let loss_time_myr = e / b_exact / crkernels::units::MYR_S;
        println!(
            "{e:>10.3e} {b_thomson:>13.4e} {b_expansion} {b_exact:>13.4e} {:>10.5} {loss_time_myr:>12.4e}",
            b_exact / b_thomson
        );
    }

    let transport = Transport::new(&exact, 3e28, 0.6, 4.0, 1.0, 1e7)?;
    println!("\nTransport over [1, 1e7] GeV, kappa0 = 3e28 cm^2/s, delta = 0.6 (exact KN):");
    println!(
        "{:>10} {:>12} {:>14} {:>14} {:>12}",
        "E [GeV]", "t [Myr]", "E0 [GeV]", "tau [Myr]", "l^2 [kpc^2]"
    );
    for &e in &[10f64.powf(2.4), 1e3, 10f64.powf(4.2)] {
        for &t in &[0.01, 0.1, 1.0, 7.0] {
            let e0 = transport.initial_energy(e, t)?;
            let (tau, l2) = if e0.is_finite() {
                (transport.loss_time(e, e0)?, transport.loss_length2(e, e0)?)
            } else {
                (f64::INFINITY, f64::INFINITY)
            };
            println!("{e:>10.4e} {t:>12.3} {e0:>14.6e} {tau:>14.6e} {l2:>12.5}");
        }
        println!("{:>10} oldest contributing age at {e:.4e} GeV: {:.5} Myr", "", transport.max_age(e)?);
    }
    Ok(())
}
