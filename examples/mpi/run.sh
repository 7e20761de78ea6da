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

# Optional tools follow the tests' rule (tests/tool_support/mod.rs): where one is missing this
# is skipped with one line, or fails under CRKERNELS_REQUIRE_ALL=1 (as .ci/run sets).
skip_or_fail() {  # what is missing, how to install it
    if [ -n "${CRKERNELS_REQUIRE_ALL:-}" ] && [ "$CRKERNELS_REQUIRE_ALL" != 0 ]; then
        echo "$0: $1, and CRKERNELS_REQUIRE_ALL is set: $2" >&2; exit 1
    fi
    echo "skipping $0: $1 (set CRKERNELS_REQUIRE_ALL=1 to make this an error)" >&2; exit 0
}
for tool in mpicc "${MPIRUN[0]}"; do
    command -v "$tool" >/dev/null ||
        skip_or_fail "$tool not found" "sudo apt-get install -y openmpi-bin libopenmpi-dev"
done
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv-python/bin/python" ]; then PYTHON=$ROOT/.venv-python/bin/python; else PYTHON=python3; fi
fi
"$PYTHON" -c "import numpy" 2>/dev/null ||
    skip_or_fail "$PYTHON has no NumPy" "run scripts/test-python.sh (it makes .venv-python) or pip install numpy"

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

# The f32 tier: bit-identical across ranks and threads as well.
rm -rf "$OUT/f32_np$NP" "$OUT/f32_np1"
mkdir -p "$OUT/f32_np$NP" "$OUT/f32_np1"
echo "=== f32 tier: $NP ranks, 1 thread each; 1 rank, 2 threads"
"${MPIRUN[@]}" -np "$NP" "$OUT/secret_grid_mpi" "$OUT/f32_np$NP" 1 50 f32
"${MPIRUN[@]}" -np 1 "$OUT/secret_grid_mpi" "$OUT/f32_np1" 2 50 f32
"$PYTHON" examples/mpi/check_grid.py "$OUT/f32_np$NP" "$OUT/f32_np1" --items 8
