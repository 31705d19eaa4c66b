"""The fault suite's tools: its own Redis (with persistence), a stack, and a ledger.

Every scenario gets a fresh stack: a database (SQLite or PostgreSQL), a Redis
server of its own with append-only persistence (so that it can be restarted
and killed without touching anything else), an SMTP sink process with faults,
and Celery worker processes. The ledger knows every e-mail that publish()
accepted and compares it with what reached the sink and what the record says.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import redis.sentinel
from sqlalchemy import Engine

from config_store.database import make_engine
from config_store.repository import SettingsRepository
from dispatcher.broker.publisher import publish, publish_many, use_broker
from dispatcher.delivery.record import DeliveryRecords
from dispatcher.delivery.views import DeliveryFilter
from dispatcher.domain.kinds import EventType
from dispatcher.domain.samples import sample_event
from dispatcher.domain.statuses import WAITING
from dispatcher.errors import BrokerUnavailable, StoreUnavailable
from tests.conftest import fresh_database
from tests.support.documents import addresses_only
from tests.support.harness import Sink, Worker, free_port, wait_for

SUITE_ENV = {
    "DISPATCHER_RETRY_BASE_SECONDS": "0.5",
    "DISPATCHER_RETRY_MAX_SECONDS": "3",
    "DISPATCHER_RETRY_MAX_ATTEMPTS": "12",
    "DISPATCHER_SWEEP_INTERVAL_SECONDS": "1",
    "DISPATCHER_SMTP_TIMEOUT": "2",
    "DISPATCHER_WORKER_METRICS_PORT": "0",
    "DISPATCHER_COOLDOWN_LIMIT": "0",
}


@dataclass
class RedisServer:
    """A redis-server of our own, persisting every write (appendfsync always)."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    # Further options, e.g. ("--replicaof", "127.0.0.1", "6380") for a replica.
    extra: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(self.directory),
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                    "--save",
                    "",
                    "--maxmemory-policy",
                    "noeviction",
                    *self.extra,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(self.ping, 20, "redis-server to accept connections")
        return self

    def ping(self) -> bool:
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def restart(self) -> None:
        self.kill()
        self.start()


@dataclass
class BeatProcess:
    env: dict[str, str]
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> BeatProcess:
        celery = Path(sys.executable).with_name("celery")
        with (self.directory / "beat.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(celery),
                    "-A",
                    "worker",
                    "beat",
                    "--loglevel=INFO",
                    f"--schedule={self.directory / 'beat-schedule'}",
                ],
                cwd=Path(__file__).resolve().parents[2],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@dataclass
class Outcome:
    scenario: str
    database: str
    accepted: int
    sent: int
    dead: int
    dead_reasons: list[str]
    lost: int
    duplicated: int
    duplicated_uncertain: int
    suppressed: int
    seconds: float
    notes: str = ""


@dataclass
class FaultStack:
    kind: str
    directory: Path
    database_url: str
    engine: Engine
    redis: RedisServer
    sink: Sink
    env: dict[str, str]
    workers: list[Worker] = field(default_factory=list)
    beat: BeatProcess | None = None
    # Further relays of a scenario; what arrives there counts like the sink's.
    relays: list[Sink] = field(default_factory=list)
    accepted: dict[str, str] = field(default_factory=dict)  # address -> event_id
    expect_dead: set[str] = field(default_factory=set)
    started: float = field(default_factory=time.monotonic)

    @property
    def records(self) -> DeliveryRecords:
        return DeliveryRecords(self.engine)

    def worker(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        wait: bool = True,
        beat: bool = True,
    ) -> Worker:
        """A worker process; the first call also starts Celery beat unless ``beat`` is False.

        Beat runs as its own process, as in production, so that killing a
        worker's pool processes never takes it with them. Workers sweep on
        their own too (``dispatcher/worker/sweep_clock.py``); beat only adds.
        """
        if beat and self.beat is None:
            self.beat = BeatProcess(self.env, self.directory).start()
        started = Worker(
            {**self.env, **(env or {})},
            self.directory / f"worker-{len(self.workers)}.log",
            args=args,
        )
        self.workers.append(started.start(wait=wait))
        return started

    def publish(
        self, event_type: EventType = EventType.PASSWORD_RESET, tag: str = "m", dead: bool = False
    ) -> str:
        """Publish one event for one fresh address; record it if publish accepted it."""
        address, event = self._event(event_type, tag)
        publish(event)
        self.accepted[address] = str(event["event_id"])
        if dead:
            self.expect_dead.add(address)
        return address

    def publish_batch(
        self, count: int, event_type: EventType = EventType.CUSTOMER_VALIDATED, tag: str = "b"
    ) -> list[str]:
        """Publish ``count`` events with ``publish_many`` (batches of ``BATCH_SIZE``)."""
        made = [self._event(event_type, tag) for _ in range(count)]
        publish_many([event for _, event in made])
        for address, event in made:
            self.accepted[address] = str(event["event_id"])
        return [address for address, _ in made]

    @staticmethod
    def _event(event_type: EventType, tag: str) -> tuple[str, dict[str, Any]]:
        address = f"{tag}-{uuid.uuid4().hex[:10]}@example.com"
        event = sample_event(event_type)
        event.update(event_id=f"f-{uuid.uuid4().hex}", customer_group="FAULT")
        event["contact"] = {"email": address}
        return address, event

    def try_publish(self, *args: Any, **kwargs: Any) -> tuple[str | None, float]:
        started = time.monotonic()
        try:
            address: str | None = self.publish(*args, **kwargs)
        except BrokerUnavailable:
            address = None
        return address, time.monotonic() - started

    def settled(self) -> bool:
        """Every accepted event is recorded and none of its deliveries is still waiting."""
        try:
            rows = self.records.deliveries(DeliveryFilter(limit=1_000_000))
        except StoreUnavailable:
            # A pooled connection is pinged only after 10 s idle, so the first
            # look after a database restart fails, and the pool starts afresh.
            return False
        by_event = {r.event_id for r in rows}
        if any(event_id not in by_event for event_id in self.accepted.values()):
            return False
        return not any(r.status in (*WAITING, "sending") for r in rows)

    def settle(self, timeout: float) -> None:
        try:
            wait_for(
                self.settled, timeout, "every accepted e-mail to be sent or dead", interval=0.5
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}; {self.diagnosis()}") from None

    def diagnosis(self) -> str:
        rows = self.records.deliveries(DeliveryFilter(limit=1_000_000))
        recorded = {r.event_id for r in rows}
        missing = [e for e in self.accepted.values() if e not in recorded]
        waiting = [
            f"{r.id}:{r.status}:{r.attempts}:{r.last_text}"
            for r in rows
            if r.status in (*WAITING, "sending")
        ][:5]
        return (
            f"statuses {self.records.status_counts()}; {len(missing)} accepted events not "
            f"recorded (e.g. {missing[:3]}); waiting e.g. {waiting}"
        )

    def outcome(self, scenario: str, notes: str = "") -> Outcome:
        rows = {r.recipient: r for r in self.records.deliveries(DeliveryFilter(limit=1_000_000))}
        arrived = Counter(
            rcpt
            for sink in (self.sink, *self.relays)
            for entry in sink.messages()
            for rcpt in entry["rcpt_tos"]
        )
        sent = dead = lost = duplicated = uncertain_dupes = suppressed = 0
        reasons: Counter[str] = Counter()
        for address in self.accepted:
            row = rows.get(address)
            copies = arrived.get(address, 0)
            if row is not None and row.status == "dead":
                dead += 1
                reasons[_reason(row.last_code, row.last_text)] += 1
            elif row is not None and row.status == "suppressed":
                suppressed += 1
            elif copies == 0:
                lost += 1
            if row is not None and row.status == "sent":
                sent += 1
            if copies > 1:
                if row is not None and row.uncertain:
                    uncertain_dupes += 1
                else:
                    duplicated += 1
        return Outcome(
            scenario=scenario,
            database=self.kind,
            accepted=len(self.accepted),
            sent=sent,
            dead=dead,
            dead_reasons=[f"{count} x {reason}" for reason, count in reasons.most_common()],
            lost=lost,
            duplicated=duplicated,
            duplicated_uncertain=uncertain_dupes,
            suppressed=suppressed,
            seconds=round(time.monotonic() - self.started, 1),
            notes=notes,
        )

    def unexpected_dead(self) -> list[str]:
        rows = {r.recipient: r for r in self.records.deliveries(DeliveryFilter(limit=1_000_000))}
        return [
            f"{a}: {rows[a].last_text}"
            for a in self.accepted
            if a in rows and rows[a].status == "dead" and a not in self.expect_dead
        ]


def once_each(tag: str, stage: str, **rule: Any) -> dict[str, Any]:
    """A sink fault that strikes every address with this tag once, at this stage."""
    return {"match": f"{tag}-", "stage": stage, "per_recipient": True, "times": 1, **rule}


def _reason(code: int | None, text: str | None) -> str:
    return f"{code or '-'} {(text or '')[:60]}"


@contextmanager
def fault_stack(kind: str, directory: Path, **env: str) -> Iterator[FaultStack]:
    url, cleanup = fresh_database(kind, directory)
    redis_server = RedisServer(directory / "redis").start()
    sink = Sink(directory / "sink").start()
    prefix = f"fault-{uuid.uuid4().hex[:8]}:"
    stack_env = {
        "DISPATCHER_BROKER_URL": redis_server.url,
        "DISPATCHER_BROKER_PREFIX": prefix,
        "DISPATCHER_DATABASE_URL": url,
        "DISPATCHER_SMTP_HOST": "127.0.0.1",
        "DISPATCHER_SMTP_PORT": str(sink.port),
        **SUITE_ENV,
        **env,
    }
    use_broker(redis_server.url, prefix)
    engine = make_engine(url)
    SettingsRepository(engine).add_group("FAULT", "Fault suite")
    SettingsRepository(engine).save_settings("FAULT", addresses_only(), "fault suite")
    stack = FaultStack(kind, directory, url, engine, redis_server, sink, stack_env)
    try:
        yield stack
    finally:
        for worker in stack.workers:
            worker.stop(grace=10)
        if stack.beat is not None:
            stack.beat.stop()
        stack.sink.stop()
        for relay in stack.relays:
            relay.stop()
        stack.redis.kill()
        engine.dispose()
        cleanup()
        use_broker(os.environ["DISPATCHER_BROKER_URL"], os.environ["DISPATCHER_BROKER_PREFIX"])


def pool_children(worker: Worker) -> list[int]:
    assert worker.process is not None
    found = subprocess.run(
        ["pgrep", "-P", str(worker.process.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    return [int(pid) for pid in found]


@dataclass
class SentinelServer:
    """One Redis Sentinel (``redis-server --sentinel``) watching a primary as "fault"."""

    directory: Path
    primary_port: int
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    master: str = "fault"

    @property
    def url(self) -> str:
        return f"sentinel://127.0.0.1:{self.port}"

    def start(self) -> SentinelServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "sentinel.conf"
        config.write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            f"dir {self.directory}\n"
            f"sentinel monitor {self.master} 127.0.0.1 {self.primary_port} 1\n"
            f"sentinel down-after-milliseconds {self.master} 1000\n"
            f"sentinel failover-timeout {self.master} 5000\n"
            f"sentinel parallel-syncs {self.master} 1\n",
            "utf-8",
        )
        with (self.directory / "sentinel.log").open("ab") as log:
            self.process = subprocess.Popen(
                ["redis-server", str(config), "--sentinel"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(self.primary, 20, "the sentinel to know the primary")
        return self

    def primary(self) -> int | None:
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            found = client.execute_command("SENTINEL", "get-master-addr-by-name", self.master)
        except redis.RedisError:
            return None
        finally:
            client.close()
        return int(found[1]) if found else None

    def settled(self) -> int | None:
        """The primary's port once a failover has ended (what clients are told), else None."""
        sentinel = redis.sentinel.Sentinel([("127.0.0.1", self.port)], socket_timeout=0.5)
        try:
            return int(sentinel.discover_master(self.master)[1])
        except redis.RedisError:
            return None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
