"""Throughput, latency and memory: ours against the naive baseline and the SMTP ceiling.

One run, on this machine, with aiosmtpd sinks in their own processes and the
same messages (the built-in validation e-mail, rendered for N recipients):

  a. raw    smtplib over one reused connection: the ceiling
  b. naive  one Celery task per e-mail, Jinja2, a new SMTP connection each
  c. ours   events published, delivered and recorded end to end

    python -m bench.throughput [--emails 3000] [--rounds 3] [--database postgres|sqlite]
                               [--json out.json]

Throughput is measured in rounds, each round measuring every variant once in
turn (raw; naive and ours per password reset; naive and ours in batches), so
that a slow minute of the machine hits all of them alike. The naive and our
workers run for the whole benchmark and are paused (SIGSTOP) while the other
is measured. Each ratio is taken within a round, between measurements a
minute apart at most; the figures reported are the medians over the rounds,
with every round's figure alongside.

Prints e-mails per second, the ratios ours/naive and ours/raw, CPU per
e-mail, publish latency, event-to-acceptance latency (at an everyday 50
events a second and within the bursts), the p99 of password-reset latency
while a 10,000-e-mail batch drains, and worker memory after 5,000 and
20,000 e-mails.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

os.environ.setdefault("DISPATCHER_BROKER_PREFIX", f"bench-{uuid.uuid4().hex[:8]}:")
ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def process_tree(pid: int) -> list[int]:
    """A process and its children."""
    children = subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    return [pid, *(int(child) for child in children)]


def rss_of_tree(pid: int) -> int:
    """Resident memory of a process and its children, in bytes."""
    total = 0
    for one in process_tree(pid):
        try:
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except FileNotFoundError:
            continue
    return total


def cpu_of_tree(pid: int) -> float:
    """CPU seconds (user and system) of a process and its children so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for one in process_tree(pid):
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def wait_count(sink: Any, count: int, timeout: float) -> float:
    """Wait until the sink holds ``count`` messages; return when the last arrived."""
    from tests.support.harness import wait_for

    # Counting lines, not parsing the index: parsing tens of thousands of
    # entries five times a second would take CPU from what is measured.
    wait_for(lambda: sink.count() >= count, timeout, f"{count} messages", interval=0.2)
    return max(entry["received_at"] for entry in sink.messages())


def messages_for(count: int) -> list[tuple[str, Any]]:
    """The same messages for every variant: our built-in validation e-mail."""
    from config_store.document import effective_settings, validate_document
    from dispatcher.domain.addresses import Mailbox
    from dispatcher.domain.events import parse_event
    from dispatcher.domain.kinds import KIND_BY_NAME, EventType
    from dispatcher.domain.samples import context_for, sample_event
    from dispatcher.mail.render import build_message, render_email
    from tests.support.documents import addresses_only

    settings = effective_settings(validate_document(addresses_only()), "BENCH", "Bench", 1)
    kind = KIND_BY_NAME["validation.new"]
    result = []
    for number in range(count):
        raw = sample_event(EventType.CUSTOMER_VALIDATED)
        raw["contact"] = {"email": f"raw{number}@example.com", "name": "Kim Example"}
        event = parse_event(raw)
        context = context_for(event, kind, "BENCH", "Bench", settings.access_requests_to)
        email = render_email(settings.text_for(kind, None), context)
        message = build_message(
            email,
            settings.sender,
            Mailbox(raw["contact"]["email"]),
            f"<{number}@bench>",
            __import__("datetime").datetime.now(__import__("datetime").UTC),
        )
        result.append((raw["contact"]["email"], message))
    return result


def run_raw(directory: Path, prepared: list[tuple[str, Any]], label: str) -> float:
    """smtplib over one reused connection to a fresh sink: e-mails per second."""
    from tests.support.harness import Sink

    sink = Sink(directory / f"raw-sink-{label}").start()
    try:
        started = time.time()
        with smtplib.SMTP("127.0.0.1", sink.port) as smtp:
            for address, message in prepared:
                smtp.send_message(message, "portal@example.com", [address])
        last = wait_count(sink, len(prepared), 120)
        return len(prepared) / (last - started)
    finally:
        sink.stop()


def pause(process: subprocess.Popen[bytes] | None, paused: bool) -> None:
    """Stop (SIGSTOP) or continue a worker and its pool processes, so that it costs nothing."""
    if process is not None:
        os.killpg(process.pid, signal.SIGSTOP if paused else signal.SIGCONT)


NAIVE_CONTEXTS: dict[str, dict[str, Any]] = {
    "validation.new": {
        "recipient": {"name": "Kim Example"},
        "customer": {"name": "Schmidt & Weber GmbH"},
        "portal_url": "https://portal.example.com/",
        "group": {"name": "Bench"},
    },
    "password.reset": {
        "recipient": {"name": "Kim Example"},
        "username": "kim.example",
        "reset_url": "https://portal.example.com/reset?token=3f9a1c",
        "group": {"name": "Bench"},
    },
}


class Naive:
    """The naive baseline's worker and sink, kept for the whole run and paused between runs."""

    def __init__(self, directory: Path, workers: int) -> None:
        self.directory = directory
        self.workers = workers

    def __enter__(self) -> Naive:
        from tests.support.harness import Sink, Worker, broker_env, wait_for
        from tests.support.stack import purge_broker

        self.sink = Sink(self.directory / "naive-sink").start()
        # One prefix per bench process: the naive app reads it when first imported.
        self.prefix = os.environ.setdefault("NAIVE_PREFIX", f"naive-{uuid.uuid4().hex[:8]}:")
        purge_broker(self.prefix)
        env = {
            "NAIVE_BROKER_URL": broker_env(self.prefix)["DISPATCHER_BROKER_URL"],
            "NAIVE_PREFIX": self.prefix,
            "NAIVE_SMTP_HOST": "127.0.0.1",
            "NAIVE_SMTP_PORT": str(self.sink.port),
        }
        os.environ.update(env)
        from bench.naive_app import app as naive_app

        self.worker = Worker(env, self.directory / "naive-worker.log")
        celery = Path(sys.executable).with_name("celery")
        with (self.directory / "naive-worker.log").open("ab") as log:
            self.worker.process = subprocess.Popen(
                [
                    str(celery),
                    "-A",
                    "bench.naive_app",
                    "worker",
                    f"--concurrency={self.workers}",
                    "--loglevel=WARNING",
                    "--without-mingle",
                    "--without-gossip",
                ],
                cwd=ROOT,
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(lambda: bool(naive_app.control.inspect(timeout=0.5).ping()), 60, "naive worker")
        self.run(100, "validation.new")  # Warm up; run() pauses the worker afterwards.
        return self

    def __exit__(self, *exc: object) -> None:
        from tests.support.stack import purge_broker

        pause(self.worker.process, False)
        self.worker.stop()
        self.sink.stop()
        purge_broker(self.prefix)

    def run(self, count: int, kind: str) -> dict[str, Any]:
        """``count`` e-mails of ``kind``, a task each; the worker runs only meanwhile."""
        from bench.naive_app import send_email
        from dispatcher.domain.texts import builtin_texts

        subject, body = builtin_texts()["de"][kind]
        context = NAIVE_CONTEXTS[kind]
        pause(self.worker.process, False)
        try:
            base = self.sink.count()
            cpu_before = cpu_of_tree(self.worker.process.pid)  # type: ignore[union-attr]
            started = time.time()
            for number in range(count):
                send_email.delay(
                    f"naive{number}@example.com", "portal@example.com", subject, body, context
                )
            last = wait_count(self.sink, base + count, 300)
            cpu = cpu_of_tree(self.worker.process.pid) - cpu_before  # type: ignore[union-attr]
        finally:
            pause(self.worker.process, True)
        return {
            "kind": kind,
            "emails": count,
            "per_second": count / (last - started),
            "worker_cpu_ms_per_email": cpu * 1000 / count,
        }


class Ours:
    """The product, end to end: publish() to a worker, SQL record, SMTP."""

    def __init__(
        self,
        directory: Path,
        database: str,
        workers: int,
        env: dict[str, str] | None = None,
        prefix: str | None = None,
    ) -> None:
        """``prefix``: a Redis key prefix of its own, for several stacks side by side."""
        self.directory = directory
        self.database = database
        self.workers = workers
        self.extra_env = env or {}
        self.prefix = prefix or os.environ["DISPATCHER_BROKER_PREFIX"]

    def __enter__(self) -> Ours:
        from config_store.database import make_engine
        from config_store.repository import SettingsRepository
        from tests.conftest import fresh_database
        from tests.support.documents import addresses_only
        from tests.support.harness import Sink, Worker, broker_env
        from tests.support.stack import purge_broker

        self.url, self.cleanup = fresh_database(self.database, self.directory)
        self.engine = make_engine(self.url)
        repository = SettingsRepository(self.engine)
        repository.add_group("BENCH", "Bench")
        repository.save_settings("BENCH", addresses_only(), "bench")
        self.sink = Sink(self.directory / "ours-sink").start()
        purge_broker(self.prefix)
        self.publish_here()
        env = {
            **broker_env(self.prefix),
            "DISPATCHER_DATABASE_URL": self.url,
            "DISPATCHER_SMTP_HOST": "127.0.0.1",
            "DISPATCHER_SMTP_PORT": str(self.sink.port),
            "DISPATCHER_WORKER_METRICS_PORT": "0",
            **self.extra_env,
        }
        # The last --concurrency wins over the harness's default of two.
        self.worker = Worker(
            env, self.directory / "ours-worker.log", args=(f"--concurrency={self.workers}",)
        )
        self.worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        from tests.support.stack import purge_broker

        pause(self.worker.process, False)  # A stopped process would not hear SIGTERM.
        self.worker.stop()
        self.sink.stop()
        self.engine.dispose()
        self.cleanup()
        purge_broker(self.prefix)

    def events(self, count: int, tag: str, event_type: Any = None) -> list[dict[str, Any]]:
        from dispatcher.domain.kinds import EventType
        from dispatcher.domain.samples import sample_event

        template = sample_event(event_type or EventType.CUSTOMER_VALIDATED)
        result = []
        for number in range(count):
            event = dict(template)
            event["event_id"] = f"{tag}-{number}-{uuid.uuid4().hex[:6]}"
            event["customer_group"] = "BENCH"
            event["contact"] = {"email": f"{tag}{number}@example.com", "name": "Kim Example"}
            result.append(event)
        return result

    def publish_each(
        self, count: int, tag: str, event_type: Any = None
    ) -> tuple[dict[str, float], list[float]]:
        """publish() per event, as a backend reacting to single actions does."""
        from dispatcher import publish

        sent: dict[str, float] = {}
        latencies: list[float] = []
        for event in self.events(count, tag, event_type):
            sent[event["contact"]["email"]] = time.time()
            before = time.perf_counter()
            publish(event)
            latencies.append((time.perf_counter() - before) * 1000)
        return sent, latencies

    def publish_bulk(self, count: int, tag: str) -> dict[str, float]:
        """publish_many() in chunks of 500, as a backend sending a launch batch does."""
        from dispatcher.broker.publisher import publish_many

        sent: dict[str, float] = {}
        events = self.events(count, tag)
        for start in range(0, len(events), 500):
            chunk = events[start : start + 500]
            publish_many(chunk)
            now = time.time()
            sent.update({event["contact"]["email"]: now for event in chunk})
        return sent

    def pause(self, paused: bool = True) -> None:
        """Stop the worker while another variant is measured (``False``: continue it)."""
        pause(self.worker.process, paused)
        if not paused:
            self.publish_here()

    def publish_here(self) -> None:
        """Point this process's publish() at this stack's broker keys."""
        from dispatcher.broker.app import app
        from dispatcher.broker.publisher import use_broker
        from tests.support.harness import broker_env

        if app.conf.broker_transport_options.get("global_keyprefix") != self.prefix:
            use_broker(broker_env(self.prefix)["DISPATCHER_BROKER_URL"], self.prefix)

    def acceptance(self, sent: dict[str, float]) -> list[float]:
        arrived = {rcpt: e["received_at"] for e in self.sink.messages() for rcpt in e["rcpt_tos"]}
        return [(arrived[a] - t) * 1000 for a, t in sent.items() if a in arrived]


def postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL process on this machine so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm, _, rest = (entry / "stat").read_text().partition(")")
        except OSError:
            continue
        if comm.endswith("(postgres"):
            fields = rest.split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def redis_cpu() -> float:
    """CPU seconds of the Redis server so far (its own INFO)."""
    import redis

    from dispatcher.settings import get_settings

    info = redis.Redis.from_url(get_settings().broker_url).info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


class CpuMeter:
    """CPU spent by the worker, PostgreSQL and Redis between start() and per_email()."""

    def __init__(self, worker_pid: int, database: str) -> None:
        self.worker_pid = worker_pid
        self.database = database
        self.before: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def _now(self) -> tuple[float, float, float]:
        pg = postgres_cpu() if self.database == "postgres" else 0.0
        return cpu_of_tree(self.worker_pid), pg, redis_cpu()

    def start(self) -> None:
        self.before = self._now()

    def per_email(self, count: int) -> dict[str, float]:
        worker, pg, redis_ = (
            (after - before) * 1000 / count
            for after, before in zip(self._now(), self.before, strict=True)
        )
        return {
            "worker_cpu_ms_per_email": worker,
            "postgres_cpu_ms_per_email": pg,
            "redis_cpu_ms_per_email": redis_,
            "total_cpu_ms_per_email": worker + pg + redis_,
        }


def spread(values: list[float]) -> dict[str, float]:
    return {"p50": statistics.median(values), "p99": percentile(values, 99)}


def ours_before_rounds(ours: Ours) -> dict[str, Any]:
    """Warm up, then publish() latency, latency at 50 events/s, memory after 5,000 e-mails."""
    from dispatcher import publish
    from dispatcher.broker.publisher import publish_many
    from dispatcher.domain.kinds import EventType

    reset = EventType.PASSWORD_RESET
    # Warm up: connections, compiled templates, settings snapshot.
    ours.publish_each(50, "warm")
    wait_count(ours.sink, 50, 60)
    # What publish() costs the backend: measured with the workers paused, as
    # when they run on other machines, then released.
    ours.pause()
    try:
        _, publish_ms = ours.publish_each(2000, "paused")
    finally:
        ours.pause(False)
    wait_count(ours.sink, 2050, 600)
    # Event-to-acceptance when the workers keep up, 50 password resets a
    # second: one publish() each, and publish_many() of five every 100 ms.
    base = ours.sink.count()
    steady_single: dict[str, float] = {}
    for event in ours.events(300, "steady", reset):
        steady_single[event["contact"]["email"]] = time.time()
        publish(event)
        time.sleep(0.02)
    steady_many: dict[str, float] = {}
    events = ours.events(300, "steadymany", reset)
    for start in range(0, len(events), 5):
        chunk = events[start : start + 5]
        now = time.time()
        steady_many.update({event["contact"]["email"]: now for event in chunk})
        publish_many(chunk)
        time.sleep(0.1)
    wait_count(ours.sink, base + 600, 120)
    # Memory after 5,000 e-mails, the first of two samples.
    ours.publish_bulk(5000 - ours.sink.count(), "fill")
    wait_count(ours.sink, 5000, 600)
    return {
        "publish_ms": spread(publish_ms),
        "reset_to_acceptance_ms_at_50_per_second": {
            "publish": spread(ours.acceptance(steady_single)),
            "publish_many": spread(ours.acceptance(steady_many)),
        },
        "rss_5k": rss_of_tree(ours.worker.process.pid),  # type: ignore[union-attr]
        "count_5k": ours.sink.count(),
    }


def ours_path(ours: Ours, count: int, path: str, tag: str) -> dict[str, Any]:
    """One measurement of a path: "single" (publish() per password reset while
    the workers run; they take what waits as batches) or "bulk" (publish_many())."""
    from dispatcher.domain.kinds import EventType

    ours.pause(False)
    try:
        meter = CpuMeter(ours.worker.process.pid, ours.database)  # type: ignore[union-attr]
        base = ours.sink.count()
        meter.start()
        started = time.time()
        if path == "single":
            sent, busy_publish_ms = ours.publish_each(count, tag, EventType.PASSWORD_RESET)
        else:
            sent, busy_publish_ms = ours.publish_bulk(count, tag), []
        last = wait_count(ours.sink, base + count, 600)
        cpu = meter.per_email(count)
    finally:
        ours.pause()
    result = {
        "per_second": count / (last - started),
        **cpu,
        "event_to_acceptance_ms": spread(ours.acceptance(sent)),
    }
    if busy_publish_ms:
        result["publish_ms_while_workers_share_the_cores"] = spread(busy_publish_ms)
    return result


def ours_after_rounds(ours: Ours) -> dict[str, Any]:
    """Password resets while 10,000 e-mails drain, both ways; memory at 20,000 e-mails or more."""
    from dispatcher import publish
    from dispatcher.domain.kinds import EventType

    ours.pause(False)
    during: dict[str, list[float]] = {}
    for path in ("publish_many", "publish"):
        before_batch = ours.sink.count()
        if path == "publish_many":
            ours.publish_bulk(10_000, "batch")
        else:
            ours.publish_each(10_000, "each")
        resets: dict[str, float] = {}
        for event in ours.events(300, f"reset{path}", EventType.PASSWORD_RESET):
            if ours.sink.count() >= before_batch + 9_000:
                break
            resets[event["contact"]["email"]] = time.time()
            publish(event)
            time.sleep(0.1)  # One reset every 100 ms while the batch drains.
        wait_count(ours.sink, before_batch + 10_000 + len(resets), 900)
        during[path] = ours.acceptance(resets)
    total = ours.sink.count()
    if total < 20_000:
        ours.publish_bulk(20_000 - total, "rss")
        wait_count(ours.sink, 20_000, 900)
    return {
        "password_reset_during_batch_ms": {
            path: {"count": len(values), **spread(values), "max": max(values)}
            for path, values in during.items()
        },
        "rss_end": rss_of_tree(ours.worker.process.pid),  # type: ignore[union-attr]
        "count_end": ours.sink.count(),
    }


def median_of(rounds: list[dict[str, Any]], *keys: str) -> float:
    values = []
    for row in rounds:
        value: Any = row
        for key in keys:
            value = value[key]
        values.append(float(value))
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=3000, help="e-mails per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    count = args.emails
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        prepared = messages_for(count)
        with (
            Naive(directory, args.workers) as naive,
            Ours(directory / "ours", args.database, args.workers) as ours,
        ):
            before = ours_before_rounds(ours)
            ours.pause()
            for number in range(args.rounds):
                row: dict[str, Any] = {
                    "raw": {"per_second": run_raw(directory, prepared, str(number))}
                }
                row["naive_password_reset"] = naive.run(count, "password.reset")
                row["single"] = ours_path(ours, count, "single", f"single{number}")
                row["naive"] = naive.run(count, "validation.new")
                row["bulk"] = ours_path(ours, count, "bulk", f"bulk{number}")
                row["ratios"] = {
                    "per_event_ours_over_naive": row["single"]["per_second"]
                    / row["naive_password_reset"]["per_second"],
                    "batch_ours_over_naive": row["bulk"]["per_second"] / row["naive"]["per_second"],
                    "batch_ours_over_raw": row["bulk"]["per_second"] / row["raw"]["per_second"],
                }
                rounds.append(row)
                print(
                    f"round {number + 1}: "
                    + json.dumps(row["ratios"], default=lambda v: round(v, 3)),
                    flush=True,
                )
            after = ours_after_rounds(ours)
    ratios = {key: median_of(rounds, "ratios", key) for key in rounds[0]["ratios"]}
    medians = {
        variant: {
            key: median_of(rounds, variant, key)
            for key, value in rounds[0][variant].items()
            if isinstance(value, int | float)
        }
        for variant in ("raw", "naive_password_reset", "single", "naive", "bulk")
    }
    single, bulk = medians["single"], medians["bulk"]
    steady = before["reset_to_acceptance_ms_at_50_per_second"]
    during = after["password_reset_during_batch_ms"]
    growth = (after["rss_end"] - before["rss_5k"]) / before["rss_5k"] * 100
    result = {
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
        "worker_processes": args.workers,
        "emails_per_measurement": count,
        "medians": medians,
        "ratios": ratios,
        "ratios_per_round": [row["ratios"] for row in rounds],
        "rounds": rounds,
        "ours": {
            "database": args.database,
            "publish_ms": before["publish_ms"],
            "reset_to_acceptance_ms_at_50_per_second": steady,
            "password_reset_during_batch_ms": during,
            "worker_rss_mb": {
                "after_5k": before["rss_5k"] / 2**20,
                "at_end": after["rss_end"] / 2**20,
                "emails_at_samples": [before["count_5k"], after["count_end"]],
                "growth_pct": growth,
            },
        },
        "targets": {
            "per event: ours/naive >= 1.5": ratios["per_event_ours_over_naive"] >= 1.5,
            "batches: ours/raw >= 0.9": ratios["batch_ours_over_raw"] >= 0.9,
            "batches: ours/naive >= 2": ratios["batch_ours_over_naive"] >= 2,
            "per event: worker CPU <= 2.5 ms per e-mail": single["worker_cpu_ms_per_email"] <= 2.5,
            "reset p99 <= 100 ms at 50 events/s (both paths)": all(
                v["p99"] <= 100 for v in steady.values()
            ),
            "reset p99 <= 500 ms while 10,000 drain (both paths)": all(
                v["p99"] <= 500 for v in during.values()
            ),
            "publish p99 <= 2 ms": before["publish_ms"]["p99"] <= 2,
            "rss growth <= 10 %": growth <= 10,
        },
    }
    text = json.dumps(result, indent=2, default=lambda v: round(v, 3))
    print(text)

    def each(key: str) -> str:
        return ", ".join(f"{row['ratios'][key]:.2f}" for row in rounds)

    print(f"\nmedians of {len(rounds)} rounds of {count} e-mails per variant (each round's ratio):")
    print(
        f"per event (publish() per password reset): ours {single['per_second']:.0f}/s, "
        f"naive {medians['naive_password_reset']['per_second']:.0f}/s, "
        f"ours/naive {ratios['per_event_ours_over_naive']:.2f} "
        f"({each('per_event_ours_over_naive')})"
    )
    print(
        f"batches (publish_many()): ours {bulk['per_second']:.0f}/s, naive "
        f"{medians['naive']['per_second']:.0f}/s, raw {medians['raw']['per_second']:.0f}/s, "
        f"ours/naive {ratios['batch_ours_over_naive']:.2f} ({each('batch_ours_over_naive')}), "
        f"ours/raw {ratios['batch_ours_over_raw']:.2f} ({each('batch_ours_over_raw')})"
    )
    for name, path, base in (
        ("per event", single, medians["naive_password_reset"]),
        ("batches", bulk, medians["naive"]),
    ):
        print(
            f"CPU per e-mail, {name}: worker {path['worker_cpu_ms_per_email']:.2f} ms "
            f"+ PostgreSQL {path['postgres_cpu_ms_per_email']:.2f} ms "
            f"+ Redis {path['redis_cpu_ms_per_email']:.2f} ms "
            f"= {path['total_cpu_ms_per_email']:.2f} ms "
            f"(naive worker {base['worker_cpu_ms_per_email']:.2f} ms)"
        )
    print(
        "reset to relay p50/p99 at 50/s: "
        + ", ".join(f"{k} {v['p50']:.0f}/{v['p99']:.0f} ms" for k, v in steady.items())
        + "; while 10,000 drain: "
        + ", ".join(f"{k} {v['p50']:.0f}/{v['p99']:.0f} ms" for k, v in during.items())
    )
    rss = result["ours"]["worker_rss_mb"]
    print(
        f"publish p50/p99 {before['publish_ms']['p50']:.2f}/{before['publish_ms']['p99']:.2f} ms  "
        f"worker RSS {rss['after_5k']:.0f} MB at {before['count_5k']} e-mails -> "
        f"{rss['at_end']:.0f} MB at {after['count_end']}"
    )
    for target, met in result["targets"].items():
        print(f"  {'met ' if met else 'MISS'}  {target}")
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
