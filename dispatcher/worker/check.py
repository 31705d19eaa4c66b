"""Is a worker alive and taking work? For health checks of worker containers."""

from __future__ import annotations

import time
from typing import Any

from dispatcher.broker.app import app
from dispatcher.broker.queues import broker_state
from dispatcher.errors import DispatcherError
from dispatcher.settings import get_settings

OK, STALLED, ABSENT = 0, 1, 2


def _sample(
    inspect: Any, names: list[str]
) -> tuple[dict[str, int], dict[str, list[str]], dict[str, int]]:
    stats = inspect.stats() or {}
    totals = {n: sum((stats.get(n) or {}).get("total", {}).values()) for n in names}
    queues = inspect.active_queues() or {}
    served = {n: [q["name"] for q in queues.get(n, [])] for n in names}
    # Single events a worker took from Redis and keeps for its next batch
    # (dispatcher.worker.batching) are no longer in any queue.
    batching = inspect._request("dispatcher_batching") or {}
    waiting = {n: int((batching.get(n) or {}).get("waiting", 0)) for n in names}
    return totals, served, waiting


def check(name: str | None, window: float) -> dict[str, Any]:
    """Watch the workers for ``window`` seconds; return status, message and details."""

    settings = get_settings()
    try:
        replies = app.control.inspect(timeout=2.0).ping() or {}
    except Exception as exc:  # noqa: BLE001 - an unreachable broker means no worker
        return {"status": ABSENT, "message": f"cannot ask the workers: {exc}"}
    names = sorted(n for n in replies if name is None or n == name)
    if not names:
        which = f"worker {name}" if name else "no worker"
        return {"status": ABSENT, "message": f"{which} answered a ping within 2 s"}
    inspect = app.control.inspect(destination=names, timeout=2.0)
    try:
        before_depths = broker_state(settings).depths
        before, served, waiting_before = _sample(inspect, names)
        time.sleep(window)  # A measurement over time, not a synchronisation.
        after_depths = broker_state(settings).depths
        after, _, waiting_after = _sample(inspect, names)
    except DispatcherError as exc:
        return {"status": ABSENT, "message": str(exc)}
    stalled = []
    for worker in names:
        if after.get(worker, 0) > before.get(worker, 0):
            continue
        if waiting_before.get(worker, 0) and waiting_after.get(worker, 0):
            stalled.append(
                f"{worker}: {waiting_after[worker]} events wait in it and it finished no task "
                f"in {window:g} s"
            )
            continue
        for queue in served.get(worker, []):
            was, now = before_depths.get(queue, 0), after_depths.get(queue, 0)
            if was > 0 and now >= was:
                stalled.append(
                    f"{worker}: {queue} holds {now} (was {was}) and it finished no task "
                    f"in {window:g} s"
                )
    details = {"workers": names, "completed": {n: after[n] - before[n] for n in names}}
    if stalled:
        return {"status": STALLED, "message": "stalled: " + "; ".join(stalled), **details}
    return {"status": OK, "message": f"ok: {', '.join(names)}", **details}
