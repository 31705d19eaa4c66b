"""What the optional features cost: signed return paths with webhooks, and DKIM.

One run, the same machine, four worker configurations, each a
`celery -A worker worker` (two processes) on PostgreSQL with a database, a
sink and Redis keys of its own, all started at once and paused (SIGSTOP)
while another is measured:

  plain      no bounce domain, no webhooks, no DKIM: the baseline
  feedback   DISPATCHER_BOUNCE_DOMAIN (a signed return path per e-mail) and
             webhooks to a receiver in its own process (an outbox row written
             with every outcome, sent on their own lane)
  ed25519    DKIM with an Ed25519 key
  rsa-2048   DKIM with an RSA-2048 key

Each round measures every configuration in turn (the order rotates from
round to round), each sending N e-mails through publish_many() and N through
publish() one event at a time. Ratios are taken against the plain figure of
the same round; the medians over the rounds are reported, with every
round's ratio. With webhooks it also gives how many webhooks were still to
come when the last e-mail arrived (e-mail goes first) and the e-mails per
second counted until the last webhook arrived. A configuration's turn ends
once its webhooks have arrived. The targets (issues 11 and 12): feedback at
most 10 % less throughput, RSA-2048 at most 15 % less, Ed25519 under 1 ms of
signing per e-mail (bench.dkim_cost measures signing alone).

    python -m bench.features [--emails 3000] [--rounds 3] [--only feedback] [--json out.json]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import statistics
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


PATHS = ("publish_many", "publish")


def measure(ours: Any, name: str, count: int, tag: str, receiver: Any = None) -> dict[str, Any]:
    """Both paths on a running stack; with ``receiver``, each path starts once the
    webhooks of what came before have arrived, so that a path is not charged
    for the webhooks of the one before it."""
    from dispatcher.domain.kinds import EventType

    row: dict[str, Any] = {"configuration": name}
    ours.pause(False)
    try:
        meter = CpuMeter(ours.worker.process.pid, "postgres")
        for path in PATHS:
            if receiver is not None:
                webhooks_in(receiver, ours.sink.count(), "the earlier e-mails' webhooks")
                # Read after the wait, so the earlier webhooks are not counted here.
                receiver_cpu = cpu_of_tree(receiver.process.pid)
            base = ours.sink.count()
            meter.start()
            started = time.time()
            if path == "publish_many":
                ours.publish_bulk(count, f"{tag}-bulk")
            else:
                ours.publish_each(count, f"{tag}-each", EventType.PASSWORD_RESET)
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
    finally:
        ours.pause()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=3000, help="e-mails per path and turn")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated configurations to measure against plain (default: all)",
    )
    args = parser.parse_args()
    from tests.support.harness import Receiver

    rounds: list[dict[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stacks:
        root = Path(tmp)
        receiver = Receiver(root / "receiver", WEBHOOK_SECRET).start()
        stacks.callback(receiver.stop)
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
        if args.only:
            wanted = {"plain", *(name.strip() for name in args.only.split(","))}
            unknown = wanted - set(configurations)
            if unknown:
                parser.error(
                    f"--only: no configuration {', '.join(sorted(unknown))}; "
                    f"choose from {', '.join(configurations)}"
                )
            configurations = {k: v for k, v in configurations.items() if k in wanted}
        stack_of: dict[str, Any] = {}
        for name, env in configurations.items():
            prefix = f"{os.environ['DISPATCHER_BROKER_PREFIX']}{name}:"
            ours = stacks.enter_context(Ours(root / name, "postgres", 2, env=env, prefix=prefix))
            ours.publish_bulk(200, "warm")
            wait_count(ours.sink, 200, 120)
            if "DISPATCHER_WEBHOOK_URL" in env:
                webhooks_in(receiver, 200, "the warm-up webhooks")
            ours.pause()
            stack_of[name] = ours
        names = list(configurations)
        for number in range(args.rounds):
            order = names[number % len(names) :] + names[: number % len(names)]
            row = {
                name: measure(
                    stack_of[name],
                    name,
                    args.emails,
                    f"{name}-{number}",
                    receiver if "DISPATCHER_WEBHOOK_URL" in configurations[name] else None,
                )
                for name in order
            }
            for name in names:
                for path in PATHS:
                    row[name][path]["ratio_to_plain"] = (
                        row[name][path]["per_second"] / row["plain"][path]["per_second"]
                    )
                    if "per_second_with_webhooks" in row[name][path]:
                        row[name][path]["ratio_to_plain_with_webhooks"] = (
                            row[name][path]["per_second_with_webhooks"]
                            / row["plain"][path]["per_second"]
                        )
            rounds.append(row)
            print(
                f"round {number + 1}: "
                + "; ".join(
                    f"{name} {row[name]['publish_many']['ratio_to_plain']:.2f}"
                    f"/{row[name]['publish']['ratio_to_plain']:.2f}"
                    for name in names[1:]
                ),
                flush=True,
            )
        sample = stack_of["feedback"].sink.messages()[-1]
        return_path = sample["mail_from"]
        webhooks = len(receiver.received())
    medians: dict[str, dict[str, dict[str, float]]] = {
        name: {
            path: {
                key: statistics.median(float(row[name][path][key]) for row in rounds)
                for key in rounds[0][name][path]
            }
            for path in PATHS
        }
        for name in names
    }
    result = {
        "cores": os.cpu_count(),
        "emails_per_path_and_turn": args.emails,
        "webhooks_received": webhooks,
        "return_path_example": return_path,
        "medians": medians,
        "rounds": rounds,
    }
    print(json.dumps(result, indent=2, default=lambda v: round(v, 3)))
    print(f"\nmedians of {len(rounds)} rounds (each round's ratio to plain in brackets):")
    for name in names:
        parts = []
        for path in PATHS:
            m = medians[name][path]
            each = ", ".join(f"{row[name][path]['ratio_to_plain']:.2f}" for row in rounds)
            text = (
                f"{path} {m['per_second']:.0f}/s ({m['ratio_to_plain']:.2f} x plain: {each}), "
                f"worker {m['worker_cpu_ms_per_email']:.2f} ms/e-mail"
            )
            if "webhooks_behind" in m:
                until = ", ".join(
                    f"{row[name][path]['ratio_to_plain_with_webhooks']:.2f}" for row in rounds
                )
                text += (
                    f", {m['webhooks_behind']:.0f} webhooks behind at the end, "
                    f"{m['per_second_with_webhooks']:.0f}/s until the last webhook "
                    f"({m['ratio_to_plain_with_webhooks']:.2f} x plain: {until}), "
                    f"worker {m['worker_cpu_ms_with_webhooks']:.2f} ms/e-mail with them, "
                    f"receiver {m['receiver_cpu_ms_per_webhook']:.2f} ms/webhook"
                )
            parts.append(text)
        print(f"{name:>9}: " + "; ".join(parts))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=lambda v: round(v, 3)) + "\n")


if __name__ == "__main__":
    main()
