"""What one webhook costs the sender: claim, sign, POST, record, in one process.

The outbox (PostgreSQL by default) is filled with N webhooks per round, and
``WebhookSender.send_due`` sends them to the test receiver (a process of its
own that verifies every signature). Reported per webhook: the sending
process's CPU (its lanes' threads included) and PostgreSQL's. The baseline,
measured in the same run against the same receiver: a bare urllib3 POST of
the same body, without database, signature or lanes. Rounds continue on the
same outbox, so a cost that grows with the delivered rows shows as a rising
figure from round to round.

    python -m bench.webhooks [--webhooks 3000] [--rounds 3] [--database postgres|sqlite]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.throughput import postgres_cpu

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def payload(number: int) -> dict[str, Any]:
    """A body the size of a real "delivery.sent" webhook."""
    return {
        "type": "delivery.sent",
        "timestamp": datetime.now(UTC).isoformat(),
        "data": {
            "delivery_id": number,
            "event_id": f"bench-{number}",
            "kind": "password.reset",
            "group": "RETAIL",
            "recipient": f"kunde{number}@example.com",
            "status": "sent",
            "smtp_code": 250,
            "smtp_text": "2.0.0 Ok: queued",
            "attempts": 1,
            "relay": None,
        },
    }


def bare_posts(url: str, count: int) -> float:
    """CPU milliseconds per POST of urllib3 alone (one kept connection)."""
    import urllib3

    pool = urllib3.PoolManager(retries=False)
    body = json.dumps(payload(0)).encode()
    headers = {"content-type": "application/json"}
    started = time.process_time()
    for _ in range(count):
        # The receiver answers 401 (unsigned): the exchange is the same.
        pool.request("POST", url, body=body, headers=headers, redirect=False)
    pool.clear()
    return (time.process_time() - started) * 1000 / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--webhooks", type=int, default=3000, help="webhooks per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from sqlalchemy import insert

    from config_store.database import make_engine
    from dispatcher.delivery.models import WebhookMessage
    from dispatcher.delivery.webhooks import OutboxRow, WebhookOutbox, WebhookSender
    from dispatcher.domain.statuses import WebhookType
    from dispatcher.settings import Settings
    from tests.conftest import fresh_database
    from tests.support.harness import Receiver

    rounds: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        receiver = Receiver(root / "receiver", SECRET).start()
        url, cleanup = fresh_database(args.database, root)
        engine = make_engine(url)
        sender = WebhookSender(
            WebhookOutbox(engine), Settings(webhook_url=receiver.url, webhook_secret=SECRET)
        )
        try:
            for number in range(args.rounds):
                now = datetime.now(UTC)
                rows = [
                    OutboxRow(
                        f"msg_{number}_{index}_{secrets.token_hex(6)}",
                        receiver.url,
                        WebhookType.SENT,
                        index,
                        payload(index),
                    ).values(now)
                    for index in range(args.webhooks)
                ]
                with engine.begin() as connection:
                    connection.execute(insert(WebhookMessage), rows)
                baseline = bare_posts(receiver.url, min(args.webhooks, 2000))
                pg_before, cpu_before = postgres_cpu(), time.process_time()
                wall_before = time.perf_counter()
                sent = 0
                while True:
                    result = sender.send_due()
                    if not result.delivered + result.retried + result.failed:
                        break
                    sent += result.delivered
                wall = time.perf_counter() - wall_before
                cpu = (time.process_time() - cpu_before) * 1000 / args.webhooks
                pg = (postgres_cpu() - pg_before) * 1000 / args.webhooks
                if sent != args.webhooks:
                    raise SystemExit(f"round {number + 1}: {sent} of {args.webhooks} delivered")
                row = {
                    "sender_cpu_ms_per_webhook": cpu,
                    "postgres_cpu_ms_per_webhook": pg if args.database == "postgres" else 0.0,
                    "bare_post_cpu_ms": baseline,
                    "ratio_to_bare_post": cpu / baseline,
                    "webhooks_per_second": args.webhooks / wall,
                }
                rounds.append(row)
                print(
                    f"round {number + 1}: sender {cpu:.3f} ms/webhook "
                    f"({row['ratio_to_bare_post']:.2f} x a bare POST of {baseline:.3f} ms), "
                    f"PostgreSQL {row['postgres_cpu_ms_per_webhook']:.3f} ms, "
                    f"{row['webhooks_per_second']:.0f}/s",
                    flush=True,
                )
        finally:
            sender.close()
            engine.dispose()
            receiver.stop()
            cleanup()
    rounds = [{key: round(value, 3) for key, value in row.items()} for row in rounds]
    medians = {key: statistics.median(row[key] for row in rounds) for key in rounds[0]}
    result: dict[str, Any] = {
        "cores": os.cpu_count(),
        "database": args.database,
        "medians": medians,
        "rounds": rounds,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
