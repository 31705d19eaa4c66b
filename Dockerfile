# The dispatcher's image: CLI, workers, beat, API and Flower share it.
FROM python:3.12-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY dispatcher ./dispatcher
COPY config_store ./config_store
COPY worker.py ./
RUN pip install ".[ops]" \
    && useradd --create-home --uid 10001 dispatcher \
    && mkdir -p /data && chown dispatcher /data

USER dispatcher
WORKDIR /data
EXPOSE 8000 5555
CMD ["dispatcher", "--help"]
