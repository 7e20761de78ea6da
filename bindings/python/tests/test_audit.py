"""Every crk_* function the package declares (argtypes) is used outside _native.py as
`_lib.crk_name`, and every one exists in include/crkernels.h."""

import glob
import os
import re

from conftest import REPO

PKG = os.path.join(os.path.dirname(__file__), "..", "crkernels")


def test_declared_functions_are_used_and_exist():
    native = open(os.path.join(PKG, "_native.py")).read()
    others = "".join(open(p).read() for p in glob.glob(os.path.join(PKG, "*.py")) if not p.endswith("_native.py"))
    header = open(os.path.join(REPO, "include", "crkernels.h")).read()
    declared = set(re.findall(r"_lib\.(crk_[a-z0-9_]+)\.argtypes", native))
    assert len(declared) > 50
    for name in declared - {"crk_last_error_message", "crk_version", "crk_vector_isa"}:
        assert re.search(r"_lib\." + name + r"\b", others), name
    for name in declared:
        assert re.search(r"\b" + name + r"\(", header), name
