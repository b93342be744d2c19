"""The tracking services on both metadata backends (SQLite and PostgreSQL): the store contract."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import event, func, select

from plinth.core.errors import AlreadyExists, Conflict, InvalidInput, NotFound, PermissionDenied
from plinth.core.platform import Platform
from plinth.governance import service as gov
from plinth.governance.tables import User
from plinth.store.events import Event
from plinth.tracking import service as svc
from plinth.tracking.tables import Experiment, LatestMetric, MetricChunk, Run, RunParam, RunTag


def count(platform: Platform, model: type, *where: object) -> int:
    with platform.db.session() as session:
        q = select(func.count()).select_from(model)
        for w in where:
            q = q.where(w)  # type: ignore[arg-type]
        return int(session.execute(q).scalar_one())


def events(platform: Platform, action: str) -> list[Event]:
    with platform.db.session() as session:
        rows = list(session.execute(select(Event).where(Event.action == action).order_by(Event.seq)).scalars())
        session.expunge_all()
        return rows


def test_runs_params_metrics_tags_round_trip_with_nan_and_inf(any_platform: Platform) -> None:
    c = any_platform.caller()
    run = c.call(svc.start_run, experiment="churn", name="rf-1", tags={"team": "risk"})
    assert (run.status, run.experiment, run.project, run.name) == ("running", "churn", "default", "rf-1")
    result = c.call(
        svc.log_batch,
        run_id=run.id,
        params={"model": "rf", "depth": 5},
        tags={"stage": "dev"},
        metrics=[
            ("loss", math.nan, 0, 1000),
            ("loss", math.inf, 1, 1001),
            ("loss", -math.inf, 2, 1002),
            ("loss", 0.5, 3, 1003),
            ("auc", 0.91, 0, None),
            ("odd", math.nan, 7, 5),
        ],
    )
    assert (result.metrics, result.params, result.tags) == (6, 2, 1)
    detail = c.call(svc.get_run, run_id=run.id)
    assert detail.params == {"model": "rf", "depth": "5"}
    assert detail.tags == {"team": "risk", "stage": "dev"}
    assert detail.metrics["loss"].value == 0.5 and detail.metrics["loss"].step == 3
    assert math.isnan(detail.metrics["odd"].value) and detail.metrics["odd"].step == 7
    history = c.call(svc.metric_history, run_id=run.id, key="loss")
    assert history.steps == [0, 1, 2, 3] and history.timestamps == [1000, 1001, 1002, 1003]
    assert math.isnan(history.values[0]) and history.values[1:] == [math.inf, -math.inf, 0.5]
    # A later batch with older steps does not replace the latest value; the history merges in order.
    c.call(svc.log_batch, run_id=run.id, metrics=[("loss", 9.0, 1, 999), ("loss", 0.25, 10, 2000)])
    detail = c.call(svc.get_run, run_id=run.id)
    assert detail.metrics["loss"].value == 0.25 and detail.metrics["loss"].step == 10
    steps = c.call(svc.metric_history, run_id=run.id, key="loss").steps
    assert steps == [0, 1, 1, 2, 3, 10]
    thin = c.call(svc.metric_history, run_id=run.id, key="loss", max_points=3)
    assert thin.steps[0] == 0 and thin.steps[-1] == 10 and len(thin.steps) == 3
    ended = c.call(svc.end_run, run_id=run.id)
    assert ended.status == "finished" and ended.end_time is not None


def test_a_batch_is_one_bulk_insert_and_one_event(any_platform: Platform) -> None:
    c = any_platform.caller()
    run = c.call(svc.start_run, experiment="bulk")
    points = [(f"m{i % 5}", float(i), i // 5, 1_700_000_000_000 + i) for i in range(5000)]
    statements: list[str] = []
    engine = any_platform.db.engine

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement.split("(")[0].strip())

    event.listen(engine, "before_cursor_execute", record)
    try:
        c.call(svc.log_batch, run_id=run.id, metrics=points)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    chunk_inserts = [st for st in statements if st.startswith("INSERT INTO metric_chunks")]
    assert len(chunk_inserts) == 1, statements
    assert count(any_platform, MetricChunk, MetricChunk.run_id == run.id) == 5  # one chunk per key
    assert count(any_platform, LatestMetric, LatestMetric.run_id == run.id) == 5
    logged = events(any_platform, "run.log")
    assert len(logged) == 1 and '"points":5000' in logged[0].summary
    history = c.call(svc.metric_history, run_id=run.id, key="m3")
    assert len(history) == 1000 and history.values[-1] == 4998.0


def test_params_are_immutable_and_bad_input_writes_nothing(any_platform: Platform) -> None:
    c = any_platform.caller()
    run = c.call(svc.start_run, experiment="rules")
    c.call(svc.log_batch, run_id=run.id, params={"lr": 0.1})
    c.call(svc.log_batch, run_id=run.id, params={"lr": "0.1"})  # the same value again is fine
    before = (count(any_platform, Event), count(any_platform, RunParam), count(any_platform, MetricChunk))

    with pytest.raises(Conflict) as err:
        c.call(svc.log_batch, run_id=run.id, params={"lr": 0.2, "new": "x"}, metrics=[("m", 1.0, 0, None)])
    assert err.value.message.startswith("param 'lr' of run")
    assert "is already '0.1'; params are immutable once logged (got '0.2')" in err.value.message
    with pytest.raises(InvalidInput, match=r"metric 'acc' must be a number, got 'high' \(str\)") as bad:
        c.call(svc.log_batch, run_id=run.id, metrics=[("ok", 1.0, 0, None), ("acc", "high", 1, None)])
    assert bad.value.details == {"field": "metrics.acc"}
    with pytest.raises(InvalidInput, match="metric 'flag' must be a number, got True"):
        c.call(svc.log_batch, run_id=run.id, metrics=[("flag", True, 0, None)])
    with pytest.raises(InvalidInput, match="param 'blob' is 6001 characters long; the limit is 6000"):
        c.call(svc.log_batch, run_id=run.id, params={"small": "x", "blob": "x" * 6001})
    with pytest.raises(InvalidInput, match="metric key '../up' may not"):
        c.call(svc.log_batch, run_id=run.id, metrics=[("../up", 1.0, 0, None)])
    with pytest.raises(InvalidInput, match="param key 'a\\\\nb' is not valid"):
        c.call(svc.log_batch, run_id=run.id, params={"a\nb": 1})
    with pytest.raises(InvalidInput, match="step of metric 'm' must be an integer, got 'one'"):
        c.call(svc.log_batch, run_id=run.id, metrics=[("m", 1.0, "one", None)])
    with pytest.raises(InvalidInput, match=r"a metric must be \[key, value, step, timestamp_ms\]"):
        c.call(svc.log_batch, run_id=run.id, metrics=[("m", 1.0)])
    with pytest.raises(NotFound, match="run 'nope' does not exist"):
        c.call(svc.log_batch, run_id="nope", metrics=[("m", 1.0, 0, None)])
    with pytest.raises(NotFound, match="run 'nope' does not exist"):
        c.call(svc.get_run, run_id="nope")
    assert (count(any_platform, Event), count(any_platform, RunParam), count(any_platform, MetricChunk)) == before
    assert c.call(svc.get_run, run_id=run.id).params == {"lr": "0.1"}


def test_ended_and_deleted_runs_take_nothing(any_platform: Platform) -> None:
    c = any_platform.caller()
    run = c.call(svc.start_run, experiment="life")
    c.call(svc.end_run, run_id=run.id, status="failed", error="ValueError: boom")
    before = count(any_platform, Event)
    with pytest.raises(Conflict, match=f"run '{run.id}' is failed; only a running run takes"):
        c.call(svc.log_batch, run_id=run.id, metrics=[("m", 1.0, 0, None)])
    with pytest.raises(Conflict, match=f"run '{run.id}' is failed; only a running run takes"):
        c.call(svc.put_run_artifact, run_id=run.id, name="a.txt", content=b"x")
    with pytest.raises(Conflict, match="is already failed"):
        c.call(svc.end_run, run_id=run.id)
    with pytest.raises(InvalidInput, match="status 'done' is not one of finished, failed, killed"):
        c.call(svc.end_run, run_id=run.id, status="done")
    assert count(any_platform, Event) == before
    assert c.call(svc.get_run, run_id=run.id).error == "ValueError: boom"
    c.call(svc.delete_run, run_id=run.id)
    c.call(svc.delete_run, run_id=run.id)  # again: nothing more happens
    assert len(events(any_platform, "run.delete")) == 1
    assert len(c.call(svc.search_runs, experiments=["life"])) == 0
    assert len(c.call(svc.search_runs, experiments=["life"], include_deleted=True)) == 1


def _seed(platform: Platform) -> dict[str, str]:
    c = platform.caller()
    ids = {}
    rows = [
        ("a", "rf", "risk", 0.95, "finished"),
        ("b", "rf", "risk", 0.85, "finished"),
        ("c", "gbm", "risk", 0.97, "failed"),
        ("d", "RF", "growth", 0.99, "finished"),
        ("e", "lr", "growth", math.nan, "finished"),
        ("f", "lr", "risk", None, "running"),
    ]
    for name, model, team, auc, status in rows:
        run = c.call(svc.start_run, experiment="search", name=name, tags={"team": team})
        metrics = [("auc", auc, 0, None)] if auc is not None else None
        c.call(svc.log_batch, run_id=run.id, params={"model": model}, metrics=metrics)
        if status != "running":
            c.call(svc.end_run, run_id=run.id, status=status)
        ids[name] = run.id
    other = c.call(svc.start_run, experiment="elsewhere", name="z")
    c.call(svc.log_batch, run_id=other.id, params={"model": "rf"}, metrics=[("auc", 1.0, 0, None)])
    return ids


def test_search_filters_orders_and_pages(any_platform: Platform) -> None:
    _seed(any_platform)
    c = any_platform.caller()

    def names(**kw: object) -> list[str]:
        return c.call(svc.search_runs, experiments=["search"], **kw).name  # type: ignore[no-any-return]

    assert names(
        filter="metrics.auc > 0.9 and params.model = 'rf' and tags.team = 'risk' and attributes.status = 'finished'"
    ) == ["a"]
    assert names(filter="metrics.auc > 0.9", order_by=["metrics.auc desc"]) == ["d", "c", "a"]
    # NaN never passes a comparison, on SQLite as on PostgreSQL; it sorts with the missing, last.
    assert names(filter="metrics.auc < 0.9") == ["b"]
    assert names(order_by=["metrics.auc desc"])[:4] == ["d", "c", "a", "b"]
    assert set(names(order_by=["metrics.auc desc"])[4:]) == {"e", "f"}
    assert names(order_by=["metrics.auc asc"])[:4] == ["b", "a", "c", "d"]
    assert sorted(names(filter="params.model LIKE 'r%'")) == ["a", "b"]  # LIKE is case-sensitive
    assert sorted(names(filter="params.model ILIKE 'r%'")) == ["a", "b", "d"]
    assert sorted(names(filter="params.model IN ('gbm', 'lr')")) == ["c", "e", "f"]
    assert sorted(names(filter="params.model NOT IN ('gbm', 'lr')")) == ["a", "b", "d"]
    assert sorted(names(filter="status = 'failed' or tags.team = 'growth'")) == ["c", "d", "e"]
    assert sorted(names(filter="not (tags.team = 'risk')")) == ["d", "e"]
    assert sorted(names(filter="attributes.status != 'finished'")) == ["c", "f"]
    assert names(filter="attributes.start_time > 0", order_by=["attributes.name"]) == list("abcdef")
    assert names(filter="attributes.start_time < '2000-01-01'") == []
    assert sorted(names(filter="params.model = 'rf'")) == ["a", "b"]
    both = c.call(svc.search_runs, filter="params.model = 'rf'")  # the whole project
    assert sorted(both.name) == ["a", "b", "z"]
    first = c.call(svc.search_runs, experiments=["search"], order_by=["attributes.name"], max_results=4)
    assert first.name == ["a", "b", "c", "d"] and first.next_page_token == "4"
    rest = c.call(svc.search_runs, experiments=["search"], order_by=["attributes.name"], page_token="4")
    assert rest.name == ["e", "f"] and rest.next_page_token is None
    # Ordered by a metric: the runs that have it first (by value), then the rest newest first.
    pages = []
    token = None
    while True:
        page = c.call(
            svc.search_runs, experiments=["search"], order_by=["metrics.auc desc"], max_results=3, page_token=token
        )
        pages.append(page.name)
        token = page.next_page_token
        if token is None:
            break
    assert pages == [["d", "c", "a"], ["b", "f", "e"]]
    first = c.call(svc.search_runs, experiments=["search"], order_by=["metrics.auc desc"], max_results=5)
    assert first.name == ["d", "c", "a", "b", "f"] and first.next_page_token == "5"
    assert c.call(svc.search_runs, experiments=["search"], order_by=["metrics.auc"], page_token="5").name == ["e"]
    assert c.call(svc.search_runs, experiments=["search"], order_by=["metrics.auc"], page_token="9").name == []
    filtered = c.call(svc.search_runs, experiments=["search"], filter="tags.team = 'risk'", order_by=["metrics.auc"])
    assert filtered.name == ["b", "a", "c", "f"]
    table = c.call(svc.search_runs, experiments=["search"], order_by=["attributes.name"])
    assert table.params["model"] == ["rf", "rf", "gbm", "RF", "lr", "lr"]
    assert table.metrics["auc"][:4] == [0.95, 0.85, 0.97, 0.99] and table.metrics["auc"][4:] == [None, None]
    assert table.tags["team"][3] == "growth"
    with pytest.raises(NotFound, match="experiment 'nope' does not exist in project 'default'"):
        c.call(svc.search_runs, experiments=["nope"])
    with pytest.raises(InvalidInput, match="invalid filter at position 12"):
        c.call(svc.search_runs, filter="metrics.auc ! 3")
    with pytest.raises(InvalidInput, match="page_token 'abc'"):
        c.call(svc.search_runs, page_token="abc")


def test_search_issues_a_bounded_number_of_queries(platform: Platform) -> None:
    c = platform.caller()
    for i in range(40):
        run = c.call(svc.start_run, experiment="many", name=f"r{i}")
        c.call(svc.log_batch, run_id=run.id, params={"p": i, "q": "x"}, metrics=[("m", float(i), 0, None)])
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(platform.db.engine, "before_cursor_execute", record)
    try:
        table = c.call(svc.search_runs, experiments=["many"], order_by=["metrics.m desc"])
    finally:
        event.remove(platform.db.engine, "before_cursor_execute", record)
    assert len(table) == 40 and table.name[0] == "r39"
    assert len(statements) <= 7, statements  # project, experiments, the page, metrics, params, tags


def test_compare_experiments_nested_runs_and_histories(any_platform: Platform) -> None:
    c = any_platform.caller()
    assert c.call(svc.create_experiment, name="cmp", description="compare").description == "compare"
    with pytest.raises(AlreadyExists, match="experiment 'cmp' already exists in project 'default'"):
        c.call(svc.create_experiment, name="cmp")
    with pytest.raises(InvalidInput, match="experiment '../x' is not valid"):
        c.call(svc.set_experiment, name="../x")
    parent = c.call(svc.start_run, experiment="cmp", name="parent")
    a = c.call(svc.start_run, experiment="cmp", name="a", parent_id=parent.id)
    b = c.call(svc.start_run, experiment="cmp", name="b", parent_id=parent.id)
    c.call(svc.log_batch, run_id=a.id, params={"lr": 0.1, "depth": 3}, metrics=[("auc", 0.8, 0, None)])
    c.call(
        svc.log_batch,
        run_id=b.id,
        params={"lr": 0.2, "depth": 3},
        metrics=[("auc", 0.9, 0, None), ("f1", 0.7, 0, None)],
    )
    cmp = c.call(svc.compare_runs, run_ids=[a.id, b.id])
    assert cmp.params_differ == ["lr"]
    assert cmp.params == {"depth": {a.id: "3", b.id: "3"}, "lr": {a.id: "0.1", b.id: "0.2"}}
    assert cmp.metrics == {"auc": {a.id: 0.8, b.id: 0.9}, "f1": {a.id: None, b.id: 0.7}}
    assert [r.name for r in c.call(svc.list_child_runs, run_id=parent.id)] == ["a", "b"]
    histories = c.call(svc.metric_histories, run_ids=[a.id, b.id], keys=["auc"])
    assert sorted((h.run_id, h.values[0]) for h in histories) == sorted([(a.id, 0.8), (b.id, 0.9)])
    exps = {e.name: e for e in c.call(svc.list_experiments)}
    assert exps["cmp"].run_count == 3 and exps["cmp"].last_run_at is not None
    assert c.call(svc.get_experiment, name="cmp").run_count == 3
    with pytest.raises(NotFound, match="run 'x' does not exist"):
        c.call(svc.start_run, experiment="cmp", parent_id="x")
    with pytest.raises(NotFound, match=f"run '{a.id}' has no metric 'nope'"):
        c.call(svc.metric_history, run_id=a.id, key="nope")
    assert count(any_platform, Experiment) == 1
    assert {e.action for e in events(any_platform, "run.start")} == {"run.start"}
    assert len(events(any_platform, "run.start")) == 3


def test_artifacts_of_a_run_are_checked_by_name_and_state(any_platform: Platform) -> None:
    c = any_platform.caller()
    run = c.call(svc.start_run, experiment="files")
    info = c.call(svc.put_run_artifact, run_id=run.id, name="model/weights.bin", content=b"123")
    assert info.owner == f"runs:/{run.id}" and info.size == 3
    for bad in ("../other-run/x", "/etc/passwd", "a/../../b", "%2e%2e/x"):
        with pytest.raises(InvalidInput, match="is refused"):
            c.call(svc.put_run_artifact, run_id=run.id, name=bad, content=b"x")
    from plinth.artifacts.tables import Artifact

    assert count(any_platform, Artifact) == 1


def test_viewers_read_and_editors_write_in_the_runs_project(platform: Platform) -> None:
    admin = platform.caller()
    admin.call(gov.create_project, name="risk")
    admin.call(gov.create_user, name="vic")
    admin.call(gov.create_user, name="eve")
    risk = platform.caller(project="risk")
    risk.call(gov.grant_role, user="vic", role="viewer")
    risk.call(gov.grant_role, user="eve", role="editor")
    run = risk.call(svc.start_run, experiment="e1")

    def actor(name: str):  # type: ignore[no-untyped-def]
        with platform.db.session() as session:
            return gov.actor_for(session, session.execute(select(User).where(User.name == name)).scalar_one())

    vic = platform.caller(actor("vic"))  # acting in "default": the run's project decides
    assert vic.call(svc.get_run, run_id=run.id).project == "risk"
    before = count(platform, Event)
    with pytest.raises(PermissionDenied, match="'vic' is a viewer in project 'risk'; writing needs editor"):
        vic.call(svc.log_batch, run_id=run.id, params={"x": 1})
    with pytest.raises(PermissionDenied):
        platform.caller(actor("vic"), "risk").call(svc.start_run, experiment="e1")
    assert count(platform, Event) == before
    eve = platform.caller(actor("eve"))
    eve.call(svc.log_batch, run_id=run.id, params={"x": 1})
    assert count(platform, RunTag) == 0 and count(platform, Run) == 1
