//! `crk grid` against the ensemble engine on the same work (issue 17: "crk grid reaches the
//! ensemble engine's own throughput within 5%"): 4 table-1 points (R_SN = 0.5 to 3.0, the
//! cheapest to the dearest) x 100 realisations at the 19 grid energies, all cores. The engine
//! builds each point's tables and generates its realisations into memory (psi included);
//! crk grid does the same and writes the shards (sync, SHA-256, rename) and the manifest into
//! a fresh directory.
//!
//! cargo bench -p crk --bench grid

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use crk::grid::{GridRun, Manifest, Part, run};
use crkernels::parallel::ParallelEnsemble;
use crkernels::secret::{self, GridPoint, GridSettings};

const REALISATIONS: usize = 100;
const SEED: u64 = 1;

fn points() -> Vec<GridPoint> {
    [
        [0.5, 4.5, 2.2, 0.6, 3.0],
        [1.5, 3.75, 2.0, 0.4, 7.0],
        [2.5, 5.0, 2.4, 0.8, 1.0],
        [3.0, 4.0, 1.8, 1.0, 5.0],
    ]
    .map(GridPoint::from_array)
    .to_vec()
}

fn bench_grid(c: &mut Criterion) {
    let settings = GridSettings::default();
    let losses = settings.losses().expect("losses");
    let points = points();
    let mut group = c.benchmark_group("grid_4_points_x100");
    group.sample_size(10);
    group.bench_function("engine", |b| {
        b.iter(|| {
            let width = settings.energies_gev.len();
            let (mut flux, mut psi) = (vec![0.0; REALISATIONS * width], vec![0.0f32; REALISATIONS * width]);
            for (p, point) in points.iter().enumerate() {
                let ensemble = settings.ensemble(&losses, point).expect("ensemble");
                ensemble
                    .generate(SEED, (p as u64) << 32, REALISATIONS, 0, &mut flux, None)
                    .expect("generate");
                secret::psi_from_flux(&settings.energies_gev, &flux, &mut psi);
                black_box(&psi);
            }
        })
    });
    let root = std::env::temp_dir().join(format!("crk_bench_grid_{}", std::process::id()));
    group.bench_function("crk_grid", |b| {
        b.iter_batched(
            || {
                let _ = std::fs::remove_dir_all(&root);
                std::fs::create_dir_all(&root).expect("temp dir");
                let manifest = Manifest::new(&points, REALISATIONS as u64, SEED, &settings);
                crk::grid::open_run(&root, manifest).expect("manifest")
            },
            |manifest| {
                let grid = GridRun {
                    manifest,
                    settings: settings.clone(),
                    out: root.clone(),
                    part: Part { index: 1, count: 1 },
                    threads: 0,
                    device: None,
                    quiet: true,
                };
                black_box(run(&grid).expect("crk grid"));
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&root);
}

criterion_group!(benches, bench_grid);
criterion_main!(benches);
