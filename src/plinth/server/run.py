"""``plinth server``: bootstrap the first admin, print the login URL, run uvicorn."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

from plinth.core.errors import InvalidInput
from plinth.core.platform import Platform
from plinth.core.settings import Settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8420


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
        except OSError:
            return False


def check_bind(host: str, auth: bool) -> None:
    if not auth and not is_loopback(host):
        raise InvalidInput(
            f"refusing to listen on {host} with authentication off: anyone on the network could act as "
            "admin. Listen on 127.0.0.1, or keep authentication on.",
            field="host",
        )


def public_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def prepare(platform: Platform, host: str, port: int, auth: bool) -> str | None:
    """Migrate, then create the first admin on an empty store. Returns the login URL to print."""
    from plinth.governance.service import bootstrap_admin

    check_bind(host, auth)
    platform.start()
    if not auth:
        return None
    with platform.context() as ctx:
        created = bootstrap_admin(ctx, token=platform.settings.admin_token)
    if created is None:
        return None
    if platform.settings.admin_token:
        return f"{public_url(host, port)}/login"
    return f"{public_url(host, port)}/login?token={created.token}"


def serve(
    settings: Settings,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    auth: bool = True,
    echo: Callable[[str], None] = print,
    log_level: str = "info",
) -> None:
    import uvicorn

    from plinth.server.app import create_app
    from plinth.server.observability import configure_logging

    platform = Platform(settings)
    login = prepare(platform, host, port, auth)
    configure_logging(log_level.upper())
    app = create_app(platform, auth=auth)
    echo(f"Plinth server on {public_url(host, port)} (API docs at /docs)")
    if not auth:
        echo("authentication is OFF (loopback only)")
    elif login and settings.admin_token:
        echo(f"First start: admin created; log in at {login} with PLINTH_ADMIN_TOKEN")
    elif login:
        echo("First start: an admin user was created. Log in once with this URL (the token is not shown again):")
        echo(f"    {login}")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
