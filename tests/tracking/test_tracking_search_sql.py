"""Search statements run as SQL text on SQLite: the same rows as SQLAlchemy gives, errors translated.

Also: parsed filters are kept per process, and a search's DataFrame is the same embedded
and through the server (values, NaN and ±inf, column order and dtypes).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Column, Integer, MetaData, Table, bindparam, event, select
from sqlalchemy.exc import OperationalError

import plinth
from plinth.core.errors import InvalidInput
from plinth.core.platform import Platform
from plinth.tracking import search
from plinth.tracking import service as svc
from plinth.tracking.search_sql import Prepared
from plinth.tracking.tables import Run, RunParam


def _seed(platform: Platform) -> list[str]:
    c = platform.caller()
    ids = []
    for i in range(6):
        run = c.call(svc.start_run, experiment="sql", name=f"r{i}", tags={"team": "risk"} if i % 2 else None)
        c.call(
            svc.log_batch,
            run_id=run.id,
            metrics=[("auc", [0.5, math.nan, math.inf, -math.inf, 0.9, 0.1][i], 0, None)],
            params={"model": "rf" if i < 3 else "gbm", "seed": i},
        )
        ids.append(run.id)
    return ids


def _both_ways(platform: Platform, prepared: Prepared, params: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """Rows through the driver, then through SQLAlchemy (a cursor listener sends it that way)."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement)

    with platform.context() as ctx:
        direct = [tuple(r) for r in prepared.fetch(ctx.session.connection(), params)]
    event.listen(platform.db.engine, "before_cursor_execute", record)
    try:
        with platform.context() as ctx:
            observed = [tuple(r) for r in prepared.fetch(ctx.session.connection(), params)]
    finally:
        event.remove(platform.db.engine, "before_cursor_execute", record)
    assert any("FROM runs" in s or "FROM run_params" in s for s in seen)  # listeners still see the SQL
    return direct, observed


def test_lists_datetimes_and_constants_bind_as_sqlalchemy_binds_them(platform: Platform) -> None:
    ids = _seed(platform)
    with platform.context() as ctx:
        starts = dict(ctx.session.execute(select(Run.id, Run.start_time)).all())
    after = starts[ids[2]] - timedelta(microseconds=1)  # an aware datetime: bound as SQLite's text
    stmt = (
        select(Run.name, RunParam.value)
        .join(RunParam, RunParam.run_id == Run.id)
        .where(
            Run.id.in_(bindparam("ids", expanding=True)),
            RunParam.key == bindparam("key"),
            Run.start_time > bindparam("after", type_=Run.start_time.type),
            RunParam.run_id.in_(bindparam("ids", expanding=True)),  # the same list twice
            Run.name.concat("") != "",  # a constant of the statement's own
        )
        .order_by(Run.name)
        .limit(10)
    )
    prepared = Prepared(stmt)
    params = {"ids": ids[1:5], "key": "model", "after": after}
    direct, observed = _both_ways(platform, prepared, params)
    with platform.context() as ctx:
        expected = [tuple(r) for r in ctx.session.execute(stmt, params).all()]
    assert direct == observed == expected == [("r2", "rf"), ("r3", "gbm"), ("r4", "gbm")]
    # an empty list: SQLAlchemy's own empty-set form, no rows
    direct, observed = _both_ways(platform, prepared, dict(params, ids=[]))
    assert direct == observed == []
    assert datetime.now(UTC) > after  # the aware value was not changed in place
    assert params["ids"] == ids[1:5] and isinstance(params["after"], datetime)


def test_a_driver_error_is_sqlalchemys_error_and_the_session_rolls_back(platform: Platform) -> None:
    _seed(platform)
    missing = Table("no_such_table", MetaData(), Column("value", Integer))  # as if the schema were behind
    broken = Prepared(select(missing.c.value).where(missing.c.value == bindparam("x")))
    with pytest.raises(OperationalError, match="no such table: no_such_table"), platform.context() as ctx:
        broken.fetch(ctx.session.connection(), {"x": 1})
    prepared = Prepared(select(Run.name).where(Run.name == bindparam("name")))
    with platform.context() as ctx:  # the failed transaction left nothing behind; the next one works
        assert [tuple(r) for r in prepared.fetch(ctx.session.connection(), {"name": "r1"})] == [("r1",)]


def test_parsed_filters_are_kept_and_bad_ones_still_fail_every_time() -> None:
    text = "metrics.auc > 0.5 and params.model = 'rf'"
    assert search.parse_filter(text) is search.parse_filter(text)
    assert search.parse_order_by(["metrics.auc desc"]) == search.parse_order_by(["metrics.auc desc"])
    for _ in range(2):
        with pytest.raises(InvalidInput, match="position 12"):
            search.parse_filter("metrics.auc ? 1")
    assert search.parse_filter("   ") is None and search.parse_filter(None) is None
    with pytest.raises(InvalidInput, match="filter must be a string"):
        search.parse_filter(5)  # type: ignore[arg-type]
    for i in range(search._PARSED_MAX + 5):  # bounded: the cache starts over when full
        search.parse_filter(f"metrics.m{i} > 1")
    assert len(search._parsed) <= search._PARSED_MAX


def test_the_dataframe_is_the_same_embedded_and_through_the_server(remote_sdk) -> None:  # type: ignore[no-untyped-def]
    platform: Platform = remote_sdk.platform
    ids = _seed(platform)
    local = platform.caller()
    for kwargs in (
        {"filter": "params.model = 'rf'"},
        {"filter": "metrics.auc > 0.2 or params.seed IN ('1', '3')", "order_by": ["metrics.auc desc"]},
        {"order_by": ["params.seed"], "max_results": 4},
        {"filter": "params.model = 'none'"},
    ):
        embedded = local.call(svc.search_runs, experiments=["sql"], **kwargs).to_pandas()
        remote = plinth.search_runs("sql", **kwargs)
        pd.testing.assert_frame_equal(remote, embedded, check_dtype=True, check_exact=True)
    df = plinth.search_runs("sql", order_by=["params.seed"])
    assert list(df["run_id"]) == ids
    assert math.isnan(df.loc[1, "metrics.auc"]) and df.loc[2, "metrics.auc"] == math.inf
    assert df.loc[3, "metrics.auc"] == -math.inf and df["metrics.auc"].dtype == "float64"
    assert str(df["start_time"].dtype) == "datetime64[us, UTC]" and df["params.model"].dtype == "str"
    assert list(df["tags.team"].isna()) == [True, False] * 3 and df["parent_id"].isna().all()
    assert list(df.columns[-4:]) == ["metrics.auc", "params.model", "params.seed", "tags.team"]


def test_text_columns_are_built_as_pandas_would_infer_them() -> None:
    import numpy as np
    import pandas as pd

    from plinth.tracking.schemas import _text_column

    for values in (["rf", None, "gbm"], [None, None], [], ["é", "x" * 300], ["a", 3]):
        built = pd.DataFrame({"c": _text_column(list(values))})
        inferred = pd.DataFrame({"c": np.array(list(values), dtype=object)})
        assert built["c"].dtype == inferred["c"].dtype, values
        pd.testing.assert_frame_equal(built, inferred)


def test_time_columns_are_built_as_pandas_would_build_them() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    import pandas as pd
    from pydantic import TypeAdapter

    from plinth.tracking.schemas import _time_column

    now = datetime(2026, 11, 27, 17, 3, 4, 123456, tzinfo=UTC)
    from_json = TypeAdapter(list[datetime | None]).validate_json('["2026-11-27T17:03:04.123456Z", null]')
    cases = (
        [now, None, now + timedelta(microseconds=1)],
        [None, None],
        [],
        [datetime(1950, 1, 1, 0, 0, 0, 1, tzinfo=timezone(timedelta(hours=2))), now],  # before 1970, another offset
        from_json,  # pydantic's TzInfo(UTC), as the remote client parses it
        [now.replace(tzinfo=None), None],  # naive: pandas' own way
    )
    for values in cases:
        built = pd.DataFrame({"t": _time_column(list(values))})
        public = pd.DataFrame({"t": pd.DatetimeIndex(list(values), dtype="datetime64[us, UTC]")})
        assert str(built["t"].dtype) == "datetime64[us, UTC]", values
        pd.testing.assert_frame_equal(built, public, check_exact=True)
    assert _time_column([now])[0] == pd.Timestamp("2026-11-27T17:03:04.123456Z")
    assert not isinstance(_time_column([now]), pd.DatetimeIndex)  # aware values take the direct way


def test_a_search_frame_is_the_frame_the_public_constructor_builds() -> None:
    import math
    from datetime import UTC, datetime

    import numpy as np
    import pandas as pd

    from plinth.tracking.schemas import RunTable, _frame

    now = datetime(2026, 11, 27, 17, 3, 4, tzinfo=UTC)

    def table(n: int, **extra: object) -> RunTable:
        return RunTable(
            run_id=[f"r{i}" for i in range(n)],
            experiment_id=["e"] * n,
            name=[f"n{i}" for i in range(n)],
            status=["finished"] * n,
            parent_id=[None] * n,
            start_time=[now] * n,
            end_time=[None if i % 2 else now for i in range(n)],
            created_by=["me"] * n,
            **extra,  # type: ignore[arg-type]
        )

    tables = [
        table(0),
        table(3, metrics={"auc": [0.5, None, math.inf], "loss": [math.nan, 1.0, 2.0]}, params={"m": ["rf", None, "x"]}),
        table(2, params={"a": [None, None]}, tags={"t": ["é", "z"]}),
    ]
    for t in tables:
        built = t.to_pandas()
        public = pd.DataFrame({c: built[c].array for c in built.columns}, copy=False)
        pd.testing.assert_frame_equal(built, public, check_exact=True)
        assert list(built.columns) == list(public.columns) and built.index.equals(pd.RangeIndex(len(t)))
        built["extra"] = 1  # a frame users can change like any other
        assert built.shape == (len(t), len(public.columns) + 1)
    # columns of unequal length are refused as pandas refuses them
    with pytest.raises(ValueError, match="length"):
        _frame({"a": np.array([1.0]), "b": np.array([1.0, 2.0])}, 1)
