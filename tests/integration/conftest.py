"""Integration tests: real worker, SMTP, HTTP and browser processes, real Redis.

Every test here is marked ``integration``. Processes start in their own
process groups and are stopped by group; waits poll with a deadline.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.harness import Sink

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sink]:
    """An aiosmtpd sink in its own process; ``sink.set_faults([...])`` injects replies."""
    started = Sink(tmp_path_factory.mktemp("sink")).start()
    yield started
    started.stop()
