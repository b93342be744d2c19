"""Settings read from ``PLINTH_*`` environment variables.

========================  ==========================================  ===========================
variable                  meaning                                     default
========================  ==========================================  ===========================
PLINTH_HOME               folder for the embedded stores              ``~/.plinth``
PLINTH_DB_URL             metadata database (SQLite or PostgreSQL)    SQLite in ``$PLINTH_HOME``
PLINTH_ARTIFACTS_URL      artifact store: a folder or s3://bucket/p   ``$PLINTH_HOME/artifacts``
PLINTH_TABLES_URL         table store (Delta Lake): folder or s3://   ``$PLINTH_HOME/tables``
PLINTH_ONLINE_STORE_URL   online feature store (SQLite or Redis)      SQLite in ``$PLINTH_HOME``
PLINTH_URI                a Plinth server: the SDK then goes remote   unset (embedded)
PLINTH_TOKEN              API token sent to ``PLINTH_URI``            unset
PLINTH_ADMIN_TOKEN        admin token a fresh server adopts           unset
========================  ==========================================  ===========================

An invalid value raises :class:`SettingsError` naming the variable and what was expected.
``plinth login`` stores a server URL and token in ``$PLINTH_HOME/credentials.json``; the
environment variables win over that file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from plinth.core.errors import InvalidInput

__all__ = ["Settings", "SettingsError", "load_settings"]


# The server refuses shorter chosen tokens (governance's MIN_TOKEN_LENGTH); say so at once.
MIN_ADMIN_TOKEN_LENGTH = 32


class SettingsError(InvalidInput):
    """A ``PLINTH_*`` variable holds a value Plinth cannot use."""

    code = "invalid_settings"


class Settings(BaseSettings):
    # An empty variable (``PLINTH_DB_URL=`` in a compose file) means "not set", never "here".
    model_config = SettingsConfigDict(
        env_prefix="PLINTH_", extra="ignore", frozen=True, env_ignore_empty=True
    )

    home: Path = Path("~/.plinth")
    db_url: str | None = None
    artifacts_url: str | None = None
    tables_url: str | None = None
    online_store_url: str | None = None
    uri: str | None = None
    token: str | None = None
    admin_token: str | None = None

    @field_validator("home", mode="before")
    @classmethod
    def _home_given(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            raise ValueError("expected a folder for Plinth's embedded stores, got an empty value")
        return value

    @field_validator("home")
    @classmethod
    def _home(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @field_validator("db_url")
    @classmethod
    def _db_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in {"sqlite", "postgresql", "postgresql+psycopg", "postgres"}:
            raise ValueError(
                "expected sqlite:///PATH or postgresql://USER@HOST:PORT/DB, got "
                f"{_mask(value)!r}"
            )
        if scheme == "postgres":
            value = "postgresql" + value[len("postgres") :]
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value[len("postgresql://") :]
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(value)
        except (ArgumentError, ValueError) as exc:
            raise ValueError(f"{_mask(value)!r} is not a valid database URL ({exc})") from None
        return value

    @field_validator("artifacts_url", "tables_url")
    @classmethod
    def _artifacts_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if "://" not in value:
            return str(Path(value).expanduser().absolute())
        parts = urlsplit(value)
        if parts.scheme == "file":
            if parts.netloc not in {"", "localhost"} or not parts.path:
                raise ValueError(f"expected file:///ABSOLUTE/PATH, got {value!r}")
            return str(Path(parts.path).absolute())
        if parts.scheme in {"s3", "s3a"}:
            if len(parts.netloc) < 3:
                raise ValueError(f"expected s3://BUCKET/PREFIX with a bucket name, got {value!r}")
            return f"s3://{parts.netloc}{parts.path.rstrip('/')}"
        raise ValueError(f"expected a folder, file:///PATH or s3://BUCKET/PREFIX, got {value!r}")

    @field_validator("online_store_url")
    @classmethod
    def _online_store_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("sqlite://", "redis://", "rediss://")):
            raise ValueError(
                f"expected sqlite:///PATH or redis://HOST:PORT/DB, got {_mask(value)!r}"
            )
        return value

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            parts = parts._replace(scheme="")
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(
                f"expected http(s)://HOST:PORT of a Plinth server, got {_mask(value)!r}"
            )
        return value.rstrip("/")

    @field_validator("token", "admin_token")
    @classmethod
    def _token(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        # It travels in an HTTP header: spaces, newlines or non-ASCII would break it there.
        if not value.isascii() or not value.isprintable() or any(c.isspace() for c in value):
            raise ValueError("expected a token of printable ASCII characters without spaces")
        if info.field_name == "admin_token" and len(value) < MIN_ADMIN_TOKEN_LENGTH:
            raise ValueError(
                f"expected at least {MIN_ADMIN_TOKEN_LENGTH} characters, got {len(value)}"
            )
        return value

    # Derived locations of the embedded defaults.
    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.home / 'plinth.db'}"

    @property
    def artifact_root(self) -> str:
        return self.artifacts_url or str(self.home / "artifacts")

    @property
    def table_root(self) -> str:
        return self.tables_url or str(self.home / "tables")

    @property
    def online_store(self) -> str:
        return self.online_store_url or f"sqlite:///{self.home / 'online.db'}"

    @property
    def remote(self) -> bool:
        return self.uri is not None


def _mask(url: str) -> str:
    """Hide a password in a URL before it goes into a message."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def load_settings(**overrides: object) -> Settings:
    """Read the environment (and the login file), raising :class:`SettingsError` on bad values."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        field, reason = _first_error(exc)
        variable = f"PLINTH_{field.upper()}"
        raise SettingsError(f"{variable}: {reason}", variable=variable) from None
    if settings.uri is None and "uri" not in overrides and not os.environ.get("PLINTH_URI"):
        saved = read_credentials(settings.home)
        if saved:
            token = settings.token or saved.get("token")
            try:  # the saved values pass the same checks as the variables
                return Settings(**{**overrides, "uri": saved["uri"], "token": token})
            except ValidationError as exc:
                path = credentials_path(settings.home)
                field, reason = _first_error(exc)
                raise SettingsError(
                    f"{path}: {field}: {reason}; run `plinth logout` and log in again",
                    path=str(path),
                ) from None
    return settings


def _first_error(exc: ValidationError) -> tuple[str, str]:
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "?"
    return field, str(first["msg"]).removeprefix("Value error, ")


def credentials_path(home: Path) -> Path:
    return home / "credentials.json"


def read_credentials(home: Path) -> dict[str, str] | None:
    path = credentials_path(home)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        raise SettingsError(
            f"{path}: not readable JSON; run `plinth logout` and log in again"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("uri"), str):
        raise SettingsError(f"{path}: expected {{'uri': ..., 'token': ...}}")
    return data


def write_credentials(home: Path, uri: str, token: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = credentials_path(home)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"uri": uri, "token": token}, fh)
    return path
