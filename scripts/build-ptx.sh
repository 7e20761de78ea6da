#!/usr/bin/env bash
# Regenerates the committed PTX (kernels/ptx/*.ptx) from the CUDA sources (kernels/*.cu) and
# assembles each with ptxas for sm_90 (H100/H200) to prove the driver will accept it.
#
#   scripts/build-ptx.sh           rebuild kernels/ptx/ in place
#   scripts/build-ptx.sh --check   rebuild into a temporary folder; fail if the committed PTX
#                                  differs from what the sources give, or does not assemble
#
# Needs CUDA 13.0's nvcc and ptxas (the lent GPUs' driver accepts PTX up to that version). If
# they are not on PATH, they are installed from PyPI into .venv-nvcc/ (gitignored).
set -euo pipefail
cd "$(dirname "$0")/.."

NVCC_VERSION=13.0.88
find_tools() {
    if command -v nvcc >/dev/null 2>&1 && nvcc --version | grep -q "release 13.0"; then
        NVCC=$(command -v nvcc); PTXAS=$(command -v ptxas); return 0
    fi
    local bin
    bin=$(ls -d .venv-nvcc/lib/python3*/site-packages/nvidia/cu13/bin 2>/dev/null | head -n1 || true)
    if [ -n "$bin" ] && [ -x "$bin/nvcc" ]; then NVCC="$bin/nvcc"; PTXAS="$bin/ptxas"; return 0; fi
    return 1
}
if ! find_tools; then
    echo "installing CUDA $NVCC_VERSION's nvcc and ptxas from PyPI into .venv-nvcc/"
    python3 -m venv .venv-nvcc
    .venv-nvcc/bin/pip install -q "nvidia-cuda-nvcc==$NVCC_VERSION" "nvidia-nvvm==$NVCC_VERSION" \
        "nvidia-cuda-crt==$NVCC_VERSION" "nvidia-cuda-runtime==13.0.96"
    find_tools || { echo "nvcc not found after installing" >&2; exit 1; }
fi
CUDA_HOME=$(cd "$(dirname "$NVCC")/.." && pwd)
# The PyPI layout keeps the runtime headers and nvvm beside bin/.
export PATH="$CUDA_HOME/bin:$PATH"

check=false
[ "${1:-}" = "--check" ] && check=true
out=kernels/ptx
if $check; then out=$(mktemp -d); trap 'rm -rf "$out"' EXIT; fi
mkdir -p "$out"

status=0
for source in kernels/*.cu; do
    name=$(basename "$source" .cu)
    "$NVCC" -ptx -arch=compute_80 -O3 -std=c++17 -I"$CUDA_HOME/include" "$source" -o "$out/$name.ptx"
    "$PTXAS" -arch=sm_90 -O3 "$out/$name.ptx" -o /dev/null
    if $check && ! cmp -s "$out/$name.ptx" "kernels/ptx/$name.ptx"; then
        echo "kernels/ptx/$name.ptx differs from what $source gives: run scripts/build-ptx.sh" >&2
        status=1
    else
        echo "$name.ptx: built and assembled for sm_90"
    fi
done
exit $status
