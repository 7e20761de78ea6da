#!/usr/bin/env bash
# crk train on a data set of 2.0e7 spectra (issue 17: "crk train streams a data set larger
# than memory would allow as a copy"): one epoch, with the peak resident memory and the
# process's own (anonymous) memory beside the size of the data.
#
#   scripts/bench-train-memory.sh SOURCE_GRID [WORK_DIR]
#
# SOURCE_GRID is a complete table-1 grid from crk grid (100 realisations per point). The data
# set is made from it without simulating 2e7 spectra (hours on 2 cores): each point's shard is
# its 100 realisations tiled 30 times (3000 rows a point, 6750 x 3000 = 2.025e7 spectra,
# 1.54 GB of shards), with a manifest saying so and the checksums crk grid --merge records.
# Memory, not the model, is what this measures. Needs python3 with NumPy (.venv-ref).
set -euo pipefail
cd "$(dirname "$0")/.."
SOURCE=${1:?usage: scripts/bench-train-memory.sh SOURCE_GRID [WORK_DIR]}
WORK=${2:-target/bench_train_memory}
PY=${PYTHON:-.venv-ref/bin/python}
cargo build --release -p crk
CRK=target/release/crk
mkdir -p "$WORK/grid"
"$PY" - "$SOURCE" "$WORK/grid" <<'EOF'
import hashlib, json, os, sys
import numpy as np
source, out = sys.argv[1], sys.argv[2]
manifest = json.load(open(os.path.join(source, "manifest.json")))
tile = 30
for p in range(len(manifest["points"])):
    name = f"psi_{p}.npy"
    path = os.path.join(out, name)
    if os.path.exists(path + ".sha256"):
        continue
    rows = np.load(os.path.join(source, name))
    np.save(path, np.tile(rows, (tile, 1)))
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    open(path + ".sha256", "w").write(f"{digest}  {name}\n")
manifest["realisations_per_point"] *= tile
manifest["shards"] = None
manifest["data"] = ("SYNTHETIC for the memory benchmark: each shard is the source grid's shard tiled "
                    f"{tile} times; " + manifest["data"])
json.dump(manifest, open(os.path.join(out, "manifest.json"), "w"), indent=2)
EOF
"$CRK" grid --merge --out "$WORK/grid"
du -sh "$WORK/grid"
free -m
/usr/bin/time -v "$CRK" train --grid "$WORK/grid" --out "$WORK/model.safetensors" --hidden 200 --batch-size 512 \
    --epochs 1 --validation-fraction 0.01 --seed 1 2> "$WORK/time.txt"
grep -E "Maximum resident|Elapsed" "$WORK/time.txt"
