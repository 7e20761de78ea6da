#!/usr/bin/env python3
"""Regenerates every file of tests/data/fit/ (issue 6: fit kernels).

Runs, in this order (each script documents its formulas and file layouts; summary in
NOTES-python6.md):
  gammainc_reference.py    gamma_q.csv                         regularised upper incomplete gamma
  modulation_reference.py  modulation.csv                      charge-sign dependent force field
  surrogate_reference.py   surrogate_<name>_{points,config,mse,coef,pred,result}.csv
                                                               polynomial ridge surrogate + step
  normfit_reference.py     normfit_{model,data_*,fit,chi2}.csv normalisation + modulation fit

Run from the repository root (about 30 s on 2 cores):
    python3 -m venv .venv-fit
    .venv-fit/bin/pip install -r tests/reference/requirements-fit.txt
    .venv-fit/bin/python tests/reference/fit_reference.py   (sets OMP/OPENBLAS_NUM_THREADS=1)
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = ["gammainc_reference.py", "modulation_reference.py", "surrogate_reference.py",
           "normfit_reference.py"]

if __name__ == "__main__":
    for s in SCRIPTS:
        print(f"== {s}", flush=True)
        # one BLAS thread: the float64 comparison columns (coef_f64, coef_sklearn, mse_f64, ...)
        # depend on the BLAS summation order; the exact (mpmath) columns do not
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        subprocess.run([sys.executable, os.path.join(HERE, s)], check=True, env=env)
