#!/usr/bin/env bash
# Builds libcrkernels (release), makes the virtual environment .venv-python with
# bindings/python/requirements.txt and runs the Python binding tests.
#   bash scripts/test-python.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${CRKERNELS_PYTHON_VENV:-$ROOT/.venv-python}
PYTHON=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r bindings/python/requirements.txt

cargo build --release
export CRKERNELS_LIB="$ROOT/target/release/libcrkernels.so"

cd bindings/python
"$VENV/bin/python" -m pytest -q tests "$@"
