"""The ``plinth`` command: the root app that mounts every area's command group.

Heavy libraries are imported inside commands, so ``plinth --help`` stays instant.
"""

from __future__ import annotations

import importlib
import sys

import typer

from plinth.cli.output import JsonOption, show

app = typer.Typer(
    name="plinth",
    help="Plinth: one platform for the whole life of a model.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="The metadata database.", no_args_is_help=True)
app.add_typer(db_app, name="db")

# (module, function) that adds an area's command groups to the root app.
AREA_COMMANDS = [
    ("plinth.governance.cli", "register"),
    ("plinth.artifacts.cli", "register"),
    ("plinth.tracking.cli", "register"),
    ("plinth.data.cli", "register"),
    ("plinth.models.cli", "register"),
    ("plinth.registry.cli", "register_commands"),
    ("plinth.features.cli", "register"),
    ("plinth.serving.cli", "register"),
    ("plinth.serving.jobs_cli", "register"),
]


def _version(value: bool) -> None:
    if value:
        from plinth import __version__

        typer.echo(f"plinth {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Plinth: tracking, registry, data, features, serving, monitoring, governance, LLM ops."""


@app.command()
def server(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8420, "--port", help="Port to listen on."),
    no_auth: bool = typer.Option(False, "--no-auth", help="Turn authentication off (loopback only)."),
    log_level: str = typer.Option("info", "--log-level"),
) -> None:
    """Run the Plinth server: REST API, web UI, metrics. Prints a login URL on first start."""
    from plinth.core.settings import load_settings
    from plinth.server.run import serve

    serve(load_settings(), host=host, port=port, auth=not no_auth, echo=typer.echo, log_level=log_level)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply the schema migrations to the metadata database."""
    from plinth.core.settings import load_settings
    from plinth.store.db import Database, masked

    settings = load_settings()
    db = Database(settings.database_url)
    db.upgrade(revision)
    typer.echo(f"{masked(settings.database_url)} is at revision {db.current_revision()}")


@db_app.command("current")
def db_current(json: bool = JsonOption) -> None:
    """Show the schema revision of the metadata database and the newest one known."""
    from plinth.core.settings import load_settings
    from plinth.store.db import Database, masked

    settings = load_settings()
    db = Database(settings.database_url)
    db.check()
    revisions = {"current": db.current_revision(), "head": db.head_revision()}
    show({"database": masked(settings.database_url), **revisions}, json)


@app.command()
def login(
    url: str = typer.Argument(..., help="The server, e.g. http://127.0.0.1:8420 (a printed login URL works too)."),
    token: str | None = typer.Option(None, "--token", help="API token; asked for when omitted."),
) -> None:
    """Log in to a Plinth server: later commands and the SDK then work remotely."""
    from urllib.parse import parse_qs, urlsplit

    from plinth.client.backend import RemoteBackend
    from plinth.core.settings import load_settings, write_credentials
    from plinth.governance import schemas as s
    from plinth.governance import service as svc

    parts = urlsplit(url)
    token = token or (parse_qs(parts.query).get("token") or [None])[0]
    base = f"{parts.scheme}://{parts.netloc}"
    if not token:
        token = typer.prompt("token", hide_input=True)
    settings = load_settings(uri=base)  # validates the URL
    me = RemoteBackend(base, token).call(s.WHOAMI, svc.whoami, project=None)
    path = write_credentials(settings.home, base, token)
    typer.echo(f"logged in to {base} as {me.name}; credentials saved in {path}")


@app.command()
def logout() -> None:
    """Forget the saved server credentials: the SDK and CLI go back to embedded mode."""
    from plinth.core.settings import credentials_path, load_settings

    path = credentials_path(load_settings(uri="http://placeholder.invalid").home)
    if path.exists():
        path.unlink()
        typer.echo("logged out")
    else:
        typer.echo("not logged in")


@app.command()
def whoami(json: bool = JsonOption) -> None:
    """Who the CLI acts as, and where."""
    from plinth.governance import whoami as _whoami

    show(_whoami(), json)


@app.command()
def demo(
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Start the server with the web UI at the end."),
    port: int = typer.Option(8420, "--port"),
) -> None:
    """Run the end-to-end story on the embedded default, then start the server with the UI."""
    from plinth.demo import run_demo

    run_demo(serve=serve, port=port, echo=typer.echo)


def _mount_areas() -> None:
    for module, func in AREA_COMMANDS:
        getattr(importlib.import_module(module), func)(app)


_mount_areas()


def main() -> None:
    """Entry point: run the app; a PlinthError becomes one line on stderr and its exit code."""
    from plinth.core.errors import PlinthError

    try:
        result = app(standalone_mode=False)
    except PlinthError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("aborted\n")
        sys.exit(130)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    # Without standalone mode click returns typer.Exit's code instead of raising it.
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
