"""A whole pipeline for integration tests: database, sink, worker with beat."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import Engine

from config_store.database import make_engine
from config_store.repository import SettingsRepository
from dispatcher.delivery.record import DeliveryRecords
from dispatcher.delivery.views import DeliveryFilter, DeliveryView
from tests.conftest import fresh_database, require_redis
from tests.support.harness import Sink, Worker, broker_env, wait_for

FAST_RETRIES = {
    "DISPATCHER_RETRY_BASE_SECONDS": "0.5",
    "DISPATCHER_RETRY_MAX_SECONDS": "2",
    "DISPATCHER_RETRY_MAX_ATTEMPTS": "4",
    "DISPATCHER_SWEEP_INTERVAL_SECONDS": "1",
    "DISPATCHER_SMTP_TIMEOUT": "3",
    "DISPATCHER_WORKER_METRICS_PORT": "0",
}


@dataclass
class Stack:
    directory: Path
    database_url: str
    engine: Engine
    sink: Sink
    worker: Worker
    env: dict[str, str]

    @property
    def records(self) -> DeliveryRecords:
        return DeliveryRecords(self.engine)

    @property
    def settings(self) -> SettingsRepository:
        return SettingsRepository(self.engine)

    def new_worker(self, *args: str) -> Worker:
        log = self.directory / f"worker-{uuid.uuid4().hex[:6]}.log"
        return Worker(self.env, log, args=args)

    def deliveries(self, **where: Any) -> list[DeliveryView]:
        return self.records.deliveries(DeliveryFilter(limit=10_000, **where))

    def wait_status(
        self, event_id: str, statuses: set[str], count: int = 1, timeout: float = 30
    ) -> list[DeliveryView]:
        def done() -> list[DeliveryView] | None:
            rows = self.deliveries(event_id=event_id)
            if len(rows) >= count and all(r.status in statuses for r in rows):
                return rows
            return None

        return wait_for(done, timeout, f"deliveries of {event_id} to reach {statuses}")


@contextmanager
def running_stack(kind: str, directory: Path, **extra_env: str) -> Iterator[Stack]:
    require_redis()
    url, cleanup = fresh_database(kind, directory)
    sink = Sink(directory / "sink").start()
    prefix = os.environ["DISPATCHER_BROKER_PREFIX"]
    env = {
        **broker_env(prefix),
        "DISPATCHER_DATABASE_URL": url,
        "DISPATCHER_SMTP_HOST": "127.0.0.1",
        "DISPATCHER_SMTP_PORT": str(sink.port),
        **FAST_RETRIES,
        **extra_env,
    }
    worker = Worker(
        env, directory / "worker.log", args=("-B", f"--schedule={directory / 'beat-schedule'}")
    )
    engine = make_engine(url)
    purge_broker(prefix)
    stack = Stack(directory, url, engine, sink, worker, env)
    try:
        worker.start()
        yield stack
    finally:
        # Tests may replace the worker or the sink; stop whatever runs now.
        stack.worker.stop()
        stack.sink.stop()
        worker.stop()
        sink.stop()
        engine.dispose()
        cleanup()
        purge_broker(prefix)


def purge_broker(prefix: str) -> None:
    """Drop every Redis key of this test run, so one stack never sees another's work."""

    client = redis.Redis.from_url(os.environ["DISPATCHER_BROKER_URL"])
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def raw_push(queue: str, body: bytes) -> None:
    """Put bytes straight onto a queue, as a broken client might."""

    client = redis.Redis.from_url(os.environ["DISPATCHER_BROKER_URL"])
    try:
        client.lpush(f"{os.environ['DISPATCHER_BROKER_PREFIX']}{queue}", body)
    finally:
        client.close()
