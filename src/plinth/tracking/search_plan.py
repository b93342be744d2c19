"""How ``search_runs`` finds its page: the plan, and statements built once per filter shape.

* **Statements per shape.** Building and compiling a SQLAlchemy statement costs more than
  running it over a few thousand runs. A search's statements depend only on the shape of
  its filter and order (entities, attributes, operators), the kind of scope and the plan;
  keys, values, scope ids and limits are bound parameters. Each shape is built once per
  process and run again with the next search's values (never values in the SQL text).
  On SQLite each runs as SQL text compiled once, on the driver's connection (see
  ``search_sql``): SQLAlchemy's work per execution costs as much as SQLite's here.
* **Plans.** "scan" walks the runs in scope in the page's order and probes each against
  the filter (it stops after a page of matches). "index" starts from the range of the
  ``latest_metrics (key, value, run_id)`` index that a metric comparison in the filter's
  top-level ``and`` selects, looks those runs up by id and sorts them. Both run the whole
  filter, so they return the same rows. "auto" on SQLite counts each candidate range (up
  to ``DRIVE_CAP``) and, where the smallest could win, the runs in scope (see
  ``_choose_driver``); on PostgreSQL it leaves the choice to the planner, which makes it
  from its statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Double, String, Text, and_, bindparam, cast, func, literal_column, null, select, type_coerce
from sqlalchemy import union_all as _union_all

from plinth.tracking.search import (
    Binder,
    FieldRef,
    Node,
    bind_driver_values,
    bind_filter_values,
    compile_filter,
    compile_order_by,
    driver_query,
    filter_shape,
    index_drivers,
)
from plinth.tracking.search_sql import Prepared
from plinth.tracking.tables import LatestMetric, Run, RunParam, RunTag

__all__ = ["DRIVE_CAP", "PLANS", "SCOPE_CAP", "cached_statement", "find_page", "page_values"]

PLANS = ("auto", "scan", "index")
# Most index entries a probe counts: above it a metric comparison is not selective enough to drive.
DRIVE_CAP = 20_000
# Most runs in scope a probe counts (a count of the scope's index, well under a walk's cost).
SCOPE_CAP = 200_000
_CACHE_MAX = 512
_statements: dict[tuple[Any, ...], Prepared] = {}

COLUMNS_OUT = (
    Run.id,
    Run.experiment_id,
    Run.name,
    Run.status,
    Run.parent_id,
    type_coerce(Run.start_time, String),  # parsed by the caller, far faster than per-row processing
    type_coerce(Run.end_time, String),
    Run.created_by,
)


def cached_statement(key: tuple[Any, ...], build: Callable[[], Any]) -> Prepared:
    """The statement built by ``build`` for ``key``, built once per process (bound parameters only)."""
    stmt = _statements.get(key)
    if stmt is None:
        if len(_statements) >= _CACHE_MAX:
            _statements.clear()
        stmt = _statements[key] = Prepared(build())
    return stmt


class _Search:
    """One search's parts: its values as bound parameters, and the shape its statements share."""

    def __init__(
        self,
        node: Node | None,
        order: list[tuple[FieldRef, bool]],
        scope_column: str,
        scope_ids: list[str],
        include_deleted: bool,
        sqlite: bool,
    ) -> None:
        self.node, self.order, self.sqlite = node, order, sqlite
        self.scope_column, self.single = scope_column, len(scope_ids) == 1
        self.include_deleted = include_deleted
        self.params: dict[str, Any] = {"scope": scope_ids[0] if self.single else scope_ids}
        values = Binder("v", build=False)
        bind_filter_values(node, sqlite=sqlite, bind=values)
        self.params.update(values.values)
        # the keys compile_order_by binds, in its order
        keys = [f.key for f, _ in order if f.entity != "attributes"]
        self.params.update({f"o{i}": key for i, key in enumerate(keys)})
        self.drivers = index_drivers(node)
        self.shape = (
            sqlite,
            scope_column,
            self.single,
            include_deleted,
            filter_shape(node, sqlite=sqlite),
            tuple((f.entity, f.key if f.entity == "attributes" else None, d) for f, d in order),
        )

    def driver_params(self, i: int) -> dict[str, Any]:
        values = Binder(f"d{i}_", build=False)
        bind_driver_values(self.drivers[i], sqlite=self.sqlite, bind=values)
        return values.values

    def _driver(self, i: int) -> Any:
        return driver_query(self.drivers[i], sqlite=self.sqlite, bind=Binder(f"d{i}_"))

    def where(self, driver: int | None) -> list[Any]:
        """The conditions on ``Run`` (built fresh: call only inside a ``cached_statement`` build)."""
        column: Any = getattr(Run, self.scope_column)
        if driver is not None and self.sqlite:
            # keep SQLite's planner off the scope's index: it would walk every run in scope
            column = column.concat("")
        out = [_in_scope(column, self.single)]
        if not self.include_deleted:
            out.append(Run.deleted_at.is_(None))
        chosen = None if driver is None else self.drivers[driver]
        condition = compile_filter(self.node, sqlite=self.sqlite, bind=Binder("v"), driver=chosen)
        if condition is not None:
            out.append(condition)
        return out

    def driver_counts(self) -> Prepared:
        """The entries of each driver's index range, each counted up to ``DRIVE_CAP``."""

        def build() -> Any:
            return select(*(_count_upto(self._driver(i), DRIVE_CAP) for i in range(len(self.drivers))))

        return cached_statement(("drivers", *self.shape), build)

    def scope_count(self) -> Prepared:
        """The runs in scope, counted up to the ``upto`` parameter."""

        def build() -> Any:
            scope = select(Run.id).where(_in_scope(getattr(Run, self.scope_column), self.single))
            return select(_count_upto(scope, bindparam("upto")))

        return cached_statement(("scope", self.scope_column, self.single), build)


def _in_scope(column: Any, single: bool) -> Any:
    """``column`` in the ``scope`` parameter: an equality for one id, so an index serves the order."""
    return column == bindparam("scope") if single else column.in_(bindparam("scope", expanding=True))


def _count_upto(q: Any, limit: Any) -> Any:
    return select(func.count()).select_from(q.limit(limit).subquery()).scalar_subquery()


def _choose_driver(conn: Any, search: _Search, plan: str, need: int) -> int | None:
    """The driver to start from, or ``None`` to walk the runs in scope.

    Starting from a range of ``n`` index entries costs about ``n`` lookups and a sort of
    the matches. A walk that stops after ``need`` matches in the default order (or a
    metric's) visits about ``need / selectivity`` runs, at least ``need * scope / n`` if the
    range's share of the runs is the filter's (the filter passes no more than its range);
    other orders visit every run in scope. So start from the range when the scope holds at
    least ``2 * n`` runs (``2 * n * n / need`` for a walk that stops early): one count of the
    ranges, then one count of the scope up to that number, never past ``SCOPE_CAP``.
    """
    if plan == "scan" or not search.drivers or (plan == "auto" and not search.sqlite):
        # PostgreSQL's planner makes this choice itself, from its statistics (the EXISTS probes
        # become semi-joins it can start from the index): no counts needed there.
        return None
    params = dict(search.params)
    for i in range(len(search.drivers)):
        params.update(search.driver_params(i))
    counts = search.driver_counts().fetch(conn, params)[0]
    best = min(range(len(counts)), key=counts.__getitem__)
    if plan == "index":
        return best
    n = counts[best]
    if n >= DRIVE_CAP:
        return None
    stops_early = not search.order or (len(search.order) == 1 and search.order[0][0].entity == "metrics")
    wanted = max(2 * n, 2 * n * n // need if stops_early else 0)
    if wanted > SCOPE_CAP:
        return None
    if wanted == 0:
        return best
    scope_n = search.scope_count().fetch(conn, dict(search.params, upto=wanted))[0][0]
    return best if scope_n >= wanted else None


def find_page(
    conn: Any,
    node: Node | None,
    order: list[tuple[FieldRef, bool]],
    scope_column: str,
    scope_ids: list[str],
    include_deleted: bool,
    sqlite: bool,
    plan: str,
    offset: int,
    limit: int,
) -> list[Any]:
    """Rows of ``COLUMNS_OUT`` for runs ``offset`` to ``offset + limit`` of the search, in order."""
    search = _Search(node, order, scope_column, scope_ids, include_deleted, sqlite)
    driver = _choose_driver(conn, search, plan, offset + limit)
    params = dict(search.params, offset=offset, limit=limit)
    shape = (*search.shape, driver)
    if len(order) == 1 and order[0][0].entity == "metrics":
        return _page_by_metric(conn, search, driver, shape, params, order[0][1], offset, limit)

    def build() -> Any:
        q = select(*COLUMNS_OUT).where(*search.where(driver))
        joins, order_exprs = compile_order_by(order, bind=Binder("o"))
        for target, on in joins:
            q = q.outerjoin(target, on)
        return (
            q.order_by(*order_exprs, Run.start_time.desc(), Run.id.desc())
            .offset(bindparam("offset"))
            .limit(bindparam("limit"))
        )

    return cached_statement(("page", *shape), build).fetch(conn, params)


def _page_by_metric(
    conn: Any,
    search: _Search,
    driver: int | None,
    shape: tuple[Any, ...],
    params: dict[str, Any],
    descending: bool,
    offset: int,
    limit: int,
) -> list[Any]:
    """A page ordered by one metric, in two index-ordered parts: the runs that have the metric
    (walking ``latest_metrics`` by key and value, ties by run id), then those without it (or
    NaN) newest first. Neither part sorts all runs, so a first page over millions is quick."""
    has_value = and_(LatestMetric.key == bindparam("o0"), LatestMetric.value.is_not(None))
    order_key: Any = LatestMetric.key
    if driver is not None and search.sqlite:
        # from the driver's few runs to their metric by primary key, not along the metric's whole index
        order_key = order_key.concat("")
    in_order = and_(order_key == bindparam("o0"), LatestMetric.value.is_not(None))

    def first() -> Any:
        value_order = LatestMetric.value.desc() if descending else LatestMetric.value.asc()
        tie_order = LatestMetric.run_id.desc() if descending else LatestMetric.run_id.asc()
        return (
            select(*COLUMNS_OUT)
            .select_from(LatestMetric)
            .join(Run, Run.id == LatestMetric.run_id)
            .where(in_order, *search.where(driver))
            .order_by(value_order, tie_order)
            .offset(bindparam("offset"))
            .limit(bindparam("limit"))
        )

    def count() -> Any:
        return (
            select(func.count())
            .select_from(LatestMetric)
            .join(Run, Run.id == LatestMetric.run_id)
            .where(in_order, *search.where(driver))
        )

    def rest() -> Any:
        lacking = ~select(LatestMetric.run_id).where(LatestMetric.run_id == Run.id, has_value).exists()
        return (
            select(*COLUMNS_OUT)
            .where(lacking, *search.where(driver))
            .order_by(Run.start_time.desc(), Run.id.desc())
            .offset(bindparam("offset"))
            .limit(bindparam("limit"))
        )

    rows = cached_statement(("first", descending, *shape), first).fetch(conn, params)
    if len(rows) == limit:
        return rows
    if rows or offset == 0:
        with_metric = offset + len(rows)
    else:  # the offset may lie past the first part: count it
        with_metric = cached_statement(("count", *shape), count).fetch(conn, params)[0][0]
    rest_params = dict(params, offset=max(0, offset - with_metric), limit=limit - len(rows))
    return rows + cached_statement(("rest", *shape), rest).fetch(conn, rest_params)


def _values_of(run_ids: Any) -> Any:
    """Latest metrics, params and tags of some runs in one query: (kind, run_id, key, number, text)."""
    no_text, no_number = cast(null(), Text), cast(null(), Double)
    return _union_all(
        select(literal_column("0"), LatestMetric.run_id, LatestMetric.key, LatestMetric.value, no_text).where(
            LatestMetric.run_id.in_(run_ids)
        ),
        select(literal_column("1"), RunParam.run_id, RunParam.key, no_number, RunParam.value).where(
            RunParam.run_id.in_(run_ids)
        ),
        select(literal_column("2"), RunTag.run_id, RunTag.key, no_number, RunTag.value).where(
            RunTag.run_id.in_(run_ids)
        ),
    )


def page_values(
    scope_column: str, scope_ids: list[str], include_deleted: bool, whole: bool
) -> tuple[Prepared, dict[str, Any]]:
    """The statement for a page's values and its fixed parameters (add ``ids`` unless ``whole``).

    ``whole``: the page is every run in scope with no filter, so its values are selected by the
    scope's conditions rather than by a long list of ids.
    """
    if not whole:
        return cached_statement(("values",), lambda: _values_of(bindparam("ids", expanding=True))), {}
    single = len(scope_ids) == 1

    def build() -> Any:
        where = [_in_scope(getattr(Run, scope_column), single)]
        if not include_deleted:
            where.append(Run.deleted_at.is_(None))
        return _values_of(select(Run.id).where(*where))

    stmt = cached_statement(("values-whole", scope_column, single, include_deleted), build)
    return stmt, {"scope": scope_ids[0] if single else scope_ids}
