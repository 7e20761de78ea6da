#!/usr/bin/env bash
# Builds examples/mpi/secret_grid_mpi.c against the static library, runs the grid on 2 ranks
# and on 1 rank, and checks that both give bit-identical shards.
#   bash examples/mpi/run.sh            (needs mpicc and mpirun: apt-get install openmpi-bin libopenmpi-dev)
# Environment: MPIRUN (default "mpirun --oversubscribe --allow-run-as-root"), NP (default 2),
# PYTHON (a python3 with NumPy; default .venv-python/bin/python if present, else python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
OUT=$ROOT/target/mpi
NP=${NP:-2}
read -r -a MPIRUN <<< "${MPIRUN:-mpirun --oversubscribe --allow-run-as-root}"

for tool in mpicc "${MPIRUN[0]}"; do
    command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install -y openmpi-bin libopenmpi-dev" >&2; exit 1; }
done
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv-python/bin/python" ]; then PYTHON=$ROOT/.venv-python/bin/python; else PYTHON=python3; fi
fi
"$PYTHON" -c "import numpy" 2>/dev/null || { echo "$PYTHON has no NumPy (run scripts/test-python.sh or pip install numpy)" >&2; exit 1; }

cargo build --release
mkdir -p "$OUT"
mpicc -std=c99 -O2 -Wall -Wextra -I include examples/mpi/secret_grid_mpi.c \
    target/release/libcrkernels.a -lm -lpthread -ldl -o "$OUT/secret_grid_mpi"

rm -rf "$OUT/np$NP" "$OUT/np1"
mkdir -p "$OUT/np$NP" "$OUT/np1"
echo "=== $NP ranks, 1 thread each"
"${MPIRUN[@]}" -np "$NP" "$OUT/secret_grid_mpi" "$OUT/np$NP" 1
echo "=== 1 rank, 2 threads"
"${MPIRUN[@]}" -np 1 "$OUT/secret_grid_mpi" "$OUT/np1" 2
echo "=== check"
"$PYTHON" examples/mpi/check_grid.py "$OUT/np$NP" "$OUT/np1" --items 8
