"""Plan and apply: versioned, audited, all or nothing; feature repositories loaded by path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from features_support import definitions, driver_stats_rows, setup_repo, write_source
from sqlalchemy import func, select

from plinth.core.errors import InvalidInput, NotFound
from plinth.core.platform import Platform
from plinth.features import Field
from plinth.features import service as svc
from plinth.features.repo import load_repo
from plinth.features.tables import FeatureDefinitionVersion
from plinth.store.events import read_events


def test_apply_versions_only_what_changed_and_audits_it(platform: Platform, tmp_path: Path) -> None:
    defs = setup_repo(platform, tmp_path)
    caller = platform.caller()
    specs = [defs[k].to_spec() for k in ("driver", "stats", "daily", "service")]
    assert caller.call(svc.plan, objects=specs).summary() == {"unchanged": 4}
    stats = defs["stats"]
    stats.ttl = timedelta(hours=3)
    stats.schema = [*stats.schema[:1], Field("trips", "float64")]
    plan = caller.call(svc.plan, objects=[stats.to_spec()])
    change = next(c for c in plan.changes if c.name == "driver_stats")
    assert (change.action, change.from_version, change.to_version) == ("update", 1, 2)
    assert "ttl_seconds: 7200.0 -> 10800.0" in change.changes
    assert "schema: field 'trips' dtype int64 -> float64" in change.changes
    assert {c.action for c in plan.changes if c.name != "driver_stats"} == {"keep"}
    result = caller.call(svc.apply, objects=[stats.to_spec()])
    assert [d.name for d in result.applied] == ["driver_stats"] and result.applied[0].version == 2
    with platform.context() as ctx:
        versions = ctx.session.execute(select(func.count()).select_from(FeatureDefinitionVersion)).scalar()
        assert versions == 5
        events = read_events(ctx.session, action="features.*", limit=100)
        assert [e.action for e in events].count("features.feature_view.apply") == 3
        last = json.loads(events[-1].summary)
        assert events[-1].resource == "features:/driver_stats" and last["version"] == 2
    detail = caller.call(svc.get_definition, kind="feature_view", name="driver_stats")
    assert detail.version == 2 and detail.spec["ttl_seconds"] == 10800.0


def test_prune_removes_what_is_not_in_the_batch(platform: Platform, tmp_path: Path) -> None:
    defs = setup_repo(platform, tmp_path)
    caller = platform.caller()
    keep = [defs[k].to_spec() for k in ("driver", "stats")]
    with pytest.raises(InvalidInput, match="feature service 'driver_activity' uses 'driver_daily:rating'"):
        # the service still needs driver_daily, which a pruning apply without it would remove
        caller.call(svc.plan, objects=[*keep, defs["service"].to_spec()], prune=True)
    plan = caller.call(svc.apply, objects=keep, prune=True).plan
    assert {(c.name, c.action) for c in plan.changes} == {
        ("driver", "unchanged"),
        ("driver_stats", "unchanged"),
        ("driver_daily", "remove"),
        ("driver_activity", "remove"),
    }
    assert [d.name for d in caller.call(svc.list_definitions, kind="feature_view")] == ["driver_stats"]
    again = caller.call(svc.apply, objects=[defs["daily"].to_spec()])
    assert again.applied[0].version == 2  # a name that comes back continues its versions


def test_bad_references_are_refused_and_nothing_is_written(platform: Platform, tmp_path: Path) -> None:
    uri = write_source("parquet", driver_stats_rows(), tmp_path, platform, "src")
    defs = definitions(uri, uri)
    caller = platform.caller()
    with pytest.raises(InvalidInput, match="uses entity 'driver', which is neither in the registry nor in this apply"):
        caller.call(svc.apply, objects=[defs["stats"].to_spec()])
    with pytest.raises(InvalidInput, match="the name 'driver_stats' is used twice"):
        caller.call(svc.apply, objects=[defs["driver"].to_spec(), defs["stats"].to_spec(), defs["stats"].to_spec()])
    broken = defs["service"].to_spec()
    broken["features"] = ["driver_stats:conv_rat"]
    with pytest.raises(InvalidInput, match="did you mean 'driver_stats:conv_rate'"):
        caller.call(svc.apply, objects=[defs["driver"].to_spec(), defs["stats"].to_spec(), broken])
    assert caller.call(svc.list_definitions) == []


def test_a_repository_folder_loads_by_path(tmp_path: Path, platform: Platform) -> None:
    uri = write_source("parquet", driver_stats_rows(), tmp_path, platform, "src")
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    (repo / ".hidden").mkdir()
    (repo / "entities.py").write_text(
        "from plinth.features import Entity\ndriver = Entity(name='driver', join_keys=['driver_id'])\n"
    )
    (repo / "sub" / "json.py").write_text(
        textwrap.dedent(
            f"""
            from datetime import timedelta
            from plinth.features import FeatureView, Field, Source
            from entities import driver
            stats = FeatureView(name="driver_stats", entities=[driver], schema=[Field("trips", "int64")],
                                source=Source({uri!r}, created_field="created"), ttl=timedelta(hours=2))
            """
        )
    )
    (repo / ".hidden" / "broken.py").write_text("this is not python\n")
    contents = load_repo(repo)
    assert sorted(type(o).__name__ for o in contents.objects) == ["Entity", "FeatureView"]
    assert "json" not in sys.modules or not hasattr(sys.modules["json"], "stats")  # shadows nothing
    (repo / "bad.py").write_text("x = 1\ny = (\n")
    with pytest.raises(InvalidInput, match=r"bad.py:2: syntax error"):
        load_repo(repo)
    (repo / "bad.py").write_text("import math\n\nraise RuntimeError('boom')\n")
    with pytest.raises(InvalidInput, match=r"bad.py:3: loading the file failed: RuntimeError: boom"):
        load_repo(repo)
    (repo / "bad.py").write_text(
        "from plinth.features import Entity\ndriver = Entity(name='driver', join_keys=['id'])\n"
    )
    with pytest.raises(InvalidInput, match="two different definitions are named 'driver'"):
        load_repo(repo)
    with pytest.raises(NotFound):
        load_repo(tmp_path / "nope")


def _plinth(home: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLINTH_")}
    env["PLINTH_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "plinth.cli.main", "features", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def test_cli_plan_apply_list_show_search_materialize(tmp_path: Path, platform: Platform) -> None:
    stats_uri = write_source("parquet", driver_stats_rows(), tmp_path, platform, "stats")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "features.py").write_text(
        textwrap.dedent(
            f"""
            from datetime import timedelta
            from plinth.features import Entity, FeatureService, FeatureView, Field, Source
            driver = Entity(name="driver", join_keys=["driver_id"])
            stats = FeatureView(name="driver_stats", entities=[driver], owner="risk-team",
                                schema=[Field("conv_rate", "float64", description="share of accepted rides"),
                                        Field("trips", "int64")],
                                source=Source({stats_uri!r}, created_field="created"), ttl=timedelta(hours=2))
            activity = FeatureService(name="activity", features=[stats])
            """
        )
    )
    home = tmp_path / "home"
    out = _plinth(home, repo, "plan")
    assert out.returncode == 0, out.stderr
    assert "+ create    feature_view             driver_stats (version 1)" in out.stdout and "3 create" in out.stdout
    out = _plinth(home, repo, "apply", "--json")
    assert out.returncode == 0, out.stderr
    assert [d["name"] for d in json.loads(out.stdout)["applied"]] == ["driver", "driver_stats", "activity"]
    assert "3 unchanged" in _plinth(home, repo, "apply").stdout
    out = _plinth(home, repo, "list", "--json")
    assert [d["name"] for d in json.loads(out.stdout)] == ["driver_stats"]
    out = _plinth(home, repo, "search", "accepted rides", "--json")
    assert [f["ref"] for f in json.loads(out.stdout)] == ["driver_stats:conv_rate"]
    out = _plinth(home, repo, "show", "driver_stats:trips", "--json")
    assert json.loads(out.stdout)["dtype"] == "int64"
    out = _plinth(home, repo, "show", "activity")
    assert "feature_service activity (version 1)" in out.stdout
    out = _plinth(home, repo, "materialize", "2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["writes"][0]["entities_written"] == 2
    out = _plinth(home, repo, "show", "driver_stats:conv_rat")
    assert out.returncode == 4 and "did you mean 'driver_stats:conv_rate'" in out.stderr
    out = _plinth(home, repo, "materialize", "yesterday", "now")
    assert out.returncode == 2 and "is not an ISO-8601 time" in out.stderr


def test_apply_retrieve_and_serve_on_both_metadata_backends(any_platform: Platform, tmp_path: Path) -> None:
    """The registry, training sets and online writes on SQLite and on PostgreSQL."""
    from features_support import CASES, T, entity_frame

    from plinth.features.catalog import feature_detail, freshness
    from plinth.features.online import get_online_features, materialize
    from plinth.features.retrieval import create_training_set

    defs = setup_repo(any_platform, tmp_path, "dataset")
    caller = any_platform.caller()
    stats = defs["stats"]
    stats.description = "changed"
    assert caller.call(svc.apply, objects=[stats.to_spec()]).applied[0].version == 2
    info = caller.call(create_training_set, name="ts", entity_df=entity_frame(), feature_service="driver_activity")
    assert info.rows == len(CASES) and info.views == ["features:/driver_stats/2", "features:/driver_daily/1"]
    caller.call(materialize, start=None, end=T(23))
    got = caller.call(get_online_features, entity_rows=[{"driver_id": 2}], features=["driver_daily:rating"])
    assert got.features == {"rating": [3.0]}
    assert {f.view for f in caller.call(freshness)} == {"driver_stats", "driver_daily"}
    assert caller.call(feature_detail, ref="driver_daily:rating").usage.training_sets == ["datasets:/ts/1"]  # type: ignore[union-attr]
