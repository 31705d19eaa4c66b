"""The data directory of ``dispatcher up`` and the ``dispatcher.env`` file in it.

``dispatcher up`` writes ``DATA_DIR/dispatcher.env``: the database and the broker
it runs on, the mail sink, the bounce domain and the key that signs return
paths. Every ``dispatcher`` command run inside the data directory, or given
``--data-dir DIR`` (or ``DISPATCHER_DATA_DIR``), reads it first, so a second
terminal talks to the same database and Redis as ``up``. Variables already set
in the environment win over the file. The file is shell syntax (``set -a; .
dispatcher.env; set +a`` exports it for any other program) and readable by its
owner only: it holds the secret key.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from dispatcher.errors import DispatcherError

ENV_FILE = "dispatcher.env"
DEFAULT_DIR = "dispatcher-data"
# Only the product's own variables are taken from the file.
PREFIX = "DISPATCHER_"


def env_file(data_dir: Path) -> Path:
    return data_dir / ENV_FILE


def read(path: Path) -> dict[str, str]:
    """The ``KEY=value`` lines of ``path`` (shell quoting, ``#`` comments, blank lines)."""
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise DispatcherError(f"{path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise DispatcherError(
            f"{path}: is not UTF-8 text; delete it and run dispatcher up"
        ) from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            words = shlex.split(stripped.removeprefix("export "), comments=True)
        except ValueError as exc:
            raise DispatcherError(f"{path}:{number}: {exc}; write KEY=value") from None
        if len(words) != 1 or "=" not in words[0]:
            raise DispatcherError(f"{path}:{number}: not a KEY=value line; write KEY=value")
        key, _, value = words[0].partition("=")
        if not key.isidentifier():
            raise DispatcherError(f"{path}:{number}: {key!r} is not a variable name")
        values[key] = value
    return values


def write(path: Path, values: Mapping[str, str], comment: str) -> None:
    """Replace ``path`` at once with ``values``, readable by its owner only."""
    lines = [f"# {line}" for line in comment.splitlines()]
    lines += [f"{key}={shlex.quote(value)}" for key, value in values.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(dir=path.parent, prefix=".dispatcher.env.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
        os.chmod(scratch, 0o600)
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise


def find(data_dir: Path | None, cwd: Path | None = None) -> Path | None:
    """The env file to use: ``data_dir``'s, else the working directory's, else None.

    A ``data_dir`` named explicitly must hold one: commands would otherwise
    quietly talk to another database and Redis than the ``up`` meant.
    """
    if data_dir is not None:
        path = env_file(data_dir)
        if not path.is_file():
            raise DispatcherError(
                f"{path} does not exist; run dispatcher up --data-dir {shlex.quote(str(data_dir))} "
                "first (it writes the file), or leave out --data-dir"
            )
        return path
    path = env_file(cwd or Path.cwd())
    return path if path.is_file() else None


def load(
    data_dir: Path | None,
    environ: MutableMapping[str, str] | None = None,
    cwd: Path | None = None,
) -> dict[str, str]:
    """Put the env file's DISPATCHER_* variables into ``environ`` where unset there.

    Returns the variables set (empty when there is no file).
    """
    environ = os.environ if environ is None else environ
    path = find(data_dir, cwd)
    if path is None:
        return {}
    applied = {
        key: value
        for key, value in read(path).items()
        if key.startswith(PREFIX) and key not in environ
    }
    environ.update(applied)
    return applied
