"""A pytest plugin: fault tests record how long the bank took to recover, and the times are
printed in the terminal summary (so CI's log shows them without ``-s``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

_OBSERVED: list[tuple[str, str, float]] = []


@pytest.fixture
def recovery_time(request: pytest.FixtureRequest) -> Callable[[str, float], None]:
    """``recovery_time("what recovered", seconds)`` records a measurement of this test."""

    def record(what: str, seconds: float) -> None:
        _OBSERVED.append((request.node.nodeid, what, seconds))

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _OBSERVED:
        return
    terminalreporter.section("recovery times observed")
    for nodeid, what, seconds in _OBSERVED:
        terminalreporter.write_line(f"{seconds:7.2f} s  {what}  ({nodeid})")
