"""The fault suite: faults injected into real parts, on SQLite and PostgreSQL.

Slow by nature; every test here is marked ``faults`` (and ``integration``)
and runs only with ``pytest -m faults``, a separate step of ``.ci/run``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.faults)
            item.add_marker(pytest.mark.integration)
