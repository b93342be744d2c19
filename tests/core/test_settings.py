"""Settings from ``PLINTH_*`` variables: defaults, normalisation, clear errors, login file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plinth.core.settings import Settings, SettingsError, load_settings, write_credentials

# One invalid value (or more) for every variable, and what the message must say.
INVALID = [
    ("PLINTH_HOME", "   ", "expected a folder"),
    ("PLINTH_DB_URL", "mysql://root:hunter2@db/plinth", "expected sqlite:///PATH or postgresql://"),
    ("PLINTH_DB_URL", "plinth.db", "expected sqlite:///PATH or postgresql://"),
    ("PLINTH_DB_URL", "postgresql://u@db:notaport/plinth", "is not a valid database URL"),
    (
        "PLINTH_ARTIFACTS_URL",
        "ftp://files/artifacts",
        "expected a folder, file:///PATH or s3://BUCKET/PREFIX",
    ),
    ("PLINTH_ARTIFACTS_URL", "s3://ab/prefix", "expected s3://BUCKET/PREFIX with a bucket name"),
    ("PLINTH_ARTIFACTS_URL", "s3:///no-bucket", "expected s3://BUCKET/PREFIX with a bucket name"),
    ("PLINTH_ARTIFACTS_URL", "file://otherhost/x", "expected file:///ABSOLUTE/PATH"),
    (
        "PLINTH_TABLES_URL",
        "gs://bucket/tables",
        "expected a folder, file:///PATH or s3://BUCKET/PREFIX",
    ),
    (
        "PLINTH_ONLINE_STORE_URL",
        "memcached://cache:11211",
        "expected sqlite:///PATH or redis://HOST:PORT/DB",
    ),
    ("PLINTH_URI", "ftp://plinth.example", "expected http(s)://HOST:PORT of a Plinth server"),
    ("PLINTH_URI", "localhost:8420", "expected http(s)://HOST:PORT of a Plinth server"),
    ("PLINTH_URI", "http://host:port", "expected http(s)://HOST:PORT of a Plinth server"),
    ("PLINTH_TOKEN", "two words", "expected a token of printable ASCII characters without spaces"),
    (
        "PLINTH_TOKEN",
        "plt_" + "é" * 40,
        "expected a token of printable ASCII characters without spaces",
    ),
    ("PLINTH_ADMIN_TOKEN", "too-short", "expected at least 32 characters, got 9"),
    (
        "PLINTH_ADMIN_TOKEN",
        "x" * 40 + "\t",
        "expected a token of printable ASCII characters without spaces",
    ),
]


def test_every_variable_has_an_invalid_case() -> None:
    assert {f"PLINTH_{name.upper()}" for name in Settings.model_fields} == {
        var for var, _, _ in INVALID
    }


@pytest.mark.parametrize(
    ("variable", "value", "expected"), INVALID, ids=[f"{v}={x!r}" for v, x, _ in INVALID]
)
def test_invalid_values_name_the_variable(
    variable: str, value: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{variable}: ")
    assert expected in message
    assert caught.value.details == {"variable": variable}
    assert caught.value.code == "invalid_settings" and caught.value.http_status == 400
    # The same value given as a keyword override gives the same message.
    monkeypatch.delenv(variable)
    with pytest.raises(SettingsError) as again:
        load_settings(**{variable.removeprefix("PLINTH_").lower(): value})
    assert str(again.value) == message


def test_passwords_never_appear_in_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    cases = {
        "PLINTH_DB_URL": "mysql://root:hunter2@db/plinth",
        "PLINTH_ONLINE_STORE_URL": "memcached://user:hunter2@cache:11211",
        "PLINTH_URI": "ftp://user:hunter2@plinth.example",
    }
    for variable, value in cases.items():
        monkeypatch.setenv(variable, value)
        with pytest.raises(SettingsError) as caught:
            load_settings()
        assert "hunter2" not in str(caught.value) and ":***@" in str(caught.value)
        monkeypatch.delenv(variable)


def test_defaults_live_under_plinth_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLINTH_HOME", str(tmp_path / "h"))
    s = load_settings()
    assert s.home == tmp_path / "h"
    assert s.database_url == f"sqlite:///{tmp_path / 'h' / 'plinth.db'}"
    assert s.artifact_root == str(tmp_path / "h" / "artifacts")
    assert s.online_store == f"sqlite:///{tmp_path / 'h' / 'online.db'}"
    assert (s.uri, s.token, s.admin_token, s.remote) == (None, None, None, False)
    assert not (tmp_path / "h").exists()  # reading settings does no I/O


def test_home_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setenv("PLINTH_HOME", "~/plinth-data")
    assert load_settings().home == tmp_path / "user" / "plinth-data"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PLINTH_HOME", "relative/home")
    assert load_settings().home == tmp_path / "relative" / "home"
    monkeypatch.delenv("PLINTH_HOME")
    assert load_settings().home == tmp_path / "user" / ".plinth"


def test_empty_variables_count_as_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.chdir(tmp_path)
    for variable in (
        "PLINTH_HOME",
        "PLINTH_DB_URL",
        "PLINTH_ARTIFACTS_URL",
        "PLINTH_URI",
        "PLINTH_TOKEN",
    ):
        monkeypatch.setenv(variable, "")
    s = load_settings()
    assert s.home == tmp_path / "user" / ".plinth"  # not the current folder
    assert s.artifact_root == str(tmp_path / "user" / ".plinth" / "artifacts")
    assert (s.db_url, s.artifacts_url, s.uri, s.token) == (None, None, None, None)


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("postgres://bob:pw@db:5432/plinth", "postgresql+psycopg://bob:pw@db:5432/plinth"),
        ("postgresql://bob@db/plinth", "postgresql+psycopg://bob@db/plinth"),
        (
            "postgresql+psycopg://bob@db/plinth?sslmode=require",
            "postgresql+psycopg://bob@db/plinth?sslmode=require",
        ),
        ("sqlite:////var/lib/plinth/plinth.db", "sqlite:////var/lib/plinth/plinth.db"),
    ],
)
def test_database_urls_are_normalised(
    given: str, normalised: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLINTH_DB_URL", given)
    s = load_settings()
    assert s.db_url == s.database_url == normalised


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("s3://my-bucket/team/artifacts/", "s3://my-bucket/team/artifacts"),
        ("s3a://my-bucket/artifacts", "s3://my-bucket/artifacts"),
        ("s3://my-bucket", "s3://my-bucket"),
        ("file:///srv/plinth/artifacts", "/srv/plinth/artifacts"),
        ("/srv/plinth/artifacts", "/srv/plinth/artifacts"),
    ],
)
def test_artifact_urls(given: str, normalised: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLINTH_ARTIFACTS_URL", given)
    assert load_settings().artifact_root == normalised


def test_other_accepted_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLINTH_URI", "https://plinth.example:8420/")
    monkeypatch.setenv("PLINTH_TOKEN", "plt_abc-DEF_123")
    monkeypatch.setenv("PLINTH_ADMIN_TOKEN", "a" * 32)
    monkeypatch.setenv("PLINTH_ONLINE_STORE_URL", "redis://127.0.0.1:6379/2")
    s = load_settings()
    assert (s.uri, s.token, s.admin_token) == (
        "https://plinth.example:8420",
        "plt_abc-DEF_123",
        "a" * 32,
    )
    assert s.remote and s.online_store == "redis://127.0.0.1:6379/2"


# --- the login file ---------------------------------------------------------------------
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    monkeypatch.setenv("PLINTH_HOME", str(folder))
    return folder


def test_login_file_is_used_when_nothing_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_credentials(home(tmp_path, monkeypatch), "http://saved:8420", "plt_saved_token")
    assert path.stat().st_mode & 0o777 == 0o600
    s = load_settings()
    assert (s.uri, s.token, s.remote) == ("http://saved:8420", "plt_saved_token", True)


def test_environment_wins_over_the_login_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_credentials(home(tmp_path, monkeypatch), "http://saved:8420", "plt_saved_token")
    monkeypatch.setenv("PLINTH_TOKEN", "plt_env_token")
    s = load_settings()
    assert (s.uri, s.token) == ("http://saved:8420", "plt_env_token")
    # Another server in the environment: the saved token (for the saved server) is not sent.
    monkeypatch.delenv("PLINTH_TOKEN")
    monkeypatch.setenv("PLINTH_URI", "http://other:9000")
    s = load_settings()
    assert (s.uri, s.token) == ("http://other:9000", None)
    monkeypatch.setenv("PLINTH_TOKEN", "plt_env_token")
    assert (load_settings().uri, load_settings().token) == ("http://other:9000", "plt_env_token")
    # An explicit override beats both.
    monkeypatch.delenv("PLINTH_URI")
    assert load_settings(uri="http://override:1").uri == "http://override:1"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not readable JSON"),
        (json.dumps(["http://x"]), "expected {'uri': ..., 'token': ...}"),
        (json.dumps({"token": "t"}), "expected {'uri': ..., 'token': ...}"),
        (json.dumps({"uri": "ftp://x", "token": "t"}), "uri: expected http(s)://HOST:PORT"),
        (
            json.dumps({"uri": "http://x", "token": "has space"}),
            "token: expected a token of printable ASCII",
        ),
    ],
)
def test_a_bad_login_file_is_named(
    content: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = home(tmp_path, monkeypatch)
    folder.mkdir()
    (folder / "credentials.json").write_text(content)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith(f"{folder / 'credentials.json'}: ")
    assert expected in str(caught.value)
    monkeypatch.setenv("PLINTH_URI", "http://env:1")  # not read at all when the environment says
    assert load_settings().uri == "http://env:1"
