"""A pytest plugin: fault tests record how long the bank took to recover, and the times are
printed in the terminal summary (so CI's log shows them without ``-s``).

A measurement travels with the test's report (``user_properties``), so that under
pytest-xdist the process that prints the summary sees the workers' measurements too.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

_OBSERVED: list[tuple[str, str, float]] = []
_KEY = "recovery time"


@pytest.fixture
def recovery_time(request: pytest.FixtureRequest) -> Callable[[str, float], None]:
    """``recovery_time("what recovered", seconds)`` records a measurement of this test."""

    def record(what: str, seconds: float) -> None:
        request.node.user_properties.append((_KEY, (what, seconds)))

    return record


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "teardown":  # the last report of a test holds all it recorded
        return
    for key, value in report.user_properties:
        if key == _KEY:
            what, seconds = value
            _OBSERVED.append((report.nodeid, what, float(seconds)))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _OBSERVED:
        return
    terminalreporter.section("recovery times observed")
    for nodeid, what, seconds in _OBSERVED:
        terminalreporter.write_line(f"{seconds:7.2f} s  {what}  ({nodeid})")
