# The dispatcher's image: CLI, workers, beat, API, bounce server and Flower share it.
# Every package at the version CI tested (constraints.txt, refreshed by scripts/lock);
# all of them install from wheels, so the image needs no compiler.
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY dispatcher ./dispatcher
COPY config_store ./config_store
COPY worker.py ./
RUN pip install -c constraints.txt ".[ops,tracing]" \
    && useradd --create-home --uid 10001 dispatcher \
    && mkdir -p /data && chown dispatcher /data

USER dispatcher
WORKDIR /data
EXPOSE 8000 2526 5555
# Whatever the container runs (API, worker, bounce server, ...), its own server
# must answer; see dispatcher/ops/healthcheck.py. docker-compose.yml sets
# stricter checks for the API and the workers.
HEALTHCHECK --interval=30s --timeout=30s --start-period=30s --retries=3 \
    CMD ["python", "-m", "dispatcher.ops.healthcheck"]
CMD ["dispatcher", "--help"]
