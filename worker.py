"""Entry point for ``celery -A worker worker``: the app, with the worker's tasks and steps.

A worker's pool processes count their metrics in shared files; the directory
must be known before any metric is created, so it is chosen here, first.
"""

import os
import sys

from dispatcher.ops import metrics_dirs

if "worker" in sys.argv[1:] and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Removed when the worker stops; one of a killed worker is swept here.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dirs.claim())
    os.environ["DISPATCHER_OWN_METRICS_DIR"] = "1"

from dispatcher.worker.bootstrap import app

__all__ = ["app"]
