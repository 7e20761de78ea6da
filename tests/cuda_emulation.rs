//! Runs CUDA kernels on the CPU (so on machines without a GPU): the sources in
//! tests/cuda_emulation/ compile a kernel file as C++20 with shim.h (one std::thread per CUDA
//! thread, a barrier for __syncthreads, warp shuffles through memory, no fused multiply-adds
//! but the written ones). This checks the kernels' indexing and arithmetic, not the GPU's
//! memory model or speed, nor what nvcc contracts: tests/gpu_conv.rs and tests/ensemble_gpu.rs
//! do that on a device.
//!
//! - kernels/conv.cu (conv_kernels.cpp): the convolution and pooling kernels, with weights,
//!   patch table and grid prepared as src/gpu/conv.rs does, against naive loops from the
//!   definitions (tiles, strides, padding, dilation, groups, ragged edges).
//! - kernels/ensemble.cu (ensemble_kernels.cpp): both tiers of the stochastic ensemble on a
//!   few blocks, launched as src/gpu/ensemble.rs does, against the specification
//!   (DeviceTables::realisation, realisation_f32) and the CPU (Ensemble::realisation): the
//!   exact tier within 1e-12 of both, the f32 tier within 1e-6 of its specification and 1e-5
//!   of the CPU's exact realisation, and the same realisations left to the host in each tier.
//!   The cases cover the sampler's three draws (no pieces, the one-step and the general piece
//!   search), log-age cells, the causal cut, blocks that take several realisations in turn,
//!   three passes of energies, and a Host cell (forced, in the second pass). Not reached: the
//!   f32 tier's flushed terms (no term falls below its exponent floor in these cases). The
//!   emulated __expf is 2^(x log2 e) in binary32, without the SFU's own 2 ulp.
//!
//! Needs a C++20 compiler ($CXX, default c++): skipped with a notice without one, or fails
//! under CRKERNELS_REQUIRE_ALL=1 (tests/tool_support).

mod tool_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use crkernels::physics::ensemble::{CellForm, DeviceTables, Ensemble, EnsembleParams, RealisationStart};
use crkernels::physics::green::SourceSpectrum;
use crkernels::physics::losses::{EnergyLosses, LossModel};
use crkernels::physics::photon_field::PhotonField;
use crkernels::physics::sources::SpatialModel;
use crkernels::physics::transport::Transport;
use crkernels::rng::{Stream, uniform_from_word};
use tool_support::tool_available;

/// Compiles tests/cuda_emulation/`source`.cpp, or None (the test skipped) without a compiler.
fn build(source: &str, test: &str) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cuda_emulation_{source}"));
    let compiler = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    if !tool_available(&compiler, test) {
        return None;
    }
    let build = Command::new(&compiler)
        .args(["-std=c++20", "-O1", "-ffp-contract=off", "-pthread", "-Wno-unknown-pragmas", "-I"])
        .arg(root.join("kernels"))
        .arg("-I")
        .arg(root.join("tests/cuda_emulation"))
        .arg(root.join(format!("tests/cuda_emulation/{source}.cpp")))
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(build.status.success(), "{compiler} failed:\n{}", String::from_utf8_lossy(&build.stderr));
    Some(exe)
}

#[test]
fn conv_kernels_agree_with_the_definitions_on_the_cpu() {
    let Some(exe) = build("conv_kernels", "conv_kernels_agree_with_the_definitions_on_the_cpu") else {
        return;
    };
    let run = Command::new(&exe).output().expect("run the emulated kernels");
    assert!(
        run.status.success(),
        "emulated kernels disagree with the definitions:\n{}",
        String::from_utf8_lossy(&run.stdout)
    );
}

const SEED: u64 = 7;
/// The first realisation of each case.
const FIRST: u64 = 100;
/// Blocks of each launch: fewer than the realisations, so blocks take several in turn.
const BLOCKS: u64 = 3;

/// An ensemble of the checks (setups of tests/ensemble_gpu.rs), its realisations
/// FIRST .. FIRST + `realisations`, and how its tables are altered.
struct Case {
    name: &'static str,
    ensemble: Ensemble,
    realisations: u64,
    alter: fn(&mut DeviceTables),
}

fn cases() -> Vec<Case> {
    let energies = |first_log10: f64, n: usize, step: f64| -> Vec<f64> {
        (0..n).map(|i| 10f64.powf(first_log10 + step * i as f64)).collect()
    };
    let transport = |z_max| {
        let losses = EnergyLosses::new(LossModel::KleinNishina, &PhotonField::default_field());
        Transport::new(&losses, 3e28, 0.6, z_max, 10.0, 1e7).unwrap()
    };
    let ensemble = |z_max, rate, spatial, poisson_count, cutoff, energies: Vec<f64>| {
        let params = EnsembleParams {
            sn_rate_per_myr: rate,
            t_max_myr: 7.0,
            s_max_kpc: 10.0,
            spatial,
            poisson_count,
            spectrum: SourceSpectrum::from_energy_erg(1e48, 1.0, 2.2, cutoff).unwrap(),
        };
        Ensemble::new(&transport(z_max), &params, &energies).unwrap()
    };
    vec![
        Case {
            name: "SECRET (spiral arms, the sampler's one-step piece search)",
            ensemble: ensemble(4.0, 4.55e4, SpatialModel::SpiralArms, false, 1e4, energies(2.4, 19, 0.1)),
            realisations: 6,
            alter: |_| {},
        },
        Case {
            name: "uniform disc, Poisson, 45 energies (three passes), a Host cell in the second pass",
            ensemble: ensemble(
                4.0,
                4e3,
                SpatialModel::UniformDisc,
                true,
                10f64.powf(5.5),
                energies(2.4, 45, 0.05),
            ),
            realisations: 8,
            alter: |tables| force_host_cell(tables, 30),
        },
        Case {
            name: "CB98, thin halo, a coarse guide (the sampler's general piece search)",
            ensemble: ensemble(
                0.5,
                4e3,
                SpatialModel::RadialCaseBhattacharya,
                false,
                10f64.powf(3.5),
                energies(1.0, 12, 0.3),
            ),
            realisations: 8,
            alter: coarsen_guide,
        },
    ]
}

/// Marks as Host the cell of `energy` that holds 0.99 of its last contributing age: a narrow
/// cell, which some of the realisations reach.
fn force_host_cell(tables: &mut DeviceTables, energy: usize) {
    let age = 0.99 * tables.max_age_myr[energy];
    let bin = (age * tables.inverse_bin_width) as usize;
    let mut cell = tables.cell_of_bin[energy * tables.bins + bin] as usize;
    while age >= tables.cells[cell].right {
        cell += 1;
    }
    tables.cells[cell].form = CellForm::Host as u64;
    tables.single_cells[cell].scale = 0.0;
}

/// Makes the distance sampler's guide 256 times coarser: a guide cell then holds several
/// pieces, and the draw takes the general piece search (several steps) in place of the
/// one-step one. The draws are the same (256 is a power of two: the cells are exactly those of
/// the guide's every 256th entry).
fn coarsen_guide(tables: &mut DeviceTables) {
    let sampler = &mut tables.sampler;
    sampler.guide = sampler.guide.iter().step_by(256).copied().collect();
    sampler.guide_right = sampler.guide_right.iter().step_by(256).copied().collect();
    sampler.guide_scale /= 256.0;
    sampler.single_step = false;
}

/// Sources of realisation k that the causal cut drops (s > c t), drawn as DeviceTables does.
fn causally_cut(tables: &DeviceTables, k: u64, start: RealisationStart) -> usize {
    let mut stream = Stream::new(SEED, k);
    stream.skip_to_block(start.word_position / 4);
    let bin_shift = 32 - tables.bins.trailing_zeros();
    let mut bins: Vec<u32> = (0..start.young_sources).map(|_| stream.next_u32() >> bin_shift).collect();
    bins.sort_unstable();
    stream.skip_to_block_start();
    bins.iter()
        .filter(|&&bin| {
            let age = (f64::from(bin) + uniform_from_word(stream.next_u32())) * tables.bin_width_myr;
            let distance = tables.distance(uniform_from_word(stream.next_u32()));
            !(age > 0.0 && distance <= tables.light_speed_kpc_per_myr * age)
        })
        .count()
}

/// A value that ensemble_kernels.cpp reads, little-endian.
trait LittleEndian: Copy {
    fn put(self, out: &mut Vec<u8>);
}
macro_rules! little_endian {
    ($($t:ty)*) => { $(impl LittleEndian for $t {
        fn put(self, out: &mut Vec<u8>) { out.extend_from_slice(&self.to_le_bytes()) }
    })* };
}
little_endian!(f32 f64 u32 u64);

fn put<T: LittleEndian>(out: &mut Vec<u8>, values: &[T]) {
    values.iter().for_each(|v| v.put(out));
}

/// An array: its length, then its values.
fn put_array<T: LittleEndian>(out: &mut Vec<u8>, values: &[T]) {
    put(out, &[values.len() as u64]);
    put(out, values);
}

/// The input of ensemble_kernels.cpp (its header describes the layout).
fn kernel_input(tables: &DeviceTables, starts: &[RealisationStart]) -> Vec<u8> {
    let sampler = &tables.sampler;
    let mut out = Vec::new();
    let o = &mut out;
    put(
        o,
        &[
            tables.bin_width_myr,
            tables.inverse_bin_width,
            tables.light_speed_kpc_per_myr,
            sampler.s_max_kpc,
            sampler.lo,
            sampler.guide_scale,
        ],
    );
    put(o, &[tables.bins as u64, tables.energies as u64, u64::from(sampler.single_step)]);
    put_array(o, &tables.max_age_myr);
    put_array(o, &tables.cell_of_bin);
    put(o, &[tables.cells.len() as u64]);
    for cell in &tables.cells {
        put(o, &[cell.right, cell.inverse_width, cell.index]);
        put(o, &[cell.form]);
        put(o, &cell.a);
        put(o, &cell.h);
    }
    put_array(o, &sampler.guide);
    put_array(o, &sampler.guide_right);
    put_array(o, &sampler.right);
    put_array(o, &sampler.center);
    put_array(o, &sampler.inv_half_width);
    put_array(o, &sampler.coefficients.concat());
    put(o, &[tables.single_cells.len() as u64]);
    for cell in &tables.single_cells {
        put(o, &cell.da);
        put(o, &cell.h);
        put(o, &[cell.scale, cell.underflow_bound]);
    }
    put(o, &[SEED, FIRST, BLOCKS]);
    put_array(o, &starts.iter().map(|s| s.young_sources).collect::<Vec<_>>());
    put_array(o, &starts.iter().map(|s| s.word_position).collect::<Vec<_>>());
    out
}

/// One tier's output of ensemble_kernels.cpp: flux [realisations][energies] and, per
/// realisation, whether the kernel left it to the host.
struct TierOutput {
    flux: Vec<f64>,
    needs_host: Vec<bool>,
}

/// Runs ensemble_kernels (`exe`) on realisations FIRST .. FIRST + starts.len() of `tables`,
/// with files named after `name`: the exact tier's output, then the f32 tier's.
fn run_kernels(
    exe: &Path,
    name: &str,
    tables: &DeviceTables,
    starts: &[RealisationStart],
) -> [TierOutput; 2] {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let (input, output) = (dir.join(format!("{name}.in")), dir.join(format!("{name}.out")));
    std::fs::write(&input, kernel_input(tables, starts)).unwrap();
    let run = Command::new(exe).arg(&input).arg(&output).output().expect("run the emulated kernels");
    assert!(run.status.success(), "the emulated kernels failed:\n{}", String::from_utf8_lossy(&run.stderr));
    let bytes = std::fs::read(&output).unwrap();
    let (realisations, energies) = (starts.len(), tables.energies);
    let tier_bytes = realisations * (8 * energies + 4);
    assert_eq!(bytes.len(), 2 * tier_bytes, "size of the emulated kernels' output");
    let tier = |bytes: &[u8]| {
        let (flux, needs_host) = bytes.split_at(8 * realisations * energies);
        let word = |b: &[u8]| u32::from_le_bytes(b.try_into().unwrap());
        TierOutput {
            flux: flux.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect(),
            needs_host: needs_host.chunks_exact(4).map(|b| word(b) != 0).collect(),
        }
    };
    let (exact, single) = bytes.split_at(tier_bytes);
    [tier(exact), tier(single)]
}

fn relative_difference(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| ((x - y) / y.abs().max(f64::MIN_POSITIVE)).abs()).fold(0.0, f64::max)
}

#[test]
fn ensemble_kernels_agree_with_the_specification_on_the_cpu() {
    let test = "ensemble_kernels_agree_with_the_specification_on_the_cpu";
    let Some(exe) = build("ensemble_kernels", test) else { return };
    for (number, case) in cases().into_iter().enumerate() {
        let name = case.name;
        let mut tables = case.ensemble.device_tables();
        let host_cells = tables.host_cells();
        (case.alter)(&mut tables);
        let ks: Vec<u64> = (FIRST..FIRST + case.realisations).collect();
        let starts: Vec<_> = ks.iter().map(|&k| case.ensemble.realisation_start(SEED, k)).collect();
        let cut: usize = ks.iter().zip(&starts).map(|(&k, &start)| causally_cut(&tables, k, start)).sum();
        assert!(cut > 0, "{name}: the causal cut drops no source");
        let [exact_tier, f32_tier] =
            run_kernels(&exe, &format!("cuda_emulation_ensemble_{number}"), &tables, &starts);

        // Per tier (exact, f32): realisations on the host, worst relative difference.
        let (mut on_host, mut worst) = ([0; 2], [0.0f64; 2]);
        for (r, (&k, &start)) in ks.iter().zip(&starts).enumerate() {
            let row = r * tables.energies..(r + 1) * tables.energies;
            let (exact, single) = (&exact_tier.flux[row.clone()], &f32_tier.flux[row]);
            let mut spec = [vec![0.0; tables.energies], vec![0.0; tables.energies]];
            let spec_on_host = [
                !tables.realisation(SEED, k, start, &mut spec[0]),
                !tables.realisation_f32(SEED, k, start, &mut spec[1]),
            ];
            let mut cpu = vec![0.0; tables.energies];
            case.ensemble.realisation(SEED, k, &mut cpu);
            let kernel_on_host = [exact_tier.needs_host[r], f32_tier.needs_host[r]];
            assert_eq!(
                kernel_on_host, spec_on_host,
                "{name}, realisation {k}: left to the host (exact, f32)"
            );
            if !spec_on_host[0] {
                let difference = relative_difference(exact, &spec[0]).max(relative_difference(exact, &cpu));
                assert!(difference <= 1e-12, "{name}, realisation {k}: exact tier off by {difference:e}");
                worst[0] = worst[0].max(difference);
            }
            if !spec_on_host[1] {
                let difference = relative_difference(single, &spec[1]);
                assert!(
                    difference <= 1e-6,
                    "{name}, realisation {k}: f32 tier off its specification by {difference:e}"
                );
                let off_exact = relative_difference(single, &cpu);
                assert!(
                    off_exact <= 1e-5,
                    "{name}, realisation {k}: f32 tier off the exact tier by {off_exact:e}"
                );
                worst[1] = worst[1].max(difference);
            }
            for (count, &flagged) in on_host.iter_mut().zip(&spec_on_host) {
                *count += usize::from(flagged);
            }
        }
        println!(
            "{name}: {} realisations, {cut} sources causally cut; on the host {on_host:?}, worst relative \
             difference {:.1e}, {:.1e} to the specification (exact, f32)",
            ks.len(),
            worst[0],
            worst[1]
        );
        if tables.host_cells() > host_cells {
            assert!(
                on_host.iter().all(|&n| n > 0 && n < ks.len()),
                "{name}: the forced Host cell should send some realisations to the host, not all"
            );
        }
    }
}
