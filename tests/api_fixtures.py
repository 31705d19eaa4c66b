"""Fixtures for the admin API: the real app on each test database, tokens of each scope.

Test modules load them with ``pytest_plugins = ("tests.api_fixtures",)``; the
pipeline is a recorder here, and tests against real Redis, workers and a live
server live in their own modules.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from dispatcher.admin.access import AccessStore
from tests.api_support import SCOPES, Api, RecordingPipeline, make_client


@pytest.fixture
def api(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """The app on each test database, with tokens named publish, read and admin."""
    from dispatcher.ops import metrics

    # The metrics' state collector reads the process's configured database
    # and broker, not this test's; the live-server tests cover it.
    real = metrics.exposition
    monkeypatch.setattr(metrics, "exposition", lambda *_: real())
    access = AccessStore(engine)
    tokens = {scope: access.create_token(scope, scope).secret for scope in SCOPES}
    pipeline = RecordingPipeline()
    with make_client(engine, pipeline) as client:
        yield Api(client, engine, pipeline, tokens)
