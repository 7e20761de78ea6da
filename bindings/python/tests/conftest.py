import os
import sys

# Import the package from this source tree (bindings/python) without installing it.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import pytest  # noqa: E402

import crkernels  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
MADE_DATA = os.path.join(REPO, "tests", "data", "made")


@pytest.fixture
def no_gpu():
    if crkernels.device_count() > 0:
        pytest.skip("a GPU is present: the NoDevice path cannot be tested")
