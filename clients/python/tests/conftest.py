import sys
from pathlib import Path

# The helpers beside the tests (vectors.py), importable without a package.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import os

import pytest

#: Set by .ci/run: a skipped test (the real-broker test without a broker,
#: confluent-kafka missing) fails instead, so that CI never passes by skipping.
REQUIRED = os.environ.get("POPBILL_TEST_REQUIRE_CLIENTS") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if REQUIRED and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under POPBILL_TEST_REQUIRE_CLIENTS=1: {report.longrepr}"
