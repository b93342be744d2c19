"""Lineage: dataset version -> run on read, run -> dataset version on write, the graph API,
and the issue's end-to-end story on a real public dataset shipped with scikit-learn."""

from __future__ import annotations

import pytest
from datasets_support import customers

import plinth
from plinth.core.errors import InvalidInput, NotFound
from plinth.data import expect


def _run(name: str = "train"):  # type: ignore[no-untyped-def]
    return plinth.start_run(name=name, capture_environment=False, system_metrics=False)


def test_reads_and_writes_record_edges_and_lineage_walks_them(platform) -> None:  # type: ignore[no-untyped-def]
    plinth.data.ingest("raw", customers(50))
    with _run("prep") as prep:
        plinth.data.read("raw")  # inside an active run: recorded without saying so
        plinth.data.read("raw@1")  # the same edge once
        out = plinth.data.ingest("clean", customers(40), run_id=prep.id)
    with _run("fit") as fit:
        pass
    plinth.data.read("datasets:/clean/1", run_id=fit.id)
    plinth.data.record_lineage(f"runs:/{fit.id}", "models:/churn/1", kind="produced")
    assert out.version.ref == "datasets:/clean/1"
    # what was the model trained on?
    up = plinth.data.lineage("models:/churn/1", direction="upstream")
    assert [(e.src, e.kind, e.dst) for e in up.edges] == [
        ("datasets:/raw/1", "input", f"runs:/{prep.id}"),
        (f"runs:/{prep.id}", "output", "datasets:/clean/1"),
        ("datasets:/clean/1", "input", f"runs:/{fit.id}"),
        (f"runs:/{fit.id}", "produced", "models:/churn/1"),
    ]
    # what used raw version 1?
    down = plinth.data.lineage("datasets:/raw@1", direction="downstream")
    assert "models:/churn/1" in down.nodes and len(down.edges) == 4
    assert plinth.data.lineage("datasets:/raw@1", direction="downstream", depth=1).nodes == [
        "datasets:/raw/1",
        f"runs:/{prep.id}",
    ]
    # a dataset without a version covers all its versions
    assert {e.src for e in plinth.data.lineage("datasets:/clean", direction="downstream").edges} == {
        "datasets:/clean/1",
        f"runs:/{fit.id}",
    }
    assert plinth.data.lineage("datasets:/raw/1", direction="upstream").edges == []


def test_lineage_bad_input(platform) -> None:  # type: ignore[no-untyped-def]
    plinth.data.ingest("raw", customers(5))
    with pytest.raises(NotFound, match="run 'nosuchrun' does not exist"):
        plinth.data.read("raw", run_id="nosuchrun")
    with pytest.raises(NotFound, match="run 'nosuchrun' does not exist"):
        plinth.data.ingest("raw", customers(5), run_id="nosuchrun")
    assert plinth.data.get_dataset("raw").dataset.latest_version == 1
    with pytest.raises(InvalidInput, match="direction must be 'upstream', 'downstream' or 'both'"):
        plinth.data.lineage("datasets:/raw/1", direction="sideways")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="an edge needs two different nodes"):
        plinth.data.record_lineage("datasets:/raw/1", "datasets:/raw/1")
    with pytest.raises(InvalidInput, match="kind must be a short word"):
        plinth.data.record_lineage("datasets:/raw/1", "models:/m/1", kind="a b")
    with pytest.raises(InvalidInput, match="is not a reference"):
        plinth.data.lineage("not a ref")


def test_the_issue_story_on_scikit_learns_wine_data(platform, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A real public dataset is ingested, versioned twice, profiled, validated with a suite
    that fails on a deliberately broken version, split reproducibly, and traced to the run
    that read it."""
    from sklearn.datasets import load_wine

    wine = load_wine(as_frame=True).frame.reset_index(names="sample_id")
    suite = expect.suite(
        "wine",
        expect.not_null("alcohol"),
        expect.unique("sample_id"),
        expect.between("alcohol", min=10, max=16),
        expect.in_set("target", [0, 1, 2]),
        expect.expression("malic_acid > 0 AND ash > 0"),
        expect.row_count_between(min=100),
    )
    v1 = plinth.data.ingest("wine", wine.iloc[:120], tags=["train-2026-11"], expectations=suite)
    v2 = plinth.data.ingest("wine", wine.iloc[120:], expectations=suite)
    assert (v1.version.row_count, v2.version.row_count) == (120, len(wine))
    assert v1.validation.success and v2.validation.success  # type: ignore[union-attr]
    profile = plinth.data.profile("wine@2")
    alcohol = next(c for c in profile.columns if c.name == "alcohol")
    assert alcohol.mean == pytest.approx(wine.alcohol.mean()) and alcohol.nulls == 0
    broken = wine.iloc[:30].assign(sample_id=lambda d: d.sample_id + 1000, alcohol=lambda d: d.alcohol * 10)
    with pytest.raises(InvalidInput, match="between\\(alcohol\\): 30 of 208 rows fail"):
        plinth.data.ingest("wine", broken, expectations=suite)
    with pytest.warns(plinth.data.DataQualityWarning, match="datasets:/wine/3 failed expectations"):
        v3 = plinth.data.ingest("wine", broken, expectations=suite, on_failure="warn")
    assert v3.version.version == 3 and v3.version.quality is False
    assert plinth.data.validate("wine@2", suite).success
    failed = plinth.data.validate("wine@3", suite)
    assert [r.label for r in failed.failed] == ["between(alcohol)"]
    assert len(failed.failed[0].sample) == 5
    first = plinth.data.split("wine@train-2026-11", key="sample_id", train=0.75)
    later = plinth.data.split("wine@2", key="sample_id", train=0.75)
    ids1 = set(first["train"].column("sample_id").to_pylist())
    ids2 = {i for i in later["train"].column("sample_id").to_pylist() if i < 120}
    assert ids1 == ids2
    with _run("fit") as run:
        train = plinth.data.split("wine@train-2026-11", key="sample_id", train=0.75)["train"]
        assert train.num_rows == len(ids1)
    trained_on = plinth.data.lineage(f"runs:/{run.id}", direction="upstream")
    assert [e.src for e in trained_on.edges] == ["datasets:/wine/1"]
    used = plinth.data.lineage("datasets:/wine@train-2026-11", direction="downstream")
    assert used.nodes == ["datasets:/wine/1", f"runs:/{run.id}"]
