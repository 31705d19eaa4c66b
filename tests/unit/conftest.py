"""Unit tests: pure logic, and the product in-process over SQLite and PostgreSQL.

No worker, SMTP or HTTP server process runs here; the admin API is driven
through its ASGI app with a pipeline that records what it is handed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from dispatcher.admin.access import AccessStore
from tests.support.api_support import SCOPES, Api, RecordingPipeline, make_client


@pytest.fixture
def api(engine: Engine) -> Iterator[Api]:
    """The app on each test database, with tokens named publish, read and admin."""
    access = AccessStore(engine)
    tokens = {scope: access.create_token(scope, scope).secret for scope in SCOPES}
    pipeline = RecordingPipeline()
    with make_client(engine, pipeline) as client:
        yield Api(client, engine, pipeline, tokens)
