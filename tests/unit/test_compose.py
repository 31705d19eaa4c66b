"""docker-compose.yml, read and checked against the CLI and the settings (no Docker here)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from dispatcher.api.config import ApiSettings
from dispatcher.cli import cli
from dispatcher.domain.kinds import ALL_QUEUES
from dispatcher.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]


def known_variables() -> set[str]:
    """Every DISPATCHER_* name the code reads: settings fields and direct reads."""

    names = {f"DISPATCHER_{name.upper()}" for name in Settings.model_fields}
    names |= {f"DISPATCHER_API_{name.upper()}" for name in ApiSettings.model_fields}
    for path in list((ROOT / "dispatcher").rglob("*.py")) + list(
        (ROOT / "config_store").rglob("*.py")
    ):
        names |= set(re.findall(r"\b(DISPATCHER_[A-Z_]+)\b", path.read_text("utf-8")))
    return names


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else list(command)


def check_dispatcher_command(argv: list[str]) -> None:
    """Resolve the click command and parse its options, as the CLI would."""
    group: click.Command = cli
    args = argv[1:]
    while isinstance(group, click.Group) and args and not args[0].startswith("-"):
        sub = group.get_command(click.Context(group), args[0])
        assert sub is not None, f"no such command: dispatcher {' '.join(argv[1:])}"
        group, args = sub, args[1:]
    context = group.make_context("dispatcher", list(args), resilient_parsing=False)
    context.close()


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_command_exists_with_its_options(name: str) -> None:
    argv = command_of(SERVICES[name])
    if not argv or argv[0] == "redis-server":
        return
    if argv[0] == "dispatcher":
        check_dispatcher_command(argv)
    else:
        assert argv[:3] == ["celery", "-A", "worker"], argv
        assert argv[3] in {"worker", "beat", "flower"}, argv
        if "-Q" in argv:
            queues = argv[argv.index("-Q") + 1].split(",")
            assert set(queues) <= set(ALL_QUEUES), queues


def test_every_variable_is_one_the_code_reads() -> None:
    known = known_variables()
    for name, service in SERVICES.items():
        environment = service.get("environment") or {}
        for variable in environment:
            if variable.startswith("DISPATCHER_"):
                assert variable in known, f"{name}: {variable} is not read by the code"


def test_every_lane_has_a_worker_and_workers_can_scale() -> None:
    served: set[str] = set()
    for name, service in SERVICES.items():
        argv = command_of(service)
        if argv[:4] == ["celery", "-A", "worker", "worker"]:
            served |= set(argv[argv.index("-Q") + 1].split(","))
            # --scale needs services without fixed names or host ports.
            assert "container_name" not in service, name
            assert "ports" not in service, name
            assert "worker-check" in str(service["healthcheck"]["test"]), name
    assert served == set(ALL_QUEUES)


def test_redis_keeps_queues_and_never_evicts() -> None:
    argv = command_of(SERVICES["redis"])
    assert argv[argv.index("--appendonly") + 1] == "yes"
    assert argv[argv.index("--maxmemory-policy") + 1] == "noeviction"


def test_migration_runs_once_before_everything_else() -> None:
    assert command_of(SERVICES["migrate"]) == ["dispatcher", "db", "upgrade"]
    assert SERVICES["migrate"]["restart"] == "no"
    for name in ("worker-interactive", "worker-bulk", "beat", "api", "flower"):
        assert SERVICES[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        ), name
    assert sum(1 for s in SERVICES.values() if "beat" in command_of(s)) == 1


def test_no_secret_is_written_into_the_file() -> None:
    text = (ROOT / "docker-compose.yml").read_text("utf-8")
    # Passwords and secrets come from the environment, with no default value.
    for reference in re.findall(r"\$\{([A-Z_]*(?:PASSWORD|SECRET)[A-Z_]*)([^}]*)\}", text):
        name, rest = reference
        assert rest == "" or rest.startswith(":?") or rest == ":-", (name, rest)
    assert "${DISPATCHER_API_SECRET:?" in text
    assert "${POSTGRES_PASSWORD:?" in text


def test_the_image_builds_from_this_repository() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text("utf-8")
    for path in re.findall(r"^COPY (\S+)", dockerfile, re.M):
        assert (ROOT / path).exists(), path
    # The versions CI tested, with the extras production uses.
    assert 'pip install -c constraints.txt ".[ops,tracing]"' in dockerfile
    assert "USER dispatcher" in dockerfile
    healthcheck = re.search(r"^HEALTHCHECK .*\n\s+CMD \[(.*)\]$", dockerfile, re.M)
    assert healthcheck is not None
    assert healthcheck.group(1) == '"python", "-m", "dispatcher.ops.healthcheck"'


def test_flower_asks_for_a_password_from_the_environment() -> None:
    environment = SERVICES["flower"]["environment"]
    # It must be given: compose refuses to start without it (no default).
    assert re.fullmatch(r"\$\{FLOWER_BASIC_AUTH:\?[^}]+\}", environment["FLOWER_BASIC_AUTH"])
    # The rest of the services' environment still reaches it (the broker, for one).
    assert (
        environment["DISPATCHER_BROKER_URL"]
        == SERVICES["api"]["environment"]["DISPATCHER_BROKER_URL"]
    )


def test_the_readmes_dedicated_workers_serve_every_lane() -> None:
    """Whoever copies the README's per-lane workers must not leave a lane without one."""
    readme = (ROOT / "README.md").read_text("utf-8")
    start = readme.index("Dedicated workers per lane")
    block = readme[start : readme.index("```\n", readme.index("```sh", start) + 5)]
    served: set[str] = set()
    commands = [line for line in block.splitlines() if line.startswith("celery -A worker worker")]
    assert commands, "README: no dedicated worker commands found"
    for line in commands:
        argv = shlex.split(line)
        served |= set(argv[argv.index("-Q") + 1].split(","))
    assert served == set(ALL_QUEUES)
