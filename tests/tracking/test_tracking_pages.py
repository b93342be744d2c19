"""The tracking pages: experiments, the runs table, run detail, artifacts, compare."""

from __future__ import annotations

import json
import math
import re

import pytest

from plinth.tracking import service as svc


def _seed(platform) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Two finished runs with params, metric histories and artifacts, in experiment 'churn'."""
    from plinth.artifacts import service as artifacts

    caller = platform.caller()
    caller.call(svc.set_experiment, name="churn")
    ids = []
    for name, depth, auc in (("rf-shallow", "3", 0.81), ("rf-deep", "9", 0.88)):
        run = caller.call(svc.start_run, experiment="churn", name=name)
        metrics = [("auc", auc * (i + 1) / 5, i, 1_700_000_000_000 + i * 1000) for i in range(5)]
        metrics.append(("loss", math.nan, 0, 1_700_000_000_000))
        caller.call(
            svc.log_batch,
            run_id=run.id,
            params={"max_depth": depth, "model": "rf"},
            metrics=metrics,
            tags={"team": "risk"},
        )
        report = json.dumps({"auc": auc}).encode()
        caller.call(artifacts.put_artifact, owner=f"runs:/{run.id}", name="report.json", content=report)
        caller.call(svc.end_run, run_id=run.id)
        ids.append(run.id)
    return ids[0], ids[1]


def test_runs_table_lists_params_and_metrics_and_sorts(live_server, admin_client) -> None:  # type: ignore[no-untyped-def]
    shallow, deep = _seed(live_server.platform)
    page = admin_client.get("/experiments")
    assert page.status_code == 200 and 'href="/experiments/churn"' in page.text and ">2<" in page.text
    table = admin_client.get("/experiments/churn", params={"order": "metrics.`auc` desc"})
    assert table.status_code == 200
    assert table.text.index("rf-deep") < table.text.index("rf-shallow")
    assert "max_depth" in table.text and "0.88" in table.text
    asc = admin_client.get("/experiments/churn", params={"order": "metrics.`auc` asc"})
    assert asc.text.index("rf-shallow") < asc.text.index("rf-deep")
    filtered = admin_client.get("/experiments/churn", params={"filter": "params.max_depth = '9'"})
    assert "rf-deep" in filtered.text and "rf-shallow" not in filtered.text


def test_a_bad_filter_is_shown_on_the_page_with_a_400(admin_client, live_server) -> None:  # type: ignore[no-untyped-def]
    _seed(live_server.platform)
    r = admin_client.get("/experiments/churn", params={"filter": "metrics.auc >> 1"})
    assert r.status_code == 400
    assert 'role="alert"' in r.text or "alert" in r.text
    assert "rf-deep" in r.text  # the unfiltered runs are still listed


def test_run_page_shows_params_charts_and_artifact_preview(admin_client, live_server) -> None:  # type: ignore[no-untyped-def]
    shallow, _ = _seed(live_server.platform)
    r = admin_client.get(f"/runs/{shallow}")
    assert r.status_code == 200
    assert "rf-shallow" in r.text and "max_depth" in r.text and "report.json" in r.text
    spec = json.loads(re.search(r"data-chart='([^']+)'", r.text).group(1).replace("&#34;", '"'))
    assert spec["x"] == [0, 1, 2, 3, 4] and spec["series"][0]["label"] == "rf-shallow"
    assert "NaN" in r.text  # the NaN loss is shown as such, not dropped
    assert "nothing to draw: loss" in r.text
    preview = admin_client.get(f"/runs/{shallow}/artifact", params={"name": "report.json"})
    assert preview.status_code == 200 and "&#34;auc&#34;: 0.81" in preview.text
    missing = admin_client.get(f"/runs/{shallow}/artifact", params={"name": "nope.txt"})
    assert missing.status_code == 404 and "does not exist" in missing.text
    traversal = admin_client.get(f"/runs/{shallow}/artifact", params={"name": "../../etc/passwd"})
    assert traversal.status_code == 400
    raw = admin_client.get(f"/runs/{shallow}/artifact/raw", params={"name": "report.json"})
    assert raw.status_code == 400 and "not an image" in raw.text


def test_unknown_run_is_a_404_page(admin_client) -> None:  # type: ignore[no-untyped-def]
    r = admin_client.get("/runs/01aaaaaaaaaaaaaaaaaaaaaaaa")
    assert r.status_code == 404


def test_compare_diffs_params_and_overlays_curves(admin_client, live_server) -> None:  # type: ignore[no-untyped-def]
    shallow, deep = _seed(live_server.platform)
    r = admin_client.get("/runs/compare", params=[("ids", shallow), ("ids", deep)])
    assert r.status_code == 200
    assert "differs" in r.text and "max_depth" in r.text
    specs = [json.loads(m.replace("&#34;", '"')) for m in re.findall(r"data-chart='([^']+)'", r.text)]
    auc = next(s for s in specs if [x["label"] for x in s["series"]] == ["rf-shallow", "rf-deep"])
    assert len(auc["series"][0]["values"]) == len(auc["x"]) == 5
    one = admin_client.get("/runs/compare", params=[("ids", shallow)])
    assert one.status_code == 400 and "at least two runs" in one.text


@pytest.mark.browser
def test_click_from_experiments_to_compare(page, live_server) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    _seed(live_server.platform)
    page.goto(f"{live_server.url}/login?token={live_server.admin_token}")
    page.locator("nav.sidenav").get_by_role("link", name="Experiments").click()
    page.get_by_role("link", name="churn").click()
    expect(page.get_by_test_id("runs")).to_contain_text("rf-deep")
    page.shot("runs-table")
    page.get_by_role("link", name="rf-deep").click()
    expect(page.get_by_test_id("run-status")).to_have_text("finished")
    expect(page.locator("[data-testid='chart-auc'] canvas")).to_have_count(1)
    page.shot("run-detail")
    page.go_back()
    for box in page.locator("input[name=ids]").all():
        box.check()
    page.get_by_test_id("compare").click()
    expect(page.get_by_test_id("compare-params")).to_contain_text("differs")
    expect(page.locator("[data-testid='chart-auc'] canvas")).to_have_count(1)
    page.shot("compare")
