"""How throughput grows with worker processes on this machine, on both paths.

For each process count, one `celery -A worker worker --concurrency=N` serving
every lane, the aiosmtpd sink in its own process and the real configuration:
a warm-up, then N e-mails, delivered and recorded, through publish_many()
(validation e-mails, 25 events per task) and through publish() one event
at a time (password resets, which the workers take as batches while busy).

    python -m bench.scaling [--emails 3000] [--processes 1,2,4] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from bench.throughput import CpuMeter, Ours, wait_count

PATHS = ("publish_many", "publish")


def measure(directory: Path, database: str, processes: int, count: int) -> list[dict[str, float]]:
    from dispatcher.domain.kinds import EventType

    rows = []
    with Ours(directory, database, processes) as ours:
        ours.publish_bulk(200, "warm")
        wait_count(ours.sink, 200, 120)
        meter = CpuMeter(ours.worker.process.pid, database)  # type: ignore[union-attr]
        for path in PATHS:
            base = ours.sink.count()
            meter.start()
            started = time.time()
            if path == "publish_many":
                ours.publish_bulk(count, "scale")
            else:
                ours.publish_each(count, "each", EventType.PASSWORD_RESET)
            last = wait_count(ours.sink, base + count, 600)
            rows.append(
                {
                    "path": path,
                    "processes": processes,
                    "per_second": count / (last - started),
                    **meter.per_email(count),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=3000)
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    for processes in (int(p) for p in args.processes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            rows.extend(measure(Path(tmp), args.database, processes, args.emails))
    result = {"cores": os.cpu_count(), "database": args.database, "runs": rows}
    print(json.dumps(result, indent=2, default=lambda v: round(v, 3)))
    for path in PATHS:
        mine = [row for row in rows if row["path"] == path]
        base = mine[0]["per_second"]
        for row in mine:
            print(
                f"{path:>12}, {row['processes']} process(es): {row['per_second']:.0f} e-mails/s "
                f"({row['per_second'] / base:.2f} x); CPU per e-mail: worker "
                f"{row['worker_cpu_ms_per_email']:.2f} ms, PostgreSQL "
                f"{row['postgres_cpu_ms_per_email']:.2f} ms, Redis "
                f"{row['redis_cpu_ms_per_email']:.2f} ms"
            )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=lambda v: round(v, 3)) + "\n")


if __name__ == "__main__":
    main()
