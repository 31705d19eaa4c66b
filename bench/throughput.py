"""Throughput, latency and memory: ours against the naive baseline and the SMTP ceiling.

One run, on this machine, with an aiosmtpd sink in its own process and the same
messages (the built-in validation e-mail, rendered for N recipients):

  a. raw    smtplib over one reused connection: the ceiling
  b. naive  one Celery task per e-mail, Jinja2, a new SMTP connection each
  c. ours   events published, delivered and recorded end to end

    python -m bench.throughput [--emails 5000] [--database postgres|sqlite] [--json out.json]

Prints e-mails per second, the ratios ours/naive and ours/raw, publish
latency, event-to-acceptance latency (at an everyday 50 events a second and
within the bursts), the p99 of password-reset latency while a 10,000-e-mail
batch drains, and worker memory after 5,000 and 20,000 e-mails. The raw
ceiling is the best of three runs.
"""

from __future__ import annotations

import argparse
import json
import os
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


def run_raw(directory: Path, count: int) -> dict[str, Any]:
    from tests.support.harness import Sink

    prepared = messages_for(count)
    rates = []
    # The ceiling is the best of three runs: a short run is at the mercy of
    # whatever else the machine does, and a low ceiling would flatter us.
    for attempt in range(3):
        sink = Sink(directory / f"raw-sink-{attempt}").start()
        try:
            started = time.time()
            with smtplib.SMTP("127.0.0.1", sink.port) as smtp:
                for address, message in prepared:
                    smtp.send_message(message, "portal@example.com", [address])
            last = wait_count(sink, count, 120)
            rates.append(count / (last - started))
        finally:
            sink.stop()
    best = max(rates)
    return {"emails": count, "seconds": count / best, "per_second": best, "runs": rates}


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


def run_naive(
    directory: Path, count: int, workers: int, kind: str = "validation.new"
) -> dict[str, Any]:
    from dispatcher.domain.texts import builtin_texts
    from tests.support.harness import Sink, Worker, broker_env
    from tests.support.stack import purge_broker

    # A sink of its own per run: it counts the files in its directory.
    sink = Sink(directory / f"naive-sink-{kind}").start()
    # One prefix per bench process: the naive app reads it when first imported.
    prefix = os.environ.setdefault("NAIVE_PREFIX", f"naive-{uuid.uuid4().hex[:8]}:")
    env = {
        "NAIVE_BROKER_URL": broker_env(prefix)["DISPATCHER_BROKER_URL"],
        "NAIVE_PREFIX": prefix,
        "NAIVE_SMTP_HOST": "127.0.0.1",
        "NAIVE_SMTP_PORT": str(sink.port),
    }
    os.environ.update(env)
    from bench.naive_app import app as naive_app
    from bench.naive_app import send_email

    worker = Worker(env, directory / "naive-worker.log")
    worker.args = ()
    celery = Path(sys.executable).with_name("celery")
    with (directory / "naive-worker.log").open("ab") as log:
        worker.process = subprocess.Popen(
            [
                str(celery),
                "-A",
                "bench.naive_app",
                "worker",
                f"--concurrency={workers}",
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
    try:
        from tests.support.harness import wait_for

        wait_for(lambda: bool(naive_app.control.inspect(timeout=0.5).ping()), 60, "naive worker")
        subject, body = builtin_texts()["de"][kind]
        context = NAIVE_CONTEXTS[kind]
        cpu_before = cpu_of_tree(worker.process.pid)
        started = time.time()
        for number in range(count):
            send_email.delay(
                f"naive{number}@example.com", "portal@example.com", subject, body, context
            )
        last = wait_count(sink, count, 300)
        cpu_ms = (cpu_of_tree(worker.process.pid) - cpu_before) * 1000 / count
        return {
            "kind": kind,
            "emails": count,
            "seconds": last - started,
            "per_second": count / (last - started),
            "worker_cpu_ms_per_email": cpu_ms,
        }
    finally:
        worker.stop()
        sink.stop()
        purge_broker(prefix)


class Ours:
    """The product, end to end: publish() to a worker, SQL record, SMTP."""

    def __init__(
        self, directory: Path, database: str, workers: int, env: dict[str, str] | None = None
    ) -> None:
        self.directory = directory
        self.database = database
        self.workers = workers
        self.extra_env = env or {}

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
        prefix = os.environ["DISPATCHER_BROKER_PREFIX"]
        purge_broker(prefix)
        env = {
            **broker_env(prefix),
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

        self.worker.stop()
        self.sink.stop()
        self.engine.dispose()
        self.cleanup()
        purge_broker(os.environ["DISPATCHER_BROKER_PREFIX"])

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


def run_ours(directory: Path, database: str, count: int, workers: int) -> dict[str, Any]:
    from dispatcher import publish
    from dispatcher.broker.publisher import publish_many
    from dispatcher.domain.kinds import EventType

    reset = EventType.PASSWORD_RESET
    with Ours(directory, database, workers) as ours:
        # Warm up: connections, compiled templates, settings snapshot.
        ours.publish_each(50, "warm")
        wait_count(ours.sink, 50, 60)
        # (0) What publish() costs the backend: measured with the workers
        # paused, as when they run on other machines, then released.
        import signal

        worker_group = ours.worker.process.pid  # type: ignore[union-attr]
        os.killpg(worker_group, signal.SIGSTOP)
        try:
            _, publish_ms = ours.publish_each(2000, "paused")
        finally:
            os.killpg(worker_group, signal.SIGCONT)
        wait_count(ours.sink, 2050, 600)
        # (0b) Event-to-acceptance when the workers keep up, 50 password
        # resets a second: one publish() each, and publish_many() of five
        # every 100 ms.
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
        worker_pid = ours.worker.process.pid  # type: ignore[union-attr]
        rss_5k = rss_of_tree(worker_pid)
        count_5k = ours.sink.count()
        meter = CpuMeter(worker_pid, database)
        # (1) The everyday path: publish() per password reset while the
        # workers run (they take what waits as batches).
        base = ours.sink.count()
        meter.start()
        started = time.time()
        single_sent, busy_publish_ms = ours.publish_each(count, "single", reset)
        last = wait_count(ours.sink, base + count, 600)
        single_seconds = last - started
        single_cpu = meter.per_email(count)
        single_acceptance = ours.acceptance(single_sent)
        # (2) The same number through publish_many(): BATCH_SIZE events per task.
        base = ours.sink.count()
        meter.start()
        started = time.time()
        bulk_sent = ours.publish_bulk(count, "bulk")
        last = wait_count(ours.sink, base + count, 600)
        bulk_seconds = last - started
        bulk_cpu = meter.per_email(count)
        bulk_acceptance = ours.acceptance(bulk_sent)
        # (3) Password resets while 10,000 e-mails drain, the batch published
        # with publish_many() and then with publish() one by one.
        during: dict[str, list[float]] = {}
        for path in ("publish_many", "publish"):
            before_batch = ours.sink.count()
            if path == "publish_many":
                ours.publish_bulk(10_000, "batch")
            else:
                ours.publish_each(10_000, "each")
            resets: dict[str, float] = {}
            for event in ours.events(300, f"reset{path}", reset):
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
        rss_20k = rss_of_tree(ours.worker.process.pid)  # type: ignore[union-attr]
        count_20k = ours.sink.count()
        steady_single_ms = ours.acceptance(steady_single)
        steady_many_ms = ours.acceptance(steady_many)

    return {
        "emails": count,
        "database": database,
        "single": {
            "event_type": "password.reset",
            "seconds": single_seconds,
            "per_second": count / single_seconds,
            **single_cpu,
            "event_to_acceptance_ms": spread(single_acceptance),
        },
        "bulk": {
            "event_type": "customer.validated",
            "seconds": bulk_seconds,
            "per_second": count / bulk_seconds,
            **bulk_cpu,
            "event_to_acceptance_ms": spread(bulk_acceptance),
        },
        "per_second": count / bulk_seconds,
        "reset_to_acceptance_ms_at_50_per_second": {
            "publish": spread(steady_single_ms),
            "publish_many": spread(steady_many_ms),
        },
        "publish_ms": spread(publish_ms),
        "publish_ms_while_workers_share_the_cores": spread(busy_publish_ms),
        "password_reset_during_batch_ms": {
            path: {"count": len(values), **spread(values), "max": max(values)}
            for path, values in during.items()
        },
        "worker_rss_mb": {
            "after_5k": rss_5k / 2**20,
            "after_20k": rss_20k / 2**20,
            "emails_at_samples": [count_5k, count_20k],
            "growth_pct": (rss_20k - rss_5k) / rss_5k * 100,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=5000)
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        raw = run_raw(directory, args.emails)
        naive = run_naive(directory, args.emails, args.workers, "validation.new")
        naive_reset = run_naive(directory, args.emails, args.workers, "password.reset")
        ours = run_ours(directory, args.database, args.emails, args.workers)
    single, bulk = ours["single"], ours["bulk"]
    during = ours["password_reset_during_batch_ms"]
    steady = ours["reset_to_acceptance_ms_at_50_per_second"]
    ratios = {
        "per_event_ours_over_naive": single["per_second"] / naive_reset["per_second"],
        "batch_ours_over_naive": bulk["per_second"] / naive["per_second"],
        "batch_ours_over_raw": bulk["per_second"] / raw["per_second"],
    }
    result = {
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
        "worker_processes": args.workers,
        "raw": raw,
        "naive": naive,
        "naive_password_reset": naive_reset,
        "ours": ours,
        "ratios": ratios,
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
            "publish p99 <= 2 ms": ours["publish_ms"]["p99"] <= 2,
            "rss growth <= 10 %": ours["worker_rss_mb"]["growth_pct"] <= 10,
        },
    }
    text = json.dumps(result, indent=2, default=lambda v: round(v, 3))
    print(text)
    print(
        f"\nper event (publish() per password reset): ours {single['per_second']:.0f}/s, "
        f"naive {naive_reset['per_second']:.0f}/s, "
        f"ours/naive {ratios['per_event_ours_over_naive']:.2f}"
    )
    print(
        f"batches (publish_many()): ours {bulk['per_second']:.0f}/s, naive "
        f"{naive['per_second']:.0f}/s, raw {raw['per_second']:.0f}/s, ours/naive "
        f"{ratios['batch_ours_over_naive']:.2f}, ours/raw {ratios['batch_ours_over_raw']:.2f}"
    )
    for name, path, base in (
        ("per event", single, naive_reset),
        ("batches", bulk, naive),
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
    print(
        f"publish p50/p99 {ours['publish_ms']['p50']:.2f}/{ours['publish_ms']['p99']:.2f} ms  "
        f"worker RSS {ours['worker_rss_mb']['after_5k']:.0f} -> "
        f"{ours['worker_rss_mb']['after_20k']:.0f} MB"
    )
    for target, met in result["targets"].items():
        print(f"  {'met ' if met else 'MISS'}  {target}")
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
