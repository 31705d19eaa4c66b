"""``dispatcher api`` as a real server process, for live and browser tests."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.cli import Result, command, run
from tests.support.documents import full
from tests.support.harness import _stop_group, free_port, wait_for

SERVER_SECRET = "live-server-secret-" + "y" * 32


@dataclass
class ApiServer:
    """``dispatcher api`` in its own process group, on a free port."""

    directory: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "api.log"

    def start(self) -> ApiServer:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*command(), "api", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=self.directory,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(self._answers, 30, f"the API server on {self.url}", interval=0.1)
        return self

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the API server exited early:\n{self.log()}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text("utf-8", errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process is not None:
            _stop_group(self.process, 10)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def dispatcher(
    directory: Path, env: dict[str, str], *args: str, stdin: str | None = None
) -> Result:
    """Run the real ``dispatcher`` command; fail with its output if it fails."""
    result = run(*args, cwd=directory, env=env, stdin=stdin)
    assert result.code == 0, f"dispatcher {' '.join(args)}:\n{result.out}\n{result.err}"
    return result


def prepare_site(directory: Path, env: dict[str, str]) -> dict[str, str]:
    """Migrate, add group RETAIL with the full document, make a token per scope."""
    dispatcher(directory, env, "db", "upgrade")
    dispatcher(directory, env, "groups", "add", "RETAIL", "--name", "Retail customers")
    dispatcher(directory, env, "settings", "import", "RETAIL", "-", stdin=json.dumps(full()))
    return {
        scope: dispatcher(
            directory, env, "tokens", "create", "--scope", scope, "--name", f"{scope}-token"
        ).out.strip()
        for scope in ("publish", "read", "admin")
    }
