import os
import sys

# Import the package from this source tree (bindings/python) without installing it; with
# CRKERNELS_TEST_INSTALLED=1 (scripts/test-wheel.sh) test the installed package instead.
INSTALLED = os.environ.get("CRKERNELS_TEST_INSTALLED", "") not in ("", "0")
if not INSTALLED:
    sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import pytest  # noqa: E402

import crkernels  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
MADE_DATA = os.path.join(REPO, "tests", "data", "made")


@pytest.fixture
def no_gpu():
    if crkernels.device_count() > 0:
        pytest.skip("a GPU is present: the NoDevice path cannot be tested")


if INSTALLED:
    _source = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "crkernels"))
    assert not os.path.abspath(crkernels.__file__).startswith(_source + os.sep), (
        f"CRKERNELS_TEST_INSTALLED is set but crkernels was imported from the source tree "
        f"({crkernels.__file__}): run pytest from outside bindings/python"
    )
