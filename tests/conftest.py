"""Hypothesis profiles: ``ci`` is derandomized (same examples every run), ``dev`` and
``thorough`` explore new examples on every run.

The profile is chosen by ``HYPOTHESIS_PROFILE`` and defaults to ``ci``, so that
``python -m pytest`` gives the same result on every machine and every run; exploring is
asked for by name (``HYPOTHESIS_PROFILE=dev`` or ``thorough``).
"""

import os

import matplotlib
import pytest
from hypothesis import HealthCheck, settings
from threadpoolctl import threadpool_limits

matplotlib.use("Agg")

# The tests multiply many small matrices; BLAS threads only add synchronisation there
# (and oversubscribe a machine that runs other work), so the suite runs single-threaded.
_blas_limits = threadpool_limits(limits=1, user_api="blas")

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=40,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=60, print_blob=True)
settings.register_profile("thorough", deadline=None, max_examples=500, print_blob=True)

settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


_MISSING_PACKAGE = ("could not import", "is not installed", "optional package")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under ``CI=true`` a test skipped for a missing package fails instead: CI installs
    every extra the tests need (the ``test`` extra), so such a skip means a broken install,
    not a test that may be left out."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI", "").lower() not in ("1", "true", "yes") or not report.skipped:
        return
    reason = str(report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr)
    if any(text in reason for text in _MISSING_PACKAGE):
        report.outcome = "failed"
        report.longrepr = (f"skipped for a missing package, which CI installs with the test "
                           f"extra: {reason}")
