"""Metrics move as events flow: worker counters and timings, queue and record gauges."""

from __future__ import annotations

import re
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from dispatcher import publish
from dispatcher.admin.status import StateCollector
from dispatcher.domain.kinds import EventType
from dispatcher.domain.samples import sample_event
from dispatcher.ops import metrics
from dispatcher.settings import get_settings
from tests.support.documents import full
from tests.support.harness import free_port, wait_for
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def value(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text, 0 when absent."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        match = re.match(r"([a-zA-Z_:]+)(\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(3) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(4))
    return 0.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    port = free_port()
    with running_stack(
        "sqlite", tmp_path_factory.mktemp("metrics"), DISPATCHER_WORKER_METRICS_PORT=str(port)
    ) as s:
        s.env["METRICS_PORT"] = str(port)
        s.settings.add_group("RETAIL", "Retail customers")
        s.settings.save_settings("RETAIL", full(), "test")
        yield s


def scrape_worker(stack: Stack) -> str:
    url = f"http://127.0.0.1:{stack.env['METRICS_PORT']}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def reset(address: str) -> dict[str, object]:
    event = sample_event(EventType.PASSWORD_RESET)
    event.update(
        event_id=f"m-{uuid.uuid4().hex[:10]}", customer_group="RETAIL", contact={"email": address}
    )
    return event


def test_worker_metrics_count_and_time_deliveries(stack: Stack) -> None:
    before = wait_for(lambda: scrape_worker(stack), 20, "the worker's metrics endpoint")
    sent_before = value(before, "dispatcher_emails_total", kind="password.reset", status="sent")
    smtp_before = value(before, "dispatcher_smtp_seconds_count", outcome="accepted")
    address = f"metric-{uuid.uuid4().hex[:6]}@example.com"
    stack.sink.set_faults([{"match": address, "stage": "rcpt", "code": 451, "times": 1}])
    event = reset(address)
    publish(event)
    stack.wait_status(str(event["event_id"]), {"sent"})

    def moved() -> str | None:
        text = scrape_worker(stack)
        sent = value(text, "dispatcher_emails_total", kind="password.reset", status="sent")
        return text if sent >= sent_before + 1 else None

    after = wait_for(moved, 20, "the sent counter to move")
    assert value(after, "dispatcher_smtp_seconds_count", outcome="accepted") >= smtp_before + 1
    assert value(after, "dispatcher_smtp_seconds_count", outcome="temporary") >= 1
    assert value(after, "dispatcher_retries_total", kind="password.reset") >= 1
    assert value(after, "dispatcher_render_seconds_count") >= 2
    assert (
        value(
            after,
            "dispatcher_events_total",
            type="password.reset",
            group="RETAIL",
            outcome="accepted",
        )
        >= 1
    )
    assert value(after, "dispatcher_event_to_acceptance_seconds_count", lane="interactive") >= 1


def exposition(stack: Stack) -> str:
    """What the API's /metrics shows: counters and the gauges read at scrape time."""

    state = StateCollector(stack.engine, get_settings(), include_workers=False)
    return metrics.exposition(state)[0].decode()


def test_state_gauges_follow_the_queue_and_the_record(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPATCHER_DATABASE_URL", stack.database_url)

    get_settings.cache_clear()
    try:
        stack.worker.stop()
        events = [reset(f"queued{n}-{uuid.uuid4().hex[:6]}@example.com") for n in range(3)]
        for event in events:
            publish(event)
        text = exposition(stack)
        assert value(text, "dispatcher_broker_up") == 1
        assert value(text, "dispatcher_queue_depth", queue="dispatcher.interactive") == 3
        assert value(text, "dispatcher_database_up") == 1
        sent_before = value(text, "dispatcher_deliveries", status="sent")
        stack.worker = stack.new_worker().start()
        for event in events:
            stack.wait_status(str(event["event_id"]), {"sent"})
        text = exposition(stack)
        assert value(text, "dispatcher_queue_depth", queue="dispatcher.interactive") == 0
        assert value(text, "dispatcher_deliveries", status="sent") == sent_before + 3
    finally:
        get_settings.cache_clear()


def test_alert_rules_use_only_metrics_we_export() -> None:
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text("utf-8"))
    # Counters live in ops/metrics.py, the gauges read at scrape time in admin/status.py.
    source = "".join(
        (ROOT / "dispatcher" / part).read_text("utf-8")
        for part in ("ops/metrics.py", "admin/status.py")
    )
    exported = set(re.findall(r'"(dispatcher_[a-z_]+)"', source))
    histograms = {name for name in exported if name.endswith("_seconds")}
    exported |= {f"{h}_{suffix}" for h in histograms for suffix in ("bucket", "count", "sum")}
    names = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    assert {
        "DispatcherFailureRate",
        "DispatcherQueueAge",
        "DispatcherDeadLetters",
        "DispatcherNoWorker",
    } <= names
    for group in rules["groups"]:
        for rule in group["rules"]:
            used = set(re.findall(r"\b(dispatcher_[a-z_]+)\b", rule["expr"]))
            assert used, rule["alert"]
            assert used <= exported, (rule["alert"], used - exported)
