"""dispatcher.env (the data directory of `dispatcher up`) and workers' metrics directories."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest

from dispatcher.errors import DispatcherError
from dispatcher.ops import data_dir, metrics_dirs
from tests.support import cli


def test_the_env_file_round_trips_shell_quoted_and_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "dispatcher.env"
    values = {
        "DISPATCHER_DATABASE_URL": "sqlite:////tmp/a dir/dispatcher.db",
        "DISPATCHER_SECRET_KEY": 'it\'s $ecret `x` "y"',
        "DISPATCHER_BROKER_URL": "redis+socket:///tmp/x/redis.sock",
    }
    data_dir.write(path, values, "written by a test\nsecond line")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert data_dir.read(path) == values
    # The shell reads it the same way.
    shell = subprocess.run(
        ["sh", "-c", f'set -a; . "{path}"; set +a; printf %s "$DISPATCHER_SECRET_KEY"'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shell.stdout == values["DISPATCHER_SECRET_KEY"]


def test_the_environment_wins_and_only_dispatcher_variables_are_taken(tmp_path: Path) -> None:
    (tmp_path / "dispatcher.env").write_text(
        "# comment\n\nDISPATCHER_BROKER_URL=redis://file\nexport DISPATCHER_DATABASE_URL="
        "'sqlite:///file.db'\nPATH=/nowhere\n"
    )
    environ = {"DISPATCHER_BROKER_URL": "redis://mine"}
    applied = data_dir.load(None, environ, cwd=tmp_path)
    assert applied == {"DISPATCHER_DATABASE_URL": "sqlite:///file.db"}
    assert environ == {
        "DISPATCHER_BROKER_URL": "redis://mine",
        "DISPATCHER_DATABASE_URL": "sqlite:///file.db",
    }
    # Elsewhere, without --data-dir: nothing.
    assert data_dir.find(None, cwd=tmp_path / "missing") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("DISPATCHER_X='unclosed\n", "No closing quotation"),
        ("just words here\n", "not a KEY=value line"),
        ("1BAD=x\n", "is not a variable name"),
    ],
)
def test_a_broken_env_file_is_one_line_with_its_place(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "dispatcher.env"
    path.write_text(text)
    with pytest.raises(DispatcherError, match=expected) as failure:
        data_dir.read(path)
    assert f"{path}:1:" in str(failure.value)


def test_a_data_dir_without_env_file_fails_and_says_how(tmp_path: Path) -> None:
    result = cli.run("--data-dir", str(tmp_path / "none"), "status", cwd=tmp_path)
    assert result.code == 1
    assert result.err.strip().splitlines() == [
        f"error: {tmp_path / 'none' / 'dispatcher.env'} does not exist; run dispatcher up "
        f"--data-dir {tmp_path / 'none'} first (it writes the file), or leave out --data-dir"
    ]


def test_commands_in_a_data_dir_use_its_database(tmp_path: Path) -> None:
    database = tmp_path / "elsewhere.db"
    data_dir.write(
        tmp_path / "dispatcher.env",
        {"DISPATCHER_DATABASE_URL": f"sqlite:///{database}"},
        "test",
    )
    env = {k: v for k, v in os.environ.items() if k != "DISPATCHER_DATABASE_URL"}
    completed = subprocess.run(
        [*cli.command(), "db", "upgrade"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert database.exists()


def _locked_by_child(directory: Path) -> subprocess.Popen[str]:
    """A process that holds ``directory``'s lock, as a running worker does."""
    code = (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(directory / metrics_dirs.LOCK_FILE)!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "locked"
    return child


def test_metrics_directories_of_dead_workers_are_swept(tmp_path: Path) -> None:
    alive = tmp_path / f"{metrics_dirs.PREFIX}alive"
    dead = tmp_path / f"{metrics_dirs.PREFIX}dead"
    young = tmp_path / f"{metrics_dirs.PREFIX}young"
    other = tmp_path / "something-else"
    for directory in (alive, dead, young, other):
        directory.mkdir()
        (directory / "counter_1.db").write_bytes(b"x")
    (dead / metrics_dirs.LOCK_FILE).write_bytes(b"")
    old = time.time() - 2 * metrics_dirs.GRACE_SECONDS
    for directory in (alive, dead, other):
        os.utime(directory, (old, old))
    holder = _locked_by_child(alive)
    os.utime(alive, (old, old))
    try:
        removed = metrics_dirs.sweep(tmp_path)
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    assert removed == [dead]
    assert alive.exists()
    assert young.exists()  # Its worker may be about to lock it.
    assert other.exists()
    # Once its worker is gone, the next sweep takes it too.
    assert metrics_dirs.sweep(tmp_path) == [alive]


def test_a_claimed_directory_is_locked_while_this_process_lives(tmp_path: Path) -> None:
    claimed = metrics_dirs.claim(tmp_path)
    assert claimed.name.startswith(metrics_dirs.PREFIX)
    old = time.time() - 2 * metrics_dirs.GRACE_SECONDS
    os.utime(claimed, (old, old))
    # Another process (another worker starting) sees it held.
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from dispatcher.ops import metrics_dirs; "
            "print(metrics_dirs.sweep(Path(sys.argv[1])))",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    assert check.stdout.strip() == "[]"
    assert claimed.exists()


def test_dispatcher_version_names_the_installed_package(tmp_path: Path) -> None:
    result = cli.run("--version", cwd=tmp_path)
    assert result.code == 0
    assert result.out.strip() == f"dispatcher, version {version('portal-dispatcher')}"
