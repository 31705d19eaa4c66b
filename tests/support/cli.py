"""Run the real ``dispatcher`` command in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


def command() -> list[str]:
    script = Path(sys.executable).with_name("dispatcher")
    return [str(script)] if script.exists() else [sys.executable, "-m", "dispatcher"]


def run(
    *args: str, cwd: Path, stdin: str | None = None, env: dict[str, str] | None = None
) -> Result:
    completed = subprocess.run(
        [*command(), *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)
