"""The data area through its other doors: the remote SDK and REST over a live server,
the metadata on SQLite and PostgreSQL, and the CLI as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from datasets_support import customers, state_of, write_csv

import plinth
from plinth.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from plinth.data import expect


def test_remote_sdk_ingest_read_split_and_quality(remote_sdk, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    df = customers(3000)
    csv = write_csv(tmp_path / "churn.csv", df)
    seen: list[int] = []
    first = plinth.data.ingest("churn", csv, tags=["gold"], progress=seen.append)
    assert first.version.ref == "datasets:/churn/1" and first.version.source == "csv file churn.csv"
    assert seen and seen[-1] == csv.stat().st_size  # bytes uploaded
    second = plinth.data.ingest("churn", customers(100, start=5000), expectations=[expect.unique("customer_id")])
    assert second.version.row_count == 3100 and second.validation.success  # type: ignore[union-attr]
    folder = tmp_path / "parts"
    folder.mkdir()
    write_csv(folder / "a.csv", customers(10, start=9000))
    assert plinth.data.ingest("churn", folder).version.rows_written == 10
    t = plinth.data.read("datasets:/churn@gold", columns=["customer_id", "plan"], filter=[("plan", "=", "pro")])
    assert t.num_rows == (df.plan == "pro").sum() and t.column_names == ["customer_id", "plan"]
    assert sum(b.num_rows for b in plinth.data.read_batches("churn")) == 3110
    parts = plinth.data.split("churn@1", key="customer_id", train=0.8)
    assert parts["train"].num_rows + parts["test"].num_rows == 3000
    assert plinth.data.profile("churn@1").row_count == 3000
    result = plinth.data.validate("churn", [expect.between("tenure", min=1, max=10)])
    assert not result.success and result.results[0].sample
    assert plinth.data.quality_results("churn", version=3)[0].id == result.id
    assert plinth.data.diff("churn@1", "churn@3").row_count_change == 110
    assert [v.version for v in plinth.data.list_versions("churn")] == [3, 2, 1]
    assert plinth.data.tag("churn", "silver", version=2).tags == ["silver"]
    assert plinth.data.get_dataset("churn").tags == {"gold": 1, "silver": 2}
    plinth.data.untag("churn", "silver")
    with plinth.start_run(name="fit", capture_environment=False, system_metrics=False) as run:
        plinth.data.read("churn@gold", columns=["tenure"])
    graph = plinth.data.lineage(f"runs:/{run.id}", direction="upstream")
    assert [e.src for e in graph.edges] == ["datasets:/churn/1"]


def test_remote_errors_keep_their_type_message_and_write_nothing(remote_sdk, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    platform = remote_sdk.platform
    plinth.data.ingest("churn", write_csv(tmp_path / "good.csv", customers(10)[["customer_id", "tenure"]]))
    before = state_of(platform, "churn")
    lines = ["customer_id,tenure"] + [f"{i},{i % 50}" for i in range(40_000)]
    lines[35_001] = "35000,forty"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidInput) as err:
        plinth.data.ingest("churn", bad)
    assert err.value.message.startswith('bad.csv: line 35002: Error when converting column "tenure"')
    assert err.value.details["line"] == 35002
    with pytest.raises(Conflict, match="column 'tenure' dropped"):
        plinth.data.ingest("churn", customers(3)[["customer_id"]])
    fake = tmp_path / "fake.parquet"
    fake.write_text("a,b\n1,2\n")
    with pytest.raises(InvalidInput, match="fake.parquet is not a Parquet file: it looks like text"):
        plinth.data.ingest("churn", fake)
    with pytest.raises(NotFound, match="dataset 'churn' has no version 9 \\(latest is 1\\)"):
        plinth.data.read("churn@9")
    assert state_of(platform, "churn") == before
    quarantined = plinth.data.ingest("churn", bad, on_bad_lines="quarantine")
    assert quarantined.quarantined == 1
    assert plinth.data.quarantine("churn").to_pylist()[0]["file"] == "bad.csv"


def test_rest_routes_answer_arrow_and_json_and_check_roles(live_server, admin_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    csv = write_csv(tmp_path / "c.csv", customers(50)).read_bytes()
    r = admin_client.put(
        "/api/v1/dataset-versions/content", params={"name": "churn", "format": "csv", "filename": "c.csv"}, content=csv
    )
    assert r.status_code == 201 and r.json()["version"]["ref"] == "datasets:/churn/1"
    r = admin_client.get("/api/v1/dataset-versions/content", params={"ref": "datasets:/churn@1", "columns": ["tenure"]})
    assert r.headers["content-type"] == "application/vnd.apache.arrow.stream"
    assert r.headers["x-plinth-dataset-version"] == "datasets:/churn/1"
    table = pa.ipc.open_stream(r.content).read_all()
    assert table.num_rows == 50 and table.column_names == ["tenure"]
    assert admin_client.get("/api/v1/datasets/churn/versions").json()[0]["row_count"] == 50
    r = admin_client.put("/api/v1/dataset-versions/content", params={"name": "churn", "format": "xlsx"}, content=b"x")
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("format must be one of")
    r = admin_client.get("/api/v1/dataset-versions/content", params={"ref": "churn", "filter": "not json"})
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "filter"
    admin_client.post("/api/v1/users", json={"name": "vic"})
    admin_client.post("/api/v1/members?project=default", json={"user": "vic", "role": "viewer"})
    token = admin_client.post("/api/v1/tokens", json={"name": "t", "user": "vic"}).json()["token"]
    with live_server.client(token) as vic:
        assert vic.get("/api/v1/datasets").json()[0]["name"] == "churn"
        r = vic.put("/api/v1/dataset-versions/content", params={"name": "churn", "format": "csv"}, content=csv)
        assert r.status_code == 403 and "writing needs editor" in r.json()["error"]["message"]
        r = vic.post("/api/v1/datasets/churn/tags", json={"tag": "x"})
        assert r.status_code == 403
    assert state_of(live_server.platform, "churn")["versions"] == 1


def test_metadata_on_sqlite_and_postgresql(any_platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from plinth.data import service as svc
    from plinth.data.ingestion import ingest
    from plinth.data.lineage_graph import lineage, record_lineage

    caller = any_platform.caller()
    first = caller.call(
        ingest, name="churn", source=customers(100), tags=["gold"], expectations=[expect.unique("customer_id")]
    )
    caller.call(ingest, name="churn", source=write_csv(tmp_path / "c.csv", customers(20, start=500)))
    assert first.validation.success  # type: ignore[union-attr]
    versions = caller.call(svc.list_versions, name="churn")
    assert [(v.version, v.row_count, v.tags, v.has_profile) for v in versions] == [
        (2, 120, [], True),
        (1, 100, ["gold"], True),
    ]
    assert versions[1].quality is True
    info, reader = caller.call(svc.open_read, ref="churn@gold", columns=["customer_id"])
    assert info.version == 1 and reader.read_all().num_rows == 100
    before = state_of(any_platform, "churn")
    with pytest.raises(Conflict):
        caller.call(ingest, name="churn", source=customers(5)[["customer_id"]])
    with pytest.raises(InvalidInput, match="expectations failed"):
        caller.call(ingest, name="churn", source=customers(5), expectations=[expect.unique("customer_id")])
    assert state_of(any_platform, "churn") == before
    caller.call(record_lineage, src="datasets:/churn/1", dst="models:/m/1")
    caller.call(record_lineage, src="datasets:/churn/1", dst="models:/m/1")  # idempotent
    assert len(caller.call(lineage, ref="models:/m/1", direction="upstream").edges) == 1
    assert caller.call(svc.profile, ref="churn@2").row_count == 120
    with pytest.raises(PermissionDenied):
        from plinth.core.context import Actor

        any_platform.caller(Actor(name="nobody")).call(ingest, name="churn", source=customers(2))


def _plinth(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLINTH_")}
    env["PLINTH_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "plinth.cli.main", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_cli_ingest_versions_profile_validate_diff_read(tmp_path: Path) -> None:
    home = tmp_path / "home"
    csv = write_csv(tmp_path / "churn.csv", customers(100))
    out = _plinth(home, "data", "ingest", "churn", str(csv), "--tag", "gold", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["version"]["ref"] == "datasets:/churn/1"
    out = _plinth(home, "data", "ingest", "churn", str(write_csv(tmp_path / "more.csv", customers(5, start=1000))))
    assert out.returncode == 0 and out.stdout.startswith("datasets:/churn/2: 5 rows written, 105 in the table")
    suite = tmp_path / "suite.yaml"
    suite.write_text("name: s\nexpectations:\n  - not_null: customer_id\n  - between: {column: tenure, min: 50}\n")
    out = _plinth(home, "data", "validate", "churn@gold", str(suite), "--json")
    assert out.returncode == 1 and json.loads(out.stdout)["success"] is False
    out = _plinth(home, "data", "diff", "churn@1", "churn@2")
    assert out.returncode == 0 and "rows 100 -> 105 (+5)" in out.stdout and "schema: unchanged" in out.stdout
    out = _plinth(home, "data", "versions", "churn", "--json")
    assert [v["version"] for v in json.loads(out.stdout)] == [2, 1]
    out = _plinth(home, "data", "profile", "churn@1", "--json")
    assert json.loads(out.stdout)["row_count"] == 100
    out = _plinth(home, "data", "read", "churn@1", "--columns", "customer_id,plan", "--limit", "3", "--json")
    assert [list(r) for r in json.loads(out.stdout)] == [["customer_id", "plan"]] * 3
    out = _plinth(home, "data", "read", "churn@7")
    assert out.returncode == 4 and out.stderr == "error: dataset 'churn' has no version 7 (latest is 2)\n"
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,tenure\n1,2\n2,3,4\n")
    out = _plinth(home, "data", "ingest", "other", str(bad), "--json")
    assert out.returncode == 2 and out.stderr.startswith(f"error: {bad}: line 3:")
