#!/usr/bin/env bash
# Makes the shipped conditional emulator models/secret_grid.safetensors from scratch and the
# numbers and figures of its card (models/README.md), with the crk tool (issue 17):
#
#   1. the training grid: table 1's 6750 points x REALISATIONS realisations (seed 1);
#   2. training: a conditional MADE-MoG, the 5 parameters first in the order (crk train);
#   3. held-out simulations: 1000 realisations at 101 table-1 points (seed 2) and at 102
#      points of the diagonally offset grid (seed 3), the points in models/heldout_*.csv;
#   4. crk evaluate against both (Delta Q, classifier two-sample test, figures);
#   5. crk fit --closure: 100 spectra simulated at random parameters inside table 1's box,
#      fitted, and the coverage of the 68% and 95% intervals (the emulator taken as exact, and
#      with its error of 0.03 in psi folded in).
#
#   scripts/secret-grid-model.sh [DATA_DIR]     (default target/secret_grid; about 1.5 hours
#                                                on 2 cores, steps resume when rerun)
#
# Every step resumes: crk grid skips complete shards, crk train continues from its checkpoint.
# The trained model, the reports and the figures go to DATA_DIR; copy the model to models/.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-target/secret_grid}
REALISATIONS=${REALISATIONS:-100}
TRAIN_OPTIONS=${TRAIN_OPTIONS:---hidden 200 --components 10 --activation sigmoid --batch-size 50 --learning-rate 1e-3 --schedule cosine:0.01 --epochs 120 --seed 1}
cargo build --release -p crk
CRK=target/release/crk
mkdir -p "$DATA"
log() { echo; echo "=== $*"; }

log "1. the training grid"
/usr/bin/time -v "$CRK" grid --preset table1 --realisations "$REALISATIONS" --seed 1 --out "$DATA/train" 2> >(tee "$DATA/grid.time" >&2)

log "2. training"
# shellcheck disable=SC2086
/usr/bin/time -v "$CRK" train --grid "$DATA/train" --out "$DATA/secret_grid.safetensors" $TRAIN_OPTIONS \
    --checkpoint "$DATA/train.ckpt" --resume 2> >(tee "$DATA/train.time" >&2)

log "3. held-out simulations"
"$CRK" grid --points models/heldout_grid_points.csv --realisations 1000 --seed 2 --out "$DATA/heldout_grid"
"$CRK" grid --points models/heldout_offset_points.csv --realisations 1000 --seed 3 --out "$DATA/heldout_offset"

log "4. evaluation"
"$CRK" evaluate --model "$DATA/secret_grid.safetensors" --grid "$DATA/heldout_grid" --out "$DATA/evaluate_grid"
"$CRK" evaluate --model "$DATA/secret_grid.safetensors" --grid "$DATA/heldout_offset" --out "$DATA/evaluate_offset"

log "5. closure test of crk fit"
"$CRK" fit --model "$DATA/secret_grid.safetensors" --closure 100 --seed 11 --threads 1 --out "$DATA/closure.json"
"$CRK" fit --model "$DATA/secret_grid.safetensors" --closure 100 --seed 11 --threads 1 --emulator-sigma 0.03 \
    --out "$DATA/closure_emulator_sigma_0.03.json"

echo; echo "done: $DATA/secret_grid.safetensors, $DATA/evaluate_grid, $DATA/evaluate_offset, $DATA/closure.json"
