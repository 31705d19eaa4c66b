"""How throughput grows with worker processes on this machine.

For each process count, one `celery -A worker worker --concurrency=N` serving
every lane, the aiosmtpd sink in its own process and the real configuration:
a warm-up, then N e-mails through publish_many(), delivered and recorded.

    python -m bench.scaling [--emails 3000] [--processes 1,2,4] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from bench.throughput import Ours, cpu_of_tree, wait_count


def measure(directory: Path, database: str, processes: int, count: int) -> dict[str, float]:
    with Ours(directory, database, processes) as ours:
        ours.publish_bulk(200, "warm")
        wait_count(ours.sink, 200, 120)
        pid = ours.worker.process.pid  # type: ignore[union-attr]
        cpu_before = cpu_of_tree(pid)
        started = time.time()
        ours.publish_bulk(count, "scale")
        last = wait_count(ours.sink, 200 + count, 600)
        return {
            "processes": processes,
            "per_second": count / (last - started),
            "worker_cpu_ms_per_email": (cpu_of_tree(pid) - cpu_before) * 1000 / count,
        }


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
            rows.append(measure(Path(tmp), args.database, processes, args.emails))
    base = rows[0]["per_second"]
    result = {"cores": os.cpu_count(), "database": args.database, "runs": rows}
    print(json.dumps(result, indent=2, default=lambda v: round(v, 3)))
    for row in rows:
        print(
            f"{row['processes']} process(es): {row['per_second']:.0f} e-mails/s "
            f"({row['per_second'] / base:.2f} x), {row['worker_cpu_ms_per_email']:.1f} ms "
            "worker CPU per e-mail"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=lambda v: round(v, 3)) + "\n")


if __name__ == "__main__":
    main()
