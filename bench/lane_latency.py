"""How fast does a password reset arrive while a batch of other e-mails drains?

Starts an SMTP sink process and one `celery -A worker worker` (2 processes, all
lanes, as `celery -A worker worker` runs by default), publishes a batch of
validation e-mails, then password resets every 100 ms while the batch drains,
and prints the publish-to-arrival latency of the resets.

    python -m bench.lane_latency [--batch 2000] [--resets 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

os.environ.setdefault("DISPATCHER_BROKER_PREFIX", f"bench-{uuid.uuid4().hex[:8]}:")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--resets", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from dispatcher import publish
    from dispatcher.domain.kinds import EventType
    from dispatcher.domain.samples import sample_event
    from tests.support.documents import addresses_only
    from tests.support.harness import wait_for
    from tests.support.stack import running_stack

    with tempfile.TemporaryDirectory() as tmp, running_stack("sqlite", Path(tmp)) as stack:
        stack.settings.add_group("BENCH", "Benchmark")
        stack.settings.save_settings("BENCH", addresses_only(), "bench")
        started = time.monotonic()
        for number in range(args.batch):
            event = sample_event(EventType.CUSTOMER_VALIDATED)
            event.update(
                event_id=f"batch-{number}-{uuid.uuid4().hex[:6]}",
                customer_group="BENCH",
                contact={"email": f"batch{number}@example.com"},
            )
            publish(event)
        published_batch = time.monotonic() - started
        sent_at: dict[str, float] = {}
        for number in range(args.resets):
            address = f"reset{number}@example.com"
            event = sample_event(EventType.PASSWORD_RESET)
            event.update(
                event_id=f"reset-{number}-{uuid.uuid4().hex[:6]}",
                customer_group="BENCH",
                contact={"email": address},
            )
            sent_at[address] = time.time()
            publish(event)
            time.sleep(0.1)
        wait_for(
            lambda: stack.sink.count() >= args.batch + args.resets,
            600,
            "every e-mail to arrive",
            interval=0.2,
        )
        drained = time.monotonic() - started
        arrivals = {}
        for entry in stack.sink.messages():
            for rcpt in entry["rcpt_tos"]:
                if rcpt in sent_at:
                    arrivals[rcpt] = entry["received_at"] - sent_at[rcpt]
        latencies = [arrivals[a] * 1000 for a in sent_at]
        result = {
            "cores": os.cpu_count(),
            "batch": args.batch,
            "resets": args.resets,
            "publish_batch_seconds": round(published_batch, 3),
            "drain_seconds": round(drained, 3),
            "batch_rate_per_second": round(args.batch / drained, 1),
            "reset_latency_ms": {
                "p50": round(statistics.median(latencies), 1),
                "p99": round(percentile(latencies, 99), 1),
                "max": round(max(latencies), 1),
            },
            "target_ms": 1000,
        }
    print(json.dumps(result, indent=2))
    verdict = "meets" if result["reset_latency_ms"]["max"] <= 1000 else "MISSES"
    print(
        f"password reset while {args.batch} e-mails drain: max "
        f"{result['reset_latency_ms']['max']} ms ({verdict} the 1 s target)"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", "utf-8")


if __name__ == "__main__":
    main()
