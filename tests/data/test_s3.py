"""Datasets on an S3 table store (a real moto S3 server on loopback): Delta Lake's
commits, time travel, profiles and validation work the same as on a folder."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from datasets_support import customers

import plinth
from plinth.core.errors import Conflict


@pytest.fixture
def s3_tables(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A moto S3 server in its own process (deltalake's Rust client would deadlock with
    an in-process server thread over the GIL), and PLINTH_TABLES_URL pointing at it."""
    import boto3

    from plinth.client.backend import reset_backend
    from tests_support import free_port_for_subprocess

    server = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    assert Path(server).exists(), "moto_server is missing: pip install -e '.[dev]' installs moto[server]"
    port = free_port_for_subprocess()
    proc = subprocess.Popen(
        [server, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        for key, value in {
            "AWS_ENDPOINT_URL": url,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(key, value)
        boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(Bucket="plinth-tables")
        monkeypatch.setenv("PLINTH_TABLES_URL", "s3://plinth-tables/team")
        reset_backend()
        yield url
        reset_backend()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.s3
def test_versions_reads_and_quality_on_s3(s3_tables) -> None:  # type: ignore[no-untyped-def]
    from plinth.data import expect

    first = plinth.data.ingest("churn", customers(300), tags=["gold"])
    assert plinth.data.get_dataset("churn").dataset.location.startswith("s3://plinth-tables/team/")
    plinth.data.ingest("churn", customers(50, start=1000), expectations=[expect.unique("customer_id")])
    assert first.version.has_profile
    assert plinth.data.read("churn@gold").num_rows == 300
    assert plinth.data.read("churn", columns=["plan"], filter=[("customer_id", ">=", 1000)]).num_rows == 50
    assert plinth.data.profile("churn@2").row_count == 350
    assert not plinth.data.validate("churn", [expect.between("tenure", max=10)]).success
    with pytest.raises(Conflict):
        plinth.data.ingest("churn", customers(5)[["customer_id"]])
    assert [v.version for v in plinth.data.list_versions("churn")] == [2, 1]
