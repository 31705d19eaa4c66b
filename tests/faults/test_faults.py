"""The fault suite: faults injected into real parts, on SQLite and PostgreSQL.

Each scenario runs on a fresh stack (database, its own persistent Redis, an
SMTP sink process, Celery worker processes), publishes e-mails, injects its
fault, waits until everything accepted is sent or dead, and then compares
what arrived at the sink (by recipient and Message-ID) with what was
accepted. Zero lost; zero duplicated, except e-mails whose outcome was
uncertain (the documented policy: sent again, same Message-ID).

Run alone: pytest -m faults -p no:randomly tests/faults
"""

from __future__ import annotations

import base64
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from dispatcher.broker.publisher import publish, schedule, use_broker
from dispatcher.delivery.views import DeliveryFilter
from dispatcher.domain.kinds import EventType
from dispatcher.domain.samples import sample_event
from tests.conftest import require_redis
from tests.integration.test_pipeline import service_for
from tests.support.faultlib import (
    FaultStack,
    Outcome,
    RedisServer,
    SentinelServer,
    fault_stack,
    once_each,
    pool_children,
)
from tests.support.harness import WORKER_PROCESSES, Receiver, Sink, wait_for
from tests.support.malformed import HANDLED, corpus

pytestmark = [pytest.mark.faults, pytest.mark.integration]

RESULTS: list[Outcome] = []
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FAST_VISIBILITY = {"DISPATCHER_VISIBILITY_TIMEOUT_SECONDS": "30"}


def sent_count(stack: FaultStack) -> int:
    return stack.records.status_counts()["sent"]


def wait_sending(stack: FaultStack, timeout: float = 30) -> None:
    wait_for(
        lambda: stack.records.status_counts()["sending"] > 0,
        timeout,
        "a delivery in flight",
        interval=0.02,
    )


def s01_pool_process_killed_mid_send(stack: FaultStack) -> str:
    stack.sink.set_faults([once_each("slow", "rcpt", action="hang", seconds=1.5)])
    stack.worker(env=FAST_VISIBILITY)
    for _ in range(6):
        stack.publish(tag="slow")
    for _ in range(20):
        stack.publish(tag="plain")
    wait_sending(stack)
    killed = pool_children(stack.workers[0])
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    stack.settle(120)
    return f"SIGKILL to {len(killed)} pool processes while sending"


def s02_worker_killed_mid_burst(stack: FaultStack) -> str:
    # The default visibility timeout (90 s): this is the two-minute promise.
    stack.worker()
    for _ in range(300):
        stack.publish(EventType.CUSTOMER_VALIDATED, tag="burst")
    wait_for(lambda: sent_count(stack) >= 40, 60, "the burst to be under way", interval=0.05)
    stack.workers[0].kill()
    stack.worker()
    available = time.monotonic()
    stack.settle(150)
    recovered = time.monotonic() - available
    assert recovered <= 120, f"in-flight work took {recovered:.0f} s after a new worker started"
    return f"whole worker SIGKILLed; all delivered {recovered:.0f} s after a new worker was up"


def s03_sigterm_with_retries_pending(stack: FaultStack) -> str:
    stack.sink.set_faults([once_each("later", "rcpt", code=451)])
    stack.worker(env=FAST_VISIBILITY)
    for _ in range(20):
        stack.publish(tag="later")
    wait_for(
        lambda: stack.records.status_counts()["retrying"] >= 10,
        30,
        "retries pending",
        interval=0.02,
    )
    pending = stack.records.status_counts()["retrying"]
    stack.workers[0].stop()
    stack.worker(env=FAST_VISIBILITY)
    stack.settle(120)
    return f"SIGTERM with {pending} retries pending; a new worker took over"


def s04_redis_restarted_mid_burst(stack: FaultStack) -> str:
    stack.worker(env=FAST_VISIBILITY)
    refused = 0
    for number in range(300):
        if number == 120:
            stack.redis.restart()
        address, _ = stack.try_publish(EventType.CUSTOMER_VALIDATED, tag="redis")
        refused += address is None
    stack.settle(150)
    return f"Redis killed (-9) and restarted mid-burst; {refused} publishes refused while down"


def s05_redis_down_when_worker_starts(stack: FaultStack) -> str:
    stack.redis.kill()
    worker = stack.worker(env=FAST_VISIBILITY, wait=False)
    wait_for(
        lambda: "Cannot connect" in worker.log() or "retry" in worker.log().lower(),
        30,
        "the worker to notice that Redis is down",
    )
    stack.redis.start()
    worker.wait_ready()
    for _ in range(20):
        stack.publish(tag="late")
    stack.settle(90)
    return "worker started with Redis down; connected when it came up"


def s06_redis_down_while_publishing(stack: FaultStack) -> str:
    stack.worker(env=FAST_VISIBILITY)
    for _ in range(10):
        stack.publish(tag="before")
    stack.redis.kill()
    durations = []
    for _ in range(5):
        address, seconds = stack.try_publish(tag="during")
        assert address is None, "publish() must refuse while Redis is down"
        durations.append(seconds)
    assert max(durations) < 3, durations
    stack.redis.start()
    for _ in range(10):
        stack.publish(tag="after")
    stack.settle(90)
    return f"publish() refused in at most {max(durations):.2f} s while Redis was down"


def s07_smtp_451_then_250(stack: FaultStack) -> str:
    stack.sink.set_faults([once_each("greylist", "rcpt", code=451, text="4.7.1 greylisted")])
    stack.worker(env=FAST_VISIBILITY)
    for _ in range(20):
        stack.publish(tag="greylist")
    stack.settle(60)
    rows = stack.records.deliveries(DeliveryFilter(limit=100))
    assert all(r.attempts == 2 and r.status == "sent" for r in rows), [
        (r.attempts, r.status) for r in rows
    ]
    return "every e-mail: 451 once, then 250 (2 attempts)"


def s08_smtp_550(stack: FaultStack) -> str:
    stack.sink.set_faults(
        [{"match": "unknown-", "stage": "rcpt", "code": 550, "text": "5.1.1 no such user"}]
    )
    stack.worker(env=FAST_VISIBILITY)
    for _ in range(10):
        stack.publish(tag="unknown", dead=True)
    for _ in range(10):
        stack.publish(tag="fine")
    stack.settle(60)
    dead = stack.records.deliveries(DeliveryFilter(status="dead", limit=100))
    assert all(r.attempts == 1 and r.last_code == 550 for r in dead)
    return "550 on RCPT: dead at once, code and text recorded, no retry"


def s09_drop_mid_data(stack: FaultStack) -> str:
    stack.sink.set_faults([once_each("cut", "mid_data", action="drop")])
    stack.worker(env=FAST_VISIBILITY)
    for _ in range(20):
        stack.publish(tag="cut")
    stack.settle(60)
    return "connection dropped while the message was sent: retried, delivered once"


def s10_smtp_never_answers(stack: FaultStack) -> str:
    stack.sink.set_faults([once_each("mute", "rcpt", action="hang", seconds=6)])
    stack.worker(env=FAST_VISIBILITY)
    for _ in range(10):
        stack.publish(tag="mute")
    stack.settle(90)
    return "server silent for 6 s (timeout 2 s): temporary, retried, delivered"


def s11_drop_after_final_dot(stack: FaultStack) -> str:
    stack.sink.set_faults([once_each("ghost", "after_data", action="drop")])
    stack.worker(env=FAST_VISIBILITY)
    for _ in range(10):
        stack.publish(tag="ghost")
    stack.settle(60)
    rows = stack.records.deliveries(DeliveryFilter(limit=100))
    assert all(r.uncertain and r.status == "sent" for r in rows)
    return "stored, then hung up before replying: status unknown, sent again (documented)"


def s12_published_twice_and_replayed_twice(stack: FaultStack) -> str:
    stack.sink.set_faults(
        [{"match": "bounce-", "stage": "rcpt", "code": 550, "text": "5.2.1 mailbox disabled"}]
    )
    stack.worker(env=FAST_VISIBILITY)
    address = f"twice-{uuid.uuid4().hex[:8]}@example.com"
    event = sample_event(EventType.PASSWORD_RESET)
    event.update(
        event_id=f"twice-{uuid.uuid4().hex}", customer_group="FAULT", contact={"email": address}
    )
    publish(event)
    publish(dict(event))
    stack.accepted[address] = str(event["event_id"])
    bounced = stack.publish(tag="bounce")
    stack.settle(60)
    stack.sink.set_faults([])
    [dead] = stack.records.deliveries(DeliveryFilter(status="dead", limit=10))
    service = service_for(stack)  # type: ignore[arg-type]
    first = service.replay_dead([dead.id])
    second = service.replay_dead([dead.id])
    schedule(first + second)
    stack.settle(60)
    assert len(stack.sink.messages(bounced)) == 1
    return f"same event published twice; dead letter replayed twice ({len(first)}+{len(second)})"


def s13_postgres_restarted_mid_burst(stack: FaultStack) -> str:
    if stack.kind != "postgres":
        pytest.skip("PostgreSQL only")
    stack.worker(env=FAST_VISIBILITY)
    for _ in range(200):
        stack.publish(EventType.CUSTOMER_VALIDATED, tag="pg")
    wait_for(lambda: sent_count(stack) >= 30, 60, "the burst to be under way", interval=0.05)
    version = os.listdir("/etc/postgresql")[0]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    stack.settle(150)
    return "PostgreSQL restarted while the burst drained"


def s14_burst_with_random_faults(stack: FaultStack) -> str:
    rng = random.Random(14)
    stack.sink.set_faults(
        [
            once_each("r451", "rcpt", code=451),
            {"match": "r550-", "stage": "rcpt", "code": 550, "text": "5.1.1 gone"},
            once_each("rcut", "mid_data", action="drop"),
            once_each("rmute", "rcpt", action="hang", seconds=3),
            once_each("rghost", "after_data", action="drop"),
        ]
    )
    stack.worker(env=FAST_VISIBILITY)
    stack.worker(env=FAST_VISIBILITY)
    kinds = [("r451", 0.05), ("r550", 0.02), ("rcut", 0.02), ("rmute", 0.005), ("rghost", 0.01)]
    killer_done = threading.Event()

    def kill_pool_midway() -> None:
        wait_for(lambda: sent_count(stack) >= 1500, 300, "1,500 sent", interval=0.2)
        for pid in pool_children(stack.workers[0]):
            os.kill(pid, signal.SIGKILL)
        killer_done.set()

    killer = threading.Thread(target=kill_pool_midway, daemon=True)
    killer.start()
    for _ in range(5000):
        draw, tag = rng.random(), "rok"
        for name, share in kinds:
            if draw < share:
                tag = name
                break
            draw -= share
        event_type = (
            EventType.PASSWORD_RESET if rng.random() < 0.2 else EventType.CUSTOMER_VALIDATED
        )
        stack.publish(event_type, tag=tag, dead=tag == "r550")
    stack.settle(600)
    killer.join(5)
    return "5,000 e-mails; 451, 550, mid-DATA drops, silence, post-dot drops; pool killed"


# The issue asks for a receiver down ten minutes; CI uses two (every retry
# path is the same, only the backoff reaches further). For the full length:
# FAULT_WEBHOOK_OUTAGE_SECONDS=600 pytest -m faults tests/faults -k 15
WEBHOOK_OUTAGE = float(os.environ.get("FAULT_WEBHOOK_OUTAGE_SECONDS", "120"))


def s15_webhook_receiver_down_during_a_burst(stack: FaultStack) -> str:
    if stack.kind != "postgres":
        pytest.skip("PostgreSQL only: the outbox behaves the same on SQLite, and time is short")
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    receiver = Receiver(stack.directory / "receiver", secret).start()
    try:
        receiver.down()
        hooks = {
            "DISPATCHER_WEBHOOK_URL": receiver.url,
            "DISPATCHER_WEBHOOK_SECRET": secret,
            "DISPATCHER_WEBHOOK_RETRY_BASE_SECONDS": "2",
            "DISPATCHER_WEBHOOK_RETRY_MAX_SECONDS": "30",
            **FAST_VISIBILITY,
        }
        stack.worker(env=hooks)
        stack.worker(env=hooks)
        started = time.monotonic()
        for _ in range(1000):
            stack.publish(EventType.CUSTOMER_VALIDATED, tag="hook")
        stack.settle(300)
        remaining = WEBHOOK_OUTAGE - (time.monotonic() - started)
        if remaining > 0:
            time.sleep(remaining)  # The outage itself: nothing to poll for.
        assert receiver.received() == []
        receiver.down(False)
        sent = {r.id for r in stack.records.deliveries(DeliveryFilter(limit=10_000))}

        def all_arrived() -> bool:
            got = {m["payload"]["data"]["delivery_id"] for m in receiver.received()}
            return got >= sent

        wait_for(all_arrived, 300, "every webhook after the receiver came back", interval=1)
        received = receiver.received()
        ids = [m["webhook_id"] for m in received]
        assert len(ids) == len(set(ids)), "a webhook-id arrived twice"
        per_delivery = Counter(m["payload"]["data"]["delivery_id"] for m in received)
        assert set(per_delivery.values()) == {1}
    finally:
        receiver.stop()
    return (
        f"webhook receiver down {WEBHOOK_OUTAGE:.0f} s during 1,000 e-mails; "
        f"{len(received)} webhooks arrived afterwards, each once"
    )


def s16_malformed_messages_on_every_lane_during_a_burst(stack: FaultStack) -> str:
    worker = stack.worker(env=FAST_VISIBILITY)
    shapes = corpus()
    lanes = ("dispatcher.interactive", "dispatcher.bulk", "dispatcher.maintenance")
    client = redis.Redis.from_url(stack.redis.url)
    prefix = stack.env["DISPATCHER_BROKER_PREFIX"]
    try:
        for number in range(300):
            stack.publish(
                EventType.PASSWORD_RESET if number % 3 else EventType.CUSTOMER_VALIDATED,
                tag="mixed",
            )
            if number % 2 == 0:
                _, raw = shapes[(number // 2) % len(shapes)]
                client.lpush(f"{prefix}{lanes[number % len(lanes)]}", raw)
    finally:
        client.close()
    stack.settle(180)
    expected = sum(1 for n in range(0, 300, 2) if shapes[(n // 2) % len(shapes)][0] not in HANDLED)
    wait_for(
        lambda: len(stack.records.rejected(limit=10_000)) >= expected,
        60,
        f"{expected} malformed messages recorded as rejected",
    )
    assert worker.process is not None
    assert worker.process.poll() is None, "the worker stopped"
    assert "Unrecoverable error" not in worker.log()
    return f"150 malformed items of {len(shapes)} shapes among 300 events; worker alive"


def s17_worker_killed_mid_batch_without_beat(stack: FaultStack) -> str:
    stack.worker("--concurrency=2", env=FAST_VISIBILITY, beat=False)
    stack.publish_batch(600, tag="batch")
    wait_for(lambda: sent_count(stack) >= 100, 60, "the batches to be under way", interval=0.02)
    stack.workers[0].kill()
    stack.worker("--concurrency=2", env=FAST_VISIBILITY, beat=False)
    stack.settle(240)
    outcome = stack.outcome("17")
    copies = outcome.duplicated + outcome.duplicated_uncertain
    assert copies <= 2, f"{copies} e-mails arrived twice; at most one per killed process (2)"
    assert stack.beat is None
    return f"worker (2 processes) SIGKILLed mid-batch, no beat; {copies} sent twice"


def _two_relays(stack: FaultStack) -> tuple[Sink, dict[str, str]]:
    """The stack's sink as relay 'primary', a second sink as 'backup', in failover order."""
    backup = Sink(stack.directory / "backup").start()
    stack.relays.append(backup)
    path = stack.directory / "relays.yaml"
    path.write_text(
        "relays:\n"
        f"  primary: {{host: 127.0.0.1, port: {stack.sink.port}, security: none}}\n"
        f"  backup: {{host: 127.0.0.1, port: {backup.port}, security: none}}\n"
        "default: [primary, backup]\n",
        "utf-8",
    )
    env = {
        "DISPATCHER_RELAYS_FILE": str(path),
        "DISPATCHER_RELAY_BREAKER_FAILURES": "2",
        "DISPATCHER_RELAY_BREAKER_PAUSE_SECONDS": "3",
        **FAST_VISIBILITY,
    }
    return backup, env


def s18_relay_down_mid_burst(stack: FaultStack) -> str:
    _, env = _two_relays(stack)
    stack.worker(env=env)
    for _ in range(150):
        stack.publish(EventType.CUSTOMER_VALIDATED, tag="relay")
    wait_for(lambda: sent_count(stack) >= 30, 60, "the burst to be under way", interval=0.05)
    stack.sink.stop()
    for _ in range(150):
        stack.publish(EventType.CUSTOMER_VALIDATED, tag="relay")
    stack.settle(120)
    rows = stack.records.deliveries(DeliveryFilter(limit=10_000))
    # Failover is within one attempt, except for an e-mail whose whole message
    # was on the wire when the relay died (at most one per worker process):
    # nobody knows whether the relay took it, so it goes again, marked
    # uncertain (the documented exception, counted as "dup. uncertain").
    retried = [r for r in rows if r.attempts > 1]
    assert all(r.uncertain for r in retried), f"{retried} needed another attempt"
    assert len(retried) <= WORKER_PROCESSES, f"{len(retried)} needed another attempt"
    by_relay = Counter(r.relay for r in rows)
    assert by_relay["backup"] >= 150, by_relay
    stack.sink = Sink(stack.sink.directory, port=stack.sink.port).start()
    return (
        f"primary relay stopped mid-burst; {dict(by_relay)}; "
        f"{len(rows) - len(retried)} in one attempt, {len(retried)} on the wire sent again"
    )


def s19_all_relays_down(stack: FaultStack) -> str:
    backup, env = _two_relays(stack)
    stack.worker(env=env)
    stack.sink.stop()
    backup.stop()
    for _ in range(40):
        stack.publish(tag="waits")
    wait_for(
        lambda: stack.records.status_counts()["retrying"] >= 40,
        60,
        "every e-mail to wait for a relay",
        interval=0.1,
    )
    assert sent_count(stack) == 0
    stack.relays[-1] = Sink(backup.directory, port=backup.port).start()
    stack.settle(120)
    return "both relays down: every e-mail waited (retrying), then went when the backup returned"


def s20_redis_primary_fails_over_via_sentinel(stack: FaultStack) -> str:
    primary = stack.redis
    replica = RedisServer(
        stack.directory / "replica", extra=("--replicaof", "127.0.0.1", str(primary.port))
    ).start()
    sentinel = SentinelServer(stack.directory / "sentinel", primary.port).start()
    try:
        wait_for(lambda: replica_in_sync(replica), 30, "the replica to sync with the primary")
        prefix = stack.env["DISPATCHER_BROKER_PREFIX"]
        env = {
            "DISPATCHER_BROKER_URL": sentinel.url,
            "DISPATCHER_BROKER_SENTINEL_MASTER": sentinel.master,
            "DISPATCHER_COOLDOWN_LIMIT": "3",
            **FAST_VISIBILITY,
        }
        use_broker(sentinel.url, prefix, sentinel.master)
        stack.worker(env=env, beat=False)
        refused = 0
        for number in range(300):
            if number == 100:
                primary.kill()
            address, _ = stack.try_publish(EventType.CUSTOMER_VALIDATED, tag="ha")
            refused += address is None
        wait_for(lambda: sentinel.settled() == replica.port, 30, "the failover to the replica")
        # Cooldowns live in Redis too: after the failover they still hold.
        address = f"cool-{uuid.uuid4().hex[:8]}@example.com"
        for _ in range(5):
            event = sample_event(EventType.PASSWORD_RESET)
            event.update(event_id=f"f-{uuid.uuid4().hex}", customer_group="FAULT")
            event["contact"] = {"email": address}
            publish(event)
        stack.settle(240)

        def cooled() -> bool:
            rows = stack.records.deliveries(DeliveryFilter(recipient=address, limit=10))
            return Counter(r.status for r in rows) == {"sent": 3, "suppressed": 2}

        wait_for(cooled, 60, "3 resets sent and 2 held back by the cooldown")
    finally:
        sentinel.stop()
        replica.kill()
    return (
        f"Redis primary killed mid-burst; Sentinel promoted the replica; {refused} publishes "
        "refused during the switch; cooldown held after it (3 sent, 2 suppressed)"
    )


def replica_in_sync(replica: RedisServer) -> bool:
    client = redis.Redis(port=replica.port, socket_connect_timeout=0.5)
    try:
        info = client.info("replication")
    except redis.RedisError:
        return False
    finally:
        client.close()
    return info.get("master_link_status") == "up"


SCENARIOS: list[tuple[str, Callable[[FaultStack], str]]] = [
    ("1 pool process SIGKILL mid-send", s01_pool_process_killed_mid_send),
    ("2 worker SIGKILL mid-burst", s02_worker_killed_mid_burst),
    ("3 SIGTERM, retries pending", s03_sigterm_with_retries_pending),
    ("4 Redis restarted mid-burst", s04_redis_restarted_mid_burst),
    ("5 Redis down at worker start", s05_redis_down_when_worker_starts),
    ("6 Redis down while publishing", s06_redis_down_while_publishing),
    ("7 SMTP 451 then 250", s07_smtp_451_then_250),
    ("8 SMTP 550", s08_smtp_550),
    ("9 drop mid-DATA", s09_drop_mid_data),
    ("10 SMTP never answers", s10_smtp_never_answers),
    ("11 drop after final dot", s11_drop_after_final_dot),
    ("12 twice published, twice replayed", s12_published_twice_and_replayed_twice),
    ("13 PostgreSQL restarted", s13_postgres_restarted_mid_burst),
    ("14 5,000 burst, random faults", s14_burst_with_random_faults),
    ("15 webhook receiver down mid-burst", s15_webhook_receiver_down_during_a_burst),
    ("16 malformed messages on every lane", s16_malformed_messages_on_every_lane_during_a_burst),
    ("17 worker SIGKILL mid-batch, no beat", s17_worker_killed_mid_batch_without_beat),
    ("18 relay down mid-burst", s18_relay_down_mid_burst),
    ("19 all relays down, then one back", s19_all_relays_down),
    ("20 Redis primary fails over (Sentinel)", s20_redis_primary_fails_over_via_sentinel),
]


@pytest.fixture(scope="module", autouse=True)
def table() -> Iterator[None]:
    require_redis()
    yield
    if RESULTS:
        text = format_table(RESULTS)
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "fault-table.md").write_text(text + "\n", "utf-8")
        sys.__stdout__.write("\n" + text + "\n")  # type: ignore[union-attr]
        sys.__stdout__.flush()  # type: ignore[union-attr]


def format_table(results: list[Outcome]) -> str:
    lines = [
        "| scenario | db | accepted | sent | dead (reasons) | lost | duplicated | "
        "dup. uncertain | s | notes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        reasons = "; ".join(r.dead_reasons)
        lines.append(
            f"| {r.scenario} | {r.database} | {r.accepted} | {r.sent} | {r.dead}"
            f"{f' ({reasons})' if reasons else ''} | {r.lost} | {r.duplicated} | "
            f"{r.duplicated_uncertain} | {r.seconds} | {r.notes} |"
        )
    return "\n".join(lines)


@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
@pytest.mark.parametrize(("name", "scenario"), SCENARIOS, ids=[s[0].split()[0] for s in SCENARIOS])
def test_fault_scenario(
    name: str,
    scenario: Callable[[FaultStack], str],
    database: str,
    tmp_path: Path,
) -> None:
    with fault_stack(database, tmp_path) as stack:
        notes = scenario(stack)
        outcome = stack.outcome(name, notes)
        RESULTS.append(outcome)
        assert outcome.lost == 0, outcome
        assert outcome.duplicated == 0, outcome
        assert stack.unexpected_dead() == [], stack.unexpected_dead()
        assert outcome.dead == len(stack.expect_dead), outcome
