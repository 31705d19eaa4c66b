"""What the optional features cost: signed return paths with webhooks, and DKIM.

One run, the same machine and sink, four worker configurations, each a fresh
`celery -A worker worker` (two processes) on PostgreSQL:

  plain      no bounce domain, no webhooks, no DKIM (measured first and last;
             the baseline is the mean of the two)
  feedback   DISPATCHER_BOUNCE_DOMAIN (a signed return path per e-mail) and
             webhooks to a receiver in its own process (an outbox row written
             with every outcome, sent on their own lane)
  ed25519    DKIM with an Ed25519 key
  rsa-2048   DKIM with an RSA-2048 key

Each sends N e-mails through publish_many() and N through publish() one event
at a time, and prints e-mails per second, worker CPU per e-mail and the ratio
to the baseline. With webhooks it also prints how many webhooks were still to
come when the last e-mail arrived (e-mail goes first) and the e-mails per
second counted until the last webhook arrived, which is what a sustained load
gets. Each path starts once the webhooks of the one before have arrived. The
targets (issues 11 and 12): feedback at most 10 % less throughput, RSA-2048
at most 15 % less, Ed25519 under 1 ms of signing per e-mail (bench.dkim_cost
measures signing alone).

    python -m bench.features [--emails 3000] [--json out.json]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

# Sets DISPATCHER_BROKER_PREFIX for this run before anything reads the settings.
from bench.throughput import CpuMeter, Ours, cpu_of_tree, wait_count

WEBHOOK_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
KEY_OPTIONS = {
    "ed25519": ["-algorithm", "ed25519"],
    "rsa-2048": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
}


def dkim_dir(root: Path, kind: str) -> Path:
    """A keys directory with one fresh key for the bench sender's domain."""
    path = root / f"dkim-{kind}" / "example.com" / "bench.key"
    path.parent.mkdir(parents=True)
    subprocess.run(
        ["openssl", "genpkey", *KEY_OPTIONS[kind], "-out", str(path)],
        check=True,
        capture_output=True,
    )
    return root / f"dkim-{kind}"


def webhooks_in(receiver: Any, count: int, what: str) -> None:
    """Wait until the receiver holds ``count`` webhooks (one per e-mail sent)."""
    from tests.support.harness import wait_for

    wait_for(lambda: len(receiver.received()) >= count, 300, what)


def measure(
    directory: Path, name: str, env: dict[str, str], count: int, receiver: Any = None
) -> dict[str, Any]:
    """Both paths on a fresh worker; with ``receiver``, each path starts once the
    webhooks of what came before have arrived, so that a path is not charged
    for the webhooks of the one before it."""
    from dispatcher.domain.kinds import EventType

    row: dict[str, Any] = {"configuration": name}
    with Ours(directory / name, "postgres", 2, env=env) as ours:
        ours.publish_bulk(200, "warm")
        wait_count(ours.sink, 200, 120)
        meter = CpuMeter(ours.worker.process.pid, "postgres")  # type: ignore[union-attr]
        for path in ("publish_many", "publish"):
            if receiver is not None:
                webhooks_in(receiver, ours.sink.count(), "the earlier e-mails' webhooks")
                # Read after the wait, so the earlier webhooks are not counted here.
                receiver_cpu = cpu_of_tree(receiver.process.pid)
            base = ours.sink.count()
            meter.start()
            started = time.time()
            if path == "publish_many":
                ours.publish_bulk(count, f"{name}-bulk")
            else:
                ours.publish_each(count, f"{name}-each", EventType.PASSWORD_RESET)
            last = wait_count(ours.sink, base + count, 600)
            row[path] = {"per_second": count / (last - started), **meter.per_email(count)}
            if receiver is not None:
                # Webhooks not yet received when the path's last e-mail arrived
                # (e-mail goes first), and e-mails per second counted until the
                # last webhook arrived: what a sustained load gets.
                row[path]["webhooks_behind"] = ours.sink.count() - len(receiver.received())
                webhooks_in(receiver, ours.sink.count(), "the webhooks")
                row[path]["per_second_with_webhooks"] = count / (time.time() - started)
                # CPU per e-mail until the last webhook: the worker's (sending them
                # included) and the receiver's, which shares the cores here.
                after = meter.per_email(count)
                row[path]["worker_cpu_ms_with_webhooks"] = after["worker_cpu_ms_per_email"]
                row[path]["receiver_cpu_ms_per_webhook"] = (
                    (cpu_of_tree(receiver.process.pid) - receiver_cpu) * 1000 / count
                )
        if "DISPATCHER_BOUNCE_DOMAIN" in env:
            sample = ours.sink.messages()[-1]
            row["return_path_example"] = sample["mail_from"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=3000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    from tests.support.harness import Receiver

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        receiver = Receiver(root / "receiver", WEBHOOK_SECRET).start()
        try:
            configurations = {
                "plain": {},
                "feedback": {
                    "DISPATCHER_BOUNCE_DOMAIN": "bounces.example.com",
                    "DISPATCHER_SECRET_KEY": secrets.token_urlsafe(32),
                    "DISPATCHER_WEBHOOK_URL": receiver.url,
                    "DISPATCHER_WEBHOOK_SECRET": WEBHOOK_SECRET,
                },
                "ed25519": {"DISPATCHER_DKIM_KEYS_DIR": str(dkim_dir(root, "ed25519"))},
                "rsa-2048": {"DISPATCHER_DKIM_KEYS_DIR": str(dkim_dir(root, "rsa-2048"))},
            }
            rows = [
                measure(
                    root,
                    name,
                    env,
                    args.emails,
                    receiver if "DISPATCHER_WEBHOOK_URL" in env else None,
                )
                for name, env in configurations.items()
            ]
            rows.append(measure(root, "plain-again", {}, args.emails))
            webhooks = len(receiver.received())
        finally:
            receiver.stop()
    baseline = {
        path: (rows[0][path]["per_second"] + rows[-1][path]["per_second"]) / 2
        for path in ("publish_many", "publish")
    }
    for row in rows:
        for path in ("publish_many", "publish"):
            row[path]["ratio_to_plain"] = row[path]["per_second"] / baseline[path]
    result = {"cores": os.cpu_count(), "emails": args.emails, "webhooks_received": webhooks}
    result["runs"] = rows
    print(json.dumps(result, indent=2, default=lambda v: round(v, 3)))
    for row in rows:
        print(
            f"{row['configuration']:>12}: "
            + "; ".join(
                f"{path} {row[path]['per_second']:.0f}/s ({row[path]['ratio_to_plain']:.2f} x "
                f"plain), worker {row[path]['worker_cpu_ms_per_email']:.2f} ms/e-mail"
                + (
                    f", {row[path]['webhooks_behind']} webhooks behind at the end, "
                    f"{row[path]['per_second_with_webhooks']:.0f}/s until the last webhook "
                    f"({row[path]['per_second_with_webhooks'] / baseline[path]:.2f} x plain), "
                    f"worker {row[path]['worker_cpu_ms_with_webhooks']:.2f} ms/e-mail with them, "
                    f"receiver {row[path]['receiver_cpu_ms_per_webhook']:.2f} ms/webhook"
                    if "webhooks_behind" in row[path]
                    else ""
                )
                for path in ("publish_many", "publish")
            )
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=lambda v: round(v, 3)) + "\n")


if __name__ == "__main__":
    main()
