"""The package as pip installs it (scripts/test-wheel.sh sets CRKERNELS_TEST_INSTALLED=1): the
library that loads is the copy bundled inside the installed package, and the bundled crk is
the one the pipeline runs."""

import os
import sysconfig

import pytest

import crkernels
from conftest import INSTALLED
from crkernels import pipeline

pytestmark = pytest.mark.skipif(
    not INSTALLED, reason="tests the installed package (CRKERNELS_TEST_INSTALLED=1, scripts/test-wheel.sh)"
)

PACKAGE = os.path.dirname(os.path.abspath(crkernels.__file__))


def test_package_is_installed_in_site_packages():
    site = [os.path.realpath(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")]
    assert any(os.path.realpath(PACKAGE).startswith(s + os.sep) for s in site), (PACKAGE, site)


def test_bundled_library_is_the_one_loaded():
    assert "CRKERNELS_LIB" not in os.environ
    path = crkernels.library_path()
    assert os.path.realpath(path) == os.path.realpath(os.path.join(PACKAGE, "libcrkernels.so")), path
    assert crkernels.LIBRARY_PATH == path
    assert crkernels.version() == crkernels.__version__


def test_bundled_crk():
    bundled = os.path.join(PACKAGE, "bin", "crk")
    if os.environ.get("CRKERNELS_REQUIRE_CRK", "") in ("", "0") and not os.path.exists(bundled):
        pytest.skip("crk was not built into this install (no cli/ crate in the checkout)")
    assert "CRKERNELS_CRK" not in os.environ
    assert os.path.isfile(bundled) and os.access(bundled, os.X_OK), bundled
    assert os.path.realpath(pipeline.crk_path()) == os.path.realpath(bundled)
    assert "grid" in pipeline.run("--help")
