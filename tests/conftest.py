"""Shared fixtures: a temporary platform (SQLite), a PostgreSQL platform, a live server,
authenticated clients, and a browser page.

In CI (``CI=true``) a test that would be skipped fails instead: PostgreSQL, the S3 test
server and Chromium must really be there.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from plinth.core.platform import Platform
from plinth.core.settings import load_settings
from tests_support import IN_CI, need, port_open

PG_URL = os.environ.get("PLINTH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ARTIFACT_DIR = Path(os.environ.get("PLINTH_TEST_OUTPUT", Path(__file__).parent.parent / "test-output"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """In CI a skipped test is a failed test: every real part must be there."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped tests fail in CI (CI=true): {reason}"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own PLINTH_HOME and no server settings from the outside."""
    from plinth.client.backend import reset_backend

    for var in (
        "PLINTH_URI",
        "PLINTH_TOKEN",
        "PLINTH_DB_URL",
        "PLINTH_ARTIFACTS_URL",
        "PLINTH_ADMIN_TOKEN",
        "PLINTH_ONLINE_STORE_URL",
        "PLINTH_TABLES_URL",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PLINTH_HOME", str(tmp_path / "home"))
    reset_backend()
    yield
    reset_backend()


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    """An embedded platform on SQLite in a temporary folder, migrated."""
    p = Platform(load_settings(home=tmp_path / "home"))
    p.start()
    yield p
    p.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    need(port_open(5432), "PostgreSQL on 127.0.0.1:5432")
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def pg_platform(tmp_path: Path, pg_url: str) -> Iterator[Platform]:
    p = Platform(load_settings(home=tmp_path / "home", db_url=pg_url))
    p.start()
    yield p
    p.close()


@pytest.fixture(params=["sqlite", "postgres"])
def any_platform(request: pytest.FixtureRequest) -> Platform:
    """The same test on both metadata backends (the store contract)."""
    name = "platform" if request.param == "sqlite" else "pg_platform"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    platform: Platform
    admin_token: str

    def client(self, token: str | None = None):  # type: ignore[no-untyped-def]
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@pytest.fixture
def live_server(platform: Platform) -> Iterator[LiveServer]:
    """A real uvicorn server on a free loopback port, with a bootstrapped admin."""
    import uvicorn

    from plinth.server.app import create_app
    from plinth.server.run import prepare

    port = free_port()
    login = prepare(platform, "127.0.0.1", port, auth=True)
    assert login is not None and "token=" in login
    token = login.split("token=", 1)[1]
    config = uvicorn.Config(create_app(platform), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    yield LiveServer(f"http://127.0.0.1:{port}", platform, token)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def admin_client(live_server: LiveServer):  # type: ignore[no-untyped-def]
    with live_server.client(live_server.admin_token) as c:
        yield c


@pytest.fixture
def remote_sdk(live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> LiveServer:
    """The SDK pointed at the live server as its admin (PLINTH_URI + PLINTH_TOKEN)."""
    from plinth.client.backend import reset_backend

    monkeypatch.setenv("PLINTH_URI", live_server.url)
    monkeypatch.setenv("PLINTH_TOKEN", live_server.admin_token)
    reset_backend()
    return live_server


CHROMIUM = os.environ.get("PLINTH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():  # type: ignore[no-untyped-def]
    need(shutil.which(CHROMIUM) is not None or os.path.exists(CHROMIUM), f"Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """A fresh browser page; ``shot(name)`` saves a screenshot under test-output/screenshots."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    shots = ARTIFACT_DIR / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)

    def shot(name: str) -> Path:
        path = shots / f"{request.node.name}-{name}.png"
        pg.screenshot(path=str(path), full_page=True)
        return path

    pg.shot = shot  # type: ignore[attr-defined]
    yield pg
    context.close()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A real S3-speaking server (moto) on a free loopback port, shared by the whole run."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        need(False, "moto[server] for the S3 test server (pip install 'moto[server]')")
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the S3 test server, with the ``AWS_*`` variables set for it."""
    import boto3

    for var, value in {
        "AWS_ENDPOINT_URL": s3_server,
        "AWS_ACCESS_KEY_ID": "plinth-test",
        "AWS_SECRET_ACCESS_KEY": "plinth-test-secret",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }.items():
        monkeypatch.setenv(var, value)
    for var in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(var, raising=False)
    name = f"plinth-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=name)
    return name
