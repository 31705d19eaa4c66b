"""The click group, what every command shares, and the mapping of errors to one line.

Every user error ends in one line on stderr that says how to fix it and a
non-zero exit status; a traceback means a bug in this program.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import NoReturn

import click
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from config_store.database import first_line, get_engine, require_schema
from dispatcher.admin.pipeline import CeleryPipeline
from dispatcher.admin.use_cases import Admin, InvalidRequest
from dispatcher.cli import up
from dispatcher.errors import DispatcherError, InvalidInput
from dispatcher.settings import get_settings

# Click 8.2 added a dedicated error for "no arguments: show help".
_NO_ARGS_IS_HELP: tuple[type[click.UsageError], ...] = tuple(
    cls for cls in (getattr(click.exceptions, "NoArgsIsHelpError", None),) if cls is not None
)
EXIT_USER_ERROR = 1
EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_USER_ERROR) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def admin() -> Admin:
    """The use cases over the configured database and broker, as the API has them."""
    engine = get_engine()
    require_schema(engine)
    config = get_settings()
    return Admin(engine, config, CeleryPipeline(config))


def read_input(path: str) -> tuple[str, str]:
    """Read FILE or '-' (stdin); return (text, name for messages)."""
    if path == "-":
        return sys.stdin.read(), "stdin"
    file = Path(path)
    try:
        return file.read_text("utf-8"), str(file)
    except FileNotFoundError:
        fail(f"{path}: no such file; give the path of a YAML or JSON file, or - for stdin")
    except IsADirectoryError:
        fail(f"{path}: is a directory; give the path of a YAML or JSON file")
    except UnicodeDecodeError:
        fail(f"{path}: is not UTF-8 text; save it as UTF-8")
    except OSError as exc:
        fail(f"{path}: cannot read it ({exc.strerror})")


def default_actor() -> str:
    """Who changes things from this terminal, as the audit log and the history name it."""
    try:
        return f"{getpass.getuser()} (cli)"
    except (KeyError, OSError):
        return "cli"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="portal-dispatcher")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="DISPATCHER_DATA_DIR",
    help="Use the database and broker of the `dispatcher up` that runs there "
    "(its dispatcher.env; read from the working directory when there is one).",
)
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None) -> None:
    """Notification dispatcher for the customer self-service portal."""
    up.use_data_dir(ctx, data_dir)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map every user error to one line and an exit status."""
    try:
        cli.main(args=argv, prog_name="dispatcher", standalone_mode=False)
    except _NO_ARGS_IS_HELP as exc:
        # A bare group name ("dispatcher settings") shows that group's help.
        click.echo(exc.format_message())
        sys.exit(EXIT_USAGE)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "dispatcher"
        fail(f"{exc.format_message()} (see: {command} --help)", EXIT_USAGE)
    except click.ClickException as exc:
        fail(exc.format_message())
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except InvalidRequest as exc:
        # The use cases name the field; on the command line it is an argument.
        if len(exc.errors) == 1:
            fail(str(exc.errors[0]))
        _invalid(exc)
    except InvalidInput as exc:
        _invalid(exc)
    except DispatcherError as exc:
        fail(str(exc))
    except ValidationError as exc:
        # Only the environment settings reach here unconverted.
        first = exc.errors()[0]
        field = "DISPATCHER_" + str(first["loc"][0]).upper() if first["loc"] else "DISPATCHER_*"
        fail(f"{field}: {first['msg']}; fix the environment variable")
    except SQLAlchemyError as exc:
        fail(f"database error: {first_line(exc)}; check DISPATCHER_DATABASE_URL")
    except BrokenPipeError:  # pragma: no cover - e.g. `dispatcher ... | head`
        sys.exit(0)


def _invalid(exc: InvalidInput) -> NoReturn:
    click.echo(f"error: {exc.summary()}", err=True)
    if len(exc.errors) > 1:
        for error in exc.errors:
            click.echo(f"  {error}", err=True)
    click.echo("nothing was saved or sent", err=True)
    sys.exit(EXIT_USER_ERROR)
